// The error category and the one table that describes every errc.
#include <portal_auth/error.hpp>

#include <array>
#include <string>

namespace portal_auth {
namespace {

struct error_row {
    errc code;
    error_description description;
};

// One row per code, in enum order (checked below). Problem slugs and audit reasons are
// interfaces: clients and log pipelines match on them.
constexpr error_row error_table[] = {
    {errc::invalid_base64, {"invalid base64", 500, "internal", "internal"}},
    {errc::invalid_password_hash, {"invalid password hash", 500, "internal", "internal"}},
    {errc::invalid_signing_key, {"invalid signing key", 500, "internal", "internal"}},
    {errc::invalid_directory, {"invalid directory", 500, "internal", "internal"}},
    {errc::invalid_json, {"invalid JSON", 500, "internal", "internal"}},
    {errc::openssl_failure, {"OpenSSL operation failed", 500, "internal", "internal"}},
    {errc::malformed_token, {"the token is malformed", 401, "invalid-token", "malformed"}},
    {errc::unsupported_algorithm,
     {"the token's algorithm is not accepted", 401, "invalid-token", "unsupported_alg"}},
    {errc::unknown_key_id, {"the token's key id is unknown", 401, "invalid-token", "unknown_kid"}},
    {errc::bad_signature,
     {"the token's signature does not verify", 401, "invalid-token", "bad_signature"}},
    {errc::token_expired, {"the token has expired", 401, "invalid-token", "expired"}},
    {errc::wrong_issuer, {"the token has the wrong issuer", 401, "invalid-token", "wrong_issuer"}},
    {errc::wrong_audience,
     {"the token has the wrong audience", 401, "invalid-token", "wrong_audience"}},
    {errc::missing_claim,
     {"the token lacks a required claim", 401, "invalid-token", "missing_claim"}},
    {errc::invalid_credentials,
     {"invalid e-mail or password", 401, "invalid-credentials", "invalid_credentials"}},
    {errc::unauthenticated,
     {"a valid bearer access token is required", 401, "unauthenticated", "actor_session_ended"}},
    {errc::invalid_refresh_token,
     {"the refresh token is invalid or expired", 401, "invalid-refresh-token",
      "invalid_refresh_token"}},
    {errc::refresh_token_reused,
     {"the refresh token was already used; the session has been revoked", 401, "token-reused",
      "session_revoked"}},
    {errc::rate_limited, {"too many attempts; retry later", 429, "rate-limited", "rate_limited"}},
    {errc::invalid_impersonation_token,
     {"the impersonation token is invalid, expired or already used", 401,
      "invalid-impersonation-token", "not_redeemable"}},
    {errc::forbidden_chain,
     {"an impersonated session may not impersonate", 403, "impersonated-session",
      "impersonated_session"}},
    {errc::forbidden_role,
     {"the current profile's role may not impersonate the target profile", 403, "role-forbidden",
      "role"}},
    {errc::forbidden_operator_target,
     {"operators cannot be impersonated", 403, "operator-target", "target_is_operator"}},
    {errc::forbidden_not_operator,
     {"this endpoint requires an operator", 403, "operator-required", "not_operator"}},
    {errc::forbidden_coworker_profile,
     {"only the session customer's own profiles can be selected", 403, "coworker-profile",
      "coworker_profile"}},
    {errc::forbidden_impersonated_switch,
     {"an impersonated session may not switch profiles", 403, "impersonated-session",
      "impersonated_session"}},
    {errc::impersonation_disabled,
     {"impersonation is disabled", 403, "impersonation-disabled", "disabled"}},
    {errc::profile_not_found, {"no such profile", 404, "profile-not-found", "profile_not_found"}},
    {errc::customer_not_found,
     {"no such customer", 404, "customer-not-found", "customer_not_found"}},
    {errc::actor_lost_right,
     {"the impersonation token is invalid, expired or already used", 401,
      "invalid-impersonation-token", "actor_lost_right"}},
    {errc::impersonation_not_found,
     {"no such impersonation", 404, "impersonation-not-found", "impersonation_not_found"}},
    {errc::forbidden_impersonated_caller,
     {"an impersonated session may not list or end impersonations", 403, "impersonated-session",
      "impersonated_session"}},
    {errc::overloaded,
     {"the server is busy verifying passwords; retry shortly", 503, "overloaded", "shed"}},
    {errc::audit_unavailable,
     {"the audit trail cannot be written; nothing was issued; retry later", 503,
      "audit-unavailable", "audit_unavailable"}},
    {errc::store_unavailable,
     {"the session store is unavailable; retry later", 503, "store-unavailable",
      "store_unavailable"}},
    {errc::not_ready,
     {"not ready: draining, or the audit trail or the store is failing", 503, "not-ready",
      "not_ready"}},
};

constexpr bool table_in_enum_order() {
    int expected = 1;
    for (const auto& row : error_table)
        if (static_cast<int>(row.code) != expected++)
            return false;
    return expected == static_cast<int>(errc::not_ready) + 1;
}
static_assert(table_in_enum_order(), "error_table needs one row per errc, in enum order");

constexpr error_description internal_error{"internal error", 500, "internal", "internal"};

const error_description* find_row(int value) noexcept {
    if (value < 1 || value > static_cast<int>(std::size(error_table)))
        return nullptr;
    return &error_table[value - 1].description;
}

class category final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "portal_auth"; }

    std::string message(int value) const override {
        const error_description* row = find_row(value);
        return row ? std::string(row->message) : "unknown portal_auth error";
    }
};

} // namespace

const boost::system::error_category& portal_auth_category() noexcept {
    static const category instance;
    return instance;
}

const error_description& describe(error_code ec) noexcept {
    if (ec.category() != portal_auth_category())
        return internal_error;
    const error_description* row = find_row(ec.value());
    return row ? *row : internal_error;
}

} // namespace portal_auth
