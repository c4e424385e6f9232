#include <portal_auth/audit_log.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "test_support.hpp"

#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

using namespace portal_auth;
using namespace std::chrono_literals;

namespace {

// 2026-11-25T17:21:43.123Z
const std::chrono::system_clock::time_point fixed_time =
    std::chrono::system_clock::time_point{} + std::chrono::seconds(1795627303) + 123ms;

audit_event login(std::string remote = "203.0.113.7:51000") {
    audit_event e;
    e.event = "login.succeeded";
    e.customer_id = 100;
    e.profile_id = 10;
    e.remote = std::move(remote);
    return e;
}

// A temporary file that is removed again at the end of the test.
struct temp_file {
    std::string path;
    temp_file() {
        char name[] = "/tmp/portal_auth_audit_XXXXXX";
        const int fd = ::mkstemp(name);
        BOOST_TEST_REQUIRE(fd >= 0);
        ::close(fd);
        path = name;
    }
    ~temp_file() { ::unlink(path.c_str()); }

    std::string content() const {
        std::ifstream in(path, std::ios::binary);
        std::ostringstream out;
        out << in.rdbuf();
        return out.str();
    }
    void write(const std::string& text) const {
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        out << text;
    }
};

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        lines.push_back(line);
    return lines;
}

} // namespace

BOOST_AUTO_TEST_SUITE(audit_log_suite)

BOOST_AUTO_TEST_CASE(rfc3339_formatting) {
    BOOST_TEST(format_rfc3339_ms(fixed_time) == "2026-11-25T17:21:43.123Z");
    BOOST_TEST(format_rfc3339(fixed_time) == "2026-11-25T17:21:43Z");
    const auto epoch = std::chrono::system_clock::time_point{};
    BOOST_TEST(format_rfc3339_ms(epoch) == "1970-01-01T00:00:00.000Z");
    BOOST_TEST(format_rfc3339_ms(epoch + 5ms) == "1970-01-01T00:00:00.005Z");
    BOOST_TEST(format_rfc3339_ms(epoch + 999999us) == "1970-01-01T00:00:00.999Z");
    BOOST_TEST(format_rfc3339(epoch - 1s) == "1969-12-31T23:59:59Z");
    // 2024-02-29 (leap day) 09:05:07
    BOOST_TEST(format_rfc3339(epoch + 1709197507s) == "2024-02-29T09:05:07Z");
}

BOOST_AUTO_TEST_CASE(line_has_fixed_key_order_and_omits_unset_fields) {
    BOOST_TEST(format_audit_line(login(), fixed_time) ==
               R"({"time":"2026-11-25T17:21:43.123Z","event":"login.succeeded",)"
               R"("customerId":100,"profileId":10,"remote":"203.0.113.7:51000"})");

    audit_event full;
    full.event = "impersonation.issued";
    full.remote = "[2001:db8::1]:443";
    full.jti = "abc";
    full.reason = "why";
    full.target_profile_id = 21;
    full.target_customer_id = 201;
    full.profile_id = 11;
    full.customer_id = 101;
    BOOST_TEST(format_audit_line(full, fixed_time) ==
               R"({"time":"2026-11-25T17:21:43.123Z","event":"impersonation.issued",)"
               R"("customerId":101,"profileId":11,"targetCustomerId":201,"targetProfileId":21,)"
               R"("jti":"abc","reason":"why","remote":"[2001:db8::1]:443"})");

    audit_event bare;
    bare.event = "x";
    BOOST_TEST(format_audit_line(bare, fixed_time) ==
               R"({"time":"2026-11-25T17:21:43.123Z","event":"x","remote":""})");
}

