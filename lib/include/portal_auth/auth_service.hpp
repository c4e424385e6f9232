// The domain: sign-in, sessions, profiles and impersonation, over the directory, the token
// signer, a session repository, rate-limit counters, an audit sink and a password verifier.
// Every operation that touches something slow or remote (scrypt, the store, the sink) is an
// awaitable; with the in-memory store and audit_log only scrypt leaves the caller's thread.
#pragma once

#include <portal_auth/audit_log.hpp>
#include <portal_auth/directory.hpp>
#include <portal_auth/error.hpp>
#include <portal_auth/http_types.hpp>
#include <portal_auth/password_verifier.hpp>
#include <portal_auth/store.hpp>
#include <portal_auth/token_signer.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/json/array.hpp>
#include <boost/system/result.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace portal_auth {

struct service_config {
    std::chrono::seconds session_ttl{3600};
    std::chrono::seconds impersonation_token_ttl{60};
    std::chrono::seconds impersonation_session_ttl{1800};
    // Off: both impersonation endpoints answer 403 and the exchange 401. The directory's
    // "impersonationEnabled": false has the same effect.
    bool impersonation_enabled = true;
    // Failed logins, counted against three keys at once; beyond any of them:
    // errc::rate_limited (429). The hard limit is the pair, so that nobody can lock a customer
    // out from elsewhere; the e-mail's is a ceiling against guessing from many addresses. A
    // successful login clears the pair's and the e-mail's counts. max = 0 turns a limit off.
    rate_limit login_failures_per_email_and_address{5, std::chrono::seconds(300)};
    rate_limit login_failures_per_email{50, std::chrono::seconds(300)};
    rate_limit login_failures_per_address{20, std::chrono::seconds(300)};
    // Failed impersonation-token exchanges and failed refreshes, together, per address.
    rate_limit exchange_failures_per_address{20, std::chrono::seconds(60)};
    // Impersonation tokens issued per actor (customer).
    rate_limit impersonations_per_actor{30, std::chrono::seconds(60)};
};

class metrics;

// What the service works on; each must outlive it.
struct service_dependencies {
    session_repository& sessions;
    rate_limit_store& counters;
    audit_sink& audit;
    password_verifier& passwords;
    metrics* counts = nullptr; // optional: login, impersonation and audit-line counters
};

namespace detail {
class refusal_journal;
}

inline constexpr std::string_view token_issuer = "portal-auth";
inline constexpr std::string_view impersonation_audience = "portal-auth/login";

// A session as handed to the client: its tokens and who it is.
struct signed_in_session {
    issued_tokens tokens;
    session_data data;
};

// One row of the profiles listing.
struct profile_entry {
    const profile* entry = nullptr;
    const customer* owner = nullptr;
    const team* in_team = nullptr;
    bool is_current = false;
    bool is_own = false;
    bool can_impersonate = false;
};

struct profile_listing {
    profile_id current = 0;
    std::vector<profile_entry> profiles;         // sorted by profile id
    std::shared_ptr<const directory> keep_alive; // the directory the pointers above point into
};

// Whether the session (on its current profile) may impersonate `target` under the coworker
// rules. Success, or forbidden_chain / profile_not_found / forbidden_role /
// forbidden_operator_target. The one place these rules live.
error_code check_coworker_impersonation(const directory& dir, const session_data& actor,
                                        profile_id target);

// Thread-safe: every member may be called concurrently, from coroutines on any executors.
// Awaitables complete on the caller's executor. Errors are the errc values documented per call,
// plus errc::store_unavailable wherever the store is touched; a credential (session, token)
// whose audit event could not be recorded is undone and answered with errc::audit_unavailable.
class auth_service {
public:
    auth_service(service_config config, std::shared_ptr<const directory> dir,
                 std::shared_ptr<const token_signer> signer, service_dependencies deps);

    ~auth_service();
    auth_service(const auth_service&) = delete;
    auth_service& operator=(const auth_service&) = delete;

