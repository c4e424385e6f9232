// Sliding-window limits on attempts per key (an e-mail, an address, an actor): after `max`
// attempts within `window`, the key is blocked until the oldest of them leaves the window.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace portal_auth {

struct rate_limit {
    std::size_t max = 5;
    std::chrono::seconds window{300};
};

// Thread-safe; sharded by key so unrelated keys do not contend.
class rate_limiter {
public:
    using time_point = std::chrono::system_clock::time_point;

    explicit rate_limiter(rate_limit limit, std::size_t shard_count = 16);
    ~rate_limiter();

    // How long until the key may try again, or nothing when it may now.
    std::optional<std::chrono::seconds> blocked_for(std::string_view key, time_point now) const;

    // Counts one attempt for the key.
    void record(std::string_view key, time_point now);

    // Forgets the key's attempts (e.g. after a successful login).
    void reset(std::string_view key);

    // Drops keys whose attempts have all left the window; bounds memory under key churn.
    void sweep(time_point now);

    const rate_limit& limit() const noexcept { return limit_; }

private:
    struct shard {
        mutable std::mutex mutex;
        std::unordered_map<std::string, std::deque<time_point>> attempts;
    };
    shard& shard_for(std::string_view key) const noexcept;

    rate_limit limit_;
    std::vector<std::unique_ptr<shard>> shards_;
};

} // namespace portal_auth
