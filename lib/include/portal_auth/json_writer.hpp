// JSON text appended straight to a string, for responses written field by field: no value tree
// and no allocation beyond the output's own growth. Strings are escaped as Boost.JSON's
// serializer escapes them, so the bytes equal json::serialize of the same document.
#pragma once

#include <concepts>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace portal_auth {

class json_writer {
public:
    explicit json_writer(std::string& out) noexcept : out_(out) {}

    json_writer& begin_object();
    json_writer& end_object();
    json_writer& begin_array();
    json_writer& end_array();

    // The member name, written as given: it must not need escaping (the API's names never do).
    // The next call writes its value.
    json_writer& key(std::string_view name);

    json_writer& value(std::string_view text);
    json_writer& value(const char* text) { return value(std::string_view(text)); }
    json_writer& value(bool flag);
    template <std::integral T>
    requires(!std::same_as<T, bool>) json_writer& value(T number) {
        if constexpr (std::is_signed_v<T>)
            return signed_value(number);
        else
            return unsigned_value(number);
    }
    template <class T> json_writer& value(const std::optional<T>& maybe) {
        return maybe ? value(*maybe) : null();
    }
    json_writer& null();

    // A value already serialized as JSON (by Boost.JSON, say), inserted as it is.
    json_writer& raw(std::string_view json_text);

private:
    void separate();
    json_writer& signed_value(std::int64_t number);
    json_writer& unsigned_value(std::uint64_t number);

    std::string& out_;
    bool need_comma_ = false;
};

// `text` as a JSON string literal, quotes included, appended to `out`.
void append_json_string(std::string& out, std::string_view text);

} // namespace portal_auth
