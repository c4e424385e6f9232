#include <portal_auth/tls_context.hpp>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include <array>
#include <chrono>
#include <cstring>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>

namespace portal_auth {
namespace {

namespace ssl = boost::asio::ssl;

// Session-ticket keys, made in memory and rotated every 12 hours: a ticket is honoured for at
// most one rotation after its key stopped issuing (so no ticket key lives beyond a day), and a
// stolen key never opens older sessions. Keys never leave the process.
class ticket_key_ring {
public:
    struct key {
        std::array<unsigned char, 16> name{};
        std::array<unsigned char, 32> aes{};
        std::array<unsigned char, 32> hmac{};
    };
    static constexpr auto rotation_period = std::chrono::hours(12);

    ticket_key_ring() { rotate(std::chrono::steady_clock::now()); }
    ~ticket_key_ring() {
        OPENSSL_cleanse(&current_, sizeof current_);
        OPENSSL_cleanse(&previous_, sizeof previous_);
    }

    key current() {
        std::lock_guard lock(mutex_);
        auto now = std::chrono::steady_clock::now();
        if (now - created_ >= rotation_period)
            rotate(now);
        return current_;
    }

    // The key with this name and whether it is the current one.
    std::optional<std::pair<key, bool>> find(const unsigned char* name) {
        std::lock_guard lock(mutex_);
        if (CRYPTO_memcmp(name, current_.name.data(), 16) == 0)
            return std::pair{current_, true};
        if (has_previous_ && CRYPTO_memcmp(name, previous_.name.data(), 16) == 0)
            return std::pair{previous_, false};
        return std::nullopt;
    }

private:
    void rotate(std::chrono::steady_clock::time_point now) {
        previous_ = current_;
        has_previous_ = created_ != std::chrono::steady_clock::time_point{};
        if (RAND_bytes(current_.name.data(), 16) != 1 || RAND_bytes(current_.aes.data(), 32) != 1 ||
            RAND_bytes(current_.hmac.data(), 32) != 1)
            throw std::runtime_error("RAND_bytes failed for a session ticket key");
        created_ = now;
    }

    std::mutex mutex_;
    key current_;
    key previous_;
    bool has_previous_ = false;
    std::chrono::steady_clock::time_point created_{};
};

void free_key_ring(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
    delete static_cast<ticket_key_ring*>(ptr);
}

int key_ring_index() {
    static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, &free_key_ring);
    return index;
}

int set_ticket_mac(EVP_MAC_CTX* mac, ticket_key_ring::key& k) {
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, k.hmac.data(), k.hmac.size()),
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_end(),
    };
    return EVP_MAC_CTX_set_params(mac, params);
}

int ticket_key_callback(SSL* ssl, unsigned char key_name[16], unsigned char* iv,
                        EVP_CIPHER_CTX* cipher, EVP_MAC_CTX* mac, int encrypt) {
    auto* ring =
        static_cast<ticket_key_ring*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), key_ring_index()));
    if (!ring)
        return -1;
    if (encrypt) {
        auto k = ring->current();
        std::memcpy(key_name, k.name.data(), 16);
        if (RAND_bytes(iv, EVP_MAX_IV_LENGTH) != 1 ||
            EVP_EncryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, k.aes.data(), iv) != 1 ||
            set_ticket_mac(mac, k) != 1)
            return -1;
        return 1;
    }
    auto found = ring->find(key_name);
    if (!found)
        return 0; // unknown or retired key: full handshake
    auto& [k, is_current] = *found;
    if (EVP_DecryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, k.aes.data(), iv) != 1 ||
        set_ticket_mac(mac, k) != 1)
        return -1;
    // 2: valid, and issue a fresh ticket. Under TLS 1.3 always, as RFC 8446 (C.4) has clients
    // use a ticket once: OpenSSL sends none after a resumption answered 1, and such a client's
    // next connection is a full handshake.
    if (!is_current || SSL_version(ssl) == TLS1_3_VERSION)
        return 2;
    return 1;
}

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
    SSL_CTX_set_ex_data(native, key_ring_index(), new ticket_key_ring());
    SSL_CTX_set_tlsext_ticket_key_evp_cb(native, &ticket_key_callback);
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
