// What the server does, counted, and rendered in the Prometheus text exposition format
// (version 0.0.4). One object per process, shared by the listener, the request handler and the
// service, each of which takes an optional pointer to it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace portal_auth {

// Thread-safe: counters are relaxed atomics; per-route request counts take one short lock.
class metrics {
public:
    enum class login_result { succeeded, failed, throttled, shed };
    enum class impersonation_result { issued, denied, exchanged, failed };
    enum class rejection { max_connections, per_address, proxy_header };
    enum class handshake_result { full, resumed, failed };

    // version and commit label portal_auth_build_info.
    metrics(std::string version, std::string commit);
    ~metrics();
    metrics(const metrics&) = delete;
    metrics& operator=(const metrics&) = delete;

    // One request answered: its route template ("unmatched" when none), status and duration.
    void request(std::string_view route, unsigned status, std::chrono::nanoseconds duration);
    void login(login_result result) noexcept;
    void impersonation(impersonation_result result) noexcept;
    void connection_accepted() noexcept;
    void connection_rejected(rejection why) noexcept;
    void handshake(handshake_result result) noexcept;
    void audit_line(bool written) noexcept;
    void store_error() noexcept;

    // A value read at each scrape (open connections, live sessions, the hash queue, ...).
    // Register before serving.
    void add_gauge(std::string name, std::string help, std::function<double()> read);

    // The exposition text.
    std::string render() const;

private:
    struct route_series;
    std::string version_;
    std::string commit_;
    std::atomic<std::uint64_t> logins_[4]{};
    std::atomic<std::uint64_t> impersonations_[4]{};
    std::atomic<std::uint64_t> accepted_{0};
    std::atomic<std::uint64_t> rejected_[3]{};
    std::atomic<std::uint64_t> handshakes_[3]{};
    std::atomic<std::uint64_t> audit_lines_[2]{}; // written, failed
    std::atomic<std::uint64_t> store_errors_{0};
    mutable std::mutex routes_mutex_;
    std::map<std::string, std::unique_ptr<route_series>, std::less<>> routes_;
    struct gauge {
        std::string name;
        std::string help;
        std::function<double()> read;
    };
    std::vector<gauge> gauges_;
};

} // namespace portal_auth