BOOST_AUTO_TEST_CASE(odd_strings_are_escaped) {
    audit_event e = login("a\"b\\c\nd\te\x01");
    e.reason = std::string("bad\xff\xc0utf8 \xe2\x82\xac");
    const std::string line = format_audit_line(e, fixed_time);
    BOOST_TEST(line.find('\n') == std::string::npos);
    BOOST_TEST(line.find(R"("remote":"a\"b\\c\nd\te\u0001")") != std::string::npos, line);

    boost::system::error_code ec;
    auto parsed = boost::json::parse(line, ec);
    BOOST_TEST_REQUIRE(!ec, ec.message());
    BOOST_TEST(parsed.at("remote").as_string() == "a\"b\\c\nd\te\x01");
    // Invalid UTF-8 becomes U+FFFD; valid multi-byte characters survive.
    BOOST_TEST(parsed.at("reason").as_string() == "bad\xef\xbf\xbd\xef\xbf\xbdutf8 \xe2\x82\xac");
}

BOOST_AUTO_TEST_CASE(ring_is_newest_first_and_bounded) {
    audit_log log(3);
    for (int i = 0; i < 5; ++i) {
        audit_event e = login();
        e.event = "event." + std::to_string(i);
        BOOST_TEST(!log.write(e, fixed_time + std::chrono::seconds(i)));
    }
    auto all = log.recent(10);
    BOOST_TEST_REQUIRE(all.size() == 3u);
    BOOST_TEST(all[0].at("event").as_string() == "event.4");
    BOOST_TEST(all[1].at("event").as_string() == "event.3");
    BOOST_TEST(all[2].at("event").as_string() == "event.2");
    BOOST_TEST(all[0].at("customerId").as_int64() == 100);
    BOOST_TEST(all[0].at("time").as_string() == "2026-11-25T17:21:47.123Z");

    auto two = log.recent(2);
    BOOST_TEST_REQUIRE(two.size() == 2u);
    BOOST_TEST(two[1].at("event").as_string() == "event.3");
    BOOST_TEST(log.recent(0).empty());
    BOOST_TEST(audit_log(5).recent(5).empty());
}

BOOST_AUTO_TEST_CASE(file_gets_one_line_per_event) {
    temp_file file;
    {
        audit_log log(10);
        BOOST_TEST_REQUIRE(!log.open_file(file.path));
        BOOST_TEST(!log.write(login(), fixed_time));
        audit_event denied = login();
        denied.event = "login.failed";
        denied.reason = "bad_password";
        BOOST_TEST(!log.write(denied, fixed_time + 1s));
        // Written through on return, before the log is destroyed.
        BOOST_TEST(lines_of(file.content()).size() == 2u);
    }
    {
        // Reopening appends rather than truncating.
        audit_log log(10);
        BOOST_TEST_REQUIRE(!log.open_file(file.path));
        BOOST_TEST(!log.write(login("10.0.0.1:1"), fixed_time + 2s));
    }
    const std::string content = file.content();
    BOOST_TEST(content.back() == '\n');
    auto lines = lines_of(content);
    BOOST_TEST_REQUIRE(lines.size() == 3u);
    BOOST_TEST(lines[0] == format_audit_line(login(), fixed_time));
    BOOST_TEST(lines[1].find(R"("event":"login.failed")") != std::string::npos);
    BOOST_TEST(lines[1].find(R"("reason":"bad_password")") != std::string::npos);
    BOOST_TEST(lines[2].find(R"("remote":"10.0.0.1:1")") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(torn_last_line_is_terminated_on_open) {
    temp_file file;
    file.write("{\"time\":\"2026-11-25T17:21:43.123Z\",\"ev");
    audit_log log(10);
    BOOST_TEST_REQUIRE(!log.open_file(file.path));
    BOOST_TEST(!log.write(login(), fixed_time));
    auto lines = lines_of(file.content());
    BOOST_TEST_REQUIRE(lines.size() == 2u);
    BOOST_TEST(lines[0] == "{\"time\":\"2026-11-25T17:21:43.123Z\",\"ev");
    BOOST_TEST(lines[1] == format_audit_line(login(), fixed_time));

    // A file that already ends cleanly gets no blank line.
    temp_file clean;
    clean.write("{}\n");
    audit_log other(10);
    BOOST_TEST_REQUIRE(!other.open_file(clean.path));
    BOOST_TEST(!other.write(login(), fixed_time));
    BOOST_TEST(clean.content() == "{}\n" + format_audit_line(login(), fixed_time) + "\n");
}

BOOST_AUTO_TEST_CASE(open_failure_reports_errno) {
    audit_log log(10);
    auto ec = log.open_file("/nonexistent-dir/portal-auth/audit.jsonl");
    BOOST_TEST(ec.value() == ENOENT);
    BOOST_TEST((ec.category() == boost::system::system_category()));
    // Recording still works without a file.
    BOOST_TEST(!log.write(login(), fixed_time));
    BOOST_TEST(log.recent(1).size() == 1u);
}

// logrotate's way: rename the file, then reopen at the old name; no line is lost or split.
BOOST_AUTO_TEST_CASE(reopen_after_a_rename_writes_to_a_new_file) {
    test::temp_dir dir;
    const auto path = dir.file("audit.jsonl");
    audit_log log;
    BOOST_TEST_REQUIRE(!log.open_file(path.string()));
    BOOST_TEST(!log.write(login(), fixed_time));
    std::filesystem::rename(path, dir.file("audit.jsonl.1"));
    BOOST_TEST(!log.write(login("10.0.0.2:1"), fixed_time)); // still the renamed file
    BOOST_TEST_REQUIRE(!log.reopen());
    BOOST_TEST(!log.write(login("10.0.0.3:1"), fixed_time));
    BOOST_TEST(!log.sync());
    const std::string rotated = test::read_file(dir.file("audit.jsonl.1"));
    const std::string fresh = test::read_file(path);
    BOOST_TEST(std::count(rotated.begin(), rotated.end(), '\n') == 2);
    BOOST_TEST(std::count(fresh.begin(), fresh.end(), '\n') == 1);
    BOOST_TEST(fresh.find("10.0.0.3:1") != std::string::npos);
    BOOST_TEST(!audit_log().reopen()); // no file: nothing to do
}

BOOST_AUTO_TEST_CASE(impersonation_events_have_a_ring_of_their_own) {
    audit_log log(4);
    auto event = [](std::string name, std::int64_t id) {
        audit_event e;
        e.event = std::move(name);
        e.customer_id = id;
        return e;
    };
    BOOST_TEST_REQUIRE(!log.write(event("impersonation.issued", 1), fixed_time));
    BOOST_TEST_REQUIRE(!log.write(event("impersonation.exchanged", 2), fixed_time));
    for (std::int64_t i = 0; i < 10; ++i) // a flood of other events
        BOOST_TEST_REQUIRE(!log.write(event("login.failed", 100 + i), fixed_time));
    BOOST_TEST_REQUIRE(!log.write(event("impersonation.denied", 3), fixed_time));

    const auto only = log.recent(10, audit_category::impersonation);
    BOOST_TEST_REQUIRE(only.size() == 3u);
    BOOST_TEST(only[0].at("customerId").as_int64() == 3);
    BOOST_TEST(only[2].at("customerId").as_int64() == 1);
    // Merged newest first: the rings keep 3 and 4 events.
    const auto all = log.recent(10);
    std::vector<std::int64_t> ids;
    for (const auto& e : all)
        ids.push_back(e.at("customerId").as_int64());
    BOOST_TEST(ids == (std::vector<std::int64_t>{3, 109, 108, 107, 106, 2, 1}),
               boost::test_tools::per_element());
    BOOST_TEST(log.recent(2).size() == 2u);
}

namespace {

// RLIMIT_FSIZE for this process, with SIGXFSZ ignored (a write past it fails with EFBIG),
// restored at the end.
struct file_size_limit {
    explicit file_size_limit(rlim_t bytes) {
        ::getrlimit(RLIMIT_FSIZE, &saved);
        previous_handler = std::signal(SIGXFSZ, SIG_IGN);
        set(bytes);
    }
    void set(rlim_t bytes) {
        rlimit limit = saved;
        limit.rlim_cur = bytes;
        BOOST_TEST_REQUIRE(::setrlimit(RLIMIT_FSIZE, &limit) == 0);
    }
    ~file_size_limit() {
        ::setrlimit(RLIMIT_FSIZE, &saved);
        std::signal(SIGXFSZ, previous_handler);
    }
    rlimit saved{};
    void (*previous_handler)(int) = nullptr;
};

} // namespace

// A disk that fills up: a line that does not fit is cut off whole, nothing of it stays in the
// file or the ring, failures are reported once per episode (then once a minute), and writing
// resumes by itself when there is room again.
BOOST_AUTO_TEST_CASE(a_short_write_is_cut_back_and_the_episode_reported) {
    test::temp_dir dir;
    const auto path = dir.file("audit.jsonl");
    audit_log log(100);
    std::vector<std::string> reports;
    log.set_logger([&](std::string_view line) { reports.emplace_back(line); });
    BOOST_TEST_REQUIRE(!log.open_file(path.string()));
    BOOST_TEST_REQUIRE(!log.write(login("10.0.0.1:1"), fixed_time));
    const auto whole = std::filesystem::file_size(path);

    boost::system::error_code failed;
    {
        // Room for part of the next line only: the write is short, then EFBIG.
        file_size_limit limit(whole + 40);
        failed = log.write(login("10.0.0.2:1"), fixed_time);
        BOOST_TEST(failed.value() == EFBIG);
        BOOST_TEST(std::filesystem::file_size(path) == whole); // cut back to the whole line
        BOOST_TEST(log.write(login("10.0.0.3:1"), fixed_time + 30s).value() == EFBIG);
        BOOST_TEST(reports.size() == 1u); // one report per episode...
        BOOST_TEST(log.write(login("10.0.0.4:1"), fixed_time + 61s).value() == EFBIG);
        BOOST_TEST(reports.size() == 2u); // ...then at most once a minute
    }
    BOOST_TEST_REQUIRE(!reports.empty());
    BOOST_TEST(reports[0].find("errno " + std::to_string(EFBIG)) != std::string::npos, reports[0]);
    BOOST_TEST(reports[1].find("still failing") != std::string::npos, reports[1]);
    BOOST_TEST(log.failed_writes() == 3u);

    // Room again: the next line follows the last whole one, and recovery is reported.
    BOOST_TEST(!log.write(login("10.0.0.5:1"), fixed_time + 62s));
    BOOST_TEST_REQUIRE(reports.size() == 3u);
    BOOST_TEST(reports[2].find("writing again") != std::string::npos, reports[2]);
    const auto lines = lines_of(test::read_file(path));
    BOOST_TEST_REQUIRE(lines.size() == 2u);
    for (const auto& line : lines)
        BOOST_TEST(boost::json::parse(line).is_object(), line);
    BOOST_TEST(lines[1].find("10.0.0.5:1") != std::string::npos);
    // The ring holds what the file holds.
    const auto ring = log.recent(10);
    BOOST_TEST_REQUIRE(ring.size() == 2u);
    BOOST_TEST(ring[0].at("remote").as_string() == "10.0.0.5:1");
    BOOST_TEST(ring[1].at("remote").as_string() == "10.0.0.1:1");
}

BOOST_AUTO_TEST_CASE(a_full_device_fails_every_write) {
    audit_log log(10);
    int reports = 0;
    log.set_logger([&](std::string_view) { ++reports; });
    BOOST_TEST_REQUIRE(!log.open_file("/dev/full"));
    BOOST_TEST(log.write(login(), fixed_time));
    BOOST_TEST(log.write(login(), fixed_time));
    BOOST_TEST(log.recent(10).empty());
    BOOST_TEST(reports == 1);
}

BOOST_AUTO_TEST_SUITE_END()
