// Unit tests of detail::http_connection, driven without sockets under an injected clock.
#include <boost/asio/error.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <functional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "http_connection.hpp"
#include "response_serializer.hpp"

namespace portal_auth::detail {

// Lets BOOST_TEST print the action types it compares.
std::ostream& operator<<(std::ostream& out, http_connection::action_type type) {
    static constexpr const char* names[] = {"handshake",     "read",  "handle",
                                            "respond_error", "write", "close"};
    return out << names[static_cast<int>(type)];
}

} // namespace portal_auth::detail

using namespace std::chrono_literals;
using portal_auth::detail::http_connection;
using portal_auth::detail::http_connection_limits;
using http_request = http_connection::http_request;
using http_response = http_connection::http_response;
using action_type = http_connection::action_type;
namespace http = boost::beast::http;

namespace {

const http_connection::clock::time_point t0 = http_connection::clock::time_point{} + 1h;

// Deadlines as milliseconds after t0, which BOOST_TEST can print.
long long ms_after_t0(http_connection::clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(t - t0).count();
}

std::string get(std::string_view target, std::string_view extra_fields = "",
                std::string_view version = "HTTP/1.1") {
    std::string text = "GET ";
    text.append(target).append(" ").append(version).append("\r\nHost: portal.example\r\n");
    text.append(extra_fields).append("\r\n");
    return text;
}

std::string post(std::string_view target, std::string_view body) {
    std::string text = "POST ";
    text.append(target).append(" HTTP/1.1\r\nHost: portal.example\r\n");
    text.append("Content-Type: application/x-www-form-urlencoded\r\n");
    text.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n\r\n");
    text.append(body);
    return text;
}

// The handler of these tests: the target and body back, keep-alive as the request asks.
http_response echo(const http_request& req) {
    http_response res{http::status::ok, req.version()};
    res.set(http::field::content_type, "text/plain");
    res.keep_alive(req.keep_alive());
    res.body() = std::string(req.target()) + ":" + req.body();
    res.prepare_payload();
    return res;
}

std::string bytes_of(const http_response& res) {
    std::string out;
    portal_auth::serialize_response(res, out);
    return out;
}

// A problem answer as the driver builds it; keep-alive left on, for the machine to switch off.
http_response problem(http::status status) {
    http_response res{status, 11};
    res.set(http::field::content_type, "application/problem+json");
    res.body() = R"({"status":)" + std::to_string(static_cast<unsigned>(status)) + "}";
    res.prepare_payload();
    return res;
}

bool contains(std::string_view text, std::string_view part) {
    return text.find(part) != std::string_view::npos;
}

std::size_t count_of(std::string_view text, std::string_view part) {
    std::size_t n = 0;
    for (auto at = text.find(part); at != std::string_view::npos; at = text.find(part, at + 1))
        ++n;
    return n;
}

// The driver and the client in one: hands `incoming` to the connection in reads of at most
// `chunk` bytes, answers requests through `answer` and collects everything written.
struct harness {
    explicit harness(const http_connection_limits& limits = {}) : conn(limits) {
        const auto first = conn.next(now);
        BOOST_TEST_REQUIRE(first.type == action_type::handshake);
        conn.handshake_done();
    }

    // Runs until the connection waits for bytes the client has not sent, or closes.
    http_connection::action run() {
        for (int step = 0; step < 1'000'000; ++step) {
            const auto a = conn.next(now);
            switch (a.type) {
            case action_type::read:
                if (incoming.empty()) {
                    if (!eof || eof_delivered)
                        return a;
                    eof_delivered = true;
                    conn.input_eof();
                } else {
                    deliver();
                }
                break;
            case action_type::handle:
                requests.push_back(conn.take_request());
                conn.submit_response(answer(requests.back()));
                break;
            case action_type::respond_error:
                errors.push_back(a.status);
                conn.submit_response(problem(a.status));
                break;
            case action_type::write:
                written.append(conn.output());
                conn.output_written();
                break;
            case action_type::close:
            case action_type::handshake:
                return a;
            }
        }
        BOOST_FAIL("the connection never settled");
        return {action_type::close};
    }

