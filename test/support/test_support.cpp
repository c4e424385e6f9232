#include "test_support.hpp"

#include <portal_auth/directory.hpp>
#include <portal_auth/password_hash.hpp>
#include <portal_auth/tls_context.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/test/unit_test.hpp>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <mutex>
#include <random>
#include <sstream>
#include <stdexcept>

#include <fcntl.h>
#include <unistd.h>

#include "test_world.hpp"

namespace portal_auth::test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

std::string bio_text(BIO* bio) {
    char* data = nullptr;
    long size = BIO_get_mem_data(bio, &data);
    return std::string(data, static_cast<std::size_t>(size));
}

test_pki make_pki() {
    EVP_PKEY* key = EVP_EC_gen("P-256");
    X509* cert = X509_new();
    if (!key || !cert)
        throw std::runtime_error("cannot create test key");
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert), 7 * 24 * 3600);
    X509_set_pubkey(cert, key);
    X509_NAME* name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
    X509_set_issuer_name(cert, name);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
    for (auto [nid, value] : {std::pair{NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1,IP:::1"},
                              std::pair{NID_basic_constraints, "critical,CA:TRUE"}}) {
        X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
        X509_add_ext(cert, ext, -1);
        X509_EXTENSION_free(ext);
    }
    if (X509_sign(cert, key, EVP_sha256()) == 0)
        throw std::runtime_error("cannot sign test certificate");

    BIO* cert_bio = BIO_new(BIO_s_mem());
    BIO* key_bio = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(cert_bio, cert);
    PEM_write_bio_PrivateKey(key_bio, key, nullptr, nullptr, 0, nullptr, nullptr);
    test_pki pki{bio_text(cert_bio), bio_text(key_bio)};
    BIO_free(cert_bio);
    BIO_free(key_bio);
    X509_free(cert);
    EVP_PKEY_free(key);
    return pki;
}

// PORTAL_AUTH_RECORD_RESPONSES (see https_client::request): one JSON line per response, written
// with one O_APPEND write under a mutex, so that lines of concurrent clients never interleave.
void record_response(http::verb method, std::string_view target,
                     const http::response<http::string_body>& res) {
    static const char* const path = std::getenv("PORTAL_AUTH_RECORD_RESPONSES");
    if (!path || !*path)
        return;
    boost::json::object headers;
    for (const auto& f : res) {
        std::string name(f.name_string());
        for (char& ch : name)
            ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        auto& value = headers[name];
        if (value.is_string())
            value.as_string().append(", ").append(f.value());
        else
            value = f.value();
    }
    std::string line = boost::json::serialize(boost::json::object{
        {"method", http::to_string(method)},
        {"target", target},
        {"status", res.result_int()},
        {"contentType", res[http::field::content_type]},
        {"body", res.body()},
        {"headers", std::move(headers)},
    });
    line += '\n';
    static std::mutex mutex;
    std::lock_guard lock(mutex);
    const int fd = ::open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0 || ::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size()))
        std::cerr << "PORTAL_AUTH_RECORD_RESPONSES: cannot append to " << path << ": "
                  << std::strerror(errno) << std::endl;
    if (fd >= 0)
        ::close(fd);
}

asio::ssl::context server_tls() {
    std::string detail;
    auto ctx = make_tls_context_from_pem(shared_pki().cert_pem, shared_pki().key_pem, detail);
    if (!ctx)
        throw std::runtime_error("test TLS context: " + detail);
    return std::move(*ctx);
}

} // namespace

const test_pki& shared_pki() {
    static const test_pki pki = make_pki();
    return pki;
}

std::string fast_password_hash(std::string_view password) {
    auto hash = hash_password(password, scrypt_params{.log2_n = 4, .r = 8, .p = 1});
    if (!hash)
        throw std::runtime_error("hash_password failed");
    return format_password_hash(*hash);
}

std::string test_directory_json() {
    static const std::string text = make_test_directory_json({.log2_n = 4, .r = 8, .p = 1});
    return text;
}

std::shared_ptr<const directory> test_directory() {
    std::string detail;
    auto dir = directory::parse(test_directory_json(), detail);
    if (!dir)
        throw std::runtime_error("test directory: " + detail);
    return std::make_shared<const directory>(std::move(*dir));
}

std::shared_ptr<const directory>
edited_directory(const std::function<void(boost::json::object&)>& edit) {
    auto doc = boost::json::parse(test_directory_json()).as_object();
    edit(doc);
    std::string detail;
    auto dir = directory::parse(boost::json::serialize(doc), detail);
    BOOST_TEST_REQUIRE(dir.has_value(), detail);
    return std::make_shared<const directory>(std::move(*dir));
}

void set_role(boost::json::object& doc, profile_id id, std::string_view role) {
    for (auto& p : doc.at("profiles").as_array())
        if (p.at("id").as_int64() == id)
            p.as_object()["role"] = role;
}

void set_operator(boost::json::object& doc, customer_id id, bool is_operator) {
    for (auto& c : doc.at("customers").as_array())
        if (c.at("id").as_int64() == id)
            c.as_object()["operator"] = is_operator;
}

temp_dir::temp_dir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() /
            ("portal-auth-test-" + std::to_string(rd()) + std::to_string(rd()));
    std::filesystem::create_directories(path_);
}

temp_dir::~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

void write_file(const std::filesystem::path& path, std::string_view content) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
}

