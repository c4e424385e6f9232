// A sans-io HTTP/1.1 server connection: bytes and events in, the driver's next step out.
#pragma once

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace portal_auth::detail {

struct http_connection_limits {
    std::size_t header_limit = 8 * 1024; // larger: 431
    std::size_t body_limit = 16 * 1024;  // larger: 413
    std::chrono::steady_clock::duration handshake_timeout = std::chrono::seconds(10);
    // From the first byte of a request to its last; writing the response gets as long again.
    std::chrono::steady_clock::duration request_timeout = std::chrono::seconds(10);
    // Waiting for the first byte of the next request on a keep-alive connection.
    std::chrono::steady_clock::duration idle_timeout = std::chrono::seconds(60);
    // The TLS close_notify exchange at the end.
    std::chrono::steady_clock::duration shutdown_timeout = std::chrono::seconds(2);
};

// One connection from the TLS handshake to its close, without sockets or timers: the driver
// performs the I/O that next() asks for and reports the outcome through the matching call.
// Requests are parsed straight from the input buffer, each by a fresh parser; pipelined requests
// are answered in order without another read. Not thread-safe: every call on the connection's
// executor.
class http_connection {
public:
    using clock = std::chrono::steady_clock;
    // The same types as portal_auth::http_request and http_response.
    using http_request = boost::beast::http::request<boost::beast::http::string_body>;
    using http_response = boost::beast::http::response<boost::beast::http::string_body>;

    // Bytes asked of the transport per read: a whole request of the usual size in one call.
    static constexpr std::size_t read_size = 4096;

    enum class action_type {
        handshake,     // TLS handshake, then handshake_done()
        read,          // read into prepare_input(), then commit_input() and/or input_eof/_error()
        handle,        // take_request(), then submit_response() with its answer
        respond_error, // unparseable request: submit_response() a problem with `status`
        write,         // write all of output(), then output_written()
        close,         // TLS shutdown when close_notify, then close the socket; the end
    };

    struct action {
        action_type type;
        // When the wait on the peer that this action starts must have ended (the driver's
        // watchdog then calls on_timeout()); max() where nothing is awaited.
        clock::time_point deadline = clock::time_point::max();
        // respond_error: the status of the answer.
        boost::beast::http::status status = boost::beast::http::status::unknown;
        // close: send close_notify first; not after a timeout or a failed handshake or stream.
        bool close_notify = false;
    };

    explicit http_connection(const http_connection_limits& limits = {});

    // What the driver does next. `now` starts the deadline of a wait that begins here, and a
    // wait whose deadline has already passed becomes a close.
    action next(clock::time_point now);

    void handshake_done(boost::system::error_code ec = {});

    // Where a read puts its bytes (read_size of them); valid until the next call here.
    boost::asio::mutable_buffer prepare_input();
    void commit_input(std::size_t n);
    // The peer closed its side (TLS close_notify received).
    void input_eof();
    // asio::error::eof counts as input_eof().
    void input_error(boost::system::error_code ec);
    // Received bytes not yet parsed; bounded by header_limit + read_size.
    std::size_t input_size() const noexcept { return input_.size(); }

    // The request of the handle action; call once.
    http_request take_request();

    // Serializes the answer (prepare_payload() done) into output(). Keep-alive is switched off
    // in it when the connection must close: error answer, request without keep-alive, peer EOF,
    // shutdown. The connection stays open after the write only if the answer keeps it alive.
    void submit_response(http_response response);

    std::string_view output() const noexcept { return output_; }
    void output_written(boost::system::error_code ec = {});

    // The deadline of the current wait passed; call before cancelling the operation, so that
    // its completion is taken for the timeout it is.
    void on_timeout() noexcept;

    // The server is stopping: a request in progress is finished and answered without keep-alive,
    // and an idle connection closes. Returns true when the connection is idle (handshake, or
    // waiting for the first byte of a request): the driver cancels the pending operation.
    bool begin_shutdown() noexcept;

private:
    enum class phase { handshake, idle, reading, handling, error_response, writing, closed };
    using request_parser = boost::beast::http::request_parser<boost::beast::http::string_body>;

    void start_request();
    action parse(clock::time_point now);
    action request_ready();
    action reject(boost::system::error_code ec);
    action wait(action_type type, clock::time_point now);
    action close_action(clock::time_point now);
    void enter_closed(bool close_notify) noexcept;
    void fail(boost::system::error_code ec) noexcept;

    http_connection_limits limits_;
    phase phase_ = phase::handshake;
    // Unset until next() starts the wait of the current phase.
    std::optional<clock::time_point> deadline_;
    boost::beast::flat_buffer input_;
    std::optional<request_parser> parser_; // fresh per request: a reused one rejects the second
    std::string output_;                   // reused, so responses keep its capacity
    boost::beast::http::status error_status_ = boost::beast::http::status::unknown;
    bool request_keep_alive_ = false;
    bool close_after_write_ = false;
    bool eof_ = false;
    bool shutting_down_ = false;
    bool close_notify_ = false;
};

} // namespace portal_auth::detail
