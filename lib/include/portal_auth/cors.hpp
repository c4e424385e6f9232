// Cross-origin requests from browsers (CORS, as the Fetch standard defines it): a request
// handler wrapped so that a web front end served from another origin may call the API with a
// bearer token. No sockets: it wraps any request_handler_fn.
#pragma once

#include <portal_auth/server.hpp>

#include <boost/system/result.hpp>

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

namespace portal_auth {

struct cors_config {
    // The origins whose pages may call the API, each "http://host[:port]" or
    // "https://host[:port]" with no path (see parse_origin). None by default: no CORS header is
    // ever sent. "*" is not supported: every origin is named.
    std::vector<std::string> allowed_origins;
    // How long a browser may cache a preflight's answer (Access-Control-Max-Age).
    std::chrono::seconds max_age{600};
};

// The methods and request headers a preflight allows: those of the API.
inline constexpr std::string_view cors_allowed_methods = "GET, HEAD, POST, PUT, DELETE";
inline constexpr std::string_view cors_allowed_headers =
    "authorization, content-type, x-request-id";
// Response headers a page may read beyond the CORS-safelisted ones: when to retry after a 429
// or 503, why a bearer token was refused, and the request's id to quote in a report.
inline constexpr std::string_view cors_exposed_headers =
    "retry-after, www-authenticate, x-request-id";

// An origin as a browser serializes it in the Origin header: "http" or "https", "://", a host
// name (letters, digits, '-' and '.'), an IPv4 address or a bracketed IPv6 address, and an
// optional port from 1 to 65535; no user info, path (not even "/"), query or fragment. Returns
// the canonical form: scheme and host in lower case, the port without leading zeros and left
// out when it is the scheme's default (80, 443), as browsers send it. "null" and "*" are not
// origins. Error: boost::system::errc::invalid_argument.
[[nodiscard]] boost::system::result<std::string> parse_origin(std::string_view text);

// Wraps `inner` to answer browsers' cross-origin requests. A request is from an allowed origin
// when it carries exactly one Origin header whose canonical form (parse_origin) is one of
// `config.allowed_origins`; the comparison is exact on scheme, host and port, and
// case-insensitive.
//   - A preflight (OPTIONS with Origin and Access-Control-Request-Method) from an allowed
//     origin is answered here, without calling `inner`: 204 with Access-Control-Allow-Origin
//     (the Origin value as sent), Access-Control-Allow-Methods (cors_allowed_methods),
//     Access-Control-Allow-Headers (cors_allowed_headers), Access-Control-Max-Age, Vary: Origin,
//     the common headers (set_common_headers), X-Request-Id as request_handler sets it (the
//     request's own when it is a sane token, else a new one) and keep-alive as the request
//     asked; no Content-Length, as RFC 9110 wants for a 204.
//   - Any other request from an allowed origin goes to `inner`, and its response gets
//     Access-Control-Allow-Origin, Access-Control-Expose-Headers (cors_exposed_headers) and
//     Origin added to Vary.
//   - A request from any other origin, or without Origin, goes to `inner` untouched and its
//     response carries no CORS header. So does a preflight: the API has no OPTIONS route, so it
//     is answered 405, and the browser then refuses the cross-origin call.
// Access-Control-Allow-Credentials is never sent: the API takes bearer tokens, not cookies.
//
// Throws std::invalid_argument when an entry of `config.allowed_origins` is not an origin (a
// bug of the caller, who validates input with parse_origin first). The returned handler is
// thread-safe when `inner` is, and completes on the executor `inner` completes on.
request_handler_fn with_cors(request_handler_fn inner, cors_config config);

} // namespace portal_auth
