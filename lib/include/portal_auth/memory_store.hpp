// The default store: sessions, grants, links and counters in this process's memory. Every
// operation completes inline (no post, no thread hop); the store is lost with the process.
#pragma once

#include <portal_auth/session_store.hpp>
#include <portal_auth/store.hpp>

#include <memory>

namespace portal_auth {

class rate_limiter;
namespace detail {
class impersonation_ledger;
}

class memory_store final : public session_repository, public rate_limit_store {
public:
    explicit memory_store(std::size_t shard_count = 64);
    ~memory_store() override;
    memory_store(const memory_store&) = delete;
    memory_store& operator=(const memory_store&) = delete;

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
    boost::asio::awaitable<store_result<std::vector<session_snapshot>>>
    revoke_matching(std::function<bool(const session_snapshot&)> should_end) override;

    boost::asio::awaitable<store_result<std::optional<std::chrono::seconds>>>
    blocked_for(std::string_view key, rate_limit limit, clock_type::time_point now) override;
    boost::asio::awaitable<store_result<attempt_reservation>>
    reserve(std::span<const counted_key> keys, clock_type::time_point now) override;
    boost::asio::awaitable<store_result<void>> release(std::span<const counted_key> keys,
                                                       clock_type::time_point reserved_at) override;
    boost::asio::awaitable<store_result<void>> reset(std::string_view key) override;

    // Drops expired sessions, sessions whose actor is gone, expired grants and counters whose
    // window has passed; returns how many sessions were dropped. The owner calls it
    // periodically, from a thread of its own: a sweep over many sessions must not hold up an
    // I/O thread (portal-auth: every 10 s).
    std::size_t sweep(clock_type::time_point now);

    // The synchronous table underneath, for inspection (tests, the memory probe).
    session_store& sessions() noexcept { return sessions_; }
    const session_store& sessions() const noexcept { return sessions_; }

private:
    // Withdraws the grant of an unredeemed record, or revokes the session of an active one.
    void stop_impersonation(const impersonation_record& ended);

    session_store sessions_;
    std::unique_ptr<rate_limiter> counters_;
    std::unique_ptr<detail::impersonation_ledger> impersonations_;
};

} // namespace portal_auth
