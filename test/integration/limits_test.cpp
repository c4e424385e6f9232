// The listener's limits over real TLS: connection cap, slow and idle clients, graceful stop.
#include <boost/asio/connect.hpp>
#include <boost/test/unit_test.hpp>

#include <future>
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
        std::this_thread::sleep_for(1ms);
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

// The deadlines themselves are the connection machine's (unit tests, injected clock); these two
// check that the watchdog enforces them on a real socket, waiting for the close, not sleeping.
BOOST_AUTO_TEST_CASE(slowloris_is_cut_off_at_the_request_timeout) {
    running_server srv({}, server_config{.request_timeout = 200ms});
    https_client slow(srv.port());
    const auto start = std::chrono::steady_clock::now();
    slow.send_raw("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: a"); // and nothing more
    std::string rest = slow.receive_until_close(3s);
    const auto elapsed = std::chrono::steady_clock::now() - start;
    BOOST_TEST(rest.empty(), rest);
    BOOST_TEST((elapsed >= 150ms && elapsed < 2s), (elapsed / 1ms) << " ms");
    BOOST_TEST(wait_until([&] { return srv.listener().connection_count() == 0; }, 3000ms));
    https_client fresh(srv.port());
    BOOST_TEST(fresh.get("/healthz").status == 200u);
}

// A client that sends a request and resets the connection at once: the server's answer, and its
// close_notify, go to a dead socket. A write(2) there raises SIGPIPE, whose default action would
// end this whole test process; the library must survive without the application ignoring it.
BOOST_AUTO_TEST_CASE(clients_that_reset_do_not_bring_the_server_down) {
    running_server srv;
    for (int i = 0; i < 50; ++i) {
        https_client rude(srv.port());
        rude.send_raw("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        rude.reset();
    }
    https_client polite(srv.port());
    BOOST_TEST(polite.get("/healthz").status == 200u);
}

BOOST_AUTO_TEST_CASE(idle_keep_alive_connections_are_closed) {
    running_server srv({}, server_config{.idle_timeout = 200ms});
    https_client idle(srv.port());
    BOOST_TEST(idle.get("/healthz").status == 200u);
    BOOST_TEST(srv.listener().connection_count() == 1u);
    const auto start = std::chrono::steady_clock::now();
    BOOST_TEST(idle.receive_until_close(3s).empty());
    const auto elapsed = std::chrono::steady_clock::now() - start;
    BOOST_TEST((elapsed >= 150ms && elapsed < 2s), (elapsed / 1ms) << " ms");
    BOOST_TEST(wait_until([&] { return srv.listener().connection_count() == 0; }, 3000ms));
}

BOOST_AUTO_TEST_CASE(stop_finishes_requests_in_flight_and_closes_idle_connections) {
    running_server srv({}, server_config{.shutdown_grace = 5s});
    https_client idle(srv.port());
    BOOST_TEST(idle.get("/healthz").status == 200u);

    // A login in flight when stop() comes is still answered, with Connection: close. Its
    // password check waits behind a job holding the only hashing thread until released.
    std::promise<void> release;
    std::shared_future<void> released = release.get_future().share();
    asio::post(srv.fixture().hashing, [released] { released.wait(); });
    https_client in_flight(srv.port());
    const std::string body = login_body("bob@acme.test", "bob-pw");
    in_flight.send_raw("POST /api/public/auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                       std::to_string(body.size()) + "\r\n\r\n" + body);
    BOOST_TEST_REQUIRE(wait_until([&] { return srv.fixture().passwords.waiting() == 1; }, 10000ms));
    srv.listener().stop();
    BOOST_TEST(idle.receive_until_close(3s).empty(), "the idle connection is closed at once");
    BOOST_TEST(wait_until([&] { return srv.listener().connection_count() == 1; }, 3000ms));
    release.set_value();
    std::string answer = in_flight.receive_until_close();
    BOOST_TEST(answer.find("HTTP/1.1 200 OK") == 0u, answer.substr(0, 80));
    BOOST_TEST(answer.find("Connection: close") != std::string::npos, answer);
    BOOST_TEST(srv.stop_and_wait(10s));

    // And nothing listens any more.
    asio::io_context ioc;
    tcp::socket s(ioc);
    boost::system::error_code ec;
    s.connect({asio::ip::make_address("127.0.0.1"), srv.port()}, ec);
    BOOST_TEST(ec == asio::error::connection_refused);
}

BOOST_AUTO_TEST_SUITE_END()
