// Throttled attempts, turned into two audit lines per key and window instead of one per
// attempt: the first refusal, and a summary with the count when the window ends.
#pragma once

#include <portal_auth/audit_log.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace portal_auth::detail {

// Thread-safe. A window opens at the first refusal of an (event, limit, key) and lasts the
// limit's window; every refusal in it is counted. Its memory is bounded by the keys that were
// refused, and each of those first had to reach its limit with failures.
class refusal_journal {
public:
    using time_point = std::chrono::system_clock::time_point;

    // Counts a refusal of `key` (the limit's counter key). True when it opens a window: the
    // caller writes `first` as the window's first line.
    bool note(std::string_view key, const audit_event& first, std::chrono::seconds window,
              time_point now);

    // The summaries of the windows that have ended by `now`, oldest first: each window's first
    // event with `count` set to the refusals in it. The windows are forgotten.
    std::vector<audit_event> take_ended(time_point now);

    std::size_t open_windows() const;

private:
    struct open_window {
        audit_event first;
        time_point ends;
        std::int64_t count = 0;
    };
    mutable std::mutex mutex_;
    std::unordered_map<std::string, open_window> windows_; // by event, limit and key
    std::multimap<time_point, std::string> by_end_;
};

} // namespace portal_auth::detail
