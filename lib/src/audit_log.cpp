#include <portal_auth/audit_log.hpp>

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace portal_auth {
namespace {

namespace json = boost::json;

struct civil_time {
    int year = 1970;
    unsigned month = 1;
    unsigned day = 1;
    long hours = 0;
    long minutes = 0;
    long seconds = 0;
    long millis = 0;
};

// std::chrono calendar types: thread-safe, no gmtime state, and correct before 1970 too.
civil_time to_civil(std::chrono::system_clock::time_point t) {
    using namespace std::chrono;
    const auto day_start = floor<days>(t);
    const year_month_day ymd{day_start};
    const hh_mm_ss<milliseconds> hms{floor<milliseconds>(t - day_start)};
    civil_time c;
    c.year = static_cast<int>(ymd.year());
    c.month = static_cast<unsigned>(ymd.month());
    c.day = static_cast<unsigned>(ymd.day());
    c.hours = static_cast<long>(hms.hours().count());
    c.minutes = static_cast<long>(hms.minutes().count());
    c.seconds = static_cast<long>(hms.seconds().count());
    c.millis = static_cast<long>(hms.subseconds().count());
    return c;
}

// Lines must stay parseable JSON, and Boost.JSON copies string bytes verbatim, so malformed
// UTF-8 is replaced by U+FFFD before serialising.
std::string valid_utf8(std::string_view in) {
    std::string out;
    out.reserve(in.size());
    const auto* p = reinterpret_cast<const unsigned char*>(in.data());
    const std::size_t n = in.size();
    std::size_t i = 0;
    while (i < n) {
        const unsigned char c = p[i];
        std::size_t len = 0;
        unsigned char lo = 0x80;
        unsigned char hi = 0xBF;
        if (c < 0x80) {
            len = 1;
        } else if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            if (c == 0xE0)
                lo = 0xA0; // overlong
            else if (c == 0xED)
                hi = 0x9F; // surrogates
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            if (c == 0xF0)
                lo = 0x90; // overlong
            else if (c == 0xF4)
                hi = 0x8F; // beyond U+10FFFF
        }
        bool ok = len != 0 && i + len <= n;
        for (std::size_t k = 1; ok && k < len; ++k) {
            const unsigned char min = k == 1 ? lo : 0x80;
            const unsigned char max = k == 1 ? hi : 0xBF;
            ok = p[i + k] >= min && p[i + k] <= max;
        }
        if (ok) {
            out.append(in.substr(i, len));
            i += len;
        } else {
            out += "\xEF\xBF\xBD";
            ++i;
        }
    }
    return out;
}

boost::system::error_code last_error() {
    return {errno, boost::system::system_category()};
}

// Writes everything, retrying on EINTR and short writes.
boost::system::error_code write_all(int fd, std::string_view data) {
    while (!data.empty()) {
        const ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return last_error();
        }
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return {};
}

// A crash mid-write can leave a partial last line; a newline keeps the next record separate.
boost::system::error_code terminate_torn_line(const std::string& path, int append_fd) {
    struct stat st {};
    if (::fstat(append_fd, &st) != 0)
        return last_error();
    if (st.st_size == 0)
        return {};
    // The append descriptor is write-only, so the last byte is read through another one.
    const int read_fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (read_fd < 0)
        return last_error();
    char last = '\n';
    ssize_t n;
    do {
        n = ::pread(read_fd, &last, 1, st.st_size - 1);
    } while (n < 0 && errno == EINTR);
    const boost::system::error_code read_error = n < 0 ? last_error() : boost::system::error_code{};
    ::close(read_fd);
    if (read_error)
        return read_error;
    if (n == 1 && last != '\n')
        return write_all(append_fd, "\n");
    return {};
}

} // namespace

std::string format_rfc3339_ms(std::chrono::system_clock::time_point t) {
    const civil_time c = to_civil(t);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02ld:%02ld:%02ld.%03ldZ", c.year, c.month,
                  c.day, c.hours, c.minutes, c.seconds, c.millis);
    return buf;
}

