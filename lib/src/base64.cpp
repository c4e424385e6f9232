#include "base64.hpp"

#include <portal_auth/error.hpp>

#include <array>
#include <cstddef>
#include <cstdint>

namespace portal_auth {
namespace {

constexpr std::string_view url_alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
constexpr std::string_view std_alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

using decode_table = std::array<std::int8_t, 256>;

// -1 marks every byte outside the alphabet, including '='.
constexpr decode_table make_decode_table(std::string_view alphabet) {
    decode_table table{};
    for (auto& entry : table) {
        entry = -1;
    }
    for (std::size_t i = 0; i < alphabet.size(); ++i) {
        table[static_cast<unsigned char>(alphabet[i])] = static_cast<std::int8_t>(i);
    }
    return table;
}

constexpr decode_table url_table = make_decode_table(url_alphabet);
constexpr decode_table std_table = make_decode_table(std_alphabet);

std::string encode(std::span<const unsigned char> data, std::string_view alphabet) {
    const std::size_t n = data.size();
    const std::size_t tail = n % 3;
    std::string out(n / 3 * 4 + (tail == 0 ? 0 : tail + 1), '\0');
    char* dst = out.data();
    const unsigned char* src = data.data();
    const unsigned char* const full_end = src + (n - tail);
    for (; src != full_end; src += 3) {
        const std::uint32_t v =
            (std::uint32_t{src[0]} << 16) | (std::uint32_t{src[1]} << 8) | std::uint32_t{src[2]};
        *dst++ = alphabet[(v >> 18) & 0x3f];
        *dst++ = alphabet[(v >> 12) & 0x3f];
        *dst++ = alphabet[(v >> 6) & 0x3f];
        *dst++ = alphabet[v & 0x3f];
    }
    if (tail == 1) {
        const std::uint32_t v = std::uint32_t{src[0]} << 16;
        *dst++ = alphabet[(v >> 18) & 0x3f];
        *dst++ = alphabet[(v >> 12) & 0x3f];
    } else if (tail == 2) {
        const std::uint32_t v = (std::uint32_t{src[0]} << 16) | (std::uint32_t{src[1]} << 8);
        *dst++ = alphabet[(v >> 18) & 0x3f];
        *dst++ = alphabet[(v >> 12) & 0x3f];
        *dst++ = alphabet[(v >> 6) & 0x3f];
    }
    return out;
}

boost::system::result<bytes> decode(std::string_view text, const decode_table& table) {
    const std::size_t n = text.size();
    const std::size_t tail = n % 4;
    if (tail == 1) {
        return errc::invalid_base64;
    }
    bytes out(n / 4 * 3 + (tail == 0 ? 0 : tail - 1));
    unsigned char* dst = out.data();
    const auto sextet = [&](std::size_t i) {
        return static_cast<std::int32_t>(table[static_cast<unsigned char>(text[i])]);
    };
    const std::size_t full_end = n - tail;
    for (std::size_t i = 0; i < full_end; i += 4) {
        const std::int32_t a = sextet(i), b = sextet(i + 1), c = sextet(i + 2), d = sextet(i + 3);
        if ((a | b | c | d) < 0) {
            return errc::invalid_base64;
        }
        const std::uint32_t v =
            (static_cast<std::uint32_t>(a) << 18) | (static_cast<std::uint32_t>(b) << 12) |
            (static_cast<std::uint32_t>(c) << 6) | static_cast<std::uint32_t>(d);
        *dst++ = static_cast<unsigned char>(v >> 16);
        *dst++ = static_cast<unsigned char>(v >> 8);
        *dst++ = static_cast<unsigned char>(v);
    }
    // The unused low bits of the last character must be zero, so every byte string has
    // exactly one encoding (tokens are compared and signed as text).
    if (tail == 2) {
        const std::int32_t a = sextet(full_end), b = sextet(full_end + 1);
        if ((a | b) < 0 || (b & 0x0f) != 0) {
            return errc::invalid_base64;
        }
        *dst = static_cast<unsigned char>((a << 2) | (b >> 4));
    } else if (tail == 3) {
        const std::int32_t a = sextet(full_end), b = sextet(full_end + 1), c = sextet(full_end + 2);
        if ((a | b | c) < 0 || (c & 0x03) != 0) {
            return errc::invalid_base64;
        }
        dst[0] = static_cast<unsigned char>((a << 2) | (b >> 4));
        dst[1] = static_cast<unsigned char>(((b & 0x0f) << 4) | (c >> 2));
    }
    return out;
}

std::span<const unsigned char> as_bytes(std::string_view data) {
    return {reinterpret_cast<const unsigned char*>(data.data()), data.size()};
}

} // namespace

std::string base64url_encode(std::span<const unsigned char> data) {
    return encode(data, url_alphabet);
}

std::string base64url_encode(std::string_view data) {
    return encode(as_bytes(data), url_alphabet);
}

boost::system::result<bytes> base64url_decode(std::string_view text) {
    return decode(text, url_table);
}

std::string base64_encode_unpadded(std::span<const unsigned char> data) {
    return encode(data, std_alphabet);
}

boost::system::result<bytes> base64_decode_unpadded(std::string_view text) {
    return decode(text, std_table);
}

} // namespace portal_auth
