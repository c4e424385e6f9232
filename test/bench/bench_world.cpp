#include "bench_world.hpp"

#include <portal_auth/password_hash.hpp>

#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <chrono>
#include <random>
#include <stdexcept>

namespace portal_auth::bench {

namespace json = boost::json;

// prefix + n + suffix (written out: g++ 12 warns falsely on "literal" + std::to_string(n)).
std::string numbered(std::string_view prefix, long long n, std::string_view suffix) {
    std::string out(prefix);
    out.append(std::to_string(n));
    out.append(suffix);
    return out;
}

std::string bench_directory_json() {
    auto hash = hash_password("bench-password", scrypt_params{.log2_n = 4, .r = 8, .p = 1});
    if (!hash)
        throw std::runtime_error("hash_password failed");
    const std::string hash_text = format_password_hash(*hash);

    json::array teams, customers, profiles;
    for (int t = 1; t <= bench_teams; ++t)
        teams.push_back(json::object{{"id", t}, {"name", numbered("Bench Team ", t, "")}});
    for (int i = 0; i < bench_customers; ++i) {
        const std::int64_t cid = 100001 + i;
        const int team = i % bench_teams + 1;
        const int position = i / bench_teams;
        const char* role = position == 0 ? "owner" : position <= 2 ? "admin" : "member";
        customers.push_back(json::object{
            {"id", cid},
            {"email", numbered("c", cid, "@bench.test")},
            {"name", numbered("Bench Customer ", cid, "")},
            {"passwordHash", hash_text},
            {"operator", i >= bench_customers - 2},
        });
        profiles.push_back(json::object{
            {"id", 200001 + i}, {"customerId", cid}, {"teamId", team}, {"role", role}});
    }
    // Second profiles for 5,000 non-operator customers, each in another team.
    std::mt19937 rng(20240611);
    std::vector<int> picks(bench_customers - 2);
    for (int i = 0; i < bench_customers - 2; ++i)
        picks[i] = i;
    std::shuffle(picks.begin(), picks.end(), rng);
    picks.resize(bench_second_profiles);
    std::sort(picks.begin(), picks.end());
    for (int n = 0; n < bench_second_profiles; ++n) {
        const int i = picks[n];
        const int home = i % bench_teams + 1;
        int other = static_cast<int>(rng() % (bench_teams - 1)) + 1;
        if (other >= home)
            ++other;
        profiles.push_back(json::object{{"id", 300001 + n},
                                        {"customerId", 100001 + i},
                                        {"teamId", other},
                                        {"role", rng() % 5 == 0 ? "admin" : "member"}});
    }
    return json::serialize(json::object{
        {"customers", std::move(customers)},
        {"teams", std::move(teams)},
        {"profiles", std::move(profiles)},
    });
}

namespace {

std::shared_ptr<const directory> load_bench_directory() {
    std::string detail;
    auto parsed = directory::parse(bench_directory_json(), detail);
    if (!parsed)
        throw std::runtime_error("bench directory: " + detail);
    return std::make_shared<const directory>(std::move(*parsed));
}

std::shared_ptr<const token_signer> make_signer() {
    std::vector<signing_key> keys;
    keys.push_back(make_random_signing_key("bench"));
    return std::make_shared<const token_signer>(std::move(keys));
}

} // namespace

world::world()
    : dir(load_bench_directory()), signer(make_signer()),
      service(service_config{}, dir, signer, {store, store, audit, passwords}), handler(service) {
    const auto now = clock_type::now();
    auto issued = store.sessions().create(session_data{.customer = 100001, .profile = 200001}, now,
                                          std::chrono::hours(24));
    owner_access_token = issued.access_token;
    auto found = store.sessions().find_by_access_token(owner_access_token, now);
    if (!found)
        throw std::runtime_error("bench world: the owner's session is not found");
    owner_session = *found;
}

world& shared_world() {
    static world w;
    return w;
}

} // namespace portal_auth::bench
