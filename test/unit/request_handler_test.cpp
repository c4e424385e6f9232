// The HTTP contract of request_handler::handle(), without sockets: statuses, headers, problem
// details and the JSON shapes of every endpoint, over the test world of test_support.hpp.
#include <portal_auth/audit_log.hpp>
#include <portal_auth/request_handler.hpp>

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <chrono>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "test_support.hpp"

using namespace portal_auth;
namespace http = boost::beast::http;
namespace json = boost::json;
using namespace std::chrono_literals;

namespace {

std::string header(const http_response& res, http::field name) {
    auto it = res.find(name);
    return it == res.end() ? std::string() : std::string(it->value());
}

bool has_header(const http_response& res, http::field name) {
    return res.find(name) != res.end();
}

std::vector<std::string> keys_of(const json::object& o) {
    std::vector<std::string> keys;
    for (const auto& kv : o)
        keys.emplace_back(kv.key());
    return keys;
}

std::vector<std::string> sorted(std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    return v;
}

json::value body_json(const http_response& res) {
    boost::system::error_code ec;
    json::value v = json::parse(res.body(), ec);
    BOOST_TEST_REQUIRE(!ec, "response body is not JSON: " << res.body());
    return v;
}

json::object body_object(const http_response& res) {
    json::value v = body_json(res);
    BOOST_TEST_REQUIRE(v.is_object(), "response body is not a JSON object: " << res.body());
    return v.get_object();
}

constexpr std::string_view realm_only = R"(Bearer realm="portal-auth")";
constexpr std::string_view realm_invalid_token =
    R"(Bearer realm="portal-auth", error="invalid_token")";

// Headers every response carries.
void check_common_headers(const http_response& res) {
    BOOST_TEST(header(res, http::field::cache_control) == "no-store");
    BOOST_TEST(has_header(res, http::field::strict_transport_security));
    BOOST_TEST(!header(res, http::field::strict_transport_security).empty());
}

std::string_view title_of(unsigned status) {
    switch (status) {
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "?";
    }
}

constexpr std::string_view plain = "about:blank";
std::string urn(std::string_view slug) {
    return "urn:portal-auth:problem:" + std::string(slug);
}

// An RFC 9457 problem: the status, its content type and exactly its four members; its type is
// `type` when given, else about:blank or one of ours. Returns the detail.
std::string check_problem(const http_response& res, unsigned status, std::string_view type = {}) {
    BOOST_TEST_REQUIRE(res.result_int() == status, "body: " << res.body());
    BOOST_TEST(header(res, http::field::content_type) == "application/problem+json");
    check_common_headers(res);
    json::object o = body_object(res);
    BOOST_TEST(sorted(keys_of(o)) ==
                   (std::vector<std::string>{"detail", "status", "title", "type"}),
               boost::test_tools::per_element());
    BOOST_TEST_REQUIRE(o.contains("type"));
    BOOST_TEST_REQUIRE(o.contains("title"));
    BOOST_TEST_REQUIRE(o.contains("status"));
    BOOST_TEST_REQUIRE(o.contains("detail"));
    BOOST_TEST_REQUIRE(o.at("type").is_string());
    std::string actual_type(o.at("type").get_string());
    if (!type.empty())
        BOOST_TEST(actual_type == type);
    else
        BOOST_TEST((actual_type == plain || actual_type.starts_with(urn(""))), actual_type);
    BOOST_TEST(o.at("title") == json::value(title_of(status)));
    BOOST_TEST(o.at("status").is_number());
    BOOST_TEST(o.at("status").to_number<std::int64_t>() == static_cast<std::int64_t>(status));
    BOOST_TEST_REQUIRE(o.at("detail").is_string());
    std::string detail(o.at("detail").get_string());
    BOOST_TEST(!detail.empty());
    return detail;
}

void check_unauthorized(const http_response& res, std::string_view www_authenticate) {
    check_problem(res, 401);
    BOOST_TEST(header(res, http::field::www_authenticate) == www_authenticate);
}

// A 400 whose detail names `field`.
void check_bad_request(const http_response& res, std::string_view field) {
    std::string detail = check_problem(res, 400, urn("invalid-request"));
    BOOST_TEST(detail.find(field) != std::string::npos,
               "detail '" << detail << "' does not name '" << field << "'");
    BOOST_TEST(!has_header(res, http::field::www_authenticate));
}

void check_json_ok(const http_response& res) {
    BOOST_TEST_REQUIRE(res.result_int() == 200u, "body: " << res.body());
    BOOST_TEST(header(res, http::field::content_type) == "application/json");
    check_common_headers(res);
}

const std::vector<std::string> session_object_keys{"accessToken",  "tokenType",  "expiresIn",
                                                   "refreshToken", "customerId", "profileId",
                                                   "impersonator"};

const std::vector<std::string> session_info_keys{"customerId", "expiresAt", "impersonator",
                                                 "profileId"}; // sorted

// The service behind its handler, and a way to call it.
struct world : test::service_fixture {
    explicit world(service_config config = {}) : test::service_fixture(config) {}

    request_context call{"127.0.0.1:1234", std::chrono::system_clock::now()};

    http_response request(http::verb method, std::string_view target, std::string body = {},
                          std::optional<std::string> authorization = std::nullopt) {
        http_request req{method, target, 11};
        req.set(http::field::host, "localhost");
        if (authorization)
            req.set(http::field::authorization, *authorization);
        if (!body.empty()) {
            req.set(http::field::content_type, "application/json");
            req.body() = std::move(body);
        }
        req.prepare_payload();
        return test::run_sync(handler(req, call));
    }

    http_response get(std::string_view target, std::string_view token = {}) {
        return request(http::verb::get, target, {}, bearer(token));
    }
    http_response post(std::string_view target, std::string body = {},
                       std::string_view token = {}) {
        return request(http::verb::post, target, std::move(body), bearer(token));
    }
    http_response put(std::string_view target, std::string body, std::string_view token = {}) {
        return request(http::verb::put, target, std::move(body), bearer(token));
    }

    static std::optional<std::string> bearer(std::string_view token) {
        if (token.empty())
            return std::nullopt;
        return "Bearer " + std::string(token);
    }

    // The session object of a successful login.
    json::object login(std::string_view email, std::string_view password) {
        auto res = post("/api/public/auth/login", test::login_body(email, password));
        check_json_ok(res);
        return body_object(res);
    }

    std::string access_token(std::string_view email, std::string_view password) {
        json::object s = login(email, password);
        BOOST_TEST_REQUIRE(s.contains("accessToken"));
        BOOST_TEST_REQUIRE(s.at("accessToken").is_string());
        return std::string(s.at("accessToken").get_string());
    }

    std::string alice() { return access_token("alice@acme.test", "alice-pw"); }
    std::string bob() { return access_token("bob@acme.test", "bob-pw"); }
    std::string olga() { return access_token("olga@portal.test", "olga-pw"); }

