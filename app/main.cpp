// portal-auth: flag parsing and wiring. Everything else lives in the library.
#include <portal_auth/audit_log.hpp>
#include <portal_auth/auth_service.hpp>
#include <portal_auth/directory.hpp>
#include <portal_auth/memory_store.hpp>
#include <portal_auth/password_hash.hpp>
#include <portal_auth/password_verifier.hpp>
#include <portal_auth/request_handler.hpp>
#include <portal_auth/server.hpp>
#include <portal_auth/tls_context.hpp>
#include <portal_auth/token_signer.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <openssl/crypto.h>

#include <charconv>
#include <condition_variable>
#include <csignal>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <sys/resource.h>

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

constexpr int exit_usage = 2;

constexpr std::string_view usage_text = R"(usage:
  portal-auth [serve] [options]      run the HTTPS server
  portal-auth hash-password          read a password on stdin, print its scrypt hash
  portal-auth gen-key KID            print a new signing-key line "KID SECRET"

options:
  --listen HOST:PORT                 default 127.0.0.1:8443; [::1]:8443 for IPv6; port 0 = any free port
  --cert FILE                        PEM certificate chain (default certs/server.pem)
  --key FILE                         PEM private key (default certs/server.key)
  --directory FILE                   customers, teams and profiles (JSON; required)
  --signing-key FILE                 "KID SECRET" lines; the first signs (default: a random key per run)
  --audit-log FILE                   JSON Lines audit trail, appended
  --audit-fsync always|batch|never   fdatasync per line, every 100 ms (default), or never
  --threads N                        I/O threads (default: hardware threads)
  --hash-threads N                   password-hashing threads (default: hardware threads - 1, at least 1)
  --hash-queue N                     logins that may wait for a hashing thread before 503, default 64
  --session-ttl SEC                  default 3600
  --impersonation-token-ttl SEC      default 60
  --impersonation-session-ttl SEC    default 1800
  --max-connections N                default 10000
  --max-connections-per-address N    open connections from one client address, default 256
                                     (0 = no limit; trusted proxies are exempt)
  --trusted-proxy CIDR               a reverse proxy whose X-Forwarded-For (or PROXY header) names
                                     the client; repeatable, IPv4 or IPv6; none by default
  --proxy-protocol                   connections from trusted proxies begin with a PROXY protocol
                                     v2 header (HAProxy send-proxy-v2)
  --handshake-timeout SEC            default 10
  --header-timeout SEC               time to receive a whole request, default 10
  --idle-timeout SEC                 keep-alive idle time, default 60
  --shutdown-grace SEC               time for requests in flight at SIGTERM, default 10
  --disable-impersonation            both impersonation endpoints answer 403, the exchange 401
  --login-max-failures-per-email-and-address N
                                     failed logins per e-mail from one address per window before 429,
                                     default 5 (0 = off)
  --login-max-failures-per-email N   failed logins per e-mail from all addresses per window, default 50
                                     (0 = off)
  --login-max-failures-per-address N failed logins per client address per window, default 20 (0 = off)
  --login-failure-window SEC         the window of the three login limits, default 300
  --exchange-max-failures-per-address N
                                     failed impersonation-token exchanges and refreshes per client
                                     address per minute before 429, default 20 (0 = off)
  --impersonation-issue-limit N      impersonation tokens per actor per minute, default 30 (0 = off)
)";

// A start-up failure: printed as one line, exit code 2.
struct usage_error {
    std::string message;
};

struct options {
    std::string listen = "127.0.0.1:8443";
    std::string cert = "certs/server.pem";
    std::string key = "certs/server.key";
    std::string directory;
    std::string signing_key;
    std::string audit_log;
    portal_auth::audit_sync audit_sync = portal_auth::audit_sync::batch;
    unsigned threads = std::max(1u, std::thread::hardware_concurrency());
    unsigned hash_threads = portal_auth::default_hash_threads();
    std::size_t hash_queue = 64;
    portal_auth::service_config service;
    portal_auth::server_config server;
};

