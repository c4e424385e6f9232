// The Redis store: tokens and digests made here, each operation one EVALSHA (or a few pipelined
// commands) on the shared connection. Key layout and scripts: redis_scripts.hpp.
#include <portal_auth/error.hpp>
#include <portal_auth/redis_store.hpp>

#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <boost/json/value_to.hpp>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <stdexcept>
#include <utility>

#include "base64.hpp"
#include "redis_connection.hpp"
#include "redis_scripts.hpp"

namespace portal_auth {

namespace asio = boost::asio;
namespace json = boost::json;
using detail::redis_command;
using detail::redis_value;

namespace {

using steady = std::chrono::steady_clock;

// Tokens: base64url of 8 id bytes (big-endian) and 16 random bytes, as session_store makes them.
constexpr std::size_t id_size = 8;
constexpr std::size_t secret_size = 16;
constexpr std::size_t token_bytes = id_size + secret_size;
constexpr std::size_t token_chars = token_bytes / 3 * 4;
// Session keys examined per SCAN round trip in revoke_matching.
constexpr std::size_t scan_batch = 200;

using secret = std::array<unsigned char, secret_size>;

struct session_randomness {
    session_id id = 0;
    secret access{};
    secret refresh{};
};

session_id id_from_bytes(const unsigned char* raw) {
    session_id id = 0;
    for (std::size_t i = 0; i < id_size; ++i)
        id = (id << 8) | raw[i];
    return id;
}

session_randomness draw_randomness() {
    std::array<unsigned char, id_size + 2 * secret_size> raw;
    session_randomness out;
    while (out.id == 0) {
        if (RAND_bytes(raw.data(), static_cast<int>(raw.size())) != 1)
            throw std::runtime_error("RAND_bytes failed");
        out.id = id_from_bytes(raw.data());
    }
    std::copy_n(raw.begin() + id_size, secret_size, out.access.begin());
    std::copy_n(raw.begin() + id_size + secret_size, secret_size, out.refresh.begin());
    OPENSSL_cleanse(raw.data(), raw.size());
    return out;
}

std::string encode_token(session_id id, const secret& s) {
    std::array<unsigned char, token_bytes> raw;
    for (std::size_t i = 0; i < id_size; ++i)
        raw[i] = static_cast<unsigned char>(id >> (8 * (id_size - 1 - i)));
    std::copy(s.begin(), s.end(), raw.begin() + id_size);
    std::string token = base64url_encode(raw);
    OPENSSL_cleanse(raw.data(), raw.size());
    return token;
}

struct decoded_token {
    session_id id = 0;
    secret secret_part{};
};

std::optional<decoded_token> decode_token(std::string_view token) {
    if (token.size() != token_chars)
        return std::nullopt;
    auto raw = base64url_decode(token);
    if (!raw || raw->size() != token_bytes)
        return std::nullopt;
    decoded_token out;
    out.id = id_from_bytes(raw->data());
    std::copy(raw->begin() + id_size, raw->end(), out.secret_part.begin());
    OPENSSL_cleanse(raw->data(), raw->size());
    return out;
}

std::string to_hex(const unsigned char* data, std::size_t size) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out(2 * size, '\0');
    for (std::size_t i = 0; i < size; ++i) {
        out[2 * i] = digits[data[i] >> 4];
        out[2 * i + 1] = digits[data[i] & 0xf];
    }
    return out;
}

std::string hex_digest(const EVP_MD* md, const void* data, std::size_t size) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> out;
    unsigned int length = 0;
    if (EVP_Digest(data, size, out.data(), &length, md, nullptr) != 1)
        throw std::runtime_error("EVP_Digest failed");
    return to_hex(out.data(), length);
}

// What Redis holds of a secret. Compared in Lua with ==: the timing of a comparison of digests
// tells nothing usable about a secret whose digest the attacker cannot choose.
std::string secret_digest(const secret& s) {
    return hex_digest(EVP_sha256(), s.data(), s.size());
}

// --- the scripts, with their SHA-1 for EVALSHA ---

struct script_def {
    std::string body;
    std::string sha;
};

enum class script_id {
    create_session,
    find_session,
    is_live,
    refresh,
    switch_profile,
    revoke,
    reserve,
    release,
    blocked_for,
    add_grant,
    redeem_grant,
    withdraw_grant,
    start_impersonation,
    end_impersonation,
    end_impersonations_of_actor,
    expire_impersonations,
    count_
};

const std::array<script_def, static_cast<std::size_t>(script_id::count_)>& scripts() {
    static const auto table = [] {
        namespace s = detail::redis_scripts;
        const std::string_view bodies[] = {
            s::create_session,
            s::find_session,
            s::is_live,
            s::refresh,
            s::switch_profile,
            s::revoke,
            s::reserve,
            s::release,
            s::blocked_for,
            s::add_grant,
            s::redeem_grant,
            s::withdraw_grant,
            s::start_impersonation,
            s::end_impersonation,
            s::end_impersonations_of_actor,
            s::expire_impersonations,
        };
        std::array<script_def, static_cast<std::size_t>(script_id::count_)> out;
        for (std::size_t i = 0; i < out.size(); ++i) {
            out[i].body =
                std::string(s::prelude) + std::string(s::records_prelude) + std::string(bodies[i]);
            out[i].sha = hex_digest(EVP_sha1(), out[i].body.data(), out[i].body.size());
        }
        return out;
    }();
    return table;
}

