#include <portal_auth/server.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <atomic>
#include <exception>
#include <iostream>
#include <list>
#include <mutex>
#include <optional>
#include <string>

namespace portal_auth {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;

namespace {

constexpr auto await_tuple = asio::as_tuple(asio::use_awaitable);
using tls_stream = beast::ssl_stream<beast::tcp_stream>;

// What stop() needs to reach a connection: touched only on the connection's strand.
struct connection_handle {
    explicit connection_handle(asio::any_io_executor ex) : strand(std::move(ex)) {}
    asio::any_io_executor strand;
    beast::tcp_stream* stream = nullptr;
    bool idle = false; // waiting for the first byte of a request
};

std::string format_endpoint(const tcp::endpoint& ep) {
    const auto address = ep.address();
    std::string text;
    if (address.is_v6())
        text.append("[").append(address.to_string()).append("]");
    else
        text = address.to_string();
    text.append(":").append(std::to_string(ep.port()));
    return text;
}

void default_log(std::string_view line) {
    std::clog << "portal-auth: " << line << std::endl;
}

} // namespace

struct server::state {
    state(asio::any_io_executor ex, ssl::context& tls_context, request_handler& h,
          server_config cfg)
        : executor(ex), strand(asio::make_strand(ex)), tls(tls_context), handler(h),
          config(std::move(cfg)), acceptor(strand), sweep_timer(strand) {
        if (!config.log)
            config.log = default_log;
    }

    asio::any_io_executor executor;
    asio::strand<asio::any_io_executor> strand; // acceptor, timer and stop() run here
    ssl::context& tls;
    request_handler& handler;
    server_config config;
    tcp::acceptor acceptor;
    asio::steady_timer sweep_timer;
    tcp::endpoint bound;
    std::atomic<bool> stopping{false};
    std::atomic<std::size_t> live{0};

    std::mutex registry_mutex;
    std::list<std::shared_ptr<connection_handle>> registry;

    // Idle connections (or all, when forced) are cancelled on their own strands.
    void wake_connections(bool force) {
        std::vector<std::shared_ptr<connection_handle>> handles;
        {
            std::lock_guard lock(registry_mutex);
            handles.assign(registry.begin(), registry.end());
        }
        for (auto& h : handles) {
            asio::post(h->strand, [h, force] {
                if (h->stream && (h->idle || force))
                    h->stream->socket().cancel();
            });
        }
    }
};

namespace {

using state_ptr = std::shared_ptr<server::state>;

// Keeps the registry and the live count right however the connection coroutine ends.
class connection_registration {
public:
    connection_registration(state_ptr st, std::shared_ptr<connection_handle> handle)
        : st_(std::move(st)), handle_(std::move(handle)) {
        std::lock_guard lock(st_->registry_mutex);
        position_ = st_->registry.insert(st_->registry.end(), handle_);
    }
    ~connection_registration() {
        handle_->stream = nullptr;
        {
            std::lock_guard lock(st_->registry_mutex);
            st_->registry.erase(position_);
        }
        st_->live.fetch_sub(1, std::memory_order_relaxed);
    }
    connection_registration(const connection_registration&) = delete;
    connection_registration& operator=(const connection_registration&) = delete;

private:
    state_ptr st_;
    std::shared_ptr<connection_handle> handle_;
    std::list<std::shared_ptr<connection_handle>>::iterator position_;
};

// The answer to a request Beast could not parse, or none when the connection just ends.
std::optional<http_response> answer_to_read_error(beast::error_code ec) {
    if (ec == http::error::header_limit)
        return make_problem_response(http::status::request_header_fields_too_large,
                                     "request header exceeds the size limit", 11, false);
    if (ec == http::error::body_limit)
        return make_problem_response(http::status::payload_too_large,
                                     "request body exceeds the size limit", 11, false);
    // Closes, timeouts and socket errors end the connection without an answer.
    const auto& http_category = make_error_code(http::error::end_of_stream).category();
    if (ec.category() != http_category || ec == http::error::end_of_stream ||
        ec == http::error::partial_message)
        return std::nullopt;
    return make_problem_response(http::status::bad_request, "malformed HTTP request", 11, false);
}

asio::awaitable<void> serve_requests(state_ptr st, tls_stream& stream, connection_handle& handle,
                                     const std::string& remote) {
    const server_config& cfg = st->config;
    beast::flat_buffer buffer;
    for (;;) {
        if (buffer.size() == 0) {
            // Idle between requests: the keep-alive timeout applies, and stop() may end it.
            if (st->stopping.load())
                co_return;
            handle.idle = true;
            stream.next_layer().expires_after(cfg.idle_timeout);
            auto [ec, n] = co_await stream.async_read_some(buffer.prepare(4096), await_tuple);
            handle.idle = false;
            if (ec)
                co_return;
            buffer.commit(n);
        }

        // A fresh parser per request: a reused one rejects the second request.
        http::request_parser<http::string_body> parser;
        parser.header_limit(static_cast<std::uint32_t>(cfg.header_limit));
        parser.body_limit(cfg.body_limit);
        stream.next_layer().expires_after(cfg.request_timeout);
        auto [read_ec, read_n] = co_await http::async_read(stream, buffer, parser, await_tuple);
        if (read_ec) {
            auto answer = answer_to_read_error(read_ec);
            if (answer) {
                stream.next_layer().expires_after(cfg.request_timeout);
                co_await http::async_write(stream, *answer, await_tuple);
            }
            co_return;
        }

        http_response response = st->handler.handle(
            parser.get(), call_context{remote, std::chrono::system_clock::now()});
        if (st->stopping.load())
            response.keep_alive(false);
        stream.next_layer().expires_after(cfg.request_timeout);
        auto [write_ec, write_n] = co_await http::async_write(stream, response, await_tuple);
        if (write_ec || !response.keep_alive())
            co_return;
    }
}

asio::awaitable<void> run_connection(state_ptr st, tcp::socket socket) {
    auto handle = std::make_shared<connection_handle>(socket.get_executor());
    connection_registration registration(st, handle);

    beast::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored); // else resumption stalls on Nagle
    auto peer = socket.remote_endpoint(ignored);
    const std::string remote = ignored ? std::string("unknown") : format_endpoint(peer);

