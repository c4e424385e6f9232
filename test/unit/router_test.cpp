// The router on its own: literal routes, parameters, 404 versus 405 and its Allow list,
// literal-over-parameter precedence, and the patterns add() refuses.
#include <boost/test/unit_test.hpp>

#include <stdexcept>
#include <string>
#include <string_view>

#include "router.hpp"

using namespace portal_auth;
namespace http = boost::beast::http;
using outcome = route_match::outcome;

namespace {

bool found(const route_match& m) {
    return m.result == outcome::found;
}
bool not_found(const route_match& m) {
    return m.result == outcome::not_found;
}
bool not_allowed(const route_match& m) {
    return m.result == outcome::method_not_allowed;
}

} // namespace

BOOST_AUTO_TEST_SUITE(router_suite)

BOOST_AUTO_TEST_CASE(add_returns_indices_in_insertion_order) {
    router r;
    BOOST_TEST(r.add(http::verb::get, "/a") == 0u);
    BOOST_TEST(r.add(http::verb::post, "/a") == 1u);
    BOOST_TEST(r.add(http::verb::get, "/b/{id}") == 2u);
    BOOST_TEST(r.add(http::verb::get, "/c/d/e") == 3u);
}

BOOST_AUTO_TEST_CASE(literal_routes) {
    router r;
    auto health = r.add(http::verb::get, "/healthz");
    auto login = r.add(http::verb::post, "/api/public/auth/login");
    auto session = r.add(http::verb::get, "/api/public/auth/session");

    auto m = r.match(http::verb::get, "/healthz");
    BOOST_TEST_REQUIRE(found(m));
    BOOST_TEST(m.route == health);
    BOOST_TEST(m.allow.empty());
    BOOST_TEST(m.params[0].empty());
    BOOST_TEST(m.params[1].empty());

    m = r.match(http::verb::post, "/api/public/auth/login");
    BOOST_TEST_REQUIRE(found(m));
    BOOST_TEST(m.route == login);
    BOOST_TEST(m.allow.empty());

    m = r.match(http::verb::get, "/api/public/auth/session");
    BOOST_TEST_REQUIRE(found(m));
    BOOST_TEST(m.route == session);

    // Literal comparison is exact (case-sensitive, whole segment).
    BOOST_TEST(not_found(r.match(http::verb::get, "/HEALTHZ")));
    BOOST_TEST(not_found(r.match(http::verb::get, "/healthzz")));
    BOOST_TEST(not_found(r.match(http::verb::get, "/health")));
    BOOST_TEST(not_found(r.match(http::verb::post, "/api/public/auth/logins")));
}

BOOST_AUTO_TEST_CASE(parameter_capture) {
    router r;
    auto one = r.add(http::verb::get, "/users/{id}");
    auto two = r.add(http::verb::get, "/users/{id}/posts/{post}");
    auto middle = r.add(http::verb::post, "/api/public/auth/login/{token}");

    const std::string path1 = "/users/42";
    auto m = r.match(http::verb::get, path1);
    BOOST_TEST_REQUIRE(found(m));
    BOOST_TEST(m.route == one);
    BOOST_TEST(m.params[0] == "42");
    BOOST_TEST(m.params[1].empty());
    // A view into the matched path, not a copy.
    BOOST_TEST((m.params[0].data() == path1.data() + 7));

    const std::string path2 = "/users/7/posts/abc-def";
    m = r.match(http::verb::get, path2);
    BOOST_TEST_REQUIRE(found(m));
    BOOST_TEST(m.route == two);
    BOOST_TEST(m.params[0] == "7");
    BOOST_TEST(m.params[1] == "abc-def");

    const std::string path3 = "/api/public/auth/login/eyJhbGci.eyJpc3Mi.c2lnbmF0dXJl";
    m = r.match(http::verb::post, path3);
    BOOST_TEST_REQUIRE(found(m));
    BOOST_TEST(m.route == middle);
    BOOST_TEST(m.params[0] == "eyJhbGci.eyJpc3Mi.c2lnbmF0dXJl");

    // A parameter matches one non-empty segment, never zero or two.
    BOOST_TEST(not_found(r.match(http::verb::get, "/users")));
    BOOST_TEST(not_found(r.match(http::verb::get, "/users/")));
    BOOST_TEST(not_found(r.match(http::verb::get, "/users/7/posts")));
    BOOST_TEST(not_found(r.match(http::verb::get, "/users/7/posts/")));
    BOOST_TEST(not_found(r.match(http::verb::get, "/users/7/comments/3")));
}

