#include <portal_auth/directory.hpp>
#include <portal_auth/error.hpp>

#include <boost/test/unit_test.hpp>

#include <string>
#include <utility>
#include <vector>

using namespace portal_auth;

namespace {

// scrypt of "pw" with N=16, cheap enough for tests.
const std::string test_hash =
    "$scrypt$ln=4,r=8,p=1$c2FsdHNhbHRzYWx0c2FsdA$wYOOMwAiWbJtJSZwEoaHwXf+n3MQJ9/nr7fzolg6q6o";

std::string customer_json(long id, const std::string& email, const std::string& extra = "") {
    return R"({"id":)" + std::to_string(id) + R"(,"email":")" + email +
           R"(","name":"Someone","passwordHash":")" + test_hash + "\"" + extra + "}";
}

const std::string valid_json = R"({
  "customers": [)" + customer_json(100, "Alice@Acme.test") +
                               "," + customer_json(101, "bob@acme.test", R"(,"operator":true)") +
                               "," + customer_json(102, "carol@globex.test") + R"(],
  "teams": [{"id": 1, "name": "Acme Corp"}, {"id": 2, "name": "Globex"}],
  "profiles": [
    {"id": 12, "customerId": 100, "teamId": 2, "role": "member"},
    {"id": 10, "customerId": 100, "teamId": 1, "role": "owner"},
    {"id": 11, "customerId": 101, "teamId": 1, "role": "admin"},
    {"id": 5,  "customerId": 102, "teamId": 2, "role": "owner"}
  ],
  "unknownField": [1, 2, 3]
})";

// Builds a directory from parts so each failure case changes only one thing.
std::string make_json(const std::string& customers, const std::string& teams,
                      const std::string& profiles, const std::string& extra = "") {
    return R"({"customers":[)" + customers + R"(],"teams":[)" + teams + R"(],"profiles":[)" +
           profiles + "]" + extra + "}";
}

const std::string one_team = R"({"id":1,"name":"Acme"})";

std::string one_profile(const std::string& fields = R"("customerId":100,"teamId":1,"role":"owner")",
                        long id = 10) {
    return R"({"id":)" + std::to_string(id) + "," + fields + "}";
}

// Parses text expected to be invalid and returns the detail.
std::string rejection(const std::string& text) {
    std::string detail;
    auto result = directory::parse(text, detail);
    BOOST_TEST_REQUIRE(result.has_error());
    BOOST_TEST(result.error() == make_error_code(errc::invalid_directory));
    BOOST_TEST(detail.find('\n') == std::string::npos);
    BOOST_TEST(detail.find(test_hash) == std::string::npos);
    return detail;
}

bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

std::vector<profile_id> ids(std::span<const profile* const> profiles) {
    std::vector<profile_id> out;
    for (const profile* p : profiles)
        out.push_back(p->id);
    return out;
}

} // namespace

BOOST_AUTO_TEST_SUITE(directory_suite)

BOOST_AUTO_TEST_CASE(valid_directory_parses_and_lookups_work) {
    std::string detail;
    auto result = directory::parse(valid_json, detail);
    BOOST_TEST_REQUIRE(result.has_value(), detail);
    const directory& dir = *result;

    BOOST_TEST(dir.customer_count() == 3u);
    BOOST_TEST(dir.profile_count() == 4u);
    BOOST_TEST(dir.impersonation_enabled());

    const customer* alice = dir.find_customer(100);
    BOOST_TEST_REQUIRE(alice != nullptr);
    BOOST_TEST(alice->email == "Alice@Acme.test");
    BOOST_TEST(alice->name == "Someone");
    BOOST_TEST(!alice->is_operator);
    BOOST_TEST(alice->password.params.log2_n == 4u);
    BOOST_TEST(alice->password.key.size() == 32u);
    BOOST_TEST(dir.find_customer(101)->is_operator);
    BOOST_TEST(dir.find_customer(999) == nullptr);

    BOOST_TEST(dir.find_customer_by_email("alice@acme.test") == alice);
    BOOST_TEST(dir.find_customer_by_email("ALICE@ACME.TEST") == alice);
    BOOST_TEST(dir.find_customer_by_email("bob@acme.test")->id == 101);
    BOOST_TEST(dir.find_customer_by_email("nobody@acme.test") == nullptr);

    BOOST_TEST_REQUIRE(dir.find_team(2) != nullptr);
    BOOST_TEST(dir.find_team(2)->name == "Globex");
    BOOST_TEST(dir.find_team(3) == nullptr);

    const profile* p11 = dir.find_profile(11);
    BOOST_TEST_REQUIRE(p11 != nullptr);
    BOOST_TEST(p11->customer == 101);
    BOOST_TEST(p11->team == 1);
    BOOST_TEST((p11->role_in_team == role::admin));
    BOOST_TEST(dir.find_profile(99) == nullptr);

    BOOST_TEST(ids(dir.profiles_of_customer(100)) == (std::vector<profile_id>{10, 12}),
               boost::test_tools::per_element());
    BOOST_TEST(ids(dir.profiles_in_team(1)) == (std::vector<profile_id>{10, 11}),
               boost::test_tools::per_element());
    BOOST_TEST(ids(dir.profiles_in_team(2)) == (std::vector<profile_id>{5, 12}),
               boost::test_tools::per_element());
    BOOST_TEST(dir.profiles_of_customer(999).empty());
    BOOST_TEST(dir.profiles_in_team(999).empty());
}

