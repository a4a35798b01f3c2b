//! The Lua scripts: each touches the keys of one user (one `{user}` hash
//! tag, so one cluster slot) or one other key, and runs atomically.
//!
//! Record hashes hold: `u` user, `c` created (ms), `l` last seen (ms),
//! `ip`, `ua`, `fp` password fingerprint (hex), `g` groups (JSON), and `e`
//! the end reason once ended.

/// Device-limit check and insert.
/// KEYS: user index, new record.
/// ARGV: now, idle ms, absolute ms, watermark ms, fingerprint, max,
/// on full ("refuse" | "evict"), end-first hex or "", record key prefix,
/// new hex, record ttl ms, index ttl ms, channel, then the record's
/// field/value pairs.
/// Returns {"full", hex...} (live sessions, least recently used first) or
/// {"ok", evicted hex...}.
pub const INSERT: &str = r#"
local now, idle, abs, mark = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local fp, max, onfull, first = ARGV[5], tonumber(ARGV[6]), ARGV[7], ARGV[8]
local prefix, newhex, ttl, index_ttl, chan = ARGV[9], ARGV[10], tonumber(ARGV[11]), tonumber(ARGV[12]), ARGV[13]
local live, chosen = {}, false
for _, hex in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local f = redis.call('HMGET', prefix .. hex, 'c', 'l', 'fp', 'e')
  if not f[1] or f[4] then
    -- gone (expired) or ended: no longer the user's
    redis.call('SREM', KEYS[1], hex)
  else
    if hex == first then chosen = true end
    local c, l = tonumber(f[1]), tonumber(f[2])
    local quiet = now - l
    if quiet < 0 then quiet = 0 end
    local dead = f[3] ~= fp or c < mark or now - c >= abs or quiet >= idle
    if not dead then table.insert(live, {hex, l, c}) end
  end
end
table.sort(live, function(a, b)
  if a[2] ~= b[2] then return a[2] < b[2] end
  if a[3] ~= b[3] then return a[3] < b[3] end
  return a[1] < b[1]
end)
local doomed = {}
if chosen then table.insert(doomed, first) end
local counted = 0
for _, s in ipairs(live) do
  if not (chosen and s[1] == first) then counted = counted + 1 end
end
if max > 0 and counted >= max then
  if onfull == 'refuse' then
    local out = {'full'}
    for _, s in ipairs(live) do table.insert(out, s[1]) end
    return out
  end
  local excess = counted + 1 - max
  for _, s in ipairs(live) do
    if excess == 0 then break end
    if not (chosen and s[1] == first) then
      table.insert(doomed, s[1])
      excess = excess - 1
    end
  end
end
local out = {'ok'}
for _, hex in ipairs(doomed) do
  redis.call('SREM', KEYS[1], hex)
  if redis.call('HSETNX', prefix .. hex, 'e', 'evicted') == 1 then
    table.insert(out, hex)
    redis.call('PUBLISH', chan, 's:' .. hex)
  end
end
redis.call('SADD', KEYS[1], newhex)
redis.call('PEXPIRE', KEYS[1], index_ttl)
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], unpack(ARGV, 14))
redis.call('PEXPIRE', KEYS[2], ttl)
return out
"#;

/// Records activity; a record that is gone or ended stays so.
/// KEYS: record. ARGV: at, idle ms, absolute ms, margin ms.
pub const TOUCH: &str = r#"
local f = redis.call('HMGET', KEYS[1], 'c', 'l', 'e')
if not f[1] or f[3] then return 0 end
local at = tonumber(ARGV[1])
if tonumber(f[2]) < at then redis.call('HSET', KEYS[1], 'l', ARGV[1]) end
local ttl = tonumber(f[1]) + tonumber(ARGV[3]) - at
if tonumber(ARGV[2]) < ttl then ttl = tonumber(ARGV[2]) end
if ttl < 0 then ttl = 0 end
redis.call('PEXPIRE', KEYS[1], ttl + tonumber(ARGV[4]))
return 1
"#;

