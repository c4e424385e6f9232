// libFuzzer target: token_signer::verify and check_registered_claims on arbitrary bytes.
//
// Three views of each input:
//  1. the whole input as a token: verify() must fail with one of its documented errors unless
//     it really is a token signed by one of our keys (the seed corpus holds such tokens);
//  2. the input as "HEADER\nPAYLOAD" (or just PAYLOAD under our usual header), signed here with
//     a known key: verify() must accept exactly when the header names HS256 and a known kid and
//     the payload is a JSON object, and then return that object;
//  3. when the input is a JSON object, verify(sign(x)) must give x back.
// Whatever verify() returns is passed to check_registered_claims, which must answer success or
// one of its documented errors, and success only for an unexpired exp.
#include <portal_auth/error.hpp>
#include <portal_auth/token_signer.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <openssl/evp.h>

#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base64.hpp"

namespace {

using namespace portal_auth;
namespace json = boost::json;

[[noreturn]] void fail(const char* what, std::string_view context = {}) {
    std::fprintf(stderr, "fuzz_jwt_verify: %s\n%.*s\n", what, static_cast<int>(context.size()),
                 context.data());
    std::abort();
}

constexpr std::string_view issuer = "portal-auth";
constexpr std::string_view audience = "portal-auth/login";
constexpr std::int64_t now_seconds = 1'900'000'000; // 2030-03-17, fixed for reproducibility
const std::chrono::system_clock::time_point now{std::chrono::seconds(now_seconds)};
constexpr std::size_t max_token_size = 4096;

// Two keys: "fuzz-key" signs, "old-key" only verifies (a rotation in progress). Secrets are
// bytes 1..32 and 101..132.
bytes secret_from(unsigned char first) {
    bytes secret(32);
    for (std::size_t i = 0; i < secret.size(); ++i)
        secret[i] = static_cast<unsigned char>(first + i);
    return secret;
}

struct keyring {
    bytes fuzz_secret = secret_from(1);
    bytes old_secret = secret_from(101);
    token_signer signer{
        std::vector<signing_key>{{"fuzz-key", fuzz_secret}, {"old-key", old_secret}}};

    const bytes* secret_of(std::string_view kid) const {
        if (kid == "fuzz-key")
            return &fuzz_secret;
        if (kid == "old-key")
            return &old_secret;
        return nullptr;
    }
};

const keyring& keys() {
    static const keyring k;
    return k;
}

std::string hs256(const bytes& secret, std::string_view data) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    std::size_t mac_size = 0;
    if (!EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, secret.data(), secret.size(),
                   reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac,
                   sizeof mac, &mac_size) ||
        mac_size != 32)
        fail("EVP_Q_mac failed");
    return base64url_encode(std::span<const unsigned char>(mac, mac_size));
}

std::optional<json::object> as_object(std::string_view text) {
    boost::system::error_code ec;
    json::value v = json::parse(text, ec);
    if (ec || !v.is_object())
        return std::nullopt;
    return std::move(v.get_object());
}

bool is_verify_error(const error_code& ec) {
    return ec == errc::malformed_token || ec == errc::unsupported_algorithm ||
           ec == errc::unknown_key_id || ec == errc::bad_signature;
}

void check_claims(const json::object& claims, std::string_view context) {
    const error_code ec = check_registered_claims(claims, issuer, audience, now);
    if (!ec) {
        // Success promises an integer exp in the future and the right issuer.
        const json::value* exp = claims.if_contains("exp");
        const json::value* iss = claims.if_contains("iss");
        const bool future =
            exp &&
            ((exp->is_int64() && exp->get_int64() > now_seconds) ||
             (exp->is_uint64() && exp->get_uint64() > static_cast<std::uint64_t>(now_seconds)));
        if (!future || !iss || !iss->is_string() || iss->get_string() != issuer)
            fail("check_registered_claims accepted claims it should refuse", context);
        return;
    }
    if (ec != errc::wrong_issuer && ec != errc::wrong_audience && ec != errc::token_expired &&
        ec != errc::missing_claim)
        fail("check_registered_claims: undocumented error", context);
}

