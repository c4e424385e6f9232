#include <portal_auth/error.hpp>
#include <portal_auth/token_signer.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <stdexcept>

#include "base64.hpp"
#include "openssl_handles.hpp"

namespace portal_auth {
namespace {

constexpr std::size_t min_secret_size = 32;
constexpr std::size_t max_kid_size = 64;
constexpr std::size_t hmac_size = 32;
// Our own tokens stay far below this; the cap bounds the work spent on hostile input.
constexpr std::size_t max_token_size = 4096;

bool is_kid_char(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

bool is_blank(char c) {
    return c == ' ' || c == '\t';
}

std::vector<std::string_view> split_fields(std::string_view line) {
    std::vector<std::string_view> fields;
    std::size_t i = 0;
    while (i < line.size()) {
        while (i < line.size() && is_blank(line[i])) {
            ++i;
        }
        const std::size_t start = i;
        while (i < line.size() && !is_blank(line[i])) {
            ++i;
        }
        if (i > start) {
            fields.push_back(line.substr(start, i - start));
        }
    }
    return fields;
}

std::string_view as_text(const bytes& data) {
    return {reinterpret_cast<const char*>(data.data()), data.size()};
}

// Parses a JSON object without throwing on malformed input.
boost::system::result<boost::json::object> parse_object(const bytes& text) {
    boost::system::error_code ec;
    boost::json::value value = boost::json::parse(as_text(text), ec);
    if (ec || !value.is_object()) {
        return errc::malformed_token;
    }
    return std::move(value.get_object());
}

// Dups the keyed context so that concurrent callers never share mutable MAC state.
bool compute_hmac(const EVP_MAC_CTX* prepared, std::string_view data,
                  unsigned char (&out)[hmac_size]) {
    const detail::evp_mac_ctx_ptr ctx(EVP_MAC_CTX_dup(prepared));
    std::size_t out_size = 0;
    return ctx &&
           EVP_MAC_update(ctx.get(), reinterpret_cast<const unsigned char*>(data.data()),
                          data.size()) == 1 &&
           EVP_MAC_final(ctx.get(), out, &out_size, hmac_size) == 1 && out_size == hmac_size;
}

bool is_integer(const boost::json::value& value) {
    return value.is_int64() || value.is_uint64();
}

} // namespace

boost::system::result<std::vector<signing_key>> parse_signing_keys(std::string_view text,
                                                                   std::string& error_detail) {
    error_detail.clear();
    std::vector<signing_key> keys;
    std::vector<std::size_t> key_lines;
    const auto fail = [&](std::size_t line_number, std::string message) {
        error_detail = "line " + std::to_string(line_number) + ": " + std::move(message);
        return boost::system::result<std::vector<signing_key>>(errc::invalid_signing_key);
    };

    std::size_t line_number = 0;
    while (!text.empty()) {
        ++line_number;
        const std::size_t end = text.find('\n');
        std::string_view line = text.substr(0, end);
        text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
        if (line.ends_with('\r')) {
            line.remove_suffix(1);
        }

        const auto fields = split_fields(line);
        if (fields.empty()) {
            continue;
        }
        // Messages never quote the line: a swapped or mangled line may put the secret anywhere.
        if (fields.size() != 2) {
            return fail(line_number, "expected \"KID SECRET\", found " +
                                         std::to_string(fields.size()) + " fields");
        }
        const std::string_view kid = fields[0];
        if (!is_valid_key_id(kid)) {
            return fail(line_number, "key id must be 1 to 64 characters of [A-Za-z0-9._-]");
        }
        auto secret = base64url_decode(fields[1]);
        if (!secret) {
            return fail(line_number, "secret is not base64url without padding");
        }
        if (secret->size() < min_secret_size) {
            return fail(line_number, "secret decodes to " + std::to_string(secret->size()) +
                                         " bytes, at least 32 are required");
        }
        for (std::size_t i = 0; i < keys.size(); ++i) {
            if (keys[i].kid == kid) {
                return fail(line_number, "duplicate key id (first defined on line " +
                                             std::to_string(key_lines[i]) + ")");
            }
        }
        keys.push_back({std::string(kid), std::move(*secret)});
        key_lines.push_back(line_number);
    }
    if (keys.empty()) {
        error_detail = "no keys found";
        return errc::invalid_signing_key;
    }
    return keys;
}

bool is_valid_key_id(std::string_view kid) noexcept {
    return !kid.empty() && kid.size() <= max_kid_size &&
           std::all_of(kid.begin(), kid.end(), is_kid_char);
}

signing_key make_random_signing_key(std::string kid) {
    signing_key key{std::move(kid), bytes(min_secret_size)};
    if (RAND_bytes(key.secret.data(), static_cast<int>(key.secret.size())) != 1) {
        throw std::runtime_error("RAND_bytes failed");
    }
    return key;
}

std::string format_signing_key(const signing_key& key) {
    return key.kid + " " + base64url_encode(key.secret);
}

struct token_signer::impl {
    struct prepared_key {
        std::string kid;
        detail::evp_mac_ctx_ptr ctx; // keyed HMAC-SHA256, only ever dup'ed after construction
    };

    detail::evp_mac_ptr mac;
    std::vector<prepared_key> keys; // keys.front() signs
    std::string header_prefix;      // base64url(header) + "."

