// Counting refusals per window.
#include "refusal_journal.hpp"

namespace portal_auth::detail {

bool refusal_journal::note(std::string_view key, const audit_event& first,
                           std::chrono::seconds window, time_point now) {
    std::string id = first.event;
    id.append(1, '\0').append(first.limit.value_or("")).append(1, '\0').append(key);
    std::lock_guard lock(mutex_);
    auto [it, opened] = windows_.try_emplace(id);
    ++it->second.count;
    if (!opened)
        return false;
    it->second.first = first;
    it->second.ends = now + window;
    by_end_.emplace(it->second.ends, std::move(id));
    return true;
}

std::vector<audit_event> refusal_journal::take_ended(time_point now) {
    std::vector<audit_event> summaries;
    std::lock_guard lock(mutex_);
    while (!by_end_.empty() && by_end_.begin()->first <= now) {
        auto node = by_end_.extract(by_end_.begin());
        auto it = windows_.find(node.mapped());
        if (it == windows_.end())
            continue;
        audit_event summary = std::move(it->second.first);
        summary.count = it->second.count;
        summaries.push_back(std::move(summary));
        windows_.erase(it);
    }
    return summaries;
}

std::size_t refusal_journal::open_windows() const {
    std::lock_guard lock(mutex_);
    return windows_.size();
}

} // namespace portal_auth::detail