// View 1: the raw input is the token.
void raw_token(std::string_view token) {
    auto claims = keys().signer.verify(token);
    if (!claims) {
        if (!is_verify_error(claims.error()))
            fail("verify: undocumented error", token);
        return;
    }
    if (token.size() > max_token_size)
        fail("verify accepted a token over 4096 characters", token);
    check_claims(*claims, token);
}

// View 2: header and payload chosen by the input, signed with the key the header names (or
// with fuzz-key when it names none we know).
void crafted_token(std::string_view input) {
    std::string_view header_text = R"({"alg":"HS256","typ":"JWT","kid":"fuzz-key"})";
    std::string_view payload_text = input;
    if (auto nl = input.find('\n'); nl != std::string_view::npos) {
        header_text = input.substr(0, nl);
        payload_text = input.substr(nl + 1);
    }

    // What verify must decide, from the documented rules.
    auto header = as_object(header_text);
    auto payload = as_object(payload_text);
    const json::value* alg = header ? header->if_contains("alg") : nullptr;
    const json::value* kid = header ? header->if_contains("kid") : nullptr;
    const bytes* secret = kid && kid->is_string() ? keys().secret_of(kid->get_string()) : nullptr;

    std::string token = base64url_encode(header_text) + "." + base64url_encode(payload_text);
    token += ".";
    token += hs256(secret ? *secret : keys().fuzz_secret, token.substr(0, token.size() - 1));

    errc expected{};
    bool accept = false;
    if (token.size() > max_token_size || header_text.empty() || payload_text.empty() || !header)
        expected = errc::malformed_token;
    else if (!alg || !alg->is_string() || alg->get_string() != "HS256")
        expected = errc::unsupported_algorithm;
    else if (!secret)
        expected = errc::unknown_key_id;
    else if (!payload)
        expected = errc::malformed_token;
    else
        accept = true;

    auto claims = keys().signer.verify(token);
    if (accept) {
        if (!claims)
            fail("verify refused a correctly signed token", token);
        // Compared as text too: Boost.JSON 1.81 reads 0e400 as NaN, which equals nothing.
        if (*claims != *payload && json::serialize(*claims) != json::serialize(*payload))
            fail("verify returned other claims than were signed", token);
        check_claims(*claims, token);
    } else {
        if (claims)
            fail("verify accepted a token it should refuse", token);
        if (claims.error() != expected)
            fail("verify refused a token for the wrong reason", token);
    }
}

// Which doubles a JSON value holds.
struct double_census {
    bool any = false;
    bool non_finite = false;
};

void take_census(const json::value& v, double_census& census) {
    if (v.is_double()) {
        census.any = true;
        census.non_finite = census.non_finite || !std::isfinite(v.get_double());
    } else if (const json::object* o = v.if_object()) {
        for (const auto& entry : *o)
            take_census(entry.value(), census);
    } else if (const json::array* a = v.if_array()) {
        for (const json::value& e : *a)
            take_census(e, census);
    }
}

// View 3: sign/verify round trip of a JSON object.
void round_trip(std::string_view input) {
    auto claims = as_object(input);
    if (!claims)
        return;
    double_census census;
    for (const auto& entry : *claims)
        take_census(entry.value(), census);
    // Boost.JSON 1.81 parses 1e400 as infinity and 0e400 as NaN but serializes them as
    // `Infinity` and `NaN`, which are not JSON, so such claims cannot survive any text round
    // trip. The service signs only integers and strings.
    if (census.non_finite)
        return;
    const std::string token = keys().signer.sign(*claims);
    auto back = keys().signer.verify(token);
    if (token.size() > max_token_size) {
        if (back || back.error() != errc::malformed_token)
            fail("oversized signed token not refused as malformed", token);
        return;
    }
    if (!back)
        fail("verify(sign(x)) failed", token);
    // Doubles go through Boost.JSON's text form, which need not reproduce the last bit of every
    // double it parsed; everything else must come back exactly.
    const auto reparsed = as_object(json::serialize(*claims));
    if (!reparsed || *back != *reparsed || (!census.any && *back != *claims))
        fail("verify(sign(x)) != x", token);
    check_claims(*back, token);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    raw_token(input);
    crafted_token(input);
    round_trip(input);
    return 0;
}
