// Shared fixtures: a throwaway PKI, a fast test directory, a running TLS server on 127.0.0.1:0
// and a blocking HTTPS client for it.
#pragma once

#include <portal_auth/audit_log.hpp>
#include <portal_auth/auth_service.hpp>
#include <portal_auth/memory_store.hpp>
#include <portal_auth/metrics.hpp>
#include <portal_auth/password_verifier.hpp>
#include <portal_auth/request_handler.hpp>
#include <portal_auth/server.hpp>
#include <portal_auth/token_signer.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <exception>
#include <filesystem>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "test_world.hpp"

namespace portal_auth::test {

// A self-signed ECDSA P-256 certificate for 127.0.0.1 / localhost, made with OpenSSL.
struct test_pki {
    std::string cert_pem;
    std::string key_pem;
};
const test_pki& shared_pki();

// scrypt with ln=4: the real algorithm at a cost fit for tests.
std::string fast_password_hash(std::string_view password);

// The world of test_world.hpp with scrypt at ln=4.
std::string test_directory_json();
std::shared_ptr<const directory> test_directory();

// The test directory with `edit` applied to its JSON (a reload's new directory).
std::shared_ptr<const directory>
edited_directory(const std::function<void(boost::json::object&)>& edit);
void set_role(boost::json::object& doc, profile_id id, std::string_view role);
void set_operator(boost::json::object& doc, customer_id id, bool is_operator);

// A unique temporary directory, removed with the object.
class temp_dir {
public:
    temp_dir();
    ~temp_dir();
    const std::filesystem::path& path() const { return path_; }
    std::filesystem::path file(std::string_view name) const { return path_ / name; }

private:
    std::filesystem::path path_;
};

void write_file(const std::filesystem::path& path, std::string_view content);
std::string read_file(const std::filesystem::path& path);

// This thread's io_context for run_sync.
boost::asio::io_context& sync_context();

// Runs an awaitable to its end on this thread's io_context (see run_on in test_world.hpp).
template <class T> T run_sync(boost::asio::awaitable<T> op) {
    return run_on(sync_context(), std::move(op));
}

// The whole service in-process, without sockets: the in-memory store, the audit ring and a
// one-thread hashing pool.
struct service_fixture {
    explicit service_fixture(service_config config = {}, std::size_t hash_queue = 64,
                             metrics* counts = nullptr);
    std::shared_ptr<const token_signer> signer;
    memory_store store;
    audit_log audit;
    boost::asio::thread_pool hashing{1};
    password_verifier passwords;
    auth_service service;
    request_handler handler;
    session_store& sessions() { return store.sessions(); }
};

// The service behind a real TLS listener on 127.0.0.1:0, run by two threads.
class running_server {
public:
    explicit running_server(service_config config = {}, server_config server_cfg = {},
                            std::string audit_path = {});
    ~running_server(); // stops, joins, and checks run() completed
    unsigned short port() const { return port_; }
    auth_service& service() { return fixture_.service; }
    audit_log& audit() { return fixture_.audit; }
    session_store& sessions() { return fixture_.sessions(); }
    const token_signer& signer() { return *fixture_.signer; }
    server& listener() { return *server_; }
    service_fixture& fixture() { return fixture_; }
    // Stops and waits (bounded) for run() to complete; true when it did.
    bool stop_and_wait(std::chrono::seconds limit = std::chrono::seconds(20));

private:
    service_fixture fixture_;
    boost::asio::io_context ioc_{2};
    boost::asio::ssl::context tls_;
    std::optional<server> server_;
    // run()'s completion, set on an io_context thread; checked on the test's own thread
    // (Boost.Test's checks are not thread-safe).
    std::promise<std::exception_ptr> done_;
    std::shared_future<std::exception_ptr> finished_ = done_.get_future().share();
    std::vector<std::thread> threads_;
    unsigned short port_ = 0;
    bool stopped_ = false;
};

struct response {
    unsigned status = 0;
    std::string body;
    boost::beast::http::fields headers;
    boost::json::value json() const;
    std::string header(std::string_view name) const;
};

// Blocking HTTPS/1.1 client with keep-alive; verifies the server certificate against the test
// PKI. Every operation has a 10 s deadline.
struct client_options {
    std::string source_address = "127.0.0.1"; // any 127.0.0.0/8 address works on Linux
    std::string prelude; // raw bytes sent before the TLS handshake (a PROXY protocol header)
};

class https_client {
public:
    explicit https_client(unsigned short port, client_options options = {});
    ~https_client();
    // When the environment variable PORTAL_AUTH_RECORD_RESPONSES names a file, each response
    // is appended to it as one JSON line {"method","target","status","contentType","body",
    // "headers":{lower-case name: value}}; test/api/validate_responses.py checks them against
    // api/openapi.yaml. raw_exchange and send_raw record nothing.
    response request(boost::beast::http::verb method, std::string_view target,
                     std::string_view body = {}, std::string_view bearer = {},
                     std::vector<std::pair<std::string, std::string>> extra_headers = {});
    response get(std::string_view target, std::string_view bearer = {}) {
        return request(boost::beast::http::verb::get, target, {}, bearer);
    }
    response post(std::string_view target, std::string_view body = {},
                  std::string_view bearer = {}) {
        return request(boost::beast::http::verb::post, target, body, bearer);
    }
    // Raw bytes after the TLS handshake; returns what the server sent until it closed or 5 s.
    std::string raw_exchange(std::string_view bytes);
    // The two halves of raw_exchange, for requests sent in pieces.
    void send_raw(std::string_view bytes);
    std::string receive_until_close(std::chrono::seconds limit = std::chrono::seconds(5));
    // Aborts the connection: TCP RST, no close_notify.
    void reset();
    bool connected() const { return connected_; }

private:
    void connect();
    boost::asio::io_context ioc_;
    boost::asio::ssl::context tls_;
    std::unique_ptr<boost::beast::ssl_stream<boost::beast::tcp_stream>> stream_;
    boost::beast::flat_buffer buffer_;
    unsigned short port_;
    client_options options_;
    bool connected_ = false;
};

// {"email":..,"password":..}
std::string login_body(std::string_view email, std::string_view password);

} // namespace portal_auth::test
