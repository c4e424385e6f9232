// The HTTP/1.1 server-connection state machine: parsing, size limits, keep-alive and deadlines.
#include "http_connection.hpp"

#include <boost/asio/error.hpp>
#include <boost/assert.hpp>
#include <boost/beast/http/error.hpp>

#include <algorithm>
#include <cstdint>
#include <limits>

#include "response_serializer.hpp"

namespace portal_auth::detail {

namespace http = boost::beast::http;
using boost::system::error_code;
using clock = http_connection::clock;

namespace {

// `now + timeout`, where a timeout too long to add means no deadline rather than an overflow.
clock::time_point deadline_after(clock::time_point now, clock::duration timeout) {
    if (timeout >= clock::time_point::max() - now)
        return clock::time_point::max();
    return now + timeout;
}

// The answer to a request the parser rejected.
http::status status_for(error_code ec) {
    if (ec == http::error::header_limit)
        return http::status::request_header_fields_too_large;
    if (ec == http::error::body_limit)
        return http::status::payload_too_large;
    return http::status::bad_request;
}

} // namespace

http_connection::http_connection(const http_connection_limits& limits) : limits_(limits) {}

http_connection::action http_connection::next(clock::time_point now) {
    switch (phase_) {
    case phase::handshake:
        if (!deadline_) {
            if (shutting_down_) {
                enter_closed(false); // stopped before the handshake began: nothing to tell
                return close_action(now);
            }
            deadline_ = deadline_after(now, limits_.handshake_timeout);
        }
        return wait(action_type::handshake, now);

    case phase::idle:
        if (input_.size() == 0) {
            if (shutting_down_ || eof_) {
                enter_closed(true);
                return close_action(now);
            }
            if (!deadline_)
                deadline_ = deadline_after(now, limits_.idle_timeout);
            return wait(action_type::read, now);
        }
        // The first byte of a request (read now, or pipelined behind the last one).
        start_request();
        [[fallthrough]];

    case phase::reading:
        if (!deadline_)
            deadline_ = deadline_after(now, limits_.request_timeout);
        return parse(now);

    case phase::handling:
        return {action_type::handle};

    case phase::error_response:
        return {action_type::respond_error, clock::time_point::max(), error_status_};

    case phase::writing:
        if (!deadline_)
            deadline_ = deadline_after(now, limits_.request_timeout);
        return wait(action_type::write, now);

    case phase::closed:
        break;
    }
    return close_action(now);
}

void http_connection::handshake_done(error_code ec) {
    if (phase_ != phase::handshake)
        return;
    if (ec) {
        enter_closed(false); // no TLS session to close
        return;
    }
    phase_ = phase::idle;
    deadline_.reset();
}

boost::asio::mutable_buffer http_connection::prepare_input() {
    return input_.prepare(read_size);
}

void http_connection::commit_input(std::size_t n) {
    input_.commit(n);
}

void http_connection::input_eof() {
    if (phase_ == phase::idle || phase_ == phase::reading)
        eof_ = true;
}

void http_connection::input_error(error_code ec) {
    if (ec == boost::asio::error::eof) {
        input_eof();
        return;
    }
    fail(ec);
}

http_connection::http_request http_connection::take_request() {
    BOOST_ASSERT(phase_ == phase::handling || phase_ == phase::closed);
    if (phase_ != phase::handling || !parser_)
        return {};
    http_request request = parser_->release();
    parser_.reset();
    return request;
}

void http_connection::submit_response(http_response response) {
    BOOST_ASSERT(phase_ == phase::handling || phase_ == phase::error_response ||
                 phase_ == phase::closed);
    if (phase_ != phase::handling && phase_ != phase::error_response)
        return;
    // After an unparseable request the byte stream has no known next message; a request with
    // "Connection: close" or a peer that has gone must not be kept waiting either.
    const bool must_close =
        phase_ == phase::error_response || !request_keep_alive_ || eof_ || shutting_down_;
    if (must_close && response.keep_alive())
        response.keep_alive(false);
    close_after_write_ = !response.keep_alive();
    parser_.reset();
    output_.clear();
    serialize_response(response, output_);
    phase_ = phase::writing;
    deadline_.reset();
}

void http_connection::output_written(error_code ec) {
    if (phase_ != phase::writing)
        return;
    output_.clear();
    if (ec) {
        fail(ec);
        return;
    }
    if (close_after_write_) {
        enter_closed(true);
        return;
    }
    phase_ = phase::idle;
    deadline_.reset();
}

void http_connection::on_timeout() noexcept {
    // Final, whatever the phase. Also cuts short a close_notify exchange that overran its own
    // deadline.
    phase_ = phase::closed;
    close_notify_ = false;
    deadline_ = clock::time_point::max();
}

bool http_connection::begin_shutdown() noexcept {
    shutting_down_ = true;
    return phase_ == phase::handshake || phase_ == phase::closed ||
           (phase_ == phase::idle && input_.size() == 0);
}

void http_connection::start_request() {
    parser_.emplace();
    constexpr std::size_t max_header_limit = std::numeric_limits<std::uint32_t>::max();
    parser_->header_limit(
        static_cast<std::uint32_t>(std::min(limits_.header_limit, max_header_limit)));
    parser_->body_limit(limits_.body_limit);
    parser_->eager(true);
    phase_ = phase::reading;
    deadline_.reset();
    request_keep_alive_ = false;
}

http_connection::action http_connection::parse(clock::time_point now) {
    while (input_.size() > 0) {
        error_code ec;
        const std::size_t used = parser_->put(input_.data(), ec);
        input_.consume(used);
        if (parser_->is_done())
            return request_ready();
        if (ec == http::error::need_more) {
            // The parser caps the header itself, but not a chunk-size line or the trailers.
            if (input_.size() >= limits_.header_limit)
                return reject(http::error::header_limit);
            break;
        }
        if (ec)
            return reject(ec);
        if (used == 0)
            break;
    }
    if (eof_) {
        if (parser_->got_some()) {
            error_code ec;
            parser_->put_eof(ec);
            if (!ec && parser_->is_done())
                return request_ready();
        }
        // A partial request: its sender has gone, so there is nobody to answer.
        enter_closed(true);
        return close_action(now);
    }
    return wait(action_type::read, now);
}

http_connection::action http_connection::request_ready() {
    request_keep_alive_ = parser_->keep_alive();
    phase_ = phase::handling;
    deadline_.reset();
    return {action_type::handle};
}

http_connection::action http_connection::reject(error_code ec) {
    parser_.reset();
    error_status_ = status_for(ec);
    phase_ = phase::error_response;
    deadline_.reset();
    return {action_type::respond_error, clock::time_point::max(), error_status_};
}

http_connection::action http_connection::wait(action_type type, clock::time_point now) {
    if (now >= *deadline_) {
        on_timeout();
        return close_action(now);
    }
    return {type, *deadline_};
}

http_connection::action http_connection::close_action(clock::time_point now) {
    if (!deadline_)
        deadline_ = close_notify_ ? deadline_after(now, limits_.shutdown_timeout)
                                  : clock::time_point::max();
    return {action_type::close, *deadline_, http::status::unknown, close_notify_};
}

void http_connection::enter_closed(bool close_notify) noexcept {
    if (phase_ == phase::closed)
        return;
    phase_ = phase::closed;
    close_notify_ = close_notify;
    deadline_.reset();
    parser_.reset();
}

void http_connection::fail(error_code ec) noexcept {
    // A broken stream cannot carry close_notify; one whose operation was cancelled (by
    // begin_shutdown) still can.
    enter_closed(ec == boost::asio::error::operation_aborted);
}

} // namespace portal_auth::detail
