// Repeated member names in request bodies (RFC 7493): found per object, at any depth.
#include <boost/test/unit_test.hpp>

#include "json_strict.hpp"

using portal_auth::first_duplicate_member;

BOOST_AUTO_TEST_SUITE(json_strict)

BOOST_AUTO_TEST_CASE(a_repeated_name_in_one_object_is_found) {
    BOOST_TEST(first_duplicate_member(R"({"email":"a","email":"b"})").value_or("") == "email");
    BOOST_TEST(first_duplicate_member(R"({"a":1,"b":{"c":1,"c":2}})").value_or("") == "c");
    BOOST_TEST(first_duplicate_member(R"([{"x":1},{"y":[{"z":1,"z":1}]}])").value_or("") == "z");
    // Escapes are compared as the names they decode to.
    BOOST_TEST(first_duplicate_member(R"({"email":1,"\u0065mail":2})").value_or("") == "email");
}

BOOST_AUTO_TEST_CASE(the_same_name_in_different_objects_is_fine) {
    BOOST_TEST(!first_duplicate_member(R"({"a":{"k":1},"b":{"k":2},"k":3})"));
    BOOST_TEST(!first_duplicate_member(R"([{"k":1},{"k":2}])"));
    BOOST_TEST(!first_duplicate_member(R"({"email":"alice@acme.test","password":"x"})"));
    BOOST_TEST(!first_duplicate_member("not json at all"));
    BOOST_TEST(!first_duplicate_member(""));
}

BOOST_AUTO_TEST_SUITE_END()
