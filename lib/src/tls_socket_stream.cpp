// Non-blocking OpenSSL calls on the socket's descriptor, with readiness waits in between.
#include "tls_socket_stream.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <openssl/err.h>

#include <cerrno>
#include <climits>
#include <new>

namespace portal_auth::detail {

namespace asio = boost::asio;
using boost::system::error_code;

tls_socket_stream::tls_socket_stream(asio::ip::tcp::socket socket, asio::ssl::context& tls)
    : socket_(std::move(socket)), ssl_(SSL_new(tls.native_handle())) {
    if (!ssl_)
        throw std::bad_alloc();
    // Idle connections give their record buffers back; partial writes let write() resume from
    // where a full socket stopped it.
    SSL_set_mode(ssl_.get(), SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                                 SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    error_code ec;
    socket_.non_blocking(true, ec);
    if (ec || SSL_set_fd(ssl_.get(), static_cast<int>(socket_.native_handle())) != 1)
        throw std::bad_alloc();
    SSL_set_accept_state(ssl_.get());
}

asio::awaitable<std::pair<error_code, std::size_t>>
tls_socket_stream::run(operation op, void* data, std::size_t size) {
    constexpr auto await_tuple = asio::as_tuple(asio::use_awaitable);
    const int length = static_cast<int>(std::min<std::size_t>(size, INT_MAX));
    for (;;) {
        ERR_clear_error();
        errno = 0;
        int result = 0;
        switch (op) {
        case operation::handshake:
            result = SSL_do_handshake(ssl_.get());
            break;
        case operation::read:
            result = SSL_read(ssl_.get(), data, length);
            break;
        case operation::write:
            result = SSL_write(ssl_.get(), data, length);
            break;
        case operation::shutdown:
            result = SSL_shutdown(ssl_.get());
            break;
        }
        if (result > 0)
            co_return std::pair{error_code{}, static_cast<std::size_t>(result)};
        const int reason = SSL_get_error(ssl_.get(), result);
        if (reason == SSL_ERROR_WANT_READ || reason == SSL_ERROR_WANT_WRITE) {
            const auto wait = reason == SSL_ERROR_WANT_READ ? asio::socket_base::wait_read
                                                            : asio::socket_base::wait_write;
            auto [ec] = co_await socket_.async_wait(wait, await_tuple);
            if (ec)
                co_return std::pair{ec, std::size_t{0}};
            continue;
        }
        if (reason == SSL_ERROR_ZERO_RETURN)
            co_return std::pair{error_code(asio::error::eof), std::size_t{0}};
        const unsigned long error = ERR_get_error();
        if (reason == SSL_ERROR_SYSCALL && error == 0) {
            // EOF without close_notify, or a socket error.
            error_code ec = errno == 0 ? error_code(asio::ssl::error::stream_truncated)
                                       : error_code(errno, boost::system::system_category());
            co_return std::pair{ec, std::size_t{0}};
        }
        if (ERR_GET_REASON(error) == SSL_R_UNEXPECTED_EOF_WHILE_READING)
            co_return std::pair{error_code(asio::ssl::error::stream_truncated), std::size_t{0}};
        co_return std::pair{error_code(static_cast<int>(error), asio::error::get_ssl_category()),
                            std::size_t{0}};
    }
}

asio::awaitable<error_code> tls_socket_stream::handshake() {
    auto [ec, n] = co_await run(operation::handshake, nullptr, 0);
    co_return ec;
}

asio::awaitable<std::pair<error_code, std::size_t>>
tls_socket_stream::read_some(asio::mutable_buffer buffer) {
    auto result = co_await run(operation::read, buffer.data(), buffer.size());
    co_return result;
}

asio::awaitable<error_code> tls_socket_stream::write(std::string_view bytes) {
    while (!bytes.empty()) {
        auto [ec, n] = co_await run(operation::write, const_cast<char*>(bytes.data()), bytes.size());
        if (ec)
            co_return ec;
        bytes.remove_prefix(n);
    }
    co_return error_code{};
}

asio::awaitable<error_code> tls_socket_stream::shutdown() {
    // As if the peer's close_notify had come: SSL_shutdown completes once ours is written.
    SSL_set_shutdown(ssl_.get(), SSL_RECEIVED_SHUTDOWN);
    auto [ec, n] = co_await run(operation::shutdown, nullptr, 0);
    co_return ec;
}

} // namespace portal_auth::detail
