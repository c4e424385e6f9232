// The error table: one row per errc, and what a foreign error code reads as.
#include <portal_auth/error.hpp>

#include <boost/asio/error.hpp>
#include <boost/test/unit_test.hpp>

#include <set>
#include <string>

using namespace portal_auth;

BOOST_AUTO_TEST_SUITE(error_table_suite)

BOOST_AUTO_TEST_CASE(every_code_has_a_complete_row) {
    const std::set<unsigned> statuses{401, 403, 404, 429, 500, 503};
    for (int v = 1; v <= static_cast<int>(errc::not_ready); ++v) {
        error_code ec = static_cast<errc>(v);
        const error_description& row = describe(ec);
        BOOST_TEST_CONTEXT("errc " << v << " (" << ec.message() << ")") {
            BOOST_TEST(ec.message() == std::string(row.message));
            BOOST_TEST(ec.message() != "unknown portal_auth error");
            BOOST_TEST(statuses.count(row.http_status) == 1u);
            BOOST_TEST(!row.problem_slug.empty());
            BOOST_TEST(!row.audit_reason.empty());
            for (char c : row.problem_slug)
                BOOST_TEST(((c >= 'a' && c <= 'z') || c == '-'), "slug " << row.problem_slug);
        }
    }
}

BOOST_AUTO_TEST_CASE(kinds_of_403_and_401_are_told_apart) {
    BOOST_TEST(describe(errc::forbidden_role).problem_slug == "role-forbidden");
    BOOST_TEST(describe(errc::forbidden_chain).problem_slug == "impersonated-session");
    BOOST_TEST(describe(errc::forbidden_impersonated_switch).problem_slug ==
               "impersonated-session");
    BOOST_TEST(describe(errc::refresh_token_reused).problem_slug == "token-reused");
    BOOST_TEST(describe(errc::rate_limited).problem_slug == "rate-limited");
    BOOST_TEST(describe(errc::invalid_credentials).problem_slug !=
               describe(errc::unauthenticated).problem_slug);
    BOOST_TEST(describe(errc::overloaded).http_status == 503u);
    BOOST_TEST(describe(errc::audit_unavailable).problem_slug == "audit-unavailable");
    BOOST_TEST(describe(errc::store_unavailable).problem_slug == "store-unavailable");
}

BOOST_AUTO_TEST_CASE(foreign_and_unknown_codes_read_as_internal) {
    const error_description& foreign = describe(boost::asio::error::connection_reset);
    BOOST_TEST(foreign.http_status == 500u);
    BOOST_TEST(foreign.audit_reason == "internal");
    const error_description& unknown = describe(error_code(999, portal_auth_category()));
    BOOST_TEST(unknown.http_status == 500u);
    BOOST_TEST(error_code(999, portal_auth_category()).message() == "unknown portal_auth error");
}

BOOST_AUTO_TEST_SUITE_END()
