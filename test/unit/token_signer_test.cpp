#include <portal_auth/error.hpp>
#include <portal_auth/token_signer.hpp>

#include <boost/json/serialize.hpp>
#include <boost/test/unit_test.hpp>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base64.hpp"

using namespace portal_auth;
namespace json = boost::json;

namespace {

signing_key fixed_key(std::string kid, unsigned char first_byte) {
    bytes secret(32);
    for (std::size_t i = 0; i < secret.size(); ++i) {
        secret[i] = static_cast<unsigned char>(first_byte + i);
    }
    return {std::move(kid), std::move(secret)};
}

token_signer make_signer(std::vector<signing_key> keys) {
    return token_signer(std::move(keys));
}

// Builds a token from raw header and payload JSON text, HMAC-signed with `key`, so a test can
// change exactly one thing (the alg, say) and still carry a correct signature.
std::string craft_token(std::string_view header_json, std::string_view payload_json,
                        const signing_key& key) {
    std::string input = base64url_encode(header_json) + "." + base64url_encode(payload_json);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_size = 0;
    HMAC(EVP_sha256(), key.secret.data(), static_cast<int>(key.secret.size()),
         reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &mac_size);
    return input + "." + base64url_encode(std::span<const unsigned char>(mac, mac_size));
}

std::vector<std::string> split(const std::string& token) {
    std::vector<std::string> parts;
    std::size_t start = 0;
    for (std::size_t dot; (dot = token.find('.', start)) != std::string::npos; start = dot + 1) {
        parts.push_back(token.substr(start, dot - start));
    }
    parts.push_back(token.substr(start));
    return parts;
}

std::string decode_text(std::string_view part) {
    const bytes raw = base64url_decode(part).value();
    return std::string(raw.begin(), raw.end());
}

// Replaces the character in the middle of part `index` by a different base64url character;
// the middle (not the last) keeps the part canonical base64url.
std::string flip_char(const std::string& token, std::size_t index) {
    auto parts = split(token);
    std::string& part = parts.at(index);
    char& c = part[part.size() / 2];
    c = c == 'A' ? 'B' : 'A';
    return parts[0] + "." + parts[1] + "." + parts[2];
}

using sys_clock = std::chrono::system_clock;

sys_clock::time_point at(std::int64_t seconds) {
    return sys_clock::time_point(std::chrono::seconds(seconds));
}

json::object standard_claims() {
    return json::object{
        {"iss", "portal"}, {"aud", "portal-web"}, {"sub", "alice"}, {"iat", 1000}, {"exp", 2000}};
}

const signing_key python_key = fixed_key("k1", 0);

} // namespace

BOOST_AUTO_TEST_SUITE(token_signer_suite)

BOOST_AUTO_TEST_CASE(matches_python_vector) {
    // Python: h = b64url(b'{"alg":"HS256","typ":"JWT","kid":"k1"}'),
    // p = b64url(b'{"sub":"alice","n":1}'), key = bytes(range(32)),
    // s = b64url(hmac.new(key, (h + "." + p).encode(), "sha256").digest())
    const std::string expected = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0."
                                 "eyJzdWIiOiJhbGljZSIsIm4iOjF9."
                                 "Zy7wRvSyPh2glnlpTUN5XY6vWh-vkN6E63MXhCYj7x0";
    const token_signer signer({python_key});
    BOOST_TEST(signer.sign(json::object{{"sub", "alice"}, {"n", 1}}) == expected);
    auto claims = signer.verify(expected);
    BOOST_TEST_REQUIRE(claims.has_value());
    BOOST_TEST(json::serialize(*claims) == R"({"sub":"alice","n":1})");
}

BOOST_AUTO_TEST_CASE(round_trip) {
    const token_signer signer({fixed_key("main", 7)});
    BOOST_TEST(signer.signing_kid() == "main");
    const json::object claims = standard_claims();
    const std::string token = signer.sign(claims);
    BOOST_TEST(split(token).size() == 3u);
    BOOST_TEST(token.find('=') == std::string::npos);
    auto verified = signer.verify(token);
    BOOST_TEST_REQUIRE(verified.has_value());
    BOOST_TEST(*verified == claims);
    BOOST_TEST(!check_registered_claims(*verified, "portal", "portal-web", at(1500)));
}

