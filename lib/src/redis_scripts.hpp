// The Lua scripts of the Redis store: every change that must be atomic is one script, loaded
// with SCRIPT LOAD on each connection and run with EVALSHA (SCRIPT LOAD again on NOSCRIPT).
//
// Conventions: ARGV[1] is the key prefix. Times travel as decimal strings (session and grant
// times in ms since the epoch, counter times in µs) and are only compared in Lua, never
// computed and written back, so that no number is reformatted as a float. A session is the hash
// <prefix>s:<id>; the sessions derived from it are the set <prefix>s:<id>:d.
#pragma once

#include <string>
#include <string_view>

namespace portal_auth::detail::redis_scripts {

// Shared functions, prepended to the scripts that need them.
inline constexpr std::string_view prelude = R"lua(
local function session_key(prefix, id) return prefix .. 's:' .. id end

-- Whether the session exists, has not expired at `now`, and its actors (at most 8) are live.
local function live(prefix, id, now)
  for hop = 1, 8 do
    local f = redis.call('HMGET', session_key(prefix, id), 'e', 'act')
    if not f[1] or tonumber(f[1]) <= now then return false end
    if not f[2] then return true end
    id = f[2]
  end
  return false
end

-- Deletes the session and, depth first, every session derived from it; 1 if it existed.
local function end_session(prefix, id, depth)
  local key = session_key(prefix, id)
  local actor = redis.call('HGET', key, 'act')
  local existed = redis.call('DEL', key)
  if actor then redis.call('SREM', session_key(prefix, actor) .. ':d', id) end
  local links = key .. ':d'
  if depth < 8 then
    for _, child in ipairs(redis.call('SMEMBERS', links)) do
      end_session(prefix, child, depth + 1)
    end
  end
  redis.call('DEL', links)
  return existed
end

-- PEXPIREAT unless the key already lives at least that long.
local function expire_not_before(key, at)
  local current = redis.call('PEXPIRETIME', key)
  if current < 0 or current < tonumber(at) then redis.call('PEXPIREAT', key, at) end
end
)lua";

// KEYS[1] session. ARGV: prefix, id, access digest, refresh digest, customer, profile,
// expires (ms), not_after (ms or ''), actor session ('' or id), impersonator JSON ('' or).
// 1 when created, 0 when the id is taken.
inline constexpr std::string_view create_session = R"lua(
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'a', ARGV[3], 'r', ARGV[4], 'c', ARGV[5], 'p', ARGV[6],
           'e', ARGV[7], 'o', '')
if ARGV[8] ~= '' then redis.call('HSET', KEYS[1], 'n', ARGV[8]) end
if ARGV[9] ~= '' then
  redis.call('HSET', KEYS[1], 'act', ARGV[9], 'imp', ARGV[10])
  local links = session_key(ARGV[1], ARGV[9]) .. ':d'
  redis.call('SADD', links, ARGV[2])
  local actor_expires = redis.call('HGET', session_key(ARGV[1], ARGV[9]), 'e')
  expire_not_before(links, actor_expires or ARGV[7])
end
redis.call('PEXPIREAT', KEYS[1], ARGV[7])
return 1
)lua";

// KEYS[1] session. ARGV: prefix, access digest, now (ms).
// {expires, customer, profile, not_after or '', impersonator JSON or ''}, or nil.
inline constexpr std::string_view find_session = R"lua(
local now = tonumber(ARGV[3])
local f = redis.call('HMGET', KEYS[1], 'a', 'e', 'c', 'p', 'n', 'act', 'imp')
if not f[1] or f[1] ~= ARGV[2] or tonumber(f[2]) <= now then return false end
if f[6] and not live(ARGV[1], f[6], now) then return false end
return {f[2], f[3], f[4], f[5] or '', f[7] or ''}
)lua";

// ARGV: prefix, id, now (ms). 1 or 0.
inline constexpr std::string_view is_live = R"lua(
if live(ARGV[1], ARGV[2], tonumber(ARGV[3])) then return 1 end
return 0
)lua";

// KEYS[1] session. ARGV: prefix, id, presented refresh digest, now (ms), now + ttl (ms),
// new access digest, new refresh digest.
// {'ok', expires}, {'invalid'}, or {'reused'} (the session and those derived from it ended).
inline constexpr std::string_view refresh = R"lua(
local f = redis.call('HMGET', KEYS[1], 'r', 'e', 'n', 'act', 'o')
if not f[1] then return {'invalid'} end
if f[1] ~= ARGV[3] then
  if string.find(f[5] or '', ARGV[3] .. ',', 1, true) then
    end_session(ARGV[1], ARGV[2], 0)
    return {'reused'}
  end
  return {'invalid'}
end
local now = tonumber(ARGV[4])
if tonumber(f[2]) <= now then return {'invalid'} end
if f[4] and not live(ARGV[1], f[4], now) then
  end_session(ARGV[1], ARGV[2], 0)
  return {'invalid'}