const script_def& script(script_id id) {
    return scripts()[static_cast<std::size_t>(id)];
}

redis_command evalsha(script_id id, std::vector<std::string> keys, std::vector<std::string> args) {
    redis_command cmd;
    cmd.reserve(3 + keys.size() + args.size());
    cmd.push_back("EVALSHA");
    cmd.push_back(script(id).sha);
    cmd.push_back(std::to_string(keys.size()));
    for (auto& k : keys)
        cmd.push_back(std::move(k));
    for (auto& a : args)
        cmd.push_back(std::move(a));
    return cmd;
}

// Braced lists are built outside co_await expressions: GCC 12 miscompiles an initializer_list
// whose array must live in the coroutine frame ("array used as initializer").
std::vector<redis_command> one_command(redis_command command) {
    std::vector<redis_command> out;
    out.push_back(std::move(command));
    return out;
}

bool is_noscript(const redis_value& v) {
    return v.is_error() && v.str.starts_with("NOSCRIPT");
}

// Runs the scripts pipelined (one round trip); where Redis lost the script cache, loads the
// script and runs those again (a second round trip). An error reply is store_unavailable.
asio::awaitable<store_result<std::vector<redis_value>>>
eval_all(std::shared_ptr<detail::redis_connection> conn, script_id id,
         std::vector<redis_command> commands, steady::time_point deadline) {
    auto replies = co_await conn->exec(commands, deadline);
    if (!replies)
        co_return replies.error();
    std::vector<std::size_t> again;
    for (std::size_t i = 0; i < replies->size(); ++i) {
        if (is_noscript((*replies)[i]))
            again.push_back(i);
    }
    if (!again.empty()) {
        std::vector<redis_command> retry{{"SCRIPT", "LOAD", script(id).body}};
        for (std::size_t i : again)
            retry.push_back(commands[i]);
        auto second = co_await conn->exec(std::move(retry), deadline);
        if (!second)
            co_return second.error();
        for (std::size_t j = 0; j < again.size(); ++j)
            (*replies)[again[j]] = std::move((*second)[j + 1]);
    }
    for (const redis_value& v : *replies) {
        if (v.is_error())
            co_return errc::store_unavailable;
    }
    co_return std::move(*replies);
}

asio::awaitable<store_result<redis_value>> eval(std::shared_ptr<detail::redis_connection> conn,
                                                script_id id, redis_command command,
                                                steady::time_point deadline) {
    std::vector<redis_command> commands;
    commands.push_back(std::move(command));
    auto replies = co_await eval_all(std::move(conn), id, std::move(commands), deadline);
    if (!replies)
        co_return replies.error();
    co_return std::move(replies->front());
}

// --- values ---

std::int64_t to_ms(clock_type::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

std::int64_t to_us(clock_type::time_point t) {
    return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}

clock_type::time_point from_ms(std::int64_t ms) {
    return clock_type::time_point(
        std::chrono::duration_cast<clock_type::duration>(std::chrono::milliseconds(ms)));
}

std::int64_t to_ns(clock_type::time_point t) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

clock_type::time_point from_ns(std::int64_t ns) {
    return clock_type::time_point(
        std::chrono::duration_cast<clock_type::duration>(std::chrono::nanoseconds(ns)));
}

template <class Int> std::optional<Int> parse_int(std::string_view text) {
    Int value{};
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size())
        return std::nullopt;
    return value;
}

// A score as Redis writes it ("%.17g": integers below 2^53 come back as digits).
std::optional<std::int64_t> parse_score(std::string_view text) {
    if (auto i = parse_int<std::int64_t>(text))
        return i;
    double d = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), d);
    if (ec != std::errc() || end != text.data() + text.size())
        return std::nullopt;
    return static_cast<std::int64_t>(d);
}

json::value optional_json(const std::optional<std::int64_t>& v) {
    return v ? json::value(*v) : json::value(nullptr);
}

json::object impersonator_json(const impersonator_info& a) {
    json::object o;
    o["customer"] = a.customer;
    o["profile"] = optional_json(a.profile);
    o["operator"] = a.is_operator;
    o["actor_session"] = a.actor_session;
    o["id"] = a.impersonation_id;
    o["reason"] = a.reason ? json::value(*a.reason) : json::value(nullptr);
    o["started_at"] = to_ns(a.started_at);
    return o;
}

template <class T> bool read_field(const json::object& o, std::string_view name, T& out) {
    const json::value* v = o.if_contains(name);
    if (!v)
        return false;
    auto r = json::try_value_to<T>(*v);
    if (!r)
        return false;
    out = std::move(*r);
    return true;
}

