// The domain rules, without sockets: who may impersonate whom, and what each call records.
#include <portal_auth/auth_service.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <mutex>
#include <vector>

#include "base64.hpp"
#include "test_support.hpp"

using namespace portal_auth;
using boost::system::result;
using portal_auth::test::service_fixture;

namespace {

const request_context at_start{"127.0.0.1:5000",
                               clock_type::time_point(std::chrono::hours(500000))};

session_snapshot sign_in(auth_service& service, std::string_view email, std::string_view password,
                         const request_context& call = at_start) {
    auto s = test::run_sync(service.login(email, password, call));
    BOOST_TEST_REQUIRE(s.has_value());
    auto snapshot = test::run_sync(service.authenticate(s->tokens.access_token, call));
    BOOST_TEST_REQUIRE(snapshot.has_value());
    return *snapshot;
}

} // namespace

BOOST_AUTO_TEST_SUITE(coworker_impersonation_rule)

struct rule_case {
    profile_id actor_profile;
    customer_id actor;
    profile_id target;
    errc expected; // errc{} for allowed
};

BOOST_AUTO_TEST_CASE(every_rule_case) {
    auto dir = test::test_directory();
    const rule_case cases[] = {
        {10, 100, 11, errc{}},                          // owner -> admin
        {10, 100, 12, errc{}},                          // owner -> member
        {10, 100, 13, errc::forbidden_role},            // owner -> owner
        {10, 100, 10, errc::forbidden_role},            // owner -> self
        {10, 100, 14, errc::forbidden_operator_target}, // owner -> operator's member profile
        {10, 100, 20, errc::profile_not_found},         // another team: not disclosed
        {10, 100, 999, errc::profile_not_found},        // no such profile
        {11, 101, 12, errc{}},                          // admin -> member
        {11, 101, 10, errc::forbidden_role},            // admin -> owner
        {11, 101, 13, errc::forbidden_role},            // admin -> owner
        {11, 101, 11, errc::forbidden_role},            // admin -> self
        {12, 102, 14, errc::forbidden_role},            // member -> member
        {12, 102, 11, errc::forbidden_role},            // member -> admin
        {22, 104, 21, errc{}},                          // admin -> member of another customer
        {20, 103, 22, errc{}},                          // owner -> admin
        {21, 101, 23, errc::forbidden_role},            // bob's member profile -> member
        {21, 101, 11, errc::profile_not_found},         // bob's own profile in another team
    };
    for (const rule_case& c : cases) {
        BOOST_TEST_CONTEXT("actor profile " << c.actor_profile << " -> " << c.target) {
            session_data actor{.customer = c.actor, .profile = c.actor_profile};
            auto ec = check_coworker_impersonation(*dir, actor, c.target);
            if (c.expected == errc{})
                BOOST_TEST(!ec, ec.message());
            else
                BOOST_TEST(ec == make_error_code(c.expected), ec.message());
        }
    }
}

