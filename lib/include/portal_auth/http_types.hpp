// What the listener and a request handler exchange: Beast's request and response with string
// bodies, the caller's context, and RFC 9457 problem answers.
#pragma once

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>

#include <chrono>
#include <string>
#include <string_view>

namespace portal_auth {

using http_request = boost::beast::http::request<boost::beast::http::string_body>;
using http_response = boost::beast::http::response<boost::beast::http::string_body>;

// Who is calling: the client's address ("ip:port", "[v6]:port"; "ip" or "[v6]" when a trusted
// proxy named it without a port) for the audit trail and the throttles, and the time the
// request was read. `peer`: the TCP peer ("ip:port") when it is not the client (a trusted
// proxy); empty otherwise.
struct request_context {
    std::string remote;
    std::chrono::system_clock::time_point now;
    std::string peer;
    bool draining = false; // the server is stopping (readiness probes answer 503)
    // The request's id (X-Request-Id, or made by the request handler), for logs and the audit.
    std::string request_id;
};

// An RFC 9457 problem details response (application/problem+json). `type` is "about:blank" for
// plain HTTP errors (unknown path, 405, 413, 431, malformed HTTP, 500) and
// "urn:portal-auth:problem:<slug>" for everything the error table describes. A 401 carries
// WWW-Authenticate: Bearer realm="portal-auth", plus error="invalid_token" when
// `token_presented`. Every response carries Cache-Control: no-store, HSTS and nosniff.
http_response make_problem_response(boost::beast::http::status status, std::string_view type,
                                    std::string_view detail, unsigned http_version = 11,
                                    bool keep_alive = true, bool token_presented = false);

// The headers every response of portal-auth carries.
void set_common_headers(http_response& response);

} // namespace portal_auth
