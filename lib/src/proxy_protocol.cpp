// PROXY protocol version 2: the binary header, parsed from whatever prefix has arrived.
#include "proxy_protocol.hpp"

#include <boost/asio/ip/address_v4.hpp>
#include <boost/asio/ip/address_v6.hpp>

#include <algorithm>
#include <cstdint>
#include <iterator>

namespace portal_auth::detail {
namespace {

namespace ip = boost::asio::ip;

constexpr unsigned char signature[] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                       0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
constexpr std::size_t version_command_at = 12;
constexpr std::size_t family_at = 13;
constexpr std::size_t length_at = 14;

constexpr unsigned char command_local = 0x20;
constexpr unsigned char command_proxy = 0x21;

constexpr unsigned char family_unspec = 0x00;
constexpr unsigned char family_tcp_v4 = 0x11;
constexpr unsigned char family_udp_v4 = 0x12;
constexpr unsigned char family_tcp_v6 = 0x21;
constexpr unsigned char family_udp_v6 = 0x22;
constexpr unsigned char family_unix_stream = 0x31;
constexpr unsigned char family_unix_dgram = 0x32;

// Source and destination addresses, then source and destination ports.
constexpr std::size_t v4_block = 4 + 4 + 2 + 2;
constexpr std::size_t v6_block = 16 + 16 + 2 + 2;
// A TLV's type and length bytes.
constexpr std::size_t tlv_head = 1 + 2;

proxy_header_result need_more(std::size_t needed) {
    return {.status = proxy_header_status::need_more, .needed = needed};
}

proxy_header_result invalid(std::string_view reason) {
    return {.status = proxy_header_status::invalid, .reason = reason};
}

proxy_header_result complete(std::size_t header_length,
                             std::optional<ip::tcp::endpoint> source = std::nullopt) {
    return {
        .status = proxy_header_status::complete, .header_length = header_length, .source = source};
}

// Big-endian; the caller has checked that both bytes are there.
std::uint16_t read_u16(std::span<const unsigned char> input, std::size_t at) {
    return static_cast<std::uint16_t>((input[at] << 8) | input[at + 1]);
}

} // namespace

proxy_header_result parse_proxy_header(std::span<const unsigned char> input) {
    const std::size_t signature_part = std::min(input.size(), std::size(signature));
    if (!std::equal(input.begin(), input.begin() + static_cast<std::ptrdiff_t>(signature_part),
                    std::begin(signature)))
        return invalid("no PROXY protocol v2 signature");

    if (input.size() <= version_command_at)
        return need_more(proxy_header_fixed_size);
    const unsigned char version_command = input[version_command_at];
    if ((version_command >> 4) != 2)
        return invalid("PROXY protocol version other than 2");
    if (version_command != command_local && version_command != command_proxy)
        return invalid("unknown PROXY protocol command");
    const bool proxy = version_command == command_proxy;

    if (input.size() <= family_at)
        return need_more(proxy_header_fixed_size);
    const unsigned char family = input[family_at];
    std::size_t address_block = 0;
    if (proxy) {
        switch (family) {
        case family_unspec:
            break;
        case family_tcp_v4:
            address_block = v4_block;
            break;
        case family_tcp_v6:
            address_block = v6_block;
            break;
        case family_udp_v4:
        case family_udp_v6:
        case family_unix_stream:
        case family_unix_dgram:
            return invalid("proxied connection is not TCP over IPv4 or IPv6");
        default:
            return invalid("unknown PROXY protocol address family or transport");
        }
    }

    if (input.size() < proxy_header_fixed_size)
        return need_more(proxy_header_fixed_size);
    const std::size_t length = read_u16(input, length_at);
    if (length > max_proxy_header_payload)
        return invalid("PROXY protocol header too long");
    if (length < address_block)
        return invalid("PROXY protocol address block truncated");
    const std::size_t header_length = proxy_header_fixed_size + length;
    if (input.size() < header_length)
        return need_more(header_length);

    if (!proxy || family == family_unspec)
        return complete(header_length);

    const std::size_t addresses_at = proxy_header_fixed_size;
    ip::tcp::endpoint source;
    if (family == family_tcp_v4) {
        ip::address_v4::bytes_type bytes;
        std::copy_n(input.begin() + addresses_at, bytes.size(), bytes.begin());
        source = {ip::address_v4(bytes), read_u16(input, addresses_at + 8)};
    } else {
        ip::address_v6::bytes_type bytes;
        std::copy_n(input.begin() + addresses_at, bytes.size(), bytes.begin());
        source = {ip::address_v6(bytes), read_u16(input, addresses_at + 32)};
    }

    for (std::size_t at = addresses_at + address_block; at < header_length;) {
        if (header_length - at < tlv_head)
            return invalid("PROXY protocol TLV truncated");
        const std::size_t value_length = read_u16(input, at + 1);
        if (header_length - at - tlv_head < value_length)
            return invalid("PROXY protocol TLV runs past the header");
        at += tlv_head + value_length;
    }
    return complete(header_length, source);
}

} // namespace portal_auth::detail
