// HTTP in, HTTP out: routes a parsed request to its endpoint over the auth service. No sockets;
// an application with its own Beast server can call handle() directly.
#pragma once

#include <portal_auth/auth_service.hpp>
#include <portal_auth/router.hpp>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>

#include <string_view>
#include <vector>

namespace portal_auth {

using http_request = boost::beast::http::request<boost::beast::http::string_body>;
using http_response = boost::beast::http::response<boost::beast::http::string_body>;

// An RFC 9457 problem details response (application/problem+json). `type` is "about:blank" for
// plain HTTP errors (unknown path, 405, 413, 431, malformed HTTP, 500) and
// "urn:portal-auth:problem:<slug>" for everything the error table describes. A 401 carries
// WWW-Authenticate: Bearer realm="portal-auth", plus error="invalid_token" when
// `token_presented`.
http_response make_problem_response(boost::beast::http::status status, std::string_view type,
                                    std::string_view detail, unsigned http_version = 11,
                                    bool keep_alive = true, bool token_presented = false);

// Thread-safe: handle() may run concurrently on any number of threads.
class request_handler {
public:
    explicit request_handler(auth_service& service);

    // Never throws for any request; a bug inside an endpoint becomes a 500 without details.
    http_response handle(const http_request& request, const call_context& call) const;

    auth_service& service() const noexcept { return service_; }

    // What an endpoint sees: the request, its route match and the caller. Defined in the source.
    struct endpoint_context;

private:
    using endpoint_fn = http_response (*)(endpoint_context&);

    auth_service& service_;
    router router_;
    std::vector<endpoint_fn> endpoints_; // indexed by route
};

} // namespace portal_auth
