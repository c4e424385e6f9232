// What the service does when something it depends on fails or overflows: the hashing queue is
// full (503 overloaded, login.shed), the audit sink cannot write (credentials undone, 503
// audit-unavailable), the store fails (503 store-unavailable). Fakes stand in for the sink and
// the store; everything else is real.
#include <portal_auth/auth_service.hpp>
#include <portal_auth/memory_store.hpp>
#include <portal_auth/password_verifier.hpp>
#include <portal_auth/request_handler.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/json/parse.hpp>
#include <boost/test/unit_test.hpp>

#include <future>
#include <optional>
#include <string>
#include <thread>

#include "test_support.hpp"

using namespace portal_auth;
namespace asio = boost::asio;
namespace http = boost::beast::http;
using namespace std::chrono_literals;

namespace {

const request_context at_start{"127.0.0.1:5000",
                               clock_type::time_point(std::chrono::hours(500000))};

// The real audit log, or ENOSPC for every event while `failing`.
class switchable_audit final : public audit_sink {
public:
    bool failing = false;
    audit_log log;
    std::optional<audit_event> last_refused;

    asio::awaitable<error_code> record(audit_event event, clock_type::time_point now) override {
        if (failing) {
            last_refused = event;
            co_return make_error_code(boost::system::errc::no_space_on_device);
        }
        co_return log.write(event, now);
    }
    asio::awaitable<boost::json::array> list_recent(std::size_t limit,
                                                    audit_category category) override {
        co_return log.recent(limit, category);
    }
};

// The memory store, or errc::store_unavailable for every session call while `failing` and
// every counter call while `counters_failing`.
class switchable_store final : public session_repository, public rate_limit_store {
public:
    bool failing = false;
    bool counters_failing = false;
    bool withdraws_nothing = false; // as a store another instance has not yet reached
    memory_store memory;

    asio::awaitable<store_result<attempt_reservation>>
    reserve(std::span<const counted_key> keys, clock_type::time_point now) override {
        if (counters_failing)
            co_return errc::store_unavailable;
        auto reserved = co_await memory.reserve(keys, now);
        co_return reserved;
    }
    asio::awaitable<store_result<void>> release(std::span<const counted_key> keys,
                                                clock_type::time_point at) override {
        if (counters_failing)
            co_return errc::store_unavailable;
        auto released = co_await memory.release(keys, at);
        co_return released;
    }
    asio::awaitable<store_result<std::optional<std::chrono::seconds>>>
    blocked_for(std::string_view key, rate_limit limit, clock_type::time_point now) override {
        if (counters_failing)
            co_return errc::store_unavailable;
        auto blocked = co_await memory.blocked_for(key, limit, now);
        co_return blocked;
    }
    asio::awaitable<store_result<void>> reset(std::string_view key) override {
        if (counters_failing)
            co_return errc::store_unavailable;
        auto forgotten = co_await memory.reset(key);
        co_return forgotten;
    }

