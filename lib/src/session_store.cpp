#include <portal_auth/error.hpp>
#include <portal_auth/session_store.hpp>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <algorithm>
#include <deque>
#include <functional>
#include <stdexcept>
#include <utility>

#include "base64.hpp"

namespace portal_auth {
namespace {

constexpr std::size_t id_size = 8;
constexpr std::size_t secret_size = 16;
constexpr std::size_t token_bytes = id_size + secret_size;
// base64url without padding of 24 bytes.
constexpr std::size_t token_chars = token_bytes / 3 * 4;
// Bounds the walk along actor links so a malformed chain can never loop.
constexpr int max_actor_hops = 8;
// How many rotated refresh tokens per session are recognised as reuse.
constexpr std::size_t max_remembered_refresh = 16;

using secret = std::array<unsigned char, secret_size>;

void random_fill(unsigned char* out, std::size_t size) {
    if (RAND_bytes(out, static_cast<int>(size)) != 1)
        throw std::runtime_error("RAND_bytes failed");
}

session_id id_from_bytes(const unsigned char* raw) {
    session_id id = 0;
    for (std::size_t i = 0; i < id_size; ++i)
        id = (id << 8) | raw[i];
    return id;
}

session_id random_id() {
    for (;;) {
        unsigned char raw[id_size];
        random_fill(raw, sizeof raw);
        if (session_id id = id_from_bytes(raw); id != 0)
            return id;
    }
}

// A new session's id and both secrets from one RAND_bytes call: OpenSSL 3.0 pays a getpid()
// and a DRBG lock on every call, which made three calls most of the cost of create().
struct session_randomness {
    session_id id = 0;
    secret access{};
    secret refresh{};
};

session_randomness draw_session_randomness() {
    std::array<unsigned char, id_size + 2 * secret_size> raw;
    session_randomness out;
    while (out.id == 0) {
        random_fill(raw.data(), raw.size());
        out.id = id_from_bytes(raw.data());
    }
    std::copy_n(raw.begin() + id_size, secret_size, out.access.begin());
    std::copy_n(raw.begin() + id_size + secret_size, secret_size, out.refresh.begin());
    OPENSSL_cleanse(raw.data(), raw.size());
    return out;
}

std::string encode_token(session_id id, const secret& s) {
    std::array<unsigned char, token_bytes> raw;
    for (std::size_t i = 0; i < id_size; ++i)
        raw[i] = static_cast<unsigned char>(id >> (8 * (id_size - 1 - i)));
    std::copy(s.begin(), s.end(), raw.begin() + id_size);
    return base64url_encode(raw);
}

struct decoded_token {
    session_id id = 0;
    secret secret_part{};
};

std::optional<decoded_token> decode_token(std::string_view token) {
    if (token.size() != token_chars)
        return std::nullopt;
    auto raw = base64url_decode(token);
    if (!raw || raw->size() != token_bytes)
        return std::nullopt;
    decoded_token out;
    out.id = id_from_bytes(raw->data());
    std::copy(raw->begin() + id_size, raw->end(), out.secret_part.begin());
    return out;
}

bool same_secret(const secret& a, const secret& b) noexcept {
    return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

clock_type::time_point capped_expiry(clock_type::time_point now, std::chrono::seconds ttl,
                                     const std::optional<clock_type::time_point>& not_after) {
    clock_type::time_point expiry = now + ttl;
    if (not_after && *not_after < expiry)
        expiry = *not_after;
    return expiry;
}

// Kept small so a million sessions stay around 100 MiB: the rarely used impersonation fields
// live in a separate allocation only for sessions that have them.
struct session_record {
    struct extra_fields {
        std::optional<impersonator_info> impersonator;
        std::optional<clock_type::time_point> not_after;
        // Refresh secrets this session has rotated away from: presenting one again means the
        // token was copied, so the whole session is revoked.
        std::vector<secret> rotated_refresh;
    };

    bool was_rotated(const secret& presented) const noexcept {
        if (!extra)
            return false;
        bool found = false;
        for (const secret& old : extra->rotated_refresh)
            found |= same_secret(old, presented);
        return found;
    }

    void remember_rotated(const secret& old) {
        if (!extra)
            extra = std::make_unique<extra_fields>();
        auto& list = extra->rotated_refresh;
        if (list.size() == max_remembered_refresh)
            list.erase(list.begin());
        list.push_back(old);
    }

    secret access;
    secret refresh;
    customer_id customer = 0;
    profile_id profile = 0;
    clock_type::time_point expires_at;
    std::unique_ptr<extra_fields> extra;

    std::optional<session_id> actor() const noexcept {
        if (extra && extra->impersonator)
            return extra->impersonator->actor_session;
        return std::nullopt;
    }

    std::optional<clock_type::time_point> not_after() const noexcept {
        return extra ? extra->not_after : std::nullopt;
    }

    session_data data() const {
        session_data d;
        d.customer = customer;
        d.profile = profile;
        if (extra) {
            d.impersonator = extra->impersonator;
            d.not_after = extra->not_after;
        }
        return d;
    }
};

} // namespace

struct session_store::shard {
    std::mutex mutex;
    std::unordered_map<session_id, session_record> sessions;
};

namespace {

struct jti_hash {
    using is_transparent = void; // find() by string_view, without a temporary string
    std::size_t operator()(std::string_view jti) const noexcept {
        return std::hash<std::string_view>{}(jti);
    }
};

struct held_grant {
    impersonation_grant grant;
    bool redeemed = false;
};

// Expired grants dropped by each add_grant: more than one, so that the table shrinks back
// after a burst.
constexpr std::size_t expired_dropped_per_add = 2;

} // namespace

// Grants stay until they expire, redeemed or not, and leave in issue order: with one token TTL
// that is expiry order, so expired grants are always at the front of `by_issue` and are dropped
// without scanning the live ones. (Were the clock to step back, a grant behind a later one
// would wait for it; redemption checks expiry itself.)
struct session_store::grant_shard {
    mutable std::mutex mutex;
    std::unordered_map<std::string, held_grant, jti_hash, std::equal_to<>> grants;
    std::deque<const std::string*> by_issue; // keys of `grants`; nodes do not move on rehash

