// Unit tests of detail::parse_proxy_header: PROXY protocol v2 headers built byte by byte and fed
// in every split.
#include <boost/asio/ip/address.hpp>
#include <boost/test/unit_test.hpp>

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "proxy_protocol.hpp"

namespace portal_auth::detail {

// Lets BOOST_TEST print the statuses it compares.
std::ostream& operator<<(std::ostream& out, proxy_header_status status) {
    static constexpr const char* names[] = {"need_more", "invalid", "complete"};
    return out << names[static_cast<int>(status)];
}

} // namespace portal_auth::detail

using portal_auth::detail::max_proxy_header_payload;
using portal_auth::detail::parse_proxy_header;
using portal_auth::detail::proxy_header_result;
using portal_auth::detail::proxy_header_status;
namespace ip = boost::asio::ip;

namespace {

using byte_string = std::vector<unsigned char>;

const byte_string signature = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                               0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

// The first bytes of a TLS 1.2/1.3 ClientHello record.
const byte_string client_hello = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03};

void append(byte_string& out, std::initializer_list<unsigned> bytes) {
    for (unsigned b : bytes)
        out.push_back(static_cast<unsigned char>(b));
}

void append_u16(byte_string& out, std::size_t value) {
    out.push_back(static_cast<unsigned char>(value >> 8));
    out.push_back(static_cast<unsigned char>(value & 0xff));
}

// Signature, version and command, family, then the length of `payload` and `payload`.
byte_string header(unsigned version_command, unsigned family, const byte_string& payload) {
    byte_string out = signature;
    append(out, {version_command, family});
    append_u16(out, payload.size());
    out.insert(out.end(), payload.begin(), payload.end());
    return out;
}

// 192.0.2.7:4711 -> 198.51.100.1:443
byte_string v4_addresses() {
    byte_string out;
    append(out, {192, 0, 2, 7, 198, 51, 100, 1, 0x12, 0x67, 0x01, 0xBB});
    return out;
}

// [2001:db8::7]:4711 -> [2001:db8::1]:443
byte_string v6_addresses() {
    byte_string out;
    append(out, {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x07});
    append(out, {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01});
    append(out, {0x12, 0x67, 0x01, 0xBB});
    return out;
}

// PP2_TYPE_ALPN "h2", PP2_TYPE_AUTHORITY "portal.example", PP2_TYPE_NOOP of 3 bytes.
byte_string tlvs() {
    byte_string out;
    append(out, {0x01, 0x00, 0x02, 'h', '2'});
    const std::string_view authority = "portal.example";
    append(out, {0x02});
    append_u16(out, authority.size());
    out.insert(out.end(), authority.begin(), authority.end());
    append(out, {0x04, 0x00, 0x03, 0, 0, 0});
    return out;
}