    asio::awaitable<store_result<issued_tokens>>
    create(session_data data, clock_type::time_point now, std::chrono::seconds ttl) override {
        if (failing)
            co_return errc::store_unavailable;
        co_return co_await memory.create(std::move(data), now, ttl);
    }
    asio::awaitable<store_result<std::optional<session_snapshot>>>
    find_by_access_token(std::string_view token, clock_type::time_point now) override {
        if (failing)
            co_return errc::store_unavailable;
        auto found = co_await memory.find_by_access_token(token, now);
        co_return found;
    }
    asio::awaitable<store_result<bool>> is_live(session_id id,
                                                clock_type::time_point now) override {
        if (failing)
            co_return errc::store_unavailable;
        auto live = co_await memory.is_live(id, now);
        co_return live;
    }
    asio::awaitable<store_result<issued_tokens>>
    refresh(std::string_view token, clock_type::time_point now, std::chrono::seconds ttl) override {
        if (failing)
            co_return errc::store_unavailable;
        auto tokens = co_await memory.refresh(token, now, ttl);
        co_return tokens;
    }
    asio::awaitable<store_result<bool>> switch_profile(session_id id, profile_id p) override {
        if (failing)
            co_return errc::store_unavailable;
        auto switched = co_await memory.switch_profile(id, p);
        co_return switched;
    }
    asio::awaitable<store_result<bool>> revoke(session_id id) override {
        if (failing)
            co_return errc::store_unavailable;
        auto revoked = co_await memory.revoke(id);
        co_return revoked;
    }
    asio::awaitable<store_result<void>> add_grant(std::string jti, impersonation_grant grant,
                                                  clock_type::time_point now) override {
        if (failing)
            co_return errc::store_unavailable;
        auto added = co_await memory.add_grant(std::move(jti), std::move(grant), now);
        co_return added;
    }
    asio::awaitable<store_result<std::optional<impersonation_grant>>>
    redeem_grant(std::string_view jti, clock_type::time_point now) override {
        if (failing)
            co_return errc::store_unavailable;
        auto grant = co_await memory.redeem_grant(jti, now);
        co_return grant;
    }
    asio::awaitable<store_result<std::vector<std::pair<std::string, impersonation_grant>>>>
    withdraw_grants(std::function<bool(const impersonation_grant&)> should_withdraw,
                    std::string because, clock_type::time_point now) override {
        if (failing)
            co_return errc::store_unavailable;
        if (withdraws_nothing)
            co_return std::vector<std::pair<std::string, impersonation_grant>>{};
        auto withdrawn =
            co_await memory.withdraw_grants(std::move(should_withdraw), std::move(because), now);
        co_return withdrawn;
    }
    asio::awaitable<store_result<bool>> start_impersonation(std::string_view id, session_id session,
                                                            clock_type::time_point started_at,
                                                            clock_type::time_point cap) override {
        if (failing)
            co_return errc::store_unavailable;
        auto started = co_await memory.start_impersonation(id, session, started_at, cap);
        co_return started;
    }
    asio::awaitable<store_result<std::optional<impersonation_record>>>
    end_impersonation(std::string_view id, std::string reason,
                      clock_type::time_point now) override {
        if (failing)
            co_return errc::store_unavailable;
        auto ended = co_await memory.end_impersonation(id, std::move(reason), now);
        co_return ended;
    }
    asio::awaitable<store_result<std::vector<impersonation_record>>>
    end_impersonations_of_actor(session_id actor, std::string reason,
                                clock_type::time_point now) override {
        if (failing)
            co_return errc::store_unavailable;
        auto ended = co_await memory.end_impersonations_of_actor(actor, std::move(reason), now);
        co_return ended;
    }
    asio::awaitable<store_result<std::vector<impersonation_record>>>
    expire_impersonations(clock_type::time_point now) override {
        if (failing)
            co_return errc::store_unavailable;
        auto ended = co_await memory.expire_impersonations(now);
        co_return ended;
    }
    asio::awaitable<store_result<std::optional<impersonation_record>>>
    find_impersonation(std::string_view id) override {
        if (failing)
            co_return errc::store_unavailable;
        auto found = co_await memory.find_impersonation(id);
        co_return found;
    }
    asio::awaitable<store_result<std::vector<impersonation_record>>>
    list_impersonations(impersonation_query query) override {
        if (failing)
            co_return errc::store_unavailable;
        auto listed = co_await memory.list_impersonations(query);
        co_return listed;
    }
    asio::awaitable<bool> reachable() override { co_return !failing; }
    asio::awaitable<store_result<std::vector<session_snapshot>>>
    revoke_matching(std::function<bool(const session_snapshot&)> should_end) override {
        if (failing)
            co_return errc::store_unavailable;
        auto ended = co_await memory.revoke_matching(std::move(should_end));
        co_return ended;
    }
};

// The service over the switchable fakes, with a real one-thread hashing pool.
struct faulty_world {
    explicit faulty_world(std::size_t hash_queue = 64)
        : passwords(hashing.get_executor(), hash_queue),
          service({}, test::test_directory(),
                  std::make_shared<const token_signer>(
                      std::vector<signing_key>{make_random_signing_key("k")}),
                  {.sessions = store, .counters = store, .audit = audit, .passwords = passwords}),
          handler(service) {}

