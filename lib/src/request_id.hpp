// Request ids: what a client may send as X-Request-Id, and a fresh one.
#pragma once

#include <openssl/rand.h>

#include <span>
#include <stdexcept>
#include <string>
#include <string_view>

#include "base64.hpp"

namespace portal_auth::detail {

// A client's X-Request-Id is kept when it is a sane token: it goes into logs and the audit.
inline bool sane_request_id(std::string_view id) noexcept {
    if (id.empty() || id.size() > 128)
        return false;
    for (char c : id) {
        const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                        (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

// 96 random bits, base64url: 16 characters.
inline std::string new_request_id() {
    unsigned char raw[12];
    if (RAND_bytes(raw, sizeof raw) != 1)
        throw std::runtime_error("RAND_bytes failed");
    return base64url_encode(std::span<const unsigned char>(raw, sizeof raw));
}

} // namespace portal_auth::detail
