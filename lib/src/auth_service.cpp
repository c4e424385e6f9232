// Sign-in, sessions, profiles and impersonation: the rules, over awaitable stores.
#include <portal_auth/auth_service.hpp>
#include <portal_auth/metrics.hpp>

#include <boost/json/object.hpp>

#include "base64.hpp"
#include "refusal_journal.hpp"

// GCC 12 miscompiles two shapes of co_await (crashes seen here): an aggregate built in braces
// inside the co_await expression, and a co_await inside an if condition. Every co_await in this
// library is a statement or the initializer of a named variable, with named arguments.
#include <boost/json/value.hpp>

#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <functional>
#include <limits>
#include <stdexcept>

namespace portal_auth {
namespace {

namespace asio = boost::asio;
using boost::system::result;

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

// Lines written for a request of an impersonated session say which impersonation it is.
void stamp_impersonation(audit_event& event, const session_data& session) {
    if (!session.impersonator)
        return;
    event.impersonation_id = session.impersonator->impersonation_id;
    event.impersonation_reason = session.impersonator->reason;
}

// The impersonation.ended line of a record.
audit_event ended_event(const impersonation_record& r) {
    return audit_event{.event = "impersonation.ended",
                       .customer_id = r.actor.customer,
                       .profile_id = r.actor.profile,
                       .target_profile_id = r.target_profile,
                       .target_customer_id = r.target_customer,
                       .impersonation_id = r.id,
                       .impersonation_reason = r.reason,
                       .end_reason = r.end_reason};
}

// Where an impersonated session's life ends: the cap from the exchange.
session_data impersonated_session_data(const impersonation_grant& grant, customer_id target,
                                       clock_type::time_point started_at,
                                       clock_type::time_point cap) {
    session_data data{
        .customer = target,
        .profile = grant.target,
        .impersonator = grant.actor,
        .not_after = cap,
    };
    data.impersonator->started_at = started_at;
    return data;
}

// Throttling keys: e-mails compare case-insensitively; an address is the remote without its port.
std::string email_key(std::string_view email) {
    std::string key(email.substr(0, 320));
    for (char& c : key)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return key;
}

// "1.2.3.4:5" and "1.2.3.4" -> "1.2.3.4"; "[::1]:5" and "[::1]" -> "[::1]".
std::string_view address_key(std::string_view remote) {
    if (remote.starts_with('[')) {
        const auto close = remote.find(']');
        return close == std::string_view::npos ? remote : remote.substr(0, close + 1);
    }
    const auto colon = remote.find(':');
    return colon == std::string_view::npos ? remote : remote.substr(0, colon);
}

// Counter keys, one namespace per limit.
std::string pair_counter(std::string_view email, std::string_view remote) {
    return "login-pair:" + std::string(address_key(remote)) + " " + email_key(email);
}

std::string email_counter(std::string_view email) {
    return "login-email:" + email_key(email);
}

std::string address_counter(std::string_view remote) {
    return "login-address:" + std::string(address_key(remote));
}

std::string exchange_counter(std::string_view remote) {
    return "exchange-address:" + std::string(address_key(remote));
}

// The names audit lines give the limits, in the order of login_keys().
constexpr std::array<std::string_view, 3> login_limit_names = {"email_and_address", "email",
                                                               "address"};

std::string actor_counter(customer_id actor) {
    return "issued-actor:" + std::to_string(actor);
}

std::optional<std::chrono::seconds> later_of(std::optional<std::chrono::seconds> a,
                                             std::optional<std::chrono::seconds> b) {
    if (a && b)
        return std::max(*a, *b);
    return a ? a : b;
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

namespace {

// Whether the actor may (still) impersonate the target profile under `dir`: an operator is
// still one and the target's customer is not; a coworker's profile still dominates the
// target's in the same team. Applied at issue, at redemption and at every reload.
bool actor_may_impersonate(const directory& dir, const impersonator_info& actor,
                           profile_id target) {
    if (actor.is_operator) {
        const customer* op = dir.find_customer(actor.customer);
        const profile* p = dir.find_profile(target);
        const customer* owner = p ? dir.find_customer(p->customer) : nullptr;
        return op && op->is_operator && owner && !owner->is_operator;
    }
    const session_data as_actor{.customer = actor.customer, .profile = actor.profile.value_or(0)};
    return !check_coworker_impersonation(dir, as_actor, target);
}

// The hash unknown e-mails are checked against: the highest scrypt cost in the directory, so
// that no e-mail answers faster than the slowest real account and the response time does not
// tell whether an account exists.
std::shared_ptr<const password_hash> make_dummy_hash(const directory* dir) {
    scrypt_params highest;
    if (dir && dir->customer_count() > 0) {
        auto cost = [](const scrypt_params& p) {
            return (std::uint64_t{1} << p.log2_n) * p.r * p.p;
        };
        highest = dir->customers().front().password.params;
        for (const customer& c : dir->customers())
            if (cost(c.password.params) > cost(highest))
                highest = c.password.params;
    }
    auto dummy = hash_password("portal-auth dummy password", highest);
    if (!dummy)
        throw std::runtime_error("cannot compute the dummy password hash");
    return std::make_shared<const password_hash>(std::move(*dummy));
}

} // namespace

auth_service::auth_service(service_config config, std::shared_ptr<const directory> dir,
                           std::shared_ptr<const token_signer> signer, service_dependencies deps)
    : config_(config), dir_(std::move(dir)), signer_(std::move(signer)), deps_(deps),
      refusals_(std::make_unique<detail::refusal_journal>()),
      dummy_hash_(make_dummy_hash(dir_.load().get())) {}

auth_service::~auth_service() = default;

scrypt_params auth_service::dummy_hash_params() const {
    return dummy_hash_.load()->params;
}

// The outcome counters follow the audit events: one place decides what each event means.
void auth_service::count_event(std::string_view event, bool recorded) const {
    using enum metrics::login_result;
    using impersonation = metrics::impersonation_result;
    metrics& m = *deps_.counts;
    if (event == "login.succeeded" && recorded)
        m.login(succeeded);
    else if (event == "login.failed")
        m.login(failed);
    else if (event == "login.throttled")
        m.login(throttled);
    else if (event == "impersonation.issued" && recorded)
        m.impersonation(impersonation::issued);
    else if (event == "impersonation.denied")
        m.impersonation(impersonation::denied);
    else if (event == "impersonation.exchanged" && recorded)
        m.impersonation(impersonation::exchanged);
    else if (event == "impersonation.exchange_failed" || event == "impersonation.throttled")
        m.impersonation(impersonation::failed);
}

asio::awaitable<error_code> auth_service::record(audit_event event, const request_context& call) {
    // Who called: the client, and the proxy it came through when that is not the client.
    if (event.remote.empty())
        event.remote = call.remote;
    if (!event.peer && !call.peer.empty())
        event.peer = call.peer;
    if (!event.request_id && !call.request_id.empty())
        event.request_id = call.request_id;
    const std::string name = event.event;
    const bool throttle_line = event.limit.has_value(); // counted per attempt by record_refusal
    const error_code failed = co_await deps_.audit.record(std::move(event), call.now);
    if (deps_.counts) {
        deps_.counts->audit_line(!failed);
        if (!throttle_line)
            count_event(name, !failed);
    }
    co_return failed;
}

asio::awaitable<void> auth_service::record_outcome(audit_event event, const request_context& call) {
    const error_code failed = co_await record(std::move(event), call);
    if (failed)
        unrecorded_events_.fetch_add(1, std::memory_order_relaxed);
}

asio::awaitable<void> auth_service::record_shed(const request_context& call) {
    if (deps_.counts)
        deps_.counts->login(metrics::login_result::shed);
    sheds_since_line_.fetch_add(1, std::memory_order_relaxed);
    const std::int64_t second = unix_seconds(call.now);
    std::int64_t last = shed_line_second_.load(std::memory_order_relaxed);
    // One line a second at most: the first shed of a new second writes it, with every shed
    // since the previous line (this one included).
    if (second == last || !shed_line_second_.compare_exchange_strong(last, second))
        co_return;
    const std::int64_t count = sheds_since_line_.exchange(0, std::memory_order_relaxed);
    audit_event event{.event = "login.shed", .reason = reason_of(errc::overloaded), .count = count};
    co_await record_outcome(std::move(event), call);
}

asio::awaitable<void> auth_service::record_refusal(std::string_view key, audit_event event,
                                                   std::chrono::seconds window,
                                                   const request_context& call) {
    event.remote = call.remote;
    if (!call.peer.empty())
        event.peer = call.peer;
    if (deps_.counts)
        count_event(event.event, true);
    if (refusals_->note(key, event, window, call.now))
        co_await record_outcome(std::move(event), call);
    co_await write_throttle_summaries(call.now);
}

asio::awaitable<void> auth_service::write_throttle_summaries(clock_type::time_point now,
                                                             bool close_all) {
    auto summaries = refusals_->take_ended(close_all ? clock_type::time_point::max() : now);
    for (audit_event& summary : summaries) {
        const error_code failed = co_await deps_.audit.record(std::move(summary), now);
        if (deps_.counts)
            deps_.counts->audit_line(!failed);
        if (failed)
            unrecorded_events_.fetch_add(1, std::memory_order_relaxed);
    }
}

asio::awaitable<void> auth_service::release(std::span<const counted_key> keys,
                                            const request_context& call) {
    // Not given back (the store failed): the attempt stays counted as a failure, which errs
    // on the side of the limit.
    auto released = co_await deps_.counters.release(keys, call.now);
    (void)released;
}

asio::awaitable<result<signed_in_session>> auth_service::login(std::string_view email,
                                                               std::string_view password,
                                                               const request_context& call) {
    auto dir = dir_.load();
    const customer* who = dir->find_customer_by_email(email);
    const std::optional<std::int64_t> who_id =
        who ? std::optional<std::int64_t>(who->id) : std::nullopt;

    // The attempt is reserved against every limit before it is queued, in one step with their
    // check, so that parallel attempts cannot all pass the check and then all fail.
    const std::string by_pair = pair_counter(email, call.remote);
    const std::string by_email = email_counter(email);
    const std::string by_address = address_counter(call.remote);
    const std::array<counted_key, 3> keys = {
        counted_key{by_pair, config_.login_failures_per_email_and_address},
        counted_key{by_email, config_.login_failures_per_email},
        counted_key{by_address, config_.login_failures_per_address},
    };
    auto reserved = co_await deps_.counters.reserve(keys, call.now);
    if (!reserved)
        co_return errc::store_unavailable;
    if (!reserved->granted()) {
        const std::size_t refused = *reserved->refused_by;
        audit_event event{.event = "login.throttled",
                          .customer_id = who_id,
                          .reason = "too_many_failures",
                          .limit = std::string(login_limit_names[refused])};
        co_await record_refusal(keys[refused].key, std::move(event), keys[refused].limit.window,
                                call);
        co_return errc::rate_limited;
    }

    const auto dummy = dummy_hash_.load(); // kept alive across the wait
    auto verified = co_await deps_.passwords.verify(who ? who->password : *dummy, password);
    if (!verified) {
        co_await release(keys, call); // not an attempt at the password
        if (verified.error() == errc::overloaded)
            co_await record_shed(call);
        co_return verified.error();
    }
    if (!who || !*verified) {
        // The reservation stays: it is the failure's count.
        audit_event event{.event = "login.failed",
                          .customer_id = who_id,
                          .reason = who ? "wrong_password" : "unknown_email"};
        co_await record_outcome(std::move(event), call);
        co_return errc::invalid_credentials;
    }
    co_await release(keys, call);
    auto forgot_pair = co_await deps_.counters.reset(by_pair);
    auto forgot_email = co_await deps_.counters.reset(by_email);
    if (!forgot_pair || !forgot_email)
        co_return errc::store_unavailable;
    auto own = dir->profiles_of_customer(who->id);
    session_data data{.customer = who->id, .profile = own.front()->id};
    auto tokens = co_await deps_.sessions.create(data, call.now, config_.session_ttl);
    if (!tokens)
        co_return tokens.error();
    // The session is handed out only once its audit line is written.
    audit_event event{
        .event = "login.succeeded", .customer_id = who->id, .profile_id = data.profile};
    const error_code unrecorded = co_await record(std::move(event), call);
    if (unrecorded) {
        (void)co_await deps_.sessions.revoke(tokens->id);
        co_return errc::audit_unavailable;
    }
    co_return signed_in_session{std::move(*tokens), data};
}

asio::awaitable<std::optional<std::chrono::seconds>>
auth_service::login_retry_after(std::string_view email, const request_context& call) {
    auto by_pair = co_await deps_.counters.blocked_for(
        pair_counter(email, call.remote), config_.login_failures_per_email_and_address, call.now);
    auto by_email = co_await deps_.counters.blocked_for(email_counter(email),
                                                        config_.login_failures_per_email, call.now);
    auto by_address = co_await deps_.counters.blocked_for(
        address_counter(call.remote), config_.login_failures_per_address, call.now);
    auto later = later_of(by_pair ? *by_pair : std::nullopt, by_email ? *by_email : std::nullopt);
    co_return later_of(later, by_address ? *by_address : std::nullopt);
}

asio::awaitable<std::optional<std::chrono::seconds>>
auth_service::exchange_retry_after(const request_context& call) {
    auto blocked = co_await deps_.counters.blocked_for(
        exchange_counter(call.remote), config_.exchange_failures_per_address, call.now);
    co_return blocked ? *blocked : std::nullopt;
}

asio::awaitable<std::optional<std::chrono::seconds>>
auth_service::impersonation_retry_after(customer_id actor, const request_context& call) {
    auto blocked = co_await deps_.counters.blocked_for(actor_counter(actor),
                                                       config_.impersonations_per_actor, call.now);
    co_return blocked ? *blocked : std::nullopt;
}

asio::awaitable<result<session_snapshot>> auth_service::authenticate(std::string_view access_token,
                                                                     const request_context& call) {
    auto found = co_await deps_.sessions.find_by_access_token(access_token, call.now);
    if (!found)
        co_return found.error();
    if (!*found)
        co_return errc::unauthenticated;
    co_return std::move(**found);
}

asio::awaitable<result<signed_in_session>> auth_service::refresh(std::string_view refresh_token,
                                                                 const request_context& call) {
    // Failed refreshes count with failed exchanges: guessing either is the same attack.
    const std::string by_address = exchange_counter(call.remote);
    const std::array<counted_key, 1> keys = {
        counted_key{by_address, config_.exchange_failures_per_address}};
    auto reserved = co_await deps_.counters.reserve(keys, call.now);
    if (!reserved)
        co_return errc::store_unavailable;
    if (!reserved->granted()) {
        audit_event event{.event = "refresh.throttled",
                          .reason = "too_many_failures",
                          .limit = "exchange_address"};
        co_await record_refusal(by_address, std::move(event), keys[0].limit.window, call);
        co_return errc::rate_limited;
    }
    auto tokens = co_await deps_.sessions.refresh(refresh_token, call.now, config_.session_ttl);
    if (!tokens) {
        if (tokens.error() == errc::refresh_token_reused) {
            audit_event event{.event = "refresh.reuse_detected",
                              .reason = reason_of(tokens.error())};
            co_await record_outcome(std::move(event), call);
        } else if (tokens.error() == errc::store_unavailable) {
            co_await release(keys, call);
        }
        co_return tokens.error();
    }
    co_await release(keys, call);
    auto session = co_await deps_.sessions.find_by_access_token(tokens->access_token, call.now);
    if (!session)
        co_return session.error();
    if (!*session)
        co_return errc::invalid_refresh_token;
    co_return signed_in_session{std::move(*tokens), std::move((*session)->data)};
}

asio::awaitable<result<void>> auth_service::logout(const session_snapshot& session,
                                                   const request_context& call) {
    auto revoked = co_await deps_.sessions.revoke(session.id);
    if (!revoked)
        co_return revoked.error();
    audit_event event{.event = "logout",
                      .customer_id = session.data.customer,
                      .profile_id = session.data.profile};
    stamp_impersonation(event, session.data);
    co_await record_outcome(std::move(event), call);
    // The impersonation ends with its session; an actor's end with theirs.
    if (session.data.impersonator) {
        auto ended = co_await end_with_reason(session.data.impersonator->impersonation_id,
                                              "impersonated_logout", call);
        if (!ended)
            co_return ended.error();
    } else {
        auto ended = co_await deps_.sessions.end_impersonations_of_actor(session.id, "actor_logout",
                                                                         call.now);
        if (!ended)
            co_return ended.error();
        co_await record_ended(*ended, call);
    }
    co_return result<void>();
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

asio::awaitable<result<session_snapshot>>
auth_service::switch_profile(const session_snapshot& session, profile_id target,
                             const request_context& call) {
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
        co_await record_denial(session, "profile.switch_denied", target, std::nullopt, why, call);
        co_return why;
    }
    auto switched = co_await deps_.sessions.switch_profile(session.id, target);
    if (!switched)
        co_return switched.error();
    if (!*switched)
        co_return errc::unauthenticated;
    audit_event event{.event = "profile.switched",
                      .customer_id = session.data.customer,
                      .profile_id = session.data.profile,
                      .target_profile_id = target};
    const error_code unrecorded = co_await record(std::move(event), call);
    if (unrecorded) {
        (void)co_await deps_.sessions.switch_profile(session.id, session.data.profile);
        co_return errc::audit_unavailable;
    }
    session_snapshot updated = session;
    updated.data.profile = target;
    co_return updated;
}

bool auth_service::impersonation_allowed(const directory& dir) const noexcept {
    return config_.impersonation_enabled && dir.impersonation_enabled();
}

asio::awaitable<result<std::string>>
auth_service::impersonate_coworker(const session_snapshot& session, profile_id target,
                                   std::optional<std::string> reason, const request_context& call) {
    auto dir = dir_.load();
    error_code why = impersonation_allowed(*dir)
                         ? check_coworker_impersonation(*dir, session.data, target)
                         : error_code(errc::impersonation_disabled);
    if (why) {
        co_await record_denial(session, "impersonation.denied", target, std::nullopt, why, call);
        co_return why;
    }
    auto token = co_await issue_impersonation_token(session, *dir->find_profile(target), false,
                                                    std::move(reason), call);
    co_return token;
}

asio::awaitable<result<std::string>>
auth_service::impersonate_customer(const session_snapshot& session, customer_id target,
                                   std::optional<std::string> reason, const request_context& call) {
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
    if (why) {
        co_await record_denial(session, "impersonation.denied", std::nullopt, target, why, call);
        co_return why;
    }
    auto token = co_await issue_impersonation_token(
        session, *dir->profiles_of_customer(target).front(), true, std::move(reason), call);
    co_return token;
}

asio::awaitable<result<std::string>>
auth_service::issue_impersonation_token(const session_snapshot& actor, const profile& target,
                                        bool as_operator, std::optional<std::string> reason,
                                        const request_context& call) {
    // Counted before anything is made, in one step with the check; given back if nothing is
    // handed out.
    const std::string by_actor = actor_counter(actor.data.customer);
    const std::array<counted_key, 1> keys = {
        counted_key{by_actor, config_.impersonations_per_actor}};
    auto reserved = co_await deps_.counters.reserve(keys, call.now);
    if (!reserved)
        co_return errc::store_unavailable;
    if (!reserved->granted()) {
        // One line per actor and window, then a summary with the count.
        audit_event event{.event = "impersonation.denied",
                          .customer_id = actor.data.customer,
                          .profile_id = actor.data.profile,
                          .target_profile_id =
                              as_operator ? std::nullopt : std::optional<std::int64_t>(target.id),
                          .target_customer_id = as_operator
                                                    ? std::optional<std::int64_t>(target.customer)
                                                    : std::nullopt,
                          .reason = reason_of(errc::rate_limited),
                          .limit = "actor"};
        co_await record_refusal(by_actor, std::move(event), keys[0].limit.window, call);
        co_return errc::rate_limited;
    }
    std::string jti = random_jti();
    impersonation_grant grant{
        .actor =
            impersonator_info{
                .customer = actor.data.customer,
                .profile = as_operator ? std::nullopt : std::optional(actor.data.profile),
                .is_operator = as_operator,
                .actor_session = actor.id,
                .impersonation_id = jti,
                .reason = reason,
            },
        .target = target.id,
        .target_customer = target.customer,
        .issued_at = call.now,
        .expires_at = call.now + config_.impersonation_token_ttl,
    };
    const std::int64_t iat = unix_seconds(call.now);
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
    auto added = co_await deps_.sessions.add_grant(jti, grant, call.now);
    if (!added) {
        co_await release(keys, call);
        co_return added.error();
    }
    // The token leaves only after its audit line is written; otherwise the grant is withdrawn.
    audit_event event{.event = "impersonation.issued",
                      .customer_id = actor.data.customer,
                      .profile_id = actor.data.profile,
                      .target_profile_id = target.id,
                      .target_customer_id = target.customer,
                      .jti = jti,
                      .impersonation_id = jti,
                      .impersonation_reason = reason};
    const error_code unrecorded = co_await record(std::move(event), call);
    if (unrecorded) {
        // Withdrawn and ended on the record; its end cannot be written either.
        (void)co_await deps_.sessions.end_impersonation(jti, "not_redeemed", call.now);
        co_await release(keys, call);
        co_return errc::audit_unavailable;
    }
    co_return token;
}

asio::awaitable<result<signed_in_session>> auth_service::exchange(std::string_view token,
                                                                  const request_context& call) {
    const std::string by_address = exchange_counter(call.remote);
    const std::array<counted_key, 1> keys = {
        counted_key{by_address, config_.exchange_failures_per_address}};
    auto reserved = co_await deps_.counters.reserve(keys, call.now);
    if (!reserved)
        co_return errc::store_unavailable;
    if (!reserved->granted()) {
        audit_event event{.event = "impersonation.throttled",
                          .reason = "too_many_failures",
                          .limit = "exchange_address"};
        co_await record_refusal(by_address, std::move(event), keys[0].limit.window, call);
        co_return errc::rate_limited;
    }

    auto dir = dir_.load();
    error_code why;
    std::optional<std::string> why_text; // the audit reason, when it is not why's
    std::optional<std::string> jti_text;
    std::optional<impersonation_grant> grant;
    const profile* target = nullptr;
    if (!impersonation_allowed(*dir)) {
        why = errc::impersonation_disabled;
    } else if (auto claims = signer_.load()->verify(token); !claims) {
        why = claims.error();
    } else if (auto ec = check_registered_claims(*claims, token_issuer, impersonation_audience,
                                                 call.now)) {
        why = ec;
    } else {
        const auto* jti = claims->if_contains("jti");
        const auto* sub = claims->if_contains("sub");
        if (!jti || !jti->is_string() || !sub || !sub->is_string()) {
            why = errc::missing_claim;
        } else {
            jti_text.emplace(jti->get_string());
            auto redeemed = co_await deps_.sessions.redeem_grant(*jti_text, call.now);
            if (!redeemed) {
                co_await release(keys, call);
                co_return redeemed.error();
            }
            grant = std::move(*redeemed);
            auto target_id = parse_decimal_id(sub->get_string());
            target = target_id ? dir->find_profile(*target_id) : nullptr;
            if (!grant)
                why = errc::invalid_impersonation_token;
            else if (grant->withdrawn_because) {
                // Withdrawn by a reload (actor_lost_right) or ended by its target, an operator,
                // the actor's logout: the exchange says which.
                why = errc::invalid_impersonation_token;
                why_text = grant->withdrawn_because;
            } else if (!target || target->id != grant->target)
                why = errc::profile_not_found;
            else if (!actor_may_impersonate(*dir, grant->actor, target->id))
                why = errc::actor_lost_right; // the directory changed since the token was issued
        }
    }
    if (!why) {
        // The issuing session must still be live: logging out withdraws unredeemed tokens.
        auto live = co_await deps_.sessions.is_live(grant->actor.actor_session, call.now);
        if (!live) {
            co_await release(keys, call);
            co_return live.error();
        }
        if (!*live)
            why = errc::unauthenticated;
    }
    if (why) {
        // The reservation stays: it is the failure's count.
        const std::string reason = why_text ? *why_text : reason_of(why);
        audit_event event{.event = "impersonation.exchange_failed",
                          .jti = jti_text,
                          .impersonation_id = grant ? jti_text : std::nullopt,
                          .reason = reason};
        co_await record_outcome(std::move(event), call);
        // A token consumed by this failed exchange can never start: its record ends now.
        if (grant && !grant->withdrawn_because) {
            const std::string end_reason =
                why == errc::actor_lost_right ? reason : std::string("not_redeemed");
            (void)co_await end_with_reason(*jti_text, end_reason, call);
        }
        co_return errc::invalid_impersonation_token;
    }
    co_await release(keys, call);

    const auto cap = call.now + config_.impersonation_session_ttl;
    session_data data = impersonated_session_data(*grant, target->customer, call.now, cap);
    auto tokens = co_await deps_.sessions.create(data, call.now, config_.session_ttl);
    if (!tokens)
        co_return tokens.error();
    const session_id made = tokens->id;
    auto started = co_await deps_.sessions.start_impersonation(*jti_text, made, call.now, cap);
    if (!started || !*started) {
        // Ended (cancelled by its target, say) while this exchange ran.
        (void)co_await deps_.sessions.revoke(made);
        if (!started)
            co_return started.error();
        audit_event event{.event = "impersonation.exchange_failed",
                          .jti = jti_text,
                          .impersonation_id = jti_text,
                          .reason = "ended"};
        co_await record_outcome(std::move(event), call);
        co_return errc::invalid_impersonation_token;
    }
    audit_event event{.event = "impersonation.exchanged",
                      .customer_id = grant->actor.customer,
                      .profile_id = grant->actor.profile,
                      .target_profile_id = target->id,
                      .target_customer_id = target->customer,
                      .jti = jti_text,
                      .impersonation_id = jti_text,
                      .impersonation_reason = grant->actor.reason};
    const error_code unrecorded = co_await record(std::move(event), call);
    if (unrecorded) {
        // Never started for the client: undone, and ended on the record without a line (the
        // sink is failing).
        (void)co_await deps_.sessions.end_impersonation(*jti_text, "not_redeemed", call.now);
        (void)co_await deps_.sessions.revoke(made);
        co_return errc::audit_unavailable;
    }
    co_return signed_in_session{std::move(*tokens), std::move(data)};
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
    if (!actor_may_impersonate(dir, *s.impersonator, s.profile))
        return "impersonation_right_lost";
    return std::nullopt;
}

} // namespace

asio::awaitable<result<std::size_t>>
auth_service::reload(std::shared_ptr<const directory> dir,
                     std::shared_ptr<const token_signer> signer, const request_context& call) {
    const bool impersonation_on = impersonation_allowed(*dir);
    // One scrypt, once per reload: the new directory's costs may be higher.
    dummy_hash_.store(make_dummy_hash(dir.get()));
    dir_.store(dir);
    if (signer)
        signer_.store(std::move(signer));
    std::vector<std::pair<session_snapshot, std::string_view>> reasons;
    std::function<bool(const session_snapshot&)> should_end = [&](const session_snapshot& s) {
        auto why = reason_to_end(*dir, s.data, impersonation_on);
        if (why)
            reasons.emplace_back(s, *why);
        return why.has_value();
    };
    auto ended = co_await deps_.sessions.revoke_matching(std::move(should_end));
    if (!ended)
        co_return ended.error();
    for (const auto& [s, why] : reasons) {
        audit_event event{.event = "session.ended",
                          .customer_id = s.data.customer,
                          .profile_id = s.data.profile,
                          .reason = std::string(why)};
        stamp_impersonation(event, s.data);
        co_await record_outcome(std::move(event), call);
        // Each ended session ends its impersonation, or those it was the actor of.
        const bool removed = why == "customer_removed" || why == "profile_removed";
        const std::string end_reason = removed ? "customer_removed" : "actor_lost_right";
        if (s.data.impersonator) {
            (void)co_await end_with_reason(s.data.impersonator->impersonation_id, end_reason, call);
        } else {
            auto of_actor =
                co_await deps_.sessions.end_impersonations_of_actor(s.id, end_reason, call.now);
            if (of_actor)
                co_await record_ended(*of_actor, call);
        }
    }
    // Unredeemed tokens of actors who lost the right are withdrawn; their exchange would fail
    // anyway, but the store then remembers why until the token expires.
    std::function<bool(const impersonation_grant&)> lost_right = [&](const impersonation_grant& g) {
        return !actor_may_impersonate(*dir, g.actor, g.target);
    };
    const std::string because = reason_of(errc::actor_lost_right);
    auto withdrawn =
        co_await deps_.sessions.withdraw_grants(std::move(lost_right), because, call.now);
    if (!withdrawn)
        co_return withdrawn.error();
    for (const auto& [jti, g] : *withdrawn)
        (void)co_await end_with_reason(jti, because, call);
    co_return ended->size();
}

asio::awaitable<bool> auth_service::ready() {
    if (!deps_.audit.healthy())
        co_return false;
    const bool reachable = co_await deps_.sessions.reachable();
    co_return reachable;
}

asio::awaitable<void> auth_service::record_ended(const std::vector<impersonation_record>& ended,
                                                 const request_context& call) {
    for (const impersonation_record& r : ended)
        co_await record_outcome(ended_event(r), call);
}

asio::awaitable<result<void>> auth_service::end_with_reason(std::string_view id,
                                                            std::string end_reason,
                                                            const request_context& call) {
    auto ended = co_await deps_.sessions.end_impersonation(id, std::move(end_reason), call.now);
    if (!ended)
        co_return ended.error();
    if (*ended)
        co_await record_outcome(ended_event(**ended), call);
    co_return result<void>();
}

asio::awaitable<std::size_t> auth_service::end_expired_impersonations(clock_type::time_point now) {
    auto ended = co_await deps_.sessions.expire_impersonations(now);
    if (!ended)
        co_return 0;
    const request_context sweep{.remote = "", .now = now};
    co_await record_ended(*ended, sweep);
    co_return ended->size();
}

namespace {

bool is_operator(const directory& dir, const session_snapshot& session) {
    const customer* caller = dir.find_customer(session.data.customer);
    return !session.data.impersonator && caller && caller->is_operator;
}

} // namespace

asio::awaitable<result<std::vector<impersonation_record>>>
auth_service::impersonations_of(const session_snapshot& session, const request_context& call) {
    if (session.data.impersonator)
        co_return errc::forbidden_impersonated_caller;
    (void)co_await end_expired_impersonations(call.now);
    const auto dir = dir_.load();
    impersonation_query query{.target_customer = session.data.customer,
                              .include_operator_actors = dir->operator_impersonations_visible(),
                              .limit = std::numeric_limits<std::size_t>::max(),
                              .ended_limit = 50};
    auto listed = co_await deps_.sessions.list_impersonations(query);
    if (!listed)
        co_return listed.error();
    co_return std::move(*listed);
}

asio::awaitable<result<void>> auth_service::end_own_impersonation(const session_snapshot& session,
                                                                  std::string_view id,
                                                                  const request_context& call) {
    if (session.data.impersonator)
        co_return errc::forbidden_impersonated_caller;
    auto found = co_await deps_.sessions.find_impersonation(id);
    if (!found)
        co_return found.error();
    const auto dir = dir_.load();
    // Another customer's (or a hidden operator's) impersonation is not disclosed.
    if (!*found || (*found)->target_customer != session.data.customer ||
        ((*found)->actor.is_operator && !dir->operator_impersonations_visible()))
        co_return errc::impersonation_not_found;
    auto ended = co_await end_with_reason(id, "target_ended", call);
    co_return ended;
}

asio::awaitable<result<std::vector<impersonation_record>>>
auth_service::all_impersonations(const session_snapshot& session,
                                 std::optional<impersonation_state> state, std::size_t limit,
                                 const request_context& call) {
    if (!is_operator(*dir_.load(), session))
        co_return errc::forbidden_not_operator;
    (void)co_await end_expired_impersonations(call.now);
    impersonation_query query{
        .state = state, .limit = limit, .ended_limit = std::numeric_limits<std::size_t>::max()};
    auto listed = co_await deps_.sessions.list_impersonations(query);
    if (!listed)
        co_return listed.error();
    co_return std::move(*listed);
}

asio::awaitable<result<void>> auth_service::end_impersonation(const session_snapshot& session,
                                                              std::string_view id,
                                                              const request_context& call) {
    if (!is_operator(*dir_.load(), session))
        co_return errc::forbidden_not_operator;
    auto found = co_await deps_.sessions.find_impersonation(id);
    if (!found)
        co_return found.error();
    if (!*found)
        co_return errc::impersonation_not_found;
    auto ended = co_await end_with_reason(id, "operator_ended", call);
    co_return ended;
}

asio::awaitable<result<std::size_t>>
auth_service::revoke_customer_sessions(const session_snapshot& session, customer_id target,
                                       const request_context& call) {
    const auto dir = dir_.load();
    if (!is_operator(*dir, session))
        co_return errc::forbidden_not_operator;
    if (!dir->find_customer(target))
        co_return errc::customer_not_found;
    std::function<bool(const session_snapshot&)> of_customer = [&](const session_snapshot& s) {
        return s.data.customer == target;
    };
    auto ended = co_await deps_.sessions.revoke_matching(std::move(of_customer));
    if (!ended)
        co_return ended.error();
    std::vector<session_id> actors;
    for (const session_snapshot& s : *ended)
        if (!s.data.impersonator)
            actors.push_back(s.id);
    // The sessions derived from them: impersonations the customer was making.
    std::function<bool(const session_snapshot&)> derived = [&](const session_snapshot& s) {
        return s.data.impersonator && std::find(actors.begin(), actors.end(),
                                                s.data.impersonator->actor_session) != actors.end();
    };
    auto derived_ended = co_await deps_.sessions.revoke_matching(std::move(derived));
    if (!derived_ended)
        co_return derived_ended.error();
    const std::size_t count = ended->size() + derived_ended->size();
    audit_event event{.event = "sessions.revoked",
                      .customer_id = session.data.customer,
                      .profile_id = session.data.profile,
                      .target_customer_id = target,
                      .count = static_cast<std::int64_t>(count)};
    co_await record_outcome(std::move(event), call);
    for (const session_snapshot& s : *ended) {
        if (s.data.impersonator) {
            (void)co_await end_with_reason(s.data.impersonator->impersonation_id, "operator_ended",
                                           call);
        } else {
            auto of_actor = co_await deps_.sessions.end_impersonations_of_actor(
                s.id, "operator_ended", call.now);
            if (of_actor)
                co_await record_ended(*of_actor, call);
        }
    }
    co_return count;
}

asio::awaitable<result<boost::json::array>>
auth_service::audit_events(const session_snapshot& session, std::size_t limit,
                           audit_category category) {
    auto dir = dir_.load();
    const customer* caller = dir->find_customer(session.data.customer);
    if (session.data.impersonator || !caller || !caller->is_operator)
        co_return errc::forbidden_not_operator;
    auto events = co_await deps_.audit.list_recent(limit, category);
    co_return events;
}

asio::awaitable<void> auth_service::record_denial(const session_snapshot& session,
                                                  std::string_view event,
                                                  std::optional<profile_id> target_profile,
                                                  std::optional<customer_id> target_customer,
                                                  error_code why, const request_context& call) {
    audit_event denial{.event = std::string(event),
                       .customer_id = session.data.customer,
                       .profile_id = session.data.profile,
                       .target_profile_id = target_profile,
                       .target_customer_id = target_customer,
                       .reason = reason_of(why)};
    stamp_impersonation(denial, session.data);
    co_await record_outcome(std::move(denial), call);
}

} // namespace portal_auth
