// The Redis store against Debian's redis-server, started here on a free port: the session
// contract of session_store_test, what Redis holds after a login, single-use grants and exact
// counters under concurrency from two stores (two instances), and outages (SIGKILL, SIGSTOP).
#include <portal_auth/error.hpp>
#include <portal_auth/redis_store.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/test/unit_test.hpp>

#include <openssl/rand.h>

#include <chrono>
#include <exception>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base64.hpp"

#include <hiredis/hiredis.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace {

namespace asio = boost::asio;
using namespace portal_auth;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

constexpr auto test_deadline = 20s;

unsigned short free_port() {
    asio::io_context ioc;
    asio::ip::tcp::acceptor acceptor(ioc, {asio::ip::make_address("127.0.0.1"), 0});
    return acceptor.local_endpoint().port();
}

std::string random_hex(std::size_t bytes) {
    std::vector<unsigned char> raw(bytes);
    BOOST_REQUIRE(RAND_bytes(raw.data(), static_cast<int>(raw.size())) == 1);
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    for (unsigned char c : raw) {
        out.push_back(digits[c >> 4]);
        out.push_back(digits[c & 0xf]);
    }
    return out;
}

// A synchronous hiredis connection, to look at what Redis holds.
struct raw_client {
    explicit raw_client(unsigned short port)
        : ctx(redisConnectWithTimeout("127.0.0.1", port, timeval{1, 0})) {}
    ~raw_client() {
        if (ctx)
            redisFree(ctx);
    }
    raw_client(const raw_client&) = delete;
    raw_client& operator=(const raw_client&) = delete;

    bool ok() const { return ctx && !ctx->err; }

    // Every element of the reply, flattened into strings.
    std::vector<std::string> command(const std::vector<std::string>& args) {
        std::vector<const char*> argv;
        std::vector<std::size_t> lengths;
        for (const auto& a : args) {
            argv.push_back(a.data());
            lengths.push_back(a.size());
        }
        auto* reply = static_cast<redisReply*>(
            redisCommandArgv(ctx, static_cast<int>(argv.size()), argv.data(), lengths.data()));
        std::vector<std::string> out;
        if (reply)
            flatten(*reply, out);
        freeReplyObject(reply);
        return out;
    }

    static void flatten(const redisReply& r, std::vector<std::string>& out) {
        if (r.type == REDIS_REPLY_ARRAY) {
            for (std::size_t i = 0; i < r.elements; ++i)
                flatten(*r.element[i], out);
        } else if (r.type == REDIS_REPLY_INTEGER) {
            out.push_back(std::to_string(r.integer));
        } else if (r.str) {
            out.emplace_back(r.str, r.len);
        }
    }

    // Every key under the prefix, and every value of each, as one string.
    std::string dump(const std::string& prefix) {
        std::string all;
        for (const std::string& key : command({"KEYS", prefix + "*"})) {
            all += key + "\n";
            const std::string type = command({"TYPE", key}).at(0);
            std::vector<std::string> values;
            if (type == "string")
                values = command({"GET", key});
            else if (type == "hash")
                values = command({"HGETALL", key});
            else if (type == "set")
                values = command({"SMEMBERS", key});
            else if (type == "zset")
                values = command({"ZRANGE", key, "0", "-1", "WITHSCORES"});
            else
                BOOST_FAIL("unexpected type " << type << " of " << key);
            for (const auto& v : values)
                all += v + "\n";
        }
        return all;
    }

    redisContext* ctx;
};

// Debian's redis-server on a free port, without persistence; stopped by its pid.
class redis_server {
public:
    redis_server() : port_(free_port()) { start(); }
    ~redis_server() { stop(SIGTERM); }
    redis_server(const redis_server&) = delete;
    redis_server& operator=(const redis_server&) = delete;

    unsigned short port() const noexcept { return port_; }

    void start() {
        const std::string port = std::to_string(port_);
        std::vector<std::string> args{"redis-server", "--port",      port,       "--bind",
                                      "127.0.0.1",    "--save",      "",         "--appendonly",
                                      "no",           "--daemonize", "no",       "--loglevel",
                                      "warning",      "--logfile",   "/dev/null"};
        std::vector<char*> argv;
        for (auto& a : args)
            argv.push_back(a.data());
        argv.push_back(nullptr);
        BOOST_REQUIRE(posix_spawnp(&pid_, "redis-server", nullptr, nullptr, argv.data(), environ) ==
                      0);
        const auto until = steady::now() + 10s;
        while (steady::now() < until) {
            raw_client c(port_);
            if (c.ok() && c.command({"PING"}) == std::vector<std::string>{"PONG"})
                return;
            std::this_thread::sleep_for(20ms);
        }
        BOOST_FAIL("redis-server did not start on port " << port_);
    }