std::string format_rfc3339(std::chrono::system_clock::time_point t) {
    const civil_time c = to_civil(t);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02ld:%02ld:%02ldZ", c.year, c.month, c.day,
                  c.hours, c.minutes, c.seconds);
    return buf;
}

std::string format_audit_line(const audit_event& event, std::chrono::system_clock::time_point t) {
    // json::object keeps insertion order, which fixes the key order of the line.
    json::object obj;
    obj["time"] = format_rfc3339_ms(t);
    obj["event"] = valid_utf8(event.event);
    if (event.customer_id)
        obj["customerId"] = *event.customer_id;
    if (event.profile_id)
        obj["profileId"] = *event.profile_id;
    if (event.target_customer_id)
        obj["targetCustomerId"] = *event.target_customer_id;
    if (event.target_profile_id)
        obj["targetProfileId"] = *event.target_profile_id;
    if (event.jti)
        obj["jti"] = valid_utf8(*event.jti);
    if (event.impersonation_id)
        obj["impersonationId"] = valid_utf8(*event.impersonation_id);
    if (event.impersonation_reason)
        obj["impersonationReason"] = valid_utf8(*event.impersonation_reason);
    if (event.end_reason)
        obj["endReason"] = valid_utf8(*event.end_reason);
    if (event.reason)
        obj["reason"] = valid_utf8(*event.reason);
    if (event.limit)
        obj["limit"] = valid_utf8(*event.limit);
    if (event.count)
        obj["count"] = *event.count;
    obj["remote"] = valid_utf8(event.remote);
    if (event.peer)
        obj["peer"] = valid_utf8(*event.peer);
    if (event.request_id)
        obj["requestId"] = valid_utf8(*event.request_id);
    return json::serialize(obj);
}

bool is_impersonation_event(std::string_view event_name) noexcept {
    return event_name.starts_with("impersonation.");
}

audit_log::audit_log(std::size_t ring_capacity)
    : capacity_(ring_capacity),
      log_([](std::string_view line) { std::clog << "portal-auth: " << line << std::endl; }) {}

void audit_log::set_logger(std::function<void(std::string_view)> log) {
    std::lock_guard lock(mutex_);
    log_ = std::move(log);
}

bool audit_log::healthy() const {
    std::lock_guard lock(mutex_);
    return !failing_ || std::chrono::system_clock::now() - last_failure_ > std::chrono::seconds(10);
}

std::uint64_t audit_log::failed_writes() const {
    std::lock_guard lock(mutex_);
    return failed_writes_;
}

audit_log::file::~file() {
    ::close(fd);
}

audit_log::~audit_log() = default;

boost::system::error_code audit_log::open_file(const std::string& path) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0)
        return last_error();
    if (auto ec = terminate_torn_line(path, fd)) {
        ::close(fd);
        return ec;
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        const auto ec = last_error();
        ::close(fd);
        return ec;
    }
    auto opened = std::make_shared<const file>(fd);
    std::shared_ptr<const file> previous;
    audit_sync policy;
    {
        std::lock_guard lock(mutex_);
        previous = std::exchange(file_, std::move(opened));
        path_ = path;
        whole_size_ = st.st_size;
        policy = policy_;
    }
    // Lines written to the previous file since its last sync reach the disk before it closes
    // (when the last sync() still using it lets go of it).
    if (previous && policy != audit_sync::never)
        (void)::fdatasync(previous->fd);
    return {};
}

boost::system::error_code audit_log::reopen() {
    std::string path;
    {
        std::lock_guard lock(mutex_);
        path = path_;
    }
    if (path.empty())
        return {};
    return open_file(path);
}

std::string audit_log::note_failure(const boost::system::error_code& ec,
                                    std::chrono::system_clock::time_point now) {
    ++failed_writes_;
    ++episode_failures_;
    last_failure_ = std::chrono::system_clock::now();
    const std::string cause = ec.message() + " (errno " + std::to_string(ec.value()) + ")";
    if (!failing_) {
        failing_ = true;
        episode_failures_ = 1;
        last_report_ = now;
        return "audit log " + path_ + ": write failed: " + cause +
               "; sign-ins and impersonations are refused until it can be written again";
    }
    if (now - last_report_ < std::chrono::minutes(1))
        return {};
    last_report_ = now;
    return "audit log " + path_ + ": still failing: " + cause + ", " +
           std::to_string(episode_failures_) + " failed writes so far";
}

