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
#include <portal_auth/session_store.hpp>
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

namespace {

using namespace portal_auth;
namespace http = boost::beast::http;
namespace json = boost::json;

[[noreturn]] void fail(const char* what, std::string_view context = {}) {
    std::fprintf(stderr, "fuzz_http_request: %s\n%.*s\n", what, static_cast<int>(context.size()),
                 context.data());
    std::abort();
}

// ---- the world: the test directory's shape with cheap (but real) scrypt hashes ----

struct person {
    std::int64_t id;
    const char* email;
    const char* name;
    const char* password;
    bool is_operator;
};

constexpr person people[] = {
    {100, "alice@acme.test", "Alice Archer", "alice-pw", false},
    {101, "bob@acme.test", "Bob Baker", "bob-pw", false},
    {102, "carol@acme.test", "Carol Chen", "carol-pw", false},
    {103, "dave@globex.test", "Dave Diaz", "dave-pw", false},
    {104, "erin@globex.test", "Erin Evans", "erin-pw", false},
    {105, "frank@globex.test", "Frank Fischer", "frank-pw", false},
    {106, "gina@acme.test", "Gina Gray", "gina-pw", false},
    {900, "olga@portal.test", "Olga Operator", "olga-pw", true},
};

struct membership {
    std::int64_t id, customer, team;
    const char* role;
};

constexpr membership memberships[] = {
    {10, 100, 1, "owner"},  {11, 101, 1, "admin"},  {12, 102, 1, "member"}, {13, 106, 1, "owner"},
    {14, 900, 1, "member"}, {20, 103, 2, "owner"},  {21, 101, 2, "member"}, {22, 104, 2, "admin"},
    {23, 105, 2, "member"}, {30, 900, 3, "owner"},
};

std::string world_directory_json() {
    json::array customers;
    for (const person& p : people) {
        auto hash = hash_password(p.password, scrypt_params{.log2_n = 1, .r = 1, .p = 1});
        if (!hash)
            fail("hash_password failed");
        customers.push_back(json::object{{"id", p.id},
                                         {"email", p.email},
                                         {"name", p.name},
                                         {"passwordHash", format_password_hash(*hash)},
                                         {"operator", p.is_operator}});
    }
    json::array profiles;
    for (const membership& m : memberships)
        profiles.push_back(json::object{
            {"id", m.id}, {"customerId", m.customer}, {"teamId", m.team}, {"role", m.role}});
    json::array teams{json::object{{"id", 1}, {"name", "Acme Corp"}},
                      json::object{{"id", 2}, {"name", "Globex"}},
                      json::object{{"id", 3}, {"name", "Portal Operations"}}};
    return json::serialize(json::object{
        {"customers", std::move(customers)}, {"teams", std::move(teams)},
        {"profiles", std::move(profiles)}});
}

struct shared_parts {
    std::shared_ptr<const directory> dir;
    std::shared_ptr<const token_signer> signer;
};

const shared_parts& shared() {
    static const shared_parts parts = [] {
        std::string detail;
        auto dir = directory::parse(world_directory_json(), detail);
        if (!dir)
            fail("world directory rejected", detail);
        bytes secret(32);
        for (std::size_t i = 0; i < secret.size(); ++i)
            secret[i] = static_cast<unsigned char>(0xA0 + i);
        return shared_parts{
            std::make_shared<const directory>(std::move(*dir)),
            std::make_shared<const token_signer>(
                std::vector<signing_key>{{"fuzz-key", std::move(secret)}})};
    }();
    return parts;
}

// A fixed clock (2030-03-17) keeps every run reproducible.
const call_context the_call{"192.0.2.7:40000",
                            clock_type::time_point(std::chrono::seconds(1'900'000'000))};

// One service per input.
struct world {
    session_store sessions{4};
    audit_log audit{256};
    auth_service service{service_config{}, shared().dir, shared().signer, sessions, audit};
    request_handler handler{service};

    signed_in_session login(std::string_view email, std::string_view password) {
        auto s = service.login(email, password, the_call);
        if (!s)
            fail("world: login failed", email);
        return *s;
    }
};

void replace_all(std::string& text, std::string_view marker, std::string_view value) {
    for (std::size_t at = text.find(marker); at != std::string::npos;
         at = text.find(marker, at + value.size()))
        text.replace(at, marker.size(), value);
}

bool has(const std::string& text, std::string_view marker) {
    return text.find(marker) != std::string::npos;
}

void substitute_markers(std::string& text, world& w) {
    if (!has(text, "@"))
        return;
    if (has(text, "@TOKEN@") || has(text, "@REFRESH@") || has(text, "@IMPTOKEN@")) {
        signed_in_session alice = w.login("alice@acme.test", "alice-pw");
        if (has(text, "@IMPTOKEN@")) {
            auto actor = w.service.authenticate(alice.tokens.access_token, the_call);
            if (!actor)
                fail("world: fresh session does not authenticate");
            auto token = w.service.impersonate_coworker(*actor, 12, the_call);
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
    // The response must serialize as the listener would write it.
    std::ostringstream wire;
    wire << res;
    if (!wire)
        fail("response does not serialize", dump());
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
    http_response response = w.handler.handle(*request, the_call);
    check_response(*request, response);
    return 0;
}
