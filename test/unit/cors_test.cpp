// Unit tests of the CORS wrapper, without sockets: origin parsing, preflights answered in place,
// headers added to the inner handler's answers for allowed origins only, and the real request
// handler behind it.
#include <portal_auth/cors.hpp>
#include <portal_auth/request_handler.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/system/errc.hpp>
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "test_support.hpp"

using namespace portal_auth;
namespace asio = boost::asio;
namespace http = boost::beast::http;
using namespace std::chrono_literals;

namespace {

constexpr std::string_view app_origin = "https://app.example.com";
constexpr std::string_view other_origin = "https://evil.example.net";

// Every header name CORS defines starts with this; none may appear on refused origins.
bool has_cors_header(const http_response& res) {
    for (const auto& f : res) {
        std::string name(f.name_string());
        for (char& c : name)
            c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (name.starts_with("access-control-"))
            return true;
    }
    return false;
}

std::string header(const http_response& res, http::field name) {
    auto it = res.find(name);
    return it == res.end() ? std::string() : std::string(it->value());
}

bool has(const http_response& res, http::field name) {
    return res.find(name) != res.end();
}

std::string header(const http_response& res, std::string_view name) {
    auto it = res.find(name);
    return it == res.end() ? std::string() : std::string(it->value());
}

// What the fake inner handler saw.
struct inner_calls {
    int count = 0;
    http::verb last_method = http::verb::unknown;
    std::string last_origin;
    std::string vary; // the Vary it answers with, if any
};

asio::awaitable<http_response> fake_answer(std::shared_ptr<inner_calls> calls, http_request req,
                                           request_context) {
    ++calls->count;
    calls->last_method = req.method();
    calls->last_origin = std::string(req[http::field::origin]);
    http_response res{http::status::ok, req.version()};
    set_common_headers(res);
    res.set(http::field::content_type, "application/json");
    if (!calls->vary.empty())
        res.set(http::field::vary, calls->vary);
    res.keep_alive(req.keep_alive());
    res.body() = R"({"inner":true})";
    res.prepare_payload();
    co_return res;
}

request_handler_fn fake_inner(std::shared_ptr<inner_calls> calls) {
    return [calls](http_request req, request_context context) {
        return fake_answer(calls, std::move(req), std::move(context));
    };
}

http_request make_request(http::verb method, std::string_view target,
                          std::vector<std::pair<http::field, std::string>> fields = {},
                          unsigned version = 11) {
    http_request req{method, target, version};
    req.set(http::field::host, "auth.example.com");
    for (auto& [name, value] : fields)
        req.insert(name, value);
    req.prepare_payload();
    return req;
}

http_request preflight(std::string_view origin,
                       std::string_view target = "/api/public/auth/login") {
    return make_request(http::verb::options, target,
                        {{http::field::origin, std::string(origin)},
                         {http::field::access_control_request_method, "POST"},
                         {http::field::access_control_request_headers, "content-type"}});
}

http_response call(const request_handler_fn& handler, http_request req) {
    return test::run_sync(handler(std::move(req), request_context{"203.0.113.9:5000", {}}));
}

struct cors_fixture {
    std::shared_ptr<inner_calls> calls = std::make_shared<inner_calls>();
    request_handler_fn handler = with_cors(
        fake_inner(calls), {.allowed_origins = {std::string(app_origin), "http://localhost:5173"}});
};

} // namespace

BOOST_AUTO_TEST_SUITE(cors_origin_parsing)

BOOST_AUTO_TEST_CASE(canonical_forms) {
    const std::pair<std::string_view, std::string_view> cases[] = {
        {"https://app.example.com", "https://app.example.com"},
        {"HTTPS://App.Example.COM", "https://app.example.com"},
        {"http://localhost:5173", "http://localhost:5173"},
        {"https://app.example.com:443", "https://app.example.com"},
        {"http://app.example.com:80", "http://app.example.com"},
        {"http://app.example.com:443", "http://app.example.com:443"},
        {"https://app.example.com:08443", "https://app.example.com:8443"},
        {"https://192.0.2.7:8443", "https://192.0.2.7:8443"},
        {"https://[2001:DB8::1]", "https://[2001:db8::1]"},
        {"https://[::1]:8443", "https://[::1]:8443"},
        {"https://xn--bcher-kva.example", "https://xn--bcher-kva.example"},
    };
    for (const auto& [text, canonical] : cases) {
        auto parsed = parse_origin(text);
        BOOST_TEST_REQUIRE(parsed.has_value(), text);
        BOOST_TEST(*parsed == canonical, text);
    }
}

