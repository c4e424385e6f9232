#include <portal_auth/tls_context.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <fstream>
#include <sstream>

namespace portal_auth {
namespace {

namespace ssl = boost::asio::ssl;

std::string openssl_reason() {
    unsigned long code = ERR_peek_last_error();
    ERR_clear_error();
    if (code == 0)
        return "unknown OpenSSL error";
    const char* reason = ERR_reason_error_string(code);
    return reason ? reason : "unknown OpenSSL error";
}

boost::system::result<ssl::context> base_context() {
    ssl::context ctx{ssl::context::tls_server};
    SSL_CTX* native = ctx.native_handle();
    SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
    SSL_CTX_set_options(native, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                    SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_SINGLE_ECDH_USE);
    // TLS 1.2: forward secrecy and AEAD only. TLS 1.3 suites are all AEAD.
    if (SSL_CTX_set_cipher_list(native, "ECDHE+AESGCM:ECDHE+CHACHA20") != 1)
        return boost::system::error_code(static_cast<int>(ERR_get_error()),
                                         boost::asio::error::get_ssl_category());
    SSL_CTX_set1_groups_list(native, "X25519:P-256:P-384");
    // Resumption by tickets (stateless); the cache stays off so nothing grows per client.
    SSL_CTX_set_session_cache_mode(native, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(native, 1);
    return ctx;
}

std::string read_file(const std::string& path, bool& ok) {
    std::ifstream in(path, std::ios::binary);
    ok = static_cast<bool>(in);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

} // namespace

boost::system::result<ssl::context> make_tls_context_from_pem(const std::string& cert_pem,
                                                              const std::string& key_pem,
                                                              std::string& error_detail) {
    auto ctx = base_context();
    if (!ctx) {
        error_detail = "cannot set up TLS: " + openssl_reason();
        return ctx.error();
    }
    boost::system::error_code ec;
    ctx->use_certificate_chain(boost::asio::buffer(cert_pem), ec);
    if (ec) {
        error_detail = "certificate: " + ec.message();
        return ec;
    }
    ctx->use_private_key(boost::asio::buffer(key_pem), ssl::context::pem, ec);
    if (ec) {
        error_detail = "private key: " + ec.message();
        return ec;
    }
    if (SSL_CTX_check_private_key(ctx->native_handle()) != 1) {
        error_detail = "private key does not match the certificate";
        return boost::system::error_code(static_cast<int>(ERR_get_error()),
                                         boost::asio::error::get_ssl_category());
    }
    return ctx;
}

boost::system::result<ssl::context> make_tls_context(const std::string& cert_file,
                                                     const std::string& key_file,
                                                     std::string& error_detail) {
    bool ok = false;
    std::string cert = read_file(cert_file, ok);
    if (!ok) {
        error_detail = cert_file + ": cannot read the certificate file";
        return boost::system::error_code(errno, boost::system::generic_category());
    }
    std::string key = read_file(key_file, ok);
    if (!ok) {
        error_detail = key_file + ": cannot read the private key file";
        return boost::system::error_code(errno, boost::system::generic_category());
    }
    auto ctx = make_tls_context_from_pem(cert, key, error_detail);
    if (!ctx) {
        // Name the file the problem is in.
        if (error_detail.starts_with("certificate"))
            error_detail = cert_file + ": " + error_detail;
        else
            error_detail = key_file + ": " + error_detail;
    }
    return ctx;
}

} // namespace portal_auth
