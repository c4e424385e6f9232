// What the service keeps between requests, behind interfaces a network store can fill: sessions
// (with refresh rotation history and reuse detection), single-use impersonation grants, the
// links from an actor's session to the sessions derived from it, and rate-limit counters.
//
// Every operation is an awaitable that the caller must await before its arguments go out of
// scope (string_view arguments are not copied). A failure of the store itself (unreachable,
// timed out) is errc::store_unavailable as a value, never an exception; "not found" is a normal
// answer, not an error. The in-memory store (memory_store.hpp) completes every operation inline.
#pragma once

#include <portal_auth/directory.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/system/result.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace portal_auth {

using clock_type = std::chrono::system_clock;
using session_id = std::uint64_t;
template <class T> using store_result = boost::system::result<T>;

// Who made an impersonated session, and which impersonation it is.
struct impersonator_info {
    customer_id customer = 0;
    std::optional<profile_id> profile; // empty for an operator
    bool is_operator = false;
    session_id actor_session = 0; // the actor's session; when it ends, this one ends
    std::string impersonation_id; // the token's jti
    std::optional<std::string> reason;
    clock_type::time_point started_at; // the exchange
};

struct session_data {
    customer_id customer = 0;
    profile_id profile = 0;
    std::optional<impersonator_info> impersonator;
    // Hard cap on the session's life (impersonated sessions); refresh never extends past it.
    std::optional<clock_type::time_point> not_after;
};

struct session_snapshot {
    session_id id = 0;
    session_data data;
    clock_type::time_point expires_at;
};

// What an unredeemed impersonation token stands for, kept server-side by its jti.
struct impersonation_grant {
    impersonator_info actor; // actor_session: the issuing session
    profile_id target = 0;
    customer_id target_customer = 0;
    clock_type::time_point issued_at;
    clock_type::time_point expires_at;
    // Set when the grant was withdrawn before redemption (an audit reason, e.g.
    // "actor_lost_right"): it can no longer be redeemed, and a redemption learns why.
    std::optional<std::string> withdrawn_because;
};

enum class impersonation_state {
    issued, // the token is not redeemed yet
    active, // redeemed: the impersonated session lives
    ended,
};

// What the customer and operators see of one impersonation, from issue to end. The id is the
// token's jti.
struct impersonation_record {
    std::string id;
    impersonator_info actor;
    customer_id target_customer = 0;
    profile_id target_profile = 0;
    std::optional<std::string> reason;
    clock_type::time_point issued_at;
    clock_type::time_point token_expires_at;
    std::optional<clock_type::time_point> started_at;
    std::optional<clock_type::time_point> session_expires_at; // the impersonated session's cap
    std::optional<session_id> session;
    std::optional<clock_type::time_point> ended_at;
    std::optional<std::string> end_reason;

    impersonation_state state() const noexcept {
        if (ended_at)
            return impersonation_state::ended;
        return started_at ? impersonation_state::active : impersonation_state::issued;
    }
    // The token's expiry while issued; the session's cap once active.
    clock_type::time_point expires_at() const noexcept {
        return session_expires_at.value_or(token_expires_at);
    }
};

// Which impersonation records a listing wants, newest first.
struct impersonation_query {
    std::optional<customer_id> target_customer; // only those of this customer
    std::optional<impersonation_state> state;   // only those in this state
    bool include_operator_actors = true;
    std::size_t limit = 100;       // at most this many in all
    std::size_t ended_limit = 100; // and at most this many ended ones
};

struct issued_tokens {
    session_id id = 0;
    std::string access_token;  // base64url of 8 id bytes + 16 random bytes
    std::string refresh_token; // same shape, independent random part
    clock_type::time_point expires_at;
};

// Sessions, their refresh history, impersonation grants and actor links. Implementations are
// thread-safe: any number of coroutines on any threads may call them at once.
class session_repository {
public:
    virtual ~session_repository() = default;

    // A new session living until min(now + ttl, data.not_after). A session with an impersonator
    // is linked to the actor's session: it is live only while that one is.
    [[nodiscard]] virtual boost::asio::awaitable<store_result<issued_tokens>>
    create(session_data data, clock_type::time_point now, std::chrono::seconds ttl) = 0;

    // The live session of this access token, or nothing: unknown, malformed, expired, revoked,
    // or its actor's session no longer live. Secrets are compared in constant time.
    [[nodiscard]] virtual boost::asio::awaitable<store_result<std::optional<session_snapshot>>>
    find_by_access_token(std::string_view token, clock_type::time_point now) = 0;

    // Whether the session exists, has not expired, and its actor's session (if any) is live.
    [[nodiscard]] virtual boost::asio::awaitable<store_result<bool>>
    is_live(session_id id, clock_type::time_point now) = 0;

    // Rotates both tokens of the session this refresh token belongs to. Errors:
    // errc::invalid_refresh_token when it is not the current refresh token of a live session;
    // errc::refresh_token_reused when the session already rotated away from it, and then the
    // whole session is revoked; errc::store_unavailable.
    [[nodiscard]] virtual boost::asio::awaitable<store_result<issued_tokens>>
    refresh(std::string_view refresh_token, clock_type::time_point now,
            std::chrono::seconds ttl) = 0;

    // Moves a session to another profile. False if the session is gone.
    [[nodiscard]] virtual boost::asio::awaitable<store_result<bool>>
    switch_profile(session_id id, profile_id profile) = 0;

    // Ends the session, and with it every session derived from it. False if it did not exist.
    [[nodiscard]] virtual boost::asio::awaitable<store_result<bool>> revoke(session_id id) = 0;