BOOST_AUTO_TEST_CASE(header_is_exact) {
    const token_signer signer({fixed_key("key-2024.01_a", 1)});
    const std::string token = signer.sign(standard_claims());
    BOOST_TEST(decode_text(split(token)[0]) ==
               R"({"alg":"HS256","typ":"JWT","kid":"key-2024.01_a"})");
}

BOOST_AUTO_TEST_CASE(tampered_signature_or_payload) {
    const token_signer signer({fixed_key("k", 3)});
    const std::string token = signer.sign(standard_claims());
    BOOST_TEST(signer.verify(flip_char(token, 2)).error() == make_error_code(errc::bad_signature));
    BOOST_TEST(signer.verify(flip_char(token, 1)).error() == make_error_code(errc::bad_signature));
    BOOST_TEST(signer.verify(flip_char(token, 0)).has_error());

    // Truncated or extended signature: still base64url, wrong length.
    const auto parts = split(token);
    const std::string head = parts[0] + "." + parts[1] + ".";
    BOOST_TEST(signer.verify(head + parts[2].substr(0, 40)).error() ==
               make_error_code(errc::bad_signature));
    BOOST_TEST(signer.verify(head + parts[2] + "AAAA").error() ==
               make_error_code(errc::bad_signature));
}

BOOST_AUTO_TEST_CASE(same_kid_other_secret_fails) {
    const token_signer signer({fixed_key("k", 3)});
    const token_signer impostor({fixed_key("k", 4)});
    BOOST_TEST(signer.verify(impostor.sign(standard_claims())).error() ==
               make_error_code(errc::bad_signature));
}

BOOST_AUTO_TEST_CASE(only_hs256_is_accepted) {
    const signing_key key = fixed_key("k", 9);
    const token_signer signer({key});
    const std::string payload = R"({"sub":"alice"})";

    BOOST_TEST(signer.verify(craft_token(R"({"alg":"HS256","typ":"JWT","kid":"k"})", payload, key))
                   .has_value());
    // Other header layouts are fine as long as alg and kid are right.
    BOOST_TEST(
        signer.verify(craft_token(R"({"kid":"k","alg":"HS256"})", payload, key)).has_value());

    for (std::string_view header : {
             R"({"alg":"none","typ":"JWT","kid":"k"})",
             R"({"alg":"HS512","typ":"JWT","kid":"k"})",
             R"({"alg":"hs256","typ":"JWT","kid":"k"})",
             R"({"alg":"HS256 ","typ":"JWT","kid":"k"})",
             R"({"alg":"","typ":"JWT","kid":"k"})",
             R"({"alg":256,"typ":"JWT","kid":"k"})",
             R"({"alg":null,"typ":"JWT","kid":"k"})",
             R"({"alg":["HS256"],"typ":"JWT","kid":"k"})",
             R"({"typ":"JWT","kid":"k"})",
         }) {
        BOOST_TEST(signer.verify(craft_token(header, payload, key)).error() ==
                       make_error_code(errc::unsupported_algorithm),
                   header);
    }

    // alg "none" with an empty signature, as an attacker would send it.
    const std::string unsigned_token =
        base64url_encode(R"({"alg":"none","kid":"k"})") + "." + base64url_encode(payload) + ".";
    BOOST_TEST(signer.verify(unsigned_token).has_error());
}

BOOST_AUTO_TEST_CASE(kid_must_be_known) {
    const signing_key key = fixed_key("k", 9);
    const token_signer signer({key});
    const std::string payload = R"({"sub":"alice"})";
    for (std::string_view header : {
             R"({"alg":"HS256","kid":"other"})",
             R"({"alg":"HS256","kid":"K"})",
             R"({"alg":"HS256","kid":""})",
             R"({"alg":"HS256","kid":1})",
             R"({"alg":"HS256"})",
         }) {
        BOOST_TEST(signer.verify(craft_token(header, payload, key)).error() ==
                       make_error_code(errc::unknown_key_id),
                   header);
    }
    const token_signer stranger({fixed_key("other", 9)});
    BOOST_TEST(signer.verify(stranger.sign(standard_claims())).error() ==
               make_error_code(errc::unknown_key_id));
}