template <class T>
bool read_optional(const json::object& o, std::string_view name, std::optional<T>& out) {
    const json::value* v = o.if_contains(name);
    if (!v)
        return false;
    if (v->is_null()) {
        out.reset();
        return true;
    }
    auto r = json::try_value_to<T>(*v);
    if (!r)
        return false;
    out = std::move(*r);
    return true;
}

std::optional<impersonator_info> impersonator_from_json(const json::value& v) {
    const json::object* o = v.if_object();
    if (!o)
        return std::nullopt;
    impersonator_info a;
    std::int64_t started = 0;
    if (!read_field(*o, "customer", a.customer) || !read_optional(*o, "profile", a.profile) ||
        !read_field(*o, "operator", a.is_operator) ||
        !read_field(*o, "actor_session", a.actor_session) ||
        !read_field(*o, "id", a.impersonation_id) || !read_optional(*o, "reason", a.reason) ||
        !read_field(*o, "started_at", started))
        return std::nullopt;
    a.started_at = from_ns(started);
    return a;
}

std::optional<impersonator_info> impersonator_from_text(std::string_view text) {
    boost::system::error_code ec;
    json::value v = json::parse(text, ec);
    if (ec)
        return std::nullopt;
    return impersonator_from_json(v);
}

std::string grant_json(const impersonation_grant& g) {
    json::object o;
    o["actor"] = impersonator_json(g.actor);
    o["target"] = g.target;
    o["target_customer"] = g.target_customer;
    o["issued_at"] = to_ns(g.issued_at);
    o["expires_at"] = to_ns(g.expires_at);
    return json::serialize(o);
}

std::optional<impersonation_grant> grant_from_text(std::string_view text) {
    boost::system::error_code ec;
    json::value v = json::parse(text, ec);
    const json::object* o = ec ? nullptr : v.if_object();
    if (!o || !o->if_contains("actor"))
        return std::nullopt;
    auto actor = impersonator_from_json(o->at("actor"));
    impersonation_grant g;
    std::int64_t issued = 0;
    std::int64_t expires = 0;
    if (!actor || !read_field(*o, "target", g.target) ||
        !read_field(*o, "target_customer", g.target_customer) ||
        !read_field(*o, "issued_at", issued) || !read_field(*o, "expires_at", expires))
        return std::nullopt;
    g.actor = std::move(*actor);
    g.issued_at = from_ns(issued);
    g.expires_at = from_ns(expires);
    return g;
}

// The session data of the find script's answer {expires, customer, profile, not_after, imp}.
std::optional<session_snapshot> snapshot_from(session_id id, const redis_value& v) {
    if (v.type != redis_value::kind::array || v.elements.size() != 5)
        return std::nullopt;
    const auto& e = v.elements;
    auto expires = parse_int<std::int64_t>(e[0].str);
    auto customer = parse_int<customer_id>(e[1].str);
    auto profile = parse_int<profile_id>(e[2].str);
    if (!expires || !customer || !profile)
        return std::nullopt;
    session_snapshot s;
    s.id = id;
    s.expires_at = from_ms(*expires);
    s.data.customer = *customer;
    s.data.profile = *profile;
    if (!e[3].str.empty()) {
        auto not_after = parse_int<std::int64_t>(e[3].str);
        if (!not_after)
            return std::nullopt;
        s.data.not_after = from_ms(*not_after);
    }
    if (!e[4].str.empty()) {
        s.data.impersonator = impersonator_from_text(e[4].str);
        if (!s.data.impersonator)
            return std::nullopt;
    }
    return s;
}

// The fixed part of an impersonation record (field j); the rest are fields of their own.
std::string record_json(const impersonation_record& r) {
    json::object o;
    o["actor"] = impersonator_json(r.actor);
    o["target_customer"] = r.target_customer;
    o["target_profile"] = r.target_profile;
    o["reason"] = r.reason ? json::value(*r.reason) : json::value(nullptr);
    o["issued_at"] = to_ns(r.issued_at);
    o["token_expires_at"] = to_ns(r.token_expires_at);
    return json::serialize(o);
}

std::optional<clock_type::time_point> time_field(const redis_value& field) {
    if (field.is_nil())
        return std::nullopt;
    auto ns = parse_int<std::int64_t>(field.str);
    if (!ns)
        return std::nullopt;
    return from_ns(*ns);
}

// A record from its fields {j, s, sa, se, ea, er}.
std::optional<impersonation_record> record_from(std::string id, const redis_value& v) {
    if (v.type != redis_value::kind::array || v.elements.size() != 6 || v.elements[0].is_nil())
        return std::nullopt;
    const auto& f = v.elements;
    boost::system::error_code ec;
    json::value doc = json::parse(f[0].str, ec);
    const json::object* o = ec ? nullptr : doc.if_object();
    if (!o || !o->if_contains("actor"))
        return std::nullopt;
    auto actor = impersonator_from_json(o->at("actor"));
    impersonation_record r;
    std::int64_t issued = 0;
    std::int64_t token_expires = 0;
    if (!actor || !read_field(*o, "target_customer", r.target_customer) ||
        !read_field(*o, "target_profile", r.target_profile) ||
        !read_optional(*o, "reason", r.reason) || !read_field(*o, "issued_at", issued) ||
        !read_field(*o, "token_expires_at", token_expires))
        return std::nullopt;
    r.id = std::move(id);
    r.actor = std::move(*actor);
    r.issued_at = from_ns(issued);
    r.token_expires_at = from_ns(token_expires);
    if (!f[1].is_nil())
        r.session = parse_int<session_id>(f[1].str);
    r.started_at = time_field(f[2]);
    if (r.started_at)
        r.actor.started_at = *r.started_at;
    r.session_expires_at = time_field(f[3]);
    r.ended_at = time_field(f[4]);
    if (!f[5].is_nil())
        r.end_reason = f[5].str;
    return r;
}

