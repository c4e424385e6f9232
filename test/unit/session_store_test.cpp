#include <portal_auth/error.hpp>
#include <portal_auth/session_store.hpp>

#include <boost/test/unit_test.hpp>

#include <atomic>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "base64.hpp"

using namespace portal_auth;
using namespace std::chrono_literals;

namespace {

const clock_type::time_point t0 = clock_type::time_point{} + std::chrono::hours(24 * 365 * 56);
constexpr std::chrono::seconds ttl = 900s;

session_data plain(customer_id customer = 100, profile_id profile = 10) {
    session_data d;
    d.customer = customer;
    d.profile = profile;
    return d;
}

session_data impersonating(session_id actor, std::optional<clock_type::time_point> not_after = {}) {
    session_data d = plain(200, 20);
    d.impersonator = impersonator_info{100, 10, false, actor};
    d.not_after = not_after;
    return d;
}

// The same token with one secret byte changed (the id part is kept).
std::string flip_secret_byte(const std::string& token) {
    auto raw = base64url_decode(token);
    BOOST_TEST_REQUIRE(raw.has_value());
    (*raw)[20] ^= 0x01;
    return base64url_encode(*raw);
}

} // namespace

BOOST_AUTO_TEST_SUITE(session_store_suite)

BOOST_AUTO_TEST_CASE(create_and_find) {
    session_store store;
    auto tokens = store.create(plain(), t0, ttl);
    BOOST_TEST(tokens.id != 0u);
    BOOST_TEST((tokens.expires_at == t0 + ttl));
    BOOST_TEST(tokens.access_token.size() == 32u);
    BOOST_TEST(tokens.refresh_token.size() == 32u);
    BOOST_TEST(tokens.access_token != tokens.refresh_token);
    // The id is encoded in the first 8 bytes, big-endian.
    auto raw = base64url_decode(tokens.access_token);
    BOOST_TEST_REQUIRE(raw.has_value());
    BOOST_TEST_REQUIRE(raw->size() == 24u);
    session_id embedded = 0;
    for (int i = 0; i < 8; ++i)
        embedded = (embedded << 8) | (*raw)[i];
    BOOST_TEST(embedded == tokens.id);

    auto found = store.find_by_access_token(tokens.access_token, t0 + 1s);
    BOOST_TEST_REQUIRE(found.has_value());
    BOOST_TEST(found->id == tokens.id);
    BOOST_TEST(found->data.customer == 100);
    BOOST_TEST(found->data.profile == 10);
    BOOST_TEST(!found->data.impersonator.has_value());
    BOOST_TEST(!found->data.not_after.has_value());
    BOOST_TEST((found->expires_at == t0 + ttl));
    BOOST_TEST(store.is_live(tokens.id, t0));
    BOOST_TEST(store.size() == 1u);

    auto other = store.create(plain(101, 11), t0, ttl);
    BOOST_TEST(other.id != tokens.id);
    BOOST_TEST(store.size() == 2u);
    BOOST_TEST(store.find_by_access_token(other.access_token, t0)->data.customer == 101);
}

BOOST_AUTO_TEST_CASE(wrong_secret_and_malformed_tokens_fail) {
    session_store store;
    auto tokens = store.create(plain(), t0, ttl);
    BOOST_TEST(!store.find_by_access_token(flip_secret_byte(tokens.access_token), t0));
    BOOST_TEST(!store.find_by_access_token(tokens.refresh_token, t0));
    BOOST_TEST(!store.find_by_access_token("", t0));
    BOOST_TEST(!store.find_by_access_token(tokens.access_token.substr(1), t0));
    BOOST_TEST(!store.find_by_access_token(tokens.access_token + "A", t0));
    std::string bad_char = tokens.access_token;
    bad_char[5] = '*';
    BOOST_TEST(!store.find_by_access_token(bad_char, t0));
    std::string padded = tokens.access_token;
    padded.back() = '=';
    BOOST_TEST(!store.find_by_access_token(padded, t0));
    // The genuine token still works after the failed attempts.
    BOOST_TEST(store.find_by_access_token(tokens.access_token, t0).has_value());
}

