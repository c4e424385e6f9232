// The test world shared by the tests and the fuzz targets (no Boost.Test here, so libFuzzer
// executables can link it too).
//  teams: 1 Acme Corp, 2 Globex, 3 Portal Operations; password of each: "<first>-pw"
//  100 alice owner(10, Acme)     101 bob admin(11, Acme) + member(21, Globex)
//  102 carol member(12, Acme)    103 dave owner(20, Globex)
//  104 erin admin(22, Globex)    105 frank member(23, Globex)
//  106 gina owner(13, Acme)      900 olga operator, owner(30, Ops) + member(14, Acme)
#pragma once

#include <portal_auth/password_hash.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <exception>
#include <optional>
#include <string>

namespace portal_auth::test {

// The directory JSON, with real scrypt hashes at the given (cheap) cost.
std::string make_test_directory_json(scrypt_params cost);

namespace detail {
template <class T>
boost::asio::awaitable<void> complete_into(boost::asio::awaitable<T> op, std::optional<T>& out) {
    out.emplace(co_await std::move(op));
}
inline boost::asio::awaitable<void> complete_into(boost::asio::awaitable<void> op, bool& done) {
    co_await std::move(op);
    done = true;
}
// Runs the context until it has no work, for 10 s at most.
void run_bounded(boost::asio::io_context& ioc);
// Rethrows `error`, or throws std::runtime_error when the operation did not complete.
void check_completion(const std::exception_ptr& error, bool done);
} // namespace detail

// Runs an awaitable (of the service, the handler, a store) to its end on `ioc`, which no other
// thread runs, and returns its value. A hang of 10 s throws; so does the awaitable's exception.
template <class T> T run_on(boost::asio::io_context& ioc, boost::asio::awaitable<T> op) {
    std::optional<T> out;
    std::exception_ptr error;
    boost::asio::co_spawn(ioc, detail::complete_into(std::move(op), out),
                          [&](std::exception_ptr e) { error = e; });
    detail::run_bounded(ioc);
    detail::check_completion(error, out.has_value());
    return std::move(*out);
}
inline void run_on(boost::asio::io_context& ioc, boost::asio::awaitable<void> op) {
    bool done = false;
    std::exception_ptr error;
    boost::asio::co_spawn(ioc, detail::complete_into(std::move(op), done),
                          [&](std::exception_ptr e) { error = e; });
    detail::run_bounded(ioc);
    detail::check_completion(error, done);
}

} // namespace portal_auth::test