    // errc::invalid_credentials for an unknown e-mail or a wrong password; both take one scrypt
    // on the password verifier. errc::rate_limited while throttled: the attempt is reserved
    // against the three login limits, atomically with their check, before it is queued, and
    // given back when the password is right (or never checked); errc::overloaded when the
    // hashing queue is full (audited as login.shed, at most one line a second, with the count
    // of sheds since the previous line).
    boost::asio::awaitable<boost::system::result<signed_in_session>>
    login(std::string_view email, std::string_view password, const request_context& call);

    // While login attempts for this e-mail or from this address are throttled: how long until
    // the next may be made.
    boost::asio::awaitable<std::optional<std::chrono::seconds>>
    login_retry_after(std::string_view email, const request_context& call);

    // While failed exchanges and refreshes from this address are throttled: how long until the
    // next may be made.
    boost::asio::awaitable<std::optional<std::chrono::seconds>>
    exchange_retry_after(const request_context& call);

    // While the actor may not be issued more impersonation tokens: how long until it may.
    boost::asio::awaitable<std::optional<std::chrono::seconds>>
    impersonation_retry_after(customer_id actor, const request_context& call);

    // The live session of a bearer access token, or errc::unauthenticated.
    boost::asio::awaitable<boost::system::result<session_snapshot>>
    authenticate(std::string_view access_token, const request_context& call);

    // errc::invalid_refresh_token, or errc::refresh_token_reused (the session is revoked);
    // errc::rate_limited while failures from this address are throttled.
    boost::asio::awaitable<boost::system::result<signed_in_session>>
    refresh(std::string_view refresh_token, const request_context& call);

    boost::asio::awaitable<boost::system::result<void>> logout(const session_snapshot& session,
                                                               const request_context& call);

    profile_listing list_profiles(const session_snapshot& session) const;

    // The updated session on success.
    boost::asio::awaitable<boost::system::result<session_snapshot>>
    switch_profile(const session_snapshot& session, profile_id target, const request_context& call);

    // A signed single-use impersonation token for a coworker's profile. `reason` (already
    // validated by the caller) goes with the impersonation everywhere it is recorded.
    boost::asio::awaitable<boost::system::result<std::string>>
    impersonate_coworker(const session_snapshot& session, profile_id target,
                         std::optional<std::string> reason, const request_context& call);

    // Operators only: a token for the target customer's lowest-id profile.
    boost::asio::awaitable<boost::system::result<std::string>>
    impersonate_customer(const session_snapshot& session, customer_id target,
                         std::optional<std::string> reason, const request_context& call);

    // The customer's side: the impersonations of the caller (every one not ended, and the last
    // 50 ended), newest first; without operators' when the directory hides them.
    // errc::forbidden_impersonated_caller for an impersonated session.
    boost::asio::awaitable<boost::system::result<std::vector<impersonation_record>>>
    impersonations_of(const session_snapshot& session, const request_context& call);

    // Ends one of the caller's impersonations (endReason target_ended). Success also when it had
    // ended already (nothing is written then); errc::impersonation_not_found when it is unknown
    // or not the caller's; errc::forbidden_impersonated_caller.
    boost::asio::awaitable<boost::system::result<void>>
    end_own_impersonation(const session_snapshot& session, std::string_view id,
                          const request_context& call);

    // Operators only (errc::forbidden_not_operator): every customer's impersonations.
    boost::asio::awaitable<boost::system::result<std::vector<impersonation_record>>>
    all_impersonations(const session_snapshot& session, std::optional<impersonation_state> state,
                       std::size_t limit, const request_context& call);

    // Operators only: ends or cancels one (endReason operator_ended);
    // errc::impersonation_not_found.
    boost::asio::awaitable<boost::system::result<void>>
    end_impersonation(const session_snapshot& session, std::string_view id,
                      const request_context& call);

    // Operators only: a forced sign-out of a customer. Ends every session of the customer and
    // every session derived from them; returns how many ended. errc::customer_not_found.
    boost::asio::awaitable<boost::system::result<std::size_t>>
    revoke_customer_sessions(const session_snapshot& session, customer_id target,
                             const request_context& call);

    // Writes the end of every impersonation that time has ended (endReason expired, or
    // not_redeemed for a token that expired unused); returns how many. The owner calls it
    // periodically (portal-auth: every 10 s); listings call it first.
    boost::asio::awaitable<std::size_t> end_expired_impersonations(clock_type::time_point now);

