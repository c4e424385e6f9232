#include <portal_auth/error.hpp>
#include <portal_auth/password_hash.hpp>

#include <boost/test/unit_test.hpp>

#include <string>
#include <string_view>

#include "base64.hpp"

using namespace portal_auth;

namespace {

// Computed with Python:
//   salt = b"portal-auth-salt"
//   hashlib.scrypt(b"correct horse", salt=salt, n=16, r=8, p=1, dklen=32)
constexpr std::string_view small_vector =
    "$scrypt$ln=4,r=8,p=1$cG9ydGFsLWF1dGgtc2FsdA$gJ22QsbG4fbI9YvlXUDQVYlpWPhaILGilBnLswPJxnc";
//   hashlib.scrypt(b"correct horse battery staple", salt=salt, n=2**14, r=8, p=1, dklen=32)
constexpr std::string_view default_params_vector =
    "$scrypt$ln=14,r=8,p=1$cG9ydGFsLWF1dGgtc2FsdA$ggXYJsQX17o7WvEpLmW6BNwqN0AYR9+ZSV+JN2iZBEU";
//   hashlib.scrypt("pässwörd".encode(), salt=bytes(range(1, 12)), n=32, r=2, p=3, dklen=20)
constexpr std::string_view odd_sizes_vector =
    "$scrypt$ln=5,r=2,p=3$AQIDBAUGBwgJCgs$sBqfmNpojUpJk4O7dMmF8ec8UAo";

password_hash parse_ok(std::string_view text) {
    auto hash = parse_password_hash(text);
    BOOST_TEST_REQUIRE(hash.has_value(), text);
    return *hash;
}

} // namespace

BOOST_AUTO_TEST_SUITE(password_hash_suite)

BOOST_AUTO_TEST_CASE(python_vector_small) {
    const password_hash hash = parse_ok(small_vector);
    BOOST_TEST(hash.params.log2_n == 4u);
    BOOST_TEST(hash.params.r == 8u);
    BOOST_TEST(hash.params.p == 1u);
    BOOST_TEST(std::string(hash.salt.begin(), hash.salt.end()) == "portal-auth-salt");
    BOOST_TEST(hash.key.size() == 32u);
    BOOST_TEST(verify_password(hash, "correct horse"));
    BOOST_TEST(!verify_password(hash, "correct horsf"));
    BOOST_TEST(!verify_password(hash, "correct horse "));
    BOOST_TEST(!verify_password(hash, ""));
}

BOOST_AUTO_TEST_CASE(python_vector_default_params) {
    const password_hash hash = parse_ok(default_params_vector);
    const scrypt_params defaults;
    BOOST_TEST(hash.params.log2_n == defaults.log2_n);
    BOOST_TEST(hash.params.r == defaults.r);
    BOOST_TEST(hash.params.p == defaults.p);
    BOOST_TEST(verify_password(hash, "correct horse battery staple"));
}

BOOST_AUTO_TEST_CASE(python_vector_odd_sizes_and_utf8) {
    const password_hash hash = parse_ok(odd_sizes_vector);
    BOOST_TEST(hash.salt.size() == 11u);
    BOOST_TEST(hash.key.size() == 20u);
    BOOST_TEST(verify_password(hash, "p\xc3\xa4ssw\xc3\xb6rd"));
    BOOST_TEST(!verify_password(hash, "passwort"));
}

BOOST_AUTO_TEST_CASE(format_round_trips) {
    for (std::string_view text : {small_vector, default_params_vector, odd_sizes_vector}) {
        BOOST_TEST(format_password_hash(parse_ok(text)) == text);
    }
}

BOOST_AUTO_TEST_CASE(hash_password_produces_verifiable_hashes) {
    const scrypt_params params{4, 8, 1};
    auto first = hash_password("s3cret", params);
    auto second = hash_password("s3cret", params);
    BOOST_TEST_REQUIRE(first.has_value());
    BOOST_TEST_REQUIRE(second.has_value());
    BOOST_TEST(first->salt.size() == 16u);
    BOOST_TEST(first->key.size() == 32u);
    BOOST_TEST(first->salt != second->salt);
    BOOST_TEST(verify_password(*first, "s3cret"));
    BOOST_TEST(!verify_password(*first, "s3cre"));

    const std::string text = format_password_hash(*first);
    BOOST_TEST(text.starts_with("$scrypt$ln=4,r=8,p=1$"));
    BOOST_TEST(verify_password(parse_ok(text), "s3cret"));
}

