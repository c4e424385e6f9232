// What an Asio application does to embed portal-auth: (a) run the listener on its own
// io_context with its own ssl::context, then stop it; (a') deal connections over one
// io_context per thread; (b) serve the request handler from its own Beast server, without the
// listener.
#include <portal_auth/server.hpp>
#include <portal_auth/tls_context.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/parse.hpp>
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"

using namespace portal_auth;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

// The application's own ssl::context, from the shared test certificate.
boost::system::result<asio::ssl::context> application_tls_context() {
    std::string detail;
    auto tls =
        make_tls_context_from_pem(test::shared_pki().cert_pem, test::shared_pki().key_pem, detail);
    BOOST_TEST(tls.has_value(), detail);
    return tls;
}

// The application's way to bound a server's life: whichever ends first, the server or the timer
// (|| cancels the other with terminal cancellation).
asio::awaitable<void> serve_until(server& srv, std::chrono::milliseconds limit, bool& timer_won) {
    using namespace asio::experimental::awaitable_operators;
    asio::steady_timer timer(co_await asio::this_coro::executor, limit);
    auto which = co_await (srv.run() || timer.async_wait(asio::use_awaitable));
    timer_won = which.index() == 1;
}

// The cancellation tests' application: the service, its own TLS context and io_context, and a
// listener whose 30 s grace is far longer than any of these tests waits.
struct embedded_listener {
    test::service_fixture deps;
    asio::ssl::context tls = application_tls_context().value();
    asio::io_context ioc;
    server srv{ioc.get_executor(), tls, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0),
               std::ref(deps.handler), server_config{.shutdown_grace = std::chrono::seconds(30)}};
};

} // namespace

BOOST_AUTO_TEST_SUITE(embedding)

BOOST_AUTO_TEST_CASE(listener_on_the_applications_io_context) {
    test::service_fixture deps;
    auto tls = application_tls_context();
    BOOST_TEST_REQUIRE(tls.has_value());

    asio::io_context ioc; // the application's, run by the application's thread
    server srv(ioc.get_executor(), *tls, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0),
               std::ref(deps.handler), server_config{.shutdown_grace = std::chrono::seconds(2)});
    bool run_completed = false;
    // Set on the application's thread, checked on this one (Boost.Test is not thread-safe).
    asio::co_spawn(ioc, srv.run(), [&](std::exception_ptr e) { run_completed = !e; });
    std::thread app_thread([&] { ioc.run(); });

    {
        test::https_client client(srv.local_endpoint().port());
        auto r = client.post("/api/public/auth/login", test::login_body("bob@acme.test", "bob-pw"));
        BOOST_TEST(r.status == 200u);
        BOOST_TEST(client.get("/healthz").status == 200u);
        // An idle keep-alive connection is still open when we stop: stop() must close it.
        srv.stop();
        app_thread.join(); // run() completed and nothing else was left on the io_context
    }
    BOOST_TEST(run_completed);
    BOOST_TEST(srv.connection_count() == 0u);
}

BOOST_AUTO_TEST_CASE(run_raced_against_a_timer_closes_everything_when_the_timer_fires) {
    embedded_listener app;
    asio::io_context& ioc = app.ioc;
    server& srv = app.srv;
    bool timer_won = false;
    bool completed = false;
    asio::co_spawn(ioc, serve_until(srv, std::chrono::milliseconds(300), timer_won),
                   [&](std::exception_ptr e) { completed = !e; });
    std::thread app_thread([&] { ioc.run(); });
    test::https_client client(srv.local_endpoint().port());
    BOOST_TEST(client.get("/healthz").status == 200u);
    // The keep-alive connection stays open; terminal cancellation closes it at once, long
    // before the 30 s grace.
    const auto start = std::chrono::steady_clock::now();
    app_thread.join();
    BOOST_TEST(completed);
    BOOST_TEST(timer_won);
    BOOST_TEST(srv.connection_count() == 0u);
    BOOST_TEST((std::chrono::steady_clock::now() - start < std::chrono::seconds(5)));
    BOOST_TEST(client.receive_until_close(std::chrono::seconds(5)).empty());
}