BOOST_AUTO_TEST_CASE(unknown_paths_are_not_found) {
    router r;
    r.add(http::verb::get, "/a/b");
    r.add(http::verb::post, "/a/{x}");

    for (std::string_view path : {"/nope", "/a", "/a/b/c", "/b/a", "/x/b"}) {
        BOOST_TEST_CONTEXT("path " << path) {
            auto m = r.match(http::verb::get, path);
            BOOST_TEST(not_found(m));
            BOOST_TEST(m.allow.empty());
        }
    }
    // An empty table knows nothing.
    router empty;
    BOOST_TEST(not_found(empty.match(http::verb::get, "/a")));
}

BOOST_AUTO_TEST_CASE(method_not_allowed_lists_the_methods) {
    router r;
    r.add(http::verb::get, "/items");
    r.add(http::verb::post, "/items");
    r.add(http::verb::put, "/items/{id}");
    r.add(http::verb::get, "/only-get");

    auto m = r.match(http::verb::delete_, "/items");
    BOOST_TEST_REQUIRE(not_allowed(m));
    BOOST_TEST(m.allow == "GET, POST");

    m = r.match(http::verb::get, "/items/5");
    BOOST_TEST_REQUIRE(not_allowed(m));
    BOOST_TEST(m.allow == "PUT");

    m = r.match(http::verb::post, "/only-get");
    BOOST_TEST_REQUIRE(not_allowed(m));
    BOOST_TEST(m.allow == "GET");

    // The path exists with this method: found, and no Allow list is left behind.
    m = r.match(http::verb::post, "/items");
    BOOST_TEST_REQUIRE(found(m));
    BOOST_TEST(m.route == 1u);
    BOOST_TEST(m.allow.empty());
}

BOOST_AUTO_TEST_CASE(allow_list_names_each_method_once) {
    router r;
    r.add(http::verb::get, "/a/{x}");
    r.add(http::verb::get, "/a/b");
    r.add(http::verb::put, "/a/b");
    r.add(http::verb::put, "/a/{y}");

    auto m = r.match(http::verb::post, "/a/b");
    BOOST_TEST_REQUIRE(not_allowed(m));
    BOOST_TEST(m.allow == "GET, PUT");

    m = r.match(http::verb::post, "/a/zzz");
    BOOST_TEST_REQUIRE(not_allowed(m));
    BOOST_TEST(m.allow == "GET, PUT");
}

BOOST_AUTO_TEST_CASE(allow_list_keeps_methods_whose_names_contain_each_other) {
    // "LOCK" is a substring of "UNLOCK" (and "BIND" of "UNBIND"); each is still its own method.
    router r;
    r.add(http::verb::unlock, "/res");
    r.add(http::verb::lock, "/res");
    r.add(http::verb::unbind, "/res");
    r.add(http::verb::bind, "/res");

    auto m = r.match(http::verb::get, "/res");
    BOOST_TEST_REQUIRE(not_allowed(m));
    BOOST_TEST(m.allow == "UNLOCK, LOCK, UNBIND, BIND");
}