    // Single-use impersonation grants, keyed by the token's jti. Adding one also starts its
    // impersonation record (state issued).
    [[nodiscard]] virtual boost::asio::awaitable<store_result<void>>
    add_grant(std::string jti, impersonation_grant grant, clock_type::time_point now) = 0;

    // Removes the grant and returns it, atomically: of two redemptions of one jti, one gets it.
    // Nothing if unknown, already redeemed, or expired. A withdrawn grant is returned as it is
    // (withdrawn_because set) and stays withdrawn until it expires.
    [[nodiscard]] virtual boost::asio::awaitable<store_result<std::optional<impersonation_grant>>>
    redeem_grant(std::string_view jti, clock_type::time_point now) = 0;

    // Withdraws every live, unredeemed grant for which `should_withdraw` returns true, marking
    // it withdrawn `because`, and returns them by jti (directory reloads). The predicate must
    // not call back into the store.
    [[nodiscard]] virtual boost::asio::awaitable<
        store_result<std::vector<std::pair<std::string, impersonation_grant>>>>
    withdraw_grants(std::function<bool(const impersonation_grant&)> should_withdraw,
                    std::string because, clock_type::time_point now) = 0;

    // Marks the record active, with its session. False when the record has ended meanwhile
    // (cancelled while the exchange ran): the caller revokes the session it made.
    [[nodiscard]] virtual boost::asio::awaitable<store_result<bool>>
    start_impersonation(std::string_view id, session_id session, clock_type::time_point started_at,
                        clock_type::time_point session_expires_at) = 0;

    // Ends an impersonation that has not ended: an unredeemed grant is withdrawn `end_reason`,
    // an active session is revoked. Returns the ended record when this call ended it; nothing
    // when it was unknown or had ended already (so that each ends on the record once).
    [[nodiscard]] virtual boost::asio::awaitable<store_result<std::optional<impersonation_record>>>
    end_impersonation(std::string_view id, std::string end_reason, clock_type::time_point now) = 0;

    // Ends every impersonation issued from the actor's session (it ended), as end_impersonation.
    [[nodiscard]] virtual boost::asio::awaitable<store_result<std::vector<impersonation_record>>>
    end_impersonations_of_actor(session_id actor_session, std::string end_reason,
                                clock_type::time_point now) = 0;

    // Ends what time has ended: an active impersonation whose session is no longer live
    // ("expired"), an unredeemed one whose token has expired ("not_redeemed"). Returns them.
    [[nodiscard]] virtual boost::asio::awaitable<store_result<std::vector<impersonation_record>>>
    expire_impersonations(clock_type::time_point now) = 0;

    [[nodiscard]] virtual boost::asio::awaitable<store_result<std::optional<impersonation_record>>>
    find_impersonation(std::string_view id) = 0;

    [[nodiscard]] virtual boost::asio::awaitable<store_result<std::vector<impersonation_record>>>
    list_impersonations(impersonation_query query) = 0;

    // Whether the store answers now (readiness probes). The in-memory store always does.
    [[nodiscard]] virtual boost::asio::awaitable<bool> reachable() { co_return true; }

    // Ends every session for which `should_end` returns true and returns them (directory
    // reloads). The predicate must not call back into the store.
    [[nodiscard]] virtual boost::asio::awaitable<store_result<std::vector<session_snapshot>>>
    revoke_matching(std::function<bool(const session_snapshot&)> should_end) = 0;
};

// A sliding-window limit: after `max` attempts within `window`, a key is blocked until the
// oldest of them leaves the window. max = 0 turns the limit off.
struct rate_limit {
    std::size_t max = 5;
    std::chrono::seconds window{300};
};

// One counter an attempt counts against: a key (the service namespaces them: e-mail, address,
// pair, actor) and its limit.
struct counted_key {
    std::string_view key;
    rate_limit limit;
};

// What reserve() did: counted the attempt against every key, or against none because
// `refused_by` (an index into the keys) was at its limit.
struct attempt_reservation {
    std::optional<std::size_t> refused_by;
    std::chrono::seconds retry_after{0}; // when refused: until the refusing key may try again

    bool granted() const noexcept { return !refused_by; }
};

// Attempt counters per key. Thread-safe.
class rate_limit_store {
public:
    virtual ~rate_limit_store() = default;

    // Checks every key and, when none is at its limit, counts one attempt against each, as one
    // atomic step: of N concurrent attempts against a limit of M, exactly M are granted
    // (when the window holds none yet). A granted attempt stays counted (a failure) unless it
    // is given back with release().
    [[nodiscard]] virtual boost::asio::awaitable<store_result<attempt_reservation>>
    reserve(std::span<const counted_key> keys, clock_type::time_point now) = 0;

    // Gives back an attempt reserve() counted at `reserved_at` (it succeeded, or never ran).
    [[nodiscard]] virtual boost::asio::awaitable<store_result<void>>
    release(std::span<const counted_key> keys, clock_type::time_point reserved_at) = 0;

    // How long until the key may try again under `limit`, or nothing when it may now.
    [[nodiscard]] virtual boost::asio::awaitable<store_result<std::optional<std::chrono::seconds>>>
    blocked_for(std::string_view key, rate_limit limit, clock_type::time_point now) = 0;

    // Forgets the key's attempts (after a successful login).
    [[nodiscard]] virtual boost::asio::awaitable<store_result<void>>
    reset(std::string_view key) = 0;
};

} // namespace portal_auth
