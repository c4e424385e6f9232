// Sliding-window attempt counters.
#include "rate_limiter.hpp"

#include <algorithm>
#include <functional>

namespace portal_auth {

rate_limiter::rate_limiter(std::size_t shard_count) {
    for (std::size_t i = 0; i < std::max<std::size_t>(shard_count, 1); ++i)
        shards_.push_back(std::make_unique<shard>());
}

rate_limiter::~rate_limiter() = default;

rate_limiter::shard& rate_limiter::shard_for(std::string_view key) const noexcept {
    return *shards_[std::hash<std::string_view>{}(key) % shards_.size()];
}

std::optional<std::chrono::seconds>
rate_limiter::blocked_for(std::string_view key, rate_limit limit, time_point now) const {
    if (limit.max == 0)
        return std::nullopt;
    shard& s = shard_for(key);
    std::lock_guard lock(s.mutex);
    auto it = s.keys.find(std::string(key));
    if (it == s.keys.end())
        return std::nullopt;
    const auto& times = it->second.times;
    auto in_window = std::count_if(times.begin(), times.end(),
                                   [&](time_point t) { return now - t < limit.window; });
    if (static_cast<std::size_t>(in_window) < limit.max)
        return std::nullopt;
    // Blocked until the oldest attempt still counted leaves the window; round up to seconds.
    auto oldest_counted = times[times.size() - limit.max];
    auto wait = oldest_counted + limit.window - now;
    auto seconds = std::chrono::ceil<std::chrono::seconds>(wait);
    return std::max(seconds, std::chrono::seconds(1));
}

void rate_limiter::record(std::string_view key, rate_limit limit, time_point now) {
    if (limit.max == 0)
        return;
    shard& s = shard_for(key);
    std::lock_guard lock(s.mutex);
    auto& entry = s.keys[std::string(key)];
    entry.window = std::max(entry.window, limit.window);
    entry.times.push_back(now);
    // Only the newest `max` attempts can ever decide a block.
    while (entry.times.size() > limit.max)
        entry.times.pop_front();
}

void rate_limiter::reset(std::string_view key) {
    shard& s = shard_for(key);
    std::lock_guard lock(s.mutex);
    s.keys.erase(std::string(key));
}

void rate_limiter::sweep(time_point now) {
    for (auto& s : shards_) {
        std::lock_guard lock(s->mutex);
        std::erase_if(s->keys, [&](const auto& entry) {
            return entry.second.times.empty() ||
                   now - entry.second.times.back() >= entry.second.window;
        });
    }
}

} // namespace portal_auth