    void signal(int sig) { ::kill(pid_, sig); }

    void stop(int sig) {
        if (pid_ > 0) {
            ::kill(pid_, sig);
            ::waitpid(pid_, nullptr, 0);
            pid_ = -1;
        }
    }

private:
    unsigned short port_;
    pid_t pid_ = -1;
};

redis_server& shared_server() {
    static redis_server server;
    return server;
}

// Runs the io_context until `done` or the test deadline.
template <class Done> void run_until(asio::io_context& ioc, Done done) {
    const auto until = steady::now() + test_deadline;
    while (!done() && steady::now() < until)
        ioc.run_one_for(20ms);
    BOOST_REQUIRE_MESSAGE(done(), "operations did not complete before the deadline");
}

template <class T> T run(asio::io_context& ioc, asio::awaitable<T> op) {
    std::optional<T> out;
    std::exception_ptr error;
    bool done = false;
    asio::co_spawn(ioc, std::move(op), [&](std::exception_ptr e, T value) {
        error = e;
        if (!e)
            out.emplace(std::move(value));
        done = true;
    });
    run_until(ioc, [&] { return done; });
    if (error)
        std::rethrow_exception(error);
    return std::move(*out);
}

// Runs every operation at once (each its own coroutine) and returns their results in order.
template <class T>
std::vector<T> run_all(asio::io_context& ioc, std::vector<asio::awaitable<T>> ops) {
    std::vector<std::optional<T>> results(ops.size());
    std::size_t remaining = ops.size();
    for (std::size_t i = 0; i < ops.size(); ++i) {
        asio::co_spawn(ioc, std::move(ops[i]), [&, i](std::exception_ptr e, T value) {
            if (!e)
                results[i].emplace(std::move(value));
            --remaining;
        });
    }
    run_until(ioc, [&] { return remaining == 0; });
    std::vector<T> out;
    for (auto& r : results) {
        BOOST_REQUIRE(r.has_value());
        out.push_back(std::move(*r));
    }
    return out;
}

struct store_fixture {
    asio::io_context ioc;
    std::string prefix = "test-" + random_hex(6) + ":";
    unsigned short port;
    std::vector<std::unique_ptr<redis_store>> stores;

    explicit store_fixture(unsigned short p = shared_server().port()) : port(p) {
        add_store();
        add_store();
    }
    ~store_fixture() {
        stores.clear();
        ioc.run_for(50ms); // let the connections close
    }

    redis_store& add_store(std::chrono::milliseconds timeout = 500ms) {
        stores.push_back(std::make_unique<redis_store>(
            ioc.get_executor(),
            redis_store_config{.port = port, .prefix = prefix, .timeout = timeout}));
        BOOST_REQUIRE(wait_reachable(*stores.back(), 5s));
        return *stores.back();
    }

    bool wait_reachable(redis_store& s, steady::duration limit) {
        const auto until = steady::now() + limit;
        while (steady::now() < until) {
            if (run(ioc, s.reachable()))
                return true;
            ioc.run_for(50ms);
        }
        return false;
    }

    redis_store& a() { return *stores[0]; }
    redis_store& b() { return *stores[1]; }
};

session_data customer_session(customer_id c, profile_id p) {
    session_data d;
    d.customer = c;
    d.profile = p;
    return d;
}

} // namespace

BOOST_AUTO_TEST_SUITE(redis_store_sessions)