    // Drops expired grants from the front, at most `limit` of them.
    void drop_expired(clock_type::time_point now, std::size_t limit) {
        for (; limit > 0 && !by_issue.empty(); --limit) {
            auto it = grants.find(*by_issue.front());
            if (now < it->second.grant.expires_at)
                return;
            by_issue.pop_front();
            grants.erase(it);
        }
    }
};

session_store::session_store(std::size_t shard_count) {
    const std::size_t count = std::max<std::size_t>(shard_count, 1);
    shards_.reserve(count);
    grant_shards_.reserve(count);
    for (std::size_t i = 0; i < count; ++i) {
        shards_.push_back(std::make_unique<shard>());
        grant_shards_.push_back(std::make_unique<grant_shard>());
    }
}

session_store::grant_shard& session_store::grant_shard_for(std::string_view jti) const noexcept {
    return *grant_shards_[jti_hash{}(jti) % grant_shards_.size()];
}

session_store::~session_store() = default;

session_store::shard& session_store::shard_for(session_id id) const noexcept {
    return *shards_[id % shards_.size()];
}

issued_tokens session_store::create(session_data data, clock_type::time_point now,
                                    std::chrono::seconds ttl) {
    const session_randomness fresh = draw_session_randomness();
    session_record rec;
    rec.access = fresh.access;
    rec.refresh = fresh.refresh;
    rec.customer = data.customer;
    rec.profile = data.profile;
    rec.expires_at = capped_expiry(now, ttl, data.not_after);
    if (data.impersonator || data.not_after) {
        rec.extra = std::make_unique<session_record::extra_fields>(
            session_record::extra_fields{std::move(data.impersonator), data.not_after});
    }

    const secret access = rec.access;
    const secret refresh = rec.refresh;
    issued_tokens out;
    out.expires_at = rec.expires_at;
    for (session_id id = fresh.id;; id = random_id()) {
        shard& s = shard_for(id);
        std::lock_guard lock(s.mutex);
        // A collision of random 64-bit ids is practically impossible, but must never merge
        // two sessions.
        auto [it, inserted] = s.sessions.try_emplace(id, std::move(rec));
        if (inserted) {
            out.id = id;
            break;
        }
    }
    out.access_token = encode_token(out.id, access);
    out.refresh_token = encode_token(out.id, refresh);
    return out;
}

std::optional<session_snapshot>
session_store::find_by_access_token(std::string_view token, clock_type::time_point now) const {
    auto decoded = decode_token(token);
    if (!decoded)
        return std::nullopt;

    session_snapshot snapshot;
    std::optional<session_id> actor;
    {
        shard& s = shard_for(decoded->id);
        std::lock_guard lock(s.mutex);
        auto it = s.sessions.find(decoded->id);
        if (it == s.sessions.end())
            return std::nullopt;
        const session_record& rec = it->second;
        if (!same_secret(rec.access, decoded->secret_part) || !(now < rec.expires_at))
            return std::nullopt;
        snapshot.id = decoded->id;
        snapshot.data = rec.data();
        snapshot.expires_at = rec.expires_at;
        actor = rec.actor();
    }
    // Checked after releasing this shard: two shard locks are never held at once.
    if (actor && !is_live(*actor, now))
        return std::nullopt;
    return snapshot;
}

bool session_store::is_live(session_id id, clock_type::time_point now) const {
    session_id current = id;
    for (int hop = 0; hop < max_actor_hops; ++hop) {
        std::optional<session_id> actor;
        {
            shard& s = shard_for(current);
            std::lock_guard lock(s.mutex);
            auto it = s.sessions.find(current);
            if (it == s.sessions.end() || !(now < it->second.expires_at))
                return false;
            actor = it->second.actor();
        }
        if (!actor)
            return true;
        current = *actor;
    }
    return false;
}

boost::system::result<issued_tokens> session_store::refresh(std::string_view refresh_token,
                                                            clock_type::time_point now,
                                                            std::chrono::seconds ttl) {
    auto decoded = decode_token(refresh_token);
    if (!decoded)
        return errc::invalid_refresh_token;
    const session_randomness fresh = draw_session_randomness();
    const secret& new_access = fresh.access;
    const secret& new_refresh = fresh.refresh;
    shard& s = shard_for(decoded->id);

    // Checks the presented token against the record and rotates it; the caller holds the
    // shard lock. A rotated-away token revokes the session (token theft: OAuth 2.0 BCP).
    auto check_and_rotate = [&](decltype(s.sessions.begin()) it,
                                bool rotate) -> boost::system::result<issued_tokens> {
        session_record& rec = it->second;
        if (!same_secret(rec.refresh, decoded->secret_part)) {
            if (!rec.was_rotated(decoded->secret_part))
                return errc::invalid_refresh_token;
            s.sessions.erase(it);
            return errc::refresh_token_reused;
        }
        if (!(now < rec.expires_at))
            return errc::invalid_refresh_token;
        if (!rotate)
            return issued_tokens{};
        rec.remember_rotated(rec.refresh);
        rec.access = new_access;
        rec.refresh = new_refresh;
        rec.expires_at = capped_expiry(now, ttl, rec.not_after());
        return issued_tokens{decoded->id, encode_token(decoded->id, new_access),
                             encode_token(decoded->id, new_refresh), rec.expires_at};
    };

    std::optional<session_id> actor;
    {
        std::lock_guard lock(s.mutex);
        auto it = s.sessions.find(decoded->id);
        if (it == s.sessions.end())
            return errc::invalid_refresh_token;
        actor = it->second.actor();
        auto checked = check_and_rotate(it, !actor);
        if (!checked || !actor)
            return checked;
    }

    // Impersonated: the actor's shard is consulted without holding this one.
    if (!is_live(*actor, now)) {
        revoke(decoded->id);
        return errc::invalid_refresh_token;
    }

    std::lock_guard lock(s.mutex);
    auto it = s.sessions.find(decoded->id);
    // Re-checked: a concurrent refresh or revoke may have won in the meantime.
    if (it == s.sessions.end())
        return errc::invalid_refresh_token;
    return check_and_rotate(it, true);
}

bool session_store::switch_profile(session_id id, profile_id profile) {
    shard& s = shard_for(id);
    std::lock_guard lock(s.mutex);
    auto it = s.sessions.find(id);
    if (it == s.sessions.end())
        return false;
    it->second.profile = profile;
    return true;
}

bool session_store::revoke(session_id id) {
    shard& s = shard_for(id);
    std::lock_guard lock(s.mutex);
    return s.sessions.erase(id) != 0;
}

void session_store::add_grant(std::string jti, impersonation_grant grant,
                              clock_type::time_point now) {
    grant_shard& g = grant_shard_for(jti);
    std::lock_guard lock(g.mutex);
    g.drop_expired(now, expired_dropped_per_add);
    auto [it, inserted] = g.grants.try_emplace(std::move(jti));
    it->second = held_grant{std::move(grant)};
    if (inserted) // a repeated jti (never, with random ones) keeps its one place in the queue
        g.by_issue.push_back(&it->first);
}

std::optional<impersonation_grant> session_store::redeem_grant(std::string_view jti,
                                                               clock_type::time_point now) {
    grant_shard& g = grant_shard_for(jti);
    std::lock_guard lock(g.mutex);
    auto it = g.grants.find(jti);
    if (it == g.grants.end() || it->second.redeemed)
        return std::nullopt;
    if (it->second.grant.withdrawn_because) {
        if (!(now < it->second.grant.expires_at))
            return std::nullopt;
        return it->second.grant;
    }
    // Single use: a late redemption still consumes the grant.
    it->second.redeemed = true;
    if (!(now < it->second.grant.expires_at))
        return std::nullopt;
    return it->second.grant;
}

bool session_store::withdraw_grant(std::string_view jti, const std::string& because) {
    grant_shard& g = grant_shard_for(jti);
    std::lock_guard lock(g.mutex);
    auto it = g.grants.find(jti);
    if (it == g.grants.end() || it->second.redeemed || it->second.grant.withdrawn_because)
        return false;
    it->second.grant.withdrawn_because = because;
    return true;
}

std::vector<std::pair<std::string, impersonation_grant>> session_store::withdraw_grants(
    const std::function<bool(const impersonation_grant&)>& should_withdraw,
    const std::string& because, clock_type::time_point now) {
    std::vector<std::pair<std::string, impersonation_grant>> withdrawn;
    for (const auto& g : grant_shards_) {
        std::lock_guard lock(g->mutex);
        for (auto& [jti, held] : g->grants) {
            if (held.redeemed || held.grant.withdrawn_because || !(now < held.grant.expires_at) ||
                !should_withdraw(held.grant))
                continue;
            held.grant.withdrawn_because = because;
            withdrawn.emplace_back(jti, held.grant);
        }
    }
    return withdrawn;
}

std::vector<session_snapshot>
session_store::revoke_matching(const std::function<bool(const session_snapshot&)>& should_end) {
    std::vector<session_snapshot> ended;
    for (const auto& s : shards_) {
        std::lock_guard lock(s->mutex);
        for (auto it = s->sessions.begin(); it != s->sessions.end();) {
            session_snapshot snapshot{it->first, it->second.data(), it->second.expires_at};
            if (should_end(snapshot)) {
                ended.push_back(std::move(snapshot));
                it = s->sessions.erase(it);
            } else {
                ++it;
            }
        }
    }
    return ended;
}

std::size_t session_store::sweep(clock_type::time_point now) {
    std::size_t removed = 0;
    std::vector<std::pair<session_id, session_id>> impersonated; // (session, actor)
    for (const auto& s : shards_) {
        std::lock_guard lock(s->mutex);
        for (auto it = s->sessions.begin(); it != s->sessions.end();) {
            if (!(now < it->second.expires_at)) {
                it = s->sessions.erase(it);
                ++removed;
                continue;
            }
            if (auto actor = it->second.actor())
                impersonated.emplace_back(it->first, *actor);
            ++it;
        }
    }
    // Second pass without any lock held while asking about the actors.
    for (const auto& [id, actor] : impersonated) {
        if (!is_live(actor, now) && revoke(id))
            ++removed;
    }

    for (const auto& g : grant_shards_) {
        std::lock_guard lock(g->mutex);
        g->drop_expired(now, g->by_issue.size());
    }
    return removed;
}

namespace {

// The sum of `count(shard)` over all shards, each read under its own lock.
template <class Shards, class Count> std::size_t count_locked(const Shards& shards, Count count) {
    std::size_t total = 0;
    for (const auto& s : shards) {
        std::lock_guard lock(s->mutex);
        total += count(*s);
    }
    return total;
}

} // namespace

std::size_t session_store::grant_count() const {
    return count_locked(grant_shards_, [](const grant_shard& g) { return g.grants.size(); });
}

std::size_t session_store::size() const {
    return count_locked(shards_, [](const shard& s) { return s.sessions.size(); });
}

} // namespace portal_auth
