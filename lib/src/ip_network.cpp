// CIDR blocks: parsing, membership and formatting.
#include <portal_auth/ip_network.hpp>

#include <boost/asio/ip/address_v4.hpp>
#include <boost/asio/ip/address_v6.hpp>
#include <boost/system/errc.hpp>
#include <boost/system/error_code.hpp>

#include <charconv>
#include <cstddef>
#include <optional>
#include <span>
#include <string>

namespace portal_auth {
namespace {

namespace ip = boost::asio::ip;

// "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255"
constexpr std::size_t max_address_text = 45;

boost::system::error_code invalid() {
    return boost::system::errc::make_error_code(boost::system::errc::invalid_argument);
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

// Whether the first `bits` bits of `a` and `b` agree.
bool same_prefix(std::span<const unsigned char> a, std::span<const unsigned char> b,
                 unsigned bits) noexcept {
    const std::size_t whole = bits / 8;
    for (std::size_t i = 0; i < whole; ++i)
        if (a[i] != b[i])
            return false;
    const unsigned rest = bits % 8;
    if (rest == 0)
        return true;
    const auto mask = static_cast<unsigned char>(0xff << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

// Clears the bits past the first `bits`.
void clear_host_bits(std::span<unsigned char> bytes, unsigned bits) noexcept {
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        const std::size_t first_bit = i * 8;
        if (first_bit >= bits)
            bytes[i] = 0;
        else if (bits - first_bit < 8)
            bytes[i] &= static_cast<unsigned char>(0xff << (8 - (bits - first_bit)));
    }
}

} // namespace

boost::system::result<ip_network> ip_network::parse(std::string_view text) {
    const std::size_t slash = text.find('/');
    const std::string_view address_text = text.substr(0, slash);
    auto parsed = parse_address(address_text);
    if (!parsed)
        return invalid();
    ip::address a = *parsed;

    unsigned prefix = a.is_v4() ? 32 : 128;
    if (slash != std::string_view::npos) {
        const std::string_view digits = text.substr(slash + 1);
        if (digits.empty() || digits.size() > 3)
            return invalid();
        const char* end = digits.data() + digits.size();
        const auto [stop, ec] = std::from_chars(digits.data(), end, prefix);
        if (ec != std::errc{} || stop != end || prefix > (a.is_v4() ? 32u : 128u))
            return invalid();
    }

    if (a.is_v6() && a.to_v6().is_v4_mapped() && prefix >= 96) {
        a = ip::make_address_v4(ip::v4_mapped, a.to_v6());
        prefix -= 96;
    }

    if (a.is_v4()) {
        auto bytes = a.to_v4().to_bytes();
        clear_host_bits(bytes, prefix);
        return ip_network(ip::address_v4(bytes), prefix);
    }
    auto bytes = a.to_v6().to_bytes();
    clear_host_bits(bytes, prefix);
    return ip_network(ip::address_v6(bytes), prefix);
}

bool ip_network::contains(const ip::address& a) const noexcept {
    if (address_.is_v4()) {
        ip::address_v4 v4;
        if (a.is_v4())
            v4 = a.to_v4();
        else if (a.to_v6().is_v4_mapped())
            v4 = ip::make_address_v4(ip::v4_mapped, a.to_v6());
        else
            return false;
        return same_prefix(v4.to_bytes(), address_.to_v4().to_bytes(), prefix_length_);
    }
    if (!a.is_v6() || a.to_v6().is_v4_mapped())
        return false;
    return same_prefix(a.to_v6().to_bytes(), address_.to_v6().to_bytes(), prefix_length_);
}

std::string ip_network::to_string() const {
    return address_.to_string() + "/" + std::to_string(prefix_length_);
}

bool is_trusted(const std::vector<ip_network>& networks, const ip::address& a) noexcept {
    for (const ip_network& network : networks)
        if (network.contains(a))
            return true;
    return false;
}

} // namespace portal_auth
