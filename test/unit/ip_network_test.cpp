// Unit tests of ip_network: parsing, masking, membership with both IPv4 spellings.
#include <portal_auth/ip_network.hpp>

#include <boost/asio/ip/address.hpp>
#include <boost/system/errc.hpp>
#include <boost/test/unit_test.hpp>

#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace portal_auth {

// Lets BOOST_TEST print the networks it compares.
std::ostream& operator<<(std::ostream& out, const ip_network& network) {
    return out << network.to_string();
}

} // namespace portal_auth

using portal_auth::ip_network;
namespace ip = boost::asio::ip;

namespace {

ip_network net(std::string_view text) {
    auto parsed = ip_network::parse(text);
    BOOST_TEST_REQUIRE(parsed.has_value(), "does not parse: " << text);
    return *parsed;
}

ip::address addr(std::string_view text) {
    return ip::make_address(std::string(text));
}

} // namespace

BOOST_AUTO_TEST_SUITE(ip_network_suite)

BOOST_AUTO_TEST_CASE(parses_v4_and_v6_networks) {
    const std::pair<std::string_view, std::string_view> cases[] = {
        {"10.0.0.0/8", "10.0.0.0/8"},
        {"192.168.1.7", "192.168.1.7/32"},
        {"0.0.0.0/0", "0.0.0.0/0"},
        {"172.16.0.0/12", "172.16.0.0/12"},
        {"::1", "::1/128"},
        {"fd00::/8", "fd00::/8"},
        {"2001:db8::/32", "2001:db8::/32"},
        {"2001:DB8::/32", "2001:db8::/32"},
        {"::/0", "::/0"},
        {"10.0.0.0/008", "10.0.0.0/8"},
    };
    for (const auto& [text, canonical] : cases) {
        BOOST_TEST_CONTEXT(text) {
            const ip_network n = net(text);
            BOOST_TEST(n.to_string() == canonical);
            BOOST_TEST(net(n.to_string()) == n);
        }
    }
    BOOST_TEST(net("10.0.0.0/8").address().is_v4());
    BOOST_TEST(net("10.0.0.0/8").prefix_length() == 8u);
    BOOST_TEST(net("::1").address().is_v6());
    BOOST_TEST(net("::1").prefix_length() == 128u);
}

BOOST_AUTO_TEST_CASE(host_bits_are_cleared) {
    BOOST_TEST(net("10.1.2.3/8").to_string() == "10.0.0.0/8");
    BOOST_TEST(net("192.168.1.255/23").to_string() == "192.168.0.0/23");
    BOOST_TEST(net("10.1.2.3/0").to_string() == "0.0.0.0/0");
    BOOST_TEST(net("2001:db8:ffff::1/33").to_string() == "2001:db8:8000::/33");
    BOOST_TEST(net("fdff::1/7").to_string() == "fc00::/7");
    BOOST_TEST(net("10.1.2.3/8") == net("10.0.0.0/8"));
}

BOOST_AUTO_TEST_CASE(v4_mapped_network_is_a_v4_network) {
    BOOST_TEST(net("::ffff:10.0.0.0/104").to_string() == "10.0.0.0/8");
    BOOST_TEST(net("::ffff:192.0.2.7").to_string() == "192.0.2.7/32");
    BOOST_TEST(net("::ffff:0:0/96").to_string() == "0.0.0.0/0");
    BOOST_TEST(net("::ffff:10.0.0.0/104").contains(addr("10.9.9.9")));
    // Below /96 it spans more than the mapped range and stays IPv6.
    BOOST_TEST(net("::ffff:0:0/95").address().is_v6());
}

BOOST_AUTO_TEST_CASE(rejects_bad_text) {
    const std::string_view bad[] = {
        "",
        "/",
        "/8",
        "10.0.0.0/",
        "10.0.0.0/33",
        "10.0.0.0/-1",
        "10.0.0.0/+8",
        "10.0.0.0/8/8",
        "10.0.0.0/1000",
        "10.0.0.0/8 ",
        " 10.0.0.0/8",
        "10.0.0.0 /8",
        "10.0.0.0/ 8",
        "10.0.0.0/0x8",
        "10.0.0/8",
        "10.0.0.256",
        "10.0.0.0.0",
        "1.2.3.04",
        "localhost",
        "example.com/24",
        "::1/129",
        "fd00::/200",
        "fe80::1%eth0",
        "fe80::1%1/64",
        "[::1]",
        "[::1]/128",
        "1:2:3:4:5:6:7:8:9",
        "2001:db8:::1",
        "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.2555",
        std::string_view("10.0.0.1\0/8", 11),
        std::string_view("10.0.0.1\0", 9),
    };
    for (std::string_view text : bad) {
        BOOST_TEST_CONTEXT("'" << text << "'") {
            auto parsed = ip_network::parse(text);
            BOOST_TEST_REQUIRE(!parsed.has_value());
            BOOST_TEST(parsed.error() == boost::system::errc::invalid_argument);
        }
    }
}

