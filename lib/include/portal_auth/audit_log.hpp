// The audit trail: one JSON object per event, appended to a JSON Lines file (when configured)
// and kept in a bounded in-memory ring for /api/sys/audit. Never given secrets.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/json/array.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace portal_auth {

struct audit_event {
    std::string event; // e.g. "login.succeeded", "impersonation.issued"
    std::optional<std::int64_t> customer_id;
    std::optional<std::int64_t> profile_id;
    std::optional<std::int64_t> target_profile_id;
    std::optional<std::int64_t> target_customer_id;
    std::optional<std::string> jti;
    std::optional<std::string> reason; // short machine-readable cause for denials and failures
    std::optional<std::int64_t> count; // events a summary line stands for (login.shed)
    std::string remote;                // "ip:port" or "[v6]:port"
};

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

    // Newest first, at most `limit` events, as parsed JSON objects.
    [[nodiscard]] virtual boost::asio::awaitable<boost::json::array>
    list_recent(std::size_t limit) = 0;
};

// The default sink: a JSON Lines file (optional) and a bounded in-memory ring. The write runs
// inline on the caller's thread: one write(2) to the page cache; fdatasync is batched on the
// owner's thread unless the policy is `always`.
class audit_log final : public audit_sink {
public:
    explicit audit_log(std::size_t ring_capacity = 10000);
    ~audit_log() override;
    audit_log(const audit_log&) = delete;
    audit_log& operator=(const audit_log&) = delete;

    // Opens (creates, O_APPEND) the JSON Lines file. If the file ends with a partial line (a
    // crash mid-write), a newline is appended first so the next line starts clean.
    boost::system::error_code open_file(const std::string& path);

    // Formats the line, writes it to the file with one write(2) (so it has reached the OS when
    // this returns) and stores it in the ring. Thread-safe. Returns the write error, if any; the
    // event is kept in the ring either way.
    [[nodiscard]] boost::system::error_code write(const audit_event& event,
                                                  std::chrono::system_clock::time_point now);

    // audit_sink: write() and recent(), completing inline.
    boost::asio::awaitable<boost::system::error_code>
    record(audit_event event, std::chrono::system_clock::time_point now) override;
    boost::asio::awaitable<boost::json::array> list_recent(std::size_t limit) override;

    // Opens the file's path again (logrotate's convention: after a rename, SIGUSR1 makes the
    // next line go to a new file at the old name). Lines never straddle the two files. Without
    // a file, nothing happens.
    boost::system::error_code reopen();

    void set_sync_policy(audit_sync policy);

    // fdatasync if lines were written since the last sync. Thread-safe.
    boost::system::error_code sync();

    // Newest first, at most `limit` events, as parsed JSON objects.
    boost::json::array recent(std::size_t limit) const;

private:
    mutable std::mutex mutex_;
    std::deque<std::string> ring_;
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
    audit_sync policy_ = audit_sync::batch;
    bool unsynced_ = false;
};

} // namespace portal_auth
