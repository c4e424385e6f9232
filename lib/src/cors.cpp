// CORS: origin parsing and the handler wrapper.
#include <portal_auth/cors.hpp>

#include <boost/asio/ip/address_v6.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/system/errc.hpp>
#include <boost/system/error_code.hpp>

#include <openssl/rand.h>

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <memory>
#include <span>
#include <stdexcept>
#include <utility>

#include "base64.hpp"

namespace portal_auth {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;

// Longer than any origin worth naming (a host name is at most 253 characters).
constexpr std::size_t max_origin_size = 300;

boost::system::error_code invalid() {
    return boost::system::errc::make_error_code(boost::system::errc::invalid_argument);
}

char lower(char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string lowered(std::string_view text) {
    std::string out(text);
    std::transform(out.begin(), out.end(), out.begin(), lower);
    return out;
}

bool is_alnum(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

// Dot-separated labels of letters, digits and '-', each 1 to 63 long and neither starting nor
// ending with '-'. Takes IPv4 addresses too.
bool is_host_name(std::string_view host) {
    if (host.empty() || host.size() > 253)
        return false;
    for (;;) {
        const auto dot = host.find('.');
        const std::string_view label = host.substr(0, dot);
        if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-' ||
            !std::all_of(label.begin(), label.end(),
                         [](char c) { return is_alnum(c) || c == '-'; }))
            return false;
        if (dot == std::string_view::npos)
            return true;
        host.remove_prefix(dot + 1);
    }
}

// "[2001:db8::1]": hex digits, ':' and '.' only (no zone), and an address Asio accepts.
bool is_ipv6_literal(std::string_view host) {
    if (host.size() < 4 || host.front() != '[' || host.back() != ']')
        return false;
    const std::string_view inner = host.substr(1, host.size() - 2);
    const bool plain = std::all_of(inner.begin(), inner.end(), [](char c) {
        return (c >= '0' && c <= '9') || (lower(c) >= 'a' && lower(c) <= 'f') || c == ':' ||
               c == '.';
    });
    if (!plain)
        return false;
    boost::system::error_code ec;
    (void)asio::ip::make_address_v6(std::string(inner), ec);
    return !ec;
}

struct cors_state {
    request_handler_fn inner;
    std::vector<std::string> origins; // canonical
    std::string max_age;
};

// The Origin value as sent when the request has exactly one and it is allowed; empty otherwise.
std::string allowed_origin(const cors_state& state, const http_request& req) {
    if (req.count(http::field::origin) != 1)
        return {};
    const std::string_view sent = req[http::field::origin];
    auto canonical = parse_origin(sent);
    if (!canonical ||
        std::find(state.origins.begin(), state.origins.end(), *canonical) == state.origins.end())
        return {};
    return std::string(sent);
}

bool is_preflight(const http_request& req) {
    return req.method() == http::verb::options &&
           req.find(http::field::access_control_request_method) != req.end();
}

void add_vary_origin(http_response& res) {
    const auto it = res.find(http::field::vary);
    if (it == res.end()) {
        res.set(http::field::vary, "Origin");
        return;
    }
    // Already there (any case, as one of a list)?
    const std::string existing = lowered(it->value());
    std::size_t start = 0;
    while (start <= existing.size()) {
        const auto comma = std::min(existing.find(',', start), existing.size());
        std::string_view item(existing.data() + start, comma - start);
        while (!item.empty() && (item.front() == ' ' || item.front() == '\t'))
            item.remove_prefix(1);
        while (!item.empty() && (item.back() == ' ' || item.back() == '\t'))
            item.remove_suffix(1);
        if (item == "origin" || item == "*")
            return;
        start = comma + 1;
    }
    res.set(http::field::vary, std::string(it->value()) + ", Origin");
}

// The rule request_handler applies to every answer: the client's X-Request-Id when it is a sane
// token (1 to 128 of A-Z a-z 0-9 . _ -), else a new random one.
std::string request_id_for(const http_request& req) {
    const std::string_view given = req["X-Request-Id"];
    const bool sane = !given.empty() && given.size() <= 128 &&
                      std::all_of(given.begin(), given.end(), [](char c) {
                          return is_alnum(c) || c == '.' || c == '_' || c == '-';
                      });
    if (sane)
        return std::string(given);
    unsigned char raw[12];
    if (RAND_bytes(raw, sizeof raw) != 1)
        throw std::runtime_error("RAND_bytes failed");
    return base64url_encode(std::span<const unsigned char>(raw, sizeof raw));
}

http_response preflight_response(const cors_state& state, const http_request& req,
                                 const std::string& origin) {
    http_response res{http::status::no_content, req.version()};
    set_common_headers(res);
    res.set("X-Request-Id", request_id_for(req));
    res.set(http::field::access_control_allow_origin, origin);
    res.set(http::field::access_control_allow_methods, cors_allowed_methods);
    res.set(http::field::access_control_allow_headers, cors_allowed_headers);
    res.set(http::field::access_control_max_age, state.max_age);
    res.set(http::field::vary, "Origin");
    res.keep_alive(req.keep_alive());
    // No Content-Length: a 204 has no body, and RFC 9110 forbids the field on it.
    return res;
}

// A named coroutine with its arguments by value: the state outlives the call whatever becomes
// of the handler object that started it.
asio::awaitable<http_response> handle_with_cors(std::shared_ptr<const cors_state> state,
                                                http_request req, request_context context) {
    const std::string origin = allowed_origin(*state, req);
    if (origin.empty())
        co_return co_await state->inner(std::move(req), std::move(context));
    if (is_preflight(req))
        co_return preflight_response(*state, req, origin);
    http_response res = co_await state->inner(std::move(req), std::move(context));
    res.set(http::field::access_control_allow_origin, origin);
    res.set(http::field::access_control_expose_headers, cors_exposed_headers);
    add_vary_origin(res);
    co_return res;
}

} // namespace

boost::system::result<std::string> parse_origin(std::string_view text) {
    if (text.size() > max_origin_size)
        return invalid();
    std::string scheme;
    if (const auto sep = text.find("://"); sep != std::string_view::npos)
        scheme = lowered(text.substr(0, sep));
    if (scheme != "http" && scheme != "https")
        return invalid();
    std::string_view authority = text.substr(scheme.size() + 3);

    // Host, then an optional ":port"; the IPv6 form has its colons inside brackets.
    std::string_view host = authority;
    std::string_view port;
    std::size_t port_colon = std::string_view::npos;
    if (!authority.starts_with('['))
        port_colon = authority.find(':');
    else if (const auto close = authority.find(']');
             close != std::string_view::npos && close + 1 < authority.size()) {
        if (authority[close + 1] != ':')
            return invalid();
        port_colon = close + 1;
    }
    if (port_colon != std::string_view::npos) {
        host = authority.substr(0, port_colon);
        port = authority.substr(port_colon + 1);
        if (port.empty())
            return invalid();
    }
    if (!is_host_name(host) && !is_ipv6_literal(host))
        return invalid();

    std::string canonical = scheme + "://" + lowered(host);
    if (!port.empty()) {
        unsigned number = 0;
        const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), number);
        if (ec != std::errc{} || end != port.data() + port.size() || number == 0 || number > 65535)
            return invalid();
        const unsigned default_port = scheme == "https" ? 443 : 80;
        if (number != default_port)
            canonical += ':' + std::to_string(number);
    }
    return canonical;
}

request_handler_fn with_cors(request_handler_fn inner, cors_config config) {
    auto state = std::make_shared<cors_state>();
    state->inner = std::move(inner);
    for (const auto& origin : config.allowed_origins) {
        auto canonical = parse_origin(origin);
        if (!canonical)
            throw std::invalid_argument("with_cors: not an origin: \"" + origin + "\"");
        state->origins.push_back(std::move(*canonical));
    }
    state->max_age = std::to_string(std::max<std::chrono::seconds::rep>(0, config.max_age.count()));
    return [state = std::shared_ptr<const cors_state>(std::move(state))](http_request req,
                                                                         request_context context) {
        return handle_with_cors(state, std::move(req), std::move(context));
    };
}

} // namespace portal_auth