    json::object session_info(std::string_view token) {
        auto res = get("/api/public/auth/session", token);
        check_json_ok(res);
        return body_object(res);
    }
};

std::string token_of(const http_response& res) {
    json::object o = body_object(res);
    BOOST_TEST(keys_of(o) == (std::vector<std::string>{"token"}), boost::test_tools::per_element());
    BOOST_TEST_REQUIRE(o.contains("token"));
    BOOST_TEST_REQUIRE(o.at("token").is_string());
    std::string token(o.at("token").get_string());
    BOOST_TEST_REQUIRE(!token.empty());
    return token;
}

std::string string_member(const json::object& o, std::string_view key) {
    BOOST_TEST_REQUIRE(o.contains(key), "missing " << key);
    BOOST_TEST_REQUIRE(o.at(key).is_string(), key << " is not a string");
    return std::string(o.at(key).get_string());
}

std::int64_t int_member(const json::object& o, std::string_view key) {
    BOOST_TEST_REQUIRE(o.contains(key), "missing " << key);
    BOOST_TEST_REQUIRE(o.at(key).is_int64(), key << " is not an integer");
    return o.at(key).get_int64();
}

} // namespace

BOOST_AUTO_TEST_SUITE(request_handler_suite)

// --- Problem details and authentication challenges ------------------------------------------

BOOST_AUTO_TEST_CASE(problem_response_shape) {
    auto res = make_problem_response(http::status::forbidden, "about:blank", "nope");
    std::string detail = check_problem(res, 403);
    BOOST_TEST(detail == "nope");
    BOOST_TEST(!has_header(res, http::field::www_authenticate));
    BOOST_TEST(res.version() == 11u);

    auto unauthorized = make_problem_response(http::status::unauthorized, "about:blank", "who?");
    check_unauthorized(unauthorized, realm_only);
    auto presented =
        make_problem_response(http::status::unauthorized, "about:blank", "who?", 11, true, true);
    check_unauthorized(presented, realm_invalid_token);
}

BOOST_AUTO_TEST_CASE(missing_token_is_401_with_realm_only) {
    world w;
    for (auto [method, target] :
         {std::pair{http::verb::get, "/api/public/auth/session"},
          std::pair{http::verb::get, "/api/public/coworkers/profiles"},
          std::pair{http::verb::post, "/api/public/auth/logout"},
          std::pair{http::verb::get, "/api/public/coworkers/12/impersonate"},
          std::pair{http::verb::get, "/api/sys/users/impersonate?customerId=101"},
          std::pair{http::verb::get, "/api/sys/audit"}}) {
        BOOST_TEST_CONTEXT(target) {
            auto res = w.request(method, target);
            check_unauthorized(res, realm_only);
        }
    }
    auto res = w.put("/api/public/coworkers/profiles/current", R"({"ProfileId":21})");
    check_unauthorized(res, realm_only);
}

BOOST_AUTO_TEST_CASE(bad_token_is_401_invalid_token) {
    world w;
    auto res = w.get("/api/public/auth/session", "not-a-real-token");
    check_unauthorized(res, realm_invalid_token);
    // A well-formed token of the right shape that was never issued.
    res = w.get("/api/public/auth/session", "AAAAAAAAAAEAAAAAAAAAAAAAAAAAAAAA");
    check_unauthorized(res, realm_invalid_token);
}

BOOST_AUTO_TEST_CASE(garbage_authorization_headers_are_401) {
    world w;
    for (std::string_view value : {"Bearer", "Bearer ", "Bearer    ", "Basic abc",
                                   "Basic YWxpY2U6YWxpY2UtcHc=", "", "Token x", "Bearerx abc"}) {
        BOOST_TEST_CONTEXT("Authorization: '" << value << "'") {
            auto res =
                w.request(http::verb::get, "/api/public/auth/session", {}, std::string(value));
            check_problem(res, 401);
            std::string challenge = header(res, http::field::www_authenticate);
            BOOST_TEST(challenge.rfind(realm_only, 0) == 0u, "challenge: " << challenge);
        }
    }
}

BOOST_AUTO_TEST_CASE(failed_login_is_401_without_error_param) {
    world w;
    auto wrong = w.post("/api/public/auth/login", test::login_body("alice@acme.test", "wrong"));
    check_unauthorized(wrong, realm_only);
    auto unknown = w.post("/api/public/auth/login", test::login_body("nobody@acme.test", "x"));
    check_unauthorized(unknown, realm_only);
    // Both failures read the same.
    BOOST_TEST(wrong.body() == unknown.body());
}

// --- Login, session, refresh, logout --------------------------------------------------------

BOOST_AUTO_TEST_CASE(login_returns_the_session_object) {
    world w;
    auto res = w.post("/api/public/auth/login", test::login_body("alice@acme.test", "alice-pw"));
    check_json_ok(res);
    json::object s = body_object(res);
    BOOST_TEST(keys_of(s) == session_object_keys, boost::test_tools::per_element());
    BOOST_TEST(!string_member(s, "accessToken").empty());
    BOOST_TEST(!string_member(s, "refreshToken").empty());
    BOOST_TEST(string_member(s, "accessToken") != string_member(s, "refreshToken"));
    BOOST_TEST(string_member(s, "tokenType") == "Bearer");
    BOOST_TEST(int_member(s, "expiresIn") == 3600);
    BOOST_TEST(int_member(s, "customerId") == 100);
    BOOST_TEST(int_member(s, "profileId") == 10);
    BOOST_TEST(s.at("impersonator").is_null());
}

BOOST_AUTO_TEST_CASE(login_expiry_follows_the_configured_ttl) {
    service_config cfg;
    cfg.session_ttl = 900s;
    test::service_fixture f(cfg);
    request_context call{"127.0.0.1:1234", std::chrono::system_clock::now()};
    http_request req{http::verb::post, "/api/public/auth/login", 11};
    req.body() = test::login_body("carol@acme.test", "carol-pw");
    req.prepare_payload();
    auto res = test::run_sync(f.handler(req, call));
    check_json_ok(res);
    BOOST_TEST(int_member(body_object(res), "expiresIn") == 900);
}

BOOST_AUTO_TEST_CASE(session_info) {
    world w;
    std::string token = w.alice();
    json::object info = w.session_info(token);
    BOOST_TEST(sorted(keys_of(info)) == session_info_keys, boost::test_tools::per_element());
    BOOST_TEST(int_member(info, "customerId") == 100);
    BOOST_TEST(int_member(info, "profileId") == 10);
    BOOST_TEST(info.at("impersonator").is_null());
    std::string expires = string_member(info, "expiresAt");
    static const std::regex rfc3339(R"(^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$)");
    BOOST_TEST(std::regex_match(expires, rfc3339), "expiresAt: " << expires);
    BOOST_TEST(expires == format_rfc3339(w.call.now + 3600s));

    // Scheme names are case-insensitive.
    auto res = w.request(http::verb::get, "/api/public/auth/session", {}, "bearer " + token);
    BOOST_TEST(res.result_int() == 200u);
}

