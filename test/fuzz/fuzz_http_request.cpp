// libFuzzer target: raw bytes -> one HTTP/1.1 request (Beast parser, the server's limits) ->
// request_handler::handle() over the whole service, without sockets.
//
// Every input gets a fresh service (sessions, audit ring, rate limiters) over a shared directory
// and signer, so runs do not depend on each other: a fuzzed logout or refresh cannot disable the
// tokens later inputs rely on, and failed logins cannot pile up into a permanent 429.
//
// Markers in the input are replaced, before parsing, by live credentials of this input's service:
//   @TOKEN@     access token of alice (100, owner of team 1, profile 10)
//   @REFRESH@   refresh token of that same session
//   @BOB@       access token of bob (101: admin 11 in team 1, member 21 in team 2)
//   @OPTOKEN@   access token of olga (900, operator)
//   @IMPTOKEN@  impersonation token issued by alice's session for carol's profile 12
// Access and refresh tokens are 32 characters; seeds with a marker inside a body declare the
// Content-Length of the body after replacement.
#include <portal_auth/audit_log.hpp>
#include <portal_auth/auth_service.hpp>
#include <portal_auth/directory.hpp>
#include <portal_auth/password_hash.hpp>
#include <portal_auth/request_handler.hpp>
#include <portal_auth/token_signer.hpp>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_world.hpp"
#include "response_serializer.hpp"

namespace {

using namespace portal_auth;
using namespace portal_auth::fuzz;
namespace http = boost::beast::http;
namespace json = boost::json;

bool has(const std::string& text, std::string_view marker) {
    return text.find(marker) != std::string::npos;
}

void substitute_markers(std::string& text, world& w) {
    if (!has(text, "@"))
        return;
    if (has(text, "@TOKEN@") || has(text, "@REFRESH@") || has(text, "@IMPTOKEN@")) {
        signed_in_session alice = w.login("alice@acme.test", "alice-pw");
        if (has(text, "@IMPTOKEN@")) {
            auto actor = w.run(w.service.authenticate(alice.tokens.access_token, the_call));
            if (!actor)
                fail("world: fresh session does not authenticate");
            auto token = w.run(w.service.impersonate_coworker(*actor, 12, std::nullopt, the_call));
            if (!token)
                fail("world: alice cannot impersonate carol");
            replace_all(text, "@IMPTOKEN@", *token);
        }
        replace_all(text, "@TOKEN@", alice.tokens.access_token);
        replace_all(text, "@REFRESH@", alice.tokens.refresh_token);
    }
    if (has(text, "@BOB@"))
        replace_all(text, "@BOB@", w.login("bob@acme.test", "bob-pw").tokens.access_token);
    if (has(text, "@OPTOKEN@"))
        replace_all(text, "@OPTOKEN@", w.login("olga@portal.test", "olga-pw").tokens.access_token);
}

// One request from the front of `input`, as the server reads it (8 KiB header, 16 KiB body).
// Nothing when the bytes are not one complete, valid request; trailing bytes are ignored.
std::optional<http_request> parse_request(std::string_view input) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(8192);
    parser.body_limit(16384);
    parser.eager(true);
    boost::system::error_code ec;
    std::size_t used = 0;
    while (!parser.is_done()) {
        if (used < input.size()) {
            std::size_t n =
                parser.put(boost::asio::buffer(input.data() + used, input.size() - used), ec);
            used += n;
            if (!ec) {
                if (n == 0)
                    return std::nullopt; // no progress: do not spin
                continue;
            }
            if (ec != http::error::need_more)
                return std::nullopt;
            if (n > 0)
                continue;
        }
        // Everything there is has been offered: the stream ends here.
        parser.put_eof(ec);
        if (ec || !parser.is_done())
            return std::nullopt;
    }
    return parser.release();
}

void check_response(const http_request& req, const http_response& res) {
    const auto dump = [&] {
        std::ostringstream out;
        out << req.method_string() << ' ' << req.target() << "\n-> " << res.result_int() << ' '
            << res.body();
        return out.str();
    };
    const unsigned status = res.result_int();
    if (status < 100 || status > 599)
        fail("status out of range", dump());
    // handle() turns an exception from an endpoint into a 500: a bug by its own contract.
    if (status == 500)
        fail("500: an endpoint threw", dump());
    if (res.version() != req.version())
        fail("response version differs from the request's", dump());
    if (res.keep_alive() != req.keep_alive())
        fail("keep-alive differs from the request's", dump());

    const std::string_view type = res[http::field::content_type];
    const bool is_problem = type == "application/problem+json";
    if (!res.body().empty() && (type == "application/json" || is_problem)) {
        boost::system::error_code ec;
        json::value body = json::parse(res.body(), ec);
        if (ec)
            fail("JSON response body does not parse", dump());
        if (is_problem) {
            const json::object* obj = body.if_object();
            const json::value* st = obj ? obj->if_contains("status") : nullptr;
            boost::system::error_code number_ec;
            const auto st_value = st ? st->to_number<std::int64_t>(number_ec) : -1;
            if (!st || number_ec || st_value != static_cast<std::int64_t>(status))
                fail("problem details without the response's status", dump());
            if (!obj->if_contains("title") || !obj->if_contains("detail"))
                fail("problem details without title/detail", dump());
        }
    }
    if (status == 401 && !res[http::field::www_authenticate].starts_with("Bearer realm="))
        fail("401 without WWW-Authenticate: Bearer", dump());
    if (auto it = res.find(http::field::content_length); it != res.end()) {
        if (it->value() != std::to_string(res.body().size()))
            fail("Content-Length does not match the body", dump());
    }
    // The listener's one-buffer serialization must be Beast's, byte for byte.
    std::ostringstream wire;
    wire << res;
    if (!wire)
        fail("response does not serialize", dump());
    std::string ours;
    serialize_response(res, ours);
    if (ours != wire.str())
        fail("serialize_response differs from Beast's serializer", dump());
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    shared();
    world w;
    std::string input(reinterpret_cast<const char*>(data), size);
    substitute_markers(input, w);
    auto request = parse_request(input);
    if (!request)
        return 0;
    http_response response = w.run(w.handler(*request, the_call));
    check_response(*request, response);
    return 0;
}
