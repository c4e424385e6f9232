// HS256 JSON Web Tokens (RFC 7519) with key rotation: the first key signs, every key verifies.
#pragma once

#include <portal_auth/bytes.hpp>

#include <boost/json/object.hpp>
#include <boost/system/result.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace portal_auth {

struct signing_key {
    std::string kid;
    bytes secret; // at least 32 bytes
};

// One key per non-empty line: "KID SECRET", SECRET base64url unpadded decoding to >= 32 bytes.
// On failure returns errc::invalid_signing_key and sets error_detail to e.g.
// "line 2: secret decodes to 16 bytes, at least 32 are required". Secrets never appear in it.
boost::system::result<std::vector<signing_key>> parse_signing_keys(std::string_view text,
                                                                   std::string& error_detail);

// KIDs are 1 to 64 of [A-Za-z0-9._-].
bool is_valid_key_id(std::string_view kid) noexcept;

// A fresh key with a 32-byte secret from RAND_bytes. Throws std::runtime_error if that fails.
signing_key make_random_signing_key(std::string kid);

// "KID SECRET" as parse_signing_keys reads it (used by `portal-auth gen-key`).
std::string format_signing_key(const signing_key& key);

// Thread-safe after construction (all members are const).
class token_signer {
public:
    // Throws std::invalid_argument when keys is empty, a secret is shorter than 32 bytes or a kid
    // repeats.
    explicit token_signer(std::vector<signing_key> keys);
    ~token_signer();
    token_signer(const token_signer&) = delete;
    token_signer& operator=(const token_signer&) = delete;

    // header {"alg":"HS256","typ":"JWT","kid":<first key>} . claims, signed with the first key.
    // Throws std::runtime_error only if OpenSSL itself fails (out of memory).
    std::string sign(const boost::json::object& claims) const;

    // Checks the structure, header alg == "HS256", a known kid, and the signature (constant-time).
    // Returns the claims. Errors: malformed_token, unsupported_algorithm, unknown_key_id,
    // bad_signature (openssl_failure if OpenSSL itself fails). Tokens over 4096 characters are
    // malformed. Claims are not checked here; see check_registered_claims.
    boost::system::result<boost::json::object> verify(std::string_view token) const;

    const std::string& signing_kid() const noexcept;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

// Checks iss, aud (string or array containing it), exp (> now, required) and that iat/exp are
// integers. Errors: wrong_issuer, wrong_audience, token_expired, missing_claim (also for a
// claim of the wrong JSON type, e.g. a string or fractional exp).
boost::system::error_code check_registered_claims(const boost::json::object& claims,
                                                  std::string_view issuer,
                                                  std::string_view audience,
                                                  std::chrono::system_clock::time_point now);

} // namespace portal_auth