BOOST_AUTO_TEST_CASE(literal_segment_beats_parameter) {
    // Both insertion orders: the literal route wins whichever came first.
    {
        router r;
        auto param = r.add(http::verb::get, "/users/{id}");
        auto literal = r.add(http::verb::get, "/users/me");
        auto m = r.match(http::verb::get, "/users/me");
        BOOST_TEST_REQUIRE(found(m));
        BOOST_TEST(m.route == literal);
        BOOST_TEST(m.params[0].empty());

        m = r.match(http::verb::get, "/users/12");
        BOOST_TEST_REQUIRE(found(m));
        BOOST_TEST(m.route == param);
        BOOST_TEST(m.params[0] == "12");
    }
    {
        router r;
        auto literal = r.add(http::verb::get, "/users/me");
        auto param = r.add(http::verb::get, "/users/{id}");
        auto m = r.match(http::verb::get, "/users/me");
        BOOST_TEST_REQUIRE(found(m));
        BOOST_TEST(m.route == literal);

        m = r.match(http::verb::get, "/users/you");
        BOOST_TEST_REQUIRE(found(m));
        BOOST_TEST(m.route == param);
        BOOST_TEST(m.params[0] == "you");
    }
    // The shape of the API: "profiles/current" and "{coworkerId}/impersonate" side by side.
    {
        router r;
        auto list = r.add(http::verb::get, "/api/public/coworkers/profiles");
        auto current = r.add(http::verb::put, "/api/public/coworkers/profiles/current");
        auto imp = r.add(http::verb::get, "/api/public/coworkers/{coworkerId}/impersonate");

        auto m = r.match(http::verb::put, "/api/public/coworkers/profiles/current");
        BOOST_TEST_REQUIRE(found(m));
        BOOST_TEST(m.route == current);

        m = r.match(http::verb::get, "/api/public/coworkers/12/impersonate");
        BOOST_TEST_REQUIRE(found(m));
        BOOST_TEST(m.route == imp);
        BOOST_TEST(m.params[0] == "12");

        m = r.match(http::verb::get, "/api/public/coworkers/profiles");
        BOOST_TEST_REQUIRE(found(m));
        BOOST_TEST(m.route == list);

        m = r.match(http::verb::get, "/api/public/coworkers/profiles/current");
        BOOST_TEST_REQUIRE(not_allowed(m));
        BOOST_TEST(m.allow == "PUT");
    }
}

BOOST_AUTO_TEST_CASE(malformed_paths_are_not_found) {
    router r;
    r.add(http::verb::get, "/a");
    r.add(http::verb::get, "/a/b");
    r.add(http::verb::get, "/p/{x}");

    for (std::string_view path :
         {"", "/", "a", "a/b", "/a/", "/a/b/", "//a", "/a//b", "//", "/p//", "/p/", "p/x"}) {
        BOOST_TEST_CONTEXT("path '" << path << "'") {
            auto m = r.match(http::verb::get, path);
            BOOST_TEST(not_found(m));
            BOOST_TEST(m.allow.empty());
        }
    }
    // Even with a different method nothing is "allowed" on a malformed path.
    BOOST_TEST(not_found(r.match(http::verb::post, "/a/")));
}

BOOST_AUTO_TEST_CASE(too_many_segments_are_not_found) {
    router r;
    auto eight = r.add(http::verb::get, "/1/2/3/4/5/6/7/8");
    r.add(http::verb::get, "/{a}/{b}");

    auto m = r.match(http::verb::get, "/1/2/3/4/5/6/7/8");
    BOOST_TEST_REQUIRE(found(m));
    BOOST_TEST(m.route == eight);

    BOOST_TEST(not_found(r.match(http::verb::get, "/1/2/3/4/5/6/7/8/9")));
    BOOST_TEST(not_found(r.match(http::verb::get, "/x/y/z")));
    std::string long_path;
    for (int i = 0; i < 200; ++i)
        long_path += "/s";
    BOOST_TEST(not_found(r.match(http::verb::get, long_path)));
}

BOOST_AUTO_TEST_CASE(add_rejects_bad_patterns) {
    for (std::string_view pattern : {"", "/", "//", "no-slash", "a/b", "/a/", "/a//b", "//a",
                                     "/{a}/{b}/{c}", "/1/2/3/4/5/6/7/8/9"}) {
        BOOST_TEST_CONTEXT("pattern '" << pattern << "'") {
            router r;
            BOOST_CHECK_THROW(r.add(http::verb::get, pattern), std::invalid_argument);
            // Nothing half-added.
            BOOST_TEST(not_found(r.match(http::verb::get, "/a")));
        }
    }
    // The limits themselves are fine.
    router r;
    BOOST_CHECK_NO_THROW(r.add(http::verb::get, "/{a}/{b}"));
    BOOST_CHECK_NO_THROW(r.add(http::verb::get, "/x/{a}/y/{b}/z"));
    BOOST_CHECK_NO_THROW(r.add(http::verb::get, "/1/2/3/4/5/6/7/8"));
}

BOOST_AUTO_TEST_SUITE_END()
