// Non-blocking OpenSSL calls on the socket's descriptor, with readiness waits in between.
#include "tls_socket_stream.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <openssl/bio.h>
#include <openssl/err.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <new>

#include <sys/socket.h>

namespace portal_auth::detail {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

// OpenSSL's socket BIO writes with write(2), which raises SIGPIPE when the peer has gone: the
// default action ends the process (seen under wrk and openssl s_client when a client closed
// before the server's close_notify). This method is the socket BIO with send(MSG_NOSIGNAL) for
// writes; reads and controls are the socket BIO's own. The library handles no signals, so it
// may not rely on the application ignoring SIGPIPE.
int write_without_sigpipe(BIO* bio, const char* data, int size) {
    int fd = -1;
    BIO_get_fd(bio, &fd);
    errno = 0;
    const ssize_t written = ::send(fd, data, static_cast<std::size_t>(size), MSG_NOSIGNAL);
    BIO_clear_retry_flags(bio);
    if (written <= 0 && BIO_sock_should_retry(static_cast<int>(written)))
        BIO_set_retry_write(bio);
    return static_cast<int>(written);
}

int puts_without_sigpipe(BIO* bio, const char* text) {
    return write_without_sigpipe(bio, text, static_cast<int>(std::strlen(text)));
}

const BIO_METHOD* socket_method_without_sigpipe() {
    static const BIO_METHOD* method = [] {
        const BIO_METHOD* socket = BIO_s_socket();
        BIO_METHOD* m =
            BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR,
                         "socket without SIGPIPE");
        if (!m || !BIO_meth_set_write(m, write_without_sigpipe) ||
            !BIO_meth_set_puts(m, puts_without_sigpipe) ||
            !BIO_meth_set_read(m, BIO_meth_get_read(socket)) ||
            !BIO_meth_set_ctrl(m, BIO_meth_get_ctrl(socket)) ||
            !BIO_meth_set_create(m, BIO_meth_get_create(socket)) ||
            !BIO_meth_set_destroy(m, BIO_meth_get_destroy(socket)))
            throw std::bad_alloc();
        return m;
    }();
    return method;
}

} // namespace

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
    BIO* bio = BIO_new(socket_method_without_sigpipe());
    if (ec || !bio)
        throw std::bad_alloc();
    BIO_set_fd(bio, static_cast<int>(socket_.native_handle()), BIO_NOCLOSE);
    SSL_set_bio(ssl_.get(), bio, bio); // the SSL object owns the BIO from here
    SSL_set_accept_state(ssl_.get());
}

asio::awaitable<std::pair<error_code, std::size_t>> tls_socket_stream::run(operation op, void* data,
                                                                           std::size_t size) {
    constexpr auto await_tuple = asio::as_tuple(asio::use_awaitable);
    const int length = static_cast<int>(std::min<std::size_t>(size, INT_MAX));
    // After a response the client's next request has usually not arrived: waiting for
    // readiness first saves the read(2) that would only say EAGAIN. The wait completes at once
    // when the bytes are already there; OpenSSL may also hold a whole record already.
    if (op == operation::read && wrote_last_ && SSL_has_pending(ssl_.get()) == 0) {
        auto [ec] = co_await socket_.async_wait(asio::socket_base::wait_read, await_tuple);
        if (ec)
            co_return std::pair{ec, std::size_t{0}};
    }
    wrote_last_ = op == operation::write;
    for (;;) {
        // SSL_get_error needs an empty error queue; clearing a clean one is not free.
        if (ERR_peek_error() != 0)
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
        auto [ec, n] =
            co_await run(operation::write, const_cast<char*>(bytes.data()), bytes.size());
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
