// Unit tests of detail::resolve_client_address: X-Forwarded-For behind trusted proxies.
#include <portal_auth/ip_network.hpp>

#include <boost/asio/ip/address.hpp>
#include <boost/test/unit_test.hpp>

#include <string>
#include <string_view>
#include <vector>

#include "forwarded_for.hpp"

using portal_auth::ip_network;
using portal_auth::detail::resolve_client_address;
namespace ip = boost::asio::ip;

namespace {

ip::address addr(std::string_view text) {
    return ip::make_address(std::string(text));
}

std::vector<ip_network> networks(std::initializer_list<std::string_view> texts) {
    std::vector<ip_network> out;
    for (std::string_view text : texts)
        out.push_back(ip_network::parse(text).value());
    return out;
}

// A load balancer in 10.0.0.0/8 and an nginx in fd00::/8 in front of the server.
struct proxies {
    const std::vector<ip_network> trusted = networks({"10.0.0.0/8", "fd00::/8"});
    const ip::address balancer = addr("10.0.0.5");

    std::string resolve(std::string_view xff) const {
        return resolve_client_address(balancer, xff, trusted).to_string();
    }
};

} // namespace

BOOST_FIXTURE_TEST_SUITE(forwarded_for_suite, proxies)

BOOST_AUTO_TEST_CASE(untrusted_peer_ignores_the_header) {
    const ip::address peer = addr("198.51.100.9");
    BOOST_TEST(resolve_client_address(peer, "203.0.113.1", trusted) == peer);
    BOOST_TEST(resolve_client_address(peer, "10.0.0.1", trusted) == peer);
    BOOST_TEST(resolve_client_address(peer, "garbage", trusted) == peer);
    BOOST_TEST(resolve_client_address(balancer, "203.0.113.1", {}) == balancer);
}

BOOST_AUTO_TEST_CASE(no_header_gives_the_peer) {
    BOOST_TEST(resolve("") == "10.0.0.5");
    BOOST_TEST(resolve("   ") == "10.0.0.5");
    BOOST_TEST(resolve(",") == "10.0.0.5");
    BOOST_TEST(resolve(" , ,, ") == "10.0.0.5");
}

BOOST_AUTO_TEST_CASE(single_proxy) {
    BOOST_TEST(resolve("203.0.113.1") == "203.0.113.1");
    // The client's own claim on the left is not believed: the balancer appended the real one.
    BOOST_TEST(resolve("1.1.1.1, 203.0.113.1") == "203.0.113.1");
}

BOOST_AUTO_TEST_CASE(chained_trusted_proxies_are_skipped) {
    BOOST_TEST(resolve("203.0.113.1, 10.0.0.7") == "203.0.113.1");
    BOOST_TEST(resolve("1.1.1.1, 203.0.113.1, fd00::2, 10.0.0.7") == "203.0.113.1");
    // An untrusted hop in the middle ends the walk there.
    BOOST_TEST(resolve("203.0.113.1, 198.51.100.4, 10.0.0.7") == "198.51.100.4");
}

BOOST_AUTO_TEST_CASE(all_trusted_gives_the_leftmost) {
    BOOST_TEST(resolve("10.0.0.9") == "10.0.0.9");
    BOOST_TEST(resolve("10.0.0.1, fd00::3, 10.0.0.2") == "10.0.0.1");
    BOOST_TEST(resolve(", 10.0.0.1, , 10.0.0.2,") == "10.0.0.1");
}