BOOST_AUTO_TEST_CASE(refresh_rotates_tokens) {
    world w;
    json::object s = w.login("bob@acme.test", "bob-pw");
    std::string access = string_member(s, "accessToken");
    std::string refresh = string_member(s, "refreshToken");

    auto res = w.post("/api/public/auth/refresh",
                      json::serialize(json::object{{"refreshToken", refresh}}));
    check_json_ok(res);
    json::object renewed = body_object(res);
    BOOST_TEST(keys_of(renewed) == session_object_keys, boost::test_tools::per_element());
    BOOST_TEST(string_member(renewed, "tokenType") == "Bearer");
    BOOST_TEST(int_member(renewed, "expiresIn") == 3600);
    BOOST_TEST(int_member(renewed, "customerId") == 101);
    BOOST_TEST(int_member(renewed, "profileId") == 11);
    BOOST_TEST(renewed.at("impersonator").is_null());
    BOOST_TEST(string_member(renewed, "accessToken") != access);
    BOOST_TEST(string_member(renewed, "refreshToken") != refresh);

    // The new pair works; the old one is spent.
    json::object info = w.session_info(string_member(renewed, "accessToken"));
    BOOST_TEST(int_member(info, "customerId") == 101);
    check_unauthorized(w.get("/api/public/auth/session", access), realm_invalid_token);
    check_unauthorized(w.post("/api/public/auth/refresh",
                              json::serialize(json::object{{"refreshToken", refresh}})),
                       realm_invalid_token);
}

BOOST_AUTO_TEST_CASE(logout_ends_the_session) {
    world w;
    json::object s = w.login("alice@acme.test", "alice-pw");
    std::string access = string_member(s, "accessToken");
    std::string refresh = string_member(s, "refreshToken");

    auto res = w.post("/api/public/auth/logout", {}, access);
    BOOST_TEST_REQUIRE(res.result_int() == 204u, "body: " << res.body());
    BOOST_TEST(res.body().empty());
    BOOST_TEST(res.count(http::field::content_length) == 0u);
    check_common_headers(res);

    check_unauthorized(w.get("/api/public/auth/session", access), realm_invalid_token);
    check_unauthorized(w.post("/api/public/auth/logout", {}, access), realm_invalid_token);
    auto refreshed = w.post("/api/public/auth/refresh",
                            json::serialize(json::object{{"refreshToken", refresh}}));
    check_problem(refreshed, 401, urn("invalid-refresh-token"));
}

BOOST_AUTO_TEST_CASE(responses_carrying_secrets_are_not_stored) {
    world w;
    json::object s = w.login("alice@acme.test", "alice-pw"); // checks no-store on login
    std::string access = string_member(s, "accessToken");

    auto refreshed =
        w.post("/api/public/auth/refresh",
               json::serialize(json::object{{"refreshToken", string_member(s, "refreshToken")}}));
    check_json_ok(refreshed);
    access = string_member(body_object(refreshed), "accessToken");

    auto token = w.get("/api/public/coworkers/12/impersonate", access);
    check_json_ok(token);
    auto exchanged = w.post("/api/public/auth/login/" + token_of(token));
    check_json_ok(exchanged);

    for (const http_response* res : {&refreshed, &token, &exchanged}) {
        BOOST_TEST(header(*res, http::field::cache_control) == "no-store");
        BOOST_TEST(!header(*res, http::field::strict_transport_security).empty());
    }
}

// --- Profiles ------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(profiles_listing_for_bob) {
    world w;
    auto res = w.get("/api/public/coworkers/profiles", w.bob());
    check_json_ok(res);
    json::object listing = body_object(res);
    BOOST_TEST(sorted(keys_of(listing)) ==
                   (std::vector<std::string>{"CurrentProfileId", "Profiles"}),
               boost::test_tools::per_element());
    BOOST_TEST(int_member(listing, "CurrentProfileId") == 11);
    BOOST_TEST_REQUIRE(listing.at("Profiles").is_array());
    const json::array& rows = listing.at("Profiles").get_array();

    struct expected_row {
        std::int64_t id, customer;
        const char* name;
        const char* email;
        std::int64_t team;
        const char* team_name;
        const char* role;
        bool current, own, can_impersonate;
    };
    const expected_row expected[] = {
        {10, 100, "Alice Archer", "alice@acme.test", 1, "Acme Corp", "Owner", false, false, false},
        {11, 101, "Bob Baker", "bob@acme.test", 1, "Acme Corp", "Admin", true, true, false},
        {12, 102, "Carol Chen", "carol@acme.test", 1, "Acme Corp", "Member", false, false, true},
        {13, 106, "Gina Gray", "gina@acme.test", 1, "Acme Corp", "Owner", false, false, false},
        {14, 900, "Olga Operator", "olga@portal.test", 1, "Acme Corp", "Member", false, false,
         false},
        {21, 101, "Bob Baker", "bob@acme.test", 2, "Globex", "Member", false, true, false},
    };
    std::vector<std::int64_t> ids;
    for (const json::value& row : rows) {
        BOOST_TEST_REQUIRE(row.is_object());
        ids.push_back(int_member(row.get_object(), "Id"));
    }
    BOOST_TEST(ids == (std::vector<std::int64_t>{10, 11, 12, 13, 14, 21}),
               boost::test_tools::per_element());
    BOOST_TEST_REQUIRE(rows.size() == std::size(expected));

    const std::vector<std::string> row_keys =
        sorted({"Id", "CustomerId", "Name", "Email", "TeamId", "TeamName", "Role", "IsCurrent",
                "IsOwn", "CanImpersonate"});
    for (std::size_t i = 0; i < rows.size(); ++i) {
        const json::object& row = rows[i].get_object();
        const expected_row& e = expected[i];
        BOOST_TEST_CONTEXT("profile " << e.id) {
            BOOST_TEST(sorted(keys_of(row)) == row_keys, boost::test_tools::per_element());
            BOOST_TEST(int_member(row, "Id") == e.id);
            BOOST_TEST(int_member(row, "CustomerId") == e.customer);
            BOOST_TEST(string_member(row, "Name") == e.name);
            BOOST_TEST(string_member(row, "Email") == e.email);
            BOOST_TEST(int_member(row, "TeamId") == e.team);
            BOOST_TEST(string_member(row, "TeamName") == e.team_name);
            BOOST_TEST(string_member(row, "Role") == e.role);
            BOOST_TEST(row.at("IsCurrent") == json::value(e.current));
            BOOST_TEST(row.at("IsOwn") == json::value(e.own));
            BOOST_TEST(row.at("CanImpersonate") == json::value(e.can_impersonate));
        }
    }
}

