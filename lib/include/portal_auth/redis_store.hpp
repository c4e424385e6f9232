// A store in Redis, so that several instances share sessions, grants and counters. Redis holds
// SHA-256 digests of the token secrets, never the tokens; every change that must be atomic is
// one Lua script; expiry is Redis's (PEXPIREAT), so nothing needs sweeping.
//
// One connection per store, commands pipelined on it. Each operation completes with
// errc::store_unavailable when Redis does not answer within `timeout` (per round trip), when
// the connection is lost, or at once while it is down; the store reconnects by itself with
// backoff (100 ms doubling to 2 s). Times passed as `now` must be the real time: Redis expires
// keys by its own clock.
//
// Impersonation records are kept too (ended ones bounded: 50 per target customer, 10000 in
// all); expire_impersonations runs over every open record in one script, so one instance
// should call it at a time.
#pragma once

#include <portal_auth/store.hpp>

#include <boost/asio/any_io_executor.hpp>

#include <chrono>
#include <memory>
#include <string>

namespace portal_auth {

namespace detail {
class redis_connection;
}

struct redis_store_config {
    std::string host = "127.0.0.1";
    unsigned short port = 6379;
    int db = 0;
    std::string password; // AUTH when not empty
    std::string prefix = "portal-auth:";
    std::chrono::milliseconds timeout{500}; // connecting, and each round trip
};

// Thread-safe: any number of coroutines on any executors may call it at once; each operation
// completes on the caller's executor. Cancellation of an operation is not supported; it ends by
// its timeout at the latest. Destroy the store before its executor's io_context stops running
// (or is destroyed): the destructor only asks the connection to close.
class redis_store final : public session_repository, public rate_limit_store {
public:
    // Starts connecting at once; operations before the connection is up fail with
    // errc::store_unavailable (reachable() tells when it is up).
    redis_store(boost::asio::any_io_executor ex, redis_store_config config);
    ~redis_store() override;
    redis_store(const redis_store&) = delete;
    redis_store& operator=(const redis_store&) = delete;

    boost::asio::awaitable<store_result<issued_tokens>>
    create(session_data data, clock_type::time_point now, std::chrono::seconds ttl) override;
    boost::asio::awaitable<store_result<std::optional<session_snapshot>>>
    find_by_access_token(std::string_view token, clock_type::time_point now) override;
    boost::asio::awaitable<store_result<bool>> is_live(session_id id,
                                                       clock_type::time_point now) override;
    boost::asio::awaitable<store_result<issued_tokens>> refresh(std::string_view refresh_token,
                                                                clock_type::time_point now,
                                                                std::chrono::seconds ttl) override;
    boost::asio::awaitable<store_result<bool>> switch_profile(session_id id,
                                                              profile_id profile) override;
    boost::asio::awaitable<store_result<bool>> revoke(session_id id) override;
    boost::asio::awaitable<store_result<void>> add_grant(std::string jti, impersonation_grant grant,
                                                         clock_type::time_point now) override;
    boost::asio::awaitable<store_result<std::optional<impersonation_grant>>>
    redeem_grant(std::string_view jti, clock_type::time_point now) override;
    boost::asio::awaitable<store_result<std::vector<std::pair<std::string, impersonation_grant>>>>
    withdraw_grants(std::function<bool(const impersonation_grant&)> should_withdraw,
                    std::string because, clock_type::time_point now) override;
    boost::asio::awaitable<store_result<bool>>
    start_impersonation(std::string_view id, session_id session, clock_type::time_point started_at,
                        clock_type::time_point session_expires_at) override;
    boost::asio::awaitable<store_result<std::optional<impersonation_record>>>
    end_impersonation(std::string_view id, std::string end_reason,
                      clock_type::time_point now) override;
    boost::asio::awaitable<store_result<std::vector<impersonation_record>>>
    end_impersonations_of_actor(session_id actor_session, std::string end_reason,
                                clock_type::time_point now) override;
    boost::asio::awaitable<store_result<std::vector<impersonation_record>>>
    expire_impersonations(clock_type::time_point now) override;
    boost::asio::awaitable<store_result<std::optional<impersonation_record>>>
    find_impersonation(std::string_view id) override;
    boost::asio::awaitable<store_result<std::vector<impersonation_record>>>
    list_impersonations(impersonation_query query) override;
    // PING within the timeout.
    boost::asio::awaitable<bool> reachable() override;
    // SCANs the session keys: per page of 200 keys, one round trip for the page, one for the
    // sessions (pipelined) and one for the revocations (pipelined) when some match.
    boost::asio::awaitable<store_result<std::vector<session_snapshot>>>
    revoke_matching(std::function<bool(const session_snapshot&)> should_end) override;

    boost::asio::awaitable<store_result<std::optional<std::chrono::seconds>>>
    blocked_for(std::string_view key, rate_limit limit, clock_type::time_point now) override;
    boost::asio::awaitable<store_result<attempt_reservation>>
    reserve(std::span<const counted_key> keys, clock_type::time_point now) override;
    boost::asio::awaitable<store_result<void>> release(std::span<const counted_key> keys,
                                                       clock_type::time_point reserved_at) override;
    boost::asio::awaitable<store_result<void>> reset(std::string_view key) override;

    const redis_store_config& config() const noexcept { return config_; }

private:
    struct script;
    struct reply;

    redis_store_config config_;
    std::shared_ptr<detail::redis_connection> connection_;
};

} // namespace portal_auth
