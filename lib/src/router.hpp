// Maps a method and a path to a route of a table, telling "no such path" (404) from "path
// exists, method does not" (405). Patterns are literal segments and "{name}" parameters.
#pragma once

#include <boost/beast/http/verb.hpp>

#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace portal_auth {

inline constexpr std::size_t max_path_params = 2;

struct route_match {
    enum class outcome { found, not_found, method_not_allowed };
    outcome result = outcome::not_found;
    std::size_t route = 0;                                  // index given to add(), when found
    std::array<std::string_view, max_path_params> params{}; // views into the matched path
    std::string allow;                                      // "GET, POST" when method_not_allowed
};

class router {
public:
    // Throws std::invalid_argument for an empty or malformed pattern (a programming error).
    // Returns the route's index, in insertion order.
    std::size_t add(boost::beast::http::verb method, std::string_view pattern);

    // `path` is the path of the request target without its query. A literal segment wins over
    // a parameter at the same position. A parameter matches one non-empty segment.
    route_match match(boost::beast::http::verb method, std::string_view path) const;

private:
    struct route {
        boost::beast::http::verb method;
        std::vector<std::string> segments; // "{...}" marks a parameter
    };
    std::vector<route> routes_;
};

} // namespace portal_auth