std::uint64_t parse_number(std::string_view flag, std::string_view text, std::uint64_t min,
                           std::uint64_t max) {
    std::uint64_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || value < min ||
        value > max)
        throw usage_error{std::string(flag) + ": expected a whole number from " +
                          std::to_string(min) + " to " + std::to_string(max) + ", got \"" +
                          std::string(text) + "\""};
    return value;
}

std::chrono::seconds parse_seconds(std::string_view flag, std::string_view text) {
    constexpr std::uint64_t one_year = 366ull * 24 * 3600;
    return std::chrono::seconds(parse_number(flag, text, 1, one_year));
}

tcp::endpoint parse_listen(std::string_view text) {
    auto fail = [&](std::string_view why) {
        return usage_error{"--listen: " + std::string(why) + " in \"" + std::string(text) +
                           "\" (expected HOST:PORT or [IPv6]:PORT)"};
    };
    std::string_view host, port;
    if (text.starts_with('[')) {
        auto close = text.find("]:");
        if (close == std::string_view::npos)
            throw fail("missing \"]:PORT\"");
        host = text.substr(1, close - 1);
        port = text.substr(close + 2);
    } else {
        auto colon = text.rfind(':');
        if (colon == std::string_view::npos)
            throw fail("missing \":PORT\"");
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
    }
    if (host == "localhost")
        host = "127.0.0.1";
    boost::system::error_code ec;
    auto address = asio::ip::make_address(std::string(host), ec);
    if (ec)
        throw fail("HOST must be an IP address or localhost");
    auto port_number = parse_number("--listen port", port, 0, 65535);
    return {address, static_cast<unsigned short>(port_number)};
}

