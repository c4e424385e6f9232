// The listener: accept loop, one coroutine per connection with its deadline watchdog, and a
// supervisor that turns stop() and per-operation cancellation into a graceful or forced stop.
#include <portal_auth/metrics.hpp>
#include <portal_auth/server.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>

#include <openssl/ssl.h>

#include <atomic>
#include <cstring>
#include <cstdint>
#include <exception>
#include <functional>
#include <iostream>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "forwarded_for.hpp"
#include "http_connection.hpp"
#include "proxy_protocol.hpp"
#include "request_id.hpp"
#include "response_serializer.hpp"
#include "tls_socket_stream.hpp"

namespace portal_auth {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

namespace {

constexpr auto await_tuple = asio::as_tuple(asio::use_awaitable);
using clock = std::chrono::steady_clock;
using detail::http_connection;

// What stop() needs to reach a connection: touched only on the connection's executor.
struct connection_handle {
    explicit connection_handle(asio::any_io_executor ex) : executor(std::move(ex)) {}
    asio::any_io_executor executor; // serializes everything touching the connection
    tcp::socket* socket = nullptr;
    http_connection* machine = nullptr;
};

// One accepted connection: the TLS stream, the sans-io HTTP machine that decides what to do
// with it, and a deadline watchdog, shared by the serving coroutine and the watchdog (both on
// the connection's executor).
//
// Deadlines cost no timer operation per request: the watchdog's timer runs to the deadline or
// at most `wake_period` ahead, and a new deadline at least `wake_period` away can only fall
// after the timer fires, where the watchdog reads it. Only a shorter one re-arms the timer.
struct connection {
    connection(tcp::socket socket, ssl::context& tls, const detail::http_connection_limits& limits,
               clock::duration period)
        : stream(std::move(socket), tls), watchdog_timer(stream.socket().get_executor()),
          wake_period(period), machine(limits) {}

    tcp::socket& socket() { return stream.socket(); }

    void expires_at(clock::time_point t) {
        deadline = t;
        if (deadline < watchdog_timer.expiry())
            watchdog_timer.cancel(); // the watchdog wakes and re-arms for the earlier deadline
    }

    detail::tls_socket_stream stream;
    asio::steady_timer watchdog_timer;
    const clock::duration wake_period;
    clock::time_point deadline = clock::time_point::max();
    bool finished = false; // the serving coroutine is done; the watchdog stops
    http_connection machine;
};
using connection_ptr = std::shared_ptr<connection>;

// "192.0.2.7", "[2001:db8::7]"
std::string format_address(const asio::ip::address& address) {
    if (address.is_v6())
        return "[" + address.to_string() + "]";
    return address.to_string();
}

// "192.0.2.7:4711", "[2001:db8::7]:4711"
std::string format_endpoint(const tcp::endpoint& ep) {
    return format_address(ep.address()) + ":" + std::to_string(ep.port());
}

// Who a connection's requests are from.
struct client_identity {
    tcp::endpoint tcp_peer;
    bool trusted_peer = false; // a reverse proxy of server_config::trusted_proxies
    std::string remote;        // the client, as request_context::remote
    std::string peer;          // the TCP peer when it is not the client
    bool read_forwarded_for = false;
};

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

    // Open connections per untrusted peer address, for max_connections_per_address.
    std::mutex per_address_mutex;
    std::unordered_map<asio::ip::address, std::size_t> per_address;

    // Counts a connection from `peer` unless that address is at its limit.
    bool admit(const asio::ip::address& peer) {
        if (config.max_connections_per_address == 0)
            return true;
        std::lock_guard lock(per_address_mutex);
        std::size_t& open = per_address[peer];
        if (open >= config.max_connections_per_address)
            return false;
        ++open;
        return true;
    }

    void release(const asio::ip::address& peer) {
        std::lock_guard lock(per_address_mutex);
        auto it = per_address.find(peer);
        if (it != per_address.end() && --it->second == 0)
            per_address.erase(it);
    }

    // Where the next connection runs; only the accept loop calls it.
    asio::any_io_executor next_connection_executor() {
        const auto& executors = config.connection_executors;
        if (executors.empty())
            return asio::make_strand(executor);
        return executors[next_executor++ % executors.size()];
    }

