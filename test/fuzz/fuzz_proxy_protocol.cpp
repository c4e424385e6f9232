// libFuzzer target: parse_proxy_header on arbitrary bytes.
//
// The parser never reads past its input (each prefix below is parsed from a heap copy of its
// exact size, so ASan sees an overread), a complete header lies within the input and is decided
// by its own bytes alone, need_more asks for bytes the input lacks and never past the header,
// invalid stays invalid however many bytes follow, and a caller that reads exactly the bytes
// asked for reaches the same verdict as one that has everything at once.
#include <boost/asio/ip/address.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <vector>

#include "proxy_protocol.hpp"

namespace {

using namespace portal_auth::detail;

[[noreturn]] void fail(const char* what) {
    std::fprintf(stderr, "fuzz_proxy_protocol: %s\n", what);
    std::abort();
}

proxy_header_result parse_prefix(const std::uint8_t* data, std::size_t n) {
    const std::vector<unsigned char> copy(data, data + n);
    return parse_proxy_header(std::span<const unsigned char>(copy.data(), copy.size()));
}

bool same(const proxy_header_result& a, const proxy_header_result& b) {
    return a.status == b.status && a.needed == b.needed && a.header_length == b.header_length &&
           a.source == b.source && a.reason == b.reason;
}

void check_complete(const std::uint8_t* data, std::size_t size, const proxy_header_result& r) {
    if (r.header_length > size)
        fail("complete with a header longer than the input");
    if (r.header_length < proxy_header_fixed_size || r.header_length > max_proxy_header_size)
        fail("complete with a header length outside the protocol's bounds");
    if (!r.reason.empty() || r.needed != 0)
        fail("complete with fields of another status");
    // The header alone decides, and one byte less is not enough.
    if (!same(parse_prefix(data, r.header_length), r))
        fail("the header alone parses differently");
    const proxy_header_result shorter = parse_prefix(data, r.header_length - 1);
    if (shorter.status != proxy_header_status::need_more ||
        shorter.needed != std::max(r.header_length, proxy_header_fixed_size))
        fail("the header less its last byte is not need_more up to the header's end");

    const bool proxy = data[12] == 0x21;
    const bool v4 = proxy && data[13] == 0x11;
    const bool v6 = proxy && data[13] == 0x21;
    if (r.source.has_value() != (v4 || v6))
        fail("source present without a PROXY TCP header, or missing from one");
    if (v4) {
        const auto bytes = r.source->address().to_v4().to_bytes();
        if (!std::equal(bytes.begin(), bytes.end(), data + 16))
            fail("IPv4 source differs from the header's bytes");
        if (r.source->port() != ((data[24] << 8) | data[25]))
            fail("IPv4 source port differs from the header's bytes");
    }
    if (v6) {
        const auto bytes = r.source->address().to_v6().to_bytes();
        if (!std::equal(bytes.begin(), bytes.end(), data + 16))
            fail("IPv6 source differs from the header's bytes");
        if (r.source->port() != ((data[48] << 8) | data[49]))
            fail("IPv6 source port differs from the header's bytes");
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const proxy_header_result r = parse_prefix(data, size);
    switch (r.status) {
    case proxy_header_status::need_more:
        if (r.needed <= size || r.needed < proxy_header_fixed_size ||
            r.needed > max_proxy_header_size)
            fail("need_more asks for no new byte, or outside the protocol's bounds");
        if (r.header_length != 0 || r.source || !r.reason.empty())
            fail("need_more with fields of another status");
        break;
    case proxy_header_status::invalid: {
        if (r.reason.empty() || r.header_length != 0 || r.source || r.needed != 0)
            fail("invalid without a reason, or with fields of another status");
        std::vector<unsigned char> longer(data, data + size);
        longer.push_back(0x16);
        if (parse_proxy_header(longer).status != proxy_header_status::invalid)
            fail("invalid input became acceptable with one more byte");
        break;
    }
    case proxy_header_status::complete:
        check_complete(data, size, r);
        break;
    default:
        fail("unknown status");
    }

    // A caller reading exactly what is asked for, from nothing, until a verdict or the input
    // runs out.
    std::size_t have = 0;
    for (int reads = 0;; ++reads) {
        const proxy_header_result step = parse_prefix(data, have);
        if (step.status != proxy_header_status::need_more) {
            if (!same(step, r))
                fail("reading what was asked for gives another verdict");
            break;
        }
        if (step.needed <= have || reads > 2)
            fail("need_more made no progress");
        if (step.needed > size)
            break;
        have = step.needed;
    }
    return 0;
}