    // Redeems an impersonation token for a session as its target. The issuing rules are applied
    // again to the directory in force: errc::invalid_impersonation_token (audited with the
    // reason, actor_lost_right among them); errc::rate_limited while failures from this address
    // are throttled.
    boost::asio::awaitable<boost::system::result<signed_in_session>>
    exchange(std::string_view token, const request_context& call);

    // Operators only: the newest audit events of the category.
    boost::asio::awaitable<boost::system::result<boost::json::array>>
    audit_events(const session_snapshot& session, std::size_t limit, audit_category category);

    // Throttled attempts are audited as the first refusal per key and window, then one summary
    // line with the count when the window ends. Writes the summaries of windows ended by `now`
    // (or of every open window, with `close_all`: at shutdown); the owner calls it periodically
    // (portal-auth: every second). A refusal also writes those that are due.
    boost::asio::awaitable<void> write_throttle_summaries(clock_type::time_point now,
                                                          bool close_all = false);

    std::shared_ptr<const directory> current_directory() const { return dir_.load(); }

    // Readiness: the audit sink is healthy and the store reachable.
    boost::asio::awaitable<bool> ready();

    // Reload: switches to a new directory and, when given, new signing keys. Sessions survive,
    // except those whose customer or profile is gone and impersonated sessions whose actor may
    // no longer impersonate that target (demoted, removed, impersonation disabled); each of
    // those is ended and audited as "session.ended" with the reason. Returns how many ended.
    boost::asio::awaitable<boost::system::result<std::size_t>>
    reload(std::shared_ptr<const directory> dir, std::shared_ptr<const token_signer> signer,
           const request_context& call);

    const service_config& config() const noexcept { return config_; }

    // Audit events that could not be recorded and did not change their answer (denials,
    // failures, logouts), since construction: for metrics and alerts.
    std::uint64_t unrecorded_audit_events() const noexcept {
        return unrecorded_events_.load(std::memory_order_relaxed);
    }

    // The scrypt cost unknown e-mails are checked at: the highest in the current directory.
    scrypt_params dummy_hash_params() const;

private:
    bool impersonation_allowed(const directory& dir) const noexcept;
    boost::asio::awaitable<boost::system::result<std::string>>
    issue_impersonation_token(const session_snapshot& actor, const profile& target,
                              bool as_operator, std::optional<std::string> reason,
                              const request_context& call);
    void count_event(std::string_view event, bool recorded) const;
    // Records an event with the caller's address; the error is the sink's.
    boost::asio::awaitable<error_code> record(audit_event event, const request_context& call);
    // Records an event whose failure changes no answer (denials, failures, logouts).
    boost::asio::awaitable<void> record_outcome(audit_event event, const request_context& call);
    boost::asio::awaitable<void> record_denial(const session_snapshot& session,
                                               std::string_view event,
                                               std::optional<profile_id> target_profile,
                                               std::optional<customer_id> target_customer,
                                               error_code why, const request_context& call);
    boost::asio::awaitable<void> record_shed(const request_context& call);
    // One impersonation.ended line per record.
    boost::asio::awaitable<void> record_ended(const std::vector<impersonation_record>& ended,
                                              const request_context& call);
    boost::asio::awaitable<boost::system::result<void>>
    end_with_reason(std::string_view id, std::string end_reason, const request_context& call);

    service_config config_;
    std::atomic<std::shared_ptr<const directory>> dir_;
    std::atomic<std::shared_ptr<const token_signer>> signer_;
    service_dependencies deps_;
    boost::asio::awaitable<void> record_refusal(std::string_view key, audit_event event,
                                                std::chrono::seconds window,
                                                const request_context& call);
    boost::asio::awaitable<void> release(std::span<const counted_key> keys,
                                         const request_context& call);

    std::unique_ptr<detail::refusal_journal> refusals_;
    // Verified for unknown e-mails so that both failures cost the same; rebuilt on reload.
    std::atomic<std::shared_ptr<const password_hash>> dummy_hash_;
    std::atomic<std::int64_t> sheds_since_line_{0};
    std::atomic<std::int64_t> shed_line_second_{0};
    std::atomic<std::uint64_t> unrecorded_events_{0};
};

} // namespace portal_auth
