// portal-auth micro-benchmarks: the per-request building blocks measured without sockets.
// Run by scripts/bench.sh; alone: build-bench/test/bench/portal_auth_micro --benchmark_min_time=0.2
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/json/object.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "bench_world.hpp"
#include "router.hpp"

#include <benchmark/benchmark.h>

namespace {

using namespace portal_auth;
namespace asio = boost::asio;
namespace http = boost::beast::http;

// --- session store ------------------------------------------------------------------------------

constexpr std::chrono::seconds session_ttl{3600 * 24};

// A store holding n live sessions and their access tokens in a shuffled order (so that lookups
// at 1M touch memory the way unrelated clients would). Built once per size.
struct filled_store {
    session_store store;
    std::vector<std::string> tokens;

    explicit filled_store(std::size_t n) {
        const auto now = clock_type::now();
        tokens.reserve(n);
        for (std::size_t i = 0; i < n; ++i) {
            auto issued =
                store.create(session_data{.customer = static_cast<customer_id>(100001 + i % 20000),
                                          .profile = static_cast<profile_id>(200001 + i % 20000)},
                             now, session_ttl);
            tokens.push_back(std::move(issued.access_token));
        }
        std::shuffle(tokens.begin(), tokens.end(), std::mt19937_64(42));
    }
};

filled_store& store_of_size(std::size_t n) {
    static std::map<std::size_t, std::unique_ptr<filled_store>> stores;
    auto& slot = stores[n];
    if (!slot)
        slot = std::make_unique<filled_store>(n);
    return *slot;
}

void BM_SessionLookup(benchmark::State& state) {
    auto& fixture = store_of_size(static_cast<std::size_t>(state.range(0)));
    const auto now = clock_type::now();
    std::size_t i = 0;
    const std::size_t n = fixture.tokens.size();
    for (auto _ : state) {
        auto found = fixture.store.find_by_access_token(fixture.tokens[i], now);
        benchmark::DoNotOptimize(found);
        if (++i == n)
            i = 0;
    }
    state.SetItemsProcessed(state.iterations());
    state.counters["sessions"] = static_cast<double>(fixture.store.size());
}
BENCHMARK(BM_SessionLookup)->Arg(1000)->Arg(1000000);

// The same lookup through memory_store's awaitable, awaited by a coroutine that makes many
// lookups: the cost of the awaitable layer (a frame per call, completing inline) over the call.
asio::awaitable<void> await_lookups(memory_store& store, const std::vector<std::string>& tokens,
                                    std::size_t count, std::size_t& found) {
    const auto now = clock_type::now();
    for (std::size_t i = 0; i < count; ++i) {
        auto session = co_await store.find_by_access_token(tokens[i % tokens.size()], now);
        found += session && *session ? 1 : 0;
    }
}

void BM_SessionLookupAwaitable(benchmark::State& state) {
    static memory_store store;
    static std::vector<std::string> tokens = [] {
        std::vector<std::string> t;
        const auto now = clock_type::now();
        for (std::size_t i = 0; i < 1000; ++i)
            t.push_back(
                store.sessions()
                    .create(session_data{.customer = 100001, .profile = 200001}, now, session_ttl)
                    .access_token);
        std::shuffle(t.begin(), t.end(), std::mt19937_64(42));
        return t;
    }();
    asio::io_context ioc{1};
    constexpr std::size_t batch = 1000;
    std::size_t found = 0;
    for (auto _ : state) {
        asio::co_spawn(ioc, await_lookups(store, tokens, batch, found), asio::detached);
        ioc.restart();
        ioc.run();
    }
    if (found != batch * static_cast<std::size_t>(state.iterations()))
        state.SkipWithError("a session was not found");
    state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(batch));
}
BENCHMARK(BM_SessionLookupAwaitable);

