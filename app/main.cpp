// portal-auth: commands and wiring. Options are read in options.cpp; everything else lives in
// the library.
#include <portal_auth/audit_log.hpp>
#include <portal_auth/auth_service.hpp>
#include <portal_auth/cors.hpp>
#include <portal_auth/directory.hpp>
#include <portal_auth/memory_store.hpp>
#include <portal_auth/password_hash.hpp>
#include <portal_auth/password_verifier.hpp>
#include <portal_auth/request_handler.hpp>
#include <portal_auth/server.hpp>
#include <portal_auth/tls_context.hpp>
#include <portal_auth/token_signer.hpp>
#include <portal_auth/version.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/error_code.hpp>
#include <boost/version.hpp>

#include <openssl/crypto.h>
#include <openssl/opensslv.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <csignal>
#include <cstdint>
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

#include "options.hpp"

#include <sys/resource.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

// Set by app/CMakeLists.txt at configure time: `git rev-parse --short HEAD`, or "unknown".
#ifndef PORTAL_AUTH_GIT_COMMIT
#define PORTAL_AUTH_GIT_COMMIT "unknown"
#endif

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

using portal_auth::app::options;
using portal_auth::app::usage_error;

namespace {

constexpr int exit_usage = 2;

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

// systemd's notification protocol (sd_notify(3)): READY=1, RELOADING=1, STOPPING=1 and a
// STATUS= line. Nothing happens without NOTIFY_SOCKET in the environment.
void notify_systemd(const std::string& state) {
    (void)::sd_notify(0, state.c_str());
}

// CLOCK_MONOTONIC in microseconds: RELOADING=1 carries it (MONOTONIC_USEC=, systemd 253).
std::string monotonic_usec() {
    timespec now{};
    ::clock_gettime(CLOCK_MONOTONIC, &now);
    return std::to_string(static_cast<std::uint64_t>(now.tv_sec) * 1000000u +
                          static_cast<std::uint64_t>(now.tv_nsec) / 1000u);
}

// SIGHUP's second half: the new directory and keys are in; sessions that lost their basis end.
// Then systemd hears that the reload is over, whatever its outcome.
asio::awaitable<void> reload(portal_auth::auth_service& service,
                             std::shared_ptr<const portal_auth::directory> dir,
                             std::shared_ptr<const portal_auth::token_signer> signer,
                             std::string path) {
    const portal_auth::request_context context{"reload", std::chrono::system_clock::now()};
    auto ended = co_await service.reload(dir, std::move(signer), context);
    if (!ended) {
        std::clog << "portal-auth: reloaded " << path
                  << " but could not end sessions: " << ended.error().message() << std::endl;
        notify_systemd("READY=1\nSTATUS=reloaded; could not end sessions");
        co_return;
    }
    std::clog << "portal-auth: reloaded " << path << " (" << dir->customer_count()
              << " customers); " << *ended << " sessions ended" << std::endl;
    notify_systemd("READY=1\nSTATUS=reloaded " + path);
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

// Every second: the summaries of throttle windows that ended; every 10 s: the end of
// impersonations that time has ended (expired sessions, tokens never redeemed).
asio::awaitable<void> write_throttle_summaries(portal_auth::auth_service& service) {
    co_await asio::this_coro::throw_if_cancelled(false); // the last pass runs after the stop
    asio::steady_timer timer(co_await asio::this_coro::executor);
    for (unsigned tick = 1;; ++tick) {
        timer.expires_after(std::chrono::seconds(1));
        auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
        const bool stopping = ec == asio::error::operation_aborted;
        const auto now = std::chrono::system_clock::now();
        co_await service.write_throttle_summaries(now, stopping);
        if (stopping)
            co_return;
        if (tick % 10 == 0)
            (void)co_await service.end_expired_impersonations(now);
    }
}

// What serve and check-config both load, in this order, with the same errors.
struct loaded_files {
    std::shared_ptr<const portal_auth::directory> dir;
    std::shared_ptr<const portal_auth::token_signer> signer;
    asio::ssl::context tls;
};

loaded_files load_files(const options& opts) {
    raise_open_file_limit(opts.server.max_connections);
    auto dir = load_directory(opts.directory);
    auto signer = load_signer(opts.signing_key);
    std::string tls_detail;
    auto tls = portal_auth::make_tls_context(opts.cert, opts.key, tls_detail);
    if (!tls)
        throw usage_error{tls_detail};
    return {std::move(dir), std::move(signer), std::move(*tls)};
}

std::string audit_log_error(const std::string& path, const boost::system::error_code& ec) {
    return path + ": cannot open the audit log: " + ec.message();
}

// Whether serve could open the audit log for appending, without creating or touching it: an
// existing file must be writable, a missing one creatable in its directory.
boost::system::error_code check_audit_log(const std::string& path) {
    auto last_error = [] {
        return boost::system::error_code(errno, boost::system::system_category());
    };
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0) {
        if (S_ISDIR(st.st_mode))
            return boost::system::error_code(EISDIR, boost::system::system_category());
        return ::access(path.c_str(), W_OK) == 0 ? boost::system::error_code{} : last_error();
    }
    if (errno != ENOENT)
        return last_error();
    const auto slash = path.rfind('/');
    const std::string parent = slash == std::string::npos ? "."
                               : slash == 0               ? "/"
                                                          : path.substr(0, slash);
    return ::access(parent.c_str(), W_OK | X_OK) == 0 ? boost::system::error_code{} : last_error();
}

// nginx -t: everything serve reads and checks, without binding the port or opening the audit
// log; one line on stdout when it is all good.
int check_config(const options& opts) {
    const loaded_files files = load_files(opts);
    if (!opts.audit_log.empty()) {
        if (auto ec = check_audit_log(opts.audit_log))
            throw usage_error{audit_log_error(opts.audit_log, ec)};
    }
    std::cout << "portal-auth: configuration OK: listen " << opts.listen << ", directory "
              << opts.directory << " (" << files.dir->customer_count() << " customers)";
    if (!opts.server.trusted_proxies.empty())
        std::cout << ", " << opts.server.trusted_proxies.size() << " trusted proxies";
    if (!opts.cors_origins.empty()) {
        std::cout << ", CORS origins";
        for (const auto& origin : opts.cors_origins)
            std::cout << ' ' << origin;
    }
    if (!opts.config_file.empty())
        std::cout << ", config file " << opts.config_file;
    std::cout << std::endl;
    return 0;
}

int serve(const options& opts) {
    const tcp::endpoint endpoint = opts.endpoint;
    loaded_files files = load_files(opts);
    auto& dir = files.dir;
    auto& signer = files.signer;

    portal_auth::audit_log audit;
    audit.set_sync_policy(opts.audit_sync);
    if (!opts.audit_log.empty()) {
        if (auto ec = audit.open_file(opts.audit_log))
            throw usage_error{audit_log_error(opts.audit_log, ec)};
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
    // Browsers on other origins: only those named by --cors-origin get CORS headers.
    portal_auth::request_handler_fn handle = std::ref(handler);
    if (!opts.cors_origins.empty())
        handle = portal_auth::with_cors(std::move(handle), {.allowed_origins = opts.cors_origins});

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
        server.emplace(ioc.get_executor(), files.tls, endpoint, std::move(handle), server_config);
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
            if (++stops == 1)
                notify_systemd("STOPPING=1\nSTATUS=stopping");
            stop.emit(stops == 1 ? asio::cancellation_type::total
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
            notify_systemd("RELOADING=1\nMONOTONIC_USEC=" + monotonic_usec() +
                           "\nSTATUS=reloading " + opts.directory);
            try {
                auto new_dir = load_directory(opts.directory);
                auto new_signer =
                    opts.signing_key.empty() ? nullptr : load_signer(opts.signing_key);
                asio::co_spawn(ioc, reload(service, new_dir, new_signer, opts.directory),
                               asio::detached);
            } catch (const usage_error& e) {
                std::clog << "portal-auth: reload failed, keeping the current configuration: "
                          << e.message << std::endl;
                notify_systemd("READY=1\nSTATUS=reload failed; serving with the previous "
                               "configuration");
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

    const std::string url = format_listen_url(server->local_endpoint());
    std::cout << "listening on " << url << std::endl;
    notify_systemd("READY=1\nSTATUS=listening on " + url);

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

int version_command() {
    std::string boost_version = BOOST_LIB_VERSION; // "1_81"
    std::replace(boost_version.begin(), boost_version.end(), '_', '.');
    std::cout << "portal-auth " << portal_auth::version << '\n'
              << "commit " << PORTAL_AUTH_GIT_COMMIT << '\n'
              << "Boost " << boost_version << '\n'
              << OpenSSL_version(OPENSSL_VERSION) << '\n';
    return 0;
}

int run(std::vector<std::string_view> args) {
    const std::string_view command = args.empty() ? std::string_view{} : args[0];
    if (command == "--help" || command == "-h" || command == "help") {
        std::cout << portal_auth::app::usage_text();
        return 0;
    }
    if (command == "--version")
        return version_command();
    if (command == "hash-password") {
        if (args.size() != 1)
            throw usage_error{
                "hash-password: takes no arguments (the password is read from stdin)"};
        return hash_password_command();
    }
    if (command == "gen-key")
        return gen_key_command({args.begin() + 1, args.end()});
    const bool check_only = command == "check-config";
    if (check_only || command == "serve")
        args.erase(args.begin());
    const auto parsed = portal_auth::app::parse_options(args, environ, std::cerr);
    switch (parsed.what) {
    case portal_auth::app::request::help:
        std::cout << portal_auth::app::usage_text();
        return 0;
    case portal_auth::app::request::version:
        return version_command();
    case portal_auth::app::request::run:
        break;
    }
    return check_only ? check_config(parsed.settings) : serve(parsed.settings);
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