BOOST_AUTO_TEST_CASE(what_is_not_an_origin) {
    const std::string_view cases[] = {
        "",
        "*",
        "null",
        "app.example.com",
        "//app.example.com",
        "ftp://app.example.com",
        "https:/app.example.com",
        "https://",
        "https://app.example.com/",
        "https://app.example.com/path",
        "https://app.example.com?x=1",
        "https://app.example.com#top",
        "https://user@app.example.com",
        "https://app.example.com:",
        "https://app.example.com:0",
        "https://app.example.com:65536",
        "https://app.example.com:+1",
        "https://app.example.com:8443:1",
        "https://app..example.com",
        "https://.app.example.com",
        "https://app.example.com.",
        "https://-app.example.com",
        "https://app_example.com",
        "https://app example.com",
        "https://*.example.com",
        "https://[2001:db8::1",
        "https://[2001:db8::1]x",
        "https://[fe80::1%eth0]",
        "https://[not:an:address:zz]",
        " https://app.example.com",
        "https://app.example.com ",
    };
    for (auto text : cases) {
        auto parsed = parse_origin(text);
        BOOST_TEST(!parsed.has_value(), "\"" << text << "\" parsed as " << (parsed ? *parsed : ""));
        if (!parsed)
            BOOST_TEST(parsed.error() == boost::system::errc::invalid_argument);
    }
    BOOST_TEST(!parse_origin("https://" + std::string(300, 'a')).has_value());
}

