#include <portal_auth/error.hpp>

#include <string>

namespace portal_auth {
namespace {

class category final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "portal_auth"; }

    std::string message(int value) const override {
        switch (static_cast<errc>(value)) {
        case errc::invalid_base64:
            return "invalid base64";
        case errc::invalid_password_hash:
            return "invalid password hash";
        case errc::invalid_signing_key:
            return "invalid signing key";
        case errc::invalid_directory:
            return "invalid directory";
        case errc::invalid_json:
            return "invalid JSON";
        case errc::openssl_failure:
            return "OpenSSL operation failed";
        case errc::malformed_token:
            return "the token is malformed";
        case errc::unsupported_algorithm:
            return "the token's algorithm is not accepted";
        case errc::unknown_key_id:
            return "the token's key id is unknown";
        case errc::bad_signature:
            return "the token's signature does not verify";
        case errc::token_expired:
            return "the token has expired";
        case errc::wrong_issuer:
            return "the token has the wrong issuer";
        case errc::wrong_audience:
            return "the token has the wrong audience";
        case errc::missing_claim:
            return "the token lacks a required claim";
        case errc::invalid_credentials:
            return "invalid e-mail or password";
        case errc::unauthenticated:
            return "a valid bearer access token is required";
        case errc::invalid_refresh_token:
            return "the refresh token is invalid or expired";
        case errc::refresh_token_reused:
            return "the refresh token was already used; the session has been revoked";
        case errc::rate_limited:
            return "too many attempts; retry later";
        case errc::invalid_impersonation_token:
            return "the impersonation token is invalid, expired or already used";
        case errc::forbidden_chain:
            return "an impersonated session may not impersonate";
        case errc::forbidden_role:
            return "the current profile's role may not impersonate the target profile";
        case errc::forbidden_operator_target:
            return "operators cannot be impersonated";
        case errc::forbidden_not_operator:
            return "this endpoint requires an operator";
        case errc::forbidden_coworker_profile:
            return "only the session customer's own profiles can be selected";
        case errc::forbidden_impersonated_switch:
            return "an impersonated session may not switch profiles";
        case errc::impersonation_disabled:
            return "impersonation is disabled";
        case errc::profile_not_found:
            return "no such profile";
        case errc::customer_not_found:
            return "no such customer";
        }
        return "unknown portal_auth error";
    }
};

} // namespace

const boost::system::error_category& portal_auth_category() noexcept {
    static const category instance;
    return instance;
}

} // namespace portal_auth