end
local expires = ARGV[5]
if f[3] and tonumber(f[3]) < tonumber(expires) then expires = f[3] end
-- The last 16 refresh digests (64 hex digits and a comma each) are remembered as reuse.
local old = (f[5] or '') .. f[1] .. ','
if #old > 16 * 65 then old = string.sub(old, #old - 16 * 65 + 1) end
redis.call('HSET', KEYS[1], 'a', ARGV[6], 'r', ARGV[7], 'e', expires, 'o', old)
redis.call('PEXPIREAT', KEYS[1], expires)
local links = KEYS[1] .. ':d'
if redis.call('EXISTS', links) == 1 then expire_not_before(links, expires) end
return {'ok', expires}
)lua";

// KEYS[1] session. ARGV: profile. 1 when switched, 0 when the session is gone.
inline constexpr std::string_view switch_profile = R"lua(
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'p', ARGV[1])
return 1
)lua";

// ARGV: prefix, id. 1 if the session existed.
inline constexpr std::string_view revoke = R"lua(
return end_session(ARGV[1], ARGV[2], 0)
)lua";

// KEYS: the counters (sorted sets of attempt times in µs). ARGV[1] now (µs), ARGV[2] a nonce
// that makes members unique; then per key i: ARGV[3i] max, ARGV[3i+1] the window's start
// (µs, excluded), ARGV[3i+2] when the counter may expire (ms).
// {-1, '0'} when counted against every key; {i (0-based), oldest counted time} when key i is
// at its limit and nothing was counted.
inline constexpr std::string_view reserve = R"lua(
for i = 1, #KEYS do
  local max = tonumber(ARGV[3 * i])
  if max > 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', ARGV[3 * i + 1])
    local n = redis.call('ZCARD', KEYS[i])
    if n >= max then
      local oldest = redis.call('ZRANGE', KEYS[i], n - max, n - max, 'WITHSCORES')
      return {i - 1, oldest[2]}
    end
  end
end
for i = 1, #KEYS do
  local max = tonumber(ARGV[3 * i])
  if max > 0 then
    redis.call('ZADD', KEYS[i], ARGV[1], ARGV[1] .. ':' .. ARGV[2] .. ':' .. i)
    redis.call('ZREMRANGEBYRANK', KEYS[i], 0, -(max + 1))
    expire_not_before(KEYS[i], ARGV[3 * i + 2])
  end
end
return {-1, '0'}
)lua";

// KEYS: the counters. ARGV[i]: the time (µs) of the attempt to give back on key i.
inline constexpr std::string_view release = R"lua(
for i = 1, #KEYS do
  local found = redis.call('ZRANGEBYSCORE', KEYS[i], ARGV[i], ARGV[i])
  if #found > 0 then redis.call('ZREM', KEYS[i], found[#found]) end
end
return 1
)lua";

// KEYS[1] the counter. ARGV: max, the window's start (µs, excluded).
// The oldest counted time when blocked, nil when not.
inline constexpr std::string_view blocked_for = R"lua(
local max = tonumber(ARGV[1])
local n = redis.call('ZCOUNT', KEYS[1], '(' .. ARGV[2], '+inf')
if n < max then return false end
local total = redis.call('ZCARD', KEYS[1])
local oldest = redis.call('ZRANGE', KEYS[1], total - max, total - max, 'WITHSCORES')
return oldest[2]
)lua";

// KEYS[1] the grant, KEYS[2] the index of grants by expiry. ARGV: jti, grant JSON,
// expires (ms), now (ms), prefix, record JSON, target customer, actor session.
// Also starts the impersonation record (issued), unless one has that id already.
inline constexpr std::string_view add_grant = R"lua(
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'g', ARGV[2], 'e', ARGV[3])
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[4])
local prefix = ARGV[5]
local record = prefix .. 'i:' .. ARGV[1]
if redis.call('EXISTS', record) == 0 then
  local seq = redis.call('INCR', prefix .. 'imp:seq')
  redis.call('HSET', record, 'j', ARGV[6], 'c', ARGV[7], 'as', ARGV[8], 'te', ARGV[3])
  redis.call('ZADD', prefix .. 'imp:all', seq, ARGV[1])
  redis.call('ZADD', prefix .. 'imp:c:' .. ARGV[7], seq, ARGV[1])
  redis.call('ZADD', prefix .. 'imp:open', seq, ARGV[1])
end
return 1
)lua";

// Impersonation records: <prefix>i:<id> is a hash: j the fixed part (JSON), c target customer,
// as actor session, te token expiry (ms); once started s session, sa started (ns), se session
// cap (ns); once ended ea ended (ns), er reason. Sorted sets by sequence: imp:all, imp:c:<c>,
// imp:open (not ended), imp:ended and imp:ended:c:<c> (bounded: 50 per customer, 10000 in all).
inline constexpr std::string_view records_prelude = R"lua(
local record_fields = {'j', 's', 'sa', 'se', 'ea', 'er'}

local function forget_record(prefix, id)
  local key = prefix .. 'i:' .. id
  local c = redis.call('HGET', key, 'c')
  redis.call('DEL', key)
  redis.call('ZREM', prefix .. 'imp:all', id)
  redis.call('ZREM', prefix .. 'imp:ended', id)
  if c then
    redis.call('ZREM', prefix .. 'imp:c:' .. c, id)
    redis.call('ZREM', prefix .. 'imp:ended:c:' .. c, id)
  end