BOOST_FIXTURE_TEST_CASE(create_find_refresh_reuse_revoke, store_fixture) {
    const auto now = clock_type::now();
    auto issued = run(ioc, a().create(customer_session(7, 70), now, 3600s));
    BOOST_REQUIRE(issued);
    BOOST_TEST(issued->access_token.size() == 32u);
    BOOST_TEST(issued->refresh_token.size() == 32u);
    BOOST_TEST(issued->access_token != issued->refresh_token);
    auto raw = base64url_decode(issued->access_token);
    BOOST_REQUIRE(raw && raw->size() == 24u);

    // Found through the other instance too.
    auto found = run(ioc, b().find_by_access_token(issued->access_token, now + 1s));
    BOOST_REQUIRE(found && *found);
    BOOST_TEST((*found)->id == issued->id);
    BOOST_TEST((*found)->data.customer == 7);
    BOOST_TEST((*found)->data.profile == 70);
    BOOST_TEST(!(*found)->data.impersonator);
    BOOST_TEST(((*found)->expires_at == issued->expires_at));
    BOOST_TEST(*run(ioc, a().is_live(issued->id, now)));
    BOOST_TEST(!*run(ioc, a().is_live(issued->id, issued->expires_at)));
    BOOST_TEST(!*run(ioc, a().find_by_access_token(issued->access_token, issued->expires_at)));

    // Not the refresh token, a wrong secret, garbage.
    BOOST_TEST(!*run(ioc, a().find_by_access_token(issued->refresh_token, now)));
    std::string forged = issued->access_token;
    forged[20] = forged[20] == 'A' ? 'B' : 'A';
    BOOST_TEST(!*run(ioc, a().find_by_access_token(forged, now)));
    BOOST_TEST(!*run(ioc, a().find_by_access_token("not a token", now)));

    // Rotation: new tokens, old access gone.
    auto rotated = run(ioc, b().refresh(issued->refresh_token, now + 10s, 3600s));
    BOOST_REQUIRE(rotated);
    BOOST_TEST(rotated->id == issued->id);
    BOOST_TEST(rotated->access_token != issued->access_token);
    BOOST_TEST(rotated->refresh_token != issued->refresh_token);
    BOOST_TEST((rotated->expires_at > issued->expires_at));
    BOOST_TEST(!*run(ioc, a().find_by_access_token(issued->access_token, now + 11s)));
    BOOST_TEST(run(ioc, a().find_by_access_token(rotated->access_token, now + 11s))->has_value());

    // Garbage refresh: invalid, session untouched.
    BOOST_TEST(run(ioc, a().refresh("garbage", now, 3600s)).error() ==
               make_error_code(errc::invalid_refresh_token));
    BOOST_TEST(run(ioc, a().refresh(forged, now, 3600s)).error() ==
               make_error_code(errc::invalid_refresh_token));

    // Reuse of the rotated-away refresh token ends the session.
    BOOST_TEST(run(ioc, a().refresh(issued->refresh_token, now + 12s, 3600s)).error() ==
               make_error_code(errc::refresh_token_reused));
    BOOST_TEST(!*run(ioc, a().find_by_access_token(rotated->access_token, now + 13s)));
    BOOST_TEST(run(ioc, a().refresh(rotated->refresh_token, now + 13s, 3600s)).error() ==
               make_error_code(errc::invalid_refresh_token));
}

BOOST_FIXTURE_TEST_CASE(switch_profile_and_revoke, store_fixture) {
    const auto now = clock_type::now();
    auto issued = run(ioc, a().create(customer_session(7, 70), now, 3600s));
    BOOST_REQUIRE(issued);
    BOOST_TEST(*run(ioc, b().switch_profile(issued->id, 71)));
    auto found = run(ioc, a().find_by_access_token(issued->access_token, now));
    BOOST_REQUIRE(found && *found);
    BOOST_TEST((*found)->data.profile == 71);

    BOOST_TEST(*run(ioc, a().revoke(issued->id)));
    BOOST_TEST(!*run(ioc, a().revoke(issued->id)));
    BOOST_TEST(!*run(ioc, a().find_by_access_token(issued->access_token, now)));
    BOOST_TEST(!*run(ioc, a().is_live(issued->id, now)));
    BOOST_TEST(!*run(ioc, a().switch_profile(issued->id, 72)));
    BOOST_TEST(run(ioc, a().refresh(issued->refresh_token, now, 3600s)).error() ==
               make_error_code(errc::invalid_refresh_token));
    // No key left behind for a revoked session.
    raw_client raw(port);
    BOOST_TEST(raw.command({"KEYS", prefix + "*"}).empty());
}

