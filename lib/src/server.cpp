// The listener: accept loop, one coroutine per connection with its deadline watchdog, and a
// supervisor that turns stop() and per-operation cancellation into a graceful or forced stop.
#include <portal_auth/server.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>

#include <atomic>
#include <exception>
#include <iostream>
#include <list>
#include <mutex>
#include <optional>
#include <string>

#include "response_serializer.hpp"

namespace portal_auth {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

namespace {

constexpr auto await_tuple = asio::as_tuple(asio::use_awaitable);
using clock = std::chrono::steady_clock;
using request_parser = http::request_parser<http::string_body>;

// Bytes asked of TLS per read: a whole request of the usual size in one call.
constexpr std::size_t read_chunk = 4096;

// What stop() needs to reach a connection: touched only on the connection's executor.
struct connection_handle {
    explicit connection_handle(asio::any_io_executor ex) : executor(std::move(ex)) {}
    asio::any_io_executor executor; // serializes everything touching the connection
    tcp::socket* socket = nullptr;
    bool idle = false; // waiting for the first byte of a request
};

// One accepted connection, shared by its serving coroutine and its watchdog (both on the
// connection's executor). The buffers live as long as the connection, so requests and responses
// reuse their memory.
//
// Deadlines cost no timer operation per request: the watchdog's timer runs to the deadline or
// at most `wake_period` ahead, and a new deadline at least `wake_period` away can only fall
// after the timer fires, where the watchdog reads it. Only a shorter one re-arms the timer.
struct connection {
    connection(tcp::socket socket, ssl::context& tls, clock::duration period)
        : stream(std::move(socket), tls), watchdog_timer(stream.get_executor()),
          wake_period(period) {}

    tcp::socket& socket() { return stream.next_layer(); }

    void expires_after(clock::duration timeout) {
        deadline = clock::now() + timeout;
        if (deadline < watchdog_timer.expiry())
            watchdog_timer.cancel(); // the watchdog wakes and re-arms for the earlier deadline
    }

    ssl::stream<tcp::socket> stream;
    asio::steady_timer watchdog_timer;
    const clock::duration wake_period;
    clock::time_point deadline = clock::time_point::max();
    bool finished = false;  // the serving coroutine is done; the watchdog stops
    bool timed_out = false; // the watchdog closed the socket
    beast::flat_buffer input;
    std::string output;
};
using connection_ptr = std::shared_ptr<connection>;

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
    state(asio::any_io_executor ex, ssl::context& tls_context, request_handler_fn h,
          server_config cfg)
        : executor(ex), strand(asio::make_strand(ex)), tls(tls_context), handler(std::move(h)),
          config(std::move(cfg)), acceptor(strand), wake_timer(strand) {
        if (!config.log)
            config.log = default_log;
    }

    asio::any_io_executor executor;
    asio::strand<asio::any_io_executor> strand; // acceptor, supervisor and stops run here
    ssl::context& tls;
    request_handler_fn handler;
    server_config config;
    tcp::acceptor acceptor;
    tcp::endpoint bound;
    std::size_t next_executor = 0; // round-robin over config.connection_executors
    std::atomic<bool> stopping{false};
    std::atomic<std::size_t> live{0};

    // The supervisor sleeps on this timer until something it waits for changes: the accept
    // loop ended, the last connection ended while stopping, a stop, the grace period's end.
    asio::steady_timer wake_timer;
    bool accepting = false; // strand only
    bool forced = false;    // strand only
    clock::time_point grace_deadline = clock::time_point::max();

    std::mutex registry_mutex;
    std::list<std::shared_ptr<connection_handle>> registry;

    // Where the next connection runs; only the accept loop calls it.
    asio::any_io_executor next_connection_executor() {
        const auto& executors = config.connection_executors;
        if (executors.empty())
            return asio::make_strand(executor);
        return executors[next_executor++ % executors.size()];
    }

    // Idle connections (or all, when forced) are cancelled on their own executors.
    void wake_connections(bool force) {
        std::vector<std::shared_ptr<connection_handle>> handles;
        {
            std::lock_guard lock(registry_mutex);
            handles.assign(registry.begin(), registry.end());
        }
        for (auto& h : handles) {
            asio::post(h->executor, [h, force] {
                if (h->socket && (h->idle || force)) {
                    beast::error_code ignored;
                    h->socket->cancel(ignored);
                }
            });
        }
    }