BOOST_AUTO_TEST_CASE(rotated_key_still_verifies) {
    const signing_key old_key = fixed_key("old", 10);
    const signing_key new_key = fixed_key("new", 50);
    const token_signer before({old_key});
    const token_signer after({new_key, old_key});
    BOOST_TEST(after.signing_kid() == "new");

    const std::string old_token = before.sign(standard_claims());
    BOOST_TEST(after.verify(old_token).has_value());

    const std::string new_token = after.sign(standard_claims());
    BOOST_TEST(decode_text(split(new_token)[0]).find(R"("kid":"new")") != std::string::npos);
    BOOST_TEST(after.verify(new_token).has_value());
    BOOST_TEST(before.verify(new_token).error() == make_error_code(errc::unknown_key_id));
}

BOOST_AUTO_TEST_CASE(payload_must_be_a_json_object) {
    const signing_key key = fixed_key("k", 9);
    const token_signer signer({key});
    const std::string header = R"({"alg":"HS256","typ":"JWT","kid":"k"})";
    for (std::string_view payload :
         {"[1,2]", "\"text\"", "42", "null", "not json", "{\"a\":1} trailing", "{", ""}) {
        BOOST_TEST(signer.verify(craft_token(header, payload, key)).error() ==
                       make_error_code(errc::malformed_token),
                   payload);
    }
}

BOOST_AUTO_TEST_CASE(header_must_be_a_json_object) {
    const signing_key key = fixed_key("k", 9);
    const token_signer signer({key});
    for (std::string_view header : {"[\"HS256\"]", "HS256", "{\"alg\":\"HS256\"", "\xff\xfe"}) {
        BOOST_TEST(signer.verify(craft_token(header, "{}", key)).error() ==
                       make_error_code(errc::malformed_token),
                   header);
    }
}

BOOST_AUTO_TEST_CASE(garbage_is_rejected_without_crashing) {
    const token_signer signer({fixed_key("k", 9)});
    const std::string good = signer.sign(standard_claims());
    const auto parts = split(good);
    const std::string inputs[] = {
        "",
        ".",
        "..",
        "...",
        "a",
        "a.b",
        "a.b.c",
        "a.b.c.d",
        good + ".",
        "." + good,
        good + "=",
        parts[0] + ".." + parts[2],
        "." + parts[1] + "." + parts[2],
        parts[0] + "." + parts[1] + ".",
        "!!!.@@@.###",
        parts[0] + "." + parts[1] + "!." + parts[2],
        "Zg==.Zg==.Zg==",
        std::string(5000, 'A'),
        parts[0] + "." + std::string(5000, 'A') + "." + parts[2],
        std::string(4097, '.'),
        std::string("\0.\0.\0", 5),
        "eyJhbGciOiJIUzI1NiJ9.e30.e30",
    };
    for (const auto& input : inputs) {
        const auto result = signer.verify(input);
        BOOST_TEST(result.has_error(), input.substr(0, 80));
        if (result.has_error()) {
            BOOST_TEST(result.error().category().name() == std::string_view("portal_auth"));
        }
    }
    BOOST_TEST(signer.verify("").error() == make_error_code(errc::malformed_token));
    BOOST_TEST(signer.verify("a.b").error() == make_error_code(errc::malformed_token));
    BOOST_TEST(signer.verify("...").error() == make_error_code(errc::malformed_token));
    BOOST_TEST(signer.verify(std::string(5000, 'A')).error() ==
               make_error_code(errc::malformed_token));
    BOOST_TEST(signer.verify("!!!.@@@.###").error() == make_error_code(errc::malformed_token));

    // Every truncation of a good token is refused.
    for (std::size_t n = 0; n < good.size(); ++n) {
        BOOST_TEST(signer.verify(std::string_view(good).substr(0, n)).has_error());
    }
}

BOOST_AUTO_TEST_CASE(constructor_preconditions) {
    BOOST_CHECK_THROW(make_signer({}), std::invalid_argument);
    signing_key short_key = fixed_key("k", 1);
    short_key.secret.resize(31);
    BOOST_CHECK_THROW(make_signer({short_key}), std::invalid_argument);
    BOOST_CHECK_THROW(make_signer({fixed_key("k", 1), fixed_key("k", 2)}), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(concurrent_sign_and_verify) {
    const token_signer signer({fixed_key("a", 1), fixed_key("b", 2)});
    const token_signer other({fixed_key("b", 2)});
    const std::string from_other = other.sign(standard_claims());
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < 300; ++i) {
                json::object claims = standard_claims();
                claims["n"] = t * 1000 + i;
                const auto verified = signer.verify(signer.sign(claims));
                if (!verified || *verified != claims || !signer.verify(from_other)) {
                    ++failures;
                }
            }
        });
    }
    for (auto& thread : threads) {
        thread.join();
    }
    BOOST_TEST(failures.load() == 0);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(registered_claims)

