// Impersonation records: transitions under one lock, ended records bounded.
#include "impersonation_ledger.hpp"

#include <algorithm>

namespace portal_auth::detail {

impersonation_ledger::impersonation_ledger(std::size_t ended_per_customer, std::size_t ended_total)
    : ended_per_customer_(ended_per_customer), ended_total_(ended_total) {}

void impersonation_ledger::add(impersonation_record record) {
    std::lock_guard lock(mutex_);
    std::string id = record.id;
    auto [it, inserted] = records_.try_emplace(std::move(id));
    if (!inserted)
        return; // a repeated id (never, with random ones) keeps the first record
    it->second.record = std::move(record);
    it->second.sequence = next_sequence_++;
}

bool impersonation_ledger::start(std::string_view id, session_id session,
                                 clock_type::time_point started_at,
                                 clock_type::time_point session_expires_at) {
    std::lock_guard lock(mutex_);
    auto it = records_.find(std::string(id));
    if (it == records_.end() || it->second.record.state() != impersonation_state::issued)
        return false;
    impersonation_record& r = it->second.record;
    r.session = session;
    r.started_at = started_at;
    r.session_expires_at = session_expires_at;
    r.actor.started_at = started_at;
    return true;
}

void impersonation_ledger::erase_ended_locked(map_type::iterator it) {
    ended_.erase(*it->second.in_ended);
    auto& of_customer = ended_by_customer_[it->second.record.target_customer];
    if (!of_customer.empty() && of_customer.front() == it->first)
        of_customer.pop_front();
    if (of_customer.empty())
        ended_by_customer_.erase(it->second.record.target_customer);
    records_.erase(it);
}

impersonation_record impersonation_ledger::end_locked(map_type::iterator it, std::string end_reason,
                                                      clock_type::time_point now) {
    impersonation_record& r = it->second.record;
    r.ended_at = now;
    r.end_reason = std::move(end_reason);
    impersonation_record ended = r;
    it->second.in_ended = ended_.insert(ended_.end(), it->first);
    auto& of_customer = ended_by_customer_[r.target_customer];
    of_customer.push_back(it->first);
    // Oldest ended first: this customer's beyond its bound, then anyone's beyond the total.
    if (of_customer.size() > ended_per_customer_)
        erase_ended_locked(records_.find(of_customer.front()));
    while (ended_.size() > ended_total_)
        erase_ended_locked(records_.find(ended_.front()));
    return ended;
}

std::optional<impersonation_record>
impersonation_ledger::end(std::string_view id, std::string end_reason, clock_type::time_point now) {
    std::lock_guard lock(mutex_);
    auto it = records_.find(std::string(id));
    if (it == records_.end() || it->second.record.ended_at)
        return std::nullopt;
    return end_locked(it, std::move(end_reason), now);
}

std::vector<impersonation_record> impersonation_ledger::end_where(
    const std::function<std::optional<std::string>(const impersonation_record&)>& why,
    clock_type::time_point now) {
    std::lock_guard lock(mutex_);
    std::vector<std::string> ending;
    std::vector<std::string> reasons;
    for (const auto& [id, e] : records_) {
        if (e.record.ended_at)
            continue;
        if (auto reason = why(e.record)) {
            ending.push_back(id);
            reasons.push_back(std::move(*reason));
        }
    }
    std::vector<impersonation_record> ended;
    ended.reserve(ending.size());
    for (std::size_t i = 0; i < ending.size(); ++i) {
        auto it = records_.find(ending[i]);
        if (it != records_.end()) // an earlier end in this loop may have pruned it
            ended.push_back(end_locked(it, std::move(reasons[i]), now));
    }
    return ended;
}

std::optional<impersonation_record> impersonation_ledger::find(std::string_view id) const {
    std::lock_guard lock(mutex_);
    auto it = records_.find(std::string(id));
    if (it == records_.end())
        return std::nullopt;
    return it->second.record;
}

std::vector<impersonation_record>
impersonation_ledger::list(const impersonation_query& query) const {
    std::vector<const entry*> matching;
    std::lock_guard lock(mutex_);
    for (const auto& [id, e] : records_) {
        const impersonation_record& r = e.record;
        if (query.target_customer && r.target_customer != *query.target_customer)
            continue;
        if (query.state && r.state() != *query.state)
            continue;
        if (!query.include_operator_actors && r.actor.is_operator)
            continue;
        matching.push_back(&e);
    }
    std::sort(matching.begin(), matching.end(), [](const entry* a, const entry* b) {
        if (a->record.issued_at != b->record.issued_at)
            return a->record.issued_at > b->record.issued_at;
        return a->sequence > b->sequence;
    });
    std::vector<impersonation_record> out;
    std::size_t ended = 0;
    for (const entry* e : matching) {
        if (out.size() >= query.limit)
            break;
        if (e->record.ended_at && ended++ >= query.ended_limit)
            continue;
        out.push_back(e->record);
    }
    return out;
}

std::size_t impersonation_ledger::size() const {
    std::lock_guard lock(mutex_);
    return records_.size();
}

} // namespace portal_auth::detail
