// A complete Asio application embedding portal-auth: its own io_context, its own ssl::context,
// the in-memory store, a two-thread hashing pool, and a graceful stop on SIGINT/SIGTERM through
// per-operation cancellation of server::run().
//   usage: portal-auth-embed [CERT.pem KEY.pem] [DIRECTORY.json]
// With no arguments nothing has to exist beforehand: the certificate is a self-signed one for
// 127.0.0.1 and localhost made in memory at start (clients skip verification, as curl -k does,
// or trust the certificate the server presents), the directory is directory.json beside this
// file, and the token signing key is random, made in memory at each start.
#include <portal_auth/auth_service.hpp>
#include <portal_auth/directory.hpp>
#include <portal_auth/memory_store.hpp>
#include <portal_auth/password_verifier.hpp>
#include <portal_auth/request_handler.hpp>
#include <portal_auth/server.hpp>
#include <portal_auth/tls_context.hpp>
#include <portal_auth/token_signer.hpp>
#include <portal_auth/version.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/system/result.hpp>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <csignal>
#include <cstddef>
#include <exception>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <memory>
#include <string>
#include <utility>
#include <vector>

// Set by CMakeLists.txt to the directory.json beside this file. A build by hand passes
// -DPORTAL_AUTH_EMBED_DIRECTORY='"/path/to/directory.json"' or runs the program from here.
#ifndef PORTAL_AUTH_EMBED_DIRECTORY
#define PORTAL_AUTH_EMBED_DIRECTORY "directory.json"
#endif

namespace asio = boost::asio;

namespace {

// OpenSSL handles, each released by its own free function.
template <auto free_function> struct openssl_deleter {
    template <class Handle> void operator()(Handle* handle) const noexcept {
        free_function(handle);
    }
};
using bignum_ptr = std::unique_ptr<BIGNUM, openssl_deleter<&BN_free>>;
using bio_ptr = std::unique_ptr<BIO, openssl_deleter<&BIO_free>>;
using pkey_ptr = std::unique_ptr<EVP_PKEY, openssl_deleter<&EVP_PKEY_free>>;
using x509_ptr = std::unique_ptr<X509, openssl_deleter<&X509_free>>;
using extension_ptr = std::unique_ptr<X509_EXTENSION, openssl_deleter<&X509_EXTENSION_free>>;

// The error OpenSSL queued for the call that just failed; never a value that reads as success.
boost::system::error_code openssl_error() {
    const unsigned long code = ERR_get_error();
    ERR_clear_error();
    if (code == 0)
        return asio::ssl::error::make_error_code(asio::ssl::error::unexpected_result);
    return {static_cast<int>(code), asio::error::get_ssl_category()};
}

std::string bio_text(BIO* bio) {
    char* data = nullptr;
    const long size = BIO_get_mem_data(bio, &data);
    return std::string(data, static_cast<std::size_t>(size));
}

struct pem_pair {
    std::string cert;
    std::string key;
};

// A P-256 key and a self-signed certificate for 127.0.0.1 and localhost, valid from an hour ago
// for a day.
boost::system::result<pem_pair> make_self_signed() {
    const pkey_ptr key(EVP_EC_gen("P-256"));
    const x509_ptr cert(X509_new());
    const bignum_ptr serial(BN_new());
    if (!key || !cert || !serial)
        return openssl_error();
    X509_NAME* name = X509_get_subject_name(cert.get());
    const auto* common_name = reinterpret_cast<const unsigned char*>("localhost");
    if (X509_set_version(cert.get(), X509_VERSION_3) != 1 ||
        BN_rand(serial.get(), 64, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY) != 1 ||
        !BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get())) ||
        !X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) ||
        !X509_gmtime_adj(X509_getm_notAfter(cert.get()), 24 * 3600) ||
        X509_set_pubkey(cert.get(), key.get()) != 1 ||
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, common_name, -1, -1, 0) != 1 ||
        X509_set_issuer_name(cert.get(), name) != 1)
        return openssl_error();
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, cert.get(), cert.get(), nullptr, nullptr, 0);
    for (auto [nid, value] : {std::pair{NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1"},
                              std::pair{NID_basic_constraints, "critical,CA:FALSE"},
                              std::pair{NID_key_usage, "critical,digitalSignature"},
                              std::pair{NID_ext_key_usage, "serverAuth"}}) {
        const extension_ptr extension(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
        if (!extension || X509_add_ext(cert.get(), extension.get(), -1) != 1)
            return openssl_error();
    }
    if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0)
        return openssl_error();

    const bio_ptr cert_bio(BIO_new(BIO_s_mem()));
    const bio_ptr key_bio(BIO_new(BIO_s_mem()));
    if (!cert_bio || !key_bio || !PEM_write_bio_X509(cert_bio.get(), cert.get()) ||
        !PEM_write_bio_PrivateKey(key_bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr))
        return openssl_error();
    return pem_pair{bio_text(cert_bio.get()), bio_text(key_bio.get())};
}