BOOST_AUTO_TEST_CASE(accepts_valid_claims) {
    const json::object claims = standard_claims();
    BOOST_TEST(!check_registered_claims(claims, "portal", "portal-web", at(1999)));
    BOOST_TEST(!check_registered_claims(claims, "portal", "portal-web", at(0)));

    json::object no_iat = claims;
    no_iat.erase("iat");
    BOOST_TEST(!check_registered_claims(no_iat, "portal", "portal-web", at(1500)));

    json::object huge_exp = claims;
    huge_exp["exp"] = std::uint64_t{18446744073709551615u};
    BOOST_TEST(!check_registered_claims(huge_exp, "portal", "portal-web", at(1500)));
}

BOOST_AUTO_TEST_CASE(expiry) {
    const json::object claims = standard_claims();
    BOOST_TEST(check_registered_claims(claims, "portal", "portal-web", at(2000)) ==
               make_error_code(errc::token_expired));
    BOOST_TEST(check_registered_claims(claims, "portal", "portal-web", at(2001)) ==
               make_error_code(errc::token_expired));
    // 1999.9 s is still before exp; 2000.0 s is not.
    BOOST_TEST(!check_registered_claims(claims, "portal", "portal-web",
                                        at(1999) + std::chrono::milliseconds(900)));

    json::object negative = claims;
    negative["exp"] = -5;
    BOOST_TEST(check_registered_claims(negative, "portal", "portal-web", at(0)) ==
               make_error_code(errc::token_expired));
}

BOOST_AUTO_TEST_CASE(issuer_and_audience) {
    const json::object claims = standard_claims();
    BOOST_TEST(check_registered_claims(claims, "other", "portal-web", at(1500)) ==
               make_error_code(errc::wrong_issuer));
    BOOST_TEST(check_registered_claims(claims, "portal", "other", at(1500)) ==
               make_error_code(errc::wrong_audience));
    BOOST_TEST(check_registered_claims(claims, "Portal", "portal-web", at(1500)) ==
               make_error_code(errc::wrong_issuer));

    json::object list = claims;
    list["aud"] = json::array{"admin", 7, "portal-web"};
    BOOST_TEST(!check_registered_claims(list, "portal", "portal-web", at(1500)));
    BOOST_TEST(check_registered_claims(list, "portal", "shop", at(1500)) ==
               make_error_code(errc::wrong_audience));
    list["aud"] = json::array{};
    BOOST_TEST(check_registered_claims(list, "portal", "portal-web", at(1500)) ==
               make_error_code(errc::wrong_audience));
}