BOOST_AUTO_TEST_CASE(switching_to_an_own_profile) {
    world w;
    std::string token = w.bob();
    auto res = w.put("/api/public/coworkers/profiles/current", R"({"ProfileId":21})", token);
    check_json_ok(res);
    json::object updated = body_object(res);
    BOOST_TEST(sorted(keys_of(updated)) == session_info_keys, boost::test_tools::per_element());
    BOOST_TEST(int_member(updated, "customerId") == 101);
    BOOST_TEST(int_member(updated, "profileId") == 21);

    json::object info = w.session_info(token);
    BOOST_TEST(int_member(info, "profileId") == 21);
    BOOST_TEST(int_member(info, "customerId") == 101);

    // The listing follows the new profile's team.
    auto listing = w.get("/api/public/coworkers/profiles", token);
    check_json_ok(listing);
    BOOST_TEST(int_member(body_object(listing), "CurrentProfileId") == 21);
}

BOOST_AUTO_TEST_CASE(switching_to_a_coworker_or_unknown_profile) {
    world w;
    std::string token = w.bob();
    check_problem(w.put("/api/public/coworkers/profiles/current", R"({"ProfileId":12})", token),
                  403, urn("coworker-profile"));
    check_problem(w.put("/api/public/coworkers/profiles/current", R"({"ProfileId":999})", token),
                  404, urn("profile-not-found"));
    // Still on the profile it had.
    BOOST_TEST(int_member(w.session_info(token), "profileId") == 11);
}

// --- Malformed requests ----------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(login_bad_requests) {
    world w;
    const std::pair<const char*, const char*> cases[] = {
        {"{\"email\":", "JSON"},
        {"not json", "JSON"},
        {"", "JSON"},
        {"[1,2]", "object"},
        {"\"alice@acme.test\"", "object"},
        {"null", "object"},
        {"{}", "email"},
        {R"({"password":"alice-pw"})", "email"},
        {R"({"email":1,"password":"alice-pw"})", "email"},
        {R"({"email":null,"password":"alice-pw"})", "email"},
        {R"({"email":["alice@acme.test"],"password":"alice-pw"})", "email"},
        {R"({"email":"alice@acme.test"})", "password"},
        {R"({"email":"alice@acme.test","password":123})", "password"},
        {R"({"email":"alice@acme.test","password":{"x":1}})", "password"},
    };
    for (auto [body, field] : cases) {
        BOOST_TEST_CONTEXT("body " << body) {
            http_request req{http::verb::post, "/api/public/auth/login", 11};
            req.body() = body;
            req.prepare_payload();
            check_bad_request(test::run_sync(w.handler(req, w.call)), field);
        }
    }
}

// A repeated member name is a 400 naming it, and changes nothing: "nobody" then "alice"
// must not sign Alice in.
BOOST_AUTO_TEST_CASE(repeated_members_are_rejected) {
    world w;
    auto res =
        w.post("/api/public/auth/login",
               R"({"email":"nobody@acme.test","email":"alice@acme.test","password":"alice-pw"})");
    check_bad_request(res, "email");
    BOOST_TEST(w.audit.recent(10).empty()); // no login attempt was made
    check_bad_request(w.put("/api/public/coworkers/profiles/current",
                            R"({"ProfileId":11,"ProfileId":21})", w.bob()),
                      "ProfileId");
}

BOOST_AUTO_TEST_CASE(refresh_bad_requests) {
    world w;
    const std::pair<const char*, const char*> cases[] = {
        {"{oops", "JSON"},
        {"", "JSON"},
        {"[]", "object"},
        {"{}", "refreshToken"},
        {R"({"refresh_token":"abc"})", "refreshToken"},
        {R"({"refreshToken":5})", "refreshToken"},
        {R"({"refreshToken":null})", "refreshToken"},
        {R"({"refreshToken":true})", "refreshToken"},
    };
    for (auto [body, field] : cases) {
        BOOST_TEST_CONTEXT("body " << body) {
            http_request req{http::verb::post, "/api/public/auth/refresh", 11};
            req.body() = body;
            req.prepare_payload();
            check_bad_request(test::run_sync(w.handler(req, w.call)), field);
        }
    }
}

BOOST_AUTO_TEST_CASE(switch_profile_bad_requests) {
    world w;
    std::string token = w.bob();
    const std::pair<const char*, const char*> cases[] = {
        {"{", "JSON"},
        {"", "JSON"},
        {"21", "object"},
        {"[21]", "object"},
        {"{}", "ProfileId"},
        {R"({"profileId":21})", "ProfileId"},
        {R"({"ProfileId":"12"})", "ProfileId"},
        {R"({"ProfileId":"21"})", "ProfileId"},
        {R"({"ProfileId":1.5})", "ProfileId"},
        {R"({"ProfileId":21.0})", "ProfileId"},
        {R"({"ProfileId":2.1e1})", "ProfileId"},
        {R"({"ProfileId":-1})", "ProfileId"},
        {R"({"ProfileId":0})", "ProfileId"},
        {R"({"ProfileId":true})", "ProfileId"},
        {R"({"ProfileId":null})", "ProfileId"},
        {R"({"ProfileId":[21]})", "ProfileId"},
        {R"({"ProfileId":18446744073709551615})", "ProfileId"},
        {R"({"ProfileId":-9223372036854775808})", "ProfileId"},
    };
    for (auto [body, field] : cases) {
        BOOST_TEST_CONTEXT("body " << body) {
            check_bad_request(w.put("/api/public/coworkers/profiles/current", body, token), field);
        }
    }
    BOOST_TEST(int_member(w.session_info(token), "profileId") == 11);
}

BOOST_AUTO_TEST_CASE(non_numeric_coworker_ids) {
    world w;
    std::string token = w.alice();
    for (std::string_view id : {"abc", "1e3", "-5", "01x", "12345678901234567890", "0", "+12",
                                "12.0", "%31%32", "9223372036854775808"}) {
        BOOST_TEST_CONTEXT("coworker id " << id) {
            auto res = w.get("/api/public/coworkers/" + std::string(id) + "/impersonate", token);
            check_bad_request(res, "coworkerId");
        }
    }
}

BOOST_AUTO_TEST_CASE(customer_id_query_bad_requests) {
    world w;
    std::string token = w.olga();
    for (std::string_view target :
         {"/api/sys/users/impersonate", "/api/sys/users/impersonate?",
          "/api/sys/users/impersonate?customer=101",
          "/api/sys/users/impersonate?customerId=", "/api/sys/users/impersonate?customerId",
          "/api/sys/users/impersonate?customerId=abc", "/api/sys/users/impersonate?customerId=-101",
          "/api/sys/users/impersonate?customerId=101x", "/api/sys/users/impersonate?customerId=1e2",
          "/api/sys/users/impersonate?customerId=0",
          "/api/sys/users/impersonate?customerId=12345678901234567890"}) {
        BOOST_TEST_CONTEXT(target) {
            check_bad_request(w.get(target, token), "customerId");
        }
    }
}

