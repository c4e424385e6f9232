// The endpoints: parsing, the service call, and the JSON or problem answer of each.
#include <portal_auth/logger.hpp>
#include <portal_auth/metrics.hpp>
#include <portal_auth/request_handler.hpp>

#include <boost/beast/http/field.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <boost/system/result.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include <openssl/rand.h>

#include <charconv>
#include <exception>
#include <optional>
#include <string>

#include "base64.hpp"
#include "json_strict.hpp"
#include "json_writer.hpp"
#include "request_id.hpp"
#include "router.hpp"

namespace portal_auth {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
namespace json = boost::json;

// Why a request was malformed: the detail of its 400 answer.
struct field_error {
    std::string detail;
};
template <class T> using field_result = boost::system::result<T, field_error>;

// `body`: JSON text, from a json_writer or json::serialize.
http_response json_response(http::status status, std::string body, const http_request& req) {
    http_response res{status, req.version()};
    set_common_headers(res);
    res.set(http::field::content_type, "application/json");
    res.keep_alive(req.keep_alive());
    res.body() = std::move(body);
    res.prepare_payload();
    return res;
}

std::string problem_type(std::string_view slug) {
    return std::string(problem_type_prefix).append(slug);
}

// Every domain error is answered from its row of the error table. A 500 never tells what broke
// inside; 429 and 503 say when to come back.
http_response error_response(error_code ec, const http_request& req, bool token_presented,
                             std::optional<std::chrono::seconds> retry_after = std::nullopt) {
    const error_description& row = describe(ec);
    const auto status = static_cast<http::status>(row.http_status);
    auto res = status == http::status::internal_server_error
                   ? make_problem_response(status, "about:blank", "internal error", req.version(),
                                           req.keep_alive())
                   : make_problem_response(status, problem_type(row.problem_slug), row.message,
                                           req.version(), req.keep_alive(), token_presented);
    if (status == http::status::too_many_requests || status == http::status::service_unavailable)
        res.set(http::field::retry_after, std::to_string(retry_after ? retry_after->count() : 1));
    return res;
}

// A request whose body, path or query does not hold what the endpoint needs.
http_response bad_request(std::string_view detail, const http_request& req) {
    return make_problem_response(http::status::bad_request, problem_type("invalid-request"), detail,
                                 req.version(), req.keep_alive());
}

// Positive decimal id in int64 range, digits only.
std::optional<std::int64_t> parse_id(std::string_view text) {
    if (text.empty() || text.size() > 19)
        return std::nullopt;
    std::int64_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size() || value <= 0)
        return std::nullopt;
    return value;
}

field_result<std::int64_t> id_from_text(std::string_view text, std::string_view field) {
    if (auto id = parse_id(text))
        return *id;
    return field_error{std::string(field) + " must be a positive integer id"};
}

field_result<json::object> parse_body_object(const http_request& req) {
    boost::system::error_code ec;
    json::value body = json::parse(req.body(), ec);
    if (ec)
        return field_error{"request body is not valid JSON: " + ec.message()};
    if (!body.is_object())
        return field_error{"request body must be a JSON object"};
    // I-JSON: a repeated member name would otherwise mean whichever came last.
    if (auto repeated = first_duplicate_member(req.body()))
        return field_error{"request body repeats the member '" + *repeated + "'"};
    return std::move(body.get_object());
}

field_result<std::string_view> string_field(const json::object& body, std::string_view field) {
    const json::value* v = body.if_contains(field);
    if (!v)
        return field_error{"field '" + std::string(field) + "' is required"};
    if (!v->is_string())
        return field_error{"field '" + std::string(field) + "' must be a string"};
    return std::string_view(v->get_string());
}

field_result<std::int64_t> id_field(const json::object& body, std::string_view field) {
    const json::value* v = body.if_contains(field);
    if (!v)
        return field_error{"field '" + std::string(field) + "' is required"};
    std::optional<std::int64_t> id;
    if (v->is_int64() && v->get_int64() > 0)
        id = v->get_int64();
    else if (v->is_uint64() && v->get_uint64() <= static_cast<std::uint64_t>(INT64_MAX) &&
             v->get_uint64() > 0)
        id = static_cast<std::int64_t>(v->get_uint64());
    if (!id)
        return field_error{"field '" + std::string(field) + "' must be a positive integer id"};
    return *id;
}