BOOST_AUTO_TEST_CASE(missing_or_mistyped_claims) {
    const auto check = [](const json::object& claims) {
        return check_registered_claims(claims, "portal", "portal-web", at(1500));
    };
    for (std::string_view name : {"iss", "aud", "exp"}) {
        json::object claims = standard_claims();
        claims.erase(name);
        BOOST_TEST(check(claims) == make_error_code(errc::missing_claim), name);
    }
    const std::pair<std::string_view, json::value> mistyped[] = {
        {"iss", 1},
        {"iss", nullptr},
        {"aud", 1},
        {"aud", json::object{}},
        {"exp", "2000"},
        {"exp", 2000.0},
        {"exp", nullptr},
        {"exp", true},
        {"iat", "1000"},
        {"iat", 1000.5},
        {"iat", json::array{}},
    };
    for (const auto& [name, value] : mistyped) {
        json::object claims = standard_claims();
        claims[name] = value;
        BOOST_TEST(check(claims) == make_error_code(errc::missing_claim),
                   name << " = " << json::serialize(value));
    }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(signing_keys)

const std::string secret_a = base64url_encode(bytes(32, 0xa1));
const std::string secret_b = base64url_encode(bytes(40, 0xb2));

BOOST_AUTO_TEST_CASE(parses_lines) {
    std::string detail = "stale";
    const std::string text = "\n  \t \r\nnew\t" + secret_a + "  \r\n\n   old " + secret_b;
    auto keys = parse_signing_keys(text, detail);
    BOOST_TEST_REQUIRE(keys.has_value(), detail);
    BOOST_TEST(detail.empty());
    BOOST_TEST_REQUIRE(keys->size() == 2u);
    BOOST_TEST((*keys)[0].kid == "new");
    BOOST_TEST((*keys)[0].secret == bytes(32, 0xa1));
    BOOST_TEST((*keys)[1].kid == "old");
    BOOST_TEST((*keys)[1].secret == bytes(40, 0xb2));
}

BOOST_AUTO_TEST_CASE(kid_limits) {
    std::string detail;
    const std::string kid64(64, 'k');
    BOOST_TEST(parse_signing_keys(kid64 + " " + secret_a, detail).has_value());
    BOOST_TEST(parse_signing_keys("A-z.0_9 " + secret_a, detail).has_value());
    for (const std::string& kid :
         {std::string(65, 'k'), std::string("\"k\""), std::string("k'"), std::string("k/1"),
          std::string("k\xc3\xa9"), std::string("k\x01"), std::string("#")}) {
        BOOST_TEST(parse_signing_keys(kid + " " + secret_a, detail).error() ==
                   make_error_code(errc::invalid_signing_key));
        BOOST_TEST(detail.starts_with("line 1: "), detail);
    }
}

BOOST_AUTO_TEST_CASE(errors_name_the_line_but_not_the_secret) {
    const std::string short_secret = base64url_encode(bytes(16, 0x5c));
    const std::pair<std::string, std::string> cases[] = {
        {"a " + secret_a + "\n\nb " + short_secret,
         "line 3: secret decodes to 16 bytes, at least 32 are required"},
        {"a " + secret_a + "\nb " + secret_b + "\na " + secret_b,
         "line 3: duplicate key id (first defined on line 1)"},
        {"a " + secret_a + " extra", "line 1: expected \"KID SECRET\", found 3 fields"},
        {secret_a, "line 1: expected \"KID SECRET\", found 1 fields"},
        {"a " + secret_a + "=", "line 1: secret is not base64url without padding"},
        {"a " + base64_encode_unpadded(bytes(33, 0xfb)),
         "line 1: secret is not base64url without padding"},
        {"a\r" + secret_a, "line 1: expected \"KID SECRET\", found 1 fields"},
        {"", "no keys found"},
        {"\n \t\n\r\n", "no keys found"},
    };
    for (const auto& [text, expected] : cases) {
        std::string detail;
        const auto keys = parse_signing_keys(text, detail);
        BOOST_TEST(keys.has_error(), expected);
        if (keys.has_error()) {
            BOOST_TEST(keys.error() == make_error_code(errc::invalid_signing_key));
        }
        BOOST_TEST(detail == expected);
        BOOST_TEST(detail.find(secret_a) == std::string::npos);
        BOOST_TEST(detail.find(secret_b) == std::string::npos);
        BOOST_TEST(detail.find(short_secret) == std::string::npos);
    }
}

BOOST_AUTO_TEST_CASE(random_keys_format_and_parse) {
    const signing_key first = make_random_signing_key("k1");
    const signing_key second = make_random_signing_key("k2");
    BOOST_TEST(first.secret.size() == 32u);
    BOOST_TEST(first.secret != second.secret);

    const std::string line = format_signing_key(first);
    BOOST_TEST(line == "k1 " + base64url_encode(first.secret));
    std::string detail;
    auto keys = parse_signing_keys(line + "\n" + format_signing_key(second) + "\n", detail);
    BOOST_TEST_REQUIRE(keys.has_value(), detail);
    BOOST_TEST((*keys)[0].kid == "k1");
    BOOST_TEST((*keys)[0].secret == first.secret);
    BOOST_TEST((*keys)[1].secret == second.secret);

    const token_signer signer(std::move(*keys));
    BOOST_TEST(signer.verify(signer.sign(standard_claims())).has_value());
}

BOOST_AUTO_TEST_SUITE_END()