    void deliver() {
        const auto buffer = conn.prepare_input();
        BOOST_TEST_REQUIRE(buffer.size() == http_connection::read_size);
        const std::size_t n = std::min({buffer.size(), chunk, incoming.size()});
        std::memcpy(buffer.data(), incoming.data(), n);
        conn.commit_input(n);
        incoming.erase(0, n);
        ++reads;
        max_input = std::max(max_input, conn.input_size());
    }

    http_connection conn;
    http_connection::clock::time_point now = t0;
    std::string incoming; // sent by the client, not yet read by the server
    std::size_t chunk = http_connection::read_size;
    bool eof = false; // the client closes its side once `incoming` is read
    bool eof_delivered = false;
    std::function<http_response(const http_request&)> answer = echo;

    std::vector<http_request> requests;
    std::vector<http::status> errors;
    std::string written;
    std::size_t reads = 0; // reads that delivered bytes
    std::size_t max_input = 0;
};

} // namespace

BOOST_AUTO_TEST_SUITE(http_connection_suite)

BOOST_AUTO_TEST_CASE(one_request_in_one_chunk) {
    harness h;
    h.incoming = get("/status");
    const auto a = h.run();

    BOOST_TEST_REQUIRE(h.requests.size() == 1u);
    BOOST_TEST(h.requests[0].method() == http::verb::get);
    BOOST_TEST(h.requests[0].target() == "/status");
    BOOST_TEST(h.requests[0].at(http::field::host) == "portal.example");
    BOOST_TEST(h.written == bytes_of(echo(h.requests[0])));
    BOOST_TEST(h.written.starts_with("HTTP/1.1 200 OK\r\n"));
    BOOST_TEST(h.reads == 1u);
    BOOST_TEST(h.errors.empty());
    // Kept alive: waiting for the next request with nothing left over.
    BOOST_TEST(a.type == action_type::read);
    BOOST_TEST(h.conn.input_size() == 0u);
}

BOOST_AUTO_TEST_CASE(same_request_byte_by_byte) {
    harness h;
    const std::string message = post("/login", "user=alice&password=correct-horse");
    h.incoming = message;
    h.chunk = 1;
    const auto a = h.run();

    BOOST_TEST_REQUIRE(h.requests.size() == 1u);
    BOOST_TEST(h.requests[0].method() == http::verb::post);
    BOOST_TEST(h.requests[0].target() == "/login");
    BOOST_TEST(h.requests[0].body() == "user=alice&password=correct-horse");
    BOOST_TEST(h.reads == message.size());
    BOOST_TEST(count_of(h.written, "HTTP/1.1 200 OK\r\n") == 1u);
    BOOST_TEST(h.written.ends_with("\r\n\r\n/login:user=alice&password=correct-horse"));
    BOOST_TEST(a.type == action_type::read);
}

BOOST_AUTO_TEST_CASE(two_pipelined_requests_in_one_chunk) {
    harness h;
    h.incoming = get("/a") + post("/b", "beta");
    const auto a = h.run();

    BOOST_TEST_REQUIRE(h.requests.size() == 2u);
    BOOST_TEST(h.requests[0].target() == "/a");
    BOOST_TEST(h.requests[1].target() == "/b");
    BOOST_TEST(h.requests[1].body() == "beta");
    BOOST_TEST(h.reads == 1u); // the second came from the buffer, not from another read
    BOOST_TEST(h.written == bytes_of(echo(h.requests[0])) + bytes_of(echo(h.requests[1])));
    BOOST_TEST(a.type == action_type::read);
}

BOOST_AUTO_TEST_CASE(three_pipelined_requests_in_one_chunk) {
    harness h;
    h.incoming = post("/one", "1") + get("/two") + post("/three", "333");
    const auto a = h.run();

    BOOST_TEST_REQUIRE(h.requests.size() == 3u);
    BOOST_TEST(h.requests[0].target() == "/one");
    BOOST_TEST(h.requests[1].target() == "/two");
    BOOST_TEST(h.requests[2].target() == "/three");
    BOOST_TEST(h.requests[2].body() == "333");
    BOOST_TEST(h.reads == 1u);
    // Answered in order.
    const auto one = h.written.find("/one:1");
    const auto two = h.written.find("/two:");
    const auto three = h.written.find("/three:333");
    BOOST_TEST_REQUIRE(three != std::string::npos);
    BOOST_TEST((one < two && two < three));
    BOOST_TEST(count_of(h.written, "HTTP/1.1 200 OK\r\n") == 3u);
    BOOST_TEST(a.type == action_type::read);
}

