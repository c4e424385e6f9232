// One pipelined connection to Redis: hiredis's async API speaks the protocol, Asio waits for the
// socket. Everything that touches the hiredis context runs on one strand; callers on any
// executor await exec(), which completes on their executor.
#pragma once

#include <portal_auth/error.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/system/result.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

struct redisAsyncContext;

namespace portal_auth::detail {

// A reply, copied out of hiredis's reply tree.
struct redis_value {
    enum class kind { nil, integer, string, status, error, array };
    kind type = kind::nil;
    long long integer = 0;
    std::string str; // string, status and error replies
    std::vector<redis_value> elements;

    bool is_nil() const noexcept { return type == kind::nil; }
    bool is_error() const noexcept { return type == kind::error; }
};

using redis_command = std::vector<std::string>;

struct redis_connection_config {
    std::string host;
    unsigned short port = 6379;
    int db = 0;
    std::string password;
    std::chrono::milliseconds timeout{500}; // connecting, and each exec()
    // Sent after AUTH and SELECT on every (re)connection, before anything else (SCRIPT LOAD).
    std::vector<redis_command> on_connect;
};

class redis_connection : public std::enable_shared_from_this<redis_connection> {
public:
    using clock = std::chrono::steady_clock;

    redis_connection(boost::asio::any_io_executor ex, redis_connection_config config);
    ~redis_connection();
    redis_connection(const redis_connection&) = delete;
    redis_connection& operator=(const redis_connection&) = delete;

    // Starts the connect loop: connects, and after a lost connection reconnects with backoff
    // (100 ms doubling to 2 s) until stop().
    void start();
    // Ends the loop and closes the connection; pending commands complete with
    // store_unavailable. Returns at once; the strand finishes the work.
    void stop();

    // Sends the commands back to back (one round trip) and returns their replies in order.
    // errc::store_unavailable when not connected and set up (at once), when the connection is lost,
    // or when the replies have not all arrived by `deadline`. Error replies are values.
    boost::asio::awaitable<boost::system::result<std::vector<redis_value>>>
    exec(std::vector<redis_command> commands, clock::time_point deadline);

private:
    struct socket_watch;
    struct pending;

    static boost::asio::awaitable<boost::system::result<std::vector<redis_value>>>
    exec_on_strand(std::shared_ptr<redis_connection> self, std::vector<redis_command> commands,
                   clock::time_point deadline);
    static boost::asio::awaitable<void> keep_connected(std::shared_ptr<redis_connection> self);
    boost::asio::awaitable<bool> connect_once();
    void send_setup();
    void close_context();

    // hiredis hooks (ev.addRead ... ev.cleanup) and callbacks.
    static void hook_add_read(void* self);
    static void hook_del_read(void* self);
    static void hook_add_write(void* self);
    static void hook_del_write(void* self);
    static void hook_cleanup(void* self);
    static void on_connect(const redisAsyncContext* ctx, int status);
    static void on_disconnect(const redisAsyncContext* ctx, int status);
    static void on_reply(redisAsyncContext* ctx, void* reply, void* privdata);
    static void on_setup_reply(redisAsyncContext* ctx, void* reply, void* privdata);
    void arm(std::shared_ptr<socket_watch> watch, bool write);

    boost::asio::strand<boost::asio::any_io_executor> strand_;
    redis_connection_config config_;
    redisAsyncContext* ctx_ = nullptr;
    std::shared_ptr<socket_watch> watch_;
    bool connected_ = false;
    bool ready_ = false;            // connected, and AUTH, SELECT and SCRIPT LOAD succeeded
    std::size_t setup_pending_ = 0; // setup replies still to come
    bool stopping_ = false;
    boost::asio::steady_timer state_changed_; // cancelled on connect, disconnect and stop
    boost::asio::steady_timer backoff_;
};

} // namespace portal_auth::detail