boost::system::result<asio::ssl::context> self_signed_tls_context(std::string& error_detail) {
    auto pem = make_self_signed();
    if (!pem) {
        error_detail = "cannot make a self-signed certificate: " + pem.error().message();
        return pem.error();
    }
    return portal_auth::make_tls_context_from_pem(pem->cert, pem->key, error_detail);
}

} // namespace

int main(int argc, char** argv) {
    const std::vector<std::string> args(argv + (argc > 0 ? 1 : 0), argv + argc);
    if (args.size() > 3) {
        std::cerr << "usage: " << argv[0] << " [CERT.pem KEY.pem] [DIRECTORY.json]\n";
        return 2;
    }
    const bool own_certificate = args.size() >= 2;
    std::string detail;
    auto tls = own_certificate ? portal_auth::make_tls_context(args[0], args[1], detail)
                               : self_signed_tls_context(detail);
    if (!tls) {
        std::cerr << detail << '\n';
        return 2;
    }
    const std::string directory_path =
        args.size() % 2 == 1 ? args.back() : PORTAL_AUTH_EMBED_DIRECTORY;
    std::ifstream file(directory_path);
    if (!file) {
        std::cerr << directory_path << ": cannot read the directory file\n";
        return 2;
    }
    const std::string json{std::istreambuf_iterator<char>(file), {}};
    auto dir = portal_auth::directory::parse(json, detail);
    if (!dir) {
        std::cerr << directory_path << ": " << detail << '\n';
        return 2;
    }
    std::cerr << "portal-auth " << portal_auth::version << ", directory " << directory_path
              << (own_certificate ? "" : ", self-signed certificate for 127.0.0.1 and localhost")
              << '\n';

    portal_auth::memory_store store;
    portal_auth::audit_log audit; // the memory ring only; open_file() for a JSON Lines file
    asio::thread_pool hashing(2);
    portal_auth::password_verifier passwords(hashing.get_executor());
    // A random signing key, made at each start: tokens do not outlive the process.
    auto signer = std::make_shared<const portal_auth::token_signer>(
        std::vector{portal_auth::make_random_signing_key("embedded")});
    portal_auth::auth_service service(
        {}, std::make_shared<const portal_auth::directory>(std::move(*dir)), signer,
        {.sessions = store, .counters = store, .audit = audit, .passwords = passwords});
    portal_auth::request_handler handler(service);

    asio::io_context ioc;
    portal_auth::server srv(ioc.get_executor(), *tls, {asio::ip::make_address("127.0.0.1"), 0},
                            std::ref(handler));
    std::cout << "listening on https://127.0.0.1:" << srv.local_endpoint().port() << std::endl;

    // SIGINT/SIGTERM: total cancellation, a graceful stop (requests in flight finish).
    asio::cancellation_signal stop;
    asio::signal_set signals(ioc, SIGINT, SIGTERM);
    signals.async_wait([&](boost::system::error_code ec, int) {
        if (!ec)
            stop.emit(asio::cancellation_type::total);
    });
    asio::co_spawn(ioc, srv.run(),
                   asio::bind_cancellation_slot(stop.slot(), [&](std::exception_ptr e) {
                       signals.cancel();
                       if (e)
                           std::rethrow_exception(e);
                   }));
    ioc.run();
    return 0;
}
