#include <portal_auth/auth_service.hpp>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <openssl/rand.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <stdexcept>

namespace portal_auth {
namespace {

std::int64_t unix_seconds(clock_type::time_point t) {
    return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

std::string random_jti() {
    unsigned char raw[16];
    if (RAND_bytes(raw, sizeof raw) != 1)
        throw std::runtime_error("RAND_bytes failed");
    return base64url_encode(std::span<const unsigned char>(raw, sizeof raw));
}

// Short, stable reason for the audit trail: the error table's.
std::string reason_of(error_code ec) {
    return std::string(describe(ec).audit_reason);
}

// Where an impersonated session's life ends: the cap from the exchange.
session_data impersonated_session_data(const impersonation_grant& grant, customer_id target,
                                       clock_type::time_point cap) {
    return session_data{
        .customer = target,
        .profile = grant.target,
        .impersonator = grant.actor,
        .not_after = cap,
    };
}

// Throttling keys: e-mails compare case-insensitively; an address is the remote without its port.
std::string email_key(std::string_view email) {
    std::string key(email.substr(0, 320));
    for (char& c : key)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return key;
}

std::string_view address_key(std::string_view remote) {
    auto colon = remote.rfind(':');
    return colon == std::string_view::npos ? remote : remote.substr(0, colon);
}

std::string actor_key(customer_id actor) {
    return std::to_string(actor);
}

std::optional<std::int64_t> parse_decimal_id(std::string_view text) {
    std::int64_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size() || value <= 0)
        return std::nullopt;
    return value;
}

} // namespace

error_code check_coworker_impersonation(const directory& dir, const session_data& actor,
                                        profile_id target) {
    if (actor.impersonator)
        return errc::forbidden_chain;
    const profile* own = dir.find_profile(actor.profile);
    const profile* other = dir.find_profile(target);
    // Profiles outside the caller's team are not disclosed: same answer as a missing one.
    if (!own || !other || other->team != own->team)
        return errc::profile_not_found;
    const bool role_allows =
        (own->role_in_team == role::owner && other->role_in_team != role::owner) ||
        (own->role_in_team == role::admin && other->role_in_team == role::member);
    if (!role_allows || other->customer == actor.customer)
        return errc::forbidden_role;
    const customer* target_customer = dir.find_customer(other->customer);
    if (!target_customer || target_customer->is_operator)
        return errc::forbidden_operator_target;
    return {};
}

auth_service::auth_service(service_config config, std::shared_ptr<const directory> dir,
                           std::shared_ptr<const token_signer> signer, session_store& sessions,
                           audit_log& audit)
    : config_(config), dir_(std::move(dir)), signer_(std::move(signer)), sessions_(sessions),
      audit_(audit), email_failures_(config.login_failures_per_email),
      address_failures_(config.login_failures_per_address),
      issued_per_actor_(config.impersonations_per_actor) {
    // Unknown e-mails are checked against a hash with the same cost as real ones, so the
    // response time does not tell whether an account exists.
    scrypt_params params;
    auto current = dir_.load();
    if (current && current->customer_count() > 0)
        params = current->customers().front().password.params;
    auto dummy = hash_password("portal-auth dummy password", params);
    if (!dummy)
        throw std::runtime_error("cannot compute the dummy password hash");
    dummy_hash_ = std::move(*dummy);
}

boost::system::result<signed_in_session>
auth_service::login(std::string_view email, std::string_view password, const call_context& call) {
    if (login_retry_after(email, call)) {
        audit_.record(
            {.event = "login.throttled", .reason = "too_many_failures", .remote = call.remote},
            call.now);
        return errc::rate_limited;
    }
    auto dir = dir_.load();
    const customer* who = dir->find_customer_by_email(email);
    const bool password_ok = verify_password(who ? who->password : dummy_hash_, password);
    if (!who || !password_ok) {
        email_failures_.record(email_key(email), call.now);
        address_failures_.record(address_key(call.remote), call.now);
        audit_.record({.event = "login.failed",
                       .customer_id = who ? std::optional<std::int64_t>(who->id) : std::nullopt,
                       .reason = who ? "wrong_password" : "unknown_email",
                       .remote = call.remote},
                      call.now);
        return errc::invalid_credentials;
    }
    email_failures_.reset(email_key(email));
    auto own = dir->profiles_of_customer(who->id);
    session_data data{.customer = who->id, .profile = own.front()->id};
    auto tokens = sessions_.create(data, call.now, config_.session_ttl);
    audit_.record({.event = "login.succeeded",
                   .customer_id = who->id,
                   .profile_id = data.profile,
                   .remote = call.remote},
                  call.now);
    return signed_in_session{std::move(tokens), data};
}

std::optional<std::chrono::seconds>
auth_service::login_retry_after(std::string_view email, const call_context& call) const {
    auto by_email = email_failures_.blocked_for(email_key(email), call.now);
    auto by_address = address_failures_.blocked_for(address_key(call.remote), call.now);
    if (by_email && by_address)
        return std::max(*by_email, *by_address);
    return by_email ? by_email : by_address;
}

std::optional<std::chrono::seconds>
auth_service::impersonation_retry_after(customer_id actor, const call_context& call) const {
    return issued_per_actor_.blocked_for(actor_key(actor), call.now);
}

std::size_t auth_service::sweep(clock_type::time_point now) {
    email_failures_.sweep(now);
    address_failures_.sweep(now);
    issued_per_actor_.sweep(now);
    return sessions_.sweep(now);
}

boost::system::result<session_snapshot> auth_service::authenticate(std::string_view access_token,
                                                                   const call_context& call) const {
    auto found = sessions_.find_by_access_token(access_token, call.now);
    if (!found)
        return errc::unauthenticated;
    return std::move(*found);
}

boost::system::result<signed_in_session> auth_service::refresh(std::string_view refresh_token,
                                                               const call_context& call) {
    auto tokens = sessions_.refresh(refresh_token, call.now, config_.session_ttl);
    if (!tokens) {
        if (tokens.error() == errc::refresh_token_reused) {
            audit_.record({.event = "refresh.reuse_detected",
                           .reason = reason_of(tokens.error()),
                           .remote = call.remote},
                          call.now);
            return tokens.error();
        }
        return errc::invalid_refresh_token;
    }
    auto session = sessions_.find_by_access_token(tokens->access_token, call.now);
    if (!session)
        return errc::invalid_refresh_token;
    return signed_in_session{std::move(*tokens), std::move(session->data)};
}

void auth_service::logout(const session_snapshot& session, const call_context& call) {
    sessions_.revoke(session.id);
    audit_.record({.event = "logout",
                   .customer_id = session.data.customer,
                   .profile_id = session.data.profile,
                   .remote = call.remote},
                  call.now);
}

profile_listing auth_service::list_profiles(const session_snapshot& session) const {
    auto dir = dir_.load();
    profile_listing listing{.current = session.data.profile};
    std::vector<const profile*> rows;
    for (const profile* p : dir->profiles_of_customer(session.data.customer))
        rows.push_back(p);
    if (const profile* current = dir->find_profile(session.data.profile)) {
        for (const profile* p : dir->profiles_in_team(current->team))
            if (p->customer != session.data.customer)
                rows.push_back(p);
    }
    std::sort(rows.begin(), rows.end(),
              [](const profile* a, const profile* b) { return a->id < b->id; });
    rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
    listing.profiles.reserve(rows.size());
    for (const profile* p : rows) {
        listing.profiles.push_back(profile_entry{
            .entry = p,
            .owner = dir->find_customer(p->customer),
            .in_team = dir->find_team(p->team),
            .is_current = p->id == session.data.profile,
            .is_own = p->customer == session.data.customer,
            .can_impersonate = impersonation_allowed(*dir) &&
                               !check_coworker_impersonation(*dir, session.data, p->id),
        });
    }
    listing.keep_alive = std::move(dir);
    return listing;
}

boost::system::result<session_snapshot>
auth_service::switch_profile(const session_snapshot& session, profile_id target,
                             const call_context& call) {
    auto dir = dir_.load();
    error_code why;
    const profile* p = dir->find_profile(target);
    if (session.data.impersonator)
        why = errc::forbidden_impersonated_switch;
    else if (!p)
        why = errc::profile_not_found;
    else if (p->customer != session.data.customer)
        why = errc::forbidden_coworker_profile;
    if (why) {
        record_denial(session, "profile.switch_denied", target, std::nullopt, why, call);
        return why;
    }
    if (!sessions_.switch_profile(session.id, target))
        return errc::unauthenticated;
    audit_.record({.event = "profile.switched",
                   .customer_id = session.data.customer,
                   .profile_id = session.data.profile,
                   .target_profile_id = target,
                   .remote = call.remote},
                  call.now);
    session_snapshot updated = session;
    updated.data.profile = target;
    return updated;
}

bool auth_service::impersonation_allowed(const directory& dir) const noexcept {
    return config_.impersonation_enabled && dir.impersonation_enabled();
}

boost::system::result<std::string>
auth_service::impersonate_coworker(const session_snapshot& session, profile_id target,
                                   const call_context& call) {
    auto dir = dir_.load();
    error_code why = impersonation_allowed(*dir)
                         ? check_coworker_impersonation(*dir, session.data, target)
                         : error_code(errc::impersonation_disabled);
    if (!why && impersonation_retry_after(session.data.customer, call))
        why = errc::rate_limited;
    if (why) {
        record_denial(session, "impersonation.denied", target, std::nullopt, why, call);
        return why;
    }
    return issue_impersonation_token(session, *dir->find_profile(target), false, call);
}

boost::system::result<std::string>
auth_service::impersonate_customer(const session_snapshot& session, customer_id target,
                                   const call_context& call) {
    auto dir = dir_.load();
    const customer* caller = dir->find_customer(session.data.customer);
    const customer* other = dir->find_customer(target);
    error_code why;
    if (!impersonation_allowed(*dir))
        why = errc::impersonation_disabled;
    else if (session.data.impersonator)
        why = errc::forbidden_chain;
    else if (!caller || !caller->is_operator)
        why = errc::forbidden_not_operator;
    else if (!other)
        why = errc::customer_not_found;
    else if (other->is_operator)
        why = errc::forbidden_operator_target;
    else if (impersonation_retry_after(session.data.customer, call))
        why = errc::rate_limited;
    if (why) {
        record_denial(session, "impersonation.denied", std::nullopt, target, why, call);
        return why;
    }
    return issue_impersonation_token(session, *dir->profiles_of_customer(target).front(), true,
                                     call);
}

boost::system::result<std::string>
auth_service::issue_impersonation_token(const session_snapshot& actor, const profile& target,
                                        bool as_operator, const call_context& call) {
    impersonation_grant grant{
        .actor =
            impersonator_info{
                .customer = actor.data.customer,
                .profile = as_operator ? std::nullopt : std::optional(actor.data.profile),
                .is_operator = as_operator,
                .actor_session = actor.id,
            },
        .target = target.id,
        .expires_at = call.now + config_.impersonation_token_ttl,
    };
    const std::int64_t iat = unix_seconds(call.now);
    std::string jti = random_jti();
    boost::json::object claims{
        {"iss", token_issuer},
        {"aud", impersonation_audience},
        {"sub", std::to_string(target.id)},
        {"act", boost::json::object{{"sub", std::to_string(actor.data.customer)}}},
        {"iat", iat},
        {"exp", iat + config_.impersonation_token_ttl.count()},
        {"jti", jti},
    };
    std::string token = signer_.load()->sign(claims);
    sessions_.add_grant(jti, grant, call.now);
    issued_per_actor_.record(actor_key(actor.data.customer), call.now);
    // The token leaves only after its audit line is written.
    audit_.record({.event = "impersonation.issued",
                   .customer_id = actor.data.customer,
                   .profile_id = actor.data.profile,
                   .target_profile_id = target.id,
                   .target_customer_id = target.customer,
                   .jti = std::move(jti),
                   .remote = call.remote},
                  call.now);
    return token;
}

boost::system::result<signed_in_session> auth_service::exchange(std::string_view token,
                                                                const call_context& call) {
    auto dir = dir_.load();
    auto fail = [&](error_code why, std::optional<std::string> jti) {
        audit_.record({.event = "impersonation.exchange_failed",
                       .jti = std::move(jti),
                       .reason = reason_of(why),
                       .remote = call.remote},
                      call.now);
        return boost::system::result<signed_in_session>(errc::invalid_impersonation_token);
    };
    if (!impersonation_allowed(*dir))
        return fail(errc::impersonation_disabled, std::nullopt);
    auto claims = signer_.load()->verify(token);
    if (!claims)
        return fail(claims.error(), std::nullopt);
    if (auto ec = check_registered_claims(*claims, token_issuer, impersonation_audience, call.now))
        return fail(ec, std::nullopt);
    const auto* jti = claims->if_contains("jti");
    const auto* sub = claims->if_contains("sub");
    if (!jti || !jti->is_string() || !sub || !sub->is_string())
        return fail(errc::missing_claim, std::nullopt);
    std::string jti_text(jti->get_string());
    auto grant = sessions_.redeem_grant(jti_text, call.now);
    if (!grant)
        return fail(errc::invalid_impersonation_token, jti_text);
    auto target_id = parse_decimal_id(sub->get_string());
    const profile* target = target_id ? dir->find_profile(*target_id) : nullptr;
    if (!target || target->id != grant->target)
        return fail(errc::profile_not_found, jti_text);
    // The issuing session must still be live: logging out withdraws unredeemed tokens.
    if (!sessions_.is_live(grant->actor.actor_session, call.now))
        return fail(errc::unauthenticated, jti_text);

    session_data data = impersonated_session_data(*grant, target->customer,
                                                  call.now + config_.impersonation_session_ttl);
    auto tokens = sessions_.create(data, call.now, config_.session_ttl);
    audit_.record({.event = "impersonation.exchanged",
                   .customer_id = grant->actor.customer,
                   .profile_id = grant->actor.profile,
                   .target_profile_id = target->id,
                   .target_customer_id = target->customer,
                   .jti = std::move(jti_text),
                   .remote = call.remote},
                  call.now);
    return signed_in_session{std::move(tokens), std::move(data)};
}

namespace {

// Why a session can no longer exist under `dir`, or nothing when it still may.
std::optional<std::string_view> reason_to_end(const directory& dir, const session_data& s,
                                              bool impersonation_on) {
    const profile* own = dir.find_profile(s.profile);
    if (!dir.find_customer(s.customer))
        return "customer_removed";
    if (!own || own->customer != s.customer)
        return "profile_removed";
    if (!s.impersonator)
        return std::nullopt;
    if (!impersonation_on)
        return "impersonation_disabled";
    const impersonator_info& actor = *s.impersonator;
    if (actor.is_operator) {
        const customer* op = dir.find_customer(actor.customer);
        const customer* target = dir.find_customer(s.customer);
        if (!op || !op->is_operator || !target || target->is_operator)
            return "impersonation_right_lost";
        return std::nullopt;
    }
    session_data as_actor{.customer = actor.customer, .profile = actor.profile.value_or(0)};
    if (check_coworker_impersonation(dir, as_actor, s.profile))
        return "impersonation_right_lost";
    return std::nullopt;
}

} // namespace

std::size_t auth_service::reload(std::shared_ptr<const directory> dir,
                                 std::shared_ptr<const token_signer> signer,
                                 const call_context& call) {
    const bool impersonation_on = impersonation_allowed(*dir);
    dir_.store(dir);
    if (signer)
        signer_.store(std::move(signer));
    std::vector<std::pair<session_snapshot, std::string_view>> reasons;
    auto ended = sessions_.revoke_matching([&](const session_snapshot& s) {
        auto why = reason_to_end(*dir, s.data, impersonation_on);
        if (why)
            reasons.emplace_back(s, *why);
        return why.has_value();
    });
    for (const auto& [s, why] : reasons)
        audit_.record({.event = "session.ended",
                       .customer_id = s.data.customer,
                       .profile_id = s.data.profile,
                       .reason = std::string(why),
                       .remote = call.remote},
                      call.now);
    return ended.size();
}

boost::system::result<boost::json::array>
auth_service::audit_events(const session_snapshot& session, std::size_t limit) const {
    auto dir = dir_.load();
    const customer* caller = dir->find_customer(session.data.customer);
    if (session.data.impersonator || !caller || !caller->is_operator)
        return errc::forbidden_not_operator;
    return audit_.recent(limit);
}

void auth_service::record_denial(const session_snapshot& session, std::string_view event,
                                 std::optional<profile_id> target_profile,
                                 std::optional<customer_id> target_customer, error_code why,
                                 const call_context& call) {
    audit_.record({.event = std::string(event),
                   .customer_id = session.data.customer,
                   .profile_id = session.data.profile,
                   .target_profile_id = target_profile,
                   .target_customer_id = target_customer,
                   .reason = reason_of(why),
                   .remote = call.remote},
                  call.now);
}

} // namespace portal_auth