    switchable_store store;
    switchable_audit audit;
    asio::thread_pool hashing{1};
    password_verifier passwords;
    auth_service service;
    request_handler handler;

    // Alice's access token, from a login made while everything works.
    std::string alice() {
        auto session = test::run_sync(service.login("alice@acme.test", "alice-pw", at_start));
        BOOST_TEST_REQUIRE(session.has_value());
        return session->tokens.access_token;
    }

    http_response get(std::string_view target, std::string_view token) {
        http_request req{http::verb::get, target, 11};
        req.set(http::field::authorization, "Bearer " + std::string(token));
        return test::run_sync(handler(std::move(req), at_start));
    }
};

std::string header(const http_response& res, http::field name) {
    auto it = res.find(name);
    return it == res.end() ? std::string() : std::string(it->value());
}

// The problem type a response carries.
std::string problem_type(const http_response& res) {
    auto body = boost::json::parse(res.body()).as_object();
    return std::string(body.at("type").as_string());
}

// Holds the pool's only thread until released, so that verifications queue behind it.
struct hashing_blocker {
    explicit hashing_blocker(asio::thread_pool& pool) {
        asio::post(pool, [released = released] { released.wait(); });
    }
    ~hashing_blocker() { release(); }
    void release() {
        if (!done) {
            done = true;
            promise.set_value();
        }
    }
    std::promise<void> promise;
    std::shared_future<void> released = promise.get_future().share();
    bool done = false;
};

asio::awaitable<void> login_into(auth_service& service, std::string email, std::string password,
                                 std::optional<boost::system::result<signed_in_session>>& out) {
    out.emplace(co_await service.login(email, password, at_start));
}

asio::awaitable<void> verify_into(password_verifier& verifier, const password_hash& hash,
                                  std::optional<boost::system::result<bool>>& out) {
    out.emplace(co_await verifier.verify(hash, "pw"));
}

} // namespace

BOOST_AUTO_TEST_SUITE(password_hashing_pool)

BOOST_AUTO_TEST_CASE(verification_runs_off_the_callers_thread_and_resumes_on_it) {
    asio::thread_pool pool(1);
    password_verifier verifier(pool.get_executor());
    auto hash = hash_password("right", {.log2_n = 4, .r = 8, .p = 1});
    BOOST_TEST_REQUIRE(hash.has_value());
    BOOST_TEST(test::run_sync(verifier.verify(*hash, "right")).value() == true);
    BOOST_TEST(test::run_sync(verifier.verify(*hash, "wrong")).value() == false);
    BOOST_TEST(verifier.waiting() == 0u);
    BOOST_TEST(verifier.shed_count() == 0u);
}

BOOST_AUTO_TEST_CASE(a_full_queue_answers_overloaded_at_once) {
    asio::thread_pool pool(1);
    password_verifier verifier(pool.get_executor(), 2);
    auto hash = hash_password("pw", {.log2_n = 4, .r = 8, .p = 1});
    BOOST_TEST_REQUIRE(hash.has_value());
    hashing_blocker blocker(pool);

    asio::io_context ioc;
    std::optional<boost::system::result<bool>> results[3];
    for (auto& r : results)
        asio::co_spawn(ioc, verify_into(verifier, *hash, r), asio::detached);
    ioc.poll(); // all three submitted; two wait, the third is refused without waiting
    BOOST_TEST(verifier.waiting() == 2u);
    BOOST_TEST(verifier.shed_count() == 1u);
    BOOST_TEST_REQUIRE(results[2].has_value());
    BOOST_TEST(results[2]->error() == make_error_code(errc::overloaded));
    BOOST_TEST(!results[0].has_value());

    blocker.release();
    ioc.run_for(10s);
    BOOST_TEST_REQUIRE(results[0].has_value());
    BOOST_TEST_REQUIRE(results[1].has_value());
    BOOST_TEST(results[0]->value() == true);
    BOOST_TEST(results[1]->value() == true);
    BOOST_TEST(verifier.waiting() == 0u);
}