BOOST_AUTO_TEST_CASE(expiry) {
    session_store store;
    auto tokens = store.create(plain(), t0, ttl);
    BOOST_TEST(store.find_by_access_token(tokens.access_token, t0 + ttl - 1ns).has_value());
    BOOST_TEST(!store.find_by_access_token(tokens.access_token, t0 + ttl));
    BOOST_TEST(!store.is_live(tokens.id, t0 + ttl));
    BOOST_TEST(!store.refresh(tokens.refresh_token, t0 + ttl, ttl));

    // not_after caps the initial expiry too.
    auto capped = store.create(impersonating(tokens.id, t0 + 60s), t0, ttl);
    BOOST_TEST((capped.expires_at == t0 + 60s));
}

BOOST_AUTO_TEST_CASE(refresh_rotates_both_tokens) {
    session_store store;
    auto first = store.create(plain(), t0, ttl);
    auto second = store.refresh(first.refresh_token, t0 + 100s, ttl);
    BOOST_TEST_REQUIRE(second.has_value());
    BOOST_TEST(second->id == first.id);
    BOOST_TEST((second->expires_at == t0 + 100s + ttl));
    BOOST_TEST(second->access_token != first.access_token);
    BOOST_TEST(second->refresh_token != first.refresh_token);

    BOOST_TEST(!store.find_by_access_token(first.access_token, t0 + 101s));
    auto found = store.find_by_access_token(second->access_token, t0 + 101s);
    BOOST_TEST_REQUIRE(found.has_value());
    BOOST_TEST((found->expires_at == t0 + 100s + ttl));
    // Still valid after the original expiry.
    BOOST_TEST(store.find_by_access_token(second->access_token, t0 + ttl + 1s).has_value());

    auto third = store.refresh(second->refresh_token, t0 + 200s, ttl);
    BOOST_TEST_REQUIRE(third.has_value());
    BOOST_TEST(store.size() == 1u);
}

BOOST_AUTO_TEST_CASE(rotated_refresh_token_reuse_revokes_the_session) {
    session_store store;
    auto first = store.create(plain(), t0, ttl);
    auto second = store.refresh(first.refresh_token, t0 + 1s, ttl);
    auto third = store.refresh(second->refresh_token, t0 + 2s, ttl);
    BOOST_TEST_REQUIRE(third.has_value());
    // A forged secret for the same session is merely invalid and revokes nothing.
    BOOST_TEST(store.refresh(flip_secret_byte(third->refresh_token), t0 + 3s, ttl).error() ==
               make_error_code(errc::invalid_refresh_token));
    BOOST_TEST(store.find_by_access_token(third->access_token, t0 + 3s).has_value());
    // The first, long-rotated token comes back: the whole session goes, current tokens too.
    BOOST_TEST(store.refresh(first.refresh_token, t0 + 4s, ttl).error() ==
               make_error_code(errc::refresh_token_reused));
    BOOST_TEST(!store.find_by_access_token(third->access_token, t0 + 4s));
    BOOST_TEST(store.refresh(third->refresh_token, t0 + 4s, ttl).error() ==
               make_error_code(errc::invalid_refresh_token));
    BOOST_TEST(store.size() == 0u);
}

BOOST_AUTO_TEST_CASE(token_kinds_are_not_interchangeable) {
    session_store store;
    auto tokens = store.create(plain(), t0, ttl);
    BOOST_TEST(!store.refresh(tokens.access_token, t0, ttl));
    BOOST_TEST(!store.refresh(flip_secret_byte(tokens.refresh_token), t0, ttl));
    BOOST_TEST(!store.refresh("garbage", t0, ttl));
    BOOST_TEST(!store.find_by_access_token(tokens.refresh_token, t0));
    // Failed attempts did not rotate anything.
    BOOST_TEST(store.find_by_access_token(tokens.access_token, t0).has_value());
    BOOST_TEST(store.refresh(tokens.refresh_token, t0, ttl).has_value());
}