options parse_options(const std::vector<std::string_view>& args) {
    options opts;
    for (std::size_t i = 0; i < args.size(); ++i) {
        std::string_view arg = args[i];
        std::string_view value;
        bool has_inline_value = false;
        if (auto eq = arg.find('='); arg.starts_with("--") && eq != std::string_view::npos) {
            value = arg.substr(eq + 1);
            arg = arg.substr(0, eq);
            has_inline_value = true;
        }
        auto take_value = [&]() -> std::string_view {
            if (has_inline_value)
                return value;
            if (i + 1 >= args.size())
                throw usage_error{std::string(arg) + ": missing value"};
            return args[++i];
        };
        if (arg == "--disable-impersonation") {
            opts.service.impersonation_enabled = false;
        } else if (arg == "--listen") {
            opts.listen = take_value();
        } else if (arg == "--cert") {
            opts.cert = take_value();
        } else if (arg == "--key") {
            opts.key = take_value();
        } else if (arg == "--directory") {
            opts.directory = take_value();
        } else if (arg == "--signing-key") {
            opts.signing_key = take_value();
        } else if (arg == "--audit-log") {
            opts.audit_log = take_value();
        } else if (arg == "--audit-fsync") {
            auto v = take_value();
            if (v == "always")
                opts.audit_sync = portal_auth::audit_sync::always;
            else if (v == "batch")
                opts.audit_sync = portal_auth::audit_sync::batch;
            else if (v == "never")
                opts.audit_sync = portal_auth::audit_sync::never;
            else
                throw usage_error{"--audit-fsync: expected always, batch or never, got \"" +
                                  std::string(v) + "\""};
        } else if (arg == "--threads") {
            opts.threads = static_cast<unsigned>(parse_number(arg, take_value(), 1, 256));
        } else if (arg == "--hash-threads") {
            opts.hash_threads = static_cast<unsigned>(parse_number(arg, take_value(), 1, 256));
        } else if (arg == "--hash-queue") {
            opts.hash_queue = parse_number(arg, take_value(), 1, 100000);
        } else if (arg == "--session-ttl") {
            opts.service.session_ttl = parse_seconds(arg, take_value());
        } else if (arg == "--impersonation-token-ttl") {
            opts.service.impersonation_token_ttl = parse_seconds(arg, take_value());
        } else if (arg == "--impersonation-session-ttl") {
            opts.service.impersonation_session_ttl = parse_seconds(arg, take_value());
        } else if (arg == "--max-connections-per-address") {
            opts.server.max_connections_per_address = parse_number(arg, take_value(), 0, 1000000);
        } else if (arg == "--trusted-proxy") {
            const std::string_view text = take_value();
            auto network = portal_auth::ip_network::parse(text);
            if (!network)
                throw usage_error{"--trusted-proxy: expected an IPv4 or IPv6 address or CIDR "
                                  "block, got \"" +
                                  std::string(text) + "\""};
            opts.server.trusted_proxies.push_back(*network);
        } else if (arg == "--proxy-protocol") {
            opts.server.proxy_protocol = true;
        } else if (arg == "--max-connections") {
            opts.server.max_connections = parse_number(arg, take_value(), 1, 1000000);
        } else if (arg == "--handshake-timeout") {
            opts.server.handshake_timeout = parse_seconds(arg, take_value());
        } else if (arg == "--header-timeout") {
            opts.server.request_timeout = parse_seconds(arg, take_value());
        } else if (arg == "--idle-timeout") {
            opts.server.idle_timeout = parse_seconds(arg, take_value());
        } else if (arg == "--login-max-failures-per-email-and-address") {
            opts.service.login_failures_per_email_and_address.max =
                parse_number(arg, take_value(), 0, 1000000);
        } else if (arg == "--exchange-max-failures-per-address") {
            opts.service.exchange_failures_per_address.max =
                parse_number(arg, take_value(), 0, 1000000);
        } else if (arg == "--login-max-failures-per-email") {
            opts.service.login_failures_per_email.max = parse_number(arg, take_value(), 0, 1000000);
        } else if (arg == "--login-max-failures-per-address") {
            opts.service.login_failures_per_address.max =
                parse_number(arg, take_value(), 0, 1000000);
        } else if (arg == "--login-failure-window") {
            const auto window = parse_seconds(arg, take_value());
            opts.service.login_failures_per_email_and_address.window = window;
            opts.service.login_failures_per_email.window = window;
            opts.service.login_failures_per_address.window = window;
        } else if (arg == "--impersonation-issue-limit") {
            opts.service.impersonations_per_actor.max = parse_number(arg, take_value(), 0, 1000000);
        } else if (arg == "--shutdown-grace") {
            opts.server.shutdown_grace = parse_seconds(arg, take_value());
        } else {
            throw usage_error{"unknown option \"" + std::string(args[i]) +
                              "\" (see portal-auth --help)"};
        }
    }
    if (opts.directory.empty())
        throw usage_error{"--directory FILE is required"};
    if (opts.server.proxy_protocol && opts.server.trusted_proxies.empty())
        throw usage_error{"--proxy-protocol needs --trusted-proxy: it applies to connections "
                          "from trusted proxies only"};
    return opts;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in)
        throw usage_error{path + ": cannot read: " + std::strerror(errno)};
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

std::shared_ptr<const portal_auth::directory> load_directory(const std::string& path) {
    std::string detail;
    auto dir = portal_auth::directory::parse(read_file(path), detail);
    if (!dir)
        throw usage_error{path + ": " + detail};
    return std::make_shared<const portal_auth::directory>(std::move(*dir));
}

std::shared_ptr<const portal_auth::token_signer> load_signer(const std::string& path) {
    if (path.empty()) {
        std::cerr << "portal-auth: warning: no --signing-key given; using a random key for this "
                     "run (impersonation tokens will not survive a restart)\n";
        std::vector<portal_auth::signing_key> keys{
            portal_auth::make_random_signing_key("ephemeral")};
        return std::make_shared<const portal_auth::token_signer>(std::move(keys));
    }
    std::string text = read_file(path);
    std::string detail;
    auto keys = portal_auth::parse_signing_keys(text, detail);
    OPENSSL_cleanse(text.data(), text.size());
    if (!keys)
        throw usage_error{path + ": " + detail};
    return std::make_shared<const portal_auth::token_signer>(std::move(*keys));
}