// The {id, fields, id, fields...} answer of the scripts that end several records.
std::optional<std::vector<impersonation_record>> records_from_pairs(const redis_value& v) {
    if (v.type != redis_value::kind::array || v.elements.size() % 2 != 0)
        return std::nullopt;
    std::vector<impersonation_record> out;
    for (std::size_t i = 0; i < v.elements.size(); i += 2) {
        auto r = record_from(v.elements[i].str, v.elements[i + 1]);
        if (!r)
            return std::nullopt;
        out.push_back(std::move(*r));
    }
    return out;
}

std::string nonce() {
    std::array<unsigned char, 8> raw;
    if (RAND_bytes(raw.data(), static_cast<int>(raw.size())) != 1)
        throw std::runtime_error("RAND_bytes failed");
    return to_hex(raw.data(), raw.size());
}

// Glob characters in the prefix must not widen a SCAN pattern.
std::string glob_escape(std::string_view text) {
    std::string out;
    for (char c : text) {
        if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\')
            out.push_back('\\');
        out.push_back(c);
    }
    return out;
}

} // namespace

redis_store::redis_store(asio::any_io_executor ex, redis_store_config config)
    : config_(std::move(config)) {
    detail::redis_connection_config c{
        .host = config_.host,
        .port = config_.port,
        .db = config_.db,
        .password = config_.password,
        .timeout = config_.timeout,
    };
    for (const script_def& s : scripts())
        c.on_connect.push_back({"SCRIPT", "LOAD", s.body});
    connection_ = std::make_shared<detail::redis_connection>(std::move(ex), std::move(c));
    connection_->start();
}

redis_store::~redis_store() {
    connection_->stop();
}

asio::awaitable<store_result<issued_tokens>>
redis_store::create(session_data data, clock_type::time_point now, std::chrono::seconds ttl) {
    const auto deadline = steady::now() + config_.timeout;
    std::int64_t expires = to_ms(now + ttl);
    if (data.not_after)
        expires = std::min(expires, to_ms(*data.not_after));
    session_randomness fresh = draw_randomness();
    std::string actor;
    std::string impersonator;
    if (data.impersonator) {
        actor = std::to_string(data.impersonator->actor_session);
        impersonator = json::serialize(impersonator_json(*data.impersonator));
    }
    // A collision of random 64-bit ids is practically impossible, but must never merge two
    // sessions: the script refuses a taken id and a new one is drawn.
    for (int attempt = 0; attempt < 4; ++attempt) {
        const std::string id = std::to_string(fresh.id);
        auto command = evalsha(
            script_id::create_session, {config_.prefix + "s:" + id},
            {config_.prefix, id, secret_digest(fresh.access), secret_digest(fresh.refresh),
             std::to_string(data.customer), std::to_string(data.profile), std::to_string(expires),
             data.not_after ? std::to_string(to_ms(*data.not_after)) : "", actor, impersonator});
        auto r =
            co_await eval(connection_, script_id::create_session, std::move(command), deadline);
        if (!r)
            co_return r.error();
        if (r->integer == 1) {
            issued_tokens out{fresh.id, encode_token(fresh.id, fresh.access),
                              encode_token(fresh.id, fresh.refresh), from_ms(expires)};
            OPENSSL_cleanse(&fresh, sizeof fresh);
            co_return out;
        }
        fresh = draw_randomness();
    }
    co_return errc::store_unavailable;
}

asio::awaitable<store_result<std::optional<session_snapshot>>>
redis_store::find_by_access_token(std::string_view token, clock_type::time_point now) {
    const auto deadline = steady::now() + config_.timeout;
    auto decoded = decode_token(token);
    if (!decoded)
        co_return std::nullopt;
    const std::string id = std::to_string(decoded->id);
    auto command =
        evalsha(script_id::find_session, {config_.prefix + "s:" + id},
                {config_.prefix, secret_digest(decoded->secret_part), std::to_string(to_ms(now))});
    auto r = co_await eval(connection_, script_id::find_session, std::move(command), deadline);
    OPENSSL_cleanse(&decoded->secret_part, sizeof decoded->secret_part);
    if (!r)
        co_return r.error();
    if (r->is_nil())
        co_return std::nullopt;
    auto snapshot = snapshot_from(decoded->id, *r);
    if (!snapshot)
        co_return errc::store_unavailable; // not what this store writes
    co_return snapshot;
}