BOOST_AUTO_TEST_CASE(impersonated_sessions_cannot_chain) {
    auto dir = test::test_directory();
    session_data impersonated{.customer = 101,
                              .profile = 11,
                              .impersonator = impersonator_info{.customer = 100, .profile = 10}};
    BOOST_TEST(check_coworker_impersonation(*dir, impersonated, 12) ==
               make_error_code(errc::forbidden_chain));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(auth_service_flows)

BOOST_AUTO_TEST_CASE(login_starts_on_lowest_profile_and_rejects_bad_credentials) {
    service_fixture f;
    auto bob = test::run_sync(f.service.login("BOB@acme.test", "bob-pw", at_start));
    BOOST_TEST_REQUIRE(bob.has_value());
    BOOST_TEST(bob->data.customer == 101);
    BOOST_TEST(bob->data.profile == 11);
    BOOST_TEST(bob->tokens.access_token.size() >= 22u); // >= 128 bits of base64url
    BOOST_TEST(bob->tokens.access_token != bob->tokens.refresh_token);

    BOOST_TEST(test::run_sync(f.service.login("bob@acme.test", "wrong", at_start)).error() ==
               make_error_code(errc::invalid_credentials));
    BOOST_TEST(test::run_sync(f.service.login("nobody@acme.test", "bob-pw", at_start)).error() ==
               make_error_code(errc::invalid_credentials));
    auto events = f.audit.recent(10);
    BOOST_TEST_REQUIRE(events.size() == 3u);
    BOOST_TEST(events[0].at("event").as_string() == "login.failed");
    BOOST_TEST(events[1].at("event").as_string() == "login.failed");
    BOOST_TEST(events[2].at("event").as_string() == "login.succeeded");
}

BOOST_AUTO_TEST_CASE(profile_listing_has_own_profiles_and_current_team) {
    service_fixture f;
    auto bob = sign_in(f.service, "bob@acme.test", "bob-pw");
    auto listing = f.service.list_profiles(bob);
    std::vector<profile_id> ids;
    for (auto& e : listing.profiles)
        ids.push_back(e.entry->id);
    // Own (11, 21) plus everyone else in Acme (10, 12, 13, 14), sorted.
    BOOST_TEST(ids == (std::vector<profile_id>{10, 11, 12, 13, 14, 21}),
               boost::test_tools::per_element());
    for (auto& e : listing.profiles) {
        BOOST_TEST_CONTEXT("profile " << e.entry->id) {
            BOOST_TEST(e.is_current == (e.entry->id == 11));
            BOOST_TEST(e.is_own == (e.entry->customer == 101));
            BOOST_TEST(e.can_impersonate == (e.entry->id == 12)); // admin -> member only
        }
    }
}

BOOST_AUTO_TEST_CASE(switching_profiles) {
    service_fixture f;
    auto bob = sign_in(f.service, "bob@acme.test", "bob-pw");
    BOOST_TEST(test::run_sync(f.service.switch_profile(bob, 12, at_start)).error() ==
               make_error_code(errc::forbidden_coworker_profile));
    BOOST_TEST(test::run_sync(f.service.switch_profile(bob, 999, at_start)).error() ==
               make_error_code(errc::profile_not_found));
    auto switched = test::run_sync(f.service.switch_profile(bob, 21, at_start));
    BOOST_TEST_REQUIRE(switched.has_value());
    BOOST_TEST(switched->data.profile == 21);
    auto again = test::run_sync(f.service.authenticate(
        test::run_sync(f.service.login("bob@acme.test", "bob-pw", at_start))->tokens.access_token,
        at_start));
    BOOST_TEST(again->data.profile == 11); // a new login starts on the lowest id again
    BOOST_TEST(f.sessions().is_live(bob.id, at_start.now));
}

BOOST_AUTO_TEST_CASE(operator_impersonation_rules) {
    service_fixture f;
    auto olga = sign_in(f.service, "olga@portal.test", "olga-pw");
    auto alice = sign_in(f.service, "alice@acme.test", "alice-pw");
    BOOST_TEST(test::run_sync(f.service.impersonate_customer(alice, 101, std::nullopt, at_start))
                   .error() == make_error_code(errc::forbidden_not_operator));
    BOOST_TEST(
        test::run_sync(f.service.impersonate_customer(olga, 999, std::nullopt, at_start)).error() ==
        make_error_code(errc::customer_not_found));
    BOOST_TEST(
        test::run_sync(f.service.impersonate_customer(olga, 900, std::nullopt, at_start)).error() ==
        make_error_code(errc::forbidden_operator_target));
    auto token = test::run_sync(f.service.impersonate_customer(olga, 101, std::nullopt, at_start));
    BOOST_TEST_REQUIRE(token.has_value());
    auto session = test::run_sync(f.service.exchange(*token, at_start));
    BOOST_TEST_REQUIRE(session.has_value());
    BOOST_TEST(session->data.customer == 101);
    BOOST_TEST(session->data.profile == 11); // bob's lowest-id profile
    BOOST_TEST_REQUIRE(session->data.impersonator.has_value());
    BOOST_TEST(session->data.impersonator->customer == 900);
    BOOST_TEST(!session->data.impersonator->profile.has_value());
    BOOST_TEST(session->data.impersonator->is_operator);
}

BOOST_AUTO_TEST_CASE(token_claims_follow_the_contract) {
    service_fixture f(service_config{.impersonation_token_ttl = std::chrono::seconds(45)});
    auto alice = sign_in(f.service, "alice@acme.test", "alice-pw");
    auto token = test::run_sync(f.service.impersonate_coworker(alice, 12, std::nullopt, at_start));
    BOOST_TEST_REQUIRE(token.has_value());
    auto claims = f.signer->verify(*token);
    BOOST_TEST_REQUIRE(claims.has_value());
    BOOST_TEST(claims->at("iss").as_string() == "portal-auth");
    BOOST_TEST(claims->at("aud").as_string() == "portal-auth/login");
    BOOST_TEST(claims->at("sub").as_string() == "12");
    BOOST_TEST(claims->at("act").at("sub").as_string() == "100");
    BOOST_TEST(claims->at("exp").as_int64() - claims->at("iat").as_int64() == 45);
    BOOST_TEST(claims->at("jti").as_string().size() >= 22u);
    auto issued = f.audit.recent(1);
    BOOST_TEST(issued[0].at("event").as_string() == "impersonation.issued");
    BOOST_TEST(issued[0].at("jti") == claims->at("jti"));
}

BOOST_AUTO_TEST_CASE(kill_switch_refuses_issuing_and_exchange) {
    service_fixture on;
    auto alice = sign_in(on.service, "alice@acme.test", "alice-pw");
    auto token = test::run_sync(on.service.impersonate_coworker(alice, 12, std::nullopt, at_start));
    BOOST_TEST_REQUIRE(token.has_value());

    service_fixture off(service_config{.impersonation_enabled = false});
    auto alice_off = sign_in(off.service, "alice@acme.test", "alice-pw");
    BOOST_TEST(
        test::run_sync(off.service.impersonate_coworker(alice_off, 12, std::nullopt, at_start))
            .error() == make_error_code(errc::impersonation_disabled));
    auto olga = sign_in(off.service, "olga@portal.test", "olga-pw");
    BOOST_TEST(test::run_sync(off.service.impersonate_customer(olga, 101, std::nullopt, at_start))
                   .error() == make_error_code(errc::impersonation_disabled));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(abuse_limits)

BOOST_AUTO_TEST_CASE(failed_logins_throttle_the_email_whatever_the_password) {
    service_fixture f;
    for (int i = 0; i < 5; ++i)
        BOOST_TEST(test::run_sync(f.service.login("Bob@acme.test", "wrong", at_start)).error() ==
                   make_error_code(errc::invalid_credentials));
    // The sixth, even with the right password, is throttled.
    BOOST_TEST(test::run_sync(f.service.login("bob@acme.test", "bob-pw", at_start)).error() ==
               make_error_code(errc::rate_limited));
    auto wait = test::run_sync(f.service.login_retry_after("bob@acme.test", at_start));
    BOOST_TEST_REQUIRE(wait.has_value());
    BOOST_TEST(wait->count() == 300);
    BOOST_TEST(f.audit.recent(1)[0].at("event").as_string() == "login.throttled");
    // Other e-mails from elsewhere are unaffected; after the window the e-mail may try again.
    request_context elsewhere{"10.0.0.9:1", at_start.now};
    BOOST_TEST(
        test::run_sync(f.service.login("alice@acme.test", "alice-pw", elsewhere)).has_value());
    request_context later{at_start.remote, at_start.now + std::chrono::seconds(301)};
    BOOST_TEST(test::run_sync(f.service.login("bob@acme.test", "bob-pw", later)).has_value());
}

BOOST_AUTO_TEST_CASE(success_resets_the_email_count) {
    service_fixture f;
    for (int i = 0; i < 4; ++i)
        (void)test::run_sync(f.service.login("bob@acme.test", "wrong", at_start));
    BOOST_TEST(test::run_sync(f.service.login("bob@acme.test", "bob-pw", at_start)).has_value());
    for (int i = 0; i < 4; ++i)
        (void)test::run_sync(f.service.login("bob@acme.test", "wrong", at_start));
    BOOST_TEST(test::run_sync(f.service.login("bob@acme.test", "bob-pw", at_start)).has_value());
}

BOOST_AUTO_TEST_CASE(failed_logins_throttle_the_address) {
    service_fixture f;
    for (int i = 0; i < 20; ++i) {
        std::string email = "nobody" + std::to_string(i) + "@acme.test";
        request_context from{"192.0.2.7:" + std::to_string(1000 + i), at_start.now};
        (void)test::run_sync(f.service.login(email, "x", from));
    }
    request_context same_address{"192.0.2.7:5555", at_start.now};
    BOOST_TEST(
        test::run_sync(f.service.login("alice@acme.test", "alice-pw", same_address)).error() ==
        make_error_code(errc::rate_limited));
    request_context other_address{"192.0.2.8:5555", at_start.now};
    BOOST_TEST(
        test::run_sync(f.service.login("alice@acme.test", "alice-pw", other_address)).has_value());
}

BOOST_AUTO_TEST_CASE(impersonation_issuing_is_capped_per_actor) {
    service_fixture f;
    auto alice = sign_in(f.service, "alice@acme.test", "alice-pw");
    for (int i = 0; i < 30; ++i)
        BOOST_TEST(test::run_sync(f.service.impersonate_coworker(alice, 12, std::nullopt, at_start))
                       .has_value());
    BOOST_TEST(
        test::run_sync(f.service.impersonate_coworker(alice, 12, std::nullopt, at_start)).error() ==
        make_error_code(errc::rate_limited));
    BOOST_TEST(f.audit.recent(1)[0].at("reason").as_string() == "rate_limited");
    request_context minute_later{at_start.remote, at_start.now + std::chrono::seconds(60)};
    BOOST_TEST(test::run_sync(f.service.impersonate_coworker(alice, 12, std::nullopt, minute_later))
                   .has_value());
}

BOOST_AUTO_TEST_CASE(a_lockout_cannot_be_aimed_at_someone_else) {
    service_fixture f;
    const request_context attacker{"127.0.0.2:4000", at_start.now};
    const request_context alice_at_home{"127.0.0.3:4000", at_start.now};
    for (int i = 0; i < 5; ++i)
        (void)test::run_sync(f.service.login("ALICE@acme.test", "guess", attacker));
    BOOST_TEST(test::run_sync(f.service.login("alice@acme.test", "alice-pw", attacker)).error() ==
               make_error_code(errc::rate_limited));
    const auto line = f.audit.recent(1)[0].as_object();
    BOOST_TEST(line.at("event").as_string() == "login.throttled");
    BOOST_TEST(line.at("limit").as_string() == "email_and_address");
    BOOST_TEST(line.at("customerId").as_int64() == 100); // whose account is under attack
    // The real Alice, elsewhere, is not locked out.
    BOOST_TEST(
        test::run_sync(f.service.login("alice@acme.test", "alice-pw", alice_at_home)).has_value());
}

BOOST_AUTO_TEST_CASE(the_email_ceiling_stops_guessing_from_many_addresses) {
    service_fixture f;
    for (int i = 0; i < 50; ++i) {
        const request_context from{"198.51.100." + std::to_string(i) + ":1", at_start.now};
        BOOST_TEST(test::run_sync(f.service.login("bob@acme.test", "guess", from)).error() ==
                   make_error_code(errc::invalid_credentials));
    }
    const request_context fresh{"198.51.100.200:1", at_start.now};
    BOOST_TEST(test::run_sync(f.service.login("bob@acme.test", "bob-pw", fresh)).error() ==
               make_error_code(errc::rate_limited));
    const auto line = f.audit.recent(1)[0].as_object();
    BOOST_TEST(line.at("limit").as_string() == "email");
    BOOST_TEST(line.at("customerId").as_int64() == 101);
}

// Many wrong passwords at once, on several threads: the reservation is taken with the check,
// so exactly the pair limit's number are verified (401) and the rest refused (429).
BOOST_AUTO_TEST_CASE(parallel_wrong_passwords_get_exactly_the_limit) {
    service_fixture f;
    boost::asio::thread_pool io(4);
    std::mutex mutex;
    std::vector<error_code> outcomes;
    const request_context from{"192.0.2.50:1", at_start.now};
    for (int i = 0; i < 16; ++i)
        boost::asio::co_spawn(io, f.service.login("carol@acme.test", "guess", from),
                              [&](std::exception_ptr, result<signed_in_session> r) {
                                  std::lock_guard lock(mutex);
                                  outcomes.push_back(r ? error_code() : r.error());
                              });
    io.join();
    BOOST_TEST_REQUIRE(outcomes.size() == 16u);
    const auto count = [&](errc e) {
        return std::count(outcomes.begin(), outcomes.end(), make_error_code(e));
    };
    BOOST_TEST(count(errc::invalid_credentials) == 5);
    BOOST_TEST(count(errc::rate_limited) == 11);
}

// A throttled flood writes one line per key and window, then a summary with the count.
BOOST_AUTO_TEST_CASE(throttled_attempts_are_summarised_not_written_one_by_one) {
    service_fixture f;
    for (int i = 0; i < 5; ++i)
        (void)test::run_sync(f.service.login("bob@acme.test", "guess", at_start));
    for (int i = 0; i < 40; ++i)
        BOOST_TEST(test::run_sync(f.service.login("bob@acme.test", "guess", at_start)).error() ==
                   make_error_code(errc::rate_limited));
    auto throttled = [&] {
        std::vector<boost::json::object> lines;
        for (const auto& e : f.audit.recent(1000))
            if (e.at("event").as_string() == "login.throttled")
                lines.push_back(e.as_object());
        return lines;
    };
    BOOST_TEST_REQUIRE(throttled().size() == 1u);
    BOOST_TEST(!throttled()[0].contains("count"));
    test::run_sync(f.service.write_throttle_summaries(at_start.now + std::chrono::seconds(299)));
    BOOST_TEST(throttled().size() == 1u); // the window has not ended
    test::run_sync(f.service.write_throttle_summaries(at_start.now + std::chrono::seconds(300)));
    const auto lines = throttled();
    BOOST_TEST_REQUIRE(lines.size() == 2u);
    BOOST_TEST(lines[0].at("count").as_int64() == 40);
    BOOST_TEST(lines[0].at("limit").as_string() == "email_and_address");
    BOOST_TEST(lines[0].at("customerId").as_int64() == 101);
}

BOOST_AUTO_TEST_CASE(failed_exchanges_and_refreshes_share_a_limit_per_address) {
    service_fixture f(service_config{
        .exchange_failures_per_address = {.max = 3, .window = std::chrono::seconds(60)}});
    auto alice = sign_in(f.service, "alice@acme.test", "alice-pw");
    auto token = test::run_sync(f.service.impersonate_coworker(alice, 12, std::nullopt, at_start));
    BOOST_TEST_REQUIRE(token.has_value());
    const request_context guesser{"203.0.113.9:1", at_start.now};
    BOOST_TEST(test::run_sync(f.service.exchange("not-a-token", guesser)).error() ==
               make_error_code(errc::invalid_impersonation_token));
    BOOST_TEST(test::run_sync(f.service.exchange("still.not.one", guesser)).error() ==
               make_error_code(errc::invalid_impersonation_token));
    BOOST_TEST(test::run_sync(f.service.refresh("bad-refresh-token", guesser)).error() ==
               make_error_code(errc::invalid_refresh_token));
    // The fourth failure is refused before the token is even looked at, a valid one included.
    for (int i = 0; i < 10; ++i)
        BOOST_TEST(test::run_sync(f.service.exchange(*token, guesser)).error() ==
                   make_error_code(errc::rate_limited));
    BOOST_TEST(test::run_sync(f.service.refresh("x", guesser)).error() ==
               make_error_code(errc::rate_limited));
    auto wait = test::run_sync(f.service.exchange_retry_after(guesser));
    BOOST_TEST_REQUIRE(wait.has_value());
    BOOST_TEST(wait->count() == 60);
    const auto lines = f.audit.recent(100, audit_category::impersonation);
    BOOST_TEST(std::count_if(lines.begin(), lines.end(), [](const auto& e) {
                   return e.at("event").as_string() == "impersonation.throttled";
               }) == 1);
    BOOST_TEST(lines[0].at("limit").as_string() == "exchange_address");
    // The token was never consumed: from another address it works, and successes are not
    // counted there.
    const request_context elsewhere{"203.0.113.10:1", at_start.now};
    BOOST_TEST(test::run_sync(f.service.exchange(*token, elsewhere)).has_value());
    for (int i = 0; i < 5; ++i) {
        auto bob = test::run_sync(f.service.login("bob@acme.test", "bob-pw", elsewhere));
        BOOST_TEST_REQUIRE(bob.has_value());
        BOOST_TEST(
            test::run_sync(f.service.refresh(bob->tokens.refresh_token, elsewhere)).has_value());
    }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(reload)

using test::edited_directory;
using test::set_role;

BOOST_AUTO_TEST_CASE(sessions_survive_and_lost_rights_end_them) {
    service_fixture f;
    auto alice = sign_in(f.service, "alice@acme.test", "alice-pw");
    auto bob = sign_in(f.service, "bob@acme.test", "bob-pw");
    auto dave = sign_in(f.service, "dave@globex.test", "dave-pw");
    auto as_carol = test::run_sync(f.service.exchange(
        *test::run_sync(f.service.impersonate_coworker(alice, 12, std::nullopt, at_start)),
        at_start));
    auto as_frank = test::run_sync(f.service.exchange(
        *test::run_sync(f.service.impersonate_coworker(dave, 23, std::nullopt, at_start)),
        at_start));
    BOOST_TEST_REQUIRE(as_carol.has_value());
    BOOST_TEST_REQUIRE(as_frank.has_value());

    // Alice is demoted to member: her impersonation of Carol ends; everything else survives.
    auto ended = test::run_sync(f.service.reload(
        edited_directory([](auto& doc) { set_role(doc, 10, "member"); }), nullptr, at_start));
    BOOST_TEST(ended == 1u);
    BOOST_TEST(!test::run_sync(f.service.authenticate(as_carol->tokens.access_token, at_start)));
    BOOST_TEST(test::run_sync(f.service.authenticate(as_frank->tokens.access_token, at_start))
                   .has_value());
    BOOST_TEST(f.sessions().is_live(bob.id, at_start.now));
    BOOST_TEST(f.sessions().is_live(alice.id, at_start.now));
    const auto lines = f.audit.recent(2);
    BOOST_TEST_REQUIRE(lines.size() == 2u);
    const auto& session_line = lines[1].as_object();
    BOOST_TEST(session_line.at("event").as_string() == "session.ended");
    BOOST_TEST(session_line.at("reason").as_string() == "impersonation_right_lost");
    BOOST_TEST(session_line.at("customerId").as_int64() == 102);
    BOOST_TEST(session_line.contains("impersonationId")); // a line of that impersonation
    // ...which ends on the record, once.
    BOOST_TEST(lines[0].at("event").as_string() == "impersonation.ended");
    BOOST_TEST(lines[0].at("endReason").as_string() == "actor_lost_right");
    BOOST_TEST(lines[0].at("impersonationId") == session_line.at("impersonationId"));
}

BOOST_AUTO_TEST_CASE(a_reload_withdraws_tokens_of_actors_who_lost_the_right) {
    service_fixture f;
    auto alice = sign_in(f.service, "alice@acme.test", "alice-pw");
    auto olga = sign_in(f.service, "olga@portal.test", "olga-pw");
    auto alice_token =
        test::run_sync(f.service.impersonate_coworker(alice, 12, std::nullopt, at_start));
    auto olga_token =
        test::run_sync(f.service.impersonate_customer(olga, 101, std::nullopt, at_start));
    BOOST_TEST_REQUIRE(alice_token.has_value());
    BOOST_TEST_REQUIRE(olga_token.has_value());
    auto demoted = edited_directory([](auto& doc) {
        set_role(doc, 10, "member");
        test::set_operator(doc, 900, false);
    });
    BOOST_TEST_REQUIRE(test::run_sync(f.service.reload(demoted, nullptr, at_start)).has_value());
    const auto ended = f.audit.recent(2, audit_category::impersonation);
    BOOST_TEST_REQUIRE(ended.size() == 2u);
    for (const auto& e : ended) {
        BOOST_TEST(e.at("event").as_string() == "impersonation.ended");
        BOOST_TEST(e.at("endReason").as_string() == "actor_lost_right");
        BOOST_TEST(e.as_object().contains("impersonationId"));
    }
    // Every later exchange of those tokens fails, and says why, until the tokens expire.
    for (int attempt = 0; attempt < 2; ++attempt) {
        for (const auto* token : {&*alice_token, &*olga_token}) {
            BOOST_TEST(test::run_sync(f.service.exchange(*token, at_start)).error() ==
                       make_error_code(errc::invalid_impersonation_token));
            const auto failed = f.audit.recent(1)[0].as_object();
            BOOST_TEST(failed.at("event").as_string() == "impersonation.exchange_failed");
            BOOST_TEST(failed.at("reason").as_string() == "actor_lost_right");
        }
    }
}

BOOST_AUTO_TEST_CASE(removed_customers_and_disabled_impersonation_end_sessions) {
    service_fixture f;
    auto bob = sign_in(f.service, "bob@acme.test", "bob-pw");
    auto dave = sign_in(f.service, "dave@globex.test", "dave-pw");
    auto as_frank = test::run_sync(f.service.exchange(
        *test::run_sync(f.service.impersonate_coworker(dave, 23, std::nullopt, at_start)),
        at_start));
    BOOST_TEST_REQUIRE(as_frank.has_value());
    auto dir = edited_directory([](auto& doc) {
        doc["impersonationEnabled"] = false;
        auto& customers = doc.at("customers").as_array();
        auto& profiles = doc.at("profiles").as_array();
        auto remove = [](boost::json::array& rows, auto pred) {
            rows.erase(std::remove_if(rows.begin(), rows.end(), pred), rows.end());
        };
        remove(customers, [](auto& c) { return c.at("id").as_int64() == 101; });
        remove(profiles, [](auto& p) { return p.at("customerId").as_int64() == 101; });
    });
    BOOST_TEST(test::run_sync(f.service.reload(dir, nullptr, at_start)) == 2u);
    BOOST_TEST(!f.sessions().is_live(bob.id, at_start.now));
    BOOST_TEST(!test::run_sync(f.service.authenticate(as_frank->tokens.access_token, at_start)));
    BOOST_TEST(f.sessions().is_live(dave.id, at_start.now));
    BOOST_TEST(
        test::run_sync(f.service.impersonate_coworker(dave, 23, std::nullopt, at_start)).error() ==
        make_error_code(errc::impersonation_disabled));
}

BOOST_AUTO_TEST_CASE(new_signing_keys_take_effect_and_old_ones_can_stay) {
    service_fixture f;
    auto alice = sign_in(f.service, "alice@acme.test", "alice-pw");
    auto before = test::run_sync(f.service.impersonate_coworker(alice, 12, std::nullopt, at_start));
    // Rotation: the new key signs, the old one still verifies tokens already out.
    auto rotated = std::make_shared<const token_signer>(
        std::vector<signing_key>{make_random_signing_key("new-key")});
    test::run_sync(f.service.reload(f.service.current_directory(), rotated, at_start));
    auto after = test::run_sync(f.service.impersonate_coworker(alice, 11, std::nullopt, at_start));
    BOOST_TEST_REQUIRE(after.has_value());
    BOOST_TEST(rotated->verify(*after).has_value());
    // The token signed before with a key the new set lacks is refused.
    BOOST_TEST(!test::run_sync(f.service.exchange(*before, at_start)).has_value());
    BOOST_TEST(test::run_sync(f.service.exchange(*after, at_start)).has_value());
}

BOOST_AUTO_TEST_SUITE_END()

// Unknown e-mails cost what the dearest real account costs, whatever the directory's order,
// and again after a reload raises the costs: the response time says nothing about accounts.
BOOST_AUTO_TEST_SUITE(account_enumeration_timing)

namespace {

// The test world with one customer's hash at scrypt ln=`log2_n` (the others stay at ln=4).
std::shared_ptr<const directory> with_costly_customer(std::int64_t customer_id,
                                                      std::string_view password, unsigned log2_n) {
    auto costly = hash_password(password, {.log2_n = log2_n, .r = 8, .p = 1});
    BOOST_TEST_REQUIRE(costly.has_value());
    const std::string text = format_password_hash(*costly);
    return test::edited_directory([&](boost::json::object& doc) {
        for (auto& c : doc.at("customers").as_array())
            if (c.at("id").as_int64() == customer_id)
                c.as_object()["passwordHash"] = text;
    });
}

// The CPU time `login` costs this process (the hashing thread included), in ms: what the
// attacker's clock measures, without the noise of other processes sharing the cores.
template <class Login> double cpu_ms(Login&& login) {
    auto now = [] {
        timespec t{};
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
        return static_cast<double>(t.tv_sec) * 1e3 + static_cast<double>(t.tv_nsec) / 1e6;
    };
    const double start = now();
    login();
    return now() - start;
}

} // namespace

BOOST_AUTO_TEST_CASE(the_dummy_hash_takes_the_highest_cost_and_follows_reloads) {
    service_fixture f;
    BOOST_TEST(f.service.dummy_hash_params().log2_n == 4u);
    // Bob (not the first customer) becomes the dearest account.
    auto mixed = with_costly_customer(101, "bob-pw", 8);
    BOOST_TEST_REQUIRE(test::run_sync(f.service.reload(mixed, nullptr, at_start)).has_value());
    BOOST_TEST(f.service.dummy_hash_params().log2_n == 8u);
    BOOST_TEST_REQUIRE(
        test::run_sync(f.service.reload(test::test_directory(), nullptr, at_start)).has_value());
    BOOST_TEST(f.service.dummy_hash_params().log2_n == 4u);
}

BOOST_AUTO_TEST_CASE(unknown_email_and_wrong_password_take_the_same_time) {
    // Mixed costs (ln 4 for most, ln 12 for Bob), throttles off so that every attempt verifies.
    const service_config no_limits{.login_failures_per_email_and_address = {.max = 0},
                                   .login_failures_per_email = {.max = 0},
                                   .login_failures_per_address = {.max = 0}};
    service_fixture f(no_limits);
    BOOST_TEST_REQUIRE(
        test::run_sync(f.service.reload(with_costly_customer(101, "bob-pw", 12), nullptr, at_start))
            .has_value());
    constexpr int pairs = 30;
    std::vector<double> unknown, wrong;
    auto unknown_email = [&] {
        unknown.push_back(cpu_ms(
            [&] { (void)test::run_sync(f.service.login("nobody@acme.test", "x", at_start)); }));
    };
    auto wrong_password = [&] {
        wrong.push_back(
            cpu_ms([&] { (void)test::run_sync(f.service.login("bob@acme.test", "x", at_start)); }));
    };
    for (int i = 0; i < pairs; ++i) { // interleaved, in alternating order, so drift hits both
        if (i % 2 == 0) {
            unknown_email();
            wrong_password();
        } else {
            wrong_password();
            unknown_email();
        }
    }
    std::sort(unknown.begin(), unknown.end());
    std::sort(wrong.begin(), wrong.end());
    const double unknown_median = unknown[pairs / 2];
    const double wrong_median = wrong[pairs / 2];
    BOOST_TEST_MESSAGE("median CPU ms: unknown e-mail " << unknown_median << ", wrong password "
                                                        << wrong_median);
    BOOST_TEST(std::abs(unknown_median - wrong_median) <= 0.15 * wrong_median,
               "unknown e-mail " << unknown_median << " ms, wrong password " << wrong_median
                                 << " ms");
}

BOOST_AUTO_TEST_SUITE_END()