std::string format_listen_url(const tcp::endpoint& ep) {
    auto address = ep.address();
    std::string host = address.is_v6() ? "[" + address.to_string() + "]" : address.to_string();
    return "https://" + host + ":" + std::to_string(ep.port());
}

// SIGHUP's second half: the new directory and keys are in; sessions that lost their basis end.
asio::awaitable<void> reload(portal_auth::auth_service& service,
                             std::shared_ptr<const portal_auth::directory> dir,
                             std::shared_ptr<const portal_auth::token_signer> signer,
                             std::string path) {
    const portal_auth::request_context context{"reload", std::chrono::system_clock::now()};
    auto ended = co_await service.reload(dir, std::move(signer), context);
    if (!ended) {
        std::clog << "portal-auth: reloaded " << path
                  << " but could not end sessions: " << ended.error().message() << std::endl;
        co_return;
    }
    std::clog << "portal-auth: reloaded " << path << " (" << dir->customer_count()
              << " customers); " << *ended << " sessions ended" << std::endl;
}

// Descriptors beyond the connections: listener, audit log, files read on reload, hashing and
// I/O threads' own, a margin.
constexpr rlim_t descriptor_reserve = 64;

// Raises the soft open-file limit to the hard one (a connection is a descriptor), and warns
// when even that cannot hold --max-connections.
void raise_open_file_limit(std::size_t max_connections) {
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0)
        return;
    if (limit.rlim_cur < limit.rlim_max) {
        rlimit raised = limit;
        raised.rlim_cur = limit.rlim_max;
        if (::setrlimit(RLIMIT_NOFILE, &raised) == 0)
            limit = raised;
    }
    if (limit.rlim_cur != RLIM_INFINITY && max_connections + descriptor_reserve > limit.rlim_cur)
        std::clog << "portal-auth: warning: --max-connections " << max_connections
                  << " plus a reserve of " << descriptor_reserve
                  << " descriptors exceeds the open-file limit of " << limit.rlim_cur
                  << "; raise it (LimitNOFILE= under systemd) or lower --max-connections"
                  << std::endl;
}

asio::awaitable<void> write_throttle_summaries(portal_auth::auth_service& service) {
    co_await asio::this_coro::throw_if_cancelled(false); // the last pass runs after the stop
    asio::steady_timer timer(co_await asio::this_coro::executor);
    for (;;) {
        timer.expires_after(std::chrono::seconds(1));
        auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
        const bool stopping = ec == asio::error::operation_aborted;
        co_await service.write_throttle_summaries(std::chrono::system_clock::now(), stopping);
        if (stopping)
            co_return;
    }
}

