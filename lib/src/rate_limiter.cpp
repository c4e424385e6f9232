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

std::size_t rate_limiter::shard_index(std::string_view key) const noexcept {
    return std::hash<std::string_view>{}(key) % shards_.size();
}

rate_limiter::shard& rate_limiter::shard_for(std::string_view key) const noexcept {
    return *shards_[shard_index(key)];
}

std::optional<std::chrono::seconds> rate_limiter::blocked_locked(const shard& s,
                                                                 std::string_view key,
                                                                 rate_limit limit, time_point now) {
    if (limit.max == 0)
        return std::nullopt;
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

void rate_limiter::record_locked(shard& s, std::string_view key, rate_limit limit, time_point now) {
    if (limit.max == 0)
        return;
    auto& entry = s.keys[std::string(key)];
    entry.window = std::max(entry.window, limit.window);
    entry.times.push_back(now);
    // Only the newest `max` attempts can ever decide a block.
    while (entry.times.size() > limit.max)
        entry.times.pop_front();
}

std::optional<std::chrono::seconds>
rate_limiter::blocked_for(std::string_view key, rate_limit limit, time_point now) const {
    const shard& s = shard_for(key);
    std::lock_guard lock(s.mutex);
    return blocked_locked(s, key, limit, now);
}

void rate_limiter::record(std::string_view key, rate_limit limit, time_point now) {
    shard& s = shard_for(key);
    std::lock_guard lock(s.mutex);
    record_locked(s, key, limit, now);
}

attempt_reservation rate_limiter::reserve(std::span<const counted_key> keys, time_point now) {
    std::vector<std::size_t> order;
    order.reserve(keys.size());
    for (const counted_key& k : keys)
        order.push_back(shard_index(k.key));
    std::sort(order.begin(), order.end());
    order.erase(std::unique(order.begin(), order.end()), order.end());
    std::vector<std::unique_lock<std::mutex>> locks;
    locks.reserve(order.size());
    for (std::size_t index : order)
        locks.emplace_back(shards_[index]->mutex);

    for (std::size_t i = 0; i < keys.size(); ++i) {
        auto wait = blocked_locked(shard_for(keys[i].key), keys[i].key, keys[i].limit, now);
        if (wait)
            return attempt_reservation{.refused_by = i, .retry_after = *wait};
    }
    for (const counted_key& k : keys)
        record_locked(shard_for(k.key), k.key, k.limit, now);
    return attempt_reservation{};
}

void rate_limiter::release(std::span<const counted_key> keys, time_point reserved_at) {
    for (const counted_key& k : keys) {
        shard& s = shard_for(k.key);
        std::lock_guard lock(s.mutex);
        auto it = s.keys.find(std::string(k.key));
        if (it == s.keys.end())
            continue;
        auto& times = it->second.times;
        auto found = std::find(times.rbegin(), times.rend(), reserved_at);
        if (found != times.rend())
            times.erase(std::next(found).base());
    }
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
