// What the service-level fuzz targets share: the test world with the cheapest real scrypt, one
// signer, a fixed clock, and a fresh service per input so runs do not depend on each other.
#pragma once

#include <portal_auth/audit_log.hpp>
#include <portal_auth/auth_service.hpp>
#include <portal_auth/directory.hpp>
#include <portal_auth/memory_store.hpp>
#include <portal_auth/password_verifier.hpp>
#include <portal_auth/request_handler.hpp>
#include <portal_auth/token_signer.hpp>

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "test_world.hpp"

namespace portal_auth::fuzz {

[[noreturn]] inline void fail(const char* what, std::string_view context = {}) {
    std::fprintf(stderr, "fuzz check failed: %s\n%.*s\n", what, static_cast<int>(context.size()),
                 context.data());
    std::abort();
}

struct shared_parts {
    std::shared_ptr<const directory> dir;
    std::shared_ptr<const token_signer> signer;
};

inline const shared_parts& shared() {
    static const shared_parts parts = [] {
        std::string detail;
        auto dir =
            directory::parse(test::make_test_directory_json({.log2_n = 1, .r = 1, .p = 1}), detail);
        if (!dir)
            fail("world directory rejected", detail);
        bytes secret(32);
        for (std::size_t i = 0; i < secret.size(); ++i)
            secret[i] = static_cast<unsigned char>(0xA0 + i);
        return shared_parts{std::make_shared<const directory>(std::move(*dir)),
                            std::make_shared<const token_signer>(
                                std::vector<signing_key>{{"fuzz-key", std::move(secret)}})};
    }();
    return parts;
}

// A fixed clock (2030-03-17) keeps every run reproducible.
inline const request_context the_call{"192.0.2.7:40000",
                                      clock_type::time_point(std::chrono::seconds(1'900'000'000))};

// One service per input, on one thread: scrypt "runs on the pool" by a post to the same
// io_context, so a run is deterministic.
struct world {
    boost::asio::io_context ioc{1};
    memory_store store{4};
    audit_log audit{256};
    password_verifier passwords{ioc.get_executor()};
    auth_service service{service_config{}, shared().dir, shared().signer,
                         service_dependencies{store, store, audit, passwords}};
    request_handler handler{service};

    // Runs an awaitable of the service or the handler to its end.
    template <class T> T run(boost::asio::awaitable<T> op) {
        return test::run_on(ioc, std::move(op));
    }

    signed_in_session login(std::string_view email, std::string_view password) {
        auto s = run(service.login(email, password, the_call));
        if (!s)
            fail("world: login failed", email);
        return *s;
    }
};

inline void replace_all(std::string& text, std::string_view marker, std::string_view value) {
    for (std::size_t at = text.find(marker); at != std::string::npos;
         at = text.find(marker, at + value.size()))
        text.replace(at, marker.size(), value);
}

} // namespace portal_auth::fuzz