end

-- Ends a record that has not ended: withdraws its unredeemed grant or ends its session. The
-- record's fields, or nil when unknown or ended already.
local function end_record(prefix, id, reason, now_ns)
  local key = prefix .. 'i:' .. id
  local f = redis.call('HMGET', key, 'j', 'ea', 's', 'c')
  if not f[1] or f[2] then return nil end
  redis.call('HSET', key, 'ea', now_ns, 'er', reason)
  redis.call('ZREM', prefix .. 'imp:open', id)
  if f[3] then
    end_session(prefix, f[3], 0)
  else
    local grant = prefix .. 'g:' .. id
    local g = redis.call('HMGET', grant, 'g', 'w', 'x')
    if g[1] and not g[2] and not g[3] then redis.call('HSET', grant, 'w', reason) end
  end
  local out = redis.call('HMGET', key, unpack(record_fields))
  local seq = redis.call('INCR', prefix .. 'imp:seq')
  local of_customer = prefix .. 'imp:ended:c:' .. f[4]
  redis.call('ZADD', of_customer, seq, id)
  redis.call('ZADD', prefix .. 'imp:ended', seq, id)
  if redis.call('ZCARD', of_customer) > 50 then
    forget_record(prefix, redis.call('ZRANGE', of_customer, 0, 0)[1])
  end
  while redis.call('ZCARD', prefix .. 'imp:ended') > 10000 do
    forget_record(prefix, redis.call('ZRANGE', prefix .. 'imp:ended', 0, 0)[1])
  end
  return out
end
)lua";

// ARGV: prefix, id, session, started (ns), session cap (ns). 1 when started.
inline constexpr std::string_view start_impersonation = R"lua(
local key = ARGV[1] .. 'i:' .. ARGV[2]
local f = redis.call('HMGET', key, 'j', 'sa', 'ea')
if not f[1] or f[2] or f[3] then return 0 end
redis.call('HSET', key, 's', ARGV[3], 'sa', ARGV[4], 'se', ARGV[5])
return 1
)lua";

// ARGV: prefix, id, reason, now (ns). The ended record's fields, or nil.
inline constexpr std::string_view end_impersonation = R"lua(
return end_record(ARGV[1], ARGV[2], ARGV[3], ARGV[4])
)lua";

// ARGV: prefix, actor session, reason, now (ns). {id, fields...} per record ended.
inline constexpr std::string_view end_impersonations_of_actor = R"lua(
local out = {}
for _, id in ipairs(redis.call('ZRANGE', ARGV[1] .. 'imp:open', 0, -1)) do
  if redis.call('HGET', ARGV[1] .. 'i:' .. id, 'as') == ARGV[2] then
    local r = end_record(ARGV[1], id, ARGV[3], ARGV[4])
    if r then out[#out + 1] = id; out[#out + 1] = r end
  end
end
return out
)lua";

// ARGV: prefix, now (ms), now (ns). Ends active records whose session is no longer live
// ("expired") and issued ones whose token has expired ("not_redeemed"): {id, fields} each.
inline constexpr std::string_view expire_impersonations = R"lua(
local out = {}
local now = tonumber(ARGV[2])
for _, id in ipairs(redis.call('ZRANGE', ARGV[1] .. 'imp:open', 0, -1)) do
  local f = redis.call('HMGET', ARGV[1] .. 'i:' .. id, 's', 'te')
  local reason = nil
  if f[1] then
    if not live(ARGV[1], f[1], now) then reason = 'expired' end
  elseif not f[2] or tonumber(f[2]) <= now then
    reason = 'not_redeemed'
  end
  if reason then
    local r = end_record(ARGV[1], id, reason, ARGV[3])
    if r then out[#out + 1] = id; out[#out + 1] = r end
  end
end
return out
)lua";

// KEYS[1] the grant. ARGV: now (ms). {grant JSON} or {grant JSON, withdrawn because}, or nil.
// Single use: the first redemption marks it redeemed, even a late one.
inline constexpr std::string_view redeem_grant = R"lua(
local f = redis.call('HMGET', KEYS[1], 'g', 'e', 'w', 'x')
if not f[1] or f[4] then return false end
local expired = tonumber(f[2]) <= tonumber(ARGV[1])
if f[3] then
  if expired then return false end
  return {f[1], f[3]}
end
redis.call('HSET', KEYS[1], 'x', '1')
if expired then return false end
return {f[1]}
)lua";

// KEYS[1] the grant. ARGV: because, now (ms). 1 when this call withdrew it.
inline constexpr std::string_view withdraw_grant = R"lua(
local f = redis.call('HMGET', KEYS[1], 'g', 'e', 'w', 'x')
if not f[1] or f[3] or f[4] or tonumber(f[2]) <= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'w', ARGV[1])
return 1
)lua";

} // namespace portal_auth::detail::redis_scripts