BOOST_AUTO_TEST_CASE(audit_limit_bad_requests) {
    world w;
    std::string token = w.olga();
    for (std::string_view limit : {"0", "1001", "x", "", "-1", "10x", "99999999999999999999"}) {
        BOOST_TEST_CONTEXT("limit=" << limit) {
            check_bad_request(w.get("/api/sys/audit?limit=" + std::string(limit), token), "limit");
        }
    }
    // The bounds themselves are fine.
    check_json_ok(w.get("/api/sys/audit?limit=1", token));
    check_json_ok(w.get("/api/sys/audit?limit=1000", token));
    check_json_ok(w.get("/api/sys/audit", token));
}

// --- Routing ---------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(unknown_paths_are_404) {
    world w;
    for (std::string_view target :
         {"/", "/nope", "/api", "/api/public/auth", "/api/public/auth/login/a/b", "/healthz/",
          "/api/public/auth/session/", "//healthz", "/HEALTHZ"}) {
        BOOST_TEST_CONTEXT(target) {
            check_problem(w.get(target), 404, plain);
        }
    }
    check_problem(w.post("/api/public/auth/nope", "{}"), 404, plain);
}

BOOST_AUTO_TEST_CASE(wrong_method_is_405_with_allow) {
    world w;
    const std::tuple<http::verb, const char*, const char*> cases[] = {
        {http::verb::delete_, "/api/public/auth/session", "GET"},
        {http::verb::post, "/api/public/auth/session", "GET"},
        {http::verb::get, "/api/public/auth/refresh", "POST"},
        {http::verb::get, "/api/public/auth/login", "POST"},
        {http::verb::get, "/api/public/auth/login/some-token", "POST"},
        {http::verb::get, "/api/public/auth/logout", "POST"},
        {http::verb::post, "/api/public/coworkers/profiles", "GET"},
        {http::verb::get, "/api/public/coworkers/profiles/current", "PUT"},
        {http::verb::post, "/api/public/coworkers/12/impersonate", "GET"},
        {http::verb::put, "/api/sys/users/impersonate?customerId=101", "GET"},
        {http::verb::delete_, "/api/sys/audit", "GET"},
        {http::verb::post, "/healthz", "GET"},
    };
    for (auto [method, target, allow] : cases) {
        BOOST_TEST_CONTEXT(http::to_string(method) << " " << target) {
            auto res = w.request(method, target);
            check_problem(res, 405, plain);
            BOOST_TEST(header(res, http::field::allow) == allow);
        }
    }
}

BOOST_AUTO_TEST_CASE(unparsable_targets_never_crash) {
    world w;
    for (std::string_view target :
         {"http://x/y", "https://localhost/healthz", "no-slash", "healthz", "*", "/%zz",
          "/healthz%", "/a b", "//", "/api/public/auth/session#frag", "?x=1"}) {
        BOOST_TEST_CONTEXT("target '" << target << "'") {
            auto res = w.get(target);
            BOOST_TEST((res.result_int() == 400u || res.result_int() == 404u),
                       "status " << res.result_int());
            check_problem(res, res.result_int());
        }
    }
    // A query string is not part of the path.
    auto res = w.get("/healthz?probe=1");
    BOOST_TEST(res.result_int() == 200u);
}

BOOST_AUTO_TEST_CASE(healthz) {
    world w;
    auto res = w.get("/healthz");
    check_json_ok(res);
    BOOST_TEST(res.body() == R"({"status":"ok"})");
    BOOST_TEST(res.version() == 11u);
    BOOST_TEST(header(res, http::field::content_length) == std::to_string(res.body().size()));
}

// --- Impersonation ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(coworker_impersonation_and_exchange) {
    world w;
    std::string alice = w.alice();
    auto issued = w.get("/api/public/coworkers/12/impersonate", alice);
    check_json_ok(issued);
    std::string token = token_of(issued);

    auto exchanged = w.post("/api/public/auth/login/" + token);
    check_json_ok(exchanged);
    json::object s = body_object(exchanged);
    BOOST_TEST(keys_of(s) == session_object_keys, boost::test_tools::per_element());
    BOOST_TEST(string_member(s, "tokenType") == "Bearer");
    BOOST_TEST(int_member(s, "customerId") == 102);
    BOOST_TEST(int_member(s, "profileId") == 12);
    BOOST_TEST(int_member(s, "expiresIn") == 1800); // capped by the impersonation session ttl
    BOOST_TEST_REQUIRE(s.at("impersonator").is_object());
    const json::object& who = s.at("impersonator").get_object();
    BOOST_TEST(keys_of(who) == (std::vector<std::string>{"customerId", "profileId", "operator",
                                                         "impersonationId", "reason", "startedAt",
                                                         "expiresAt"}),
               boost::test_tools::per_element());
    BOOST_TEST(int_member(who, "customerId") == 100);
    BOOST_TEST(int_member(who, "profileId") == 10);
    BOOST_TEST(who.at("operator") == false);
    BOOST_TEST(who.at("reason").is_null());
    BOOST_TEST(string_member(who, "impersonationId").size() >= 22u);

    std::string impersonated = string_member(s, "accessToken");
    json::object info = w.session_info(impersonated);
    BOOST_TEST(int_member(info, "customerId") == 102);
    BOOST_TEST(int_member(info, "profileId") == 12);
    BOOST_TEST(info.at("impersonator") == s.at("impersonator"));

    // Single use.
    check_unauthorized(w.post("/api/public/auth/login/" + token), realm_invalid_token);

    // No chains, no switching, no operator calls from an impersonated session.
    check_problem(w.get("/api/public/coworkers/11/impersonate", impersonated), 403,
                  urn("impersonated-session"));
    check_problem(w.get("/api/public/coworkers/12/impersonate", impersonated), 403);
    check_problem(
        w.put("/api/public/coworkers/profiles/current", R"({"ProfileId":12})", impersonated), 403,
        urn("impersonated-session"));
    check_problem(
        w.put("/api/public/coworkers/profiles/current", R"({"ProfileId":10})", impersonated), 403);
    check_problem(w.get("/api/sys/users/impersonate?customerId=101", impersonated), 403,
                  urn("impersonated-session"));
    check_problem(w.get("/api/sys/audit", impersonated), 403, urn("operator-required"));
}

// Time moves by the request's clock, not by sleeping.
BOOST_AUTO_TEST_CASE(expired_token_and_session_cap) {
    world w(service_config{
        .session_ttl = 3600s, .impersonation_token_ttl = 1s, .impersonation_session_ttl = 2s});
    std::string alice = w.alice();
    std::string stale = token_of(w.get("/api/public/coworkers/12/impersonate", alice));
    std::string fresh = token_of(w.get("/api/public/coworkers/11/impersonate", alice));
    auto session = w.post("/api/public/auth/login/" + fresh);
    check_json_ok(session);
    json::object s = body_object(session);
    BOOST_TEST(int_member(s, "expiresIn") <= 2);
    const std::string refresh(s.at("refreshToken").get_string());
    const std::string access(s.at("accessToken").get_string());

    w.call.now += 2100ms;
    check_unauthorized(w.post("/api/public/auth/login/" + stale), realm_invalid_token); // exp
    // The cap holds across refresh: no refresh extends past it.
    check_problem(w.post("/api/public/auth/refresh",
                         json::serialize(json::object{{"refreshToken", refresh}})),
                  401, urn("invalid-refresh-token"));
    check_unauthorized(w.get("/api/public/auth/session", access), realm_invalid_token);
}

