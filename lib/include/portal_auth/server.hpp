// The HTTPS listener: accepts TCP connections, terminates TLS, reads HTTP/1.1 requests and
// answers each with an awaitable handler it knows nothing else about. Runs on the caller's
// executors; starts no threads.
#pragma once

#include <portal_auth/http_types.hpp>
#include <portal_auth/ip_network.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

namespace portal_auth {

class metrics;

// Answers one request. Runs on the connection's executor; may await anything (a pool, a remote
// store) and must complete on that executor. An exception ends the connection without an
// answer (and is logged), so a handler should turn its own failures into responses.
using request_handler_fn =
    std::function<boost::asio::awaitable<http_response>(http_request, request_context)>;

struct server_config {
    std::chrono::steady_clock::duration handshake_timeout = std::chrono::seconds(10);
    // From the first byte of a request to its last; a slow client is cut off here.
    std::chrono::steady_clock::duration request_timeout = std::chrono::seconds(10);
    // Waiting for the next request on a keep-alive connection.
    std::chrono::steady_clock::duration idle_timeout = std::chrono::seconds(60);
    std::size_t header_limit = 8 * 1024; // larger: 431
    std::size_t body_limit = 16 * 1024;  // larger: 413
    // Beyond this many open connections, new ones are closed right after accept.
    std::size_t max_connections = 10000;
    // Beyond this many open connections from one address, new ones from it are closed right
    // after accept; trusted proxies are exempt. 0: no limit.
    std::size_t max_connections_per_address = 256;
    // Reverse proxies whose word on the client's address is taken; none by default. A request
    // on a connection from one of them is from the rightmost X-Forwarded-For entry that is not
    // itself trusted (nginx's real_ip_recursive); from anyone else the header is ignored.
    std::vector<ip_network> trusted_proxies;
    // Connections from trusted proxies begin with a PROXY protocol v2 header (HAProxy's
    // send-proxy-v2), which names the client; X-Forwarded-For is then not read. A connection
    // from a trusted proxy without a valid header is closed. Others are served as usual.
    bool proxy_protocol = false;
    // After a graceful stop: how long requests in flight may take before connections are
    // closed.
    std::chrono::steady_clock::duration shutdown_grace = std::chrono::seconds(10);
    // Where connections run. Empty (the default): each connection on its own strand of the
    // server's executor, so any number of threads may run it. Otherwise connections are dealt
    // round-robin over these executors and run on them without a strand: each must be driven by
    // exactly one thread (an io_context per thread, say), which saves the strand's locking and
    // dispatch on every completion.
    std::vector<boost::asio::any_io_executor> connection_executors;
    // Operational messages (never secrets). Default: stderr.
    std::function<void(std::string_view)> log;
    // Optional: connections accepted and rejected, TLS handshakes. Must outlive the server.
    metrics* counts = nullptr;
};

class server {
public:
    // Opens, binds and listens on `endpoint` (port 0 picks a free port). Throws
    // boost::system::system_error when that fails (start-up). `tls` must outlive the server and
    // every run() coroutine; `handler` is copied and called once per request.
    server(boost::asio::any_io_executor executor, boost::asio::ssl::context& tls,
           const boost::asio::ip::tcp::endpoint& endpoint, request_handler_fn handler,
           server_config config = {});
    ~server();
    server(const server&) = delete;
    server& operator=(const server&) = delete;

    // The bound endpoint, with the real port.
    boost::asio::ip::tcp::endpoint local_endpoint() const;

    // Accepts and serves connections; completes once the server has stopped and its last
    // connection has ended (no polling: the last connection to end wakes it). Call once. May be
    // spawned on any executor.
    //
    // Stopping, either by stop()/stop(force) or by per-operation cancellation of this
    // coroutine:
    //   - total (or partial) cancellation, stop(): graceful. Stop accepting, close idle
    //     keep-alive connections, let requests in flight finish and answer them with
    //     `Connection: close`; after shutdown_grace, close whatever is left.
    //   - terminal cancellation, stop(true): close every connection now.
    // A graceful stop can be followed by a terminal one. run() then completes normally (no
    // exception for cancellation). So `co_await (srv.run() || timer.async_wait(use_awaitable))`
    // stops the server when the timer fires (|| sends terminal cancellation).
    boost::asio::awaitable<void> run();

    // Thread-safe; any thread, any number of times. `force`: as terminal cancellation.
    void stop(bool force = false);

    // Connections currently open. Thread-safe.
    std::size_t connection_count() const noexcept;

    struct state;

private:
    std::shared_ptr<state> state_;
};

} // namespace portal_auth