BOOST_AUTO_TEST_CASE(not_after_caps_refresh) {
    session_store store;
    auto actor = store.create(plain(), t0, 3600s);
    auto imp = store.create(impersonating(actor.id, t0 + 1000s), t0, ttl);
    BOOST_TEST((imp.expires_at == t0 + ttl));

    auto refreshed = store.refresh(imp.refresh_token, t0 + 500s, ttl);
    BOOST_TEST_REQUIRE(refreshed.has_value());
    BOOST_TEST((refreshed->expires_at == t0 + 1000s));
    auto found = store.find_by_access_token(refreshed->access_token, t0 + 999s);
    BOOST_TEST_REQUIRE(found.has_value());
    BOOST_TEST_REQUIRE(found->data.not_after.has_value());
    BOOST_TEST((*found->data.not_after == t0 + 1000s));
    BOOST_TEST_REQUIRE(found->data.impersonator.has_value());
    BOOST_TEST(found->data.impersonator->actor_session == actor.id);
    BOOST_TEST(found->data.impersonator->customer == 100);
    BOOST_TEST((found->data.impersonator->profile == profile_id{10}));
    BOOST_TEST(!store.find_by_access_token(refreshed->access_token, t0 + 1000s));
}

BOOST_AUTO_TEST_CASE(revoke) {
    session_store store;
    auto tokens = store.create(plain(), t0, ttl);
    BOOST_TEST(store.revoke(tokens.id));
    BOOST_TEST(!store.revoke(tokens.id));
    BOOST_TEST(!store.find_by_access_token(tokens.access_token, t0));
    BOOST_TEST(!store.refresh(tokens.refresh_token, t0, ttl));
    BOOST_TEST(!store.is_live(tokens.id, t0));
    BOOST_TEST(store.size() == 0u);
}

BOOST_AUTO_TEST_CASE(impersonated_session_ends_with_revoked_actor) {
    session_store store;
    auto actor = store.create(plain(), t0, ttl);
    auto imp = store.create(impersonating(actor.id), t0, ttl);
    auto imp2 = store.create(impersonating(actor.id), t0, ttl);
    BOOST_TEST(store.find_by_access_token(imp.access_token, t0).has_value());
    BOOST_TEST(store.is_live(imp.id, t0));

    BOOST_TEST(store.revoke(actor.id));
    BOOST_TEST(!store.find_by_access_token(imp.access_token, t0));
    BOOST_TEST(!store.is_live(imp.id, t0));
    BOOST_TEST(!store.refresh(imp2.refresh_token, t0, ttl));
    // A failed refresh for a dead actor also removes the impersonated session.
    BOOST_TEST(!store.revoke(imp2.id));
    BOOST_TEST(store.size() == 1u);
}

BOOST_AUTO_TEST_CASE(impersonated_session_ends_with_expired_actor) {
    session_store store;
    auto actor = store.create(plain(), t0, 100s);
    auto imp = store.create(impersonating(actor.id), t0, ttl);
    BOOST_TEST(store.find_by_access_token(imp.access_token, t0 + 99s).has_value());
    BOOST_TEST(!store.find_by_access_token(imp.access_token, t0 + 100s));
    BOOST_TEST(!store.refresh(imp.refresh_token, t0 + 100s, ttl));
    BOOST_TEST(store.size() == 1u); // only the (expired) actor is left

    // An actor refreshed in time keeps the impersonated session alive.
    auto actor2 = store.create(plain(), t0, 100s);
    auto imp2 = store.create(impersonating(actor2.id), t0, ttl);
    BOOST_TEST(store.refresh(actor2.refresh_token, t0 + 50s, 100s).has_value());
    auto refreshed = store.refresh(imp2.refresh_token, t0 + 120s, ttl);
    BOOST_TEST_REQUIRE(refreshed.has_value());
    BOOST_TEST(store.find_by_access_token(refreshed->access_token, t0 + 149s).has_value());
    BOOST_TEST(!store.find_by_access_token(refreshed->access_token, t0 + 150s));
}

