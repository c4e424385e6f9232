// A plain-HTTP listener for Prometheus: GET /metrics answers the exposition text, anything else
// 404. Meant for 127.0.0.1 or a private network (no TLS, no authentication).
#pragma once

#include <portal_auth/metrics.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace portal_auth {

// Accepts on `acceptor` (already listening) and serves each connection on its own coroutine,
// with a 10 s deadline per request, until the acceptor is closed or this coroutine is
// cancelled. `counts` must outlive it.
boost::asio::awaitable<void> serve_metrics(boost::asio::ip::tcp::acceptor& acceptor,
                                           const metrics& counts);

} // namespace portal_auth