// Unknown token of the right shape: decode, shard lookup, miss.
void BM_SessionLookupUnknown(benchmark::State& state) {
    auto& fixture = store_of_size(static_cast<std::size_t>(state.range(0)));
    session_store other;
    const auto now = clock_type::now();
    const std::string unknown =
        other.create({.customer = 1, .profile = 1}, now, session_ttl).access_token;
    for (auto _ : state) {
        auto found = fixture.store.find_by_access_token(unknown, now);
        benchmark::DoNotOptimize(found);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SessionLookupUnknown)->Arg(1000)->Arg(1000000);

// create() into a store holding n sessions. Every 1,024 inserts the new sessions are revoked
// (outside the timing), so the store stays between n and n + 1,024.
void BM_SessionCreate(benchmark::State& state) {
    auto& fixture = store_of_size(static_cast<std::size_t>(state.range(0)));
    const auto now = clock_type::now();
    std::vector<session_id> added;
    added.reserve(1024);
    for (auto _ : state) {
        auto issued = fixture.store.create(session_data{.customer = 100001, .profile = 200001}, now,
                                           session_ttl);
        added.push_back(issued.id);
        benchmark::DoNotOptimize(issued);
        if (added.size() == 1024) {
            state.PauseTiming();
            for (session_id id : added)
                fixture.store.revoke(id);
            added.clear();
            state.ResumeTiming();
        }
    }
    for (session_id id : added)
        fixture.store.revoke(id);
    state.SetItemsProcessed(state.iterations());
    state.counters["sessions"] = static_cast<double>(fixture.store.size());
}
BENCHMARK(BM_SessionCreate)->Arg(1000)->Arg(1000000);

// --- JWT ---------------------------------------------------------------------------------------

boost::json::object impersonation_claims() {
    const std::int64_t iat =
        std::chrono::duration_cast<std::chrono::seconds>(clock_type::now().time_since_epoch())
            .count();
    return boost::json::object{
        {"iss", token_issuer},
        {"aud", impersonation_audience},
        {"sub", "200002"},
        {"act", boost::json::object{{"sub", "100001"}}},
        {"iat", iat},
        {"exp", iat + 60},
        {"jti", "Zm9vYmFyYmF6cXV4MTIzNA"},
    };
}

void BM_JwtSign(benchmark::State& state) {
    auto& w = bench::shared_world();
    const auto claims = impersonation_claims();
    for (auto _ : state) {
        auto token = w.signer->sign(claims);
        benchmark::DoNotOptimize(token);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_JwtSign);

void BM_JwtVerify(benchmark::State& state) {
    auto& w = bench::shared_world();
    const std::string token = w.signer->sign(impersonation_claims());
    for (auto _ : state) {
        auto claims = w.signer->verify(token);
        if (!claims)
            state.SkipWithError("verify failed");
        benchmark::DoNotOptimize(claims);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_JwtVerify);

// --- directory and profile listing -------------------------------------------------------------

void BM_ListProfilesOwner(benchmark::State& state) {
    auto& w = bench::shared_world();
    std::size_t rows = 0;
    for (auto _ : state) {
        auto listing = w.service.list_profiles(w.owner_session);
        rows = listing.profiles.size();
        benchmark::DoNotOptimize(listing);
    }
    state.SetItemsProcessed(state.iterations());
    state.counters["rows"] = static_cast<double>(rows);
}
BENCHMARK(BM_ListProfilesOwner);

void BM_DirectoryFindByEmail(benchmark::State& state) {
    auto& w = bench::shared_world();
    std::vector<std::string> emails;
    for (int i = 0; i < 1024; ++i)
        emails.push_back(
            bench::numbered("C", 100001 + (i * 7919) % bench::bench_customers, "@Bench.test"));
    std::size_t i = 0;
    for (auto _ : state) {
        const customer* c = w.dir->find_customer_by_email(emails[i++ & 1023]);
        benchmark::DoNotOptimize(c);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DirectoryFindByEmail);

void BM_DirectoryFindProfile(benchmark::State& state) {
    auto& w = bench::shared_world();
    std::size_t i = 0;
    for (auto _ : state) {
        const profile* p =
            w.dir->find_profile(200001 + static_cast<profile_id>((i++ * 7919) % 20000));
        benchmark::DoNotOptimize(p);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DirectoryFindProfile);

// --- routing -----------------------------------------------------------------------------------

// The API table of README.md, in the order the request handler registers it.
struct route_def {
    http::verb method;
    const char* pattern;
};
constexpr route_def api_table[] = {
    {http::verb::post, "/api/public/auth/login"},
    {http::verb::post, "/api/public/auth/login/{token}"},
    {http::verb::post, "/api/public/auth/refresh"},
    {http::verb::post, "/api/public/auth/logout"},
    {http::verb::get, "/api/public/auth/session"},
    {http::verb::get, "/api/public/coworkers/profiles"},
    {http::verb::put, "/api/public/coworkers/profiles/current"},
    {http::verb::get, "/api/public/coworkers/{coworkerId}/impersonate"},
    {http::verb::get, "/api/sys/users/impersonate"},
    {http::verb::get, "/api/sys/audit"},
    {http::verb::get, "/healthz"},
};

struct route_probe {
    http::verb method;
    std::string path;
};

const std::vector<route_probe>& route_probes(int which) {
    static const std::vector<route_probe> hits = {
        {http::verb::post, "/api/public/auth/login"},
        {http::verb::post, "/api/public/auth/login/eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl"},
        {http::verb::post, "/api/public/auth/refresh"},
        {http::verb::post, "/api/public/auth/logout"},
        {http::verb::get, "/api/public/auth/session"},
        {http::verb::get, "/api/public/coworkers/profiles"},
        {http::verb::put, "/api/public/coworkers/profiles/current"},
        {http::verb::get, "/api/public/coworkers/200002/impersonate"},
        {http::verb::get, "/api/sys/users/impersonate"},
        {http::verb::get, "/api/sys/audit"},
        {http::verb::get, "/healthz"},
    };
    static const std::vector<route_probe> misses = {
        {http::verb::get, "/api/public/auth/nothing"},     // 404
        {http::verb::get, "/favicon.ico"},                 // 404
        {http::verb::delete_, "/api/public/auth/session"}, // 405
        {http::verb::get, "/api/public/auth/login"},       // 405
    };
    return which == 0 ? hits : misses;
}

void BM_RouterMatch(benchmark::State& state) {
    router r;
    for (const auto& def : api_table)
        r.add(def.method, def.pattern);
    const auto& probes = route_probes(static_cast<int>(state.range(0)));
    for (auto _ : state) {
        for (const auto& probe : probes) {
            auto m = r.match(probe.method, probe.path);
            benchmark::DoNotOptimize(m);
        }
    }
    state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(probes.size()));
}
// 0: one request per route of the table; 1: 404 and 405 paths.
BENCHMARK(BM_RouterMatch)->ArgName("misses")->Arg(0)->Arg(1);

// --- the whole handler, no sockets -------------------------------------------------------------

// A batch of requests through the handler, awaited one after another by one coroutine, as a
// connection does: the cost includes the handler's coroutine frames and the awaitable store
// calls (which complete inline), not a spawn or a run of the io_context per request.
asio::awaitable<void> answer_batch(const request_handler& handler, const http_request& req,
                                   std::size_t count, std::size_t& ok, std::size_t& body) {
    for (std::size_t i = 0; i < count; ++i) {
        request_context context{"127.0.0.1:40000", clock_type::now()};
        http_request copy = req;
        http_response res = co_await handler(std::move(copy), std::move(context));
        ok += res.result() == http::status::ok ? 1 : 0;
        body = res.body().size();
    }
}

void run_handler(benchmark::State& state, const char* target, bool with_bearer) {
    auto& w = bench::shared_world();
    http_request req{http::verb::get, target, 11};
    req.set(http::field::host, "127.0.0.1");
    if (with_bearer)
        req.set(http::field::authorization, "Bearer " + w.owner_access_token);
    constexpr std::size_t batch = 100;
    std::size_t ok = 0;
    std::size_t body = 0;
    for (auto _ : state) {
        asio::co_spawn(w.ioc, answer_batch(w.handler, req, batch, ok, body), asio::detached);
        w.ioc.restart();
        w.ioc.run();
    }
    if (ok != batch * static_cast<std::size_t>(state.iterations()))
        state.SkipWithError("handler did not answer 200");
    state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(batch));
    state.counters["body_bytes"] = static_cast<double>(body);
}

// What answer_batch spends per request on copying the request, for reading the Handle* rows.
void BM_RequestCopy(benchmark::State& state) {
    auto& w = bench::shared_world();
    http_request req{http::verb::get, "/api/public/auth/session", 11};
    req.set(http::field::host, "127.0.0.1");
    req.set(http::field::authorization, "Bearer " + w.owner_access_token);
    for (auto _ : state) {
        http_request copy = req;
        benchmark::DoNotOptimize(copy);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RequestCopy);

void BM_HandleHealthz(benchmark::State& state) {
    run_handler(state, "/healthz", false);
}
BENCHMARK(BM_HandleHealthz);

void BM_HandleSessionInfo(benchmark::State& state) {
    run_handler(state, "/api/public/auth/session", true);
}
BENCHMARK(BM_HandleSessionInfo);

void BM_HandleProfilesListing(benchmark::State& state) {
    run_handler(state, "/api/public/coworkers/profiles", true);
}
BENCHMARK(BM_HandleProfilesListing);

} // namespace

BENCHMARK_MAIN();
