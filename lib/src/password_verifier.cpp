// scrypt on the hashing executor, with the caller resumed on its own executor.
#include <portal_auth/error.hpp>
#include <portal_auth/password_verifier.hpp>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <thread>
#include <utility>

namespace portal_auth {

namespace asio = boost::asio;

unsigned default_hash_threads() noexcept {
    return std::max(1u, std::thread::hardware_concurrency() - 1);
}

password_verifier::password_verifier(asio::any_io_executor hashing_executor,
                                     std::size_t queue_limit)
    : executor_(std::move(hashing_executor)), queue_limit_(queue_limit) {}

asio::awaitable<boost::system::result<bool>> password_verifier::verify(const password_hash& hash,
                                                                       std::string_view password) {
    // Reserve a place first, so that concurrent callers never overshoot the limit.
    if (waiting_.fetch_add(1, std::memory_order_relaxed) >= queue_limit_) {
        waiting_.fetch_sub(1, std::memory_order_relaxed);
        shed_.fetch_add(1, std::memory_order_relaxed);
        co_return errc::overloaded;
    }
    const bool ok = co_await asio::async_initiate<decltype(asio::use_awaitable), void(bool)>(
        [this, &hash, password](auto handler) {
            // Keeps the caller's executor from running out of work while scrypt runs.
            auto caller = asio::make_work_guard(asio::get_associated_executor(handler));
            asio::post(executor_, [this, &hash, password, handler = std::move(handler),
                                   caller = std::move(caller)]() mutable {
                waiting_.fetch_sub(1, std::memory_order_relaxed);
                busy_.fetch_add(1, std::memory_order_relaxed);
                const bool verified = verify_password(hash, password);
                busy_.fetch_sub(1, std::memory_order_relaxed);
                auto caller_executor = caller.get_executor();
                asio::post(caller_executor, [handler = std::move(handler), verified]() mutable {
                    std::move(handler)(verified);
                });
            });
        },
        asio::use_awaitable);
    co_return ok;
}

} // namespace portal_auth
