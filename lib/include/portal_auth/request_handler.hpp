// HTTP in, HTTP out: routes a parsed request to its endpoint over the auth service. No sockets:
// it is the awaitable callable the listener takes, and an application with its own HTTP server
// can await it directly.
#pragma once

#include <portal_auth/auth_service.hpp>
#include <portal_auth/http_types.hpp>

#include <boost/asio/awaitable.hpp>

#include <memory>
#include <string_view>

namespace portal_auth {

class router;
class metrics;
class logger;

// What the handler reports to, both optional; each must outlive the handler.
struct handler_options {
    metrics* counts = nullptr;   // requests by route template and status, durations
    const logger* log = nullptr; // one access line per request (info)
};

// Thread-safe: any number of requests may be handled at once, on any executors.
//
// Every response carries X-Request-Id: the request's own when it is a sane token (1 to 128
// characters of A-Z a-z 0-9 . _ -), else one made here; the audit lines of the request carry it
// as requestId.
class request_handler {
public:
    explicit request_handler(auth_service& service, handler_options options = {});
    ~request_handler();
    request_handler(const request_handler&) = delete;
    request_handler& operator=(const request_handler&) = delete;

    // Never throws for any request; a bug inside an endpoint becomes a 500 without details.
    // Completes on the caller's executor. So that std::ref(handler) is a server's handler.
    boost::asio::awaitable<http_response> operator()(http_request request,
                                                     request_context context) const;

    auth_service& service() const noexcept { return service_; }

    // What an endpoint sees: the request, its route match and the caller. Defined in the source.
    struct endpoint_context;

private:
    boost::asio::awaitable<http_response> answer(const http_request& request,
                                                 const request_context& context,
                                                 std::string_view& route) const;

    auth_service& service_;
    handler_options options_;
    std::unique_ptr<router> router_;
};

} // namespace portal_auth
