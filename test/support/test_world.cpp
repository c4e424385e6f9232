#include "test_world.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <chrono>
#include <cstdint>
#include <stdexcept>

namespace portal_auth::test {

std::string make_test_directory_json(scrypt_params cost) {
    struct person {
        std::int64_t id;
        const char* email;
        const char* name;
        const char* password;
        bool is_operator;
    };
    static constexpr person people[] = {
        {100, "alice@acme.test", "Alice Archer", "alice-pw", false},
        {101, "bob@acme.test", "Bob Baker", "bob-pw", false},
        {102, "carol@acme.test", "Carol Chen", "carol-pw", false},
        {103, "dave@globex.test", "Dave Diaz", "dave-pw", false},
        {104, "erin@globex.test", "Erin Evans", "erin-pw", false},
        {105, "frank@globex.test", "Frank Fischer", "frank-pw", false},
        {106, "gina@acme.test", "Gina Gray", "gina-pw", false},
        {900, "olga@portal.test", "Olga Operator", "olga-pw", true},
    };
    struct membership {
        std::int64_t id, customer, team;
        const char* role;
    };
    static constexpr membership memberships[] = {
        {10, 100, 1, "owner"},  {11, 101, 1, "admin"},  {12, 102, 1, "member"},
        {13, 106, 1, "owner"},  {14, 900, 1, "member"}, {20, 103, 2, "owner"},
        {21, 101, 2, "member"}, {22, 104, 2, "admin"},  {23, 105, 2, "member"},
        {30, 900, 3, "owner"},
    };

    boost::json::array customers;
    for (const person& p : people) {
        auto hash = hash_password(p.password, cost);
        if (!hash)
            throw std::runtime_error("hash_password failed");
        customers.push_back(boost::json::object{{"id", p.id},
                                                {"email", p.email},
                                                {"name", p.name},
                                                {"passwordHash", format_password_hash(*hash)},
                                                {"operator", p.is_operator}});
    }
    boost::json::array profiles;
    for (const membership& m : memberships)
        profiles.push_back(boost::json::object{
            {"id", m.id}, {"customerId", m.customer}, {"teamId", m.team}, {"role", m.role}});
    boost::json::array teams{boost::json::object{{"id", 1}, {"name", "Acme Corp"}},
                             boost::json::object{{"id", 2}, {"name", "Globex"}},
                             boost::json::object{{"id", 3}, {"name", "Portal Operations"}}};
    return boost::json::serialize(boost::json::object{{"customers", std::move(customers)},
                                                      {"teams", std::move(teams)},
                                                      {"profiles", std::move(profiles)}});
}

void detail::run_bounded(boost::asio::io_context& ioc) {
    ioc.restart();
    ioc.run_for(std::chrono::seconds(10));
}

void detail::check_completion(const std::exception_ptr& error, bool done) {
    if (error)
        std::rethrow_exception(error);
    if (!done)
        throw std::runtime_error("the operation did not complete within 10 s");
}

} // namespace portal_auth::test