    // On the strand. A graceful stop closes the acceptor and idle connections and starts the
    // grace period; a forced one closes every connection.
    void begin_stop(bool force) {
        if (!stopping.exchange(true)) {
            grace_deadline = clock::now() + config.shutdown_grace;
            beast::error_code ignored;
            acceptor.close(ignored);
        }
        forced = forced || force;
        wake_connections(forced);
        wake_timer.cancel();
    }

    // Any thread: a connection ended. While stopping, the supervisor may be waiting for the last.
    void connection_ended() {
        if (live.fetch_sub(1, std::memory_order_acq_rel) == 1 && stopping.load())
            asio::post(strand, [this] { wake_timer.cancel(); });
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
        handle_->socket = nullptr;
        {
            std::lock_guard lock(st_->registry_mutex);
            st_->registry.erase(position_);
        }
        st_->connection_ended();
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
        return make_problem_response(http::status::request_header_fields_too_large, "about:blank",
                                     "request header exceeds the size limit", 11, false);
    if (ec == http::error::body_limit)
        return make_problem_response(http::status::payload_too_large, "about:blank",
                                     "request body exceeds the size limit", 11, false);
    // Closes, timeouts and socket errors end the connection without an answer.
    const auto& http_category = make_error_code(http::error::end_of_stream).category();
    if (ec.category() != http_category || ec == http::error::end_of_stream ||
        ec == http::error::partial_message)
        return std::nullopt;
    return make_problem_response(http::status::bad_request, "about:blank", "malformed HTTP request",
                                 11, false);
}

// Closes the socket once the connection's deadline has passed; the pending read or write then
// fails and the connection ends. One timer wait per deadline period, not per request.
asio::awaitable<void> watchdog(connection_ptr c) {
    while (!c->finished) {
        const auto now = clock::now();
        if (c->deadline <= now) {
            c->timed_out = true;
            beast::error_code ignored;
            c->socket().close(ignored);
            co_return;
        }
        c->watchdog_timer.expires_at(std::min(c->deadline, now + c->wake_period));
        co_await c->watchdog_timer.async_wait(await_tuple);
    }
}

// Parses one request from what `c.input` holds, reading more from TLS while the parser needs
// it. The parser's own limits bound the input buffer.
asio::awaitable<beast::error_code> read_request(connection& c, request_parser& parser) {
    parser.eager(true);
    for (;;) {
        if (c.input.size() > 0) {
            beast::error_code ec;
            c.input.consume(parser.put(c.input.data(), ec));
            if (parser.is_done())
                co_return beast::error_code{};
            if (ec && ec != http::error::need_more)
                co_return ec;
        }
        auto [ec, n] = co_await c.stream.async_read_some(c.input.prepare(read_chunk), await_tuple);
        c.input.commit(n);
        if (ec == asio::error::eof) {
            if (!parser.got_some())
                co_return beast::error_code(http::error::end_of_stream);
            beast::error_code eof_ec;
            parser.put_eof(eof_ec);
            co_return eof_ec;
        }
        if (ec)
            co_return ec;
    }
}

// One TLS write of the whole response.
asio::awaitable<beast::error_code> write_response(connection& c, const http_response& response) {
    c.output.clear();
    serialize_response(response, c.output);
    auto [ec, n] = co_await asio::async_write(c.stream, asio::buffer(c.output), await_tuple);
    co_return ec;
}

asio::awaitable<void> serve_requests(state_ptr st, connection& c, connection_handle& handle,
                                     const std::string& remote) {
    const server_config& cfg = st->config;
    for (;;) {
        if (c.input.size() == 0) {
            // Idle between requests: the keep-alive timeout applies, and stop() may end it.
            if (st->stopping.load())
                co_return;
            handle.idle = true;
            c.expires_after(cfg.idle_timeout);
            auto [ec, n] =
                co_await c.stream.async_read_some(c.input.prepare(read_chunk), await_tuple);
            handle.idle = false;
            if (ec)
                co_return;
            c.input.commit(n);
        }

        // A fresh parser per request: a reused one rejects the second request.
        request_parser parser;
        parser.header_limit(static_cast<std::uint32_t>(cfg.header_limit));
        parser.body_limit(cfg.body_limit);
        c.expires_after(cfg.request_timeout);
        const beast::error_code read_ec = co_await read_request(c, parser);
        if (read_ec) {
            if (auto answer = answer_to_read_error(read_ec)) {
                c.expires_after(cfg.request_timeout);
                co_await write_response(c, *answer);
            }
            co_return;
        }

        // Named, not braced in the call: GCC 12 miscompiles an aggregate built in braces inside
        // a co_await expression.
        request_context context{remote, std::chrono::system_clock::now()};
        http_response response = co_await st->handler(parser.release(), std::move(context));
        if (st->stopping.load())
            response.keep_alive(false);
        c.expires_after(cfg.request_timeout);
        const beast::error_code write_ec = co_await write_response(c, response);
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

    // Requests and responses move the deadline request_timeout ahead: with the watchdog waking
    // at least that often, they never touch its timer.
    auto c = std::make_shared<connection>(std::move(socket), st->tls, st->config.request_timeout);
    if (st->stopping.load())
        co_return;
    handle->socket = &c->socket();
    c->expires_after(st->config.handshake_timeout);
    asio::co_spawn(c->socket().get_executor(), watchdog(c), asio::detached);

    handle->idle = true; // nothing received yet: stop() may close it
    auto [hs_ec] = co_await c->stream.async_handshake(ssl::stream_base::server, await_tuple);
    handle->idle = false;
    if (!hs_ec) {
        co_await serve_requests(st, *c, *handle, remote);
        if (!c->timed_out) {
            // close_notify, so that clients keep the TLS session for resumption.
            c->expires_after(std::chrono::seconds(2));
            co_await c->stream.async_shutdown(await_tuple);
        }
    }
    handle->socket = nullptr;
    c->finished = true;
    c->watchdog_timer.cancel();
}

void log_failure(const state_ptr& st, std::string_view what, std::exception_ptr e) {
    if (!e)
        return;
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& ex) {
        st->config.log(std::string(what) + " ended by an unexpected error: " + ex.what());
    } catch (...) {
        st->config.log(std::string(what) + " ended by an unexpected error");
    }
}

asio::awaitable<void> accept_loop(state_ptr st) {
    for (;;) {
        auto [ec, socket] =
            co_await st->acceptor.async_accept(st->next_connection_executor(), await_tuple);
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
                       [st](std::exception_ptr e) { log_failure(st, "a connection", e); });
    }
}

// Runs on the strand until the accept loop has ended and no connection is left. Turns
// cancellation of run() into stops: terminal forces, total and partial are graceful.
asio::awaitable<void> supervise(state_ptr st) {
    co_await asio::this_coro::throw_if_cancelled(false);
    co_await asio::this_coro::reset_cancellation_state(asio::enable_total_cancellation());
    st->accepting = true;
    asio::co_spawn(st->strand, accept_loop(st), [st](std::exception_ptr e) {
        log_failure(st, "the accept loop", e);
        st->accepting = false;
        st->wake_timer.cancel();
    });
    bool grace_reported = false;
    // The check and the wait run in one strand turn, so a wake-up posted to the strand after
    // the check finds the wait in place.
    while (st->accepting || st->live.load() > 0) {
        const bool grace_running = st->stopping.load() && !st->forced;
        st->wake_timer.expires_at(grace_running ? st->grace_deadline : clock::time_point::max());
        auto [ec] = co_await st->wake_timer.async_wait(await_tuple);
        const asio::cancellation_state state = co_await asio::this_coro::cancellation_state;
        const auto cancelled = state.cancelled();
        if (cancelled != asio::cancellation_type::none) {
            st->begin_stop((cancelled & asio::cancellation_type::terminal) !=
                           asio::cancellation_type::none);
            co_await asio::this_coro::reset_cancellation_state(asio::enable_total_cancellation());
        } else if (!ec && grace_running && !grace_reported && st->live.load() > 0) {
            grace_reported = true;
            st->config.log("closing " + std::to_string(st->live.load()) +
                           " connections still open after the shutdown grace period");
            st->begin_stop(true);
        }
    }
}

} // namespace

server::server(asio::any_io_executor executor, ssl::context& tls, const tcp::endpoint& endpoint,
               request_handler_fn handler, server_config config)
    : state_(std::make_shared<state>(std::move(executor), tls, std::move(handler),
                                     std::move(config))) {
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
    // Let total cancellation through to the supervisor (the default passes terminal only), and
    // complete normally after it.
    co_await asio::this_coro::throw_if_cancelled(false);
    co_await asio::this_coro::reset_cancellation_state(asio::enable_total_cancellation());
    co_await asio::co_spawn(state_->strand, supervise(state_), asio::use_awaitable);
}

void server::stop(bool force) {
    asio::post(state_->strand, [st = state_, force] { st->begin_stop(force); });
}

std::size_t server::connection_count() const noexcept {
    return state_->live.load();
}

} // namespace portal_auth
