// Password verification off the I/O threads: scrypt runs on an executor the application gives
// (a thread pool of its own), behind a bound on how many verifications may wait.
#pragma once

#include <portal_auth/password_hash.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/system/result.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace portal_auth {

// The default number of hashing threads: the hardware threads less one (for I/O), at least 1.
unsigned default_hash_threads() noexcept;

// Thread-safe. The hashing executor and the verifier must outlive every verify() in flight.
class password_verifier {
public:
    // `hashing_executor`: where scrypt runs, typically a boost::asio::thread_pool's executor;
    // never an I/O thread's. `queue_limit`: how many verifications may wait for a thread.
    explicit password_verifier(boost::asio::any_io_executor hashing_executor,
                               std::size_t queue_limit = 64);

    // Verifies on the hashing executor and resumes the caller on its own executor. Completes
    // with errc::overloaded at once, without queueing, when queue_limit verifications already
    // wait. `hash` and `password` must stay valid until it completes (the caller awaits it).
    // Not cancellable: a verification that started runs to its end.
    [[nodiscard]] boost::asio::awaitable<boost::system::result<bool>>
    verify(const password_hash& hash, std::string_view password);

    // Verifications submitted and not yet started.
    std::size_t waiting() const noexcept { return waiting_.load(std::memory_order_relaxed); }
    // Verifications running on a hashing thread now.
    std::size_t busy() const noexcept { return busy_.load(std::memory_order_relaxed); }
    // Verifications refused because the queue was full, since construction.
    std::uint64_t shed_count() const noexcept { return shed_.load(std::memory_order_relaxed); }
    std::size_t queue_limit() const noexcept { return queue_limit_; }

private:
    boost::asio::any_io_executor executor_;
    std::size_t queue_limit_;
    std::atomic<std::size_t> waiting_{0};
    std::atomic<std::size_t> busy_{0};
    std::atomic<std::uint64_t> shed_{0};
};

} // namespace portal_auth
