// Log lines as text or JSON.
#include <portal_auth/audit_log.hpp>
#include <portal_auth/logger.hpp>

#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>

#include <iostream>

namespace portal_auth {
namespace {

constexpr std::string_view level_names[] = {"error", "warn", "info", "debug"};

std::string_view name_of(log_level level) {
    return level_names[static_cast<int>(level)];
}

bool looks_numeric(std::string_view v) {
    if (v.empty() || v.size() > 18)
        return false;
    for (char c : v)
        if (c < '0' || c > '9')
            return false;
    return true;
}

// A value in a text line: bare when it has no space, quote or equals sign, quoted otherwise.
void append_text_value(std::string& out, std::string_view v) {
    const bool bare = !v.empty() && v.find_first_of(" \"=\n\t") == std::string_view::npos;
    if (bare) {
        out.append(v);
        return;
    }
    out += boost::json::serialize(boost::json::string(v));
}

} // namespace

std::optional<log_level> parse_log_level(std::string_view text) noexcept {
    for (int i = 0; i < 4; ++i)
        if (text == level_names[i])
            return static_cast<log_level>(i);
    return std::nullopt;
}

std::optional<log_format> parse_log_format(std::string_view text) noexcept {
    if (text == "text")
        return log_format::text;
    if (text == "json")
        return log_format::json;
    return std::nullopt;
}

logger::logger(log_format format, log_level level, std::function<void(std::string_view)> sink)
    : format_(format), level_(level), sink_(std::move(sink)) {
    if (!sink_)
        sink_ = [](std::string_view line) { std::clog << line << std::endl; };
}

void logger::log(log_level level, std::string_view message, std::vector<field> fields) const {
    if (!enabled(level))
        return;
    const std::string time = format_rfc3339_ms(std::chrono::system_clock::now());
    std::string line;
    if (format_ == log_format::json) {
        line.append(R"({"time":")").append(time).append(R"(","level":")").append(name_of(level));
        line.append(R"(","msg":)").append(boost::json::serialize(boost::json::string(message)));
        for (const auto& [key, value] : fields) {
            line.append(",").append(boost::json::serialize(boost::json::string(key))).append(":");
            if (looks_numeric(value))
                line.append(value);
            else
                line.append(boost::json::serialize(boost::json::string(value)));
        }
        line.append("}");
    } else {
        line.append(time).append(" ").append(name_of(level)).append(" ").append(message);
        for (const auto& [key, value] : fields) {
            line.append(" ").append(key).append("=");
            append_text_value(line, value);
        }
    }
    sink_(line);
}

void logger::access(std::string_view method, std::string_view route, unsigned status,
                    std::int64_t duration_us, std::string_view client,
                    std::string_view request_id) const {
    if (!enabled(log_level::info))
        return;
    const std::string status_text = std::to_string(status);
    const std::string duration_text = std::to_string(duration_us);
    log(log_level::info, "request",
        {{"method", method},
         {"route", route},
         {"status", status_text},
         {"duration_us", duration_text},
         {"client", client},
         {"request_id", request_id}});
}

std::function<void(std::string_view)> logger::at(log_level level) const {
    return [this, level](std::string_view message) { log(level, message); };
}

} // namespace portal_auth
