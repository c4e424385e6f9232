#include <portal_auth/error.hpp>

#include <boost/test/unit_test.hpp>

#include <random>
#include <string>
#include <string_view>

#include "base64.hpp"

using namespace portal_auth;

namespace {

bytes to_bytes(std::string_view text) {
    return bytes(text.begin(), text.end());
}

} // namespace

BOOST_AUTO_TEST_SUITE(base64)

BOOST_AUTO_TEST_CASE(rfc4648_vectors) {
    const std::pair<std::string_view, std::string_view> vectors[] = {
        {"", ""},           {"f", "Zg"},          {"fo", "Zm8"},          {"foo", "Zm9v"},
        {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"},
    };
    for (const auto& [plain, encoded] : vectors) {
        BOOST_TEST(base64url_encode(plain) == encoded);
        BOOST_TEST(base64_encode_unpadded(to_bytes(plain)) == encoded);
        auto url = base64url_decode(encoded);
        auto std_decoded = base64_decode_unpadded(encoded);
        BOOST_TEST_REQUIRE(url.has_value());
        BOOST_TEST_REQUIRE(std_decoded.has_value());
        BOOST_TEST(*url == to_bytes(plain));
        BOOST_TEST(*std_decoded == to_bytes(plain));
    }
}

BOOST_AUTO_TEST_CASE(alphabets_differ_in_62_and_63) {
    const bytes data{0xfb, 0xff, 0xbf};
    BOOST_TEST(base64url_encode(data) == "-_-_");
    BOOST_TEST(base64_encode_unpadded(data) == "+/+/");
    BOOST_TEST(base64url_encode(bytes{0xfb, 0xff}) == "-_8");
    BOOST_TEST(base64_encode_unpadded(bytes{0xfb, 0xff}) == "+/8");

    BOOST_TEST(base64url_decode("-_-_").value() == data);
    BOOST_TEST(base64_decode_unpadded("+/+/").value() == data);
    BOOST_TEST(base64url_decode("+/+/").error() == make_error_code(errc::invalid_base64));
    BOOST_TEST(base64_decode_unpadded("-_-_").error() == make_error_code(errc::invalid_base64));
}

BOOST_AUTO_TEST_CASE(every_byte_value_round_trips) {
    bytes all(256);
    for (std::size_t i = 0; i < all.size(); ++i) {
        all[i] = static_cast<unsigned char>(i);
    }
    BOOST_TEST(base64url_decode(base64url_encode(all)).value() == all);
    BOOST_TEST(base64_decode_unpadded(base64_encode_unpadded(all)).value() == all);
}

BOOST_AUTO_TEST_CASE(random_round_trips_of_every_length) {
    std::mt19937 rng(42);
    for (std::size_t n = 0; n < 200; ++n) {
        bytes data(n);
        for (auto& b : data) {
            b = static_cast<unsigned char>(rng());
        }
        const std::string url = base64url_encode(data);
        const std::string std_text = base64_encode_unpadded(data);
        BOOST_TEST(url.size() == (n * 4 + 2) / 3);
        BOOST_TEST(url.find('=') == std::string::npos);
        BOOST_TEST(base64url_decode(url).value() == data);
        BOOST_TEST(base64_decode_unpadded(std_text).value() == data);
    }
}

BOOST_AUTO_TEST_CASE(rejects_padding) {
    for (std::string_view text : {"Zg==", "Zm8=", "Zg=", "=", "====", "Zm9v===="}) {
        BOOST_TEST(base64url_decode(text).error() == make_error_code(errc::invalid_base64), text);
        BOOST_TEST(base64_decode_unpadded(text).error() == make_error_code(errc::invalid_base64),
                   text);
    }
}

BOOST_AUTO_TEST_CASE(rejects_impossible_length) {
    for (std::string_view text : {"Z", "Zm9vY", "Zm9vYmFyZ"}) {
        BOOST_TEST(base64url_decode(text).error() == make_error_code(errc::invalid_base64), text);
        BOOST_TEST(base64_decode_unpadded(text).error() == make_error_code(errc::invalid_base64),
                   text);
    }
}

BOOST_AUTO_TEST_CASE(rejects_non_canonical_trailing_bits) {
    // "Zg" and "Zm8" are canonical; the same bytes with stray low bits are not.
    for (std::string_view text : {"Zh", "Zv", "Zm9", "Zm-", "Zm9vYh"}) {
        BOOST_TEST(base64url_decode(text).error() == make_error_code(errc::invalid_base64), text);
    }
    for (std::string_view text : {"Zh", "Zv", "Zm9", "Zm/", "Zm9vYh"}) {
        BOOST_TEST(base64_decode_unpadded(text).error() == make_error_code(errc::invalid_base64),
                   text);
    }
}

BOOST_AUTO_TEST_CASE(rejects_characters_outside_the_alphabet) {
    using namespace std::string_view_literals;
    for (std::string_view text : {"Zm9v!"sv, "Zm 9v"sv, "Zm9v\n"sv, " Zm9v"sv, "Zm\0v"sv,
                                  "Zm9\xff"sv, "Zm.v"sv, "Zm$v"sv}) {
        BOOST_TEST(base64url_decode(text).has_error());
        BOOST_TEST(base64_decode_unpadded(text).has_error());
    }
}

BOOST_AUTO_TEST_CASE(string_and_span_overloads_agree) {
    const std::string text = "any carnal pleas\xe2\x82\xac";
    BOOST_TEST(base64url_encode(text) == base64url_encode(to_bytes(text)));
}

BOOST_AUTO_TEST_SUITE_END()
