// The listener's limits over real TLS: connection cap, slow and idle clients, graceful stop.
#include <boost/asio/connect.hpp>
#include <boost/test/unit_test.hpp>

#include <thread>

#include "test_support.hpp"

using namespace portal_auth;
using namespace portal_auth::test;
using namespace std::chrono_literals;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds limit) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done()) {
        if (std::chrono::steady_clock::now() > deadline)
            return false;
        std::this_thread::sleep_for(5ms);
    }
    return true;
}

} // namespace

BOOST_AUTO_TEST_SUITE(listener_limits)

BOOST_AUTO_TEST_CASE(connections_beyond_the_cap_are_closed_established_ones_serve) {
    running_server srv({}, server_config{.max_connections = 2});
    https_client first(srv.port());
    https_client second(srv.port());
    BOOST_TEST(first.get("/healthz").status == 200u);
    BOOST_TEST(second.get("/healthz").status == 200u);
    BOOST_TEST(srv.listener().connection_count() == 2u);
    // The third is closed right after accept: its TLS handshake fails.
    BOOST_CHECK_THROW(https_client third(srv.port()), boost::system::system_error);
    BOOST_TEST(first.get("/healthz").status == 200u);
    BOOST_TEST(second.get("/healthz").status == 200u);
}

BOOST_AUTO_TEST_CASE(slowloris_is_cut_off_at_the_request_timeout) {
    running_server srv({}, server_config{.request_timeout = 1s});
    https_client slow(srv.port());
    const std::string request =
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaa\r\n\r\n";
    auto start = std::chrono::steady_clock::now();
    bool cut = false;
    for (char c : request) {
        try {
            slow.send_raw(std::string_view(&c, 1));
        } catch (const boost::system::system_error&) {
            cut = true;
            break;
        }
        std::this_thread::sleep_for(100ms);
        if (std::chrono::steady_clock::now() - start > 4s)
            break;
    }
    // Either a write failed or the server closed without answering.
    std::string rest = cut ? std::string() : slow.receive_until_close(3s);
    auto elapsed = std::chrono::steady_clock::now() - start;
    BOOST_TEST(rest.find("200 OK") == std::string::npos);
    BOOST_TEST(elapsed < 4s);
    BOOST_TEST(wait_until([&] { return srv.listener().connection_count() == 0; }, 3000ms));
    https_client fresh(srv.port());
    BOOST_TEST(fresh.get("/healthz").status == 200u);
}

BOOST_AUTO_TEST_CASE(idle_keep_alive_connections_are_closed) {
    running_server srv({}, server_config{.idle_timeout = 1s});
    https_client idle(srv.port());
    BOOST_TEST(idle.get("/healthz").status == 200u);
    BOOST_TEST(srv.listener().connection_count() == 1u);
    BOOST_TEST(wait_until([&] { return srv.listener().connection_count() == 0; }, 3000ms));
}

BOOST_AUTO_TEST_CASE(stop_finishes_requests_in_flight_and_closes_idle_connections) {
    running_server srv({}, server_config{.shutdown_grace = 5s});
    https_client idle(srv.port());
    BOOST_TEST(idle.get("/healthz").status == 200u);

    // A request half sent when stop() comes is still answered, with Connection: close.
    https_client in_flight(srv.port());
    const std::string body = login_body("bob@acme.test", "bob-pw");
    in_flight.send_raw("POST /api/public/auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                       std::to_string(body.size()) + "\r\n\r\n" + body.substr(0, 5));
    std::this_thread::sleep_for(100ms);
    srv.listener().stop();
    BOOST_TEST(wait_until([&] { return srv.listener().connection_count() == 1; }, 3000ms),
               "the idle connection is closed at once");
    in_flight.send_raw(body.substr(5));
    std::string answer = in_flight.receive_until_close();
    BOOST_TEST(answer.find("HTTP/1.1 200 OK") == 0u, answer.substr(0, 80));
    BOOST_TEST(answer.find("Connection: close") != std::string::npos);
    BOOST_TEST(srv.stop_and_wait(10s));

    // And nothing listens any more.
    asio::io_context ioc;
    tcp::socket s(ioc);
    boost::system::error_code ec;
    s.connect({asio::ip::make_address("127.0.0.1"), srv.port()}, ec);
    BOOST_TEST(ec == asio::error::connection_refused);
}

BOOST_AUTO_TEST_SUITE_END()
