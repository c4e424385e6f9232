// The HTTPS listener: accepts TCP connections, terminates TLS, reads HTTP/1.1 requests with
// Beast and answers them through a request_handler. Runs on the caller's executor.
#pragma once

#include <portal_auth/request_handler.hpp>

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
    // How often expired sessions and grants are swept from the store, on the server's
    // executor. Zero: never here; the application calls auth_service::sweep from a thread of
    // its own, so that a sweep over many sessions never holds up an I/O thread.
    std::chrono::steady_clock::duration sweep_interval = std::chrono::seconds(10);
    // After stop(): how long requests in flight may take before connections are closed.
    std::chrono::steady_clock::duration shutdown_grace = std::chrono::seconds(10);
    // Where connections run. Empty (the default): each connection on its own strand of the
    // server's executor, so any number of threads may run it. Otherwise connections are dealt
    // round-robin over these executors and run on them without a strand: each must be driven by
    // exactly one thread (an io_context per thread, say), which saves the strand's locking and
    // dispatch on every completion.
    std::vector<boost::asio::any_io_executor> connection_executors;
    // Operational messages (never secrets). Default: stderr.
    std::function<void(std::string_view)> log;
};

class server {
public:
    // Opens, binds and listens on `endpoint` (port 0 picks a free port). Throws
    // boost::system::system_error when that fails (start-up). `tls` and `handler` must outlive
    // the server and every run() coroutine.
    server(boost::asio::any_io_executor executor, boost::asio::ssl::context& tls,
           const boost::asio::ip::tcp::endpoint& endpoint, request_handler& handler,
           server_config config = {});
    ~server();
    server(const server&) = delete;
    server& operator=(const server&) = delete;

    // The bound endpoint, with the real port.
    boost::asio::ip::tcp::endpoint local_endpoint() const;

    // Accepts connections until stop(), then lets requests in flight finish (idle keep-alive
    // connections are closed at once), waits at most shutdown_grace, closes what is left, and
    // completes when no connection remains. Call once. Connections run as
    // server_config::connection_executors says; the coroutine itself may be spawned on any
    // executor.
    // Cancellation: use stop(); the coroutine does not react to cancellation slots.
    boost::asio::awaitable<void> run();

    // Thread-safe; any thread, any number of times.
    void stop();

    // Connections currently open. Thread-safe.
    std::size_t connection_count() const noexcept;

    struct state;

private:
    std::shared_ptr<state> state_;
};

} // namespace portal_auth