BOOST_AUTO_TEST_CASE(switch_profile) {
    session_store store;
    auto tokens = store.create(plain(100, 10), t0, ttl);
    BOOST_TEST(store.switch_profile(tokens.id, 12));
    auto found = store.find_by_access_token(tokens.access_token, t0);
    BOOST_TEST_REQUIRE(found.has_value());
    BOOST_TEST(found->data.profile == 12);
    BOOST_TEST(found->data.customer == 100);
    BOOST_TEST(store.revoke(tokens.id));
    BOOST_TEST(!store.switch_profile(tokens.id, 10));
}

BOOST_AUTO_TEST_CASE(grants_are_single_use_and_expire) {
    session_store store;
    auto grant = [](session_id actor, profile_id target) {
        return impersonation_grant{
            .actor = {.customer = 100, .profile = 10, .actor_session = actor},
            .target = target,
            .expires_at = t0 + 60s};
    };
    store.add_grant("jti-1", grant(42, 12), t0);
    store.add_grant("jti-2", grant(43, 12), t0);
    store.add_grant("jti-3", grant(44, 12), t0);

    BOOST_TEST(!store.redeem_grant("unknown", t0));
    auto first = store.redeem_grant("jti-1", t0 + 59s);
    BOOST_TEST_REQUIRE(first.has_value());
    BOOST_TEST(first->actor.actor_session == 42u);
    BOOST_TEST(first->target == 12);
    BOOST_TEST((first->actor.profile == std::optional<profile_id>(10)));
    BOOST_TEST(!store.redeem_grant("jti-1", t0 + 59s));

    BOOST_TEST(!store.redeem_grant("jti-2", t0 + 60s));
    // An expired redemption still consumed it.
    BOOST_TEST(!store.redeem_grant("jti-2", t0));

    // sweep drops expired grants, redeemed or not.
    BOOST_TEST(store.grant_count() == 3u);
    store.sweep(t0 + 61s);
    BOOST_TEST(store.grant_count() == 0u);
    BOOST_TEST(!store.redeem_grant("jti-3", t0));
}

BOOST_AUTO_TEST_CASE(issuing_drops_expired_grants_without_a_sweep) {
    session_store store(1); // one grant shard, so every add sees every expired grant
    auto grant = [](clock_type::time_point expires_at) {
        return impersonation_grant{.actor = {.customer = 100, .profile = 10, .actor_session = 1},
                                   .target = 12,
                                   .expires_at = expires_at};
    };
    for (int i = 0; i < 100; ++i)
        store.add_grant("old-" + std::to_string(i), grant(t0 + 60s), t0);
    BOOST_TEST(store.grant_count() == 100u);
    // A minute later: each new grant drops two expired ones, so fifty adds leave only theirs.
    for (int i = 0; i < 50; ++i)
        store.add_grant("new-" + std::to_string(i), grant(t0 + 121s), t0 + 61s);
    BOOST_TEST(store.grant_count() == 50u);
    BOOST_TEST(!store.redeem_grant("old-99", t0 + 61s));
    BOOST_TEST(store.redeem_grant("new-0", t0 + 61s).has_value());
    // Redeemed grants stay until they expire, then leave with the rest.
    BOOST_TEST(store.grant_count() == 50u);
    store.sweep(t0 + 121s);
    BOOST_TEST(store.grant_count() == 0u);
}