BOOST_AUTO_TEST_CASE(moves_and_copies_keep_profile_links_valid) {
    std::string detail;
    auto result = directory::parse(valid_json, detail);
    BOOST_TEST_REQUIRE(result.has_value(), detail);

    directory moved(std::move(*result));
    auto of_alice = moved.profiles_of_customer(100);
    BOOST_TEST_REQUIRE(of_alice.size() == 2u);
    BOOST_TEST(of_alice[0] == moved.find_profile(10));

    directory copy(moved);
    auto copied = copy.profiles_of_customer(100);
    BOOST_TEST_REQUIRE(copied.size() == 2u);
    // The copy's spans point into its own profiles, not the original's.
    BOOST_TEST(copied[0] == copy.find_profile(10));
    BOOST_TEST(copied[0] != of_alice[0]);

    directory assigned;
    assigned = copy;
    BOOST_TEST(assigned.profiles_in_team(1)[1] == assigned.find_profile(11));
}

BOOST_AUTO_TEST_CASE(role_names) {
    BOOST_TEST(to_string(role::owner) == "owner");
    BOOST_TEST(to_string(role::member) == "member");
    BOOST_TEST(display_name(role::admin) == "Admin");
    BOOST_TEST((parse_role("admin") == role::admin));
    BOOST_TEST(!parse_role("Admin").has_value());
    BOOST_TEST(!parse_role("").has_value());
}

BOOST_AUTO_TEST_CASE(impersonation_flag) {
    std::string detail;
    auto off = directory::parse(make_json(customer_json(100, "a@b.test"), one_team, one_profile(),
                                          R"(,"impersonationEnabled":false)"),
                                detail);
    BOOST_TEST_REQUIRE(off.has_value(), detail);
    BOOST_TEST(!off->impersonation_enabled());

    auto on = directory::parse(make_json(customer_json(100, "a@b.test"), one_team, one_profile(),
                                         R"(,"impersonationEnabled":true)"),
                               detail);
    BOOST_TEST_REQUIRE(on.has_value(), detail);
    BOOST_TEST(on->impersonation_enabled());

    auto wrong = rejection(make_json(customer_json(100, "a@b.test"), one_team, one_profile(),
                                     R"(,"impersonationEnabled":"no")"));
    BOOST_TEST(contains(wrong, "impersonationEnabled"), wrong);
}

// A hash whose verification would need more than 256 MiB is refused at load, naming the
// customer: every login attempt would allocate it. (Made by format, not computed.)
BOOST_AUTO_TEST_CASE(hashes_beyond_256_mib_of_scrypt_memory_are_refused) {
    auto hash_with = [](unsigned log2_n, unsigned r) {
        password_hash h{{.log2_n = log2_n, .r = r, .p = 1}, bytes(16, 0x5a), bytes(32, 0xa5)};
        return format_password_hash(h);
    };
    auto directory_with = [&](const std::string& hash) {
        const std::string customer =
            R"({"id":100,"email":"a@b.test","name":"A","passwordHash":")" + hash + R"("})";
        return make_json(customer, one_team, one_profile());
    };
    BOOST_TEST(scrypt_memory_bytes({.log2_n = 16, .r = 32, .p = 1}) == max_scrypt_memory_bytes);
    std::string detail;
    BOOST_TEST(directory::parse(directory_with(hash_with(16, 32)), detail).has_value(), detail);
    auto too_much = rejection(directory_with(hash_with(20, 32)));
    BOOST_TEST(contains(too_much, "customers[0].passwordHash"), too_much);
    BOOST_TEST(contains(too_much, "4096 MiB"), too_much);
    BOOST_TEST(contains(rejection(directory_with(hash_with(17, 32))), "512 MiB"));
}

