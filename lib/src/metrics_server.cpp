// The /metrics listener: Beast over plain TCP, one coroutine per connection.
#include <portal_auth/metrics_server.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <chrono>

namespace portal_auth {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
constexpr auto await_tuple = asio::as_tuple(asio::use_awaitable);

asio::awaitable<void> serve_scraper(asio::ip::tcp::socket socket, const metrics& counts) {
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer;
    for (;;) {
        stream.expires_after(std::chrono::seconds(10));
        http::request<http::string_body> req;
        auto [read_error, n] = co_await http::async_read(stream, buffer, req, await_tuple);
        if (read_error)
            break;
        http::response<http::string_body> res;
        res.version(req.version());
        res.keep_alive(req.keep_alive());
        if (req.target() == "/metrics" &&
            (req.method() == http::verb::get || req.method() == http::verb::head)) {
            res.result(http::status::ok);
            res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
            res.body() = counts.render();
        } else {
            res.result(http::status::not_found);
            res.set(http::field::content_type, "text/plain");
            res.body() = "not found\n";
        }
        res.prepare_payload();
        if (req.method() == http::verb::head)
            res.body().clear();
        auto [write_error, written] = co_await http::async_write(stream, res, await_tuple);
        if (write_error || !res.keep_alive())
            break;
    }
    beast::error_code ignored;
    stream.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
}

} // namespace

asio::awaitable<void> serve_metrics(asio::ip::tcp::acceptor& acceptor, const metrics& counts) {
    for (;;) {
        auto [ec, socket] = co_await acceptor.async_accept(await_tuple);
        if (ec == asio::error::operation_aborted || !acceptor.is_open())
            co_return;
        if (ec) {
            // Out of descriptors and the like: pause rather than spin.
            asio::steady_timer pause(acceptor.get_executor(), std::chrono::milliseconds(100));
            co_await pause.async_wait(await_tuple);
            continue;
        }
        auto executor = socket.get_executor();
        asio::co_spawn(executor, serve_scraper(std::move(socket), counts), asio::detached);
    }
}

} // namespace portal_auth