BOOST_AUTO_TEST_CASE(coworker_impersonation_denials) {
    world w;
    std::string alice = w.alice();
    check_problem(w.get("/api/public/coworkers/13/impersonate", alice), 403,
                  urn("role-forbidden"));                                     // owner -> owner
    check_problem(w.get("/api/public/coworkers/10/impersonate", alice), 403); // self
    check_problem(w.get("/api/public/coworkers/14/impersonate", alice), 403,
                  urn("operator-target")); // operator
    check_problem(w.get("/api/public/coworkers/20/impersonate", alice), 404,
                  urn("profile-not-found")); // other team
    check_problem(w.get("/api/public/coworkers/999/impersonate", alice), 404);
    std::string carol = w.access_token("carol@acme.test", "carol-pw");
    check_problem(w.get("/api/public/coworkers/11/impersonate", carol), 403); // member
}

BOOST_AUTO_TEST_CASE(exchange_of_garbage_tokens) {
    world w;
    for (std::string_view token : {"x", "a.b.c", "eyJhbGciOiJIUzI1NiJ9.e30.AAAA"}) {
        BOOST_TEST_CONTEXT(token) {
            check_unauthorized(w.post("/api/public/auth/login/" + std::string(token)),
                               realm_invalid_token);
        }
    }
}

BOOST_AUTO_TEST_CASE(logout_withdraws_unredeemed_tokens) {
    world w;
    std::string alice = w.alice();
    auto issued = w.get("/api/public/coworkers/12/impersonate", alice);
    check_json_ok(issued);
    std::string token = token_of(issued);
    BOOST_TEST_REQUIRE(w.post("/api/public/auth/logout", {}, alice).result_int() == 204u);
    check_unauthorized(w.post("/api/public/auth/login/" + token), realm_invalid_token);
}

BOOST_AUTO_TEST_CASE(operator_impersonation) {
    world w;
    std::string olga = w.olga();
    auto issued = w.get("/api/sys/users/impersonate?customerId=101", olga);
    check_json_ok(issued);
    std::string token = token_of(issued);

    auto exchanged = w.post("/api/public/auth/login/" + token);
    check_json_ok(exchanged);
    json::object s = body_object(exchanged);
    BOOST_TEST(int_member(s, "customerId") == 101);
    BOOST_TEST(int_member(s, "profileId") == 11);
    BOOST_TEST(s.at("impersonator").at("customerId") == 900);
    BOOST_TEST(s.at("impersonator").at("profileId").is_null());
    BOOST_TEST(s.at("impersonator").at("operator") == true);

    check_problem(w.get("/api/sys/users/impersonate?customerId=101", w.alice()), 403,
                  urn("operator-required"));
    check_problem(w.get("/api/sys/users/impersonate?customerId=999", olga), 404,
                  urn("customer-not-found"));
    check_problem(w.get("/api/sys/users/impersonate?customerId=900", olga), 403,
                  urn("operator-target"));
}

// --- Audit -----------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(audit_events_newest_first) {
    world w;
    std::string olga = w.olga();
    check_problem(w.post("/api/public/auth/login", test::login_body("alice@acme.test", "bad")), 401,
                  urn("invalid-credentials"));
    w.bob();

    auto res = w.get("/api/sys/audit?limit=2", olga);
    check_json_ok(res);
    json::object body = body_object(res);
    BOOST_TEST(keys_of(body) == (std::vector<std::string>{"Events"}),
               boost::test_tools::per_element());
    BOOST_TEST_REQUIRE(body.at("Events").is_array());
    const json::array& events = body.at("Events").get_array();
    BOOST_TEST_REQUIRE(events.size() == 2u);
    BOOST_TEST_REQUIRE(events[0].is_object());
    BOOST_TEST_REQUIRE(events[1].is_object());
    BOOST_TEST(string_member(events[0].get_object(), "event") == "login.succeeded");
    BOOST_TEST(int_member(events[0].get_object(), "customerId") == 101);
    BOOST_TEST(string_member(events[1].get_object(), "event") == "login.failed");
    BOOST_TEST(int_member(events[1].get_object(), "customerId") == 100);
    BOOST_TEST(string_member(events[1].get_object(), "remote") == "127.0.0.1:1234");

    // Without a limit, all three so far (olga's own login is the oldest).
    auto all = w.get("/api/sys/audit", olga);
    check_json_ok(all);
    json::object all_body = body_object(all);
    BOOST_TEST_REQUIRE(all_body.at("Events").is_array());
    const json::array& every = all_body.at("Events").get_array();
    BOOST_TEST_REQUIRE(every.size() == 3u);
    BOOST_TEST(int_member(every[2].get_object(), "customerId") == 900);

    check_problem(w.get("/api/sys/audit?limit=2", w.alice()), 403);
}

BOOST_AUTO_TEST_SUITE_END()

// The customer's side of impersonation: a reason on every record, the listing, and the end.
BOOST_AUTO_TEST_SUITE(impersonations_seen_by_the_customer)

namespace {

// Alice's token for Carol's profile 12, with the reason given (already URL-encoded).
std::string token_for_carol(world& w, const std::string& alice, std::string_view encoded_reason) {
    std::string target = "/api/public/coworkers/12/impersonate";
    if (!encoded_reason.empty())
        target += "?reason=" + std::string(encoded_reason);
    auto res = w.get(target, alice);
    check_json_ok(res);
    return std::string(body_object(res).at("token").as_string());
}

std::string redeem_token(world& w, const std::string& token) {
    auto res = w.post("/api/public/auth/login/" + token);
    check_json_ok(res);
    return std::string(body_object(res).at("accessToken").as_string());
}

json::array listing(world& w, std::string_view target, std::string_view token) {
    auto res = w.get(target, token);
    check_json_ok(res);
    return body_object(res).at("impersonations").as_array();
}

std::vector<json::object> lines_of(world& w, std::string_view event) {
    std::vector<json::object> out;
    for (const auto& e : w.audit.recent(1000))
        if (e.at("event").as_string() == event)
            out.push_back(e.as_object());
    return out;
}

http_response del(world& w, std::string_view target, std::string_view token) {
    return w.request(http::verb::delete_, target, {}, world::bearer(token));
}

} // namespace

