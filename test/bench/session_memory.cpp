// Creates N sessions (default 1,000,000) through session_store::create and reports how much the
// peak resident set (VmHWM) grew over the baseline taken before the first one. The tokens are
// dropped as they are made, so only the store's own memory is counted.
// Output, one line: sessions=N baseline_kib=B peak_kib=P growth_kib=G bytes_per_session=X
#include <portal_auth/session_store.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

namespace {

long status_kib(const char* field) {
    std::ifstream in("/proc/self/status");
    std::string line;
    const std::string prefix = std::string(field) + ":";
    while (std::getline(in, line))
        if (line.compare(0, prefix.size(), prefix) == 0)
            return std::strtol(line.c_str() + prefix.size(), nullptr, 10);
    return -1;
}

} // namespace

int main(int argc, char** argv) {
    long n = 1000000;
    if (argc > 1) {
        n = std::strtol(argv[1], nullptr, 10);
        if (n <= 0 || n > 100000000) {
            std::fprintf(stderr, "usage: portal_auth_session_memory [SESSIONS]\n");
            return 2;
        }
    }
    using namespace portal_auth;
    // Warm up OpenSSL's RNG and the allocator before the baseline.
    {
        session_store warm;
        warm.create({.customer = 1, .profile = 1}, clock_type::now(), std::chrono::seconds(60));
    }
    session_store store;
    const long baseline = status_kib("VmHWM");
    const auto now = clock_type::now();
    const auto start = std::chrono::steady_clock::now();
    for (long i = 0; i < n; ++i) {
        auto issued = store.create({.customer = 100001 + i % 20000, .profile = 200001 + i % 20000},
                                   now, std::chrono::seconds(3600));
        (void)issued;
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const long peak = status_kib("VmHWM");
    if (baseline < 0 || peak < 0 || static_cast<long>(store.size()) != n) {
        std::fprintf(stderr,
                     "session_memory: could not read /proc/self/status or count sessions\n");
        return 1;
    }
    std::printf("sessions=%ld baseline_kib=%ld peak_kib=%ld growth_kib=%ld bytes_per_session=%.0f "
                "create_seconds=%.2f\n",
                n, baseline, peak, peak - baseline,
                static_cast<double>(peak - baseline) * 1024.0 / static_cast<double>(n), seconds);
    return 0;
}
