// The micro-suite's world: a directory of the bench size (the same shape scripts/bench.sh
// generates for the HTTP scenarios) and the service objects over it.
#pragma once

#include <portal_auth/audit_log.hpp>
#include <portal_auth/auth_service.hpp>
#include <portal_auth/directory.hpp>
#include <portal_auth/memory_store.hpp>
#include <portal_auth/password_verifier.hpp>
#include <portal_auth/request_handler.hpp>
#include <portal_auth/token_signer.hpp>

#include <boost/asio/io_context.hpp>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace portal_auth::bench {

// 1,000 teams, 20,000 customers, 25,000 profiles: customer i (id 100001 + i) has profile
// 200001 + i in team i % 1000 + 1; position i / 1000 in that team is the owner (0), an admin
// (1, 2) or a member; the last two customers are operators; 5,000 customers have a second
// profile (300001...) in another team. Every password hash is the same cheap scrypt (ln=4).
inline constexpr int bench_teams = 1000;
inline constexpr int bench_customers = 20000;
inline constexpr int bench_second_profiles = 5000;

std::string bench_directory_json();

// prefix + n + suffix.
std::string numbered(std::string_view prefix, long long n, std::string_view suffix);

struct world {
    std::shared_ptr<const directory> dir;
    std::shared_ptr<const token_signer> signer;
    boost::asio::io_context ioc{1}; // runs the handler's coroutines, one request at a time
    memory_store store;
    audit_log audit;
    password_verifier passwords{ioc.get_executor()};
    auth_service service;
    request_handler handler;
    // A session of the owner of team 1 (customer 100001, profile 200001).
    session_snapshot owner_session;
    std::string owner_access_token;

    world();
};

// Built on first use, shared by every benchmark.
world& shared_world();

} // namespace portal_auth::bench
