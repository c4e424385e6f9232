// A complete Asio application embedding portal-auth: its own io_context, its own ssl::context,
// the in-memory store, a two-thread hashing pool, and a graceful stop on SIGINT/SIGTERM through
// per-operation cancellation of server::run().
//   usage: portal-auth-embed CERT.pem KEY.pem DIRECTORY.json
#include <portal_auth/auth_service.hpp>
#include <portal_auth/directory.hpp>
#include <portal_auth/memory_store.hpp>
#include <portal_auth/password_verifier.hpp>
#include <portal_auth/request_handler.hpp>
#include <portal_auth/server.hpp>
#include <portal_auth/tls_context.hpp>
#include <portal_auth/token_signer.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/thread_pool.hpp>

#include <csignal>
#include <exception>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <memory>
#include <string>

namespace asio = boost::asio;

int main(int argc, char** argv) {
    if (argc != 4) {
        std::cerr << "usage: " << argv[0] << " CERT.pem KEY.pem DIRECTORY.json\n";
        return 2;
    }
    std::string detail;
    auto tls = portal_auth::make_tls_context(argv[1], argv[2], detail);
    if (!tls) {
        std::cerr << detail << '\n';
        return 2;
    }
    std::ifstream file(argv[3]);
    const std::string json{std::istreambuf_iterator<char>(file), {}};
    auto dir = portal_auth::directory::parse(json, detail);
    if (!dir) {
        std::cerr << argv[3] << ": " << detail << '\n';
        return 2;
    }

    portal_auth::memory_store store;
    portal_auth::audit_log audit; // the memory ring only; open_file() for a JSON Lines file
    asio::thread_pool hashing(2);
    portal_auth::password_verifier passwords(hashing.get_executor());
    auto signer = std::make_shared<const portal_auth::token_signer>(
        std::vector{portal_auth::make_random_signing_key("embedded")});
    portal_auth::auth_service service(
        {}, std::make_shared<const portal_auth::directory>(std::move(*dir)), signer,
        {.sessions = store, .counters = store, .audit = audit, .passwords = passwords});
    portal_auth::request_handler handler(service);

    asio::io_context ioc;
    portal_auth::server srv(ioc.get_executor(), *tls,
                            {asio::ip::make_address("127.0.0.1"), 0}, std::ref(handler));
    std::cout << "listening on https://127.0.0.1:" << srv.local_endpoint().port() << std::endl;

    // SIGINT/SIGTERM: total cancellation, a graceful stop (requests in flight finish).
    asio::cancellation_signal stop;
    asio::signal_set signals(ioc, SIGINT, SIGTERM);
    signals.async_wait([&](boost::system::error_code ec, int) {
        if (!ec)
            stop.emit(asio::cancellation_type::total);
    });
    asio::co_spawn(ioc, srv.run(),
                   asio::bind_cancellation_slot(stop.slot(), [&](std::exception_ptr e) {
                       signals.cancel();
                       if (e)
                           std::rethrow_exception(e);
                   }));
    ioc.run();
    return 0;
}
