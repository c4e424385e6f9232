// The in-memory sliding-window counters.
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <thread>
#include <vector>

#include "rate_limiter.hpp"
#include "refusal_journal.hpp"

using namespace portal_auth;
using namespace std::chrono_literals;

namespace {
const rate_limiter::time_point t0{std::chrono::hours(500000)};
}

BOOST_AUTO_TEST_SUITE(rate_limiter_suite)

BOOST_AUTO_TEST_CASE(blocks_after_max_attempts_until_the_window_passes) {
    rate_limiter limiter;
    const rate_limit limit{.max = 3, .window = 60s};
    for (int i = 0; i < 3; ++i) {
        BOOST_TEST(!limiter.blocked_for("k", limit, t0 + std::chrono::seconds(i)));
        limiter.record("k", limit, t0 + std::chrono::seconds(i));
    }
    auto wait = limiter.blocked_for("k", limit, t0 + 10s);
    BOOST_TEST_REQUIRE(wait.has_value());
    BOOST_TEST(wait->count() == 50); // the first attempt (t0) leaves the window at t0 + 60s
    BOOST_TEST(!limiter.blocked_for("other", limit, t0 + 10s));
    BOOST_TEST(limiter.blocked_for("k", limit, t0 + 59s).has_value());
    BOOST_TEST(!limiter.blocked_for("k", limit, t0 + 60s)); // one attempt left the window
}

BOOST_AUTO_TEST_CASE(reset_and_sweep_forget_keys) {
    rate_limiter limiter;
    const rate_limit limit{.max = 1, .window = 60s};
    limiter.record("a", limit, t0);
    limiter.record("b", limit, t0);
    BOOST_TEST(limiter.blocked_for("a", limit, t0).has_value());
    limiter.reset("a");
    BOOST_TEST(!limiter.blocked_for("a", limit, t0));
    limiter.sweep(t0 + 61s);
    BOOST_TEST(
        !limiter.blocked_for("b", limit, t0 + 1s)); // swept: gone even if asked about the past
}

BOOST_AUTO_TEST_CASE(zero_max_disables) {
    rate_limiter limiter;
    const rate_limit limit{.max = 0, .window = 60s};
    for (int i = 0; i < 100; ++i)
        limiter.record("k", limit, t0);
    BOOST_TEST(!limiter.blocked_for("k", limit, t0));
}

BOOST_AUTO_TEST_CASE(reserve_counts_all_keys_or_none) {
    rate_limiter limiter;
    const rate_limit two{.max = 2, .window = 60s};
    const rate_limit ten{.max = 10, .window = 60s};
    const std::vector<counted_key> keys = {{"pair", two}, {"email", ten}};
    BOOST_TEST(limiter.reserve(keys, t0).granted());
    BOOST_TEST(limiter.reserve(keys, t0 + 1s).granted());
    const auto refused = limiter.reserve(keys, t0 + 2s);
    BOOST_TEST_REQUIRE(!refused.granted());
    BOOST_TEST(*refused.refused_by == 0u);
    BOOST_TEST(refused.retry_after.count() == 58);
    // The refused attempt counted against no key: the e-mail holds 2 attempts, not 3.
    const std::vector<counted_key> email_only = {{"email", rate_limit{.max = 3, .window = 60s}}};
    BOOST_TEST(limiter.reserve(email_only, t0 + 3s).granted());
    BOOST_TEST(!limiter.reserve(email_only, t0 + 3s).granted());
}

BOOST_AUTO_TEST_CASE(release_gives_an_attempt_back) {
    rate_limiter limiter;
    const rate_limit one{.max = 1, .window = 60s};
    const std::vector<counted_key> keys = {{"k", one}};
    BOOST_TEST(limiter.reserve(keys, t0).granted());
    BOOST_TEST(!limiter.reserve(keys, t0 + 1s).granted());
    limiter.release(keys, t0);
    BOOST_TEST(limiter.reserve(keys, t0 + 2s).granted());
    limiter.release(keys, t0); // nothing counted at t0 any more: no effect
    BOOST_TEST(!limiter.reserve(keys, t0 + 3s).granted());
}

// The check and the count are one step: however many threads race, exactly `max` pass.
BOOST_AUTO_TEST_CASE(concurrent_reservations_grant_exactly_the_limit) {
    rate_limiter limiter(4);
    const rate_limit five{.max = 5, .window = 60s};
    for (int round = 0; round < 50; ++round) {
        const std::string pair = "pair-" + std::to_string(round);
        const std::string email = "email-" + std::to_string(round);
        const std::vector<counted_key> keys = {
            {pair, five}, {email, five}, {"address", rate_limit{.max = 100000, .window = 60s}}};
        std::atomic<int> granted{0};
        std::vector<std::jthread> threads;
        for (int t = 0; t < 8; ++t)
            threads.emplace_back([&] {
                for (int i = 0; i < 4; ++i)
                    if (limiter.reserve(keys, t0).granted())
                        ++granted;
            });
        threads.clear();
        BOOST_TEST(granted.load() == 5);
    }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(refusal_journal_suite)

BOOST_AUTO_TEST_CASE(one_line_per_key_and_window_then_a_summary) {
    detail::refusal_journal journal;
    audit_event first{.event = "login.throttled", .customer_id = 100, .limit = "email"};
    BOOST_TEST(journal.note("login-email:a", first, 300s, t0));
    for (int i = 1; i < 10; ++i)
        BOOST_TEST(!journal.note("login-email:a", first, 300s, t0 + std::chrono::seconds(i)));
    audit_event other = first;
    other.limit = "address";
    BOOST_TEST(journal.note("login-address:x", other, 60s, t0 + 5s));
    BOOST_TEST(journal.open_windows() == 2u);

    BOOST_TEST(journal.take_ended(t0 + 64s).empty());
    auto ended = journal.take_ended(t0 + 65s);
    BOOST_TEST_REQUIRE(ended.size() == 1u);
    BOOST_TEST(*ended[0].limit == "address");
    BOOST_TEST(*ended[0].count == 1);
    ended = journal.take_ended(t0 + 300s);
    BOOST_TEST_REQUIRE(ended.size() == 1u);
    BOOST_TEST(*ended[0].count == 10);
    BOOST_TEST(*ended[0].customer_id == 100);
    BOOST_TEST(journal.open_windows() == 0u);
    // The key's next refusal opens a new window.
    BOOST_TEST(journal.note("login-email:a", first, 300s, t0 + 301s));
}

BOOST_AUTO_TEST_SUITE_END()