BOOST_AUTO_TEST_CASE(hash_password_empty_password) {
    auto hash = hash_password("", {2, 1, 1});
    BOOST_TEST_REQUIRE(hash.has_value());
    BOOST_TEST(verify_password(*hash, ""));
    BOOST_TEST(!verify_password(*hash, "x"));
}

BOOST_AUTO_TEST_CASE(hash_password_rejects_out_of_range_params) {
    for (const scrypt_params params :
         {scrypt_params{0, 8, 1}, scrypt_params{21, 8, 1}, scrypt_params{4, 0, 1},
          scrypt_params{4, 33, 1}, scrypt_params{4, 8, 0}, scrypt_params{4, 8, 17},
          scrypt_params{16, 1, 1}}) {
        BOOST_TEST(hash_password("x", params).error() ==
                   make_error_code(errc::invalid_password_hash));
    }
}

BOOST_AUTO_TEST_CASE(verify_rejects_hand_built_hashes_outside_bounds) {
    password_hash hash = parse_ok(small_vector);
    password_hash no_key = hash;
    no_key.key.clear();
    BOOST_TEST(!verify_password(no_key, "correct horse"));
    password_hash huge = hash;
    huge.params.log2_n = 40;
    BOOST_TEST(!verify_password(huge, "correct horse"));
    password_hash short_salt = hash;
    short_salt.salt.resize(4);
    BOOST_TEST(!verify_password(short_salt, "correct horse"));
}

BOOST_AUTO_TEST_CASE(parse_accepts_bounds) {
    const std::string tail = "$cG9ydGFsLWF1dGgtc2FsdA$gJ22QsbG4fbI9YvlXUDQVYlpWPhaILGilBnLswPJxnc";
    for (std::string_view params : {"ln=1,r=1,p=1", "ln=15,r=1,p=1", "ln=20,r=32,p=16"}) {
        BOOST_TEST(parse_password_hash("$scrypt$" + std::string(params) + tail).has_value(),
                   params);
    }
    // Salt 8 and 64 bytes, key 16 and 64 bytes.
    const std::string salt8 = base64_encode_unpadded(bytes(8, 1));
    const std::string salt64 = base64_encode_unpadded(bytes(64, 1));
    const std::string key16 = base64_encode_unpadded(bytes(16, 2));
    const std::string key64 = base64_encode_unpadded(bytes(64, 2));
    BOOST_TEST(parse_password_hash("$scrypt$ln=4,r=8,p=1$" + salt8 + "$" + key16).has_value());
    BOOST_TEST(parse_password_hash("$scrypt$ln=4,r=8,p=1$" + salt64 + "$" + key64).has_value());
}