BOOST_AUTO_TEST_CASE(a_configured_origin_that_is_not_one_is_a_bug_of_the_caller) {
    BOOST_CHECK_THROW(with_cors(fake_inner(std::make_shared<inner_calls>()),
                                {.allowed_origins = {"https://app.example.com/"}}),
                      std::invalid_argument);
    BOOST_CHECK_THROW(
        with_cors(fake_inner(std::make_shared<inner_calls>()), {.allowed_origins = {"*"}}),
        std::invalid_argument);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_FIXTURE_TEST_SUITE(cors_wrapper, cors_fixture)

BOOST_AUTO_TEST_CASE(preflight_from_an_allowed_origin_is_answered_here) {
    auto res = call(handler, preflight(app_origin));
    BOOST_TEST(calls->count == 0);
    BOOST_TEST(res.result() == http::status::no_content);
    BOOST_TEST(header(res, http::field::access_control_allow_origin) == app_origin);
    BOOST_TEST(header(res, http::field::access_control_allow_methods) == "GET, HEAD, POST, PUT, DELETE");
    BOOST_TEST(header(res, http::field::access_control_allow_headers) ==
               "authorization, content-type, x-request-id");
    BOOST_TEST(header(res, http::field::access_control_max_age) == "600");
    BOOST_TEST(header(res, http::field::vary) == "Origin");
    BOOST_TEST(!has(res, http::field::access_control_allow_credentials));
    // The common headers.
    BOOST_TEST(header(res, http::field::cache_control) == "no-store");
    BOOST_TEST(!header(res, http::field::strict_transport_security).empty());
    BOOST_TEST(header(res, "X-Content-Type-Options") == "nosniff");
    BOOST_TEST(header(res, http::field::server) == "portal-auth");
    BOOST_TEST(res.body().empty());
    BOOST_TEST(!has(res, http::field::content_length));    // none on a 204
    BOOST_TEST(header(res, "X-Request-Id").size() == 16u); // 12 random bytes, base64url
    BOOST_TEST(res.keep_alive());
    BOOST_TEST(res.version() == 11u);
}

BOOST_AUTO_TEST_CASE(preflight_keeps_a_sane_request_id) {
    auto req = preflight(app_origin);
    req.set("X-Request-Id", "trace-42.a_b");
    BOOST_TEST(header(call(handler, std::move(req)), "X-Request-Id") == "trace-42.a_b");
    req = preflight(app_origin);
    req.set("X-Request-Id", "not sane!");
    const auto made = header(call(handler, std::move(req)), "X-Request-Id");
    BOOST_TEST(made.size() == 16u);
    BOOST_TEST(made != header(call(handler, preflight(app_origin)), "X-Request-Id"));
}

BOOST_AUTO_TEST_CASE(preflight_keeps_alive_as_the_request_asked) {
    auto req = preflight(app_origin);
    req.keep_alive(false);
    auto res = call(handler, std::move(req));
    BOOST_TEST(res.result() == http::status::no_content);
    BOOST_TEST(!res.keep_alive());

    auto old = make_request(http::verb::options, "/healthz",
                            {{http::field::origin, std::string(app_origin)},
                             {http::field::access_control_request_method, "GET"}},
                            10);
    res = call(handler, std::move(old));
    BOOST_TEST(res.version() == 10u);
    BOOST_TEST(!res.keep_alive());

    old = make_request(http::verb::options, "/healthz",
                       {{http::field::origin, std::string(app_origin)},
                        {http::field::access_control_request_method, "GET"},
                        {http::field::connection, "keep-alive"}},
                       10);
    res = call(handler, std::move(old));
    BOOST_TEST(res.keep_alive());
}

BOOST_AUTO_TEST_CASE(the_max_age_is_configurable) {
    auto h = with_cors(fake_inner(calls),
                       {.allowed_origins = {std::string(app_origin)}, .max_age = 86400s});
    auto res = call(h, preflight(app_origin));
    BOOST_TEST(header(res, http::field::access_control_max_age) == "86400");
}

BOOST_AUTO_TEST_CASE(preflight_from_another_origin_goes_to_the_inner_handler_untouched) {
    for (auto origin : {other_origin, std::string_view("https://app.example.com:8443"),
                        std::string_view("http://app.example.com"), std::string_view("null"),
                        std::string_view("https://app.example.com/")}) {
        calls->count = 0;
        auto res = call(handler, preflight(origin));
        BOOST_TEST(calls->count == 1, origin);
        BOOST_TEST(calls->last_method == http::verb::options);
        BOOST_TEST(calls->last_origin == origin);
        BOOST_TEST(!has_cors_header(res), origin);
        BOOST_TEST(!has(res, http::field::vary), origin);
        BOOST_TEST(res.body() == R"({"inner":true})");
    }
}

BOOST_AUTO_TEST_CASE(answers_to_an_allowed_origin_carry_its_name) {
    auto res = call(handler, make_request(http::verb::get, "/api/public/auth/session",
                                          {{http::field::origin, std::string(app_origin)}}));
    BOOST_TEST(calls->count == 1);
    BOOST_TEST(res.result() == http::status::ok);
    BOOST_TEST(res.body() == R"({"inner":true})");
    BOOST_TEST(header(res, http::field::access_control_allow_origin) == app_origin);
    BOOST_TEST(header(res, http::field::vary) == "Origin");
    BOOST_TEST(header(res, http::field::access_control_expose_headers) ==
               "retry-after, www-authenticate, x-request-id");
    BOOST_TEST(!has(res, http::field::access_control_allow_credentials));
    BOOST_TEST(!has(res, http::field::access_control_allow_methods));
    BOOST_TEST(!has(res, http::field::access_control_max_age));
    BOOST_TEST(res.keep_alive());

    // The second allowed origin too; the value is echoed as sent.
    res = call(handler, make_request(http::verb::post, "/api/public/auth/logout",
                                     {{http::field::origin, "http://LOCALHOST:5173"}}));
    BOOST_TEST(header(res, http::field::access_control_allow_origin) == "http://LOCALHOST:5173");
}

BOOST_AUTO_TEST_CASE(origin_joins_an_existing_vary_once) {
    calls->vary = "Accept-Encoding";
    auto res = call(handler, make_request(http::verb::get, "/healthz",
                                          {{http::field::origin, std::string(app_origin)}}));
    BOOST_TEST(header(res, http::field::vary) == "Accept-Encoding, Origin");
    calls->vary = "accept-encoding, origin";
    res = call(handler, make_request(http::verb::get, "/healthz",
                                     {{http::field::origin, std::string(app_origin)}}));
    BOOST_TEST(header(res, http::field::vary) == "accept-encoding, origin");
}

BOOST_AUTO_TEST_CASE(no_cors_header_without_an_allowed_origin) {
    auto res = call(handler, make_request(http::verb::get, "/healthz"));
    BOOST_TEST(!has_cors_header(res));
    BOOST_TEST(!has(res, http::field::vary));

    res = call(handler, make_request(http::verb::get, "/healthz",
                                     {{http::field::origin, std::string(other_origin)}}));
    BOOST_TEST(!has_cors_header(res));
    BOOST_TEST(!has(res, http::field::vary));

    // Two Origin headers: no origin at all.
    res = call(handler, make_request(http::verb::get, "/healthz",
                                     {{http::field::origin, std::string(app_origin)},
                                      {http::field::origin, std::string(app_origin)}}));
    BOOST_TEST(!has_cors_header(res));
    BOOST_TEST(calls->count == 3);
}

BOOST_AUTO_TEST_CASE(options_without_a_requested_method_is_not_a_preflight) {
    auto res = call(handler, make_request(http::verb::options, "/healthz",
                                          {{http::field::origin, std::string(app_origin)}}));
    BOOST_TEST(calls->count == 1);
    BOOST_TEST(res.result() == http::status::ok); // what the inner handler said
    BOOST_TEST(header(res, http::field::access_control_allow_origin) == app_origin);
    BOOST_TEST(!has(res, http::field::access_control_allow_methods));
}

BOOST_AUTO_TEST_CASE(no_allowed_origin_means_no_cors_at_all) {
    auto h = with_cors(fake_inner(calls), {});
    auto res = call(h, preflight(app_origin));
    BOOST_TEST(calls->count == 1);
    BOOST_TEST(!has_cors_header(res));
}

BOOST_AUTO_TEST_SUITE_END()

// In front of the real handler: an unlisted preflight gets the router's 405, a listed one 204,
// and the answers of the API gain the headers.
BOOST_AUTO_TEST_SUITE(cors_over_the_request_handler)

BOOST_AUTO_TEST_CASE(preflights_and_answers_of_the_api) {
    test::service_fixture fixture;
    const request_handler_fn handler =
        with_cors(std::ref(fixture.handler), {.allowed_origins = {std::string(app_origin)}});

    auto res = call(handler, preflight(other_origin));
    BOOST_TEST(res.result() == http::status::method_not_allowed);
    BOOST_TEST(!has_cors_header(res));
    BOOST_TEST(!header(res, http::field::allow).empty());

    res = call(handler, preflight(app_origin));
    BOOST_TEST(res.result() == http::status::no_content);
    BOOST_TEST(header(res, http::field::access_control_allow_origin) == app_origin);

    auto login = make_request(http::verb::post, "/api/public/auth/login",
                              {{http::field::origin, std::string(app_origin)},
                               {http::field::content_type, "application/json"}});
    login.body() = test::login_body("alice@acme.test", "alice-pw");
    login.prepare_payload();
    res = call(handler, std::move(login));
    BOOST_TEST(res.result() == http::status::ok, res.body());
    BOOST_TEST(header(res, http::field::access_control_allow_origin) == app_origin);
    BOOST_TEST(header(res, http::field::vary) == "Origin");

    // A refusal carries them too, so that the page can read the problem.
    res = call(handler, make_request(http::verb::get, "/api/public/auth/session",
                                     {{http::field::origin, std::string(app_origin)}}));
    BOOST_TEST(res.result() == http::status::unauthorized);
    BOOST_TEST(header(res, http::field::access_control_allow_origin) == app_origin);

    res = call(handler, make_request(http::verb::get, "/healthz",
                                     {{http::field::origin, std::string(other_origin)}}));
    BOOST_TEST(res.result() == http::status::ok);
    BOOST_TEST(!has_cors_header(res));
}

BOOST_AUTO_TEST_SUITE_END()