BOOST_AUTO_TEST_CASE(contains_v4) {
    const ip_network n = net("10.0.0.0/8");
    BOOST_TEST(n.contains(addr("10.0.0.0")));
    BOOST_TEST(n.contains(addr("10.255.255.255")));
    BOOST_TEST(n.contains(addr("10.1.2.3")));
    BOOST_TEST(!n.contains(addr("11.0.0.0")));
    BOOST_TEST(!n.contains(addr("9.255.255.255")));
    BOOST_TEST(!n.contains(addr("::1")));
    BOOST_TEST(!n.contains(addr("a00::1"))); // 0x0a first byte, but IPv6

    const ip_network odd = net("192.168.0.0/23");
    BOOST_TEST(odd.contains(addr("192.168.1.200")));
    BOOST_TEST(!odd.contains(addr("192.168.2.0")));

    const ip_network host = net("192.168.1.7");
    BOOST_TEST(host.contains(addr("192.168.1.7")));
    BOOST_TEST(!host.contains(addr("192.168.1.6")));
    BOOST_TEST(!host.contains(addr("192.168.1.8")));

    const ip_network all = net("0.0.0.0/0");
    BOOST_TEST(all.contains(addr("255.255.255.255")));
    BOOST_TEST(all.contains(addr("0.0.0.0")));
    BOOST_TEST(!all.contains(addr("::")));
}

BOOST_AUTO_TEST_CASE(contains_v6) {
    const ip_network n = net("2001:db8::/32");
    BOOST_TEST(n.contains(addr("2001:db8::1")));
    BOOST_TEST(n.contains(addr("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff")));
    BOOST_TEST(!n.contains(addr("2001:db9::")));
    BOOST_TEST(!n.contains(addr("32.1.13.184"))); // the same first four bytes, as IPv4

    const ip_network ula = net("fd00::/8");
    BOOST_TEST(ula.contains(addr("fd12:3456::1")));
    BOOST_TEST(!ula.contains(addr("fc00::1")));

    const ip_network loopback = net("::1");
    BOOST_TEST(loopback.contains(addr("::1")));
    BOOST_TEST(!loopback.contains(addr("::2")));
    BOOST_TEST(!loopback.contains(addr("127.0.0.1")));

    const ip_network odd = net("2001:db8:8000::/33");
    BOOST_TEST(odd.contains(addr("2001:db8:8000::1")));
    BOOST_TEST(!odd.contains(addr("2001:db8:7fff::1")));
}

BOOST_AUTO_TEST_CASE(zone_of_the_address_is_ignored) {
    ip::address_v6 scoped = ip::make_address_v6("fe80::1");
    scoped.scope_id(3);
    BOOST_TEST(net("fe80::/10").contains(ip::address(scoped)));
}

BOOST_AUTO_TEST_CASE(v4_mapped_address_matches_v4_networks_only) {
    const ip::address mapped = addr("::ffff:10.1.2.3");
    BOOST_TEST(mapped.is_v6());
    BOOST_TEST(net("10.0.0.0/8").contains(mapped));
    BOOST_TEST(net("10.1.2.3").contains(mapped));
    BOOST_TEST(!net("192.168.0.0/16").contains(mapped));
    BOOST_TEST(net("0.0.0.0/0").contains(mapped));
    // An IPv4 address is the same host in either spelling, so IPv6 networks hold neither.
    BOOST_TEST(!net("::/0").contains(mapped));
    BOOST_TEST(!net("::/0").contains(addr("10.1.2.3")));
    BOOST_TEST(net("::/0").contains(addr("2001:db8::1")));
    // IPv4-compatible (::a.b.c.d) is not mapped.
    BOOST_TEST(!net("10.0.0.0/8").contains(addr("::10.1.2.3")));
}

BOOST_AUTO_TEST_CASE(is_trusted_scans_all_networks) {
    const std::vector<ip_network> networks = {net("10.0.0.0/8"), net("fd00::/8"),
                                              net("192.168.1.7")};
    BOOST_TEST(portal_auth::is_trusted(networks, addr("10.2.3.4")));
    BOOST_TEST(portal_auth::is_trusted(networks, addr("fd00::1")));
    BOOST_TEST(portal_auth::is_trusted(networks, addr("192.168.1.7")));
    BOOST_TEST(portal_auth::is_trusted(networks, addr("::ffff:192.168.1.7")));
    BOOST_TEST(!portal_auth::is_trusted(networks, addr("192.168.1.8")));
    BOOST_TEST(!portal_auth::is_trusted(networks, addr("2001:db8::1")));
    BOOST_TEST(!portal_auth::is_trusted({}, addr("10.2.3.4")));
}

BOOST_AUTO_TEST_SUITE_END()