BOOST_AUTO_TEST_CASE(request_split_at_the_header_body_boundary) {
    harness h;
    const std::string message = post("/token", "grant_type=refresh");
    const auto header_end = message.find("\r\n\r\n") + 4;
    h.incoming = message.substr(0, header_end);
    auto a = h.run();
    BOOST_TEST(a.type == action_type::read);
    BOOST_TEST(h.requests.empty());
    BOOST_TEST(h.written.empty());

    // The body arrives later in two pieces.
    h.now += 1s;
    h.incoming = message.substr(header_end, 5);
    a = h.run();
    BOOST_TEST(a.type == action_type::read);
    BOOST_TEST(h.requests.empty());

    h.now += 1s;
    h.incoming = message.substr(header_end + 5);
    a = h.run();
    BOOST_TEST_REQUIRE(h.requests.size() == 1u);
    BOOST_TEST(h.requests[0].body() == "grant_type=refresh");
    BOOST_TEST(h.written.ends_with("/token:grant_type=refresh"));
    BOOST_TEST(a.type == action_type::read);
    BOOST_TEST(h.reads == 3u);
}

BOOST_AUTO_TEST_CASE(header_just_under_the_limit_is_accepted) {
    harness h;
    std::string message = get("/", "X-Pad: " + std::string(8000, 'p') + "\r\n");
    BOOST_TEST_REQUIRE(message.size() < 8u * 1024u);
    h.incoming = message;
    const auto a = h.run();
    BOOST_TEST(h.requests.size() == 1u);
    BOOST_TEST(h.errors.empty());
    BOOST_TEST(a.type == action_type::read);
}