asio::awaitable<store_result<bool>> redis_store::is_live(session_id id,
                                                         clock_type::time_point now) {
    const auto deadline = steady::now() + config_.timeout;
    auto command = evalsha(script_id::is_live, {},
                           {config_.prefix, std::to_string(id), std::to_string(to_ms(now))});
    auto r = co_await eval(connection_, script_id::is_live, std::move(command), deadline);
    if (!r)
        co_return store_result<bool>(boost::system::in_place_error, r.error());
    co_return r->integer == 1;
}

asio::awaitable<store_result<issued_tokens>> redis_store::refresh(std::string_view refresh_token,
                                                                  clock_type::time_point now,
                                                                  std::chrono::seconds ttl) {
    const auto deadline = steady::now() + config_.timeout;
    auto decoded = decode_token(refresh_token);
    if (!decoded)
        co_return errc::invalid_refresh_token;
    session_randomness fresh = draw_randomness();
    const std::string id = std::to_string(decoded->id);
    auto command = evalsha(script_id::refresh, {config_.prefix + "s:" + id},
                           {config_.prefix, id, secret_digest(decoded->secret_part),
                            std::to_string(to_ms(now)), std::to_string(to_ms(now + ttl)),
                            secret_digest(fresh.access), secret_digest(fresh.refresh)});
    auto r = co_await eval(connection_, script_id::refresh, std::move(command), deadline);
    OPENSSL_cleanse(&decoded->secret_part, sizeof decoded->secret_part);
    if (!r) {
        OPENSSL_cleanse(&fresh, sizeof fresh);
        co_return r.error();
    }
    if (r->type != redis_value::kind::array || r->elements.empty())
        co_return errc::store_unavailable;
    const std::string& outcome = r->elements[0].str;
    if (outcome == "reused")
        co_return errc::refresh_token_reused;
    if (outcome != "ok" || r->elements.size() != 2)
        co_return errc::invalid_refresh_token;
    auto expires = parse_int<std::int64_t>(r->elements[1].str);
    if (!expires)
        co_return errc::store_unavailable;
    issued_tokens out{decoded->id, encode_token(decoded->id, fresh.access),
                      encode_token(decoded->id, fresh.refresh), from_ms(*expires)};
    OPENSSL_cleanse(&fresh, sizeof fresh);
    co_return out;
}

asio::awaitable<store_result<bool>> redis_store::switch_profile(session_id id, profile_id profile) {
    const auto deadline = steady::now() + config_.timeout;
    auto command = evalsha(script_id::switch_profile, {config_.prefix + "s:" + std::to_string(id)},
                           {std::to_string(profile)});
    auto r = co_await eval(connection_, script_id::switch_profile, std::move(command), deadline);
    if (!r)
        co_return store_result<bool>(boost::system::in_place_error, r.error());
    co_return r->integer == 1;
}

asio::awaitable<store_result<bool>> redis_store::revoke(session_id id) {
    const auto deadline = steady::now() + config_.timeout;
    auto command = evalsha(script_id::revoke, {}, {config_.prefix, std::to_string(id)});
    auto r = co_await eval(connection_, script_id::revoke, std::move(command), deadline);
    if (!r)
        co_return store_result<bool>(boost::system::in_place_error, r.error());
    co_return r->integer == 1;
}

asio::awaitable<store_result<void>>
redis_store::add_grant(std::string jti, impersonation_grant grant, clock_type::time_point now) {
    const auto deadline = steady::now() + config_.timeout;
    const impersonation_record record{
        .id = jti,
        .actor = grant.actor,
        .target_customer = grant.target_customer,
        .target_profile = grant.target,
        .reason = grant.actor.reason,
        .issued_at = grant.issued_at,
        .token_expires_at = grant.expires_at,
    };
    auto command =
        evalsha(script_id::add_grant, {config_.prefix + "g:" + jti, config_.prefix + "grants"},
                {jti, grant_json(grant), std::to_string(to_ms(grant.expires_at)),
                 std::to_string(to_ms(now)), config_.prefix, record_json(record),
                 std::to_string(grant.target_customer), std::to_string(grant.actor.actor_session)});

    auto r = co_await eval(connection_, script_id::add_grant, std::move(command), deadline);
    if (!r)
        co_return r.error();
    co_return store_result<void>();
}

asio::awaitable<store_result<std::optional<impersonation_grant>>>
redis_store::redeem_grant(std::string_view jti, clock_type::time_point now) {
    const auto deadline = steady::now() + config_.timeout;
    auto command = evalsha(script_id::redeem_grant, {config_.prefix + "g:" + std::string(jti)},
                           {std::to_string(to_ms(now))});
    auto r = co_await eval(connection_, script_id::redeem_grant, std::move(command), deadline);
    if (!r)
        co_return r.error();
    if (r->is_nil())
        co_return std::nullopt;
    if (r->type != redis_value::kind::array || r->elements.empty())
        co_return errc::store_unavailable;
    auto grant = grant_from_text(r->elements[0].str);
    if (!grant)
        co_return errc::store_unavailable;
    if (r->elements.size() > 1)
        grant->withdrawn_because = r->elements[1].str;
    co_return grant;
}

