#include "router.hpp"

#include <algorithm>
#include <ostream> // boost::core::string_view needs it complete
#include <stdexcept>

namespace portal_auth {
namespace {

bool is_param(std::string_view segment) {
    return segment.size() > 2 && segment.front() == '{' && segment.back() == '}';
}

// Splits "/a/b/c" into {"a","b","c"}; false if the path does not start with '/', has an empty
// segment, or too many segments to be one of ours.
bool split_path(std::string_view path, std::array<std::string_view, 8>& out, std::size_t& count) {
    count = 0;
    if (path.empty() || path.front() != '/')
        return false;
    path.remove_prefix(1);
    if (!path.empty() && path.back() == '/')
        return false; // "/a/" ends in an empty segment
    while (!path.empty()) {
        auto slash = path.find('/');
        auto segment = path.substr(0, slash);
        if (segment.empty() || count == out.size())
            return false;
        out[count++] = segment;
        path = slash == std::string_view::npos ? std::string_view{} : path.substr(slash + 1);
    }
    return true;
}

} // namespace

std::size_t router::add(boost::beast::http::verb method, std::string_view pattern) {
    std::array<std::string_view, 8> parts;
    std::size_t count = 0;
    if (!split_path(pattern, parts, count) || count == 0)
        throw std::invalid_argument("bad route pattern");
    route r{method, {}};
    std::size_t params = 0;
    for (std::size_t i = 0; i < count; ++i) {
        if (is_param(parts[i]))
            ++params;
        r.segments.emplace_back(parts[i]);
    }
    if (params > max_path_params)
        throw std::invalid_argument("too many parameters in route pattern");
    routes_.push_back(std::move(r));
    return routes_.size() - 1;
}

route_match router::match(boost::beast::http::verb method, std::string_view path) const {
    std::array<std::string_view, 8> parts;
    std::size_t count = 0;
    route_match best;
    if (!split_path(path, parts, count))
        return best;

    // Among routes of the right shape and method, the one with most literal segments wins.
    int best_score = -1;
    std::vector<boost::beast::http::verb> other_methods;
    for (std::size_t index = 0; index < routes_.size(); ++index) {
        const route& r = routes_[index];
        if (r.segments.size() != count)
            continue;
        route_match candidate;
        candidate.result = route_match::outcome::found;
        candidate.route = index;
        std::size_t params = 0;
        int score = 0;
        bool matches = true;
        for (std::size_t i = 0; i < count && matches; ++i) {
            if (is_param(r.segments[i]))
                candidate.params[params++] = parts[i];
            else if (r.segments[i] == parts[i])
                ++score;
            else
                matches = false;
        }
        if (!matches)
            continue;
        if (r.method != method) {
            if (std::find(other_methods.begin(), other_methods.end(), r.method) ==
                other_methods.end())
                other_methods.push_back(r.method);
            continue;
        }
        if (score > best_score) {
            best = std::move(candidate);
            best_score = score;
        }
    }
    if (best.result != route_match::outcome::found && !other_methods.empty()) {
        best.result = route_match::outcome::method_not_allowed;
        for (auto m : other_methods)
            best.allow.append(best.allow.empty() ? "" : ", ")
                .append(boost::beast::http::to_string(m));
    }
    return best;
}

} // namespace portal_auth