BOOST_AUTO_TEST_CASE(total_cancellation_is_a_graceful_stop) {
    embedded_listener app;
    test::service_fixture& deps = app.deps;
    asio::io_context& ioc = app.ioc;
    server& srv = app.srv;
    asio::cancellation_signal stop_signal;
    bool completed = false;
    asio::co_spawn(ioc, srv.run(),
                   asio::bind_cancellation_slot(stop_signal.slot(),
                                                [&](std::exception_ptr e) { completed = !e; }));
    std::thread app_thread([&] { ioc.run(); });
    {
        test::https_client idle(srv.local_endpoint().port());
        BOOST_TEST(idle.get("/healthz").status == 200u);
        // A login in flight: its verification waits behind a job that holds the only hashing
        // thread until released.
        std::promise<void> release;
        std::shared_future<void> released = release.get_future().share();
        asio::post(deps.hashing, [released] { released.wait(); });
        test::https_client busy(srv.local_endpoint().port());
        const std::string login = test::login_body("bob@acme.test", "bob-pw");
        busy.send_raw("POST /api/public/auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                      std::to_string(login.size()) + "\r\n\r\n" + login);
        const auto wait_limit = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (deps.passwords.waiting() == 0 && std::chrono::steady_clock::now() < wait_limit)
            std::this_thread::yield();
        BOOST_TEST_REQUIRE(deps.passwords.waiting() == 1u);

        asio::post(ioc, [&] { stop_signal.emit(asio::cancellation_type::total); });
        // The idle connection is closed at once, without an answer.
        const auto start = std::chrono::steady_clock::now();
        BOOST_TEST(idle.receive_until_close(std::chrono::seconds(10)).empty());
        BOOST_TEST((std::chrono::steady_clock::now() - start < std::chrono::seconds(5)));
        // The login in flight finishes and is answered, with Connection: close.
        release.set_value();
        std::string answer = busy.receive_until_close(std::chrono::seconds(10));
        BOOST_TEST(answer.starts_with("HTTP/1.1 200 OK"), answer);
        BOOST_TEST(answer.find("Connection: close") != std::string::npos, answer);
    }
    app_thread.join();
    BOOST_TEST(completed);
    BOOST_TEST(srv.connection_count() == 0u);
}

BOOST_AUTO_TEST_CASE(connections_spread_over_one_io_context_per_thread) {
    test::service_fixture deps;
    auto tls = application_tls_context();
    BOOST_TEST_REQUIRE(tls.has_value());

    // The acceptor on the first context; connections dealt over two single-threaded ones.
    asio::io_context acceptor_ioc, first_ioc(1), second_ioc(1);
    auto guard_first = asio::make_work_guard(first_ioc);
    auto guard_second = asio::make_work_guard(second_ioc);
    server_config config{.shutdown_grace = std::chrono::seconds(2)};
    config.connection_executors = {first_ioc.get_executor(), second_ioc.get_executor()};
    server srv(acceptor_ioc.get_executor(), *tls,
               tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0), std::ref(deps.handler),
               config);
    bool run_completed = false;
    asio::co_spawn(acceptor_ioc, srv.run(), [&](std::exception_ptr e) {
        run_completed = !e;
        guard_first.reset();
        guard_second.reset();
    });
    std::thread acceptor_thread([&] { acceptor_ioc.run(); });
    std::thread first_thread([&] { first_ioc.run(); });
    std::thread second_thread([&] { second_ioc.run(); });

    {
        // Four keep-alive clients, two per context, each making requests from its own thread.
        std::vector<std::thread> clients;
        std::atomic<int> ok{0};
        for (int i = 0; i < 4; ++i)
            clients.emplace_back([&] {
                test::https_client client(srv.local_endpoint().port());
                auto login = client.post("/api/public/auth/login",
                                         test::login_body("bob@acme.test", "bob-pw"));
                if (login.status != 200u)
                    return;
                auto access = std::string(login.json().at("accessToken").as_string());
                for (int n = 0; n < 20; ++n)
                    if (client.get("/api/public/auth/session", access).status == 200u)
                        ++ok;
            });
        for (auto& t : clients)
            t.join();
        BOOST_TEST(ok.load() == 4 * 20);

        // An idle connection on a worker context is closed by stop() too.
        test::https_client idle(srv.local_endpoint().port());
        BOOST_TEST(idle.get("/healthz").status == 200u);
        srv.stop();
        acceptor_thread.join();
        first_thread.join(); // the worker contexts ran out of work: no connection remained
        second_thread.join();
    }
    BOOST_TEST(run_completed);
    BOOST_TEST(srv.connection_count() == 0u);
}

// The application's own plain-TCP Beast server, handing each request to request_handler.
asio::awaitable<void> own_beast_session(tcp::socket socket, const request_handler& handler) {
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer;
    http_request req;
    stream.expires_after(std::chrono::seconds(10));
    co_await http::async_read(stream, buffer, req, asio::use_awaitable);
    request_context context{"embedded", std::chrono::system_clock::now()};
    auto res = co_await handler(std::move(req), std::move(context));
    co_await http::async_write(stream, res, asio::use_awaitable);
}

BOOST_AUTO_TEST_CASE(handler_inside_the_applications_own_beast_server) {
    test::service_fixture deps;
    asio::io_context ioc;
    tcp::acceptor acceptor(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    const auto port = acceptor.local_endpoint().port();

    // Accept one connection and serve it with the application's own code.
    bool served = false;
    acceptor.async_accept([&](boost::system::error_code ec, tcp::socket socket) {
        if (ec)
            return;
        asio::co_spawn(ioc, own_beast_session(std::move(socket), deps.handler),
                       [&](std::exception_ptr e) { served = !e; });
    });
    std::thread app_thread([&] { ioc.run(); });

    asio::io_context client_ioc;
    beast::tcp_stream client(client_ioc);
    client.expires_after(std::chrono::seconds(10));
    client.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    http::request<http::string_body> req{http::verb::post, "/api/public/auth/login", 11};
    req.set(http::field::host, "127.0.0.1");
    req.body() = test::login_body("alice@acme.test", "alice-pw");
    req.prepare_payload();
    http::write(client, req);
    beast::flat_buffer buffer;
    http::response<http::string_body> res;
    http::read(client, buffer, res);
    app_thread.join();
    BOOST_TEST(served);

    BOOST_TEST(res.result_int() == 200u);
    auto body = boost::json::parse(res.body()).as_object();
    BOOST_TEST(body.at("customerId").as_int64() == 100);
    // The session made through the embedded path is the same store's: it authenticates.
    auto session = test::run_sync(deps.service.authenticate(
        body.at("accessToken").as_string(), {"embedded", std::chrono::system_clock::now()}));
    BOOST_TEST(session.has_value());
}

BOOST_AUTO_TEST_SUITE_END()