// Response bodies are written field by field (json_writer): no value tree per request.

void write_impersonator(json_writer& w, const session_data& data) {
    w.key("impersonator");
    if (!data.impersonator) {
        w.null();
        return;
    }
    const impersonator_info& who = *data.impersonator;
    w.begin_object()
        .key("customerId")
        .value(who.customer)
        .key("profileId")
        .value(who.profile)
        .key("operator")
        .value(who.is_operator)
        .key("impersonationId")
        .value(who.impersonation_id)
        .key("reason")
        .value(who.reason)
        .key("startedAt")
        .value(format_rfc3339(who.started_at));
    w.key("expiresAt");
    if (data.not_after)
        w.value(format_rfc3339(*data.not_after));
    else
        w.null();
    w.end_object();
}

void write_time(json_writer& w, std::string_view key,
                const std::optional<clock_type::time_point>& t) {
    w.key(key);
    if (t)
        w.value(format_rfc3339(*t));
    else
        w.null();
}

std::string_view state_name(impersonation_state state) {
    switch (state) {
    case impersonation_state::issued:
        return "issued";
    case impersonation_state::active:
        return "active";
    case impersonation_state::ended:
        break;
    }
    return "ended";
}

// {"impersonations":[...]}: what the customer and operators see of each impersonation.
std::string impersonations_body(const std::vector<impersonation_record>& records,
                                const directory& dir, bool with_target_customer) {
    std::string body;
    json_writer w(body);
    w.begin_object().key("impersonations").begin_array();
    for (const impersonation_record& r : records) {
        const customer* actor = dir.find_customer(r.actor.customer);
        w.begin_object()
            .key("impersonationId")
            .value(r.id)
            .key("state")
            .value(state_name(r.state()))
            .key("actor")
            .begin_object()
            .key("customerId")
            .value(r.actor.customer)
            .key("name");
        if (actor)
            w.value(actor->name);
        else
            w.null(); // no longer in the directory
        w.key("profileId").value(r.actor.profile).key("operator").value(r.actor.is_operator);
        w.end_object();
        if (with_target_customer)
            w.key("targetCustomerId").value(r.target_customer);
        w.key("targetProfileId").value(r.target_profile).key("reason").value(r.reason);
        write_time(w, "issuedAt", r.issued_at);
        write_time(w, "startedAt", r.started_at);
        write_time(w, "expiresAt", r.expires_at());
        write_time(w, "endedAt", r.ended_at);
        w.key("endReason").value(r.end_reason);
        w.end_object();
    }
    w.end_array().end_object();
    return body;
}

