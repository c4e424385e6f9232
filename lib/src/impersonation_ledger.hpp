// The in-memory impersonation records behind memory_store: one per token issued, from issue to
// end, with the ended ones kept within a bound.
#pragma once

#include <portal_auth/store.hpp>

#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace portal_auth::detail {

// Thread-safe (one lock: records change a few times in their life, and listings are rare).
// Records that have not ended stay until they end; ended ones are dropped oldest first beyond
// `ended_per_customer` per target customer and `ended_total` in all.
class impersonation_ledger {
public:
    explicit impersonation_ledger(std::size_t ended_per_customer = 50,
                                  std::size_t ended_total = 10000);

    void add(impersonation_record record);

    // issued -> active. False when the record is unknown or not issued.
    bool start(std::string_view id, session_id session, clock_type::time_point started_at,
               clock_type::time_point session_expires_at);

    // Ends the record unless it has ended; returns it as ended (its session and state before
    // the end are in `session` and `started_at`).
    std::optional<impersonation_record> end(std::string_view id, std::string end_reason,
                                            clock_type::time_point now);

    // Ends every record that has not ended and for which `why` gives a reason.
    std::vector<impersonation_record>
    end_where(const std::function<std::optional<std::string>(const impersonation_record&)>& why,
              clock_type::time_point now);

    std::optional<impersonation_record> find(std::string_view id) const;

    // Newest issued first.
    std::vector<impersonation_record> list(const impersonation_query& query) const;

    std::size_t size() const;

private:
    struct entry {
        impersonation_record record;
        std::uint64_t sequence = 0; // issue order, for ties in time
        std::optional<std::list<std::string>::iterator> in_ended;
    };
    using map_type = std::unordered_map<std::string, entry>;
    // With the lock held.
    impersonation_record end_locked(map_type::iterator it, std::string end_reason,
                                    clock_type::time_point now);
    void erase_ended_locked(map_type::iterator it);

    std::size_t ended_per_customer_;
    std::size_t ended_total_;
    mutable std::mutex mutex_;
    map_type records_;
    std::uint64_t next_sequence_ = 0;
    std::list<std::string> ended_; // oldest end first
    std::unordered_map<customer_id, std::deque<std::string>> ended_by_customer_;
};

} // namespace portal_auth::detail
