// Base64 codecs: base64url without padding (tokens, JWT) and standard base64 without padding
// (password hashes).
#pragma once

#include <portal_auth/bytes.hpp>

#include <boost/system/result.hpp>

#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace portal_auth {

// RFC 4648 section 5 alphabet, no '=' padding.
std::string base64url_encode(std::span<const unsigned char> data);
std::string base64url_encode(std::string_view data);

// Rejects padding, characters outside the alphabet, impossible lengths (len % 4 == 1) and
// non-canonical trailing bits. Error: errc::invalid_base64.
boost::system::result<bytes> base64url_decode(std::string_view text);

// RFC 4648 section 4 alphabet ('+', '/'), no '=' padding (as in PHC/scrypt strings).
std::string base64_encode_unpadded(std::span<const unsigned char> data);
boost::system::result<bytes> base64_decode_unpadded(std::string_view text);

} // namespace portal_auth