boost::system::error_code audit_log::write(const audit_event& event,
                                           std::chrono::system_clock::time_point now) {
    std::string line = format_audit_line(event, now);
    line += '\n';
    std::string report;
    boost::system::error_code ec;
    {
        std::lock_guard lock(mutex_);
        // One write of the whole line under the lock keeps lines whole and in ring order.
        if (file_) {
            ec = write_all(file_->fd, line);
            if (ec) {
                // A short write leaves half a line: cut back to the last whole one, so the file
                // stays JSON Lines and the next line starts clean. Should that fail too, the
                // next write fails as well rather than glue a line onto the fragment.
                if (::ftruncate(file_->fd, whole_size_) != 0)
                    ec = last_error();
                report = note_failure(ec, now);
            } else {
                whole_size_ += static_cast<off_t>(line.size());
                unsynced_ = true;
                if (policy_ == audit_sync::always && ::fdatasync(file_->fd) == 0)
                    unsynced_ = false;
                if (failing_) {
                    failing_ = false;
                    report = "audit log " + path_ + ": writing again after " +
                             std::to_string(episode_failures_) + " failed writes";
                }
            }
        }
        // The rings hold only what the file holds.
        if (!ec && capacity_ > 0) {
            line.pop_back();
            auto& ring = is_impersonation_event(event.event) ? impersonation_ring_ : ring_;
            ring.push_back(ring_entry{next_sequence_++, std::move(line)});
            while (ring.size() > capacity_)
                ring.pop_front();
        }
    }
    if (!report.empty())
        log_(report);
    return ec;
}

void audit_log::set_sync_policy(audit_sync policy) {
    std::lock_guard lock(mutex_);
    policy_ = policy;
}

boost::system::error_code audit_log::sync() {
    std::shared_ptr<const file> current; // keeps the descriptor open across a reopen()
    {
        std::lock_guard lock(mutex_);
        if (!file_ || !unsynced_ || policy_ == audit_sync::never)
            return {};
        unsynced_ = false;
        current = file_;
    }
    // Outside the lock: write() keeps writing while the disk catches up.
    if (::fdatasync(current->fd) != 0)
        return last_error();
    return {};
}

json::array audit_log::recent(std::size_t limit, audit_category category) const {
    std::vector<std::string> lines;
    {
        std::lock_guard lock(mutex_);
        // Newest first: walk both rings from their ends, taking the higher sequence number.
        auto other = impersonation_ring_.rbegin();
        const auto other_end = impersonation_ring_.rend();
        auto rest = ring_.rbegin();
        auto rest_end = ring_.rend();
        if (category == audit_category::impersonation)
            rest = rest_end;
        lines.reserve(std::min(limit, ring_.size() + impersonation_ring_.size()));
        while (lines.size() < limit && (other != other_end || rest != rest_end)) {
            const bool take_other =
                rest == rest_end || (other != other_end && other->sequence > rest->sequence);
            lines.push_back(take_other ? (other++)->line : (rest++)->line);
        }
    }
    // Parsed outside the lock so readers do not hold up write().
    json::array out;
    out.reserve(lines.size());
    for (const std::string& line : lines) {
        boost::system::error_code ec;
        json::value v = json::parse(line, ec);
        if (!ec && v.is_object())
            out.push_back(std::move(v));
    }
    return out;
}

boost::asio::awaitable<boost::system::error_code>
audit_log::record(audit_event event, std::chrono::system_clock::time_point now) {
    co_return write(event, now);
}

boost::asio::awaitable<json::array> audit_log::list_recent(std::size_t limit,
                                                           audit_category category) {
    co_return recent(limit, category);
}

} // namespace portal_auth