BOOST_AUTO_TEST_CASE(shed_logins_answer_503_and_are_audited_once_a_second_with_a_count) {
    test::service_fixture f({}, 1);
    hashing_blocker blocker(f.hashing);
    asio::io_context ioc;
    std::optional<boost::system::result<signed_in_session>> results[4];
    for (auto& r : results)
        asio::co_spawn(ioc, login_into(f.service, "bob@acme.test", "bob-pw", r), asio::detached);
    ioc.poll();
    for (int i = 1; i < 4; ++i) {
        BOOST_TEST_REQUIRE(results[i].has_value());
        BOOST_TEST(results[i]->error() == make_error_code(errc::overloaded));
    }
    // Three sheds in one second: one line, written at the first, counting it.
    auto events = f.audit.recent(10);
    BOOST_TEST_REQUIRE(events.size() == 1u);
    BOOST_TEST(events[0].at("event").as_string() == "login.shed");
    BOOST_TEST(events[0].at("count").as_int64() == 1);
    BOOST_TEST(events[0].at("reason").as_string() == "shed");

    // A shed in a later second writes the next line, with the two not yet written plus itself.
    const request_context later{at_start.remote, at_start.now + 1s};
    auto next = test::run_sync(f.service.login("bob@acme.test", "bob-pw", later));
    BOOST_TEST(next.error() == make_error_code(errc::overloaded));
    events = f.audit.recent(10);
    BOOST_TEST_REQUIRE(events.size() == 2u);
    BOOST_TEST(events[0].at("count").as_int64() == 3);

    blocker.release();
    ioc.run_for(10s);
    BOOST_TEST_REQUIRE(results[0].has_value());
    BOOST_TEST(results[0]->has_value()); // the one that waited got its session
}

BOOST_AUTO_TEST_CASE(the_503_answer_says_retry_after_one_second) {
    test::service_fixture f({}, 1);
    hashing_blocker blocker(f.hashing);
    asio::io_context ioc;
    std::optional<boost::system::result<signed_in_session>> first;
    asio::co_spawn(ioc, login_into(f.service, "bob@acme.test", "bob-pw", first), asio::detached);
    ioc.poll();
    http_request req{http::verb::post, "/api/public/auth/login", 11};
    req.body() = test::login_body("alice@acme.test", "alice-pw");
    req.prepare_payload();
    auto res = test::run_sync(f.handler(std::move(req), at_start));
    BOOST_TEST(res.result_int() == 503u);
    BOOST_TEST(header(res, http::field::retry_after) == "1");
    BOOST_TEST(problem_type(res) == "urn:portal-auth:problem:overloaded");
    blocker.release();
    ioc.run_for(10s);
}