BOOST_AUTO_TEST_CASE(the_reason_goes_everywhere_the_impersonation_is_recorded) {
    world w;
    const std::string alice = w.alice();
    const std::string token = token_for_carol(w, alice, "ticket+%2342%3A+caf%C3%A9");
    const std::string as_carol = redeem_token(w, token);
    const json::object who = w.session_info(as_carol).at("impersonator").as_object();
    BOOST_TEST(who.at("reason").as_string() == "ticket #42: café");
    const std::string id(who.at("impersonationId").as_string());
    const auto claims = w.signer->verify(token);
    BOOST_TEST_REQUIRE(claims.has_value());
    BOOST_TEST(claims->at("jti").as_string() == id); // the id is the token's jti
    BOOST_TEST(!who.at("startedAt").as_string().empty());
    BOOST_TEST(!who.at("expiresAt").as_string().empty());
    // A request of the impersonated session carries it too, and so does the end.
    BOOST_TEST(w.post("/api/public/auth/logout", {}, as_carol).result_int() == 204u);
    for (std::string_view event :
         {"impersonation.issued", "impersonation.exchanged", "logout", "impersonation.ended"}) {
        const auto lines = lines_of(w, event);
        BOOST_TEST_REQUIRE(lines.size() == 1u, event);
        BOOST_TEST(lines[0].at("impersonationId").as_string() == id, event);
        BOOST_TEST(lines[0].at("impersonationReason").as_string() == "ticket #42: café", event);
    }
    BOOST_TEST(lines_of(w, "impersonation.ended")[0].at("endReason").as_string() ==
               "impersonated_logout");
}

BOOST_AUTO_TEST_CASE(a_bad_reason_is_a_400_naming_it) {
    world w;
    const std::string alice = w.alice();
    const std::string olga = w.olga();
    const std::string long_reason(201, 'x');
    for (const std::string& bad :
         {std::string(""), long_reason, std::string("a%0Ab"), std::string("%FF"),
          std::string("%C2%85"), std::string("%ED%A0%80")}) {
        BOOST_TEST_CONTEXT("reason=" << bad) {
            auto res = w.get("/api/public/coworkers/12/impersonate?reason=" + bad, alice);
            BOOST_TEST(check_problem(res, 400, urn("invalid-request")).find("reason") !=
                       std::string::npos);
            res = w.get("/api/sys/users/impersonate?customerId=101&reason=" + bad, olga);
            BOOST_TEST(check_problem(res, 400, urn("invalid-request")).find("reason") !=
                       std::string::npos);
        }
    }
    // 200 characters are fine, counted as characters, not bytes.
    std::string two_hundred;
    for (int i = 0; i < 200; ++i)
        two_hundred += "%C3%A9";
    check_json_ok(w.get("/api/public/coworkers/12/impersonate?reason=" + two_hundred, alice));
    BOOST_TEST(lines_of(w, "impersonation.issued").size() == 1u); // only the good one
}

BOOST_AUTO_TEST_CASE(the_directory_can_require_a_reason) {
    world w;
    auto strict = test::edited_directory(
        [](json::object& doc) { doc["impersonationReasonRequired"] = true; });
    BOOST_TEST_REQUIRE(test::run_sync(w.service.reload(strict, nullptr, w.call)).has_value());
    const std::string alice = w.alice();
    auto res = w.get("/api/public/coworkers/12/impersonate", alice);
    BOOST_TEST(check_problem(res, 400, urn("invalid-request")).find("reason") != std::string::npos);
    check_json_ok(w.get("/api/public/coworkers/12/impersonate?reason=audit", alice));
}

BOOST_AUTO_TEST_CASE(the_customer_lists_and_ends_an_active_impersonation) {
    world w;
    const std::string alice = w.alice();
    const std::string as_carol = redeem_token(w, token_for_carol(w, alice, "support"));
    const std::string carol = w.access_token("carol@acme.test", "carol-pw");
    auto list = listing(w, "/api/public/auth/impersonations", carol);
    BOOST_TEST_REQUIRE(list.size() == 1u);
    const json::object& r = list[0].as_object();
    BOOST_TEST(keys_of(r) == (std::vector<std::string>{
                                 "impersonationId", "state", "actor", "targetProfileId", "reason",
                                 "issuedAt", "startedAt", "expiresAt", "endedAt", "endReason"}),
               boost::test_tools::per_element());
    BOOST_TEST(r.at("state").as_string() == "active");
    BOOST_TEST(
        r.at("actor") ==
        json::parse(R"({"customerId":100,"name":"Alice Archer","profileId":10,"operator":false})"));
    BOOST_TEST(r.at("targetProfileId").as_int64() == 12);
    BOOST_TEST(r.at("reason").as_string() == "support");
    BOOST_TEST(r.at("endedAt").is_null());
    BOOST_TEST(r.at("endReason").is_null());
    const std::string id(r.at("impersonationId").as_string());

    // Not Alice's to see from her side, nor anyone else's to end.
    BOOST_TEST(listing(w, "/api/public/auth/impersonations", alice).empty());
    check_problem(del(w, "/api/public/auth/impersonations/" + id, alice), 404,
                  urn("impersonation-not-found"));
    check_problem(del(w, "/api/public/auth/impersonations/nope", carol), 404,
                  urn("impersonation-not-found"));
    // The impersonated session itself may not look or end it.
    check_problem(w.get("/api/public/auth/impersonations", as_carol), 403,
                  urn("impersonated-session"));
    check_problem(del(w, "/api/public/auth/impersonations/" + id, as_carol), 403,
                  urn("impersonated-session"));

    auto ended = del(w, "/api/public/auth/impersonations/" + id, carol);
    BOOST_TEST(ended.result_int() == 204u);
    check_unauthorized(w.get("/api/public/auth/session", as_carol), realm_invalid_token);
    auto lines = lines_of(w, "impersonation.ended");
    BOOST_TEST_REQUIRE(lines.size() == 1u);
    BOOST_TEST(lines[0].at("endReason").as_string() == "target_ended");
    BOOST_TEST(lines[0].at("impersonationId").as_string() == id);
    // Again: 204, no new line.
    BOOST_TEST(del(w, "/api/public/auth/impersonations/" + id, carol).result_int() == 204u);
    BOOST_TEST(lines_of(w, "impersonation.ended").size() == 1u);
    list = listing(w, "/api/public/auth/impersonations", carol);
    BOOST_TEST_REQUIRE(list.size() == 1u);
    BOOST_TEST(list[0].at("state").as_string() == "ended");
    BOOST_TEST(list[0].at("endReason").as_string() == "target_ended");
    BOOST_TEST(!list[0].at("endedAt").is_null());
}

BOOST_AUTO_TEST_CASE(an_unredeemed_token_is_cancelled) {
    world w;
    const std::string alice = w.alice();
    const std::string token = token_for_carol(w, alice, "");
    const std::string carol = w.access_token("carol@acme.test", "carol-pw");
    auto list = listing(w, "/api/public/auth/impersonations", carol);
    BOOST_TEST_REQUIRE(list.size() == 1u);
    BOOST_TEST(list[0].at("state").as_string() == "issued");
    BOOST_TEST(list[0].at("startedAt").is_null());
    BOOST_TEST(list[0].at("reason").is_null());
    const std::string id(list[0].at("impersonationId").as_string());
    BOOST_TEST(del(w, "/api/public/auth/impersonations/" + id, carol).result_int() == 204u);
    check_unauthorized(w.post("/api/public/auth/login/" + token), realm_invalid_token);
    BOOST_TEST(lines_of(w, "impersonation.exchange_failed")[0].at("reason").as_string() ==
               "target_ended");
    BOOST_TEST(lines_of(w, "impersonation.ended").size() == 1u);
}

