// json_writer against Boost.JSON: the same text as json::serialize for nested documents, every
// escaped character, numbers at their limits and optional values.
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <limits>
#include <optional>
#include <string>

#include "json_writer.hpp"

using namespace portal_auth;
namespace json = boost::json;

BOOST_AUTO_TEST_SUITE(json_writer_suite)

BOOST_AUTO_TEST_CASE(nested_document_matches_boost_json) {
    std::string out;
    json_writer w(out);
    w.begin_object()
        .key("id")
        .value(42)
        .key("name")
        .value("Ada")
        .key("tags")
        .begin_array()
        .value("a")
        .begin_object()
        .key("x")
        .value(true)
        .end_object()
        .begin_array()
        .end_array()
        .null()
        .end_array()
        .key("empty")
        .begin_object()
        .end_object()
        .key("off")
        .value(false)
        .end_object();
    json::value expected = {
        {"id", 42},
        {"name", "Ada"},
        {"tags", json::array{"a", json::object{{"x", true}}, json::array{}, nullptr}},
        {"empty", json::object{}},
        {"off", false}};
    BOOST_TEST(out == json::serialize(expected));
    BOOST_TEST(json::parse(out) == expected);
}

BOOST_AUTO_TEST_CASE(every_escape_matches_boost_json) {
    std::string all;
    for (int c = 0; c < 256; ++c)
        all.push_back(static_cast<char>(c));
    all += "tail \"quoted\" back\\slash /slash \xc3\xa9";
    std::string out;
    append_json_string(out, all);
    BOOST_TEST(out == json::serialize(json::string(all)));
    std::string member;
    json_writer(member).begin_object().key("k").value(all).end_object();
    BOOST_TEST(member == json::serialize(json::object{{"k", all}}));
}

BOOST_AUTO_TEST_CASE(escapes_at_every_position_of_a_block) {
    // Plain text is skipped 8 bytes at a time: an escape must be found wherever it falls.
    for (char special : {'"', '\\', '\n', '\x01', '\x1f'})
        for (std::size_t length = 1; length <= 24; ++length)
            for (std::size_t at = 0; at < length; ++at) {
                std::string text(length, 'a');
                text[at] = special;
                std::string out;
                append_json_string(out, text);
                BOOST_TEST(out == json::serialize(json::string(text)));
            }
    std::string plain;
    append_json_string(plain, "\x7f\x80 ~ !#[]");
    BOOST_TEST(plain == "\"\x7f\x80 ~ !#[]\"");
}

BOOST_AUTO_TEST_CASE(numbers_and_optionals) {
    constexpr auto min64 = std::numeric_limits<std::int64_t>::min();
    constexpr auto max64 = std::numeric_limits<std::int64_t>::max();
    constexpr auto maxu64 = std::numeric_limits<std::uint64_t>::max();
    std::string out;
    json_writer(out)
        .begin_array()
        .value(0)
        .value(-1)
        .value(min64)
        .value(max64)
        .value(maxu64)
        .value(404u)
        .value(std::optional<std::int64_t>(7))
        .value(std::optional<std::int64_t>())
        .end_array();
    BOOST_TEST(out == json::serialize(json::array{0, -1, min64, max64, maxu64, 404u, 7, nullptr}));
}

BOOST_AUTO_TEST_CASE(raw_inserts_serialized_values) {
    std::string out;
    json_writer(out)
        .begin_object()
        .key("events")
        .raw(json::serialize(json::array{1, "two"}))
        .key("n")
        .value(1)
        .end_object();
    BOOST_TEST(out == R"({"events":[1,"two"],"n":1})");
}

BOOST_AUTO_TEST_SUITE_END()
