// The in-memory sliding-window counters.
#include <boost/test/unit_test.hpp>

#include "rate_limiter.hpp"

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

BOOST_AUTO_TEST_SUITE_END()
