#include <portal_auth/error.hpp>
#include <portal_auth/password_hash.hpp>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cstddef>
#include <cstdint>

#include "base64.hpp"

namespace portal_auth {
namespace {

constexpr unsigned max_log2_n = 20;
constexpr unsigned max_r = 32;
constexpr unsigned max_p = 16;
constexpr std::size_t min_salt = 8, max_salt = 64;
constexpr std::size_t min_key = 16, max_key = 64;
constexpr std::size_t new_salt_size = 16;
constexpr std::size_t new_key_size = 32;

bool params_in_bounds(const scrypt_params& params) {
    // OpenSSL (and so Python's hashlib) also requires N < 2^(16 r).
    return params.log2_n >= 1 && params.log2_n <= max_log2_n && params.r >= 1 &&
           params.r <= max_r && params.p >= 1 && params.p <= max_p && params.log2_n < 16 * params.r;
}

// Consumes `literal` from the front of `text`.
bool consume(std::string_view& text, std::string_view literal) {
    if (!text.starts_with(literal)) {
        return false;
    }
    text.remove_prefix(literal.size());
    return true;
}

// Consumes a canonical decimal number (no sign, no leading zero) of at most 9 digits, which
// cannot overflow and is far beyond every accepted bound.
bool consume_number(std::string_view& text, unsigned& value) {
    std::size_t digits = 0;
    unsigned result = 0;
    while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') {
        if (digits == 9) {
            return false;
        }
        result = result * 10 + static_cast<unsigned>(text[digits] - '0');
        ++digits;
    }
    if (digits == 0 || (digits > 1 && text[0] == '0')) {
        return false;
    }
    text.remove_prefix(digits);
    value = result;
    return true;
}

// Upper bound of scrypt's working memory as OpenSSL computes it: B is 128 r p bytes and V
// plus X/T is 128 r (N + 2) bytes. The slack covers rounding inside OpenSSL.
std::uint64_t scrypt_maxmem(const scrypt_params& params) {
    const std::uint64_t n = std::uint64_t{1} << params.log2_n;
    const std::uint64_t r = params.r, p = params.p;
    return 128 * r * p + 128 * r * (n + 2) + (std::uint64_t{1} << 20);
}

bool derive_key(std::string_view password, std::span<const unsigned char> salt,
                const scrypt_params& params, std::span<unsigned char> key) {
    // A null pointer means "no password" to OpenSSL only by convention; pass a real one.
    const char* pass = password.empty() ? "" : password.data();
    return EVP_PBE_scrypt(pass, password.size(), salt.data(), salt.size(),
                          std::uint64_t{1} << params.log2_n, params.r, params.p,
                          scrypt_maxmem(params), key.data(), key.size()) == 1;
}

} // namespace

boost::system::result<password_hash> parse_password_hash(std::string_view text) {
    password_hash hash;
    if (!consume(text, "$scrypt$ln=") || !consume_number(text, hash.params.log2_n) ||
        !consume(text, ",r=") || !consume_number(text, hash.params.r) || !consume(text, ",p=") ||
        !consume_number(text, hash.params.p) || !consume(text, "$")) {
        return errc::invalid_password_hash;
    }
    if (!params_in_bounds(hash.params)) {
        return errc::invalid_password_hash;
    }
    const std::size_t separator = text.find('$');
    if (separator == std::string_view::npos) {
        return errc::invalid_password_hash;
    }
    // The decoders reject any further '$' and trailing junk in the key.
    auto salt = base64_decode_unpadded(text.substr(0, separator));
    auto key = base64_decode_unpadded(text.substr(separator + 1));
    if (!salt || !key || salt->size() < min_salt || salt->size() > max_salt ||
        key->size() < min_key || key->size() > max_key) {
        return errc::invalid_password_hash;
    }
    hash.salt = std::move(*salt);
    hash.key = std::move(*key);
    return hash;
}

std::uint64_t scrypt_memory_bytes(const scrypt_params& params) noexcept {
    return 128 * std::uint64_t{params.r} * (std::uint64_t{1} << params.log2_n);
}

std::string format_password_hash(const password_hash& hash) {
    std::string out = "$scrypt$ln=" + std::to_string(hash.params.log2_n) +
                      ",r=" + std::to_string(hash.params.r) +
                      ",p=" + std::to_string(hash.params.p) + "$";
    out += base64_encode_unpadded(hash.salt);
    out += '$';
    out += base64_encode_unpadded(hash.key);
    return out;
}

boost::system::result<password_hash> hash_password(std::string_view password,
                                                   scrypt_params params) {
    if (!params_in_bounds(params)) {
        return errc::invalid_password_hash;
    }
    password_hash hash{params, bytes(new_salt_size), bytes(new_key_size)};
    if (RAND_bytes(hash.salt.data(), static_cast<int>(hash.salt.size())) != 1 ||
        !derive_key(password, hash.salt, params, hash.key)) {
        return errc::openssl_failure;
    }
    return hash;
}

bool verify_password(const password_hash& hash, std::string_view password) {
    // Bounds guard against hand-built structs asking for gigabytes or an empty comparison.
    if (!params_in_bounds(hash.params) || hash.key.size() < min_key || hash.key.size() > max_key ||
        hash.salt.size() < min_salt || hash.salt.size() > max_salt) {
        return false;
    }
    unsigned char derived[max_key];
    const std::span<unsigned char> key(derived, hash.key.size());
    bool ok = derive_key(password, hash.salt, hash.params, key) &&
              CRYPTO_memcmp(derived, hash.key.data(), key.size()) == 0;
    OPENSSL_cleanse(derived, sizeof derived);
    return ok;
}

} // namespace portal_auth
