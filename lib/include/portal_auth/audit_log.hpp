// The audit trail: one JSON object per event, appended to a JSON Lines file (when configured)
// and kept in a bounded in-memory ring for /api/sys/audit. Never given secrets.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/json/array.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include <sys/types.h>

namespace portal_auth {

struct audit_event {
    std::string event; // e.g. "login.succeeded", "impersonation.issued"
    std::optional<std::int64_t> customer_id;
    std::optional<std::int64_t> profile_id;
    std::optional<std::int64_t> target_profile_id;
    std::optional<std::int64_t> target_customer_id;
    std::optional<std::string> jti;
    // The impersonation an event belongs to (its token's jti) and why it was started.
    std::optional<std::string> impersonation_id;
    std::optional<std::string> impersonation_reason;
    std::optional<std::string> end_reason; // impersonation.ended: how it ended
    std::optional<std::string> reason;     // short machine-readable cause for denials and failures
    std::optional<std::int64_t> count; // events a summary line stands for (login.shed, *.throttled)
    std::optional<std::string> limit;  // the throttle that refused (*.throttled)
    std::string remote;                // the client: "ip:port" or "[v6]:port"
    // The TCP peer when it is not the client (a trusted proxy that forwarded the request).
    std::optional<std::string> peer;
    std::optional<std::string> request_id; // the request that caused the event
};

// Which events a listing draws from. Impersonation events (issued, denied, exchanged,
// exchange_failed, ended, ...) have a ring of their own, so that a flood of other events
// cannot push them out.
enum class audit_category {
    all,           // both rings merged, newest first
    impersonation, // events whose name starts with "impersonation."
};

// Whether the event belongs to the impersonation category.
bool is_impersonation_event(std::string_view event_name) noexcept;

// {"time":"2026-11-25T17:21:43.123Z","event":...,<fields that are set>,"remote":...}
std::string format_audit_line(const audit_event& event, std::chrono::system_clock::time_point t);

// RFC 3339 UTC with milliseconds: 2026-11-25T17:21:43.123Z
std::string format_rfc3339_ms(std::chrono::system_clock::time_point t);
// RFC 3339 UTC, whole seconds: 2026-11-25T17:21:43Z
std::string format_rfc3339(std::chrono::system_clock::time_point t);

// When the audit file is forced to stable storage. Every line reaches the OS (write(2)) before
// record() returns whatever the policy; this is about power loss, not process crashes.
enum class audit_sync {
    always, // fdatasync after every line, before record() returns
    batch,  // fdatasync by sync(), which the owner calls periodically (portal-auth: every 100 ms)
    never,  // left to the OS
};

// Where audit events go. Implementations are thread-safe. record() completes once the event
// is as durable as the sink promises (for audit_log: handed to the OS with one write(2)); its
// error must be checked: a credential whose event was not recorded is not handed out.
class audit_sink {
public:
    virtual ~audit_sink() = default;

    [[nodiscard]] virtual boost::asio::awaitable<boost::system::error_code>
    record(audit_event event, std::chrono::system_clock::time_point now) = 0;

    // Newest first, at most `limit` events of the category, as parsed JSON objects.
    [[nodiscard]] virtual boost::asio::awaitable<boost::json::array>
    list_recent(std::size_t limit, audit_category category) = 0;

    // False while recording fails (readiness probes); true when nothing is known to be wrong.
    virtual bool healthy() const { return true; }
};

// The default sink: a JSON Lines file (optional) and two bounded in-memory rings (impersonation
// events, everything else). The write runs inline on the caller's thread: one write(2) to the
// page cache; fdatasync is batched on the owner's thread unless the policy is `always`.
//
// A write that fails (disk full, file size limit, I/O error) is an error for the caller and
// leaves no trace: a short write is cut back to the end of the last whole line (ftruncate),
// so the file stays JSON Lines, and the event is not put in a ring. The first failure of an
// episode is logged with its errno, then at most once a minute, and a line says when writing
// works again.
class audit_log final : public audit_sink {
public:
    // Each ring holds `ring_capacity` events.
    explicit audit_log(std::size_t ring_capacity = 10000);
    ~audit_log() override;
    audit_log(const audit_log&) = delete;
    audit_log& operator=(const audit_log&) = delete;

    // Opens (creates, O_APPEND) the JSON Lines file. If the file ends with a partial line (a
    // crash mid-write), a newline is appended first so the next line starts clean.
    boost::system::error_code open_file(const std::string& path);

    // Formats the line, writes it to the file with one write(2) (so it has reached the OS when
    // this returns) and stores it in its ring. Thread-safe. Returns the write error, if any;
    // then the file is as before and the rings do not hold the event.
    [[nodiscard]] boost::system::error_code write(const audit_event& event,
                                                  std::chrono::system_clock::time_point now);

    // audit_sink: write() and recent(), completing inline.
    boost::asio::awaitable<boost::system::error_code>
    record(audit_event event, std::chrono::system_clock::time_point now) override;
    boost::asio::awaitable<boost::json::array> list_recent(std::size_t limit,
                                                           audit_category category) override;

    // Where failure episodes are reported (never event contents). Default: stderr. Set before
    // the first write.
    void set_logger(std::function<void(std::string_view)> log);

    // Writes that failed since construction.
    std::uint64_t failed_writes() const;

    // False for 10 s after a failed write, unless a write has worked since: long enough for a
    // load balancer to take the instance out, short enough that traffic comes back to try the
    // disk again (nothing else would write).
    bool healthy() const override;

    // Opens the file's path again (logrotate's convention: after a rename, SIGUSR1 makes the
    // next line go to a new file at the old name). Lines never straddle the two files. Without
    // a file, nothing happens.
    boost::system::error_code reopen();

    void set_sync_policy(audit_sync policy);

    // fdatasync if lines were written since the last sync. Thread-safe.
    boost::system::error_code sync();

    // Newest first, at most `limit` events of the category, as parsed JSON objects.
    boost::json::array recent(std::size_t limit,
                              audit_category category = audit_category::all) const;

private:
    struct ring_entry {
        std::uint64_t sequence; // orders the two rings' events when merged
        std::string line;
    };
    // Called with the lock held; returns what to log, if anything.
    std::string note_failure(const boost::system::error_code& ec,
                             std::chrono::system_clock::time_point now);

    mutable std::mutex mutex_;
    std::deque<ring_entry> ring_;               // everything but impersonation events
    std::deque<ring_entry> impersonation_ring_; // impersonation events
    std::uint64_t next_sequence_ = 0;
    std::size_t capacity_;
    struct file {
        explicit file(int descriptor) : fd(descriptor) {}
        ~file();
        file(const file&) = delete;
        file& operator=(const file&) = delete;
        int fd;
    };
    std::shared_ptr<const file> file_; // shared with a sync() in progress
    std::string path_;
    off_t whole_size_ = 0; // where the file's last whole line ends
    audit_sync policy_ = audit_sync::batch;
    bool unsynced_ = false;
    std::function<void(std::string_view)> log_;
    // The current failure episode.
    bool failing_ = false;
    std::uint64_t episode_failures_ = 0;
    std::chrono::system_clock::time_point last_report_;
    std::chrono::system_clock::time_point last_failure_;
    std::uint64_t failed_writes_ = 0;
};

} // namespace portal_auth
