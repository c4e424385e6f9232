// libFuzzer target: parse_password_hash on arbitrary bytes.
//
// An accepted string must be within the documented bounds and canonical: formatting the parsed
// hash gives back the very same string, which parses to identical fields. When the parameters
// are cheap, verify_password runs on the parsed hash, and a fresh hash_password with the same
// parameters must verify its own password and refuse another one.
#include <portal_auth/password_hash.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "base64.hpp"

namespace {

using namespace portal_auth;

[[noreturn]] void fail(const char* what, std::string_view context = {}) {
    std::fprintf(stderr, "fuzz_password_hash: %s\n%.*s\n", what, static_cast<int>(context.size()),
                 context.data());
    std::abort();
}

bool same(const password_hash& a, const password_hash& b) {
    return a.params.log2_n == b.params.log2_n && a.params.r == b.params.r &&
           a.params.p == b.params.p && a.salt == b.salt && a.key == b.key;
}

// scrypt costs about N * r * p 128-byte block mixes (and 128 * r * N bytes of memory); keep
// each execution in the low milliseconds even under ASan.
bool cheap(const scrypt_params& params) {
    if (params.log2_n > 10)
        return false;
    const std::uint64_t work = (std::uint64_t{1} << params.log2_n) * params.r * params.p;
    return work <= 8192;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    auto parsed = parse_password_hash(input);
    if (!parsed)
        return 0;

    const scrypt_params& params = parsed->params;
    if (params.log2_n < 1 || params.log2_n > 20 || params.r < 1 || params.r > 32 || params.p < 1 ||
        params.p > 16 || params.log2_n >= 16 * params.r)
        fail("accepted parameters outside the documented bounds", input);
    if (parsed->salt.size() < 8 || parsed->salt.size() > 64 || parsed->key.size() < 16 ||
        parsed->key.size() > 64)
        fail("accepted salt or key length outside the documented bounds", input);

    const std::string formatted = format_password_hash(*parsed);
    auto again = parse_password_hash(formatted);
    if (!again)
        fail("format_password_hash output does not parse", formatted);
    if (!same(*parsed, *again))
        fail("format/parse round trip changed the fields", formatted);
    // Decimal without leading zeros and base64 without padding or stray bits: one spelling only.
    if (formatted != input)
        fail("accepted a non-canonical spelling", input);

    if (cheap(params)) {
        // Seeds are hashes of "password"; anything else just has to answer without trouble.
        (void)verify_password(*parsed, "password");
        (void)verify_password(*parsed, input);

        auto fresh = hash_password(input.substr(0, 64), params);
        if (!fresh)
            fail("hash_password refused parameters that parse accepted", input);
        auto fresh_again = parse_password_hash(format_password_hash(*fresh));
        if (!fresh_again || !same(*fresh, *fresh_again))
            fail("fresh hash does not round-trip", format_password_hash(*fresh));
        if (!verify_password(*fresh, input.substr(0, 64)))
            fail("fresh hash does not verify its own password", input);
        if (verify_password(*fresh, std::string(input.substr(0, 64)) + "x"))
            fail("fresh hash verifies another password", input);
    }
    return 0;
}