    // Every connection learns that the server stops (a request in flight is answered with
    // Connection: close); idle ones (or all, when forced) are cancelled, on their own executors.
    void wake_connections(bool force) {
        std::vector<std::shared_ptr<connection_handle>> handles;
        {
            std::lock_guard lock(registry_mutex);
            handles.assign(registry.begin(), registry.end());
        }
        for (auto& h : handles) {
            asio::post(h->executor, [h, force] {
                if (!h->socket)
                    return;
                const bool idle = h->machine->begin_shutdown();
                // Forced: abandoned like a timed-out connection, without waiting for the
                // peer's close_notify.
                if (force)
                    h->machine->on_timeout();
                if (idle || force) {
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
};

namespace {

using state_ptr = std::shared_ptr<server::state>;

// Keeps the registry and the live count right however the connection coroutine ends.
class connection_registration {
public:
    connection_registration(state_ptr st, std::shared_ptr<connection_handle> handle,
                            std::optional<asio::ip::address> counted)
        : st_(std::move(st)), handle_(std::move(handle)), counted_(std::move(counted)) {
        std::lock_guard lock(st_->registry_mutex);
        position_ = st_->registry.insert(st_->registry.end(), handle_);
    }
    ~connection_registration() {
        handle_->socket = nullptr;
        if (counted_)
            st_->release(*counted_);
        {
            std::lock_guard lock(st_->registry_mutex);
            st_->registry.erase(position_);
        }
        // While stopping, the supervisor may be waiting for the last connection. The wake-up
        // holds the state: it may run after run() has completed and the server is gone.
        if (st_->live.fetch_sub(1, std::memory_order_acq_rel) == 1 && st_->stopping.load())
            asio::post(st_->strand, [st = st_] { st->wake_timer.cancel(); });
    }
    connection_registration(const connection_registration&) = delete;
    connection_registration& operator=(const connection_registration&) = delete;

private:
    state_ptr st_;
    std::shared_ptr<connection_handle> handle_;
    std::optional<asio::ip::address> counted_; // counted against its address's limit
    std::list<std::shared_ptr<connection_handle>>::iterator position_;
};

// The answer to a request the machine rejected (400, 413, 431); the machine closes after it.
http_response protocol_error_response(http::status status) {
    std::string_view detail = "malformed HTTP request";
    if (status == http::status::request_header_fields_too_large)
        detail = "request header exceeds the size limit";
    else if (status == http::status::payload_too_large)
        detail = "request body exceeds the size limit";
    auto res = make_problem_response(status, "about:blank", detail, 11, false);
    // Every response has a request id, these too (no handler saw the request).
    res.set("X-Request-Id", detail::new_request_id());
    return res;
}

// Closes the socket once the connection's deadline has passed; the pending operation then
// fails and the machine, told first, closes without close_notify. One timer wait per deadline
// period, not per request.
asio::awaitable<void> watchdog(connection_ptr c) {
    while (!c->finished) {
        const auto now = clock::now();
        if (c->deadline <= now) {
            c->machine.on_timeout();
            beast::error_code ignored;
            c->socket().close(ignored);
            co_return;
        }
        c->watchdog_timer.expires_at(std::min(c->deadline, now + c->wake_period));
        co_await c->watchdog_timer.async_wait(await_tuple);
    }
}

// Performs what the machine asks, from the handshake to the close. Reads go straight into the
// machine's buffer; each response is one contiguous TLS write.
// The X-Forwarded-For lines of a request, joined in order.
std::string forwarded_for(const http_request& req) {
    std::string joined;
    const auto [first, last] = req.equal_range("X-Forwarded-For");
    for (auto it = first; it != last; ++it) {
        if (!joined.empty())
            joined += ", ";
        joined.append(it->value());
    }
    return joined;
}

// The caller of one request: the connection's client, or, from a trusted proxy that sends no
// PROXY header, the client X-Forwarded-For names.
request_context context_for(const state_ptr& st, const client_identity& who,
                            const http_request& req) {
    request_context context{who.remote, std::chrono::system_clock::now(), who.peer,
                            st->stopping.load(std::memory_order_relaxed)};
    if (!who.read_forwarded_for)
        return context;
    const auto client = detail::resolve_client_address(who.tcp_peer.address(), forwarded_for(req),
                                                       st->config.trusted_proxies);
    if (client != who.tcp_peer.address()) {
        context.remote = format_address(client);
        context.peer = format_endpoint(who.tcp_peer);
    }
    return context;
}

asio::awaitable<void> drive(state_ptr st, connection& c, const client_identity& who) {
    http_connection& m = c.machine;
    for (;;) {
        // A connection registered after stop() woke the others learns of it here.
        if (st->stopping.load(std::memory_order_relaxed))
            m.begin_shutdown();
        const http_connection::action next = m.next(clock::now());
        c.expires_at(next.deadline);
        switch (next.type) {
        case http_connection::action_type::handshake: {
            const beast::error_code ec = co_await c.stream.handshake();
            if (st->config.counts) {
                using result = metrics::handshake_result;
                st->config.counts->handshake(ec ? result::failed
                                             : SSL_session_reused(c.stream.native_handle())
                                                 ? result::resumed
                                                 : result::full);
            }
            m.handshake_done(ec);
            break;
        }
        case http_connection::action_type::read: {
            auto [ec, n] = co_await c.stream.read_some(m.prepare_input());
            m.commit_input(n);
            if (ec)
                m.input_error(ec);
            break;
        }
        case http_connection::action_type::handle: {
            http_request request = m.take_request();
            request_context context = context_for(st, who, request);
            http_response response = co_await st->handler(std::move(request), std::move(context));
            // A stop that came while the handler ran is read from the flag itself, not from
            // the wake-up posted to this connection, which may still be queued.
            if (st->stopping.load())
                m.begin_shutdown();
            m.submit_response(std::move(response));
            break;
        }
        case http_connection::action_type::respond_error:
            m.submit_response(protocol_error_response(next.status));
            break;
        case http_connection::action_type::write: {
            const beast::error_code ec = co_await c.stream.write(m.output());
            m.output_written(ec);
            break;
        }
        case http_connection::action_type::close:
            // close_notify, so that clients keep the TLS session for resumption. Sent without
            // waiting for the peer's own (as nginx does), so that a silent client cannot hold
            // the connection (or a server stop) open until the close deadline.
            if (next.close_notify)
                (void)co_await c.stream.shutdown();
            co_return;
        }
    }
}

// Reads the PROXY protocol v2 header that a trusted balancer sends first, exactly to its end
// (what follows is TLS), within the connection's deadline. The client it names, or nothing
// (LOCAL: the balancer's own check) as a value; an invalid header or a failed read as an error.
asio::awaitable<boost::system::result<std::optional<tcp::endpoint>>>
read_proxy_header(connection& c) {
    std::vector<unsigned char> header;
    for (;;) {
        const auto parsed = detail::parse_proxy_header(header);
        if (parsed.status == detail::proxy_header_status::complete)
            co_return parsed.source;
        if (parsed.status == detail::proxy_header_status::invalid)
            co_return make_error_code(boost::system::errc::protocol_error);
        const std::size_t have = header.size();
        header.resize(parsed.needed);
        auto [ec, n] = co_await asio::async_read(
            c.socket(), asio::buffer(header.data() + have, parsed.needed - have), await_tuple);
        if (ec)
            co_return ec;
    }
}

asio::awaitable<void> run_connection(state_ptr st, tcp::socket socket,
                                     std::optional<asio::ip::address> counted) {
    auto handle = std::make_shared<connection_handle>(socket.get_executor());
    connection_registration registration(st, handle, std::move(counted));

    beast::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored); // else resumption stalls on Nagle
    const server_config& cfg = st->config;
    client_identity who;
    who.tcp_peer = socket.remote_endpoint(ignored);
    who.remote = ignored ? std::string("unknown") : format_endpoint(who.tcp_peer);
    who.trusted_peer = !ignored && is_trusted(cfg.trusted_proxies, who.tcp_peer.address());
    who.read_forwarded_for = who.trusted_peer && !cfg.proxy_protocol;

    const detail::http_connection_limits limits{
        .header_limit = cfg.header_limit,
        .body_limit = cfg.body_limit,
        .handshake_timeout = cfg.handshake_timeout,
        .request_timeout = cfg.request_timeout,
        .idle_timeout = cfg.idle_timeout,
    };
    // Requests and responses move the deadline request_timeout ahead: with the watchdog waking
    // at least that often, they never touch its timer.
    auto c = std::make_shared<connection>(std::move(socket), st->tls, limits, cfg.request_timeout);
    handle->socket = &c->socket();
    handle->machine = &c->machine;
    asio::co_spawn(c->socket().get_executor(), watchdog(c), asio::detached);
    bool serve = true;
    if (who.trusted_peer && cfg.proxy_protocol) {
        c->expires_at(clock::now() + cfg.handshake_timeout);
        auto source = co_await read_proxy_header(*c);
        if (!source) {
            serve = false; // not from the balancer as configured: closed unanswered
            if (cfg.counts)
                cfg.counts->connection_rejected(metrics::rejection::proxy_header);
        } else if (*source) {
            who.peer = who.remote;
            who.remote = format_endpoint(**source);
        }
    }
    if (serve && !st->stopping.load())
        co_await drive(st, *c, who);
    handle->socket = nullptr;
    handle->machine = nullptr;
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

// Accept failures (out of descriptors: EMFILE, ENFILE; out of memory) come in storms: the loop
// pauses, doubling the pause while they last, and logs at most once a second with the count.
class accept_backoff {
public:
    static constexpr clock::duration first_pause = std::chrono::milliseconds(10);
    static constexpr clock::duration longest_pause = std::chrono::seconds(1);

    // The pause before the next accept; `log` gets a line when one is due.
    clock::duration failed(const beast::error_code& ec, clock::time_point now,
                           const std::function<void(std::string_view)>& log) {
        ++unreported_;
        if (!last_report_ || now - *last_report_ >= std::chrono::seconds(1)) {
            // strerror, not ec.message(): no virtual call while out of descriptors (UBSan's
            // vptr check reported one falsely then).
            std::string line = "accept failed: " + std::string(std::strerror(ec.value()));
            if (unreported_ > 1)
                line += " (" + std::to_string(unreported_) + " times since the last report)";
            line += "; pausing accepts";
            log(line);
            last_report_ = now;
            unreported_ = 0;
        }
        pause_ =
            pause_ == clock::duration::zero() ? first_pause : std::min(pause_ * 2, longest_pause);
        return pause_;
    }

    void succeeded() { pause_ = clock::duration::zero(); }

private:
    clock::duration pause_ = clock::duration::zero();
    std::optional<clock::time_point> last_report_;
    std::uint64_t unreported_ = 0;
};

asio::awaitable<void> accept_loop(state_ptr st) {
    accept_backoff backoff;
    for (;;) {
        auto [ec, socket] =
            co_await st->acceptor.async_accept(st->next_connection_executor(), await_tuple);
        if (st->stopping.load())
            break;
        if (ec) {
            asio::steady_timer pause(st->strand, backoff.failed(ec, clock::now(), st->config.log));
            co_await pause.async_wait(await_tuple);
            continue;
        }
        backoff.succeeded();
        beast::error_code peer_error;
        const auto peer = socket.remote_endpoint(peer_error);
        std::optional<asio::ip::address> counted;
        if (!peer_error && !is_trusted(st->config.trusted_proxies, peer.address()))
            counted = peer.address();
        const bool over_cap = st->live.load() >= st->config.max_connections;
        const bool over_address = !over_cap && counted && !st->admit(*counted);
        if (over_cap || over_address) {
            if (st->config.counts)
                st->config.counts->connection_rejected(over_cap
                                                           ? metrics::rejection::max_connections
                                                           : metrics::rejection::per_address);
            beast::error_code ignored;
            socket.close(ignored);
            continue;
        }
        if (st->config.counts)
            st->config.counts->connection_accepted();
        st->live.fetch_add(1, std::memory_order_relaxed);
        auto executor = socket.get_executor();
        asio::co_spawn(executor, run_connection(st, std::move(socket), std::move(counted)),
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
