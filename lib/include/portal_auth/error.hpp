// Error codes of portal-auth: one category for everything the library reports as a value, and
// one table row per code that every mapping (message, HTTP status, problem type, audit reason)
// reads.
#pragma once

#include <boost/system/error_code.hpp>

#include <string_view>
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
    actor_lost_right, // the issuer of an impersonation token may no longer impersonate its target
    impersonation_not_found,
    forbidden_impersonated_caller, // an impersonated session asked about impersonations

    // Capacity and dependencies: the request may succeed later (503 with Retry-After)
    overloaded,        // the password-hashing queue is full
    audit_unavailable, // a credential's audit line could not be written
    store_unavailable, // the session or counter store failed or timed out
    not_ready,         // draining, or a dependency (audit sink, store) is failing
};

const boost::system::error_category& portal_auth_category() noexcept;

inline error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), portal_auth_category()};
}

// Everything a client or the audit trail is told about one error: one row per errc.
struct error_description {
    std::string_view message;      // the problem's `detail` and error_code::message()
    unsigned http_status;          // 500 for codes that never reach a client as such
    std::string_view problem_slug; // type = "urn:portal-auth:problem:" + slug
    std::string_view audit_reason; // the audit line's `reason`
};

// The row of `ec`. Codes of other categories read as an internal error (500, reason
// "internal"), so that nothing unexpected is ever disclosed.
const error_description& describe(error_code ec) noexcept;

inline constexpr std::string_view problem_type_prefix = "urn:portal-auth:problem:";

} // namespace portal_auth

template <> struct boost::system::is_error_code_enum<portal_auth::errc> : std::true_type {};