BOOST_AUTO_TEST_CASE(header_over_8_kib_gets_431_then_close) {
    harness h;
    h.incoming = get("/", "X-Big: " + std::string(9000, 'b') + "\r\n") + get("/after");
    const auto a = h.run();

    BOOST_TEST(h.requests.empty());
    BOOST_TEST_REQUIRE(h.errors.size() == 1u);
    BOOST_TEST(h.errors[0] == http::status::request_header_fields_too_large);
    BOOST_TEST(h.written.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
    BOOST_TEST(contains(h.written, "Connection: close\r\n"));
    BOOST_TEST(a.type == action_type::close);
    BOOST_TEST(a.close_notify);
    // The oversized header was never held whole.
    BOOST_TEST(h.max_input <= 8u * 1024u + http_connection::read_size);
}

BOOST_AUTO_TEST_CASE(header_limit_counts_bytes_fed_one_by_one) {
    harness h;
    h.incoming = "GET / HTTP/1.1\r\nX-Big: " + std::string(20000, 'b');
    h.chunk = 1;
    const auto a = h.run();
    BOOST_TEST_REQUIRE(h.errors.size() == 1u);
    BOOST_TEST(h.errors[0] == http::status::request_header_fields_too_large);
    BOOST_TEST(a.type == action_type::close);
    BOOST_TEST(h.max_input <= 8u * 1024u);
    BOOST_TEST(h.incoming.size() > 10000u); // the rest was never read
}

BOOST_AUTO_TEST_CASE(body_of_16_kib_is_accepted) {
    harness h;
    h.incoming = post("/big", std::string(16 * 1024, 'x'));
    const auto a = h.run();
    BOOST_TEST_REQUIRE(h.requests.size() == 1u);
    BOOST_TEST(h.requests[0].body().size() == 16u * 1024u);
    BOOST_TEST(h.errors.empty());
    BOOST_TEST(a.type == action_type::read);
}

BOOST_AUTO_TEST_CASE(content_length_over_16_kib_gets_413_then_close) {
    harness h;
    // Only the header and a little body have arrived: the declared length alone decides.
    h.incoming = post("/big", std::string(16 * 1024 + 1, 'x')).substr(0, 200);
    const auto a = h.run();

    BOOST_TEST(h.requests.empty());
    BOOST_TEST_REQUIRE(h.errors.size() == 1u);
    BOOST_TEST(h.errors[0] == http::status::payload_too_large);
    BOOST_TEST(h.written.starts_with("HTTP/1.1 413 Payload Too Large\r\n"));
    BOOST_TEST(contains(h.written, "Connection: close\r\n"));
    BOOST_TEST(a.type == action_type::close);
    BOOST_TEST(a.close_notify);
}

BOOST_AUTO_TEST_CASE(chunked_body_over_16_kib_gets_413) {
    harness h;
    std::string message = "POST /big HTTP/1.1\r\nHost: portal.example\r\n"
                          "Transfer-Encoding: chunked\r\n\r\n";
    for (int i = 0; i < 5; ++i)
        message += "1000\r\n" + std::string(0x1000, 'c') + "\r\n"; // 5 x 4 KiB
    message += "0\r\n\r\n";
    h.incoming = message;
    const auto a = h.run();

    BOOST_TEST(h.requests.empty());
    BOOST_TEST_REQUIRE(h.errors.size() == 1u);
    BOOST_TEST(h.errors[0] == http::status::payload_too_large);
    BOOST_TEST(a.type == action_type::close);
}

BOOST_AUTO_TEST_CASE(endless_chunk_line_is_bounded_and_gets_431) {
    harness h;
    h.incoming = "POST /x HTTP/1.1\r\nHost: portal.example\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "10;ext=" +
                 std::string(40000, 'e');
    const auto a = h.run();

    BOOST_TEST_REQUIRE(h.errors.size() == 1u);
    BOOST_TEST(h.errors[0] == http::status::request_header_fields_too_large);
    BOOST_TEST(a.type == action_type::close);
    BOOST_TEST(h.max_input <= 8u * 1024u + http_connection::read_size);
}

BOOST_AUTO_TEST_CASE(garbage_gets_400_then_close) {
    harness h;
    h.incoming = "this is not http\r\n\r\n";
    const auto a = h.run();

    BOOST_TEST(h.requests.empty());
    BOOST_TEST_REQUIRE(h.errors.size() == 1u);
    BOOST_TEST(h.errors[0] == http::status::bad_request);
    BOOST_TEST(h.written.starts_with("HTTP/1.1 400 Bad Request\r\n"));
    // The driver's answer left keep-alive on; the machine switched it off.
    BOOST_TEST(contains(h.written, "Connection: close\r\n"));
    BOOST_TEST(a.type == action_type::close);
    BOOST_TEST(a.close_notify);
}

BOOST_AUTO_TEST_CASE(eof_before_any_byte_closes_quietly) {
    harness h;
    h.eof = true;
    const auto a = h.run();

    BOOST_TEST(a.type == action_type::close);
    BOOST_TEST(a.close_notify); // the peer said goodbye properly: answer in kind
    BOOST_TEST(h.written.empty());
    BOOST_TEST(h.errors.empty());
    BOOST_TEST(h.requests.empty());
}

BOOST_AUTO_TEST_CASE(eof_mid_request_closes_without_an_answer) {
    for (const std::size_t cut : {std::size_t{5}, std::size_t{30}, std::size_t{90}}) {
        harness h;
        h.incoming = post("/login", "user=alice&password=secret").substr(0, cut);
        h.eof = true;
        const auto a = h.run();

        BOOST_TEST(a.type == action_type::close, "cut at " << cut);
        BOOST_TEST(h.written.empty(), "cut at " << cut);
        BOOST_TEST(h.errors.empty(), "cut at " << cut);
        BOOST_TEST(h.requests.empty(), "cut at " << cut);
    }
}

BOOST_AUTO_TEST_CASE(request_followed_by_eof_is_still_answered) {
    harness h;
    h.incoming = get("/last");
    h.eof = true;
    const auto a = h.run();

    BOOST_TEST(h.requests.size() == 1u);
    BOOST_TEST(h.written.starts_with("HTTP/1.1 200 OK\r\n"));
    BOOST_TEST(a.type == action_type::close);
    BOOST_TEST(a.close_notify);
}

BOOST_AUTO_TEST_CASE(connection_close_request_gets_its_response_then_close) {
    harness h;
    // A pipelined request behind the closing one is never served.
    h.incoming = get("/bye", "Connection: close\r\n") + get("/never");
    const auto a = h.run();

    BOOST_TEST_REQUIRE(h.requests.size() == 1u);
    BOOST_TEST(h.requests[0].target() == "/bye");
    BOOST_TEST(h.written.starts_with("HTTP/1.1 200 OK\r\n"));
    BOOST_TEST(contains(h.written, "Connection: close\r\n"));
    BOOST_TEST(!contains(h.written, "/never"));
    BOOST_TEST(a.type == action_type::close);
    BOOST_TEST(a.close_notify);
}

BOOST_AUTO_TEST_CASE(connection_close_request_closes_even_if_the_answer_keeps_alive) {
    harness h;
    h.answer = [](const http_request& req) {
        auto res = echo(req);
        res.keep_alive(true);
        return res;
    };
    h.incoming = get("/bye", "Connection: close\r\n");
    const auto a = h.run();

    BOOST_TEST(h.requests.size() == 1u);
    BOOST_TEST(contains(h.written, "Connection: close\r\n"));
    BOOST_TEST(a.type == action_type::close);
}

BOOST_AUTO_TEST_CASE(http_1_0_without_keep_alive_closes) {
    harness h;
    h.incoming = get("/old", "", "HTTP/1.0") + get("/never", "", "HTTP/1.0");
    const auto a = h.run();

    BOOST_TEST_REQUIRE(h.requests.size() == 1u);
    BOOST_TEST(h.requests[0].version() == 10u);
    BOOST_TEST(h.written.starts_with("HTTP/1.0 200 OK\r\n"));
    BOOST_TEST(a.type == action_type::close);
}

BOOST_AUTO_TEST_CASE(http_1_0_with_keep_alive_stays_open) {
    harness h;
    h.incoming =
        get("/old", "Connection: keep-alive\r\n", "HTTP/1.0") + get("/again", "", "HTTP/1.0");
    const auto a = h.run();

    BOOST_TEST(h.requests.size() == 2u);
    BOOST_TEST(contains(h.written, "Connection: keep-alive\r\n"));
    BOOST_TEST(a.type == action_type::close); // the second asked for no keep-alive
}

BOOST_AUTO_TEST_CASE(handshake_deadline) {
    http_connection_limits limits;
    limits.handshake_timeout = 7s;
    http_connection conn(limits);

    auto a = conn.next(t0);
    BOOST_TEST(a.type == action_type::handshake);
    BOOST_TEST(ms_after_t0(a.deadline) == 7000);
    // Asked again later: the same deadline, not a new one.
    BOOST_TEST(ms_after_t0(conn.next(t0 + 3s).deadline) == 7000);

    conn.on_timeout();
    a = conn.next(t0 + 7s);
    BOOST_TEST(a.type == action_type::close);
    BOOST_TEST(!a.close_notify);
    conn.handshake_done(boost::asio::error::operation_aborted);
    BOOST_TEST(!conn.next(t0 + 7s).close_notify);
}

BOOST_AUTO_TEST_CASE(failed_handshake_closes_without_close_notify) {
    http_connection conn;
    BOOST_TEST(conn.next(t0).type == action_type::handshake);
    conn.handshake_done(boost::asio::error::connection_reset);
    const auto a = conn.next(t0 + 1s);
    BOOST_TEST(a.type == action_type::close);
    BOOST_TEST(!a.close_notify);
}

BOOST_AUTO_TEST_CASE(idle_deadline_while_waiting_for_a_request) {
    http_connection_limits limits;
    limits.idle_timeout = 60s;
    limits.request_timeout = 10s;
    harness h(limits);

    auto a = h.run();
    BOOST_TEST(a.type == action_type::read);
    BOOST_TEST(ms_after_t0(a.deadline) == 60'000);

    // After a request answered at t0 + 5 s, the idle wait starts again from then.
    h.now = t0 + 5s;
    h.incoming = get("/a");
    a = h.run();
    BOOST_TEST(h.requests.size() == 1u);
    BOOST_TEST(a.type == action_type::read);
    BOOST_TEST(ms_after_t0(a.deadline) == 65'000);

    // The watchdog fires; the cancelled read then completes.
    h.conn.on_timeout();
    h.conn.input_error(boost::asio::error::operation_aborted);
    a = h.conn.next(t0 + 65s);
    BOOST_TEST(a.type == action_type::close);
    BOOST_TEST(!a.close_notify);
}

BOOST_AUTO_TEST_CASE(idle_deadline_passed_when_asked_closes) {
    http_connection_limits limits;
    limits.idle_timeout = 60s;
    harness h(limits);
    BOOST_TEST(h.run().type == action_type::read);
    // A read that completes with nothing (never with bytes) after the deadline.
    h.conn.commit_input(0);
    const auto a = h.conn.next(t0 + 60s);
    BOOST_TEST(a.type == action_type::close);
    BOOST_TEST(!a.close_notify);
}

BOOST_AUTO_TEST_CASE(request_deadline_runs_from_the_first_byte) {
    http_connection_limits limits;
    limits.idle_timeout = 60s;
    limits.request_timeout = 10s;
    harness h(limits);
    const std::string message = post("/login", "user=alice");

    h.now = t0 + 20s;
    h.incoming = message.substr(0, 1);
    auto a = h.run();
    BOOST_TEST(a.type == action_type::read);
    BOOST_TEST(ms_after_t0(a.deadline) == 30'000); // request_timeout, not idle_timeout

    // More bytes do not move it.
    h.now = t0 + 29s;
    h.incoming = message.substr(1, 10);
    a = h.run();
    BOOST_TEST(a.type == action_type::read);
    BOOST_TEST(ms_after_t0(a.deadline) == 30'000);

    // The rest arrives too late: the connection closes without an answer or close_notify.
    h.now = t0 + 30s;
    h.incoming = message.substr(11, 5);
    a = h.run();
    BOOST_TEST(a.type == action_type::close);
    BOOST_TEST(!a.close_notify);
    BOOST_TEST(h.written.empty());
    BOOST_TEST(h.requests.empty());
}

BOOST_AUTO_TEST_CASE(write_deadline_and_timeout_mid_write) {
    http_connection_limits limits;
    limits.request_timeout = 10s;
    http_connection conn(limits);
    conn.next(t0);
    conn.handshake_done();
    BOOST_TEST(conn.next(t0).type == action_type::read);
    const std::string message = get("/w");
    const auto buffer = conn.prepare_input();
    std::memcpy(buffer.data(), message.data(), message.size());
    conn.commit_input(message.size());
    BOOST_TEST(conn.next(t0 + 1s).type == action_type::handle);
    conn.submit_response(echo(conn.take_request()));

    // The handler took 4 s: the write gets a full request_timeout of its own.
    auto a = conn.next(t0 + 5s);
    BOOST_TEST(a.type == action_type::write);
    BOOST_TEST(ms_after_t0(a.deadline) == 15'000);
    BOOST_TEST(conn.output().starts_with("HTTP/1.1 200 OK\r\n"));

    conn.on_timeout();
    conn.output_written(boost::asio::error::operation_aborted);
    a = conn.next(t0 + 15s);
    BOOST_TEST(a.type == action_type::close);
    BOOST_TEST(!a.close_notify);
}

BOOST_AUTO_TEST_CASE(close_notify_gets_the_shutdown_deadline) {
    http_connection_limits limits;
    limits.shutdown_timeout = 2s;
    harness h(limits);
    h.now = t0 + 1s;
    h.incoming = get("/bye", "Connection: close\r\n");
    const auto a = h.run();
    BOOST_TEST(a.type == action_type::close);
    BOOST_TEST(a.close_notify);
    BOOST_TEST(ms_after_t0(a.deadline) == 3000);
}

BOOST_AUTO_TEST_CASE(overrunning_close_notify_exchange_is_cut_short) {
    harness h;
    h.incoming = get("/bye", "Connection: close\r\n");
    auto a = h.run();
    BOOST_TEST_REQUIRE(a.type == action_type::close);
    BOOST_TEST(a.close_notify);

    h.conn.on_timeout();
    a = h.conn.next(a.deadline);
    BOOST_TEST(a.type == action_type::close);
    BOOST_TEST(!a.close_notify);
}

BOOST_AUTO_TEST_CASE(broken_stream_mid_request_closes_without_close_notify) {
    harness h;
    h.incoming = get("/x").substr(0, 10);
    BOOST_TEST(h.run().type == action_type::read);
    h.conn.input_error(boost::asio::error::connection_reset);
    const auto a = h.conn.next(h.now);
    BOOST_TEST(a.type == action_type::close);
    BOOST_TEST(!a.close_notify);
    BOOST_TEST(h.written.empty());
}

BOOST_AUTO_TEST_CASE(shutdown_of_an_idle_connection_closes_it_now) {
    harness h;
    h.incoming = get("/a");
    BOOST_TEST(h.run().type == action_type::read);

    BOOST_TEST(h.conn.begin_shutdown());
    // The driver cancels the pending read; its completion leads to a polite close.
    h.conn.input_error(boost::asio::error::operation_aborted);
    const auto a = h.conn.next(h.now);
    BOOST_TEST(a.type == action_type::close);
    BOOST_TEST(a.close_notify);
    BOOST_TEST(h.requests.size() == 1u);
}

BOOST_AUTO_TEST_CASE(shutdown_during_the_handshake) {
    http_connection conn;
    BOOST_TEST(conn.next(t0).type == action_type::handshake);
    BOOST_TEST(conn.begin_shutdown());
    conn.handshake_done(boost::asio::error::operation_aborted);
    const auto a = conn.next(t0);
    BOOST_TEST(a.type == action_type::close);
    BOOST_TEST(!a.close_notify);

    // Stopped before the handshake began: closed at once.
    http_connection late;
    BOOST_TEST(late.begin_shutdown());
    BOOST_TEST(late.next(t0).type == action_type::close);
}

BOOST_AUTO_TEST_CASE(shutdown_mid_request_answers_without_keep_alive_then_closes) {
    harness h;
    const std::string message = post("/login", "user=alice");
    h.incoming = message.substr(0, 20);
    BOOST_TEST(h.run().type == action_type::read);

    BOOST_TEST(!h.conn.begin_shutdown()); // a request is under way
    h.incoming = message.substr(20) + get("/never");
    const auto a = h.run();

    BOOST_TEST_REQUIRE(h.requests.size() == 1u);
    BOOST_TEST(h.requests[0].body() == "user=alice");
    BOOST_TEST(h.written.starts_with("HTTP/1.1 200 OK\r\n"));
    BOOST_TEST(contains(h.written, "Connection: close\r\n"));
    BOOST_TEST(!contains(h.written, "/never"));
    BOOST_TEST(a.type == action_type::close);
    BOOST_TEST(a.close_notify);
}

BOOST_AUTO_TEST_CASE(shutdown_while_writing_closes_after_the_write) {
    harness h;
    h.incoming = get("/a") + get("/b");
    h.conn.next(h.now); // read
    h.deliver();
    BOOST_TEST(h.conn.next(h.now).type == action_type::handle);
    h.conn.submit_response(echo(h.conn.take_request()));
    BOOST_TEST(h.conn.next(h.now).type == action_type::write);

    BOOST_TEST(!h.conn.begin_shutdown());
    // This response was already serialized with keep-alive; the connection closes after it.
    h.conn.output_written();
    const auto a = h.conn.next(h.now);
    BOOST_TEST(a.type == action_type::handle); // the pipelined request is still answered
    h.conn.submit_response(echo(h.conn.take_request()));
    BOOST_TEST(contains(h.conn.output(), "Connection: close\r\n"));
    BOOST_TEST(h.conn.next(h.now).type == action_type::write);
    h.conn.output_written();
    BOOST_TEST(h.conn.next(h.now).type == action_type::close);
}

BOOST_AUTO_TEST_SUITE_END()
