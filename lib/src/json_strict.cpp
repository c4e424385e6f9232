// A Boost.JSON basic_parser handler that remembers the member names of each open object.
#include "json_strict.hpp"

#include <boost/json/basic_parser_impl.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace portal_auth {
namespace {

namespace json = boost::json;
using boost::system::error_code;

class duplicate_finder {
public:
    static constexpr std::size_t max_object_size = std::size_t(-1);
    static constexpr std::size_t max_array_size = std::size_t(-1);
    static constexpr std::size_t max_key_size = std::size_t(-1);
    static constexpr std::size_t max_string_size = std::size_t(-1);

    std::optional<std::string> duplicate;

    bool on_document_begin(error_code&) { return true; }
    bool on_document_end(error_code&) { return true; }
    bool on_array_begin(error_code&) {
        frames_.push_back({false, {}});
        return true;
    }
    bool on_array_end(std::size_t, error_code&) {
        frames_.pop_back();
        return true;
    }
    bool on_object_begin(error_code&) {
        frames_.push_back({true, {}});
        return true;
    }
    bool on_object_end(std::size_t, error_code&) {
        frames_.pop_back();
        return true;
    }
    bool on_string_part(json::string_view, std::size_t, error_code&) { return true; }
    bool on_string(json::string_view, std::size_t, error_code&) { return true; }
    bool on_key_part(json::string_view part, std::size_t, error_code&) {
        key_.append(part.data(), part.size());
        return true;
    }
    bool on_key(json::string_view last, std::size_t, error_code& ec) {
        key_.append(last.data(), last.size());
        auto& names = frames_.back().names;
        if (std::find(names.begin(), names.end(), key_) != names.end()) {
            duplicate = key_;
            ec = json::error::syntax; // stops the parse; the duplicate is the answer
            return false;
        }
        names.push_back(std::move(key_));
        key_.clear();
        return true;
    }
    bool on_number_part(json::string_view, error_code&) { return true; }
    bool on_int64(std::int64_t, json::string_view, error_code&) { return true; }
    bool on_uint64(std::uint64_t, json::string_view, error_code&) { return true; }
    bool on_double(double, json::string_view, error_code&) { return true; }
    bool on_bool(bool, error_code&) { return true; }
    bool on_null(error_code&) { return true; }
    bool on_comment_part(json::string_view, error_code&) { return true; }
    bool on_comment(json::string_view, error_code&) { return true; }

private:
    struct frame {
        bool is_object;
        std::vector<std::string> names; // bodies are small (16 KiB at most): a scan beats a set
    };
    std::vector<frame> frames_;
    std::string key_;
};

} // namespace

std::optional<std::string> first_duplicate_member(std::string_view text) {
    json::basic_parser<duplicate_finder> parser(json::parse_options{});
    error_code ec;
    parser.write_some(false, text.data(), text.size(), ec);
    return std::move(parser.handler().duplicate);
}

} // namespace portal_auth
