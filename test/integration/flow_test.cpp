// The whole service over real TLS on 127.0.0.1: the impersonation hand-off end to end, every
// error status, and hostile input that must leave the server serving.
#include <boost/json/serialize.hpp>
#include <boost/test/unit_test.hpp>

#include <thread>

#include "test_support.hpp"

using namespace portal_auth;
using namespace portal_auth::test;
namespace http = boost::beast::http;
namespace json = boost::json;

namespace {

struct signed_in {
    std::string access;
    std::string refresh;
};

signed_in login(https_client& c, std::string_view email, std::string_view password) {
    auto r = c.post("/api/public/auth/login", login_body(email, password));
    BOOST_TEST_REQUIRE(r.status == 200u, r.body);
    auto j = r.json().as_object();
    return {std::string(j.at("accessToken").as_string()),
            std::string(j.at("refreshToken").as_string())};
}

std::string impersonation_token(https_client& c, const signed_in& actor, profile_id target) {
    auto r =
        c.get("/api/public/coworkers/" + std::to_string(target) + "/impersonate", actor.access);
    BOOST_TEST_REQUIRE(r.status == 200u, r.body);
    BOOST_TEST(r.header("Cache-Control") == "no-store");
    return std::string(r.json().at("token").as_string());
}

response redeem(https_client& c, std::string_view token) {
    return c.post("/api/public/auth/login/" + std::string(token));
}

void check_problem(const response& r, unsigned status, std::string_view detail_part = {}) {
    BOOST_TEST(r.status == status, r.body);
    BOOST_TEST(r.header("Content-Type") == "application/problem+json");
    auto j = r.json().as_object();
    // about:blank only where the status says it all; our own failure kinds have a URN.
    const std::string type(j.at("type").as_string());
    const bool plain_http = status == 404 || status == 405 || status == 413 || status == 431;
    if (plain_http && r.body.find("no such") != std::string::npos &&
        r.body.find("endpoint") != std::string::npos)
        BOOST_TEST(type == "about:blank");
    else if (status == 405 || status == 413 || status == 431)
        BOOST_TEST(type == "about:blank");
    else
        BOOST_TEST(type.starts_with("urn:portal-auth:problem:"), type);
    BOOST_TEST(j.at("status").as_int64() == status);
    BOOST_TEST(j.at("title").as_string() ==
               std::string(http::obsolete_reason(static_cast<http::status>(status))));
    BOOST_TEST(j.at("detail").is_string());
    if (!detail_part.empty())
        BOOST_TEST(std::string(j.at("detail").as_string()).find(detail_part) != std::string::npos,
                   j.at("detail").as_string());
}

void check_401(const response& r, bool token_presented) {
    check_problem(r, 401);
    BOOST_TEST(r.header("WWW-Authenticate") ==
               (token_presented ? R"(Bearer realm="portal-auth", error="invalid_token")"
                                : R"(Bearer realm="portal-auth")"));
}

} // namespace

BOOST_AUTO_TEST_SUITE(integration_flow)