BOOST_AUTO_TEST_CASE(parse_rejects_bad_input) {
    const std::string salt = "cG9ydGFsLWF1dGgtc2FsdA";
    const std::string key = "gJ22QsbG4fbI9YvlXUDQVYlpWPhaILGilBnLswPJxnc";
    const std::string good_tail = "$" + salt + "$" + key;
    const std::string bad[] = {
        "",
        "$",
        "$scrypt$",
        "scrypt$ln=4,r=8,p=1" + good_tail,
        "$SCRYPT$ln=4,r=8,p=1" + good_tail,
        "$scrypt2$ln=4,r=8,p=1" + good_tail,
        "$7$ln=4,r=8,p=1" + good_tail,
        " $scrypt$ln=4,r=8,p=1" + good_tail,
        // missing parts
        "$scrypt$ln=4,r=8,p=1",
        "$scrypt$ln=4,r=8,p=1$" + salt,
        "$scrypt$ln=4,r=8,p=1$" + salt + "$",
        "$scrypt$ln=4,r=8,p=1$$" + key,
        "$scrypt$ln=4,r=8" + good_tail,
        "$scrypt$ln=4,p=1" + good_tail,
        "$scrypt$r=8,p=1" + good_tail,
        "$scrypt$ln=,r=8,p=1" + good_tail,
        // wrong order or spelling
        "$scrypt$r=8,ln=4,p=1" + good_tail,
        "$scrypt$ln=4,p=1,r=8" + good_tail,
        "$scrypt$ln=4;r=8;p=1" + good_tail,
        "$scrypt$ln=4, r=8,p=1" + good_tail,
        "$scrypt$n=16,r=8,p=1" + good_tail,
        // numbers
        "$scrypt$ln=04,r=8,p=1" + good_tail,
        "$scrypt$ln=+4,r=8,p=1" + good_tail,
        "$scrypt$ln=-4,r=8,p=1" + good_tail,
        "$scrypt$ln=4 ,r=8,p=1" + good_tail,
        "$scrypt$ln=0x4,r=8,p=1" + good_tail,
        "$scrypt$ln=99999999999999999999,r=8,p=1" + good_tail,
        "$scrypt$ln=4294967300,r=8,p=1" + good_tail,
        "$scrypt$ln=4,r=8,p=18446744073709551617" + good_tail,
        // out of range
        "$scrypt$ln=0,r=8,p=1" + good_tail,
        "$scrypt$ln=21,r=8,p=1" + good_tail,
        "$scrypt$ln=4,r=0,p=1" + good_tail,
        "$scrypt$ln=4,r=33,p=1" + good_tail,
        "$scrypt$ln=4,r=8,p=0" + good_tail,
        "$scrypt$ln=4,r=8,p=17" + good_tail,
        "$scrypt$ln=16,r=1,p=1" + good_tail,
        // salt and key
        "$scrypt$ln=4,r=8,p=1$" + base64_encode_unpadded(bytes(7, 1)) + "$" + key,
        "$scrypt$ln=4,r=8,p=1$" + base64_encode_unpadded(bytes(65, 1)) + "$" + key,
        "$scrypt$ln=4,r=8,p=1$" + salt + "$" + base64_encode_unpadded(bytes(15, 1)),
        "$scrypt$ln=4,r=8,p=1$" + salt + "$" + base64_encode_unpadded(bytes(65, 1)),
        "$scrypt$ln=4,r=8,p=1$" + salt + "==$" + key,
        "$scrypt$ln=4,r=8,p=1$" + salt + "$" + key + "=",
        "$scrypt$ln=4,r=8,p=1$cG9ydGFsLWF1dGgtc2FsdA-$" + key,
        "$scrypt$ln=4,r=8,p=1$" + salt + "$" + key + "\n",
        "$scrypt$ln=4,r=8,p=1$" + salt + "$" + key + "$",
        "$scrypt$ln=4,r=8,p=1$" + salt + "$" + key + "$extra",
        "$scrypt$ln=4,r=8,p=1$" + salt + "$" + key + " ",
        "$scrypt$ln=4,r=8,p=1$" + salt + "$" + key.substr(0, key.size() - 1) + "d",
        std::string("$scrypt$ln=4,r=8,p=1\0", 21) + good_tail,
        "\xff\xfe garbage \x01",
        std::string(100000, '$'),
    };
    for (const auto& text : bad) {
        const auto result = parse_password_hash(text);
        BOOST_TEST(result.has_error(), text.substr(0, 120));
        if (result.has_error()) {
            BOOST_TEST(result.error() == make_error_code(errc::invalid_password_hash));
        }
    }
}

BOOST_AUTO_TEST_CASE(parse_survives_every_truncation_and_mutation) {
    const std::string good(small_vector);
    // A key cut to 22 or more characters can still be a valid (shorter) key.
    const std::size_t min_valid = good.rfind('$') + 1 + 22;
    for (std::size_t n = 0; n < good.size(); ++n) {
        const bool parsed = parse_password_hash(good.substr(0, n)).has_value();
        if (n < min_valid) {
            BOOST_TEST(!parsed, n);
        }
    }
    std::size_t accepted = 0;
    for (std::size_t i = 0; i < good.size(); ++i) {
        for (const char c : std::string_view("$,=0194azAZ+/-_\0\xff", 18)) {
            std::string mutated = good;
            mutated[i] = c;
            if (parse_password_hash(mutated).has_value()) {
                ++accepted;
            }
        }
    }
    // Some mutations stay valid (other digits, other base64 characters); none may crash.
    BOOST_TEST(accepted > 0u);
}

BOOST_AUTO_TEST_SUITE_END()