byte_string concat(byte_string a, const byte_string& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

proxy_header_result parse(const byte_string& bytes, std::size_t n) {
    return parse_proxy_header(std::span<const unsigned char>(bytes.data(), n));
}

proxy_header_result parse(const byte_string& bytes) {
    return parse(bytes, bytes.size());
}

// Every proper prefix of `bytes` needs more, asking for no byte past the header; the whole
// input is complete with the header's length. Each prefix is parsed from a copy of its own,
// so that a read past its end is caught by ASan.
proxy_header_result parse_in_every_split(const byte_string& bytes, std::size_t header_length) {
    for (std::size_t n = 0; n < header_length; ++n) {
        BOOST_TEST_CONTEXT("prefix of " << n << " bytes") {
            const byte_string prefix(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
            const proxy_header_result r = parse(prefix);
            BOOST_TEST_REQUIRE(r.status == proxy_header_status::need_more);
            BOOST_TEST(r.needed > n);
            BOOST_TEST(r.needed <= header_length);
            BOOST_TEST(r.needed == (n < 16 ? std::size_t{16} : header_length));
        }
    }
    const proxy_header_result r = parse(bytes);
    BOOST_TEST_REQUIRE(r.status == proxy_header_status::complete);
    BOOST_TEST(r.header_length == header_length);
    return r;
}

// Parses `bytes` as the only input; expects invalid.
void expect_invalid(const byte_string& bytes, std::string_view reason_part) {
    const proxy_header_result r = parse(bytes);
    BOOST_TEST_REQUIRE(r.status == proxy_header_status::invalid);
    BOOST_TEST(!r.reason.empty());
    BOOST_TEST(r.reason.find(reason_part) != std::string_view::npos, r.reason);
}

} // namespace

BOOST_AUTO_TEST_SUITE(proxy_protocol_suite)

BOOST_AUTO_TEST_CASE(proxy_tcp_v4) {
    const byte_string bytes = header(0x21, 0x11, v4_addresses());
    BOOST_TEST(bytes.size() == 28u);
    const proxy_header_result r = parse_in_every_split(bytes, 28);
    BOOST_TEST_REQUIRE(r.source.has_value());
    BOOST_TEST(r.source->address() == ip::make_address("192.0.2.7"));
    BOOST_TEST(r.source->port() == 4711);
}

BOOST_AUTO_TEST_CASE(proxy_tcp_v6) {
    const byte_string bytes = header(0x21, 0x21, v6_addresses());
    BOOST_TEST(bytes.size() == 52u);
    const proxy_header_result r = parse_in_every_split(bytes, 52);
    BOOST_TEST_REQUIRE(r.source.has_value());
    BOOST_TEST(r.source->address() == ip::make_address("2001:db8::7"));
    BOOST_TEST(r.source->port() == 4711);
}

BOOST_AUTO_TEST_CASE(trailing_tls_bytes_are_not_consumed) {
    for (const byte_string& head :
         {header(0x21, 0x11, v4_addresses()), header(0x21, 0x21, v6_addresses()),
          header(0x20, 0x00, {}), header(0x21, 0x11, concat(v4_addresses(), tlvs()))}) {
        const byte_string bytes = concat(head, client_hello);
        const proxy_header_result r = parse_in_every_split(bytes, head.size());
        for (std::size_t n = head.size(); n <= bytes.size(); ++n) {
            const proxy_header_result later = parse(bytes, n);
            BOOST_TEST_REQUIRE(later.status == proxy_header_status::complete);
            BOOST_TEST(later.header_length == head.size());
            BOOST_TEST((later.source == r.source));
        }
    }
}

BOOST_AUTO_TEST_CASE(local_has_no_address) {
    const proxy_header_result r = parse_in_every_split(header(0x20, 0x00, {}), 16);
    BOOST_TEST(!r.source.has_value());

    // LOCAL ignores the family and the block, whatever is in it.
    const byte_string block = concat(v4_addresses(), {0xff, 0xff});
    const proxy_header_result with_block = parse_in_every_split(header(0x20, 0x11, block), 30);
    BOOST_TEST(!with_block.source.has_value());
    BOOST_TEST(parse(header(0x20, 0x22, {})).status == proxy_header_status::complete);
    BOOST_TEST(parse(header(0x20, 0x11, {})).status == proxy_header_status::complete);
}

BOOST_AUTO_TEST_CASE(unspec_family_has_no_address) {
    const proxy_header_result r = parse_in_every_split(header(0x21, 0x00, {}), 16);
    BOOST_TEST(!r.source.has_value());
    // Its block is skipped unread.
    const byte_string junk(20, 0xff);
    const proxy_header_result skipped = parse_in_every_split(header(0x21, 0x00, junk), 36);
    BOOST_TEST(!skipped.source.has_value());
}

BOOST_AUTO_TEST_CASE(tlvs_are_skipped) {
    const byte_string v4 = header(0x21, 0x11, concat(v4_addresses(), tlvs()));
    const proxy_header_result r4 = parse_in_every_split(v4, v4.size());
    BOOST_TEST_REQUIRE(r4.source.has_value());
    BOOST_TEST(r4.source->address() == ip::make_address("192.0.2.7"));

    const byte_string v6 = header(0x21, 0x21, concat(v6_addresses(), tlvs()));
    const proxy_header_result r6 = parse_in_every_split(v6, v6.size());
    BOOST_TEST_REQUIRE(r6.source.has_value());
    BOOST_TEST(r6.source->address() == ip::make_address("2001:db8::7"));

    // A TLV with an empty value.
    byte_string empty_value = v4_addresses();
    append(empty_value, {0x04, 0x00, 0x00});
    BOOST_TEST(parse(header(0x21, 0x11, empty_value)).status == proxy_header_status::complete);
}

BOOST_AUTO_TEST_CASE(malformed_tlvs_are_invalid) {
    for (std::size_t stray = 1; stray < 3; ++stray) {
        byte_string payload = v4_addresses();
        payload.insert(payload.end(), stray, 0x04);
        expect_invalid(header(0x21, 0x11, payload), "TLV truncated");
    }
    byte_string overrun = v4_addresses();
    append(overrun, {0x04, 0x00, 0x04, 0, 0, 0});
    expect_invalid(header(0x21, 0x11, overrun), "TLV runs past");

    // The last of several TLVs overruns by one byte.
    byte_string last = concat(v6_addresses(), tlvs());
    append(last, {0x04, 0x00, 0x02, 0});
    expect_invalid(header(0x21, 0x21, last), "TLV runs past");
}

BOOST_AUTO_TEST_CASE(bad_signature) {
    expect_invalid(client_hello, "signature");
    expect_invalid({0x16}, "signature");
    const std::string v1 = "PROXY TCP4 192.0.2.7 198.51.100.1 4711 443\r\n";
    expect_invalid(byte_string(v1.begin(), v1.end()), "signature");
    // Every byte of the signature matters, and a mismatch is seen as soon as it arrives.
    for (std::size_t i = 0; i < signature.size(); ++i) {
        BOOST_TEST_CONTEXT("byte " << i) {
            byte_string bytes = header(0x21, 0x11, v4_addresses());
            bytes[i] ^= 0x01;
            expect_invalid(bytes, "signature");
            expect_invalid(byte_string(bytes.begin(), bytes.begin() + static_cast<int>(i) + 1),
                           "signature");
        }
    }
}

BOOST_AUTO_TEST_CASE(bad_version_or_command) {
    for (unsigned version_command : {0x11u, 0x31u, 0x01u, 0xF1u, 0x10u}) {
        BOOST_TEST_CONTEXT("byte 12 = " << version_command) {
            expect_invalid(header(version_command, 0x11, v4_addresses()), "version");
            // Seen as soon as byte 12 arrives.
            byte_string prefix = signature;
            append(prefix, {version_command});
            expect_invalid(prefix, "version");
        }
    }
    for (unsigned version_command : {0x22u, 0x2Fu, 0x23u}) {
        BOOST_TEST_CONTEXT("byte 12 = " << version_command) {
            expect_invalid(header(version_command, 0x11, v4_addresses()), "command");
        }
    }
}

BOOST_AUTO_TEST_CASE(non_tcp_is_invalid) {
    for (unsigned family : {0x12u, 0x22u, 0x31u, 0x32u}) {
        BOOST_TEST_CONTEXT("family " << family) {
            expect_invalid(header(0x21, family, byte_string(216, 0)), "not TCP");
            byte_string prefix = signature;
            append(prefix, {0x21, family});
            expect_invalid(prefix, "not TCP");
        }
    }
    for (unsigned family : {0x01u, 0x02u, 0x10u, 0x13u, 0x30u, 0x41u, 0xFFu}) {
        BOOST_TEST_CONTEXT("family " << family) {
            expect_invalid(header(0x21, family, v6_addresses()), "unknown");
        }
    }
}

BOOST_AUTO_TEST_CASE(truncated_address_block_is_invalid) {
    for (std::size_t length = 0; length < 12; ++length) {
        BOOST_TEST_CONTEXT("IPv4 block of " << length << " bytes") {
            byte_string block = v4_addresses();
            block.resize(length);
            expect_invalid(header(0x21, 0x11, block), "truncated");
            // Decided from the length field, before the block arrives.
            byte_string fixed = header(0x21, 0x11, block);
            fixed.resize(16);
            expect_invalid(fixed, "truncated");
        }
    }
    for (std::size_t length = 0; length < 36; ++length) {
        BOOST_TEST_CONTEXT("IPv6 block of " << length << " bytes") {
            byte_string block = v6_addresses();
            block.resize(length);
            expect_invalid(header(0x21, 0x21, block), "truncated");
        }
    }
    // A v4-sized block announced as IPv6.
    expect_invalid(header(0x21, 0x21, concat(v4_addresses(), {0, 0, 0, 0})), "truncated");
}

BOOST_AUTO_TEST_CASE(oversized_length_is_invalid) {
    // The largest accepted, padded with one NOOP TLV.
    byte_string payload = v4_addresses();
    const std::size_t noop_value = max_proxy_header_payload - payload.size() - 3;
    append(payload, {0x04});
    append_u16(payload, noop_value);
    payload.resize(max_proxy_header_payload, 0);
    const byte_string largest = header(0x21, 0x11, payload);
    BOOST_TEST(parse(largest).status == proxy_header_status::complete);
    BOOST_TEST(parse(largest).header_length == 16 + max_proxy_header_payload);

    // One more is refused from the fixed part alone, without waiting for the rest.
    for (std::size_t length : {max_proxy_header_payload + 1, std::size_t{0xFFFF}}) {
        BOOST_TEST_CONTEXT("length " << length) {
            byte_string fixed = signature;
            append(fixed, {0x21, 0x11});
            append_u16(fixed, length);
            expect_invalid(fixed, "too long");
            fixed = signature;
            append(fixed, {0x20, 0x00});
            append_u16(fixed, length);
            expect_invalid(fixed, "too long");
        }
    }
}

BOOST_AUTO_TEST_CASE(needed_bytes_never_reach_past_the_header) {
    // A caller reading exactly `needed - size` bytes each time ends on the header's last byte.
    const byte_string bytes =
        concat(header(0x21, 0x21, concat(v6_addresses(), tlvs())), client_hello);
    std::size_t have = 0;
    int reads = 0;
    for (;;) {
        const proxy_header_result r = parse(bytes, have);
        if (r.status != proxy_header_status::need_more) {
            BOOST_TEST_REQUIRE(r.status == proxy_header_status::complete);
            BOOST_TEST(r.header_length == have);
            break;
        }
        have = r.needed;
        BOOST_TEST_REQUIRE(++reads <= 2);
    }
    BOOST_TEST(bytes.size() - have == client_hello.size());
}

BOOST_AUTO_TEST_SUITE_END()
