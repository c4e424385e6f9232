// Owning wrappers for the OpenSSL handles used by the library.
#pragma once

#include <openssl/evp.h>

#include <memory>

namespace portal_auth::detail {

struct evp_mac_deleter {
    void operator()(EVP_MAC* mac) const noexcept { EVP_MAC_free(mac); }
};
using evp_mac_ptr = std::unique_ptr<EVP_MAC, evp_mac_deleter>;

struct evp_mac_ctx_deleter {
    void operator()(EVP_MAC_CTX* ctx) const noexcept { EVP_MAC_CTX_free(ctx); }
};
using evp_mac_ctx_ptr = std::unique_ptr<EVP_MAC_CTX, evp_mac_ctx_deleter>;

} // namespace portal_auth::detail