BOOST_AUTO_TEST_CASE(syntax_error_reports_line_and_column) {
    auto detail = rejection("{\n  \"customers\": [],\n  \"teams\": [}\n}");
    BOOST_TEST(contains(detail, "JSON syntax error at line 3, column 13"), detail);

    auto trailing = rejection(make_json("", "", "") + "\n x");
    BOOST_TEST(contains(trailing, "JSON syntax error at line 2"), trailing);

    auto truncated = rejection("{\"customers\": [");
    BOOST_TEST(contains(truncated, "JSON syntax error at line 1"), truncated);
}

BOOST_AUTO_TEST_CASE(top_level_shape) {
    BOOST_TEST(contains(rejection("[]"), "expected an object"));
    BOOST_TEST(contains(rejection(R"({"teams":[],"profiles":[]})"), "customers: missing"));
    BOOST_TEST(contains(rejection(R"({"customers":[],"teams":{},"profiles":[]})"),
                        "teams: expected an array"));
    BOOST_TEST(contains(rejection(R"({"customers":[],"teams":[]})"), "profiles: missing"));
    BOOST_TEST(
        contains(rejection(make_json("1", one_team, "")), "customers[0]: expected an object"));
}

BOOST_AUTO_TEST_CASE(id_types) {
    const std::string good_customer = customer_json(100, "a@b.test");
    auto with_id = [&](const std::string& id) {
        return make_json(R"({"id":)" + id + R"(,"email":"x@y","name":"X","passwordHash":")" +
                             test_hash + "\"}," + good_customer,
                         one_team, one_profile());
    };
    for (const char* bad :
         {R"("7")", "1.5", "-3", "0", "7.0", "1e2", "null", "18446744073709551615"}) {
        auto detail = rejection(with_id(bad));
        BOOST_TEST(contains(detail, "customers[0].id: expected a positive integer"),
                   bad << ": " << detail);
    }
    BOOST_TEST(
        contains(rejection(make_json(good_customer, R"({"id":"1","name":"T"})", one_profile())),
                 "teams[0].id"));
    BOOST_TEST(
        contains(rejection(make_json(good_customer, one_team,
                                     one_profile(R"("customerId":1.5,"teamId":1,"role":"owner")"))),
                 "profiles[0].customerId"));

    // A large id that still fits int64 is accepted.
    std::string detail;
    auto big =
        directory::parse(make_json(customer_json(100, "a@b.test"), one_team,
                                   one_profile(R"("customerId":100,"teamId":1,"role":"owner")",
                                               9223372036854775807)),
                         detail);
    BOOST_TEST(big.has_value(), detail);
}

BOOST_AUTO_TEST_CASE(duplicate_ids) {
    auto customers =
        rejection(make_json(customer_json(100, "a@b.test") + "," + customer_json(100, "c@d.test"),
                            one_team, one_profile()));
    BOOST_TEST(contains(customers, "customers[1].id: duplicate value 100"), customers);

    auto teams = rejection(make_json(customer_json(100, "a@b.test"),
                                     one_team + R"(,{"id":1,"name":"Other"})", one_profile()));
    BOOST_TEST(contains(teams, "teams[1].id: duplicate value 1"), teams);

    auto profiles = rejection(make_json(
        customer_json(100, "a@b.test"), one_team + R"(,{"id":2,"name":"Other"})",
        one_profile() + "," + one_profile(R"("customerId":100,"teamId":2,"role":"member")")));
    BOOST_TEST(contains(profiles, "profiles[1].id: duplicate value 10"), profiles);
}

