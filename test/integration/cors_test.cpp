// CORS over real TLS: the service's handler wrapped by with_cors behind a listener on
// 127.0.0.1:0. Preflights are sent as raw bytes (two on one keep-alive connection, then an actual
// request), the rest through the test client.
#include <portal_auth/cors.hpp>
#include <portal_auth/server.hpp>
#include <portal_auth/tls_context.hpp>

#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <exception>
#include <functional>
#include <future>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "test_support.hpp"

using namespace portal_auth;
namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr std::string_view app_origin = "https://app.example.com";
constexpr std::string_view other_origin = "https://evil.example.net";

asio::ssl::context server_tls() {
    std::string detail;
    auto ctx =
        make_tls_context_from_pem(test::shared_pki().cert_pem, test::shared_pki().key_pem, detail);
    if (!ctx)
        throw std::runtime_error("test TLS context: " + detail);
    return std::move(*ctx);
}

// The test service behind with_cors on 127.0.0.1:0, run by one thread.
class cors_server {
public:
    explicit cors_server(cors_config config) {
        server_.emplace(ioc_.get_executor(), tls_,
                        tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0),
                        with_cors(std::ref(fixture_.handler), std::move(config)));
        port_ = server_->local_endpoint().port();
        asio::co_spawn(ioc_, server_->run(), [this](std::exception_ptr e) { done_.set_value(e); });
        thread_ = std::thread([this] { ioc_.run(); });
    }
    ~cors_server() {
        server_->stop();
        auto finished = done_.get_future();
        const bool completed =
            finished.wait_for(std::chrono::seconds(20)) == std::future_status::ready;
        BOOST_CHECK_MESSAGE(completed, "server run() did not complete after stop()");
        if (completed)
            BOOST_CHECK_MESSAGE(!finished.get(), "server run() ended with an exception");
        else
            ioc_.stop();
        thread_.join();
    }
    unsigned short port() const { return port_; }

private:
    test::service_fixture fixture_;
    asio::io_context ioc_{1};
    asio::ssl::context tls_ = server_tls();
    std::optional<server> server_;
    std::promise<std::exception_ptr> done_;
    std::thread thread_;
    unsigned short port_ = 0;
};

using raw_response = http::response<http::string_body>;

// Every response in `bytes`, in order; a test failure if anything is left over or cut short.
std::vector<raw_response> parse_responses(std::string_view bytes) {
    std::vector<raw_response> out;
    while (!bytes.empty()) {
        http::response_parser<http::string_body> parser;
        parser.eager(true);
        while (!parser.is_done()) {
            boost::system::error_code ec;
            const std::size_t used = parser.put(asio::buffer(bytes.data(), bytes.size()), ec);
            bytes.remove_prefix(used);
            BOOST_TEST_REQUIRE(!ec, "cannot parse the response: " << ec.message());
        }
        out.push_back(parser.release());
    }
    return out;
}

std::string preflight_bytes(std::string_view origin, std::string_view connection) {
    return "OPTIONS /api/public/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: " +
           std::string(origin) +
           "\r\nAccess-Control-Request-Method: POST\r\n"
           "Access-Control-Request-Headers: content-type\r\nConnection: " +
           std::string(connection) + "\r\n\r\n";
}

std::string field(const raw_response& res, http::field name) {
    auto it = res.find(name);
    return it == res.end() ? std::string() : std::string(it->value());
}

bool has(const raw_response& res, http::field name) {
    return res.find(name) != res.end();
}

bool has_cors_header(const boost::beast::http::fields& headers) {
    for (const auto& f : headers) {
        std::string name(f.name_string());
        for (char& c : name)
            c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (name.starts_with("access-control-"))
            return true;
    }
    return false;
}

} // namespace

BOOST_AUTO_TEST_SUITE(cors_over_tls)

BOOST_AUTO_TEST_CASE(preflights_on_one_keep_alive_connection_then_the_request) {
    cors_server srv({.allowed_origins = {std::string(app_origin)}});
    test::https_client client(srv.port());
    const std::string login = test::login_body("alice@acme.test", "alice-pw");
    const std::string bytes =
        preflight_bytes(app_origin, "keep-alive") + preflight_bytes(app_origin, "keep-alive") +
        "POST /api/public/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: " +
        std::string(app_origin) +
        "\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: " +
        std::to_string(login.size()) + "\r\n\r\n" + login;
    const auto responses = parse_responses(client.raw_exchange(bytes));
    BOOST_TEST_REQUIRE(responses.size() == 3u);
    for (int i = 0; i < 2; ++i) {
        const auto& res = responses[i];
        BOOST_TEST(res.result_int() == 204u);
        BOOST_TEST(field(res, http::field::access_control_allow_origin) == app_origin);
        BOOST_TEST(field(res, http::field::access_control_allow_methods) == cors_allowed_methods);
        BOOST_TEST(field(res, http::field::access_control_allow_headers) == cors_allowed_headers);
        BOOST_TEST(field(res, http::field::access_control_max_age) == "600");
        BOOST_TEST(field(res, http::field::vary) == "Origin");
        BOOST_TEST(field(res, http::field::cache_control) == "no-store");
        BOOST_TEST(!res["X-Request-Id"].empty());
        BOOST_TEST(!has(res, http::field::access_control_allow_credentials));
        BOOST_TEST(res.keep_alive());
        BOOST_TEST(res.body().empty());
    }
    const auto& answer = responses[2];
    BOOST_TEST(answer.result_int() == 200u, answer.body());
    BOOST_TEST(field(answer, http::field::access_control_allow_origin) == app_origin);
    BOOST_TEST(field(answer, http::field::vary) == "Origin");
    BOOST_TEST(!has(answer, http::field::access_control_allow_credentials));
}

BOOST_AUTO_TEST_CASE(a_preflight_from_another_origin_gets_the_apis_405_without_cors) {
    cors_server srv({.allowed_origins = {std::string(app_origin)}});
    test::https_client client(srv.port());
    const auto responses =
        parse_responses(client.raw_exchange(preflight_bytes(other_origin, "close")));
    BOOST_TEST_REQUIRE(responses.size() == 1u);
    BOOST_TEST(responses[0].result_int() == 405u);
    BOOST_TEST(!has_cors_header(responses[0].base()));
    BOOST_TEST(!has(responses[0], http::field::vary));
}

BOOST_AUTO_TEST_CASE(answers_carry_the_origin_only_when_it_is_allowed) {
    cors_server srv({.allowed_origins = {std::string(app_origin), "http://localhost:5173"}});
    test::https_client client(srv.port());
    auto res =
        client.request(http::verb::get, "/healthz", {}, {}, {{"Origin", std::string(app_origin)}});
    BOOST_TEST(res.status == 200u);
    BOOST_TEST(res.header("Access-Control-Allow-Origin") == app_origin);
    BOOST_TEST(res.header("Vary") == "Origin");
    BOOST_TEST(res.header("Access-Control-Allow-Credentials").empty());

    res =
        client.request(http::verb::get, "/healthz", {}, {}, {{"Origin", "http://localhost:5173"}});
    BOOST_TEST(res.header("Access-Control-Allow-Origin") == "http://localhost:5173");

    res = client.request(http::verb::get, "/healthz", {}, {},
                         {{"Origin", std::string(other_origin)}});
    BOOST_TEST(res.status == 200u);
    BOOST_TEST(!has_cors_header(res.headers));

    res = client.get("/healthz");
    BOOST_TEST(res.status == 200u);
    BOOST_TEST(!has_cors_header(res.headers));
    BOOST_TEST(res.header("Vary").empty());
}

BOOST_AUTO_TEST_SUITE_END()
