// TLS straight on the socket, as nginx does it: OpenSSL reads and writes the descriptor itself
// (a socket BIO), non-blocking, and the coroutine waits for readiness when it must. No memory-BIO
// pair between OpenSSL and the socket, so no extra copy per record and no idle buffers.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/system/error_code.hpp>

#include <openssl/ssl.h>

#include <cstddef>
#include <memory>
#include <string_view>
#include <utility>

namespace portal_auth::detail {

// The server side of one TLS connection. Not thread-safe: every call on the socket's executor,
// one operation at a time. Closing or cancelling the socket ends a pending wait with its error.
class tls_socket_stream {
public:
    // Takes over the socket (made non-blocking). Throws std::bad_alloc when OpenSSL cannot make
    // the connection object.
    tls_socket_stream(boost::asio::ip::tcp::socket socket, boost::asio::ssl::context& tls);
    tls_socket_stream(const tls_socket_stream&) = delete;
    tls_socket_stream& operator=(const tls_socket_stream&) = delete;

    boost::asio::ip::tcp::socket& socket() noexcept { return socket_; }
    SSL* native_handle() noexcept { return ssl_.get(); }

    boost::asio::awaitable<boost::system::error_code> handshake();

    // At least one byte, or an error: asio::error::eof after the peer's close_notify,
    // ssl::error::stream_truncated when the peer closed without one.
    boost::asio::awaitable<std::pair<boost::system::error_code, std::size_t>>
    read_some(boost::asio::mutable_buffer buffer);

    // All of `bytes`, or an error.
    boost::asio::awaitable<boost::system::error_code> write(std::string_view bytes);

    // Sends close_notify without waiting for the peer's.
    boost::asio::awaitable<boost::system::error_code> shutdown();

private:
    enum class operation { handshake, read, write, shutdown };
    // Runs one OpenSSL call until it makes progress, waiting on the socket as it asks.
    boost::asio::awaitable<std::pair<boost::system::error_code, std::size_t>>
    run(operation op, void* data, std::size_t size);

    struct ssl_deleter {
        void operator()(SSL* ssl) const noexcept { SSL_free(ssl); }
    };
    boost::asio::ip::tcp::socket socket_;
    std::unique_ptr<SSL, ssl_deleter> ssl_;
    bool wrote_last_ = false; // the last operation was a write (a response went out)
};

} // namespace portal_auth::detail