BOOST_FIXTURE_TEST_CASE(impersonated_session_ends_with_its_actor, store_fixture) {
    const auto now = clock_type::now();
    auto actor = run(ioc, a().create(customer_session(1, 10), now, 3600s));
    BOOST_REQUIRE(actor);
    session_data d = customer_session(2, 20);
    d.impersonator = impersonator_info{.customer = 1,
                                       .profile = 10,
                                       .is_operator = false,
                                       .actor_session = actor->id,
                                       .impersonation_id = "jti-1",
                                       .reason = "ticket 42",
                                       .started_at = now};
    d.not_after = now + 900s;
    auto imp = run(ioc, b().create(d, now, 3600s));
    BOOST_REQUIRE(imp);
    BOOST_TEST((imp->expires_at <= now + 900s));
    BOOST_TEST((imp->expires_at > now + 899s));

    auto found = run(ioc, a().find_by_access_token(imp->access_token, now));
    BOOST_REQUIRE(found && *found);
    BOOST_REQUIRE((*found)->data.impersonator);
    const impersonator_info& who = *(*found)->data.impersonator;
    BOOST_TEST(who.actor_session == actor->id);
    BOOST_TEST(who.impersonation_id == "jti-1");
    BOOST_TEST(*who.reason == "ticket 42");
    BOOST_TEST(*who.profile == 10);
    BOOST_TEST((who.started_at == now));
    BOOST_TEST(((*found)->data.not_after == d.not_after.value() ||
                (*found)->data.not_after < d.not_after));

    // Refresh never passes the cap.
    auto rotated = run(ioc, a().refresh(imp->refresh_token, now + 1s, 3600s));
    BOOST_REQUIRE(rotated);
    BOOST_TEST((rotated->expires_at == imp->expires_at));

    BOOST_TEST(*run(ioc, a().revoke(actor->id)));
    BOOST_TEST(!*run(ioc, a().is_live(imp->id, now + 2s)));
    BOOST_TEST(!*run(ioc, a().find_by_access_token(rotated->access_token, now + 2s)));
}

BOOST_FIXTURE_TEST_CASE(no_token_at_rest, store_fixture) {
    const auto now = clock_type::now();
    auto issued = run(ioc, a().create(customer_session(7, 70), now, 3600s));
    BOOST_REQUIRE(issued);
    auto rotated = run(ioc, a().refresh(issued->refresh_token, now, 3600s));
    BOOST_REQUIRE(rotated);

    raw_client raw(port);
    const std::string all = raw.dump(prefix);
    BOOST_TEST(!all.empty());
    for (const std::string& token : {issued->access_token, issued->refresh_token,
                                     rotated->access_token, rotated->refresh_token}) {
        BOOST_TEST(all.find(token) == std::string::npos);
        auto bytes = base64url_decode(token);
        BOOST_REQUIRE(bytes);
        const std::string secret(bytes->begin() + 8, bytes->end());
        BOOST_TEST(all.find(secret) == std::string::npos);
        static constexpr char digits[] = "0123456789abcdef";
        std::string hex;
        for (unsigned char c : secret) {
            hex.push_back(digits[c >> 4]);
            hex.push_back(digits[c & 0xf]);
        }
        BOOST_TEST(all.find(hex) == std::string::npos);
    }
    // The session's keys expire by themselves.
    const auto ttl = raw.command({"PTTL", prefix + "s:" + std::to_string(issued->id)});
    BOOST_REQUIRE(ttl.size() == 1u);
    BOOST_TEST(std::stoll(ttl[0]) > 3590000);
}

