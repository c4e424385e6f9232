// The in-memory table of sessions and one-time impersonation grants behind memory_store.
// Synchronous and thread-safe; sharded so that threads working on different sessions do not
// contend.
#pragma once

#include <portal_auth/store.hpp>

#include <boost/system/result.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace portal_auth {

class session_store {
public:
    explicit session_store(std::size_t shard_count = 64);
    ~session_store();
    session_store(const session_store&) = delete;
    session_store& operator=(const session_store&) = delete;

    // New session living until min(now + ttl, data.not_after).
    issued_tokens create(session_data data, clock_type::time_point now, std::chrono::seconds ttl);

    // The live session this access token belongs to, or nothing: unknown, malformed, expired,
    // revoked, or its impersonation actor's session no longer live. Secrets are compared in
    // constant time.
    std::optional<session_snapshot> find_by_access_token(std::string_view token,
                                                         clock_type::time_point now) const;

    // Is this session live at `now` (exists, not expired, and its actor, if any, live)?
    bool is_live(session_id id, clock_type::time_point now) const;

    // Rotates both tokens of the session this refresh token belongs to; the old ones stop
    // working. New expiry: min(now + ttl, not_after). Errors: errc::invalid_refresh_token when
    // the token is not the current refresh token of a live session; errc::refresh_token_reused
    // when it is one the session already rotated away from, and then the whole session (its
    // current tokens too) is revoked.
    boost::system::result<issued_tokens>
    refresh(std::string_view refresh_token, clock_type::time_point now, std::chrono::seconds ttl);

    // Moves a session to another profile. False if the session is gone.
    bool switch_profile(session_id id, profile_id profile);

    // Ends the session. False if it did not exist.
    bool revoke(session_id id);

    // One-time impersonation grants, keyed by the token's jti. Adding one also drops a couple
    // of grants expired by `now`, so that cleaning up keeps pace with issuing and the sweep
    // has little left to do.
    void add_grant(std::string jti, impersonation_grant grant, clock_type::time_point now);
    // Removes the grant and returns it; nothing if unknown, already redeemed, or expired. A
    // withdrawn grant is returned and stays (withdrawn) until it expires.
    std::optional<impersonation_grant> redeem_grant(std::string_view jti,
                                                    clock_type::time_point now);
    // Marks the grant withdrawn `because` unless it is redeemed, withdrawn or gone. True if it
    // did.
    bool withdraw_grant(std::string_view jti, const std::string& because);
    // Marks every live, unredeemed grant that `should_withdraw` selects as withdrawn `because`
    // and returns them by jti. The predicate runs under a shard lock.
    std::vector<std::pair<std::string, impersonation_grant>>
    withdraw_grants(const std::function<bool(const impersonation_grant&)>& should_withdraw,
                    const std::string& because, clock_type::time_point now);

    // Drops expired sessions, sessions whose actor is gone, and expired grants. Returns how many
    // sessions were dropped.
    std::size_t sweep(clock_type::time_point now);

    // Ends every session for which `should_end` returns true and returns them. The predicate
    // runs under a shard lock: it must not call back into the store.
    std::vector<session_snapshot>
    revoke_matching(const std::function<bool(const session_snapshot&)>& should_end);

    std::size_t size() const;
    // Grants held: unredeemed, or redeemed and not yet expired.
    std::size_t grant_count() const;

private:
    struct shard;
    struct grant_shard;
    shard& shard_for(session_id id) const noexcept;
    grant_shard& grant_shard_for(std::string_view jti) const noexcept;
    std::vector<std::unique_ptr<shard>> shards_;
    std::vector<std::unique_ptr<grant_shard>> grant_shards_;
};

} // namespace portal_auth
