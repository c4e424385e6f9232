// The in-memory store: each awaitable runs the synchronous table's call and completes inline.
#include <portal_auth/memory_store.hpp>

#include "impersonation_ledger.hpp"
#include "rate_limiter.hpp"

namespace portal_auth {

namespace asio = boost::asio;

memory_store::memory_store(std::size_t shard_count)
    : sessions_(shard_count), counters_(std::make_unique<rate_limiter>()),
      impersonations_(std::make_unique<detail::impersonation_ledger>()) {}

memory_store::~memory_store() = default;

asio::awaitable<store_result<issued_tokens>>
memory_store::create(session_data data, clock_type::time_point now, std::chrono::seconds ttl) {
    co_return sessions_.create(std::move(data), now, ttl);
}

asio::awaitable<store_result<std::optional<session_snapshot>>>
memory_store::find_by_access_token(std::string_view token, clock_type::time_point now) {
    co_return sessions_.find_by_access_token(token, now);
}

asio::awaitable<store_result<bool>> memory_store::is_live(session_id id,
                                                          clock_type::time_point now) {
    co_return sessions_.is_live(id, now);
}

asio::awaitable<store_result<issued_tokens>> memory_store::refresh(std::string_view refresh_token,
                                                                   clock_type::time_point now,
                                                                   std::chrono::seconds ttl) {
    co_return sessions_.refresh(refresh_token, now, ttl);
}

asio::awaitable<store_result<bool>> memory_store::switch_profile(session_id id,
                                                                 profile_id profile) {
    co_return sessions_.switch_profile(id, profile);
}

asio::awaitable<store_result<bool>> memory_store::revoke(session_id id) {
    co_return sessions_.revoke(id);
}

asio::awaitable<store_result<void>>
memory_store::add_grant(std::string jti, impersonation_grant grant, clock_type::time_point now) {
    impersonations_->add(impersonation_record{
        .id = jti,
        .actor = grant.actor,
        .target_customer = grant.target_customer,
        .target_profile = grant.target,
        .reason = grant.actor.reason,
        .issued_at = grant.issued_at,
        .token_expires_at = grant.expires_at,
    });
    sessions_.add_grant(std::move(jti), std::move(grant), now);
    co_return store_result<void>();
}

asio::awaitable<store_result<std::optional<impersonation_grant>>>
memory_store::redeem_grant(std::string_view jti, clock_type::time_point now) {
    co_return sessions_.redeem_grant(jti, now);
}

asio::awaitable<store_result<std::vector<std::pair<std::string, impersonation_grant>>>>
memory_store::withdraw_grants(std::function<bool(const impersonation_grant&)> should_withdraw,
                              std::string because, clock_type::time_point now) {
    co_return sessions_.withdraw_grants(should_withdraw, because, now);
}

void memory_store::stop_impersonation(const impersonation_record& ended) {
    if (ended.session)
        sessions_.revoke(*ended.session);
    else
        sessions_.withdraw_grant(ended.id, *ended.end_reason);
}

asio::awaitable<store_result<bool>>
memory_store::start_impersonation(std::string_view id, session_id session,
                                  clock_type::time_point started_at,
                                  clock_type::time_point session_expires_at) {
    co_return impersonations_->start(id, session, started_at, session_expires_at);
}

asio::awaitable<store_result<std::optional<impersonation_record>>>
memory_store::end_impersonation(std::string_view id, std::string end_reason,
                                clock_type::time_point now) {
    auto ended = impersonations_->end(id, std::move(end_reason), now);
    if (ended)
        stop_impersonation(*ended);
    co_return ended;
}

asio::awaitable<store_result<std::vector<impersonation_record>>>
memory_store::end_impersonations_of_actor(session_id actor_session, std::string end_reason,
                                          clock_type::time_point now) {
    auto ended = impersonations_->end_where(
        [&](const impersonation_record& r) -> std::optional<std::string> {
            if (r.actor.actor_session != actor_session)
                return std::nullopt;
            return end_reason;
        },
        now);
    for (const auto& r : ended)
        stop_impersonation(r);
    co_return ended;
}

asio::awaitable<store_result<std::vector<impersonation_record>>>
memory_store::expire_impersonations(clock_type::time_point now) {
    auto ended = impersonations_->end_where(
        [&](const impersonation_record& r) -> std::optional<std::string> {
            if (r.session && !sessions_.is_live(*r.session, now))
                return "expired";
            if (!r.session && !(now < r.token_expires_at))
                return "not_redeemed";
            return std::nullopt;
        },
        now);
    for (const auto& r : ended)
        stop_impersonation(r);
    co_return ended;
}

asio::awaitable<store_result<std::optional<impersonation_record>>>
memory_store::find_impersonation(std::string_view id) {
    co_return impersonations_->find(id);
}

asio::awaitable<store_result<std::vector<impersonation_record>>>
memory_store::list_impersonations(impersonation_query query) {
    co_return impersonations_->list(query);
}

asio::awaitable<store_result<std::vector<session_snapshot>>>
memory_store::revoke_matching(std::function<bool(const session_snapshot&)> should_end) {
    co_return sessions_.revoke_matching(should_end);
}

asio::awaitable<store_result<std::optional<std::chrono::seconds>>>
memory_store::blocked_for(std::string_view key, rate_limit limit, clock_type::time_point now) {
    co_return counters_->blocked_for(key, limit, now);
}

asio::awaitable<store_result<attempt_reservation>>
memory_store::reserve(std::span<const counted_key> keys, clock_type::time_point now) {
    co_return counters_->reserve(keys, now);
}

asio::awaitable<store_result<void>> memory_store::release(std::span<const counted_key> keys,
                                                          clock_type::time_point reserved_at) {
    counters_->release(keys, reserved_at);
    co_return store_result<void>();
}

asio::awaitable<store_result<void>> memory_store::reset(std::string_view key) {
    counters_->reset(key);
    co_return store_result<void>();
}

std::size_t memory_store::sweep(clock_type::time_point now) {
    counters_->sweep(now);
    return sessions_.sweep(now);
}

} // namespace portal_auth
