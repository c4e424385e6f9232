// Metrics, logs and request ids, without sockets.
#include <portal_auth/logger.hpp>
#include <portal_auth/metrics.hpp>

#include <boost/beast/http/field.hpp>
#include <boost/json/parse.hpp>
#include <boost/test/unit_test.hpp>

#include <mutex>
#include <string>
#include <vector>

#include "test_support.hpp"

using namespace portal_auth;
namespace http = boost::beast::http;
namespace json = boost::json;

namespace {

// The value of one sample line `name{labels} value` in the exposition text, or -1.
double sample(const std::string& text, std::string_view series) {
    const std::string prefix = std::string(series) + " ";
    auto at = text.find("\n" + prefix);
    if (at == std::string::npos)
        return -1;
    at += 1 + prefix.size();
    return std::stod(text.substr(at, text.find('\n', at) - at));
}

// A service whose handler reports to metrics and a logger that keeps its lines.
struct observed_world {
    metrics counts{"1.2.3", "abc123"};
    std::vector<std::string> lines;
    std::mutex lines_mutex;
    logger log{log_format::json, log_level::info, [this](std::string_view line) {
                   std::lock_guard lock(lines_mutex);
                   lines.emplace_back(line);
               }};
    test::service_fixture f{{}, 64, &counts};
    request_handler handler{f.service, {.counts = &counts, .log = &log}};
    request_context call{"192.0.2.1:5000", std::chrono::system_clock::now()};

    http_response send(http::verb method, std::string target, std::string body = {},
                       std::vector<std::pair<std::string, std::string>> headers = {}) {
        http_request req{method, target, 11};
        for (auto& [k, v] : headers)
            req.set(k, v);
        req.body() = std::move(body);
        req.prepare_payload();
        return test::run_sync(handler(std::move(req), call));
    }
};

} // namespace

BOOST_AUTO_TEST_SUITE(observability)

BOOST_AUTO_TEST_CASE(a_login_moves_the_login_counter_by_exactly_one) {
    observed_world w;
    const auto before = w.counts.render();
    BOOST_TEST(sample(before, R"(portal_auth_logins_total{result="succeeded"})") == 0);
    auto res = w.send(http::verb::post, "/api/public/auth/login",
                      test::login_body("alice@acme.test", "alice-pw"));
    BOOST_TEST(res.result_int() == 200u);
    (void)w.send(http::verb::post, "/api/public/auth/login",
                 test::login_body("alice@acme.test", "nope"));
    const auto after = w.counts.render();
    BOOST_TEST(sample(after, R"(portal_auth_logins_total{result="succeeded"})") == 1);
    BOOST_TEST(sample(after, R"(portal_auth_logins_total{result="failed"})") == 1);
    BOOST_TEST(
        sample(after,
               R"(portal_auth_requests_total{route="/api/public/auth/login",status="200"})") == 1);
    BOOST_TEST(
        sample(after,
               R"(portal_auth_request_duration_seconds_count{route="/api/public/auth/login"})") ==
        2);
    BOOST_TEST(sample(after, R"(portal_auth_audit_lines_total{result="written"})") == 2);
    BOOST_TEST(sample(after, R"(portal_auth_build_info{version="1.2.3",commit="abc123"})") == 1);
}

BOOST_AUTO_TEST_CASE(the_access_log_names_the_route_never_the_path) {
    observed_world w;
    const std::string secret = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0.c2ln";
    (void)w.send(http::verb::post, "/api/public/auth/login/" + secret);
    BOOST_TEST_REQUIRE(w.lines.size() == 1u);
    BOOST_TEST(w.lines[0].find(secret) == std::string::npos, w.lines[0]);
    const json::object line = json::parse(w.lines[0]).as_object();
    BOOST_TEST(line.at("level").as_string() == "info");
    BOOST_TEST(line.at("method").as_string() == "POST");
    BOOST_TEST(line.at("route").as_string() == "/api/public/auth/login/{token}");
    BOOST_TEST(line.at("status").as_int64() == 401);
    BOOST_TEST(line.at("client").as_string() == "192.0.2.1:5000");
    BOOST_TEST(line.at("duration_us").is_int64());
    BOOST_TEST(line.contains("time"));
    BOOST_TEST(!line.at("request_id").as_string().empty());
}

BOOST_AUTO_TEST_CASE(request_ids_are_echoed_when_sane_and_made_otherwise) {
    observed_world w;
    auto res =
        w.send(http::verb::post, "/api/public/auth/login",
               test::login_body("bob@acme.test", "bob-pw"), {{"X-Request-Id", "abc.DEF_123-x"}});
    BOOST_TEST(res["X-Request-Id"] == "abc.DEF_123-x");
    // The audit line of that request carries it.
    BOOST_TEST(w.f.audit.recent(1)[0].at("requestId").as_string() == "abc.DEF_123-x");
    for (const std::string bad :
         {std::string(129, 'a'), std::string("has space"), std::string("a\"b"), std::string("")}) {
        res = w.send(http::verb::get, "/healthz", {}, {{"X-Request-Id", bad}});
        const std::string made(res["X-Request-Id"]);
        BOOST_TEST(!made.empty());
        BOOST_TEST(made != bad);
    }
    res = w.send(http::verb::get, "/nowhere");
    BOOST_TEST(!std::string(res["X-Request-Id"]).empty());
    BOOST_TEST(sample(w.counts.render(),
                      R"(portal_auth_requests_total{route="unmatched",status="404"})") == 1);
}

BOOST_AUTO_TEST_CASE(text_lines_quote_what_needs_it_and_levels_filter) {
    std::vector<std::string> lines;
    logger log(log_format::text, log_level::warn,
               [&](std::string_view line) { lines.emplace_back(line); });
    log.log(log_level::info, "not shown");
    log.log(log_level::warn, "audit log failing", {{"path", "/var/log/a b"}, {"errno", "28"}});
    BOOST_TEST_REQUIRE(lines.size() == 1u);
    BOOST_TEST(lines[0].find(" warn audit log failing path=\"/var/log/a b\" errno=28") !=
                   std::string::npos,
               lines[0]);
    BOOST_TEST(!parse_log_level("verbose").has_value());
    BOOST_TEST((parse_log_format("json") == log_format::json));
}

BOOST_AUTO_TEST_SUITE_END()