std::string read_file(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

boost::asio::io_context& sync_context() {
    thread_local boost::asio::io_context ioc;
    return ioc;
}

service_fixture::service_fixture(service_config config, std::size_t hash_queue, metrics* counts)
    : signer(std::make_shared<const token_signer>(
          std::vector<signing_key>{make_random_signing_key("test-key")})),
      passwords(hashing.get_executor(), hash_queue),
      service(config, test_directory(), signer,
              {.sessions = store,
               .counters = store,
               .audit = audit,
               .passwords = passwords,
               .counts = counts}),
      handler(service) {}

running_server::running_server(service_config config, server_config server_cfg,
                               std::string audit_path)
    : fixture_(config), tls_(server_tls()) {
    if (!audit_path.empty())
        BOOST_REQUIRE(!fixture_.audit.open_file(audit_path));
    server_.emplace(ioc_.get_executor(), tls_,
                    tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0),
                    std::ref(fixture_.handler), std::move(server_cfg));
    port_ = server_->local_endpoint().port();
    asio::co_spawn(ioc_, server_->run(), [this](std::exception_ptr e) { done_.set_value(e); });
    for (int i = 0; i < 2; ++i)
        threads_.emplace_back([this] { ioc_.run(); });
}

bool running_server::stop_and_wait(std::chrono::seconds limit) {
    if (!stopped_) {
        stopped_ = true;
        server_->stop();
    }
    return finished_.wait_for(limit) == std::future_status::ready;
}

running_server::~running_server() {
    const bool completed = stop_and_wait();
    BOOST_CHECK_MESSAGE(completed, "server run() did not complete after stop()");
    if (completed)
        BOOST_CHECK_MESSAGE(!finished_.get(), "server run() ended with an exception");
    else
        ioc_.stop(); // a hang is reported above; do not hang the suite too
    for (auto& t : threads_)
        t.join();
}

boost::json::value response::json() const {
    boost::system::error_code ec;
    auto v = boost::json::parse(body, ec);
    BOOST_REQUIRE_MESSAGE(!ec, "response body is not JSON: " << body);
    return v;
}

std::string response::header(std::string_view name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : std::string(it->value());
}

https_client::https_client(unsigned short port, client_options options)
    : tls_(asio::ssl::context::tls_client), port_(port), options_(std::move(options)) {
    tls_.add_certificate_authority(asio::buffer(shared_pki().cert_pem));
    tls_.set_verify_mode(asio::ssl::verify_peer);
    connect();
}

https_client::~https_client() = default;

void https_client::connect() {
    stream_ = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(ioc_, tls_);
    buffer_.clear();
    auto& tcp_layer = beast::get_lowest_layer(*stream_);
    tcp_layer.expires_after(std::chrono::seconds(10));
    auto& socket = tcp_layer.socket();
    socket.open(tcp::v4());
    socket.bind(tcp::endpoint(asio::ip::make_address(options_.source_address), 0));
    tcp_layer.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_));
    socket.set_option(tcp::no_delay(true));
    if (!options_.prelude.empty())
        asio::write(socket, asio::buffer(options_.prelude));
    stream_->handshake(asio::ssl::stream_base::client);
    connected_ = true;
}

response https_client::request(http::verb method, std::string_view target, std::string_view body,
                               std::string_view bearer,
                               std::vector<std::pair<std::string, std::string>> extra_headers) {
    if (!connected_)
        connect();
    http::request<http::string_body> req{method, target, 11};
    req.set(http::field::host, "127.0.0.1");
    if (!bearer.empty())
        req.set(http::field::authorization, "Bearer " + std::string(bearer));
    if (!body.empty()) {
        req.set(http::field::content_type, "application/json");
        req.body() = std::string(body);
    }
    for (auto& [name, value] : extra_headers)
        req.set(name, value);
    req.prepare_payload();

    beast::get_lowest_layer(*stream_).expires_after(std::chrono::seconds(10));
    http::write(*stream_, req);
    http::response_parser<http::string_body> parser;
    parser.body_limit(16 * 1024 * 1024);
    http::read(*stream_, buffer_, parser);
    auto res = parser.release();
    record_response(method, target, res);
    response out{res.result_int(), res.body(), {}};
    for (auto const& f : res)
        out.headers.insert(f.name_string(), f.value());
    if (!res.keep_alive())
        connected_ = false;
    return out;
}

void https_client::send_raw(std::string_view bytes) {
    if (!connected_)
        connect();
    beast::get_lowest_layer(*stream_).expires_after(std::chrono::seconds(5));
    asio::write(*stream_, asio::buffer(bytes.data(), bytes.size()));
}

std::string https_client::receive_until_close(std::chrono::seconds limit) {
    beast::get_lowest_layer(*stream_).expires_after(limit);
    std::string received(static_cast<const char*>(buffer_.data().data()), buffer_.size());
    buffer_.clear();
    char chunk[4096];
    for (;;) {
        beast::error_code ec;
        std::size_t n = stream_->read_some(asio::buffer(chunk), ec);
        received.append(chunk, n);
        if (ec)
            break;
    }
    // Closing at once, as a browser does on close_notify, lets the server finish its shutdown.
    beast::error_code ignored;
    beast::get_lowest_layer(*stream_).socket().close(ignored);
    connected_ = false;
    return received;
}

void https_client::reset() {
    auto& socket = beast::get_lowest_layer(*stream_).socket();
    beast::error_code ignored;
    socket.set_option(asio::socket_base::linger(true, 0), ignored);
    socket.close(ignored);
    connected_ = false;
}

std::string https_client::raw_exchange(std::string_view bytes) {
    send_raw(bytes);
    return receive_until_close();
}

std::string login_body(std::string_view email, std::string_view password) {
    return boost::json::serialize(boost::json::object{{"email", email}, {"password", password}});
}

} // namespace portal_auth::test