/// Ends a session, keeping a tombstone that says why, or (reason "")
/// forgets it. Returns the record as it was, or nil if it was gone or
/// already ended.
/// KEYS: record, user index. ARGV: reason or "", channel, hex.
pub const FINISH: &str = r#"
local f = redis.call('HGETALL', KEYS[1])
if #f == 0 then return false end
redis.call('SREM', KEYS[2], ARGV[3])
if ARGV[1] == '' then
  redis.call('DEL', KEYS[1])
elseif redis.call('HSETNX', KEYS[1], 'e', ARGV[1]) == 0 then
  return false
end
redis.call('PUBLISH', ARGV[2], 's:' .. ARGV[3])
return f
"#;

/// Moves a watermark forward, never back, and announces it.
/// KEYS: watermarks. ARGV: field, ms, channel.
pub const RAISE_MARK: &str = r#"
local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if tonumber(ARGV[2]) > cur then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
redis.call('PUBLISH', ARGV[3], 'm')
return 1
"#;

/// One more failure in a sliding window. KEYS: failures.
/// ARGV: now, window ms, unique member, most kept.
pub const FAILURE: &str = r#"
local now, window, cap = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local n = redis.call('ZCARD', KEYS[1])
if n >= cap then redis.call('ZREMRANGEBYRANK', KEYS[1], 0, n - cap) end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], window)
return redis.call('ZCARD', KEYS[1])
"#;

/// A ban that only ever lengthens. KEYS: ban. ARGV: until, ttl ms.
pub const BAN: &str = r#"
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > cur then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
return 1
"#;

/// A request's read on a cache miss, in one round trip: the watermarks,
/// the key's owner (its pointer), the record, and the touch when due (as
/// `TOUCH` does it, and the pointer's expiry with it). The record's key
/// is built here from its owner, so this runs on one node only (not on a
/// cluster, where the keys live in different slots).
/// KEYS: pointer, watermarks. ARGV: record key before the owner's tag,
/// after it, at, touch after ms (-1: no touch), idle ms, absolute ms,
/// margin ms (as for `TOUCH`), then the shortest idle and absolute
/// timeouts: a record past them is not touched.
/// Returns {restart, revoked, touched (0/1), record field/value pairs...}.
pub const LOOKUP: &str = r#"
local marks = redis.call('HMGET', KEYS[2], 'restart', 'revoked')
local user = redis.call('GET', KEYS[1])
if not user then return {marks[1], marks[2], 0} end
local tag = (user:gsub('%%', '%%25'))
tag = (tag:gsub('{', '%%7B'))
tag = (tag:gsub('}', '%%7D'))
local rk = ARGV[1] .. tag .. ARGV[2]
local f = redis.call('HGETALL', rk)
local touched = 0
local after, at = tonumber(ARGV[4]), tonumber(ARGV[3])
if after >= 0 and #f > 0 then
  local c, l, e
  for i = 1, #f, 2 do
    if f[i] == 'c' then c = tonumber(f[i + 1])
    elseif f[i] == 'l' then l = tonumber(f[i + 1])
    elseif f[i] == 'e' then e = true end
  end
  local due = c and l and not e and at - l >= after
  if due and at - l < tonumber(ARGV[8]) and at - c < tonumber(ARGV[9]) then
    if l < at then redis.call('HSET', rk, 'l', ARGV[3]) end
    local ttl = c + tonumber(ARGV[6]) - at
    if tonumber(ARGV[5]) < ttl then ttl = tonumber(ARGV[5]) end
    if ttl < 0 then ttl = 0 end
    redis.call('PEXPIRE', rk, ttl + tonumber(ARGV[7]))
    redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[6]) + tonumber(ARGV[7]))
    touched = 1
  end
end
local out = {marks[1], marks[2], touched}
for i = 1, #f do out[#out + 1] = f[i] end
return out
"#;
