// Operational and access logs: one line per event on a sink (stderr by default), as text or as
// JSON, filtered by level. Never given secrets: callers pass route templates, not paths.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace portal_auth {

enum class log_level { error, warn, info, debug };
enum class log_format { text, json };

// "error", "warn", "info", "debug" / "text", "json"; nothing for anything else.
std::optional<log_level> parse_log_level(std::string_view text) noexcept;
std::optional<log_format> parse_log_format(std::string_view text) noexcept;

// Thread-safe: each line reaches the sink whole, in one call.
class logger {
public:
    // A line's extra fields, in order: name and value (numbers are written as numbers in JSON).
    using field = std::pair<std::string_view, std::string_view>;

    explicit logger(log_format format = log_format::text, log_level level = log_level::info,
                    std::function<void(std::string_view)> sink = {});

    bool enabled(log_level level) const noexcept { return level <= level_; }

    // text: `2026-12-02T10:00:00.123Z warn message key=value ...`
    // json: `{"time":"...","level":"warn","msg":"message","key":"value",...}`
    void log(log_level level, std::string_view message, std::vector<field> fields = {}) const;

    // One access-log line (info): method, route template, status, duration in microseconds,
    // client address, request id.
    void access(std::string_view method, std::string_view route, unsigned status,
                std::int64_t duration_us, std::string_view client,
                std::string_view request_id) const;

    // A sink for components that take a plain message callback (server_config::log,
    // audit_log::set_logger), at `level`.
    std::function<void(std::string_view)> at(log_level level) const;

private:
    log_format format_;
    log_level level_;
    std::function<void(std::string_view)> sink_;
};

} // namespace portal_auth
