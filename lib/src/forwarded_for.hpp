// The client address behind trusted reverse proxies, from X-Forwarded-For.
#pragma once

#include <portal_auth/ip_network.hpp>

#include <boost/asio/ip/address.hpp>

#include <string_view>
#include <vector>

namespace portal_auth::detail {

// The address of the client that a request came from, as nginx's realip module with
// `real_ip_recursive on` finds it.
//
// When `peer` (the TCP peer, or the source of a PROXY protocol header) is not in `trusted`, the
// header is ignored and `peer` is returned: only a trusted proxy's word is taken. Otherwise the
// comma-separated `x_forwarded_for` is walked from the right, skipping entries in `trusted`, and
// the first entry that is not trusted is returned. When every entry is trusted, the leftmost one
// is returned; an empty or missing header gives `peer`.
//
// An entry that is not an IP address ("unknown", a host name, garbage) stops the walk: what is
// left of it was written by someone no trusted proxy vouches for, so the last trusted address
// seen, the entry to its right or else `peer`, is returned. Empty entries ("a, , b") are skipped.
//
// Entries may have spaces and tabs around them. Accepted forms: "192.0.2.7", "2001:db8::7",
// "[2001:db8::7]", and with a port, which is dropped, "192.0.2.7:4711" and "[2001:db8::7]:4711".
// An IPv6 zone ("%eth0") makes an entry invalid. Addresses are returned as written: an
// IPv4-mapped IPv6 entry stays IPv6 (ip_network::contains matches both forms alike).
//
// A request with several X-Forwarded-For lines is passed here with their values joined by ", "
// in the order received (RFC 9110, section 5.3). The work is linear in the header's length,
// which the server bounds by its header limit.
boost::asio::ip::address resolve_client_address(const boost::asio::ip::address& peer,
                                                std::string_view x_forwarded_for,
                                                const std::vector<ip_network>& trusted);

} // namespace portal_auth::detail