int serve(const options& opts) {
    const tcp::endpoint endpoint = parse_listen(opts.listen);
    raise_open_file_limit(opts.server.max_connections);
    auto dir = load_directory(opts.directory);
    auto signer = load_signer(opts.signing_key);
    std::string tls_detail;
    auto tls = portal_auth::make_tls_context(opts.cert, opts.key, tls_detail);
    if (!tls)
        throw usage_error{tls_detail};

    portal_auth::audit_log audit;
    audit.set_sync_policy(opts.audit_sync);
    if (!opts.audit_log.empty()) {
        if (auto ec = audit.open_file(opts.audit_log))
            throw usage_error{opts.audit_log + ": cannot open the audit log: " + ec.message()};
    }
    // Batched durability: one fdatasync per 100 ms covers every line written meanwhile.
    std::jthread audit_syncer;
    if (!opts.audit_log.empty() && opts.audit_sync == portal_auth::audit_sync::batch)
        audit_syncer = std::jthread([&audit](std::stop_token stop) {
            while (!stop.stop_requested()) {
                std::this_thread::sleep_for(std::chrono::milliseconds(100));
                if (auto ec = audit.sync())
                    std::clog << "portal-auth: audit log sync failed: " << ec.message()
                              << std::endl;
            }
            (void)audit.sync();
        });
    portal_auth::memory_store store;
    // scrypt never runs on an I/O thread: logins wait for these threads, at most hash_queue of
    // them, and beyond that are answered 503.
    asio::thread_pool hashing(opts.hash_threads);
    portal_auth::password_verifier passwords(hashing.get_executor(), opts.hash_queue);
    portal_auth::auth_service service(
        opts.service, dir, signer,
        {.sessions = store, .counters = store, .audit = audit, .passwords = passwords});
    portal_auth::request_handler handler(service);

    // One io_context per thread: a connection lives on one thread and needs no strand. The
    // first context also runs the acceptor and the signals.
    std::vector<std::unique_ptr<asio::io_context>> contexts;
    for (unsigned i = 0; i < opts.threads; ++i)
        contexts.push_back(std::make_unique<asio::io_context>(1));
    asio::io_context& ioc = *contexts.front();
    auto server_config = opts.server;
    // Sweeping walks every session: a thread of its own keeps that off the I/O threads, and
    // the store's per-shard locks hold each of them up for one shard at most.
    std::jthread sweeper([&store](std::stop_token stop) {
        constexpr auto sweep_interval = std::chrono::seconds(10);
        std::mutex mutex;
        std::condition_variable_any wake;
        std::unique_lock lock(mutex);
        for (;;) {
            wake.wait_for(lock, stop, sweep_interval, [] { return false; });
            if (stop.stop_requested())
                return;
            store.sweep(std::chrono::system_clock::now());
        }
    });
    for (auto& context : contexts)
        server_config.connection_executors.push_back(context->get_executor());
    // The other threads wait for connections until the server has finished.
    std::vector<asio::executor_work_guard<asio::io_context::executor_type>> keep_running;
    for (std::size_t i = 1; i < contexts.size(); ++i)
        keep_running.push_back(asio::make_work_guard(*contexts[i]));

    std::optional<portal_auth::server> server;
    try {
        server.emplace(ioc.get_executor(), *tls, endpoint, std::ref(handler), server_config);
    } catch (const boost::system::system_error& e) {
        throw usage_error{"--listen " + opts.listen + ": " + e.code().message()};
    }

    // SIGTERM or SIGINT: total cancellation of run(), a graceful stop within --shutdown-grace;
    // a second one is terminal cancellation and closes everything at once.
    asio::cancellation_signal stop;
    asio::signal_set signals(ioc, SIGINT, SIGTERM);
    std::function<void(boost::system::error_code, int)> on_stop_signal =
        [&, stops = 0](boost::system::error_code ec, int) mutable {
            if (ec)
                return;
            stop.emit(++stops == 1 ? asio::cancellation_type::total
                                   : asio::cancellation_type::terminal);
            signals.async_wait(on_stop_signal);
        };
    signals.async_wait(on_stop_signal);
    // SIGHUP: re-read the directory and the signing keys; a bad file changes nothing.
    asio::signal_set hangup(ioc, SIGHUP);
    std::function<void(boost::system::error_code, int)> on_hangup =
        [&](boost::system::error_code ec, int) {
            if (ec)
                return;
            try {
                auto new_dir = load_directory(opts.directory);
                auto new_signer =
                    opts.signing_key.empty() ? nullptr : load_signer(opts.signing_key);
                asio::co_spawn(ioc, reload(service, new_dir, new_signer, opts.directory),
                               asio::detached);
            } catch (const usage_error& e) {
                std::clog << "portal-auth: reload failed, keeping the current configuration: "
                          << e.message << std::endl;
            }
            hangup.async_wait(on_hangup);
        };
    hangup.async_wait(on_hangup);
    // SIGUSR1: reopen the audit log at its path (logrotate: rename, then signal).
    asio::signal_set rotate(ioc, SIGUSR1);
    std::function<void(boost::system::error_code, int)> on_rotate =
        [&](boost::system::error_code ec, int) {
            if (ec)
                return;
            if (auto failed = audit.reopen())
                std::clog << "portal-auth: cannot reopen the audit log " << opts.audit_log << ": "
                          << failed.message() << std::endl;
            else if (!opts.audit_log.empty())
                std::clog << "portal-auth: reopened the audit log " << opts.audit_log << std::endl;
            rotate.async_wait(on_rotate);
        };
    rotate.async_wait(on_rotate);
    // Throttled attempts are audited as one line per key and window plus a summary with the
    // count when the window ends: this writes the summaries, and the open ones at the end.
    asio::cancellation_signal stop_summaries;
    asio::co_spawn(ioc, write_throttle_summaries(service),
                   asio::bind_cancellation_slot(stop_summaries.slot(), asio::detached));
    asio::co_spawn(ioc, server->run(),
                   asio::bind_cancellation_slot(stop.slot(), [&](std::exception_ptr e) {
                       signals.cancel();
                       hangup.cancel();
                       rotate.cancel();
                       stop_summaries.emit(asio::cancellation_type::terminal);
                       keep_running.clear();
                       if (e)
                           std::rethrow_exception(e);
                   }));

    std::cout << "listening on " << format_listen_url(server->local_endpoint()) << std::endl;

    std::vector<std::jthread> workers;
    for (std::size_t i = 1; i < contexts.size(); ++i)
        workers.emplace_back([&context = *contexts[i]] { context.run(); });
    ioc.run();
    workers.clear();
    return 0;
}