BOOST_FIXTURE_TEST_CASE(revoke_matching_scans_sessions, store_fixture) {
    const auto now = clock_type::now();
    auto one = run(ioc, a().create(customer_session(1, 10), now, 3600s));
    auto two = run(ioc, a().create(customer_session(2, 20), now, 3600s));
    auto three = run(ioc, a().create(customer_session(1, 11), now, 3600s));
    BOOST_REQUIRE(one && two && three);
    auto ended = run(
        ioc, b().revoke_matching([](const session_snapshot& s) { return s.data.customer == 1; }));
    BOOST_REQUIRE(ended);
    BOOST_TEST(ended->size() == 2u);
    BOOST_TEST(!*run(ioc, a().find_by_access_token(one->access_token, now)));
    BOOST_TEST(!*run(ioc, a().find_by_access_token(three->access_token, now)));
    BOOST_TEST(run(ioc, a().find_by_access_token(two->access_token, now))->has_value());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(redis_store_grants)

impersonation_grant sample_grant(clock_type::time_point now) {
    impersonation_grant g;
    g.actor = impersonator_info{.customer = 1,
                                .profile = std::nullopt,
                                .is_operator = true,
                                .actor_session = 99,
                                .impersonation_id = "jti",
                                .reason = std::nullopt,
                                .started_at = now};
    g.target = 20;
    g.target_customer = 2;
    g.issued_at = now;
    g.expires_at = now + 60s;
    return g;
}

BOOST_FIXTURE_TEST_CASE(twenty_parallel_redemptions_one_wins, store_fixture) {
    const auto now = clock_type::now();
    BOOST_REQUIRE(run(ioc, a().add_grant("jti-race", sample_grant(now), now)));
    std::vector<asio::awaitable<store_result<std::optional<impersonation_grant>>>> ops;
    for (int i = 0; i < 20; ++i)
        ops.push_back((i % 2 ? a() : b()).redeem_grant("jti-race", now + 1s));
    auto results = run_all(ioc, std::move(ops));
    int winners = 0;
    for (const auto& r : results) {
        BOOST_REQUIRE(r);
        if (*r) {
            ++winners;
            BOOST_TEST((*r)->target == 20);
            BOOST_TEST((*r)->target_customer == 2);
            BOOST_TEST((*r)->actor.is_operator);
            BOOST_TEST(!(*r)->actor.profile);
            BOOST_TEST((*r)->actor.actor_session == 99u);
            BOOST_TEST(((*r)->expires_at == now + 60s));
            BOOST_TEST(!(*r)->withdrawn_because);
        }
    }
    BOOST_TEST(winners == 1);
}

BOOST_FIXTURE_TEST_CASE(expired_unknown_and_withdrawn_grants, store_fixture) {
    const auto now = clock_type::now();
    BOOST_TEST(!*run(ioc, a().redeem_grant("unknown", now)));
    BOOST_REQUIRE(run(ioc, a().add_grant("late", sample_grant(now), now)));
    BOOST_TEST(!*run(ioc, a().redeem_grant("late", now + 60s)));
    BOOST_TEST(!*run(ioc, a().redeem_grant("late", now + 1s))); // consumed by the late one

    auto keep = sample_grant(now);
    keep.target = 21;
    BOOST_REQUIRE(run(ioc, a().add_grant("keep", keep, now)));
    BOOST_REQUIRE(run(ioc, a().add_grant("drop", sample_grant(now), now)));
    auto withdrawn =
        run(ioc, b().withdraw_grants([](const impersonation_grant& g) { return g.target == 20; },
                                     "actor_lost_right", now));
    BOOST_REQUIRE(withdrawn);
    BOOST_REQUIRE(withdrawn->size() == 1u);
    BOOST_TEST(withdrawn->front().first == "drop");
    BOOST_TEST(*withdrawn->front().second.withdrawn_because == "actor_lost_right");
    // Withdrawn grants answer why, and stay withdrawn.
    for (int i = 0; i < 2; ++i) {
        auto r = run(ioc, a().redeem_grant("drop", now + 1s));
        BOOST_REQUIRE(r && *r);
        BOOST_TEST(*(*r)->withdrawn_because == "actor_lost_right");
    }
    auto again = run(
        ioc, a().withdraw_grants([](const impersonation_grant&) { return true; }, "other", now));
    BOOST_REQUIRE(again);
    BOOST_TEST(again->size() == 1u); // only "keep"
    auto kept = run(ioc, a().redeem_grant("keep", now + 1s));
    BOOST_REQUIRE(kept && *kept);
    BOOST_TEST(*(*kept)->withdrawn_because == "other");
}

BOOST_FIXTURE_TEST_CASE(impersonation_records_from_issue_to_end, store_fixture) {
    const auto now = clock_type::now();
    auto actor = run(ioc, a().create(customer_session(1, 10), now, 3600s));
    BOOST_REQUIRE(actor);
    auto grant_of = [&](clock_type::time_point expires) {
        auto g = sample_grant(now);
        g.actor.actor_session = actor->id;
        g.actor.reason = "ticket 7";
        g.expires_at = expires;
        return g;
    };
    BOOST_REQUIRE(run(ioc, a().add_grant("r1", grant_of(now + 60s), now)));
    auto issued = run(ioc, b().find_impersonation("r1"));
    BOOST_REQUIRE(issued && *issued);
    BOOST_TEST(((*issued)->state() == impersonation_state::issued));
    BOOST_TEST((*issued)->target_customer == 2);
    BOOST_TEST((*issued)->target_profile == 20);
    BOOST_TEST(*(*issued)->reason == "ticket 7");
    BOOST_TEST(((*issued)->token_expires_at == now + 60s));
    BOOST_TEST(!*run(ioc, b().find_impersonation("unknown")));

    // Redeemed and started: active, once.
    BOOST_REQUIRE(*run(ioc, a().redeem_grant("r1", now)));
    session_data d = customer_session(2, 20);
    d.impersonator = grant_of(now + 60s).actor;
    d.not_after = now + 900s;
    auto imp = run(ioc, a().create(d, now, 3600s));
    BOOST_REQUIRE(imp);
    BOOST_TEST(*run(ioc, b().start_impersonation("r1", imp->id, now, now + 900s)));
    BOOST_TEST(!*run(ioc, b().start_impersonation("r1", imp->id, now, now + 900s)));
    auto active = run(ioc, a().find_impersonation("r1"));
    BOOST_REQUIRE(active && *active);
    BOOST_TEST(((*active)->state() == impersonation_state::active));
    BOOST_TEST(*(*active)->session == imp->id);
    BOOST_TEST(((*active)->expires_at() == now + 900s));

    // Listing, newest first, filtered.
    BOOST_REQUIRE(run(ioc, a().add_grant("r2", grant_of(now + 60s), now)));
    auto all = run(ioc, a().list_impersonations({}));
    BOOST_REQUIRE(all && all->size() == 2u);
    BOOST_TEST((*all)[0].id == "r2");
    BOOST_TEST((*all)[1].id == "r1");
    BOOST_TEST(run(ioc, a().list_impersonations({.target_customer = 3}))->empty());
    BOOST_TEST(run(ioc, a().list_impersonations({.include_operator_actors = false}))->empty());
    auto only_active = run(ioc, a().list_impersonations({.state = impersonation_state::active}));
    BOOST_REQUIRE(only_active && only_active->size() == 1u);

    // Ending an active one ends its session; once.
    auto ended = run(ioc, a().end_impersonation("r1", "customer_ended", now + 1s));
    BOOST_REQUIRE(ended && *ended);
    BOOST_TEST(*(*ended)->end_reason == "customer_ended");
    BOOST_TEST(((*ended)->state() == impersonation_state::ended));
    BOOST_TEST(!*run(ioc, a().is_live(imp->id, now + 1s)));
    BOOST_TEST(!*run(ioc, a().end_impersonation("r1", "again", now + 1s)));

    // Ending an issued one withdraws its grant.
    BOOST_REQUIRE(*run(ioc, b().end_impersonation("r2", "actor_cancelled", now + 1s)));
    auto withdrawn = run(ioc, a().redeem_grant("r2", now + 2s));
    BOOST_REQUIRE(withdrawn && *withdrawn);
    BOOST_TEST(*(*withdrawn)->withdrawn_because == "actor_cancelled");

    // The actor's session ended: everything it issued ends.
    BOOST_REQUIRE(run(ioc, a().add_grant("r3", grant_of(now + 60s), now)));
    BOOST_REQUIRE(run(ioc, a().add_grant("r4", grant_of(now + 60s), now)));
    auto of_actor = run(ioc, b().end_impersonations_of_actor(actor->id, "actor_ended", now + 3s));
    BOOST_REQUIRE(of_actor);
    BOOST_TEST(of_actor->size() == 2u);

    // Time ends the rest: an expired token, a session that is gone.
    BOOST_REQUIRE(run(ioc, a().add_grant("r5", grant_of(now + 1s), now)));
    BOOST_REQUIRE(run(ioc, a().add_grant("r6", grant_of(now + 60s), now)));
    auto other = run(ioc, a().create(customer_session(2, 20), now, 3600s));
    BOOST_REQUIRE(other);
    BOOST_TEST(*run(ioc, a().start_impersonation("r6", other->id, now, now + 900s)));
    BOOST_REQUIRE(*run(ioc, a().revoke(other->id)));
    auto expired = run(ioc, a().expire_impersonations(now + 2s));
    BOOST_REQUIRE(expired);
    BOOST_REQUIRE(expired->size() == 2u);
    for (const auto& r : *expired)
        BOOST_TEST(*r.end_reason == (r.id == "r5" ? "not_redeemed" : "expired"));
    BOOST_TEST(run(ioc, a().expire_impersonations(now + 2s))->empty());
    auto all_ended = run(ioc, a().list_impersonations({.state = impersonation_state::ended}));
    BOOST_REQUIRE(all_ended);
    BOOST_TEST(all_ended->size() == 6u);
    BOOST_TEST(run(ioc, a().list_impersonations({.ended_limit = 2}))->size() == 2u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(redis_store_counters)

BOOST_FIXTURE_TEST_CASE(reservations_exact_under_concurrency, store_fixture) {
    const auto now = clock_type::now();
    const rate_limit limit{.max = 5, .window = 300s};
    const std::string email = "email:a@example.com";
    const std::string address = "ip:192.0.2.1";
    const counted_key keys[] = {{email, limit}, {address, rate_limit{.max = 100, .window = 60s}}};
    std::vector<asio::awaitable<store_result<attempt_reservation>>> ops;
    for (int i = 0; i < 20; ++i)
        ops.push_back((i % 2 ? a() : b()).reserve(keys, now + std::chrono::microseconds(i)));
    auto results = run_all(ioc, std::move(ops));
    int granted = 0;
    for (const auto& r : results) {
        BOOST_REQUIRE(r);
        if (r->granted()) {
            ++granted;
        } else {
            BOOST_TEST(*r->refused_by == 0u);
            BOOST_TEST(r->retry_after.count() > 299);
            BOOST_TEST(r->retry_after.count() <= 300);
        }
    }
    BOOST_TEST(granted == 5);

    // The address key counted only the granted attempts.
    const rate_limit tight{.max = 5, .window = 60s};
    auto blocked = run(ioc, a().blocked_for(address, tight, now + 1s));
    BOOST_REQUIRE(blocked);
    BOOST_TEST(blocked->has_value());
    BOOST_TEST(!*run(ioc, a().blocked_for(address, rate_limit{.max = 6, .window = 60s}, now + 1s)));

    auto email_blocked = run(ioc, a().blocked_for(email, limit, now + 100s));
    BOOST_REQUIRE(email_blocked && *email_blocked);
    BOOST_TEST(email_blocked->value().count() == 200);
    // The window passes.
    BOOST_TEST(!*run(ioc, a().blocked_for(email, limit, now + 301s)));
    auto later = run(ioc, a().reserve(keys, now + 301s));
    BOOST_REQUIRE(later);
    BOOST_TEST(later->granted());
}

BOOST_FIXTURE_TEST_CASE(release_and_reset, store_fixture) {
    const auto now = clock_type::now();
    const rate_limit limit{.max = 2, .window = 60s};
    const counted_key keys[] = {{"k", limit}};
    BOOST_TEST(run(ioc, a().reserve(keys, now))->granted());
    BOOST_TEST(run(ioc, a().reserve(keys, now + 1s))->granted());
    auto refused = run(ioc, a().reserve(keys, now + 2s));
    BOOST_REQUIRE(refused);
    BOOST_TEST(!refused->granted());
    BOOST_TEST(refused->retry_after.count() == 58);

    BOOST_REQUIRE(run(ioc, b().release(keys, now + 1s)));
    BOOST_TEST(!*run(ioc, a().blocked_for("k", limit, now + 2s)));
    BOOST_TEST(run(ioc, a().reserve(keys, now + 3s))->granted());
    BOOST_TEST(run(ioc, a().blocked_for("k", limit, now + 3s))->has_value());
    BOOST_REQUIRE(run(ioc, a().reset("k")));
    BOOST_TEST(!*run(ioc, a().blocked_for("k", limit, now + 3s)));

    // max = 0 turns the limit off.
    const counted_key off[] = {{"off", rate_limit{.max = 0, .window = 60s}}};
    for (int i = 0; i < 3; ++i)
        BOOST_TEST(run(ioc, a().reserve(off, now))->granted());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(redis_store_threads)

asio::awaitable<bool> create_then_find(redis_store& store, customer_id customer) {
    const auto now = clock_type::now();
    auto issued = co_await store.create(customer_session(customer, 1), now, 60s);
    if (!issued)
        co_return false;
    auto found = co_await store.find_by_access_token(issued->access_token, now);
    if (!found || !*found || (*found)->data.customer != customer)
        co_return false;
    auto revoked = co_await store.revoke(issued->id);
    co_return revoked.has_value() && revoked.value();
}

// One store used from coroutines on two threads at once.
BOOST_AUTO_TEST_CASE(one_store_two_threads) {
    asio::io_context ioc;
    auto work = asio::make_work_guard(ioc);
    std::vector<std::thread> threads;
    for (int i = 0; i < 2; ++i)
        threads.emplace_back([&ioc] { ioc.run(); });
    {
        redis_store store(ioc.get_executor(), redis_store_config{
                                                  .port = shared_server().port(),
                                                  .prefix = "test-" + random_hex(6) + ":",
                                              });
        const auto until = steady::now() + 5s;
        while (!asio::co_spawn(ioc, store.reachable(), asio::use_future).get() &&
               steady::now() < until)
            std::this_thread::sleep_for(20ms);
        std::vector<std::future<bool>> results;
        for (int i = 0; i < 200; ++i)
            results.push_back(asio::co_spawn(asio::make_strand(ioc), create_then_find(store, i + 1),
                                             asio::use_future));
        int ok = 0;
        for (auto& r : results) {
            BOOST_REQUIRE(r.wait_for(test_deadline) == std::future_status::ready);
            ok += r.get() ? 1 : 0;
        }
        BOOST_TEST(ok == 200);
    }
    std::this_thread::sleep_for(50ms); // the connection closes
    work.reset();
    ioc.stop();
    for (auto& t : threads)
        t.join();
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(redis_store_outages)

template <class Op>
void expect_unavailable_within(asio::io_context& ioc, Op op, std::chrono::milliseconds limit) {
    const auto start = steady::now();
    auto r = run(ioc, op());
    const auto elapsed = steady::now() - start;
    BOOST_TEST(!r);
    if (!r)
        BOOST_TEST(r.error() == make_error_code(errc::store_unavailable));
    BOOST_TEST(elapsed < limit,
               "took " << std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count()
                       << " ms");
}

BOOST_AUTO_TEST_CASE(killed_then_restarted) {
    redis_server server;
    store_fixture f(server.port());
    redis_store& store = f.add_store(300ms);
    const auto now = clock_type::now();
    auto before = run(f.ioc, store.create(customer_session(1, 10), now, 3600s));
    BOOST_REQUIRE(before);

    server.stop(SIGKILL);
    const auto limit = 300ms + 100ms;
    const counted_key keys[] = {{"k", rate_limit{}}};
    expect_unavailable_within(
        f.ioc, [&] { return store.find_by_access_token(before->access_token, now); }, limit);
    expect_unavailable_within(
        f.ioc, [&] { return store.create(customer_session(1, 10), now, 3600s); }, limit);
    expect_unavailable_within(
        f.ioc, [&] { return store.reserve(keys, now); }, limit);
    expect_unavailable_within(
        f.ioc, [&] { return store.redeem_grant("j", now); }, limit);
    BOOST_TEST(!run(f.ioc, store.reachable()));

    server.start(); // the same port, empty (no persistence)
    BOOST_REQUIRE(f.wait_reachable(store, 5s));
    auto after = run(f.ioc, store.create(customer_session(1, 10), now, 3600s));
    BOOST_REQUIRE(after);
    BOOST_TEST(run(f.ioc, store.find_by_access_token(after->access_token, now))->has_value());
    BOOST_TEST(run(f.ioc, store.reserve(keys, now))->granted());
}

BOOST_AUTO_TEST_CASE(nothing_listening_or_refused_fails_fast) {
    asio::io_context ioc;
    const auto now = clock_type::now();
    {
        redis_store nobody(ioc.get_executor(), redis_store_config{.port = free_port()});
        redis_store wrong_password(
            ioc.get_executor(),
            redis_store_config{.port = shared_server().port(), .password = "not-the-password"});
        ioc.run_for(300ms); // both try to connect, and fail
        const auto unavailable = make_error_code(errc::store_unavailable);
        for (redis_store* store : {&nobody, &wrong_password}) {
            const auto start = steady::now();
            auto r = run(ioc, store->is_live(1, now));
            BOOST_REQUIRE(!r);
            BOOST_TEST(r.error() == unavailable);
            BOOST_TEST((steady::now() - start < 100ms));
            BOOST_TEST(!run(ioc, store->reachable()));
        }
    }
    ioc.run_for(50ms);
}

BOOST_AUTO_TEST_CASE(hung_server_times_out) {
    redis_server server;
    store_fixture f(server.port());
    redis_store& store = f.add_store(300ms);
    const auto now = clock_type::now();

    server.signal(SIGSTOP);
    const auto limit = 300ms + 100ms;
    std::vector<asio::awaitable<store_result<bool>>> ops;
    for (int i = 0; i < 5; ++i)
        ops.push_back(store.is_live(static_cast<session_id>(i + 1), now));
    const auto start = steady::now();
    auto results = run_all(f.ioc, std::move(ops));
    const auto elapsed = steady::now() - start;
    for (const auto& r : results) {
        BOOST_TEST(!r);
        if (!r)
            BOOST_TEST(r.error() == make_error_code(errc::store_unavailable));
    }
    BOOST_TEST((elapsed < limit));
    server.signal(SIGCONT);
    BOOST_TEST(f.wait_reachable(store, 5s));
    BOOST_TEST(!*run(f.ioc, store.is_live(1, now)));
}

BOOST_AUTO_TEST_SUITE_END()