BOOST_AUTO_TEST_CASE(throttled_logins_never_reach_the_queue) {
    test::service_fixture f(service_config{.login_failures_per_email = {.max = 1}}, 64);
    BOOST_TEST(test::run_sync(f.service.login("bob@acme.test", "bad", at_start)).error() ==
               make_error_code(errc::invalid_credentials));
    hashing_blocker blocker(f.hashing);
    asio::io_context ioc;
    std::optional<boost::system::result<signed_in_session>> throttled;
    asio::co_spawn(ioc, login_into(f.service, "bob@acme.test", "bob-pw", throttled),
                   asio::detached);
    ioc.poll();
    BOOST_TEST_REQUIRE(throttled.has_value()); // answered without waiting for a hashing thread
    BOOST_TEST(throttled->error() == make_error_code(errc::rate_limited));
    BOOST_TEST(f.passwords.waiting() == 0u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(audit_sink_failures)

BOOST_AUTO_TEST_CASE(a_login_whose_line_cannot_be_written_is_undone) {
    faulty_world w;
    w.audit.failing = true;
    auto s = test::run_sync(w.service.login("bob@acme.test", "bob-pw", at_start));
    BOOST_TEST(s.error() == make_error_code(errc::audit_unavailable));
    BOOST_TEST(w.store.memory.sessions().size() == 0u); // the session was revoked again

    http_request req{http::verb::post, "/api/public/auth/login", 11};
    req.body() = test::login_body("bob@acme.test", "bob-pw");
    req.prepare_payload();
    auto res = test::run_sync(w.handler(std::move(req), at_start));
    BOOST_TEST(res.result_int() == 503u);
    BOOST_TEST(header(res, http::field::retry_after) == "1");
    BOOST_TEST(problem_type(res) == "urn:portal-auth:problem:audit-unavailable");
    BOOST_TEST(res.body().find("accessToken") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(no_impersonation_token_without_its_line) {
    faulty_world w;
    const std::string alice = w.alice();
    w.audit.failing = true;
    auto res = w.get("/api/public/coworkers/12/impersonate", alice);
    BOOST_TEST(res.result_int() == 503u);
    BOOST_TEST(problem_type(res) == "urn:portal-auth:problem:audit-unavailable");
    BOOST_TEST(res.body().find("token\"") == std::string::npos);
    // The grant behind the token that was not handed out can no longer be redeemed.
    BOOST_TEST_REQUIRE(w.audit.last_refused.has_value());
    BOOST_TEST(w.audit.last_refused->event == "impersonation.issued");
    BOOST_TEST_REQUIRE(w.audit.last_refused->jti.has_value());
    auto grant = w.store.memory.sessions().redeem_grant(*w.audit.last_refused->jti, at_start.now);
    BOOST_TEST((!grant || grant->withdrawn_because.has_value()));
}

BOOST_AUTO_TEST_CASE(a_failed_denial_line_does_not_change_the_answer) {
    faulty_world w;
    const std::string alice = w.alice();
    w.audit.failing = true;
    // Owner -> owner is denied with 403 whether or not its line could be written.
    auto res = w.get("/api/public/coworkers/13/impersonate", alice);
    BOOST_TEST(res.result_int() == 403u);
    BOOST_TEST(problem_type(res) == "urn:portal-auth:problem:role-forbidden");
    // Reading needs no audit line either.
    BOOST_TEST(w.get("/api/public/auth/session", alice).result_int() == 200u);
    BOOST_TEST(w.service.unrecorded_audit_events() == 1u); // the denial, counted
}

BOOST_AUTO_TEST_CASE(an_exchange_whose_line_cannot_be_written_hands_out_no_session) {
    faulty_world w;
    const std::string alice = w.alice();
    auto issued = w.get("/api/public/coworkers/12/impersonate", alice);
    BOOST_TEST_REQUIRE(issued.result_int() == 200u);
    const std::string token(boost::json::parse(issued.body()).at("token").as_string());
    const std::size_t sessions_before = w.store.memory.sessions().size();
    w.audit.failing = true;
    http_request req{http::verb::post, "/api/public/auth/login/" + token, 11};
    auto res = test::run_sync(w.handler(std::move(req), at_start));
    BOOST_TEST(res.result_int() == 503u);
    BOOST_TEST(problem_type(res) == "urn:portal-auth:problem:audit-unavailable");
    BOOST_TEST(res.body().find("accessToken") == std::string::npos);
    BOOST_TEST(w.store.memory.sessions().size() == sessions_before); // created, then revoked
}

BOOST_AUTO_TEST_CASE(a_profile_switch_whose_line_cannot_be_written_is_switched_back) {
    faulty_world w;
    auto bob = test::run_sync(w.service.login("bob@acme.test", "bob-pw", at_start));
    BOOST_TEST_REQUIRE(bob.has_value());
    w.audit.failing = true;
    http_request req{http::verb::put, "/api/public/coworkers/profiles/current", 11};
    req.set(http::field::authorization, "Bearer " + bob->tokens.access_token);
    req.body() = R"({"ProfileId":21})";
    req.prepare_payload();
    auto res = test::run_sync(w.handler(std::move(req), at_start));
    BOOST_TEST(res.result_int() == 503u);
    BOOST_TEST(problem_type(res) == "urn:portal-auth:problem:audit-unavailable");
    auto now =
        w.store.memory.sessions().find_by_access_token(bob->tokens.access_token, at_start.now);
    BOOST_TEST_REQUIRE(now.has_value());
    BOOST_TEST(now->data.profile == 11); // still where it was
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(store_failures)

BOOST_AUTO_TEST_CASE(a_failing_store_answers_503_store_unavailable_and_issues_nothing) {
    faulty_world w;
    const std::string alice = w.alice();
    w.store.failing = true;
    auto res = w.get("/api/public/auth/session", alice);
    BOOST_TEST(res.result_int() == 503u);
    BOOST_TEST(header(res, http::field::retry_after) == "1");
    BOOST_TEST(problem_type(res) == "urn:portal-auth:problem:store-unavailable");
    auto login = test::run_sync(w.service.login("bob@acme.test", "bob-pw", at_start));
    BOOST_TEST(login.error() == make_error_code(errc::store_unavailable));

    // Service resumes when the store does.
    w.store.failing = false;
    BOOST_TEST(w.get("/api/public/auth/session", alice).result_int() == 200u);
}

BOOST_AUTO_TEST_CASE(failing_counters_answer_503_before_any_password_is_checked) {
    faulty_world w;
    const std::string alice = w.alice();
    w.store.counters_failing = true;
    auto login = test::run_sync(w.service.login("bob@acme.test", "bob-pw", at_start));
    BOOST_TEST(login.error() == make_error_code(errc::store_unavailable));
    http_request req{http::verb::post, "/api/public/auth/login", 11};
    req.body() = test::login_body("bob@acme.test", "bob-pw");
    req.prepare_payload();
    auto res = test::run_sync(w.handler(std::move(req), at_start));
    BOOST_TEST(res.result_int() == 503u);
    BOOST_TEST(problem_type(res) == "urn:portal-auth:problem:store-unavailable");
    BOOST_TEST(w.get("/api/public/coworkers/12/impersonate", alice).result_int() == 503u);
    BOOST_TEST(test::run_sync(w.service.exchange("x", at_start)).error() ==
               make_error_code(errc::store_unavailable));
    // Nothing was attempted, so nothing was recorded as a failure.
    for (const auto& e : w.audit.log.recent(100))
        BOOST_TEST(e.at("event").as_string() != "login.failed");
    w.store.counters_failing = false;
    BOOST_TEST(test::run_sync(w.service.login("bob@acme.test", "bob-pw", at_start)).has_value());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(rights_at_redemption)

// A token issued before the directory took the actor's right away: the exchange applies the
// rules again, even where no reload withdrew the grant.
BOOST_AUTO_TEST_CASE(the_exchange_checks_the_actors_right_again) {
    faulty_world w;
    w.store.withdraws_nothing = true;
    auto alice = test::run_sync(w.service.login("alice@acme.test", "alice-pw", at_start));
    BOOST_TEST_REQUIRE(alice.has_value());
    auto alice_session =
        test::run_sync(w.service.authenticate(alice->tokens.access_token, at_start));
    BOOST_TEST_REQUIRE(alice_session.has_value());
    auto token =
        test::run_sync(w.service.impersonate_coworker(*alice_session, 12, std::nullopt, at_start));
    BOOST_TEST_REQUIRE(token.has_value());
    auto demoted = test::edited_directory([](auto& doc) { test::set_role(doc, 10, "member"); });
    BOOST_TEST_REQUIRE(test::run_sync(w.service.reload(demoted, nullptr, at_start)).has_value());
    BOOST_TEST(test::run_sync(w.service.exchange(*token, at_start)).error() ==
               make_error_code(errc::invalid_impersonation_token));
    const auto lines = w.audit.log.recent(2);
    BOOST_TEST_REQUIRE(lines.size() == 2u);
    const auto& failed = lines[1].as_object();
    BOOST_TEST(failed.at("event").as_string() == "impersonation.exchange_failed");
    BOOST_TEST(failed.at("reason").as_string() == "actor_lost_right");
    // The consumed token's impersonation ends on the record, saying why.
    BOOST_TEST(lines[0].at("event").as_string() == "impersonation.ended");
    BOOST_TEST(lines[0].at("endReason").as_string() == "actor_lost_right");
}

BOOST_AUTO_TEST_SUITE_END()
