// IPv4 and IPv6 CIDR blocks, for deciding which peers are trusted proxies.
#pragma once

#include <boost/asio/ip/address.hpp>
#include <boost/system/result.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace portal_auth {

// An IPv4 or IPv6 network: an address whose bits past the prefix are zero, and the prefix length.
//
// IPv4 addresses are matched in either spelling: contains() takes an IPv4-mapped IPv6 address
// (::ffff:a.b.c.d, as a dual-stack socket reports an IPv4 peer) as the IPv4 address a.b.c.d.
// They are matched against IPv4 networks only, so ::/0 holds no IPv4 address; a network written
// as ::ffff:a.b.c.d/n with n >= 96 is parsed as the IPv4 network a.b.c.d/(n - 96).
class ip_network {
public:
    // "10.0.0.0/8", "fd00::/8", "2001:db8::/32"; an address alone ("192.168.1.7", "::1") is a
    // network of that one address (/32 or /128). Bits set past the prefix are cleared, as nginx
    // does ("10.1.2.3/8" is 10.0.0.0/8), so a host address with its subnet's prefix names that
    // subnet. No whitespace, brackets or IPv6 zone ("%eth0"); the prefix is decimal, at most 32
    // or 128. Error: boost::system::errc::invalid_argument.
    static boost::system::result<ip_network> parse(std::string_view text);

    // The network's first address (IPv4 for IPv4 networks) and its prefix length.
    const boost::asio::ip::address& address() const noexcept { return address_; }
    unsigned prefix_length() const noexcept { return prefix_length_; }

    // Whether `a` lies in the network; an IPv6 zone (scope id) of `a` is ignored.
    bool contains(const boost::asio::ip::address& a) const noexcept;

    // "10.0.0.0/8", "fd00::/8": always with the prefix length, which parse() reads back.
    std::string to_string() const;

    friend bool operator==(const ip_network&, const ip_network&) = default;

private:
    ip_network(const boost::asio::ip::address& address, unsigned prefix_length)
        : address_(address), prefix_length_(prefix_length) {}

    boost::asio::ip::address address_;
    unsigned prefix_length_ = 0;
};

// Whether any of `networks` contains `a`; false when there are none. A linear scan: meant for
// the handful of proxy networks a deployment configures.
bool is_trusted(const std::vector<ip_network>& networks,
                const boost::asio::ip::address& a) noexcept;

} // namespace portal_auth
