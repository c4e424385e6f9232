// Error codes of portal-auth: one category for everything the library reports as a value.
#pragma once

#include <boost/system/error_code.hpp>

#include <type_traits>

namespace portal_auth {

using boost::system::error_code;

// Numbered from 1: an error_code holding 0 reads as success.
enum class errc {
    // Encoding and parsing
    invalid_base64 = 1,
    invalid_password_hash,
    invalid_signing_key,
    invalid_directory,
    invalid_json,
    openssl_failure,

    // Token verification
    malformed_token,
    unsupported_algorithm,
    unknown_key_id,
    bad_signature,
    token_expired,
    wrong_issuer,
    wrong_audience,
    missing_claim,

    // Domain outcomes
    invalid_credentials,
    unauthenticated,
    invalid_refresh_token,
    refresh_token_reused,
    rate_limited,
    invalid_impersonation_token,
    forbidden_chain,
    forbidden_role,
    forbidden_operator_target,
    forbidden_not_operator,
    forbidden_coworker_profile,
    forbidden_impersonated_switch,
    impersonation_disabled,
    profile_not_found,
    customer_not_found,
};

const boost::system::error_category& portal_auth_category() noexcept;

inline error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), portal_auth_category()};
}

} // namespace portal_auth

template <> struct boost::system::is_error_code_enum<portal_auth::errc> : std::true_type {};
