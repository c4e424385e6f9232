// X-Forwarded-For walked from the right past trusted proxies.
#include "forwarded_for.hpp"

#include <boost/system/error_code.hpp>

#include <cstddef>
#include <optional>
#include <string>

namespace portal_auth::detail {
namespace {

namespace ip = boost::asio::ip;

// "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255"
constexpr std::size_t max_address_text = 45;

bool is_space(char c) {
    return c == ' ' || c == '\t';
}

std::string_view trim(std::string_view text) {
    while (!text.empty() && is_space(text.front()))
        text.remove_prefix(1);
    while (!text.empty() && is_space(text.back()))
        text.remove_suffix(1);
    return text;
}

bool is_port(std::string_view text) {
    if (text.empty() || text.size() > 5)
        return false;
    unsigned value = 0;
    for (char c : text) {
        if (c < '0' || c > '9')
            return false;
        value = value * 10 + static_cast<unsigned>(c - '0');
    }
    return value <= 65535;
}

// Only hex digits, dots and colons reach Asio: no zone ("%eth0", which would make it look up an
// interface), whitespace or NUL (which would end the C string it hands to inet_pton).
std::optional<ip::address> parse_address(std::string_view text) {
    if (text.empty() || text.size() > max_address_text)
        return std::nullopt;
    for (char c : text) {
        const bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
        if (!hex && c != '.' && c != ':')
            return std::nullopt;
    }
    boost::system::error_code ec;
    const ip::address a = ip::make_address(std::string(text), ec);
    if (ec)
        return std::nullopt;
    return a;
}

// One trimmed, non-empty entry: an address, "[v6]", "[v6]:port" or "v4:port".
std::optional<ip::address> parse_entry(std::string_view entry) {
    if (entry.front() == '[') {
        const std::size_t close = entry.find(']');
        if (close == std::string_view::npos)
            return std::nullopt;
        const std::string_view rest = entry.substr(close + 1);
        if (!rest.empty() && (rest.front() != ':' || !is_port(rest.substr(1))))
            return std::nullopt;
        auto a = parse_address(entry.substr(1, close - 1));
        if (!a || !a->is_v6())
            return std::nullopt;
        return a;
    }
    // A single colon can only separate an IPv4 address from its port: IPv6 has at least two.
    const std::size_t colon = entry.find(':');
    if (colon != std::string_view::npos && entry.find(':', colon + 1) == std::string_view::npos) {
        if (!is_port(entry.substr(colon + 1)))
            return std::nullopt;
        auto a = parse_address(entry.substr(0, colon));
        if (!a || !a->is_v4())
            return std::nullopt;
        return a;
    }
    return parse_address(entry);
}

} // namespace

ip::address resolve_client_address(const ip::address& peer, std::string_view x_forwarded_for,
                                   const std::vector<ip_network>& trusted) {
    if (!is_trusted(trusted, peer))
        return peer;

    ip::address last_trusted = peer;
    std::string_view rest = x_forwarded_for;
    while (!rest.empty()) {
        const std::size_t comma = rest.rfind(',');
        const std::size_t start = comma == std::string_view::npos ? 0 : comma + 1;
        const std::string_view entry = trim(rest.substr(start));
        rest = rest.substr(0, comma == std::string_view::npos ? 0 : comma);
        if (entry.empty())
            continue;
        auto a = parse_entry(entry);
        if (!a)
            return last_trusted;
        if (!is_trusted(trusted, *a))
            return *a;
        last_trusted = *a;
    }
    return last_trusted;
}

} // namespace portal_auth::detail
