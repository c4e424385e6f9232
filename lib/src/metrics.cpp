// Counters and their Prometheus rendering.
#include <portal_auth/metrics.hpp>

#include <array>
#include <cstdio>

namespace portal_auth {
namespace {

// Request duration buckets, in seconds: from a cached session lookup to a queued scrypt.
constexpr std::array<double, 12> duration_buckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                     0.05,   0.1,   0.25,   0.5,   1.0,  2.5};

std::string number(double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.9g", v);
    return buf;
}

// A label value: backslash, double quote and newline escaped.
std::string label(std::string_view v) {
    std::string out;
    for (char c : v) {
        if (c == '\\' || c == '"')
            out += '\\';
        if (c == '\n') {
            out += "\\n";
            continue;
        }
        out += c;
    }
    return out;
}

void family(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
    out.append("# HELP ").append(name).append(" ").append(help).append("\n");
    out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
}

template <std::size_t N>
void labelled(std::string& out, std::string_view name, std::string_view key,
              const std::array<std::string_view, N>& values,
              const std::atomic<std::uint64_t> (&counts)[N]) {
    for (std::size_t i = 0; i < N; ++i)
        out.append(name)
            .append("{")
            .append(key)
            .append("=\"")
            .append(values[i])
            .append("\"} ")
            .append(std::to_string(counts[i].load(std::memory_order_relaxed)))
            .append("\n");
}

} // namespace

// Per route: counts by status and one duration histogram.
struct metrics::route_series {
    std::map<unsigned, std::uint64_t> by_status;
    std::array<std::uint64_t, duration_buckets.size()> buckets{};
    std::uint64_t count = 0;
    double sum = 0;
};

metrics::metrics(std::string version, std::string commit)
    : version_(std::move(version)), commit_(std::move(commit)) {}

metrics::~metrics() = default;

void metrics::request(std::string_view route, unsigned status, std::chrono::nanoseconds duration) {
    const double seconds = std::chrono::duration<double>(duration).count();
    std::lock_guard lock(routes_mutex_);
    auto it = routes_.find(route);
    if (it == routes_.end())
        it = routes_.emplace(std::string(route), std::make_unique<route_series>()).first;
    route_series& r = *it->second;
    ++r.by_status[status];
    ++r.count;
    r.sum += seconds;
    for (std::size_t i = 0; i < duration_buckets.size(); ++i)
        if (seconds <= duration_buckets[i])
            ++r.buckets[i];
}

void metrics::login(login_result result) noexcept {
    logins_[static_cast<int>(result)].fetch_add(1, std::memory_order_relaxed);
}

void metrics::impersonation(impersonation_result result) noexcept {
    impersonations_[static_cast<int>(result)].fetch_add(1, std::memory_order_relaxed);
}

void metrics::connection_accepted() noexcept {
    accepted_.fetch_add(1, std::memory_order_relaxed);
}

void metrics::connection_rejected(rejection why) noexcept {
    rejected_[static_cast<int>(why)].fetch_add(1, std::memory_order_relaxed);
}

void metrics::handshake(handshake_result result) noexcept {
    handshakes_[static_cast<int>(result)].fetch_add(1, std::memory_order_relaxed);
}

void metrics::audit_line(bool written) noexcept {
    audit_lines_[written ? 0 : 1].fetch_add(1, std::memory_order_relaxed);
}

void metrics::store_error() noexcept {
    store_errors_.fetch_add(1, std::memory_order_relaxed);
}

void metrics::add_gauge(std::string name, std::string help, std::function<double()> read) {
    gauges_.push_back(gauge{std::move(name), std::move(help), std::move(read)});
}

std::string metrics::render() const {
    std::string out;
    family(out, "portal_auth_build_info", "gauge", "Version and commit of this build.");
    out.append("portal_auth_build_info{version=\"")
        .append(label(version_))
        .append("\",commit=\"")
        .append(label(commit_))
        .append("\"} 1\n");

    family(out, "portal_auth_requests_total", "counter",
           "HTTP requests answered, by route and status.");
    std::string histogram;
    {
        std::lock_guard lock(routes_mutex_);
        for (const auto& [route, r] : routes_) {
            for (const auto& [status, n] : r->by_status)
                out.append("portal_auth_requests_total{route=\"")
                    .append(label(route))
                    .append("\",status=\"")
                    .append(std::to_string(status))
                    .append("\"} ")
                    .append(std::to_string(n))
                    .append("\n");
            std::uint64_t cumulative = 0;
            for (std::size_t i = 0; i < duration_buckets.size(); ++i) {
                cumulative = r->buckets[i];
                histogram.append("portal_auth_request_duration_seconds_bucket{route=\"")
                    .append(label(route))
                    .append("\",le=\"")
                    .append(number(duration_buckets[i]))
                    .append("\"} ")
                    .append(std::to_string(cumulative))
                    .append("\n");
            }
            const std::string route_label = "{route=\"" + label(route) + "\"";
            histogram.append("portal_auth_request_duration_seconds_bucket")
                .append(route_label)
                .append(",le=\"+Inf\"} ")
                .append(std::to_string(r->count))
                .append("\n");
            histogram.append("portal_auth_request_duration_seconds_sum")
                .append(route_label)
                .append("} ")
                .append(number(r->sum))
                .append("\n");
            histogram.append("portal_auth_request_duration_seconds_count")
                .append(route_label)
                .append("} ")
                .append(std::to_string(r->count))
                .append("\n");
        }
    }
    family(out, "portal_auth_request_duration_seconds", "histogram",
           "Time from a request's arrival at the handler to its response, by route.");
    out += histogram;

    family(out, "portal_auth_logins_total", "counter", "Login attempts, by result.");
    labelled<4>(out, "portal_auth_logins_total", "result",
                {"succeeded", "failed", "throttled", "shed"}, logins_);
    family(out, "portal_auth_impersonation_tokens_total", "counter",
           "Impersonation tokens issued, denied, exchanged, and failed exchanges.");
    labelled<4>(out, "portal_auth_impersonation_tokens_total", "result",
                {"issued", "denied", "exchanged", "failed"}, impersonations_);
    family(out, "portal_auth_connections_accepted_total", "counter", "TCP connections accepted.");
    out.append("portal_auth_connections_accepted_total ")
        .append(std::to_string(accepted_.load(std::memory_order_relaxed)))
        .append("\n");
    family(out, "portal_auth_connections_rejected_total", "counter",
           "Connections closed right after accept, by reason.");
    labelled<3>(out, "portal_auth_connections_rejected_total", "reason",
                {"max_connections", "per_address", "proxy_header"}, rejected_);
    family(out, "portal_auth_tls_handshakes_total", "counter", "TLS handshakes, by result.");
    labelled<3>(out, "portal_auth_tls_handshakes_total", "result", {"full", "resumed", "failed"},
                handshakes_);
    family(out, "portal_auth_audit_lines_total", "counter", "Audit lines, written or failed.");
    labelled<2>(out, "portal_auth_audit_lines_total", "result", {"written", "failed"},
                audit_lines_);
    family(out, "portal_auth_store_errors_total", "counter",
           "Store operations that failed (unreachable, timed out).");
    out.append("portal_auth_store_errors_total ")
        .append(std::to_string(store_errors_.load(std::memory_order_relaxed)))
        .append("\n");
    for (const gauge& g : gauges_) {
        family(out, g.name, "gauge", g.help);
        out.append(g.name).append(" ").append(number(g.read())).append("\n");
    }
    return out;
}

} // namespace portal_auth