int hash_password_command() {
    std::string password;
    std::getline(std::cin, password);
    if (!password.empty() && password.back() == '\r')
        password.pop_back();
    if (password.empty())
        throw usage_error{"hash-password: no password on stdin"};
    auto hash = portal_auth::hash_password(password);
    OPENSSL_cleanse(password.data(), password.size());
    if (!hash)
        throw usage_error{"hash-password: " + hash.error().message()};
    std::cout << portal_auth::format_password_hash(*hash) << '\n';
    return 0;
}

int gen_key_command(const std::vector<std::string_view>& args) {
    if (args.size() != 1)
        throw usage_error{"gen-key: expected exactly one KID argument"};
    if (!portal_auth::is_valid_key_id(args[0]))
        throw usage_error{"gen-key: invalid KID \"" + std::string(args[0]) +
                          "\" (letters, digits, '.', '_', '-'; at most 64)"};
    std::cout << portal_auth::format_signing_key(
                     portal_auth::make_random_signing_key(std::string(args[0])))
              << '\n';
    return 0;
}

int run(std::vector<std::string_view> args) {
    if (!args.empty() && (args[0] == "--help" || args[0] == "-h" || args[0] == "help")) {
        std::cout << usage_text;
        return 0;
    }
    if (!args.empty() && args[0] == "hash-password") {
        if (args.size() != 1)
            throw usage_error{
                "hash-password: takes no arguments (the password is read from stdin)"};
        return hash_password_command();
    }
    if (!args.empty() && args[0] == "gen-key")
        return gen_key_command({args.begin() + 1, args.end()});
    if (!args.empty() && args[0] == "serve")
        args.erase(args.begin());
    return serve(parse_options(args));
}

} // namespace

int main(int argc, char** argv) {
    // A write to a client that has gone must be an error, not the end of the process. (The
    // library's own TLS writes never raise SIGPIPE; this covers everything else, stdout too.)
    std::signal(SIGPIPE, SIG_IGN);
    // Past a file size limit (RLIMIT_FSIZE) a write must fail with EFBIG, which the audit log
    // answers, rather than kill the process.
    std::signal(SIGXFSZ, SIG_IGN);
    try {
        return run(std::vector<std::string_view>(argv + 1, argv + argc));
    } catch (const usage_error& e) {
        std::cerr << "portal-auth: " << e.message << '\n';
        return exit_usage;
    } catch (const std::exception& e) {
        std::cerr << "portal-auth: fatal: " << e.what() << '\n';
        return 1;
    }
}