BOOST_AUTO_TEST_CASE(email_rules) {
    auto duplicate = rejection(make_json(
        customer_json(100, "a@b.test") + "," + customer_json(101, "A@B.Test"), one_team,
        one_profile() + "," + one_profile(R"("customerId":101,"teamId":1,"role":"member")", 11)));
    BOOST_TEST(contains(duplicate, "customers[1].email: duplicate value \"A@B.Test\""), duplicate);

    auto no_at = rejection(make_json(customer_json(100, "nobody"), one_team, one_profile()));
    BOOST_TEST(contains(no_at, "customers[0].email"), no_at);

    auto empty = rejection(make_json(customer_json(100, ""), one_team, one_profile()));
    BOOST_TEST(contains(empty, "customers[0].email"), empty);

    auto missing = rejection(make_json(
        R"({"id":100,"name":"X","passwordHash":")" + test_hash + "\"}", one_team, one_profile()));
    BOOST_TEST(contains(missing, "customers[0].email: missing"), missing);
}

BOOST_AUTO_TEST_CASE(customer_fields) {
    auto bad_hash = rejection(
        make_json(R"({"id":100,"email":"a@b","name":"X","passwordHash":"$scrypt$ln=4$nonsense"})",
                  one_team, one_profile()));
    BOOST_TEST(contains(bad_hash, "customers[0].passwordHash"), bad_hash);
    BOOST_TEST(!contains(bad_hash, "nonsense"), bad_hash);

    auto hash_type = rejection(make_json(R"({"id":100,"email":"a@b","name":"X","passwordHash":5})",
                                         one_team, one_profile()));
    BOOST_TEST(contains(hash_type, "customers[0].passwordHash"), hash_type);

    auto name = rejection(
        make_json(R"({"id":100,"email":"a@b","name":"","passwordHash":")" + test_hash + "\"}",
                  one_team, one_profile()));
    BOOST_TEST(contains(name, "customers[0].name"), name);

    auto op = rejection(
        make_json(customer_json(100, "a@b.test", R"(,"operator":"yes")"), one_team, one_profile()));
    BOOST_TEST(contains(op, "customers[0].operator: expected a boolean"), op);

    auto team_name = rejection(
        make_json(customer_json(100, "a@b.test"), R"({"id":1,"name":""})", one_profile()));
    BOOST_TEST(contains(team_name, "teams[0].name"), team_name);
}

BOOST_AUTO_TEST_CASE(dangling_references) {
    auto team = rejection(make_json(customer_json(100, "a@b.test"), one_team,
                                    one_profile(R"("customerId":100,"teamId":7,"role":"owner")")));
    BOOST_TEST(contains(team, "profiles[0].teamId: unknown team 7"), team);

    auto customer = rejection(make_json(
        customer_json(100, "a@b.test"), one_team,
        one_profile() + "," + one_profile(R"("customerId":555,"teamId":1,"role":"owner")", 11)));
    BOOST_TEST(contains(customer, "profiles[1].customerId: unknown customer 555"), customer);
}

BOOST_AUTO_TEST_CASE(roles_must_be_exact) {
    for (const char* bad : {R"("Owner")", R"("boss")", R"("")", "1"}) {
        auto detail = rejection(
            make_json(customer_json(100, "a@b.test"), one_team,
                      one_profile(std::string(R"("customerId":100,"teamId":1,"role":)") + bad)));
        BOOST_TEST(contains(detail, "profiles[0].role"), bad << ": " << detail);
    }
}

BOOST_AUTO_TEST_CASE(every_customer_needs_a_profile) {
    auto detail =
        rejection(make_json(customer_json(100, "a@b.test") + "," + customer_json(101, "c@d.test"),
                            one_team, one_profile()));
    BOOST_TEST(contains(detail, "customers[1]: has no profile"), detail);
}

BOOST_AUTO_TEST_CASE(one_profile_per_customer_and_team) {
    auto detail = rejection(make_json(
        customer_json(100, "a@b.test"), one_team,
        one_profile() + "," + one_profile(R"("customerId":100,"teamId":1,"role":"member")", 11)));
    BOOST_TEST(contains(detail, "profiles[1]"), detail);
    BOOST_TEST(contains(detail, "team 1"), detail);
}

BOOST_AUTO_TEST_SUITE_END()