BOOST_AUTO_TEST_CASE(the_actors_logout_ends_the_impersonation) {
    world w;
    const std::string alice = w.alice();
    const std::string as_carol = redeem_token(w, token_for_carol(w, alice, ""));
    BOOST_TEST(w.post("/api/public/auth/logout", {}, alice).result_int() == 204u);
    check_unauthorized(w.get("/api/public/auth/session", as_carol), realm_invalid_token);
    auto lines = lines_of(w, "impersonation.ended");
    BOOST_TEST_REQUIRE(lines.size() == 1u);
    BOOST_TEST(lines[0].at("endReason").as_string() == "actor_logout");
}

BOOST_AUTO_TEST_CASE(time_ends_impersonations_once_on_the_record) {
    world w;
    const std::string alice = w.alice();
    (void)redeem_token(w, token_for_carol(w, alice, ""));
    (void)token_for_carol(w, alice, ""); // never redeemed
    const auto later = w.call.now + std::chrono::hours(2);
    BOOST_TEST(test::run_sync(w.service.end_expired_impersonations(later)) == 2u);
    BOOST_TEST(test::run_sync(w.service.end_expired_impersonations(later)) == 0u);
    std::vector<std::string> reasons;
    for (const auto& line : lines_of(w, "impersonation.ended"))
        reasons.emplace_back(line.at("endReason").as_string());
    std::sort(reasons.begin(), reasons.end());
    BOOST_TEST(reasons == (std::vector<std::string>{"expired", "not_redeemed"}),
               boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(operators_list_end_and_sign_out) {
    world w;
    const std::string alice = w.alice();
    const std::string olga = w.olga();
    const std::string as_carol = redeem_token(w, token_for_carol(w, alice, "a"));
    (void)token_for_carol(w, alice, "b");
    check_problem(w.get("/api/sys/impersonations", alice), 403, urn("operator-required"));
    auto all = listing(w, "/api/sys/impersonations", olga);
    BOOST_TEST_REQUIRE(all.size() == 2u);
    BOOST_TEST(all[0].at("reason").as_string() == "b"); // newest first
    BOOST_TEST(all[0].at("targetCustomerId").as_int64() == 102);
    auto active = listing(w, "/api/sys/impersonations?state=active", olga);
    BOOST_TEST_REQUIRE(active.size() == 1u);
    BOOST_TEST(listing(w, "/api/sys/impersonations?limit=1", olga).size() == 1u);
    const std::pair<std::string_view, std::string_view> bad_queries[] = {{"?state=paused", "state"},
                                                                         {"?limit=0", "limit"},
                                                                         {"?limit=1001", "limit"},
                                                                         {"?limit=x", "limit"}};
    for (const auto& [query, param] : bad_queries) {
        auto res = w.get("/api/sys/impersonations" + std::string(query), olga);
        BOOST_TEST(check_problem(res, 400, urn("invalid-request")).find(param) !=
                   std::string::npos);
    }
    const std::string id(active[0].at("impersonationId").as_string());
    BOOST_TEST(del(w, "/api/sys/impersonations/" + id, olga).result_int() == 204u);
    check_unauthorized(w.get("/api/public/auth/session", as_carol), realm_invalid_token);
    BOOST_TEST(lines_of(w, "impersonation.ended")[0].at("endReason").as_string() ==
               "operator_ended");
    check_problem(del(w, "/api/sys/impersonations/unknown", olga), 404,
                  urn("impersonation-not-found"));

    // A forced sign-out: Bob's two sessions, and the impersonation he was making.
    const std::string bob1 = w.bob();
    const std::string bob2 = w.bob();
    auto bob_token = w.get("/api/public/coworkers/12/impersonate", bob1);
    check_json_ok(bob_token);
    const std::string as_carol_by_bob =
        redeem_token(w, std::string(body_object(bob_token).at("token").as_string()));
    auto res = del(w, "/api/sys/customers/101/sessions", olga);
    check_json_ok(res);
    BOOST_TEST(body_object(res).at("endedSessions").as_int64() == 3);
    for (const auto& token : {bob1, bob2, as_carol_by_bob})
        check_unauthorized(w.get("/api/public/auth/session", token), realm_invalid_token);
    const auto revoked = lines_of(w, "sessions.revoked");
    BOOST_TEST_REQUIRE(revoked.size() == 1u);
    BOOST_TEST(revoked[0].at("customerId").as_int64() == 900);
    BOOST_TEST(revoked[0].at("targetCustomerId").as_int64() == 101);
    BOOST_TEST(revoked[0].at("count").as_int64() == 3);
    check_problem(del(w, "/api/sys/customers/999/sessions", olga), 404, urn("customer-not-found"));
    check_problem(del(w, "/api/sys/customers/101/sessions", alice), 403, urn("operator-required"));
}

BOOST_AUTO_TEST_CASE(operators_impersonations_can_be_hidden_from_customers) {
    world w;
    const std::string olga = w.olga();
    auto issued = w.get("/api/sys/users/impersonate?customerId=101&reason=x", olga);
    check_json_ok(issued);
    const std::string bob = w.bob();
    auto list = listing(w, "/api/public/auth/impersonations", bob);
    BOOST_TEST_REQUIRE(list.size() == 1u);
    BOOST_TEST(
        list[0].at("actor") ==
        json::parse(
            R"({"customerId":900,"name":"Olga Operator","profileId":null,"operator":true})"));
    auto hidden = test::edited_directory(
        [](json::object& doc) { doc["operatorImpersonationsVisible"] = false; });
    BOOST_TEST_REQUIRE(test::run_sync(w.service.reload(hidden, nullptr, w.call)).has_value());
    BOOST_TEST(listing(w, "/api/public/auth/impersonations", bob).empty());
    const std::string id(list[0].at("impersonationId").as_string());
    check_problem(del(w, "/api/public/auth/impersonations/" + id, bob), 404,
                  urn("impersonation-not-found"));
}

BOOST_AUTO_TEST_CASE(probes_answer_get_and_head) {
    world w;
    auto live = w.get("/livez");
    check_json_ok(live);
    auto head = w.request(http::verb::head, "/readyz");
    BOOST_TEST(head.result_int() == 200u);
    BOOST_TEST(head.body().empty());
    BOOST_TEST(header(head, http::field::content_length) ==
               std::to_string(std::string_view(R"({"status":"ready"})").size()));
    w.call.draining = true;
    check_problem(w.get("/readyz"), 503, urn("not-ready"));
    BOOST_TEST(w.get("/livez").result_int() == 200u);
}

BOOST_AUTO_TEST_SUITE_END()
