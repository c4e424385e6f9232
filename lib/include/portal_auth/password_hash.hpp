// scrypt password hashes in the form $scrypt$ln=L,r=R,p=P$SALT$KEY.
#pragma once

#include <portal_auth/bytes.hpp>

#include <boost/system/result.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace portal_auth {

struct scrypt_params {
    unsigned log2_n = 14; // N = 2^log2_n
    unsigned r = 8;
    unsigned p = 1;
};

struct password_hash {
    scrypt_params params;
    bytes salt;
    bytes key; // scrypt(password, salt, N, r, p), usually 32 bytes
};

// Accepted bounds (anything outside: errc::invalid_password_hash): 1 <= ln <= 20, 1 <= r <= 32,
// 1 <= p <= 16, salt 8..64 bytes, key 16..64 bytes, and ln < 16 * r (scrypt's own limit). Numbers
// are plain decimal without sign or leading zeros. SALT and KEY are standard base64 unpadded.
boost::system::result<password_hash> parse_password_hash(std::string_view text);

std::string format_password_hash(const password_hash& hash);

// The memory one verification needs: 128 · r · 2^ln bytes (scrypt's V array).
std::uint64_t scrypt_memory_bytes(const scrypt_params& params) noexcept;

// The most a directory's hash may ask of one verification; a verification runs on every login
// attempt, so a hash beyond this would let a few logins exhaust the server's memory.
inline constexpr std::uint64_t max_scrypt_memory_bytes = std::uint64_t{256} << 20;

// New random 16-byte salt from RAND_bytes, 32-byte key. Errors: invalid_password_hash for
// params outside the bounds above, openssl_failure.
boost::system::result<password_hash> hash_password(std::string_view password,
                                                   scrypt_params params = {});

// Recomputes scrypt with the stored parameters and compares in constant time. False as well
// when the hash is outside the bounds above.
bool verify_password(const password_hash& hash, std::string_view password);

} // namespace portal_auth