asio::awaitable<store_result<std::vector<std::pair<std::string, impersonation_grant>>>>
redis_store::withdraw_grants(std::function<bool(const impersonation_grant&)> should_withdraw,
                             std::string because, clock_type::time_point now) {
    using result_type = std::vector<std::pair<std::string, impersonation_grant>>;
    const std::string now_ms = std::to_string(to_ms(now));
    // 1: the live grants' ids.
    auto live_ids = one_command({"ZRANGEBYSCORE", config_.prefix + "grants", "(" + now_ms, "+inf"});
    auto ids = co_await connection_->exec(std::move(live_ids), steady::now() + config_.timeout);
    if (!ids)
        co_return ids.error();
    const redis_value& list = ids->front();
    if (list.type != redis_value::kind::array)
        co_return errc::store_unavailable;
    if (list.elements.empty())
        co_return result_type{};
    // 2: their grants.
    std::vector<redis_command> reads;
    for (const redis_value& id : list.elements)
        reads.push_back({"HMGET", config_.prefix + "g:" + id.str, "g", "e", "w", "x"});
    auto fields = co_await connection_->exec(std::move(reads), steady::now() + config_.timeout);
    if (!fields)
        co_return fields.error();
    std::vector<std::pair<std::string, impersonation_grant>> chosen;
    for (std::size_t i = 0; i < fields->size(); ++i) {
        const redis_value& f = (*fields)[i];
        if (f.type != redis_value::kind::array || f.elements.size() != 4 ||
            f.elements[0].is_nil() || !f.elements[2].is_nil() || !f.elements[3].is_nil())
            continue; // gone, withdrawn or redeemed
        auto grant = grant_from_text(f.elements[0].str);
        if (!grant || !(now < grant->expires_at) || !should_withdraw(*grant))
            continue;
        chosen.emplace_back(list.elements[i].str, std::move(*grant));
    }
    if (chosen.empty())
        co_return result_type{};
    // 3: withdraw each unless redeemed or withdrawn meanwhile.
    std::vector<redis_command> writes;
    for (const auto& [jti, grant] : chosen)
        writes.push_back(
            evalsha(script_id::withdraw_grant, {config_.prefix + "g:" + jti}, {because, now_ms}));
    auto done = co_await eval_all(connection_, script_id::withdraw_grant, std::move(writes),
                                  steady::now() + config_.timeout);
    if (!done)
        co_return done.error();
    result_type withdrawn;
    for (std::size_t i = 0; i < chosen.size(); ++i) {
        if ((*done)[i].integer == 1) {
            chosen[i].second.withdrawn_because = because;
            withdrawn.push_back(std::move(chosen[i]));
        }
    }
    co_return withdrawn;
}

asio::awaitable<store_result<bool>>
redis_store::start_impersonation(std::string_view id, session_id session,
                                 clock_type::time_point started_at,
                                 clock_type::time_point session_expires_at) {
    const auto deadline = steady::now() + config_.timeout;
    auto command =
        evalsha(script_id::start_impersonation, {},
                {config_.prefix, std::string(id), std::to_string(session),
                 std::to_string(to_ns(started_at)), std::to_string(to_ns(session_expires_at))});
    auto r =
        co_await eval(connection_, script_id::start_impersonation, std::move(command), deadline);
    if (!r)
        co_return store_result<bool>(boost::system::in_place_error, r.error());
    co_return r->integer == 1;
}

asio::awaitable<store_result<std::optional<impersonation_record>>>
redis_store::end_impersonation(std::string_view id, std::string end_reason,
                               clock_type::time_point now) {
    const auto deadline = steady::now() + config_.timeout;
    auto command = evalsha(
        script_id::end_impersonation, {},
        {config_.prefix, std::string(id), std::move(end_reason), std::to_string(to_ns(now))});
    auto r = co_await eval(connection_, script_id::end_impersonation, std::move(command), deadline);
    if (!r)
        co_return r.error();
    if (r->is_nil())
        co_return std::nullopt;
    auto record = record_from(std::string(id), *r);
    if (!record)
        co_return errc::store_unavailable;
    co_return record;
}

asio::awaitable<store_result<std::vector<impersonation_record>>>
redis_store::end_impersonations_of_actor(session_id actor_session, std::string end_reason,
                                         clock_type::time_point now) {
    const auto deadline = steady::now() + config_.timeout;
    auto command = evalsha(script_id::end_impersonations_of_actor, {},
                           {config_.prefix, std::to_string(actor_session), std::move(end_reason),
                            std::to_string(to_ns(now))});
    auto r = co_await eval(connection_, script_id::end_impersonations_of_actor, std::move(command),
                           deadline);
    if (!r)
        co_return r.error();
    auto records = records_from_pairs(*r);
    if (!records)
        co_return errc::store_unavailable;
    co_return std::move(*records);
}

