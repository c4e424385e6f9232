// libFuzzer target: arbitrary bytes as the JSON body of the three endpoints that read one:
// POST /api/public/auth/login, PUT /api/public/coworkers/profiles/current (with bob's bearer
// token) and POST /api/public/auth/refresh, through request_handler::handle().
//
// Each input gets a fresh service over a shared directory and signer, so runs are independent.
// "@REFRESH@" in the input is replaced by the refresh token of a live session of alice, so the
// fuzzer can reach a successful refresh.
//
// Checked: the status is one the API documents for these endpoints (200, 400, 401, 403, 404,
// 429), JSON bodies parse, and a 200 means what it says (the new session authenticates as the
// right customer; a refresh retires the old access token; a switch lands on one of bob's own
// profiles).
#include <portal_auth/audit_log.hpp>
#include <portal_auth/auth_service.hpp>
#include <portal_auth/directory.hpp>
#include <portal_auth/password_hash.hpp>
#include <portal_auth/request_handler.hpp>
#include <portal_auth/token_signer.hpp>

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_world.hpp"

namespace {

using namespace portal_auth;
using namespace portal_auth::fuzz;
namespace http = boost::beast::http;
namespace json = boost::json;

http_request make_request(http::verb method, std::string_view target, const std::string& body,
                          std::string_view bearer = {}) {
    http_request req{method, target, 11};
    req.set(http::field::host, "127.0.0.1");
    req.set(http::field::content_type, "application/json");
    if (!bearer.empty())
        req.set(http::field::authorization, "Bearer " + std::string(bearer));
    req.body() = body;
    req.prepare_payload();
    return req;
}

// The response's status is a documented one and its JSON body parses; returns that body.
json::value checked(const http_response& res, std::string_view endpoint) {
    const auto dump = [&] {
        return std::string(endpoint) + " -> " + std::to_string(res.result_int()) + " " + res.body();
    };
    switch (res.result_int()) {
    case 200:
    case 400:
    case 401:
    case 403:
    case 404:
    case 429:
        break;
    default:
        fail("undocumented status", dump());
    }
    boost::system::error_code ec;
    json::value body = json::parse(res.body(), ec);
    if (ec)
        fail("response body is not JSON", dump());
    if (res.result_int() == 200) {
        if (res[http::field::content_type] != "application/json" || !body.is_object())
            fail("200 without a JSON object", dump());
    } else if (res[http::field::content_type] != "application/problem+json") {
        fail("error without problem details", dump());
    }
    return body;
}

std::int64_t int_field(const json::value& body, std::string_view key, std::string_view context) {
    const json::value* v = body.as_object().if_contains(key);
    if (!v || !v->is_int64())
        fail("session JSON without an integer field", context);
    return v->get_int64();
}

std::string_view string_field(const json::value& body, std::string_view key,
                              std::string_view context) {
    const json::value* v = body.as_object().if_contains(key);
    if (!v || !v->is_string())
        fail("session JSON without a string field", context);
    return v->get_string();
}

// A session object from a 200: its access token is live and belongs to its customer.
void check_session_object(world& w, const json::value& body, const http_response& res) {
    auto token = string_field(body, "accessToken", res.body());
    auto customer = int_field(body, "customerId", res.body());
    auto session = w.run(w.service.authenticate(token, the_call));
    if (!session || session->data.customer != customer)
        fail("200 session object whose access token does not authenticate as its customer",
             res.body());
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    shared();
    world w;
    const signed_in_session alice = w.login("alice@acme.test", "alice-pw");
    const signed_in_session bob = w.login("bob@acme.test", "bob-pw");

    std::string body(reinterpret_cast<const char*>(data), size);
    replace_all(body, "@REFRESH@", alice.tokens.refresh_token);

    {
        auto res = w.run(
            w.handler(make_request(http::verb::post, "/api/public/auth/login", body), the_call));
        auto json_body = checked(res, "login");
        if (res.result_int() == 200)
            check_session_object(w, json_body, res);
    }
    {
        auto res =
            w.run(w.handler(make_request(http::verb::put, "/api/public/coworkers/profiles/current",
                                         body, bob.tokens.access_token),
                            the_call));
        auto json_body = checked(res, "switch profile");
        if (res.result_int() == 401)
            fail("bob's live bearer token refused", res.body());
        if (res.result_int() == 200) {
            auto now = w.run(w.service.authenticate(bob.tokens.access_token, the_call));
            auto profile = int_field(json_body, "profileId", res.body());
            const auto* p = shared().dir->find_profile(profile);
            if (!now || now->data.profile != profile || !p || p->customer != 101)
                fail("switch answered 200 but the session is not on one of bob's profiles",
                     res.body());
        }
    }
    {
        auto res = w.run(
            w.handler(make_request(http::verb::post, "/api/public/auth/refresh", body), the_call));
        auto json_body = checked(res, "refresh");
        if (res.result_int() == 200) {
            check_session_object(w, json_body, res);
            if (int_field(json_body, "customerId", res.body()) != 100)
                fail("refresh of alice's token answered for someone else", res.body());
            if (w.run(w.service.authenticate(alice.tokens.access_token, the_call)))
                fail("refresh left the old access token working", res.body());
        }
    }
    return 0;
}
