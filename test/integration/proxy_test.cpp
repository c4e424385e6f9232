// Behind reverse proxies, over real TLS on 127.0.0.0/8 source addresses: X-Forwarded-For from
// trusted peers only, PROXY protocol v2 from trusted peers, and the per-address connection cap.
#include <boost/test/unit_test.hpp>

#include <string>

#include "test_support.hpp"

using namespace portal_auth;
using namespace portal_auth::test;
namespace http = boost::beast::http;

namespace {

std::vector<ip_network> networks(std::initializer_list<std::string_view> texts) {
    std::vector<ip_network> out;
    for (auto text : texts)
        out.push_back(ip_network::parse(text).value());
    return out;
}

response login_as(https_client& client, std::string_view email, std::string_view password,
                  std::string_view forwarded_for = {}) {
    std::vector<std::pair<std::string, std::string>> headers;
    if (!forwarded_for.empty())
        headers.emplace_back("X-Forwarded-For", std::string(forwarded_for));
    return client.request(http::verb::post, "/api/public/auth/login", login_body(email, password),
                          {}, std::move(headers));
}

// A PROXY protocol v2 header: PROXY command, TCP over IPv4, from `source`:`port`.
std::string proxy_v2_header(std::array<unsigned char, 4> source, unsigned short port) {
    std::string header("\r\n\r\n\0\r\nQUIT\n", 12);
    header += '\x21'; // version 2, PROXY
    header += '\x11'; // TCP over IPv4
    header += std::string("\0\x0c", 2);
    header.append(reinterpret_cast<const char*>(source.data()), 4);
    header += std::string("\x7f\0\0\x01", 4); // destination 127.0.0.1
    header += static_cast<char>(port >> 8);
    header += static_cast<char>(port & 0xff);
    header += std::string("\x01\xbb", 2); // destination port 443
    return header;
}

boost::json::object last_event(running_server& srv) {
    return srv.audit().recent(1)[0].as_object();
}

} // namespace

BOOST_AUTO_TEST_SUITE(reverse_proxies)

BOOST_AUTO_TEST_CASE(a_trusted_proxy_names_the_client_and_throttles_follow_it) {
    running_server srv({}, server_config{.trusted_proxies = networks({"127.0.0.1", "10.0.0.0/8"})});
    https_client proxy(srv.port());
    // The rightmost entry that is not itself a trusted proxy is the client.
    BOOST_TEST(login_as(proxy, "alice@acme.test", "guess", "198.51.100.7, 10.1.2.3").status ==
               401u);
    auto line = last_event(srv);
    BOOST_TEST(line.at("remote").as_string() == "198.51.100.7");
    BOOST_TEST(std::string(line.at("peer").as_string()).starts_with("127.0.0.1:"));
    for (int i = 0; i < 4; ++i)
        (void)login_as(proxy, "alice@acme.test", "guess", "198.51.100.7");
    const auto refused = login_as(proxy, "alice@acme.test", "alice-pw", "198.51.100.7");
    BOOST_TEST(refused.status == 429u);
    BOOST_TEST(!refused.header("Retry-After").empty());
    // Alice behind the same proxy, from her own address, is not locked out.
    BOOST_TEST(login_as(proxy, "alice@acme.test", "alice-pw", "203.0.113.20").status == 200u);
}

BOOST_AUTO_TEST_CASE(from_an_untrusted_peer_the_header_is_ignored) {
    running_server srv({}, server_config{.trusted_proxies = networks({"127.0.0.1"})});
    https_client client(srv.port(), {.source_address = "127.0.0.2"});
    BOOST_TEST(login_as(client, "alice@acme.test", "guess", "198.51.100.7").status == 401u);
    auto line = last_event(srv);
    BOOST_TEST(std::string(line.at("remote").as_string()).starts_with("127.0.0.2:"));
    BOOST_TEST(!line.contains("peer"));
}

BOOST_AUTO_TEST_CASE(proxy_protocol_gives_the_client_and_is_required_from_trusted_peers) {
    running_server srv(
        {}, server_config{.trusted_proxies = networks({"127.0.0.1"}), .proxy_protocol = true});
    https_client balanced(srv.port(), {.prelude = proxy_v2_header({192, 0, 2, 44}, 5555)});
    // X-Forwarded-For is not read when the PROXY header names the client.
    BOOST_TEST(login_as(balanced, "bob@acme.test", "guess", "198.51.100.9").status == 401u);
    auto line = last_event(srv);
    BOOST_TEST(line.at("remote").as_string() == "192.0.2.44:5555");
    BOOST_TEST(std::string(line.at("peer").as_string()).starts_with("127.0.0.1:"));
    // A trusted peer without the header is closed; an untrusted one is served as usual.
    BOOST_CHECK_THROW(https_client bare(srv.port()), boost::system::system_error);
    https_client direct(srv.port(), {.source_address = "127.0.0.2"});
    BOOST_TEST(direct.get("/healthz").status == 200u);
}

BOOST_AUTO_TEST_CASE(connections_per_address_are_capped_except_for_trusted_proxies) {
    running_server srv({}, server_config{.max_connections_per_address = 2,
                                         .trusted_proxies = networks({"127.0.0.1"})});
    https_client first(srv.port(), {.source_address = "127.0.0.2"});
    https_client second(srv.port(), {.source_address = "127.0.0.2"});
    BOOST_TEST(first.get("/healthz").status == 200u);
    BOOST_CHECK_THROW(https_client third(srv.port(), {.source_address = "127.0.0.2"}),
                      boost::system::system_error);
    https_client other(srv.port(), {.source_address = "127.0.0.3"});
    BOOST_TEST(other.get("/healthz").status == 200u);
    std::vector<std::unique_ptr<https_client>> via_proxy;
    for (int i = 0; i < 4; ++i)
        via_proxy.push_back(std::make_unique<https_client>(srv.port()));
    for (auto& c : via_proxy)
        BOOST_TEST(c->get("/healthz").status == 200u);
    // A closed connection frees its place.
    first.reset();
    BOOST_TEST(second.get("/healthz").status == 200u);
    bool admitted = false;
    for (int attempt = 0; attempt < 200 && !admitted; ++attempt) {
        try {
            https_client again(srv.port(), {.source_address = "127.0.0.2"});
            admitted = again.get("/healthz").status == 200u;
        } catch (const boost::system::system_error&) {
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
    }
    BOOST_TEST(admitted);
}

BOOST_AUTO_TEST_SUITE_END()