asio::awaitable<store_result<std::vector<impersonation_record>>>
redis_store::expire_impersonations(clock_type::time_point now) {
    const auto deadline = steady::now() + config_.timeout;
    auto command =
        evalsha(script_id::expire_impersonations, {},
                {config_.prefix, std::to_string(to_ms(now)), std::to_string(to_ns(now))});
    auto r =
        co_await eval(connection_, script_id::expire_impersonations, std::move(command), deadline);
    if (!r)
        co_return r.error();
    auto records = records_from_pairs(*r);
    if (!records)
        co_return errc::store_unavailable;
    co_return std::move(*records);
}

asio::awaitable<store_result<std::optional<impersonation_record>>>
redis_store::find_impersonation(std::string_view id) {
    auto read = one_command(
        {"HMGET", config_.prefix + "i:" + std::string(id), "j", "s", "sa", "se", "ea", "er"});
    auto r = co_await connection_->exec(std::move(read), steady::now() + config_.timeout);
    if (!r)
        co_return r.error();
    const redis_value& v = r->front();
    if (v.is_error())
        co_return errc::store_unavailable;
    if (v.type == redis_value::kind::array && !v.elements.empty() && v.elements[0].is_nil())
        co_return std::nullopt;
    auto record = record_from(std::string(id), v);
    if (!record)
        co_return errc::store_unavailable;
    co_return record;
}

asio::awaitable<store_result<std::vector<impersonation_record>>>
redis_store::list_impersonations(impersonation_query query) {
    const std::string index =
        query.target_customer ? config_.prefix + "imp:c:" + std::to_string(*query.target_customer)
                              : config_.prefix + "imp:all";
    auto range = one_command({"ZREVRANGE", index, "0", "-1"});
    auto ids = co_await connection_->exec(std::move(range), steady::now() + config_.timeout);
    if (!ids)
        co_return ids.error();
    const redis_value& list = ids->front();
    if (list.type != redis_value::kind::array)
        co_return errc::store_unavailable;
    std::vector<impersonation_record> out;
    if (list.elements.empty() || query.limit == 0)
        co_return out;
    std::vector<redis_command> reads;
    for (const redis_value& id : list.elements)
        reads.push_back(
            {"HMGET", config_.prefix + "i:" + id.str, "j", "s", "sa", "se", "ea", "er"});
    auto fields = co_await connection_->exec(std::move(reads), steady::now() + config_.timeout);
    if (!fields)
        co_return fields.error();
    std::size_t ended = 0;
    for (std::size_t i = 0; i < fields->size() && out.size() < query.limit; ++i) {
        auto r = record_from(list.elements[i].str, (*fields)[i]);
        if (!r)
            continue; // forgotten meanwhile
        if (query.state && r->state() != *query.state)
            continue;
        if (!query.include_operator_actors && r->actor.is_operator)
            continue;
        if (r->ended_at && ended++ >= query.ended_limit)
            continue;
        out.push_back(std::move(*r));
    }
    co_return out;
}

asio::awaitable<bool> redis_store::reachable() {
    auto ping = one_command({"PING"});
    auto r = co_await connection_->exec(std::move(ping), steady::now() + config_.timeout);
    co_return r && r->front().type == redis_value::kind::status && r->front().str == "PONG";
}

asio::awaitable<store_result<std::vector<session_snapshot>>>
redis_store::revoke_matching(std::function<bool(const session_snapshot&)> should_end) {
    const std::string session_prefix = config_.prefix + "s:";
    const std::string pattern = glob_escape(session_prefix) + "*";
    std::vector<session_snapshot> ended;
    std::string cursor = "0";
    do {
        auto scan =
            one_command({"SCAN", cursor, "MATCH", pattern, "COUNT", std::to_string(scan_batch)});
        auto page = co_await connection_->exec(std::move(scan), steady::now() + config_.timeout);
        if (!page)
            co_return page.error();
        const redis_value& v = page->front();
        if (v.type != redis_value::kind::array || v.elements.size() != 2)
            co_return errc::store_unavailable;
        cursor = v.elements[0].str;
        std::vector<session_id> ids;
        std::vector<redis_command> reads;
        for (const redis_value& key : v.elements[1].elements) {
            auto id =
                parse_int<session_id>(std::string_view(key.str).substr(session_prefix.size()));
            if (!id)
                continue; // a links set (":d")
            ids.push_back(*id);
            reads.push_back({"HMGET", key.str, "e", "c", "p", "n", "imp"});
        }
        if (reads.empty())
            continue;
        auto fields = co_await connection_->exec(std::move(reads), steady::now() + config_.timeout);
        if (!fields)
            co_return fields.error();
        std::vector<session_snapshot> matching;
        for (std::size_t i = 0; i < ids.size(); ++i) {
            redis_value f = std::move((*fields)[i]);
            if (f.type != redis_value::kind::array || f.elements.size() != 5 ||
                f.elements[0].is_nil())
                continue; // gone meanwhile
            for (redis_value& e : f.elements)
                e.type = redis_value::kind::string; // nil fields read as ""
            auto snapshot = snapshot_from(ids[i], f);
            if (snapshot && should_end(*snapshot))
                matching.push_back(std::move(*snapshot));
        }
        if (matching.empty())
            continue;
        std::vector<redis_command> revokes;
        for (const session_snapshot& s : matching)
            revokes.push_back(
                evalsha(script_id::revoke, {}, {config_.prefix, std::to_string(s.id)}));
        auto done = co_await eval_all(connection_, script_id::revoke, std::move(revokes),
                                      steady::now() + config_.timeout);
        if (!done)
            co_return done.error();
        for (std::size_t i = 0; i < matching.size(); ++i) {
            if ((*done)[i].integer == 1)
                ended.push_back(std::move(matching[i]));
        }
    } while (cursor != "0");
    co_return ended;
}

