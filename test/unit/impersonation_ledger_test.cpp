// The in-memory impersonation records: transitions, listings, and the bound on ended ones.
#include <boost/test/unit_test.hpp>

#include "impersonation_ledger.hpp"

using namespace portal_auth;
using namespace std::chrono_literals;

namespace {

const clock_type::time_point t0{std::chrono::hours(500000)};

impersonation_record issued(std::string id, customer_id target, clock_type::time_point at) {
    return impersonation_record{.id = std::move(id),
                                .actor = impersonator_info{.customer = 100, .profile = 10},
                                .target_customer = target,
                                .target_profile = 12,
                                .issued_at = at,
                                .token_expires_at = at + 60s};
}

} // namespace

BOOST_AUTO_TEST_SUITE(impersonation_ledger_suite)

BOOST_AUTO_TEST_CASE(each_record_starts_once_and_ends_once) {
    detail::impersonation_ledger ledger;
    ledger.add(issued("a", 102, t0));
    BOOST_TEST((ledger.find("a")->state() == impersonation_state::issued));
    BOOST_TEST(ledger.start("a", 7, t0 + 1s, t0 + 1800s));
    BOOST_TEST(!ledger.start("a", 8, t0 + 2s, t0 + 1800s)); // not issued any more
    const auto active = ledger.find("a");
    BOOST_TEST((active->state() == impersonation_state::active));
    BOOST_TEST(*active->session == 7u);
    BOOST_TEST((active->expires_at() == t0 + 1800s));
    const auto ended = ledger.end("a", "target_ended", t0 + 5s);
    BOOST_TEST_REQUIRE(ended.has_value());
    BOOST_TEST(*ended->end_reason == "target_ended");
    BOOST_TEST(!ledger.end("a", "operator_ended", t0 + 6s)); // once
    BOOST_TEST(!ledger.start("a", 9, t0 + 7s, t0 + 1800s));  // an ended one never starts
    BOOST_TEST(!ledger.end("unknown", "x", t0));
}

BOOST_AUTO_TEST_CASE(listings_are_newest_first_and_filtered) {
    detail::impersonation_ledger ledger;
    for (int i = 0; i < 5; ++i)
        ledger.add(
            issued("r" + std::to_string(i), i % 2 == 0 ? 102 : 103, t0 + std::chrono::seconds(i)));
    (void)ledger.end("r0", "expired", t0 + 10s);
    auto of_102 = ledger.list({.target_customer = 102});
    BOOST_TEST_REQUIRE(of_102.size() == 3u);
    BOOST_TEST(of_102[0].id == "r4");
    BOOST_TEST(of_102[2].id == "r0");
    BOOST_TEST(ledger.list({.state = impersonation_state::ended}).size() == 1u);
    BOOST_TEST(ledger.list({.limit = 2}).size() == 2u);
    BOOST_TEST(ledger.list({.target_customer = 102, .ended_limit = 0}).size() == 2u);
}

BOOST_AUTO_TEST_CASE(ended_records_are_bounded_per_customer_and_in_all) {
    detail::impersonation_ledger ledger(3, 5);
    for (int i = 0; i < 10; ++i) {
        const std::string id = "c" + std::to_string(i);
        ledger.add(issued(id, 102, t0 + std::chrono::seconds(i)));
        (void)ledger.end(id, "expired", t0 + std::chrono::seconds(i));
    }
    auto kept = ledger.list({.target_customer = 102, .ended_limit = 100});
    BOOST_TEST_REQUIRE(kept.size() == 3u); // the last 3 of this customer
    BOOST_TEST(kept[0].id == "c9");
    for (int i = 0; i < 4; ++i) {
        const std::string id = "d" + std::to_string(i);
        ledger.add(issued(id, 200 + i, t0 + std::chrono::seconds(20 + i)));
        (void)ledger.end(id, "expired", t0 + std::chrono::seconds(20 + i));
    }
    BOOST_TEST(ledger.size() == 5u); // 5 ended in all, oldest dropped first
    BOOST_TEST(!ledger.find("c7"));
    BOOST_TEST(!ledger.find("c8"));
    BOOST_TEST(ledger.find("c9").has_value());
    // Records that have not ended are never dropped.
    ledger.add(issued("live", 102, t0 + 100s));
    for (int i = 0; i < 20; ++i) {
        const std::string id = "e" + std::to_string(i);
        ledger.add(issued(id, 300, t0 + 200s));
        (void)ledger.end(id, "expired", t0 + 200s);
    }
    BOOST_TEST(ledger.find("live").has_value());
}

BOOST_AUTO_TEST_SUITE_END()
