// TLS posture over real sockets: protocol floor, suites, resumption by rotated ticket keys.
#include <boost/asio/connect.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/test/unit_test.hpp>

#include <openssl/ssl.h>

#include "test_support.hpp"

using namespace portal_auth;
using namespace portal_auth::test;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

struct handshake_result {
    bool ok = false;
    bool resumed = false;
    std::string version;
    SSL_SESSION* session = nullptr; // owned by the caller when set
};

// One connection with the given client settings; a GET /healthz when the handshake succeeds.
handshake_result connect_with(unsigned short port, int min_version, int max_version,
                              const char* tls12_ciphers, SSL_SESSION* resume = nullptr) {
    asio::io_context ioc;
    asio::ssl::context ctx(asio::ssl::context::tls_client);
    ctx.add_certificate_authority(asio::buffer(shared_pki().cert_pem));
    ctx.set_verify_mode(asio::ssl::verify_peer);
    SSL_CTX_set_min_proto_version(ctx.native_handle(), min_version);
    SSL_CTX_set_max_proto_version(ctx.native_handle(), max_version);
    SSL_CTX_set_security_level(ctx.native_handle(), 0); // let old protocols be offered
    if (tls12_ciphers)
        SSL_CTX_set_cipher_list(ctx.native_handle(), tls12_ciphers);
    asio::ssl::stream<beast::tcp_stream> stream(ioc, ctx);
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(10));
    beast::get_lowest_layer(stream).connect(
        tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    if (resume)
        SSL_set_session(stream.native_handle(), resume);
    handshake_result result;
    boost::system::error_code ec;
    stream.handshake(asio::ssl::stream_base::client, ec);
    if (ec)
        return result;
    result.ok = true;
    result.resumed = SSL_session_reused(stream.native_handle()) == 1;
    result.version = SSL_get_version(stream.native_handle());
    http::request<http::string_body> req{http::verb::get, "/healthz", 11};
    req.set(http::field::host, "127.0.0.1");
    req.keep_alive(false);
    http::write(stream, req);
    beast::flat_buffer buffer;
    http::response<http::string_body> res;
    http::read(stream, buffer, res); // TLS 1.3 tickets arrive with the first records read
    result.session = SSL_get1_session(stream.native_handle());
    stream.shutdown(ec); // the server's close_notify completes this
    return result;
}

std::string ticket_of(const SSL_SESSION* session) {
    const unsigned char* bytes = nullptr;
    std::size_t size = 0;
    SSL_SESSION_get0_ticket(session, &bytes, &size);
    std::string hex;
    for (std::size_t i = 0; i < size; ++i) {
        static constexpr char digits[] = "0123456789abcdef";
        hex.push_back(digits[bytes[i] >> 4]);
        hex.push_back(digits[bytes[i] & 15]);
    }
    return hex; // readable in a failure message
}

} // namespace

BOOST_AUTO_TEST_SUITE(tls_posture)

BOOST_AUTO_TEST_CASE(only_tls12_and_tls13) {
    running_server srv;
    for (int v : {TLS1_VERSION, TLS1_1_VERSION}) {
        BOOST_TEST_CONTEXT("version " << v) {
            auto r = connect_with(srv.port(), v, v, nullptr);
            BOOST_TEST(!r.ok);
        }
    }
    auto tls12 = connect_with(srv.port(), TLS1_2_VERSION, TLS1_2_VERSION, nullptr);
    BOOST_TEST(tls12.ok);
    BOOST_TEST(tls12.version == "TLSv1.2");
    SSL_SESSION_free(tls12.session);
    auto tls13 = connect_with(srv.port(), TLS1_3_VERSION, TLS1_3_VERSION, nullptr);
    BOOST_TEST(tls13.ok);
    BOOST_TEST(tls13.version == "TLSv1.3");
    SSL_SESSION_free(tls13.session);
}

BOOST_AUTO_TEST_CASE(tls12_needs_ecdhe_and_aead) {
    running_server srv;
    for (const char* weak : {"AES128-SHA", "AES256-GCM-SHA384", "ECDHE-ECDSA-AES128-SHA",
                             "DHE-RSA-AES128-GCM-SHA256"}) {
        BOOST_TEST_CONTEXT(weak) {
            BOOST_TEST(!connect_with(srv.port(), TLS1_2_VERSION, TLS1_2_VERSION, weak).ok);
        }
    }
    auto good =
        connect_with(srv.port(), TLS1_2_VERSION, TLS1_2_VERSION, "ECDHE-ECDSA-AES128-GCM-SHA256");
    BOOST_TEST(good.ok);
    SSL_SESSION_free(good.session);
}

BOOST_AUTO_TEST_CASE(sessions_resume_with_tickets) {
    running_server srv;
    for (int v : {TLS1_2_VERSION, TLS1_3_VERSION}) {
        BOOST_TEST_CONTEXT("version " << v) {
            auto first = connect_with(srv.port(), v, v, nullptr);
            BOOST_TEST_REQUIRE(first.ok);
            BOOST_TEST(!first.resumed);
            BOOST_TEST_REQUIRE(first.session != nullptr);
            auto second = connect_with(srv.port(), v, v, nullptr, first.session);
            BOOST_TEST(second.ok);
            BOOST_TEST(second.resumed);
            // A resumption hands out a fresh ticket under TLS 1.3, where clients use a ticket
            // once (RFC 8446, C.4); a client that resumes with what its last, resumed,
            // connection left it resumes again.
            BOOST_TEST_REQUIRE(second.session != nullptr);
            if (v == TLS1_3_VERSION)
                BOOST_TEST(ticket_of(second.session) != ticket_of(first.session));
            auto third = connect_with(srv.port(), v, v, nullptr, second.session);
            BOOST_TEST(third.ok);
            BOOST_TEST(third.resumed);
            SSL_SESSION_free(first.session);
            SSL_SESSION_free(second.session);
            SSL_SESSION_free(third.session);
        }
    }
    // Another server (its own ticket keys) cannot open these tickets: full handshake.
    running_server other;
    auto first = connect_with(srv.port(), TLS1_3_VERSION, TLS1_3_VERSION, nullptr);
    auto elsewhere =
        connect_with(other.port(), TLS1_3_VERSION, TLS1_3_VERSION, nullptr, first.session);
    BOOST_TEST(elsewhere.ok);
    BOOST_TEST(!elsewhere.resumed);
    SSL_SESSION_free(first.session);
    SSL_SESSION_free(elsewhere.session);
}

BOOST_AUTO_TEST_SUITE_END()