// --- counters: a sorted set per key, <prefix>rl:<key>, of attempt times in µs ---

asio::awaitable<store_result<attempt_reservation>>
redis_store::reserve(std::span<const counted_key> keys, clock_type::time_point now) {
    const auto deadline = steady::now() + config_.timeout;
    const std::int64_t now_us = to_us(now);
    std::vector<std::string> names;
    std::vector<std::string> args{std::to_string(now_us), nonce()};
    for (const counted_key& k : keys) {
        const auto window_us =
            std::chrono::duration_cast<std::chrono::microseconds>(k.limit.window).count();
        names.push_back(config_.prefix + "rl:" + std::string(k.key));
        args.push_back(std::to_string(k.limit.max));
        args.push_back(std::to_string(now_us - window_us));
        args.push_back(std::to_string(to_ms(now + k.limit.window) + 1));
    }
    if (names.empty())
        co_return attempt_reservation{};
    auto command = evalsha(script_id::reserve, std::move(names), std::move(args));
    auto r = co_await eval(connection_, script_id::reserve, std::move(command), deadline);
    if (!r)
        co_return r.error();
    if (r->type != redis_value::kind::array || r->elements.size() != 2)
        co_return errc::store_unavailable;
    const long long index = r->elements[0].integer;
    if (index < 0)
        co_return attempt_reservation{};
    auto oldest = parse_score(r->elements[1].str);
    if (!oldest || static_cast<std::size_t>(index) >= keys.size())
        co_return errc::store_unavailable;
    const auto window = std::chrono::duration_cast<std::chrono::microseconds>(
        keys[static_cast<std::size_t>(index)].limit.window);
    const auto wait =
        std::chrono::microseconds(*oldest) + window - std::chrono::microseconds(now_us);
    co_return attempt_reservation{
        .refused_by = static_cast<std::size_t>(index),
        .retry_after =
            std::max(std::chrono::ceil<std::chrono::seconds>(wait), std::chrono::seconds(1)),
    };
}

asio::awaitable<store_result<void>> redis_store::release(std::span<const counted_key> keys,
                                                         clock_type::time_point reserved_at) {
    const auto deadline = steady::now() + config_.timeout;
    std::vector<std::string> names;
    std::vector<std::string> args;
    for (const counted_key& k : keys) {
        names.push_back(config_.prefix + "rl:" + std::string(k.key));
        args.push_back(std::to_string(to_us(reserved_at)));
    }
    if (names.empty())
        co_return store_result<void>();
    auto command = evalsha(script_id::release, std::move(names), std::move(args));
    auto r = co_await eval(connection_, script_id::release, std::move(command), deadline);
    if (!r)
        co_return r.error();
    co_return store_result<void>();
}

asio::awaitable<store_result<std::optional<std::chrono::seconds>>>
redis_store::blocked_for(std::string_view key, rate_limit limit, clock_type::time_point now) {
    if (limit.max == 0)
        co_return std::nullopt;
    const auto deadline = steady::now() + config_.timeout;
    const std::int64_t now_us = to_us(now);
    const auto window = std::chrono::duration_cast<std::chrono::microseconds>(limit.window);
    auto command = evalsha(script_id::blocked_for, {config_.prefix + "rl:" + std::string(key)},
                           {std::to_string(limit.max), std::to_string(now_us - window.count())});
    auto r = co_await eval(connection_, script_id::blocked_for, std::move(command), deadline);
    if (!r)
        co_return r.error();
    if (r->is_nil())
        co_return std::nullopt;
    auto oldest = parse_score(r->str);
    if (!oldest)
        co_return errc::store_unavailable;
    const auto wait =
        std::chrono::microseconds(*oldest) + window - std::chrono::microseconds(now_us);
    co_return std::max(std::chrono::ceil<std::chrono::seconds>(wait), std::chrono::seconds(1));
}

asio::awaitable<store_result<void>> redis_store::reset(std::string_view key) {
    auto del = one_command({"DEL", config_.prefix + "rl:" + std::string(key)});
    auto r = co_await connection_->exec(std::move(del), steady::now() + config_.timeout);
    if (!r)
        co_return r.error();
    if (r->front().is_error())
        co_return errc::store_unavailable;
    co_return store_result<void>();
}

} // namespace portal_auth