BOOST_AUTO_TEST_CASE(garbage_stops_the_walk) {
    // Nothing trusted vouches for what is left of the garbage: the last trusted address stands.
    BOOST_TEST(resolve("unknown") == "10.0.0.5");
    BOOST_TEST(resolve("203.0.113.1, unknown") == "10.0.0.5");
    BOOST_TEST(resolve("203.0.113.1, unknown, 10.0.0.7") == "10.0.0.7");
    BOOST_TEST(resolve("203.0.113.1, 10.0.0.8, bogus, 10.0.0.7") == "10.0.0.7");
    BOOST_TEST(resolve("bogus, 203.0.113.1") == "203.0.113.1");
    const std::string_view garbage[] = {
        "example.com",
        "_hidden",
        "1.2.3",
        "1.2.3.4.5",
        "256.1.1.1",
        "1.2.3.4:",
        "1.2.3.4:65536",
        "1.2.3.4:port",
        "1.2.3.4:123456",
        "[1.2.3.4]",
        "[1.2.3.4]:80",
        "[::1",
        "[::1]x",
        "[::1]:",
        "[::1]:99999",
        "::1:",
        "fe80::1%eth0",
        "[fe80::1%eth0]",
        "1.2.3.4 5.6.7.8",
        "\"203.0.113.1\"",
        "for=203.0.113.1",
        "203.0.113.1;",
        std::string_view("203.0.113.1\0", 12),
    };
    for (std::string_view entry : garbage) {
        BOOST_TEST_CONTEXT("'" << entry << "'") {
            BOOST_TEST(resolve(entry) == "10.0.0.5");
            BOOST_TEST(resolve(std::string("203.0.113.1, ").append(entry)) == "10.0.0.5");
        }
    }
}

BOOST_AUTO_TEST_CASE(whitespace_around_entries) {
    BOOST_TEST(resolve("  203.0.113.1  ") == "203.0.113.1");
    BOOST_TEST(resolve("203.0.113.1,10.0.0.7") == "203.0.113.1");
    BOOST_TEST(resolve("\t203.0.113.1\t,\t10.0.0.7 ") == "203.0.113.1");
    BOOST_TEST(resolve("1.1.1.1 ,   203.0.113.1 ,10.0.0.7") == "203.0.113.1");
}

BOOST_AUTO_TEST_CASE(ipv6_entries) {
    BOOST_TEST(resolve("2001:db8::1") == "2001:db8::1");
    BOOST_TEST(resolve("2001:db8::1, fd00::2") == "2001:db8::1");
    BOOST_TEST(resolve("[2001:db8::1]") == "2001:db8::1");
    BOOST_TEST(resolve("[2001:db8::1], [fd00::2]") == "2001:db8::1");
    BOOST_TEST(resolve("2001:DB8:0:0:0:0:0:1") == "2001:db8::1");

    const ip::address v6_proxy = addr("fd00::9");
    BOOST_TEST(resolve_client_address(v6_proxy, "203.0.113.1", trusted) == addr("203.0.113.1"));
}

BOOST_AUTO_TEST_CASE(ports_are_dropped) {
    BOOST_TEST(resolve("203.0.113.1:4711") == "203.0.113.1");
    BOOST_TEST(resolve("[2001:db8::1]:4711") == "2001:db8::1");
    BOOST_TEST(resolve("203.0.113.1:0, 10.0.0.7:65535") == "203.0.113.1");
    BOOST_TEST(resolve("[2001:db8::1]:443, [fd00::2]:80") == "2001:db8::1");
}

BOOST_AUTO_TEST_CASE(v4_mapped_entries_and_peers) {
    // A trusted proxy written in the mapped form is still trusted; the entry keeps its form.
    BOOST_TEST(resolve("203.0.113.1, ::ffff:10.0.0.7") == "203.0.113.1");
    BOOST_TEST(resolve("::ffff:203.0.113.1") == "::ffff:203.0.113.1");
    // The balancer seen through a dual-stack socket.
    const ip::address mapped_balancer = addr("::ffff:10.0.0.5");
    BOOST_TEST(resolve_client_address(mapped_balancer, "203.0.113.1", trusted) ==
               addr("203.0.113.1"));
    BOOST_TEST(resolve_client_address(mapped_balancer, "", trusted) == mapped_balancer);
}

BOOST_AUTO_TEST_CASE(long_header_is_walked_from_the_right) {
    std::string xff;
    for (int i = 0; i < 1000; ++i)
        xff.append("203.0.113.").append(std::to_string(i % 256)).append(", ");
    xff.append("198.51.100.1");
    for (int i = 0; i < 500; ++i)
        xff.append(", 10.0.")
            .append(std::to_string(i / 256))
            .append(".")
            .append(std::to_string(i % 256));
    BOOST_TEST(resolve(xff) == "198.51.100.1");
}

BOOST_AUTO_TEST_SUITE_END()