    const prepared_key* find(std::string_view kid) const {
        for (const auto& key : keys) {
            if (key.kid == kid) {
                return &key;
            }
        }
        return nullptr;
    }
};

token_signer::token_signer(std::vector<signing_key> keys) : impl_(std::make_unique<impl>()) {
    if (keys.empty()) {
        throw std::invalid_argument("token_signer needs at least one key");
    }
    impl_->mac.reset(EVP_MAC_fetch(nullptr, "HMAC", nullptr));
    if (!impl_->mac) {
        throw std::runtime_error("EVP_MAC_fetch(HMAC) failed");
    }
    char digest[] = "SHA256";
    const OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_end(),
    };
    for (auto& key : keys) {
        if (key.secret.size() < min_secret_size) {
            throw std::invalid_argument("signing key secret shorter than 32 bytes");
        }
        if (impl_->find(key.kid) != nullptr) {
            throw std::invalid_argument("duplicate signing key id");
        }
        detail::evp_mac_ctx_ptr ctx(EVP_MAC_CTX_new(impl_->mac.get()));
        if (!ctx || EVP_MAC_init(ctx.get(), key.secret.data(), key.secret.size(), params) != 1) {
            throw std::runtime_error("HMAC-SHA256 key setup failed");
        }
        // The context holds its own copy; ours is no longer needed.
        OPENSSL_cleanse(key.secret.data(), key.secret.size());
        impl_->keys.push_back({std::move(key.kid), std::move(ctx)});
    }

    // Built once: key order is part of the token format.
    boost::json::object header;
    header["alg"] = "HS256";
    header["typ"] = "JWT";
    header["kid"] = impl_->keys.front().kid;
    impl_->header_prefix = base64url_encode(boost::json::serialize(header)) + ".";
}

token_signer::~token_signer() = default;

std::string token_signer::sign(const boost::json::object& claims) const {
    const std::string payload = base64url_encode(boost::json::serialize(claims));
    std::string token;
    token.reserve(impl_->header_prefix.size() + payload.size() + 1 + 43);
    token += impl_->header_prefix;
    token += payload;
    unsigned char mac[hmac_size];
    if (!compute_hmac(impl_->keys.front().ctx.get(), token, mac)) {
        throw std::runtime_error("HMAC-SHA256 failed");
    }
    token += '.';
    token += base64url_encode(std::span<const unsigned char>(mac, hmac_size));
    return token;
}

boost::system::result<boost::json::object> token_signer::verify(std::string_view token) const {
    if (token.size() > max_token_size) {
        return errc::malformed_token;
    }
    const std::size_t first = token.find('.');
    const std::size_t second = first == std::string_view::npos ? first : token.find('.', first + 1);
    if (second == std::string_view::npos || token.find('.', second + 1) != std::string_view::npos) {
        return errc::malformed_token;
    }
    const std::string_view header_text = token.substr(0, first);
    const std::string_view payload_text = token.substr(first + 1, second - first - 1);
    const std::string_view signature_text = token.substr(second + 1);
    if (header_text.empty() || payload_text.empty() || signature_text.empty()) {
        return errc::malformed_token;
    }

    auto header_bytes = base64url_decode(header_text);
    auto payload_bytes = base64url_decode(payload_text);
    auto signature = base64url_decode(signature_text);
    if (!header_bytes || !payload_bytes || !signature) {
        return errc::malformed_token;
    }
    auto header = parse_object(*header_bytes);
    if (!header) {
        return header.error();
    }
    // Only the exact value: "none", other algorithms and case variants are all refused.
    const boost::json::value* alg = header->if_contains("alg");
    if (alg == nullptr || !alg->is_string() || alg->get_string() != "HS256") {
        return errc::unsupported_algorithm;
    }
    const boost::json::value* kid = header->if_contains("kid");
    const impl::prepared_key* key =
        kid != nullptr && kid->is_string() ? impl_->find(kid->get_string()) : nullptr;
    if (key == nullptr) {
        return errc::unknown_key_id;
    }

    if (signature->size() != hmac_size) {
        return errc::bad_signature;
    }
    unsigned char expected[hmac_size];
    if (!compute_hmac(key->ctx.get(), token.substr(0, second), expected)) {
        return errc::openssl_failure;
    }
    if (CRYPTO_memcmp(expected, signature->data(), hmac_size) != 0) {
        return errc::bad_signature;
    }
    // The payload is only parsed once it is known to be ours.
    return parse_object(*payload_bytes);
}

const std::string& token_signer::signing_kid() const noexcept {
    return impl_->keys.front().kid;
}

boost::system::error_code check_registered_claims(const boost::json::object& claims,
                                                  std::string_view issuer,
                                                  std::string_view audience,
                                                  std::chrono::system_clock::time_point now) {
    const boost::json::value* iss = claims.if_contains("iss");
    if (iss == nullptr || !iss->is_string()) {
        return errc::missing_claim;
    }
    if (iss->get_string() != issuer) {
        return errc::wrong_issuer;
    }

    const boost::json::value* aud = claims.if_contains("aud");
    if (aud == nullptr || !(aud->is_string() || aud->is_array())) {
        return errc::missing_claim;
    }
    if (aud->is_string()) {
        if (aud->get_string() != audience) {
            return errc::wrong_audience;
        }
    } else {
        const auto& list = aud->get_array();
        const bool found = std::any_of(list.begin(), list.end(), [&](const auto& entry) {
            return entry.is_string() && entry.get_string() == audience;
        });
        if (!found) {
            return errc::wrong_audience;
        }
    }

    const boost::json::value* exp = claims.if_contains("exp");
    const boost::json::value* iat = claims.if_contains("iat");
    if (exp == nullptr || !is_integer(*exp) || (iat != nullptr && !is_integer(*iat))) {
        return errc::missing_claim;
    }
    const std::int64_t now_s =
        std::chrono::floor<std::chrono::seconds>(now.time_since_epoch()).count();
    const bool expired = exp->is_uint64()
                             ? now_s >= 0 && static_cast<std::uint64_t>(now_s) >= exp->get_uint64()
                             : now_s >= exp->get_int64();
    if (expired) {
        return errc::token_expired;
    }
    return {};
}

} // namespace portal_auth
