// The in-memory attempt counters behind memory_store: sliding windows per key, the limit given
// with each call.
#pragma once

#include <portal_auth/store.hpp>

#include <chrono>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace portal_auth {

// Thread-safe; sharded by key so unrelated keys do not contend.
class rate_limiter {
public:
    using time_point = std::chrono::system_clock::time_point;

    explicit rate_limiter(std::size_t shard_count = 16);
    ~rate_limiter();

    // How long until the key may try again, or nothing when it may now.
    std::optional<std::chrono::seconds> blocked_for(std::string_view key, rate_limit limit,
                                                    time_point now) const;

    // Counts one attempt for the key.
    void record(std::string_view key, rate_limit limit, time_point now);

    // rate_limit_store::reserve: every key's shard is locked (in shard order, so that two
    // reservations cannot deadlock) across the check and the count.
    attempt_reservation reserve(std::span<const counted_key> keys, time_point now);

    // Removes one attempt counted at `reserved_at` from each key, where it is still counted.
    void release(std::span<const counted_key> keys, time_point reserved_at);

    // Forgets the key's attempts (e.g. after a successful login).
    void reset(std::string_view key);

    // Drops keys whose attempts have all left their window; bounds memory under key churn.
    void sweep(time_point now);

private:
    struct attempts {
        std::deque<time_point> times; // the newest `max`, oldest first
        std::chrono::seconds window{0};
    };
    struct shard {
        mutable std::mutex mutex;
        std::unordered_map<std::string, attempts> keys;
    };
    std::size_t shard_index(std::string_view key) const noexcept;
    shard& shard_for(std::string_view key) const noexcept;
    // With the key's shard locked.
    static std::optional<std::chrono::seconds> blocked_locked(const shard& s, std::string_view key,
                                                              rate_limit limit, time_point now);
    static void record_locked(shard& s, std::string_view key, rate_limit limit, time_point now);

    std::vector<std::unique_ptr<shard>> shards_;
};

} // namespace portal_auth