// A valid UTF-8 text of 1 to 200 code points without control characters (C0, DEL, C1).
bool acceptable_reason(std::string_view text) {
    const auto* p = reinterpret_cast<const unsigned char*>(text.data());
    const std::size_t n = text.size();
    std::size_t count = 0;
    for (std::size_t i = 0; i < n; ++count) {
        const unsigned char c = p[i];
        std::uint32_t cp = 0;
        std::size_t len = 0;
        if (c < 0x80) {
            cp = c;
            len = 1;
        } else if (c >= 0xC2 && c <= 0xDF) {
            cp = c & 0x1F;
            len = 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            cp = c & 0x0F;
            len = 3;
        } else if (c >= 0xF0 && c <= 0xF4) {
            cp = c & 0x07;
            len = 4;
        } else {
            return false;
        }
        if (i + len > n)
            return false;
        for (std::size_t k = 1; k < len; ++k) {
            if ((p[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        const bool overlong = (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000);
        if (overlong || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F))
            return false;
        i += len;
    }
    return count >= 1 && count <= 200;
}

std::string session_object_body(const signed_in_session& s, clock_type::time_point now) {
    auto expires_in =
        std::chrono::duration_cast<std::chrono::seconds>(s.tokens.expires_at - now).count();
    std::string body;
    json_writer w(body);
    w.begin_object()
        .key("accessToken")
        .value(s.tokens.access_token)
        .key("tokenType")
        .value("Bearer")
        .key("expiresIn")
        .value(std::max<std::int64_t>(expires_in, 0))
        .key("refreshToken")
        .value(s.tokens.refresh_token)
        .key("customerId")
        .value(s.data.customer)
        .key("profileId")
        .value(s.data.profile);
    write_impersonator(w, s.data);
    w.end_object();
    return body;
}

std::string session_info_body(const session_snapshot& s) {
    std::string body;
    json_writer w(body);
    w.begin_object()
        .key("customerId")
        .value(s.data.customer)
        .key("profileId")
        .value(s.data.profile)
        .key("expiresAt")
        .value(format_rfc3339(s.expires_at));
    write_impersonator(w, s.data);
    w.end_object();
    return body;
}

std::string listing_body(const profile_listing& listing) {
    constexpr std::size_t typical_row_bytes = 200;
    std::string body;
    body.reserve(64 + listing.profiles.size() * typical_row_bytes);
    json_writer w(body);
    w.begin_object().key("CurrentProfileId").value(listing.current).key("Profiles").begin_array();
    for (const profile_entry& e : listing.profiles) {
        w.begin_object()
            .key("Id")
            .value(e.entry->id)
            .key("CustomerId")
            .value(e.entry->customer)
            .key("Name")
            .value(e.owner ? std::string_view(e.owner->name) : std::string_view())
            .key("Email")
            .value(e.owner ? std::string_view(e.owner->email) : std::string_view())
            .key("TeamId")
            .value(e.entry->team)
            .key("TeamName")
            .value(e.in_team ? std::string_view(e.in_team->name) : std::string_view())
            .key("Role")
            .value(display_name(e.entry->role_in_team))
            .key("IsCurrent")
            .value(e.is_current)
            .key("IsOwn")
            .value(e.is_own)
            .key("CanImpersonate")
            .value(e.can_impersonate)
            .end_object();
    }
    w.end_array().end_object();
    return body;
}

// "Bearer <token>": the token, or empty when the header is missing or not a Bearer credential.
std::string_view bearer_token(const http_request& req) {
    auto it = req.find(http::field::authorization);
    if (it == req.end())
        return {};
    std::string_view value = it->value();
    constexpr std::string_view scheme = "bearer ";
    if (value.size() <= scheme.size())
        return {};
    for (std::size_t i = 0; i < scheme.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(value[i])) != scheme[i])
            return {};
    value.remove_prefix(scheme.size());
    while (!value.empty() && value.front() == ' ')
        value.remove_prefix(1);
    while (!value.empty() && value.back() == ' ')
        value.remove_suffix(1);
    return value;
}

} // namespace

struct request_handler::endpoint_context {
    const http_request& req;
    const route_match& match;
    const request_context& call;
    boost::urls::url_view target;
    auth_service& service;

    // The caller's live session, or the 401 (or 503) to send.
    asio::awaitable<boost::system::result<session_snapshot, http_response>> session() const {
        std::string_view token = bearer_token(req);
        if (token.empty())
            co_return error_response(errc::unauthenticated, req, false);
        auto found = co_await service.authenticate(token, call);
        if (!found)
            co_return error_response(found.error(), req, true);
        co_return std::move(*found);
    }

    // The first value of a query parameter, still percent-encoded: for the decimal numbers
    // and keywords, where an encoded one is rejected anyway.
    std::optional<std::string_view> query(std::string_view key) const {
        auto params = target.encoded_params();
        auto it = params.find(key);
        if (it == params.end())
            return std::nullopt;
        return std::string_view((*it).value);
    }

    // The first value of a query parameter, decoded ('+' is a space, as forms send it).
    std::optional<std::string> decoded_query(std::string_view key) const {
        auto params = target.encoded_params();
        auto it = params.find(key);
        if (it == params.end())
            return std::nullopt;
        boost::urls::encoding_opts options;
        options.space_as_plus = true;
        return (*it).value.decode(options);
    }
};

namespace {

using ctx_t = request_handler::endpoint_context;

asio::awaitable<http_response> token_response(const boost::system::result<std::string>& token,
                                              const session_snapshot& actor, ctx_t& ctx) {
    if (!token) {
        std::optional<std::chrono::seconds> retry_after;
        if (token.error() == errc::rate_limited)
            retry_after =
                co_await ctx.service.impersonation_retry_after(actor.data.customer, ctx.call);
        co_return error_response(token.error(), ctx.req, false, retry_after);
    }
    std::string body;
    json_writer(body).begin_object().key("token").value(*token).end_object();
    co_return json_response(http::status::ok, std::move(body), ctx.req);
}

http_response session_response(const boost::system::result<signed_in_session>& s, ctx_t& ctx,
                               bool token_presented) {
    if (!s)
        return error_response(s.error(), ctx.req, token_presented);
    return json_response(http::status::ok, session_object_body(*s, ctx.call.now), ctx.req);
}

asio::awaitable<http_response> handle_login(ctx_t& ctx) {
    auto body = parse_body_object(ctx.req);
    if (!body)
        co_return bad_request(body.error().detail, ctx.req);
    auto email = string_field(*body, "email");
    if (!email)
        co_return bad_request(email.error().detail, ctx.req);
    auto password = string_field(*body, "password");
    if (!password)
        co_return bad_request(password.error().detail, ctx.req);
    auto session = co_await ctx.service.login(*email, *password, ctx.call);
    if (!session && session.error() == errc::rate_limited) {
        auto retry_after = co_await ctx.service.login_retry_after(*email, ctx.call);
        co_return error_response(session.error(), ctx.req, false, retry_after);
    }
    co_return session_response(session, ctx, false);
}

// A throttled exchange or refresh: 429 with the address's wait.
asio::awaitable<http_response> exchange_throttled(ctx_t& ctx) {
    auto retry_after = co_await ctx.service.exchange_retry_after(ctx.call);
    co_return error_response(errc::rate_limited, ctx.req, false, retry_after);
}

asio::awaitable<http_response> handle_exchange(ctx_t& ctx) {
    auto session = co_await ctx.service.exchange(ctx.match.params[0], ctx.call);
    if (!session && session.error() == errc::rate_limited) {
        auto response = co_await exchange_throttled(ctx);
        co_return response;
    }
    co_return session_response(session, ctx, true);
}

asio::awaitable<http_response> handle_refresh(ctx_t& ctx) {
    auto body = parse_body_object(ctx.req);
    if (!body)
        co_return bad_request(body.error().detail, ctx.req);
    auto token = string_field(*body, "refreshToken");
    if (!token)
        co_return bad_request(token.error().detail, ctx.req);
    auto session = co_await ctx.service.refresh(*token, ctx.call);
    if (!session && session.error() == errc::rate_limited) {
        auto response = co_await exchange_throttled(ctx);
        co_return response;
    }
    co_return session_response(session, ctx, true);
}

asio::awaitable<http_response> handle_logout(ctx_t& ctx) {
    auto session = co_await ctx.session();
    if (!session)
        co_return std::move(session).error();
    auto ended = co_await ctx.service.logout(*session, ctx.call);
    if (!ended)
        co_return error_response(ended.error(), ctx.req, true);
    // A 204 has no body by definition and carries no Content-Length (RFC 9110, 8.6).
    http_response res{http::status::no_content, ctx.req.version()};
    set_common_headers(res);
    res.keep_alive(ctx.req.keep_alive());
    co_return res;
}

asio::awaitable<http_response> handle_session_info(ctx_t& ctx) {
    auto session = co_await ctx.session();
    if (!session)
        co_return std::move(session).error();
    co_return json_response(http::status::ok, session_info_body(*session), ctx.req);
}

asio::awaitable<http_response> handle_list_profiles(ctx_t& ctx) {
    auto session = co_await ctx.session();
    if (!session)
        co_return std::move(session).error();
    co_return json_response(http::status::ok, listing_body(ctx.service.list_profiles(*session)),
                            ctx.req);
}

asio::awaitable<http_response> handle_switch_profile(ctx_t& ctx) {
    auto session = co_await ctx.session();
    if (!session)
        co_return std::move(session).error();
    auto body = parse_body_object(ctx.req);
    if (!body)
        co_return bad_request(body.error().detail, ctx.req);
    auto target = id_field(*body, "ProfileId");
    if (!target)
        co_return bad_request(target.error().detail, ctx.req);
    auto updated = co_await ctx.service.switch_profile(*session, *target, ctx.call);
    if (!updated)
        co_return error_response(updated.error(), ctx.req, false);
    co_return json_response(http::status::ok, session_info_body(*updated), ctx.req);
}

// The optional `reason` query parameter of the issuing endpoints; required when the directory
// says so.
field_result<std::optional<std::string>> reason_param(const ctx_t& ctx) {
    auto reason = ctx.decoded_query("reason");
    if (!reason) {
        if (ctx.service.current_directory()->impersonation_reason_required())
            return field_error{"query parameter 'reason' is required"};
        return std::optional<std::string>();
    }
    if (!acceptable_reason(*reason))
        return field_error{"query parameter 'reason' must be 1 to 200 characters of UTF-8 "
                           "without control characters"};
    return std::optional<std::string>(std::move(*reason));
}

asio::awaitable<http_response> handle_impersonate_coworker(ctx_t& ctx) {
    auto session = co_await ctx.session();
    if (!session)
        co_return std::move(session).error();
    auto target = id_from_text(ctx.match.params[0], "coworkerId");
    if (!target)
        co_return bad_request(target.error().detail, ctx.req);
    auto reason = reason_param(ctx);
    if (!reason)
        co_return bad_request(reason.error().detail, ctx.req);
    auto token =
        co_await ctx.service.impersonate_coworker(*session, *target, std::move(*reason), ctx.call);
    auto response = co_await token_response(token, *session, ctx);
    co_return response;
}

asio::awaitable<http_response> handle_impersonate_customer(ctx_t& ctx) {
    auto session = co_await ctx.session();
    if (!session)
        co_return std::move(session).error();
    auto text = ctx.query("customerId");
    if (!text)
        co_return bad_request("query parameter 'customerId' is required", ctx.req);
    auto target = id_from_text(*text, "customerId");
    if (!target)
        co_return bad_request(target.error().detail, ctx.req);
    auto reason = reason_param(ctx);
    if (!reason)
        co_return bad_request(reason.error().detail, ctx.req);
    auto token =
        co_await ctx.service.impersonate_customer(*session, *target, std::move(*reason), ctx.call);
    auto response = co_await token_response(token, *session, ctx);
    co_return response;
}

constexpr std::int64_t default_audit_limit = 100;
constexpr std::int64_t max_audit_limit = 1000;

asio::awaitable<http_response> handle_audit(ctx_t& ctx) {
    auto session = co_await ctx.session();
    if (!session)
        co_return std::move(session).error();
    std::int64_t limit = default_audit_limit;
    if (auto text = ctx.query("limit")) {
        auto parsed = parse_id(*text);
        if (!parsed || *parsed > max_audit_limit)
            co_return bad_request("query parameter 'limit' must be an integer from 1 to " +
                                      std::to_string(max_audit_limit),
                                  ctx.req);
        limit = *parsed;
    }
    audit_category category = audit_category::all;
    if (auto text = ctx.query("category")) {
        if (*text != "impersonation")
            co_return bad_request("query parameter 'category' must be 'impersonation'", ctx.req);
        category = audit_category::impersonation;
    }
    auto events =
        co_await ctx.service.audit_events(*session, static_cast<std::size_t>(limit), category);
    if (!events)
        co_return error_response(events.error(), ctx.req, false);
    co_return json_response(http::status::ok,
                            json::serialize(json::object{{"Events", std::move(*events)}}), ctx.req);
}

// 204: no body, no Content-Length (RFC 9110, 8.6).
http_response no_content(const http_request& req) {
    http_response res{http::status::no_content, req.version()};
    set_common_headers(res);
    res.keep_alive(req.keep_alive());
    return res;
}

asio::awaitable<http_response> handle_own_impersonations(ctx_t& ctx) {
    auto session = co_await ctx.session();
    if (!session)
        co_return std::move(session).error();
    auto listed = co_await ctx.service.impersonations_of(*session, ctx.call);
    if (!listed)
        co_return error_response(listed.error(), ctx.req, false);
    co_return json_response(http::status::ok,
                            impersonations_body(*listed, *ctx.service.current_directory(), false),
                            ctx.req);
}

asio::awaitable<http_response> handle_end_own_impersonation(ctx_t& ctx) {
    auto session = co_await ctx.session();
    if (!session)
        co_return std::move(session).error();
    auto ended =
        co_await ctx.service.end_own_impersonation(*session, ctx.match.params[0], ctx.call);
    if (!ended)
        co_return error_response(ended.error(), ctx.req, false);
    co_return no_content(ctx.req);
}

asio::awaitable<http_response> handle_all_impersonations(ctx_t& ctx) {
    auto session = co_await ctx.session();
    if (!session)
        co_return std::move(session).error();
    std::optional<impersonation_state> state;
    if (auto text = ctx.query("state")) {
        if (*text == "issued")
            state = impersonation_state::issued;
        else if (*text == "active")
            state = impersonation_state::active;
        else if (*text == "ended")
            state = impersonation_state::ended;
        else
            co_return bad_request("query parameter 'state' must be issued, active or ended",
                                  ctx.req);
    }
    std::int64_t limit = 100;
    if (auto text = ctx.query("limit")) {
        auto parsed = parse_id(*text);
        if (!parsed || *parsed > 1000)
            co_return bad_request("query parameter 'limit' must be an integer from 1 to 1000",
                                  ctx.req);
        limit = *parsed;
    }
    auto listed = co_await ctx.service.all_impersonations(
        *session, state, static_cast<std::size_t>(limit), ctx.call);
    if (!listed)
        co_return error_response(listed.error(), ctx.req, false);
    co_return json_response(http::status::ok,
                            impersonations_body(*listed, *ctx.service.current_directory(), true),
                            ctx.req);
}

asio::awaitable<http_response> handle_end_impersonation(ctx_t& ctx) {
    auto session = co_await ctx.session();
    if (!session)
        co_return std::move(session).error();
    auto ended = co_await ctx.service.end_impersonation(*session, ctx.match.params[0], ctx.call);
    if (!ended)
        co_return error_response(ended.error(), ctx.req, false);
    co_return no_content(ctx.req);
}

asio::awaitable<http_response> handle_revoke_customer_sessions(ctx_t& ctx) {
    auto session = co_await ctx.session();
    if (!session)
        co_return std::move(session).error();
    auto target = id_from_text(ctx.match.params[0], "customerId");
    if (!target)
        co_return bad_request(target.error().detail, ctx.req);
    auto count = co_await ctx.service.revoke_customer_sessions(*session, *target, ctx.call);
    if (!count)
        co_return error_response(count.error(), ctx.req, false);
    std::string body;
    json_writer(body).begin_object().key("endedSessions").value(*count).end_object();
    co_return json_response(http::status::ok, std::move(body), ctx.req);
}

// A HEAD answer: the GET's headers, Content-Length included, without the body.
http_response head_of(http_response res, const http_request& req) {
    if (req.method() == http::verb::head)
        res.body().clear();
    return res;
}

asio::awaitable<http_response> handle_live(ctx_t& ctx) {
    co_return head_of(json_response(http::status::ok, R"({"status":"ok"})", ctx.req), ctx.req);
}

asio::awaitable<http_response> handle_ready(ctx_t& ctx) {
    bool ready = false;
    if (!ctx.call.draining)
        ready = co_await ctx.service.ready();
    if (!ready)
        co_return head_of(error_response(errc::not_ready, ctx.req, false), ctx.req);
    co_return head_of(json_response(http::status::ok, R"({"status":"ready"})", ctx.req), ctx.req);
}

asio::awaitable<http_response> handle_health(ctx_t& ctx) {
    co_return json_response(http::status::ok, R"({"status":"ok"})", ctx.req);
}

using endpoint_fn = asio::awaitable<http_response> (*)(ctx_t&);

struct endpoint_entry {
    http::verb method;
    std::string_view pattern;
    endpoint_fn fn;
};

// The API, as a table: one row per endpoint; the router's route index is the row's index.
constexpr endpoint_entry endpoint_table[] = {
    {http::verb::post, "/api/public/auth/login", &handle_login},
    {http::verb::post, "/api/public/auth/login/{token}", &handle_exchange},
    {http::verb::post, "/api/public/auth/refresh", &handle_refresh},
    {http::verb::post, "/api/public/auth/logout", &handle_logout},
    {http::verb::get, "/api/public/auth/session", &handle_session_info},
    {http::verb::get, "/api/public/coworkers/profiles", &handle_list_profiles},
    {http::verb::put, "/api/public/coworkers/profiles/current", &handle_switch_profile},
    {http::verb::get, "/api/public/coworkers/{coworkerId}/impersonate",
     &handle_impersonate_coworker},
    {http::verb::get, "/api/sys/users/impersonate", &handle_impersonate_customer},
    {http::verb::get, "/api/sys/audit", &handle_audit},
    {http::verb::get, "/api/public/auth/impersonations", &handle_own_impersonations},
    {http::verb::delete_, "/api/public/auth/impersonations/{impersonationId}",
     &handle_end_own_impersonation},
    {http::verb::get, "/api/sys/impersonations", &handle_all_impersonations},
    {http::verb::delete_, "/api/sys/impersonations/{impersonationId}", &handle_end_impersonation},
    {http::verb::delete_, "/api/sys/customers/{customerId}/sessions",
     &handle_revoke_customer_sessions},
    {http::verb::get, "/livez", &handle_live},
    {http::verb::head, "/livez", &handle_live},
    {http::verb::get, "/readyz", &handle_ready},
    {http::verb::head, "/readyz", &handle_ready},
    {http::verb::get, "/healthz", &handle_health},
};

// What the router found, or the plain HTTP answer when it found nothing.
http_response routing_failure(const route_match& match, const http_request& req) {
    if (match.result == route_match::outcome::not_found)
        return make_problem_response(http::status::not_found, "about:blank", "no such endpoint",
                                     req.version(), req.keep_alive());
    auto res = make_problem_response(http::status::method_not_allowed, "about:blank",
                                     "method not allowed on this endpoint", req.version(),
                                     req.keep_alive());
    res.set(http::field::allow, match.allow);
    return res;
}

} // namespace

void set_common_headers(http_response& res) {
    res.set(http::field::server, "portal-auth");
    res.set(http::field::cache_control, "no-store");
    res.set(http::field::strict_transport_security, "max-age=63072000");
    res.set("X-Content-Type-Options", "nosniff");
}

http_response make_problem_response(http::status status, std::string_view type,
                                    std::string_view detail, unsigned http_version, bool keep_alive,
                                    bool token_presented) {
    http_response res{status, http_version};
    set_common_headers(res);
    res.set(http::field::content_type, "application/problem+json");
    if (status == http::status::unauthorized)
        res.set(http::field::www_authenticate,
                token_presented ? R"(Bearer realm="portal-auth", error="invalid_token")"
                                : R"(Bearer realm="portal-auth")");
    res.keep_alive(keep_alive);
    json_writer(res.body())
        .begin_object()
        .key("type")
        .value(type)
        .key("title")
        .value(http::obsolete_reason(status))
        .key("status")
        .value(static_cast<unsigned>(status))
        .key("detail")
        .value(detail)
        .end_object();
    res.prepare_payload();
    return res;
}

request_handler::request_handler(auth_service& service, handler_options options)
    : service_(service), options_(options), router_(std::make_unique<router>()) {
    for (const endpoint_entry& e : endpoint_table)
        router_->add(e.method, e.pattern);
}

request_handler::~request_handler() = default;

asio::awaitable<http_response> request_handler::operator()(http_request req,
                                                           request_context call) const {
    const auto started = std::chrono::steady_clock::now();
    const auto given_id = req["X-Request-Id"];
    call.request_id =
        detail::sane_request_id(given_id) ? std::string(given_id) : detail::new_request_id();
    std::string_view route = "unmatched"; // a template, never the path (it may hold a token)
    http_response response = co_await answer(req, call, route);
    response.set("X-Request-Id", call.request_id);
    const unsigned status = response.result_int();
    const auto took = std::chrono::steady_clock::now() - started;
    if (options_.counts) {
        options_.counts->request(route, status, took);
        if (status == 503 && response.body().find("store-unavailable") != std::string::npos)
            options_.counts->store_error();
    }
    if (options_.log)
        options_.log->access(req.method_string(), route, status,
                             std::chrono::duration_cast<std::chrono::microseconds>(took).count(),
                             call.remote, call.request_id);
    co_return response;
}

asio::awaitable<http_response> request_handler::answer(const http_request& req,
                                                       const request_context& call,
                                                       std::string_view& route) const {
    const unsigned version = req.version();
    try {
        auto target = boost::urls::parse_origin_form(req.target());
        if (!target)
            co_return bad_request("malformed request target", req);
        auto match = router_->match(req.method(), target->encoded_path());
        if (match.result != route_match::outcome::found)
            co_return routing_failure(match, req);
        route = endpoint_table[match.route].pattern;
        endpoint_context ctx{req, match, call, *target, service_};
        auto response = co_await endpoint_table[match.route].fn(ctx);
        co_return response;
    } catch (const std::exception&) {
    }
    // Never disclose internals; the listener logs nothing secret either.
    co_return make_problem_response(http::status::internal_server_error, "about:blank",
                                    "internal error", version, false);
}

} // namespace portal_auth
