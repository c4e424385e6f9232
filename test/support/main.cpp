// The one Boost.Test entry point shared by every test executable.
#define BOOST_TEST_MODULE portal_auth_tests
#include <boost/test/unit_test.hpp>