BOOST_AUTO_TEST_CASE(impersonation_hand_off_end_to_end) {
    temp_dir dir;
    running_server srv({}, {}, dir.file("audit.jsonl").string());
    https_client c(srv.port());

    auto alice = login(c, "alice@acme.test", "alice-pw");
    auto listing = c.get("/api/public/coworkers/profiles", alice.access);
    BOOST_TEST_REQUIRE(listing.status == 200u);
    auto lj = listing.json().as_object();
    BOOST_TEST(lj.at("CurrentProfileId").as_int64() == 10);
    const auto& first = lj.at("Profiles").as_array().at(0).as_object();
    BOOST_TEST(json::serialize(first) ==
               R"({"Id":10,"CustomerId":100,"Name":"Alice Archer","Email":"alice@acme.test",)"
               R"("TeamId":1,"TeamName":"Acme Corp","Role":"Owner","IsCurrent":true,)"
               R"("IsOwn":true,"CanImpersonate":false})");

    auto token = impersonation_token(c, alice, 12);
    auto exchanged = redeem(c, token);
    BOOST_TEST_REQUIRE(exchanged.status == 200u, exchanged.body);
    BOOST_TEST(exchanged.header("Cache-Control") == "no-store");
    auto ej = exchanged.json().as_object();
    BOOST_TEST(ej.at("tokenType").as_string() == "Bearer");
    BOOST_TEST(ej.at("customerId").as_int64() == 102);
    BOOST_TEST(ej.at("profileId").as_int64() == 12);
    BOOST_TEST(ej.at("expiresIn").as_int64() > 0);
    BOOST_TEST(ej.at("expiresIn").as_int64() <= 1800);
    const auto& actor = ej.at("impersonator");
    BOOST_TEST(actor.at("customerId").as_int64() == 100);
    BOOST_TEST(actor.at("profileId").as_int64() == 10);
    BOOST_TEST(actor.at("operator").as_bool() == false);
    BOOST_TEST(actor.at("reason").is_null());
    signed_in carol{std::string(ej.at("accessToken").as_string()),
                    std::string(ej.at("refreshToken").as_string())};

    auto info = c.get("/api/public/auth/session", carol.access);
    BOOST_TEST_REQUIRE(info.status == 200u);
    auto ij = info.json().as_object();
    BOOST_TEST(ij.at("customerId").as_int64() == 102);
    BOOST_TEST(ij.at("expiresAt").as_string().size() == 20u); // 2026-11-25T17:21:43Z
    BOOST_TEST(ij.at("impersonator").at("customerId").as_int64() == 100);

    // The impersonated session can neither impersonate nor switch.
    check_problem(c.get("/api/public/coworkers/11/impersonate", carol.access), 403);
    check_problem(c.request(http::verb::put, "/api/public/coworkers/profiles/current",
                            R"({"ProfileId":12})", carol.access),
                  403);

    // Each token works once; a tampered one never.
    check_401(redeem(c, token), true);
    auto second = impersonation_token(c, alice, 11);
    std::string tampered = second;
    tampered[tampered.size() - 3] = tampered[tampered.size() - 3] == 'A' ? 'B' : 'A';
    check_401(redeem(c, tampered), true);
    check_401(redeem(c, "not-a-jwt"), true);
    // An access token is not an impersonation token, nor the reverse.
    check_401(redeem(c, alice.access), true);
    check_401(c.get("/api/public/auth/session", second), true);
    BOOST_TEST(redeem(c, second).status == 200u); // the untampered original still works

    // The actor's logout ends the impersonated session and withdraws unredeemed tokens.
    auto unredeemed = impersonation_token(c, alice, 11);
    BOOST_TEST(c.post("/api/public/auth/logout", {}, alice.access).status == 204u);
    check_401(c.get("/api/public/auth/session", alice.access), true);
    check_401(c.get("/api/public/auth/session", carol.access), true);
    check_401(c.post("/api/public/auth/refresh",
                     json::serialize(json::object{{"refreshToken", carol.refresh}})),
              true);
    check_401(redeem(c, unredeemed), true);

    // The audit trail has the hand-off, and no secret.
    srv.stop_and_wait();
    std::string log = read_file(dir.file("audit.jsonl"));
    for (auto event : {"login.succeeded", "impersonation.issued", "impersonation.exchanged",
                       "impersonation.denied", "profile.switch_denied", "logout",
                       "impersonation.exchange_failed"})
        BOOST_TEST(log.find(std::string("\"event\":\"") + event + "\"") != std::string::npos,
                   event);
    for (const std::string& secret : {alice.access, alice.refresh, carol.access, carol.refresh,
                                      token, second, unredeemed, std::string("alice-pw")})
        BOOST_TEST(log.find(secret) == std::string::npos);
    BOOST_TEST(log.find("\"remote\":\"127.0.0.1:") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(refresh_rotates_and_cap_survives_refresh) {
    running_server srv(service_config{.session_ttl = std::chrono::seconds(3600),
                                      .impersonation_session_ttl = std::chrono::seconds(120)});
    https_client c(srv.port());
    auto bob = login(c, "bob@acme.test", "bob-pw");
    auto r = c.post("/api/public/auth/refresh",
                    json::serialize(json::object{{"refreshToken", bob.refresh}}));
    BOOST_TEST_REQUIRE(r.status == 200u, r.body);
    auto rj = r.json().as_object();
    BOOST_TEST(rj.at("refreshToken").as_string() != bob.refresh);
    BOOST_TEST(rj.at("expiresIn").as_int64() == 3600);
    std::string new_access(rj.at("accessToken").as_string());
    BOOST_TEST(c.get("/api/public/auth/session", new_access).status == 200u);
    check_401(c.get("/api/public/auth/session", bob.access), true); // rotated away
    // Reusing the rotated refresh token revokes the whole session: the new tokens too.
    check_401(c.post("/api/public/auth/refresh",
                     json::serialize(json::object{{"refreshToken", bob.refresh}})),
              true);
    check_401(c.get("/api/public/auth/session", new_access), true);
    check_401(c.post("/api/public/auth/refresh",
                     json::serialize(json::object{{"refreshToken", rj.at("refreshToken")}})),
              true);
    auto audit = srv.audit().recent(1);
    BOOST_TEST(audit[0].at("event").as_string() == "refresh.reuse_detected");

    // An impersonated session refreshed keeps its cap: expiresIn never exceeds 120.
    auto bob_again = login(c, "bob@acme.test", "bob-pw");
    auto bob_token = impersonation_token(c, bob_again, 12);
    auto imp = redeem(c, bob_token).json().as_object();
    auto refreshed =
        c.post("/api/public/auth/refresh",
               json::serialize(json::object{{"refreshToken", imp.at("refreshToken")}}));
    BOOST_TEST_REQUIRE(refreshed.status == 200u);
    BOOST_TEST(refreshed.json().at("expiresIn").as_int64() <= 120);
    BOOST_TEST(refreshed.json().at("impersonator").at("customerId").as_int64() == 101);
}

BOOST_AUTO_TEST_CASE(operator_impersonation_and_audit) {
    running_server srv;
    https_client c(srv.port());
    auto olga = login(c, "olga@portal.test", "olga-pw");
    auto alice = login(c, "alice@acme.test", "alice-pw");

    auto r = c.get("/api/sys/users/impersonate?customerId=101", olga.access);
    BOOST_TEST_REQUIRE(r.status == 200u, r.body);
    auto session = redeem(c, std::string(r.json().at("token").as_string()));
    BOOST_TEST_REQUIRE(session.status == 200u);
    const auto actor = session.json().at("impersonator");
    BOOST_TEST(actor.at("customerId").as_int64() == 900);
    BOOST_TEST(actor.at("profileId").is_null());
    BOOST_TEST(actor.at("operator").as_bool() == true);
    BOOST_TEST(session.json().at("profileId").as_int64() == 11);

    check_problem(c.get("/api/sys/users/impersonate?customerId=101", alice.access), 403);
    check_problem(c.get("/api/sys/users/impersonate?customerId=900", olga.access), 403);
    check_problem(c.get("/api/sys/users/impersonate?customerId=4242", olga.access), 404);
    check_problem(c.get("/api/sys/users/impersonate?customerId=abc", olga.access), 400,
                  "customerId");
    check_problem(c.get("/api/sys/users/impersonate", olga.access), 400, "customerId");

    auto audit = c.get("/api/sys/audit?limit=3", olga.access);
    BOOST_TEST_REQUIRE(audit.status == 200u);
    auto events = audit.json().at("Events").as_array();
    BOOST_TEST(events.size() == 3u);
    BOOST_TEST(events[0].at("event").as_string() == "impersonation.denied"); // newest first
    check_problem(c.get("/api/sys/audit?limit=0", olga.access), 400, "limit");
    check_problem(c.get("/api/sys/audit", alice.access), 403);
}

BOOST_AUTO_TEST_CASE(error_statuses) {
    running_server srv;
    https_client c(srv.port());
    auto bob = login(c, "bob@acme.test", "bob-pw");

    check_401(c.post("/api/public/auth/login", login_body("bob@acme.test", "nope")), false);
    check_401(c.post("/api/public/auth/login", login_body("ghost@acme.test", "nope")), false);
    check_401(c.get("/api/public/auth/session"), false);
    check_401(c.get("/api/public/auth/session", "garbage-token"), true);
    check_problem(c.get("/api/nope"), 404);
    auto wrong_method = c.get("/api/public/auth/login");
    check_problem(wrong_method, 405);
    BOOST_TEST(wrong_method.header("Allow") == "POST");
    check_problem(c.post("/api/public/auth/login", "{not json"), 400);
    check_problem(c.post("/api/public/auth/login", R"({"email":"bob@acme.test"})"), 400,
                  "password");
    check_problem(c.post("/api/public/auth/login", R"({"email":5,"password":"x"})"), 400, "email");
    check_problem(c.post("/api/public/auth/refresh", "[]"), 400);
    check_problem(c.get("/api/public/coworkers/abc/impersonate", bob.access), 400, "coworkerId");
    check_problem(c.get("/api/public/coworkers/99999999999999999999/impersonate", bob.access), 400,
                  "coworkerId");
    check_problem(c.get("/api/public/coworkers/10/impersonate", bob.access), 403); // admin->owner
    check_problem(c.get("/api/public/coworkers/20/impersonate", bob.access), 404); // other team
    auto put = [&](std::string_view body) {
        return c.request(http::verb::put, "/api/public/coworkers/profiles/current", body,
                         bob.access);
    };
    check_problem(put(R"({"ProfileId":"21"})"), 400, "ProfileId");
    check_problem(put(R"({})"), 400, "ProfileId");
    check_problem(put(R"({"ProfileId":12})"), 403);
    check_problem(put(R"({"ProfileId":777})"), 404);
    auto switched = put(R"({"ProfileId":21})");
    BOOST_TEST_REQUIRE(switched.status == 200u);
    BOOST_TEST(switched.json().at("profileId").as_int64() == 21);
    BOOST_TEST(c.get("/api/public/auth/session", bob.access).json().at("profileId").as_int64() ==
               21);
    auto health = c.get("/healthz");
    BOOST_TEST(health.status == 200u);
    BOOST_TEST(health.body == R"({"status":"ok"})");
    BOOST_TEST(!health.header("Strict-Transport-Security").empty());
}

BOOST_AUTO_TEST_CASE(hostile_input_leaves_the_server_serving) {
    running_server srv;
    {
        https_client garbage(srv.port());
        auto answer = garbage.raw_exchange("\x16\x03\x01garbage\r\n\r\n");
        BOOST_TEST(answer.find("HTTP/1.1 400") == 0u, answer);
    }
    {
        https_client big_header(srv.port());
        auto answer = big_header.raw_exchange(
            "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(9000, 'a') + "\r\n\r\n");
        BOOST_TEST(answer.find("HTTP/1.1 431") == 0u, answer.substr(0, 100));
    }
    {
        https_client big_body(srv.port());
        std::string body(1024 * 1024, 'x');
        auto answer = big_body.raw_exchange(
            "POST /api/public/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: "
            "application/json\r\nContent-Length: " +
            std::to_string(body.size()) + "\r\n\r\n" + body.substr(0, 20000));
        BOOST_TEST(answer.find("HTTP/1.1 413") == 0u, answer.substr(0, 100));
    }
    {
        https_client nul(srv.port());
        auto answer = nul.raw_exchange(std::string("GET /\0\0 HTTP/1.1\r\n\r\n", 21));
        BOOST_TEST(answer.find("HTTP/1.1 400") == 0u, answer.substr(0, 100));
    }
    // A plain-TCP client that speaks no TLS is dropped without harm.
    {
        boost::asio::io_context ioc;
        boost::asio::ip::tcp::socket s(ioc);
        s.connect({boost::asio::ip::make_address("127.0.0.1"), srv.port()});
        boost::asio::write(s, boost::asio::buffer(std::string("GET / HTTP/1.1\r\n\r\n")));
    }
    https_client c(srv.port());
    BOOST_TEST(c.get("/healthz").status == 200u);
    // Keep-alive: several requests on one connection.
    for (int i = 0; i < 5; ++i)
        BOOST_TEST(c.get("/healthz").status == 200u);
}

BOOST_AUTO_TEST_CASE(throttled_login_answers_429_with_retry_after) {
    running_server srv;
    https_client c(srv.port());
    for (int i = 0; i < 5; ++i)
        check_401(c.post("/api/public/auth/login", login_body("carol@acme.test", "nope")), false);
    auto r = c.post("/api/public/auth/login", login_body("carol@acme.test", "carol-pw"));
    check_problem(r, 429);
    BOOST_TEST(r.header("Retry-After") == "300");
    BOOST_TEST(c.get("/healthz").status == 200u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(customer_side_end_to_end)

// Alice impersonates Carol with a reason; Carol sees it, with the reason, and ends it; Alice's
// impersonated tokens stop working; the audit trail has issued, exchanged and ended, with one
// impersonationId and the reason on all three.
BOOST_AUTO_TEST_CASE(the_impersonated_customer_sees_and_ends_it) {
    running_server srv;
    https_client c(srv.port());
    auto login = [&](std::string_view email, std::string_view password) {
        auto r = c.post("/api/public/auth/login", login_body(email, password));
        BOOST_TEST_REQUIRE(r.status == 200u, r.body);
        return r.json().as_object();
    };
    const std::string alice(login("alice@acme.test", "alice-pw").at("accessToken").as_string());
    auto issued = c.get("/api/public/coworkers/12/impersonate?reason=billing%20question", alice);
    BOOST_TEST_REQUIRE(issued.status == 200u, issued.body);
    auto exchanged =
        c.post("/api/public/auth/login/" + std::string(issued.json().at("token").as_string()));
    BOOST_TEST_REQUIRE(exchanged.status == 200u, exchanged.body);
    const std::string as_carol(exchanged.json().at("accessToken").as_string());
    const std::string as_carol_refresh(exchanged.json().at("refreshToken").as_string());

    const std::string carol(login("carol@acme.test", "carol-pw").at("accessToken").as_string());
    auto listed = c.get("/api/public/auth/impersonations", carol);
    BOOST_TEST_REQUIRE(listed.status == 200u, listed.body);
    const boost::json::array list = listed.json().at("impersonations").as_array();
    BOOST_TEST_REQUIRE(list.size() == 1u);
    BOOST_TEST(list[0].at("state").as_string() == "active");
    BOOST_TEST(list[0].at("reason").as_string() == "billing question");
    BOOST_TEST(list[0].at("actor").at("name").as_string() == "Alice Archer");
    const std::string id(list[0].at("impersonationId").as_string());

    auto ended = c.request(http::verb::delete_, "/api/public/auth/impersonations/" + id, {}, carol);
    BOOST_TEST(ended.status == 204u, ended.body);
    BOOST_TEST(c.get("/api/public/auth/session", as_carol).status == 401u);
    BOOST_TEST(
        c.post("/api/public/auth/refresh", R"({"refreshToken":")" + as_carol_refresh + R"("})")
            .status == 401u);

    std::vector<std::string> events;
    for (const auto& e : srv.audit().recent(100, audit_category::impersonation)) {
        BOOST_TEST(e.at("impersonationId").as_string() == id);
        BOOST_TEST(e.at("impersonationReason").as_string() == "billing question");
        events.emplace_back(e.at("event").as_string());
    }
    BOOST_TEST(events == (std::vector<std::string>{"impersonation.ended", "impersonation.exchanged",
                                                   "impersonation.issued"}),
               boost::test_tools::per_element());
    BOOST_TEST(
        srv.audit().recent(1, audit_category::impersonation)[0].at("endReason").as_string() ==
        "target_ended");
}

BOOST_AUTO_TEST_SUITE_END()
