// serialize_response against Beast's own serializer: the same bytes for every response shape the
// service sends (JSON, problem+json with WWW-Authenticate, 204 without a body, Connection: close,
// HTTP/1.0, a custom reason), and appending to a reused buffer.
#include <portal_auth/request_handler.hpp>

#include <boost/beast/core/ostream.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/test/unit_test.hpp>

#include <sstream>
#include <string>

#include "response_serializer.hpp"

using namespace portal_auth;
namespace http = boost::beast::http;

namespace {

std::string beast_bytes(const http_response& res) {
    std::ostringstream out;
    out << res;
    return out.str();
}

std::string our_bytes(const http_response& res) {
    std::string out;
    serialize_response(res, out);
    return out;
}

http_response json_ok(unsigned version, bool keep_alive) {
    http_response res{http::status::ok, version};
    res.set(http::field::server, "portal-auth");
    res.set(http::field::content_type, "application/json");
    res.set("X-Content-Type-Options", "nosniff");
    res.keep_alive(keep_alive);
    res.body() = R"({"status":"ok"})";
    res.prepare_payload();
    return res;
}

} // namespace

BOOST_AUTO_TEST_SUITE(response_serializer_suite)

BOOST_AUTO_TEST_CASE(json_response_matches_beast) {
    auto res = json_ok(11, true);
    BOOST_TEST(our_bytes(res) == beast_bytes(res));
    BOOST_TEST(our_bytes(res).starts_with("HTTP/1.1 200 OK\r\nServer: portal-auth\r\n"));
    BOOST_TEST(our_bytes(res).ends_with("\r\n\r\n{\"status\":\"ok\"}"));
}

BOOST_AUTO_TEST_CASE(connection_close_and_http_1_0_match_beast) {
    for (unsigned version : {10u, 11u})
        for (bool keep_alive : {false, true}) {
            auto res = json_ok(version, keep_alive);
            BOOST_TEST(our_bytes(res) == beast_bytes(res));
        }
    BOOST_TEST(our_bytes(json_ok(10, true)).starts_with("HTTP/1.0 200 OK\r\n"));
    BOOST_TEST(our_bytes(json_ok(11, false)).find("Connection: close\r\n") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(problem_responses_match_beast) {
    for (auto status :
         {http::status::bad_request, http::status::unauthorized, http::status::method_not_allowed,
          http::status::too_many_requests, http::status::request_header_fields_too_large,
          http::status::internal_server_error}) {
        for (bool token_presented : {false, true}) {
            auto res =
                make_problem_response(status, "about:blank", "detail", 11, true, token_presented);
            BOOST_TEST(our_bytes(res) == beast_bytes(res));
        }
    }
}

BOOST_AUTO_TEST_CASE(no_content_and_custom_reason_match_beast) {
    http_response empty{http::status::no_content, 11};
    empty.set(http::field::cache_control, "no-store");
    BOOST_TEST(our_bytes(empty) == beast_bytes(empty));
    BOOST_TEST(our_bytes(empty) == "HTTP/1.1 204 No Content\r\nCache-Control: no-store\r\n\r\n");

    http_response reasoned{http::status::ok, 11};
    reasoned.reason("Fine");
    reasoned.prepare_payload();
    BOOST_TEST(our_bytes(reasoned) == beast_bytes(reasoned));
    BOOST_TEST(our_bytes(reasoned).starts_with("HTTP/1.1 200 Fine\r\n"));
}

BOOST_AUTO_TEST_CASE(appends_to_what_the_buffer_holds) {
    auto first = json_ok(11, true);
    auto second = make_problem_response(http::status::not_found, "about:blank", "no such endpoint");
    std::string out = "kept:";
    serialize_response(first, out);
    serialize_response(second, out);
    BOOST_TEST(out == "kept:" + beast_bytes(first) + beast_bytes(second));
}

BOOST_AUTO_TEST_SUITE_END()
