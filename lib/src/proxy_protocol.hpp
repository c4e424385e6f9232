// A sans-io parser of the PROXY protocol version 2 header that a load balancer sends before the
// first byte of the proxied connection (HAProxy's proxy-protocol.txt, section 2.2).
#pragma once

#include <boost/asio/ip/tcp.hpp>

#include <cstddef>
#include <optional>
#include <span>
#include <string_view>

namespace portal_auth::detail {

// The 16 fixed bytes: signature, version and command, family and transport, length.
inline constexpr std::size_t proxy_header_fixed_size = 16;
// The most the length field may announce (addresses and TLVs). HAProxy sends at most 216 bytes
// of addresses plus its TLVs; a longer header is refused rather than buffered.
inline constexpr std::size_t max_proxy_header_payload = 4096;
inline constexpr std::size_t max_proxy_header_size =
    proxy_header_fixed_size + max_proxy_header_payload;

enum class proxy_header_status {
    need_more, // read until the input holds `needed` bytes, then parse it all again
    invalid,   // not an acceptable header: close the connection; `reason` says why
    complete,  // the header is the first `header_length` bytes of the input
};

struct proxy_header_result {
    proxy_header_status status;
    // need_more: the least total input size that can decide; never past the header's end, so
    // reading exactly `needed - input size` more bytes takes nothing that follows the header.
    std::size_t needed = 0;
    // complete: the bytes to consume; what follows them is the proxied stream (TLS).
    std::size_t header_length = 0;
    // complete: the client's address and port for a PROXY command over TCP/IPv4 or TCP/IPv6;
    // nothing for LOCAL (the balancer's own health check) or an UNSPEC family, where the
    // connection's own peer stands.
    std::optional<boost::asio::ip::tcp::endpoint> source;
    // invalid: a static description, for logs.
    std::string_view reason;
};

// Parses the header at the start of `input`, all the bytes received so far. Never reads past
// input.size(); only complete consumes, and exactly the header.
//
// Accepted: version 2 with the command PROXY or LOCAL. For PROXY, the family and transport byte
// is 0x11 (TCP over IPv4), 0x21 (TCP over IPv6) or 0x00 (UNSPEC: no address); UDP and UNIX
// sockets are invalid. LOCAL ignores the family byte; LOCAL and UNSPEC skip the whole block
// unread. The length may not exceed max_proxy_header_payload, nor be shorter than the family's
// address block (12 bytes for IPv4, 36 for IPv6). TLVs after the addresses are skipped, but each
// must fit: a TLV running past the header is invalid.
// Invalid input is reported as soon as a byte shows it: a TLS ClientHello or a version 1 text
// header fails on its first byte.
proxy_header_result parse_proxy_header(std::span<const unsigned char> input);

} // namespace portal_auth::detail
