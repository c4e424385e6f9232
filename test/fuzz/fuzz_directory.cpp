// libFuzzer target: directory::parse on arbitrary bytes.
//
// A refusal must come with a one-line detail. An accepted directory must keep the promises the
// rest of the service relies on: every profile's customer and team resolve, every customer has
// at least one profile (sorted by id, at most one per team), lookups by id and by e-mail (any
// case) find the same objects, and copies and moves keep all of that with pointers into
// themselves (checked by ASan once the original is gone).
#include <portal_auth/directory.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>
#include <utility>

namespace {

using namespace portal_auth;

[[noreturn]] void fail(const char* what, std::string_view context = {}) {
    std::fprintf(stderr, "fuzz_directory: %s\n%.*s\n", what, static_cast<int>(context.size()),
                 context.data());
    std::abort();
}

std::string ascii_upper(std::string_view text) {
    std::string out(text);
    for (char& c : out)
        if (c >= 'a' && c <= 'z')
            c = static_cast<char>(c - 'a' + 'A');
    return out;
}

void check_invariants(const directory& dir) {
    std::size_t profiles_seen = 0;
    std::set<profile_id> profile_ids;
    for (const customer& c : dir.customers()) {
        const std::string id_text = std::to_string(c.id);
        if (c.id <= 0)
            fail("customer id not positive", id_text);
        if (dir.find_customer(c.id) != &c)
            fail("find_customer does not find the customer", id_text);
        if (c.email.empty() || c.email.find('@') == std::string::npos)
            fail("customer e-mail without '@'", id_text);
        if (dir.find_customer_by_email(c.email) != &c ||
            dir.find_customer_by_email(ascii_upper(c.email)) != &c)
            fail("find_customer_by_email does not find the customer", c.email);
        if (c.name.empty())
            fail("customer without a name", id_text);

        auto own = dir.profiles_of_customer(c.id);
        if (own.empty())
            fail("customer without profiles", id_text);
        std::set<team_id> teams;
        for (std::size_t i = 0; i < own.size(); ++i) {
            const profile* p = own[i];
            if (p == nullptr)
                fail("null profile pointer", id_text);
            if (i > 0 && !(own[i - 1]->id < p->id))
                fail("profiles_of_customer not sorted by id", id_text);
            if (p->id <= 0 || p->customer != c.id)
                fail("profile listed under the wrong customer", id_text);
            if (dir.find_profile(p->id) != p)
                fail("find_profile does not find a listed profile", std::to_string(p->id));
            if (dir.find_customer(p->customer) != &c)
                fail("profile's customer does not resolve", std::to_string(p->id));
            const team* t = dir.find_team(p->team);
            if (t == nullptr || t->id != p->team || t->id <= 0 || t->name.empty())
                fail("profile's team does not resolve", std::to_string(p->id));
            if (!teams.insert(p->team).second)
                fail("two profiles of one customer in one team", id_text);
            auto in_team = dir.profiles_in_team(p->team);
            if (std::find(in_team.begin(), in_team.end(), p) == in_team.end())
                fail("profile missing from profiles_in_team", std::to_string(p->id));
            if (to_string(p->role_in_team) != "owner" && to_string(p->role_in_team) != "admin" &&
                to_string(p->role_in_team) != "member")
                fail("profile with an unknown role", std::to_string(p->id));
            profile_ids.insert(p->id);
            ++profiles_seen;
        }
    }
    // Every profile belongs to some customer, so the walk above saw each exactly once.
    if (profiles_seen != dir.profile_count() || profile_ids.size() != profiles_seen)
        fail("profiles reachable from customers differ from profile_count()");
    if (dir.customer_count() != dir.customers().size())
        fail("customer_count() differs from customers().size()");
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    std::string detail;
    auto parsed = directory::parse(input, detail);
    if (!parsed) {
        if (detail.empty() || detail.find('\n') != std::string::npos)
            fail("refusal without a one-line detail", detail);
        return 0;
    }
    check_invariants(*parsed);

    directory copy(*parsed);
    {
        directory moved(std::move(*parsed));
        check_invariants(moved);
        directory assigned;
        assigned = moved;
        check_invariants(assigned);
    } // moved and assigned are gone; copy must not point into them
    *parsed = directory();
    check_invariants(copy);
    return 0;
}