BOOST_AUTO_TEST_CASE(sweep_counts_removed_sessions) {
    session_store store(4);
    auto short_lived = store.create(plain(), t0, 10s);
    auto long_lived = store.create(plain(), t0, ttl);
    auto actor = store.create(plain(), t0, 20s);
    auto imp_of_short = store.create(impersonating(actor.id), t0, ttl);
    auto imp_of_long = store.create(impersonating(long_lived.id), t0, ttl);
    auto revoked_actor = store.create(plain(), t0, ttl);
    auto imp_of_revoked = store.create(impersonating(revoked_actor.id), t0, ttl);
    BOOST_TEST(store.size() == 7u);
    BOOST_TEST(store.revoke(revoked_actor.id));

    BOOST_TEST(store.sweep(t0) == 1u); // imp_of_revoked
    BOOST_TEST(store.size() == 5u);
    BOOST_TEST(store.sweep(t0 + 15s) == 1u); // short_lived
    BOOST_TEST(store.sweep(t0 + 25s) == 2u); // actor and imp_of_short
    BOOST_TEST(store.size() == 2u);
    BOOST_TEST(store.find_by_access_token(imp_of_long.access_token, t0 + 25s).has_value());
    BOOST_TEST(store.sweep(t0 + 25s) == 0u);
    BOOST_TEST(store.sweep(t0 + ttl) == 2u);
    BOOST_TEST(store.size() == 0u);
    (void)short_lived;
    (void)imp_of_short;
    (void)imp_of_revoked;
}

BOOST_AUTO_TEST_CASE(single_shard_store_works) {
    session_store store(1);
    auto a = store.create(plain(), t0, ttl);
    auto b = store.create(impersonating(a.id), t0, ttl);
    BOOST_TEST(store.find_by_access_token(b.access_token, t0).has_value());
    BOOST_TEST(store.refresh(b.refresh_token, t0, ttl).has_value());
    BOOST_TEST(store.revoke(a.id));
    BOOST_TEST(store.sweep(t0) == 1u);
}

BOOST_AUTO_TEST_CASE(concurrent_use_keeps_invariants) {
    session_store store(8);
    constexpr int thread_count = 8;
    constexpr int iterations = 1500;
    const auto now = t0;

    struct held {
        session_id id;
        std::string access;
        std::string refresh;
    };
    std::vector<std::vector<held>> live(thread_count);
    std::atomic<int> failures{0};

    auto worker = [&](int index) {
        std::mt19937 rng(static_cast<unsigned>(index) * 7919u + 1u);
        std::vector<held>& mine = live[index];
        for (int i = 0; i < iterations; ++i) {
            const unsigned op = rng() % 10;
            if (op < 3 || mine.empty()) {
                auto t = store.create(plain(index, i), now, ttl);
                mine.push_back({t.id, t.access_token, t.refresh_token});
                // Short-lived sessions for the sweepers to collect; never kept.
                store.create(plain(index, -i), now, 1s);
            } else if (op < 6) {
                const held& h = mine[rng() % mine.size()];
                auto found = store.find_by_access_token(h.access, now + 10s);
                if (!found || found->id != h.id)
                    ++failures;
            } else if (op < 8) {
                held& h = mine[rng() % mine.size()];
                auto r = store.refresh(h.refresh, now + 10s, ttl);
                if (!r || r->id != h.id) {
                    ++failures;
                } else {
                    h.access = r->access_token;
                    h.refresh = r->refresh_token;
                }
            } else if (op < 9) {
                const std::size_t pick = rng() % mine.size();
                if (!store.revoke(mine[pick].id))
                    ++failures;
                mine.erase(mine.begin() + static_cast<std::ptrdiff_t>(pick));
            } else {
                store.sweep(now + 10s);
            }
        }
    };

    std::vector<std::thread> threads;
    for (int i = 0; i < thread_count; ++i)
        threads.emplace_back(worker, i);
    for (auto& t : threads)
        t.join();

    BOOST_TEST(failures.load() == 0);
    store.sweep(now + 10s);
    std::size_t expected = 0;
    std::set<session_id> ids;
    for (const auto& mine : live) {
        for (const held& h : mine) {
            ++expected;
            ids.insert(h.id);
            auto found = store.find_by_access_token(h.access, now + 10s);
            BOOST_TEST_REQUIRE(found.has_value());
            BOOST_TEST(found->id == h.id);
        }
    }
    BOOST_TEST(ids.size() == expected);
    BOOST_TEST(store.size() == expected);
}

BOOST_AUTO_TEST_SUITE_END()