    tls_stream stream(std::move(socket), st->tls);
    handle->stream = &stream.next_layer();
    if (st->stopping.load())
        co_return;

    stream.next_layer().expires_after(st->config.handshake_timeout);
    handle->idle = true; // nothing received yet: stop() may close it
    auto [hs_ec] = co_await stream.async_handshake(ssl::stream_base::server, await_tuple);
    handle->idle = false;
    if (hs_ec)
        co_return;

    co_await serve_requests(st, stream, *handle, remote);

    // close_notify, so that clients keep the TLS session for resumption.
    stream.next_layer().expires_after(std::chrono::seconds(2));
    co_await stream.async_shutdown(await_tuple);
    handle->stream = nullptr;
}

asio::awaitable<void> sweep_loop(state_ptr st) {
    while (!st->stopping.load()) {
        st->sweep_timer.expires_after(st->config.sweep_interval);
        co_await st->sweep_timer.async_wait(await_tuple);
        if (st->stopping.load())
            break;
        st->handler.service().sweep(std::chrono::system_clock::now());
    }
}

asio::awaitable<void> wait_for_connections(state_ptr st,
                                           std::chrono::steady_clock::duration limit) {
    asio::steady_timer timer(st->strand);
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (st->live.load() > 0 && std::chrono::steady_clock::now() < deadline) {
        timer.expires_after(std::chrono::milliseconds(10));
        co_await timer.async_wait(await_tuple);
    }
}

void log_connection_failure(state_ptr st, std::exception_ptr e) {
    if (!e)
        return;
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& ex) {
        st->config.log(std::string("connection ended by an unexpected error: ") + ex.what());
    }
}

asio::awaitable<void> accept_loop(state_ptr st) {
    for (;;) {
        auto [ec, socket] =
            co_await st->acceptor.async_accept(asio::make_strand(st->executor), await_tuple);
        if (st->stopping.load())
            break;
        if (ec) {
            // Out of descriptors and the like: back off briefly rather than spin.
            st->config.log("accept failed: " + ec.message());
            asio::steady_timer pause(st->strand, std::chrono::milliseconds(50));
            co_await pause.async_wait(await_tuple);
            continue;
        }
        if (st->live.load() >= st->config.max_connections) {
            beast::error_code ignored;
            socket.close(ignored);
            continue;
        }
        st->live.fetch_add(1, std::memory_order_relaxed);
        auto executor = socket.get_executor();
        asio::co_spawn(executor, run_connection(st, std::move(socket)),
                       [st](std::exception_ptr e) { log_connection_failure(st, e); });
    }

    // Requests in flight finish within the grace period; then whatever remains is closed.
    co_await wait_for_connections(st, st->config.shutdown_grace);
    if (st->live.load() > 0) {
        st->config.log("closing " + std::to_string(st->live.load()) +
                       " connections still open after the shutdown grace period");
        st->wake_connections(true);
        co_await wait_for_connections(st, std::chrono::seconds(5));
    }
}

asio::awaitable<void> run_on_strand(state_ptr st) {
    co_await (accept_loop(st) && sweep_loop(st));
}

} // namespace

server::server(asio::any_io_executor executor, ssl::context& tls, const tcp::endpoint& endpoint,
               request_handler& handler, server_config config)
    : state_(std::make_shared<state>(std::move(executor), tls, handler, std::move(config))) {
    auto& acceptor = state_->acceptor;
    acceptor.open(endpoint.protocol());
    acceptor.set_option(asio::socket_base::reuse_address(true));
    if (endpoint.address().is_v6())
        acceptor.set_option(asio::ip::v6_only(true));
    acceptor.bind(endpoint);
    acceptor.listen(asio::socket_base::max_listen_connections);
    state_->bound = acceptor.local_endpoint();
}

server::~server() = default;

tcp::endpoint server::local_endpoint() const {
    return state_->bound;
}

asio::awaitable<void> server::run() {
    co_await asio::co_spawn(state_->strand, run_on_strand(state_), asio::use_awaitable);
}

void server::stop() {
    asio::post(state_->strand, [st = state_] {
        if (st->stopping.exchange(true))
            return;
        beast::error_code ignored;
        st->acceptor.close(ignored);
        st->sweep_timer.cancel();
        st->wake_connections(false);
    });
}

std::size_t server::connection_count() const noexcept {
    return state_->live.load();
}

} // namespace portal_auth
