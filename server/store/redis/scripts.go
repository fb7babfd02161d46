package redis

import goredis "github.com/redis/go-redis/v9"

// now is the server's clock in milliseconds (scripts compare leases and grace with it, so
// every replica agrees whatever its own clock says).
const luaNow = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`

// luaKeys resolves a refresh token's keys. Indexed mode (#KEYS == 1, standalone and
// Sentinel): KEYS[1] is the token's index key, whose value is the family's tag; the token,
// family and successor keys are built from ARGV[1] (prefix) and ARGV[2] (the token hash in
// hex). Direct mode (Cluster, where the index lives in another slot): KEYS are the token,
// family and successor keys.
const luaKeys = `local tok, fam, suc, tag
if #KEYS == 1 then
  tag = redis.call('GET', KEYS[1])
  if not tag then return {0} end
  tok = ARGV[1] .. 'rt:{' .. tag .. '}:' .. ARGV[2]
  fam = ARGV[1] .. 'fam:{' .. tag .. '}'
  suc = ARGV[1] .. 'rts:{' .. tag .. '}:' .. ARGV[2]
else
  tok, fam, suc = KEYS[1], KEYS[2], KEYS[3]
end
`

// luaWithinGrace defines withinGrace(tok, fam, suc): the answer to token tok (of family fam)
// presented again within grace of its rotation. suc holds what the rotation kept: the new
// token's hash in hex (64 characters, its key is tok's with that hash) and the sealed new
// token. Returns {5, sealed} while the new token is active, {3} with the family revoked once
// it was rotated (or is gone), {4} when nothing was kept.
const luaWithinGrace = `local function withinGrace(tok, fam, suc)
  local s = redis.call('GET', suc)
  if not s then return {4} end
  local n = redis.call('HMGET', string.sub(tok, 1, #tok - 64) .. string.sub(s, 1, 64), 'd', 'r')
  if n[1] and not n[2] then return {5, string.sub(s, 65)} end
  extend(fam, 'rv', redis.call('PEXPIRETIME', tok))
  return {3}
end
`

// luaExtend sets field f of hash k and makes k live at least until ms (never shortens it).
const luaExtend = `local function extend(k, f, ms)
  local cur = redis.call('PEXPIRETIME', k)
  redis.call('HSET', k, f, '1')
  if cur == -2 or (cur ~= -1 and ms > cur) then redis.call('PEXPIREAT', k, ms) end
end
`

// takeCode: KEYS[1] the code; ARGV[1] the client ID that presents it. The record is a state
// byte, '0' (unused) or '1' (used), then the JSON record, whose field c is the code's client
// (JSON keeps a client ID exactly: they are ASCII); SETRANGE keeps the TTL. Returns the value as
// it was ('0...': this call took it), or nil when there is none or it is another client's (then
// nothing changes); a value that is not a JSON object is an error.
const luaTakeCode = `local v = redis.call('GET', KEYS[1])
if not v then return false end
local ok, r = pcall(cjson.decode, string.sub(v, 2))
if not ok or type(r) ~= 'table' then return redis.error_reply('bad code record') end
if r.c ~= ARGV[1] then return false end
if string.sub(v, 1, 1) == '0' then redis.call('SETRANGE', KEYS[1], 0, '1') end
return v`

var takeCode = goredis.NewScript(luaTakeCode)

// createRefresh: KEYS tok, fam[, idx]; ARGV record, family, expiry ms, tag, start ms (the
// token's IssuedAt, kept as the family's start s unless the family has one).
// Returns 0 (conflict) or 1.
var createRefresh = goredis.NewScript(luaNow + luaExtend + `local tok, fam, idx = KEYS[1], KEYS[2], KEYS[3]
if idx then
  if redis.call('EXISTS', idx) == 1 then return 0 end
elseif redis.call('EXISTS', tok) == 1 then return 0 end
local exp = tonumber(ARGV[3])
if exp <= now then return 1 end
if idx then redis.call('SET', idx, ARGV[4], 'PXAT', exp) end
redis.call('HSET', tok, 'd', ARGV[1], 'f', ARGV[2])
redis.call('PEXPIREAT', tok, exp)
extend(fam, 'x', exp)
redis.call('HSETNX', fam, 's', ARGV[5])
return 1`)

// getRefresh returns {0} not found, {1, d, f} active, {2} revoked, {3, d, f} rotated.
var getRefresh = goredis.NewScript(luaKeys + `local v = redis.call('HMGET', tok, 'd', 'f', 'r')
if not v[1] then return {0} end
if redis.call('HEXISTS', fam, 'rv') == 1 then return {2} end
if v[3] then return {3, v[1], v[2]} end
return {1, v[1], v[2]}`)

// rotateRefresh: indexed mode KEYS old idx, new idx, then the cutoff keys of next's client,
// subject and session (store.CutoffKeys); ARGV prefix, old hex, new hex, next record, next
// expiry ms, grace ms, sealed next (empty for none), next's client ID, subject, session ID,
// the latest cutoff At ms read before (Cluster; else empty), how many cutoff keys KEYS holds.
// Direct mode (Cluster) KEYS old tok, fam, old's successor key, new tok; same ARGV. The
// sealed next is kept (with next's hex in front) under old's successor key rts:{T}:<old hex>
// for grace. A family started (fam's s; none: before starts were kept) at or before the
// latest cutoff is revoked and answers {2}, whether old is active or rotated (a retry within
// grace gets no successor then). The cutoffs are those of ARGV's client, subject and session,
// which must be old's: else {6, d} (old's record) and nothing changed, for the caller to run
// again with old's. Returns {0} not found, {1, d, f}
// rotated, {2} revoked, {3} reused (family revoked now), {4} conflict, {5, sealed} rotated
// within grace with the kept next still active (nothing changed).
const luaRotateRefresh = `local tok, fam, suc, tag, newTok, newIdx
local ncut = tonumber(ARGV[12])
if #KEYS - ncut == 2 then
  tag = redis.call('GET', KEYS[1])
  if not tag then return {0} end
  tok = ARGV[1] .. 'rt:{' .. tag .. '}:' .. ARGV[2]
  fam = ARGV[1] .. 'fam:{' .. tag .. '}'
  suc = ARGV[1] .. 'rts:{' .. tag .. '}:' .. ARGV[2]
  newTok = ARGV[1] .. 'rt:{' .. tag .. '}:' .. ARGV[3]
  newIdx = KEYS[2]
else
  tok, fam, suc, newTok = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
end
local v = redis.call('HMGET', tok, 'd', 'f', 'r')
if not v[1] then return {0} end
if redis.call('HEXISTS', fam, 'rv') == 1 then return {2} end
local ok, rec = pcall(cjson.decode, v[1])
if not ok or type(rec) ~= 'table' or rec.c ~= ARGV[8] or rec.s ~= ARGV[9] or (rec.sid or '') ~= ARGV[10] then return {6, v[1]} end
local cut = tonumber(ARGV[11])
for i = #KEYS - ncut + 1, #KEYS do
  local c = tonumber(redis.call('GET', KEYS[i]))
  if c and (not cut or c > cut) then cut = c end
end
if cut and (tonumber(redis.call('HGET', fam, 's')) or 0) <= cut then
  extend(fam, 'rv', redis.call('PEXPIRETIME', tok))
  return {2}
end
if v[3] then
  if now - tonumber(v[3]) < tonumber(ARGV[6]) then return withinGrace(tok, fam, suc) end
  extend(fam, 'rv', redis.call('PEXPIRETIME', tok))
  return {3}
end
if redis.call('EXISTS', newTok) == 1 or (newIdx and redis.call('EXISTS', newIdx) == 1) then return {4} end
redis.call('HSET', tok, 'r', now)
local exp = tonumber(ARGV[5])
if exp > now then
  redis.call('HSET', newTok, 'd', ARGV[4], 'f', v[2])
  redis.call('PEXPIREAT', newTok, exp)
  if newIdx then redis.call('SET', newIdx, tag, 'PXAT', exp) end
  extend(fam, 'x', exp)
  local grace = tonumber(ARGV[6])
  if ARGV[7] ~= '' and grace > 0 then redis.call('SET', suc, ARGV[3] .. ARGV[7], 'PX', grace) end
end
return {1, v[1], v[2]}`

var rotateRefresh = goredis.NewScript(luaNow + luaExtend + luaWithinGrace + luaRotateRefresh)

// reportReuse: KEYS as getRefresh; ARGV prefix, token hex, grace ms. Returns {0} not found,
// {1} active (never rotated), {2} revoked, {3} reused (family revoked now), and within grace
// withinGrace's {3}, {4} or {5, sealed, d, f} (the token's record and family, for the caller to
// check the grant cutoffs: their keys are not known before).
var reportReuse = goredis.NewScript(luaNow + luaExtend + luaWithinGrace + luaKeys + `local r = redis.call('HGET', tok, 'r')
if redis.call('EXISTS', tok) == 0 then return {0} end
if redis.call('HEXISTS', fam, 'rv') == 1 then return {2} end
if not r then return {1} end
if now - tonumber(r) < tonumber(ARGV[3]) then
  local res = withinGrace(tok, fam, suc)
  if res[1] == 5 then
    local x = redis.call('HMGET', tok, 'd', 'f')
    res[3], res[4] = x[1], x[2]
  end
  return res
end
extend(fam, 'rv', redis.call('PEXPIRETIME', tok))
return {3}`)

// revokeFamily: KEYS fam; ARGV until ms. The family key lives until the latest lease of its
// tokens (extend on create and rotate), so a revocation outlives until while they live.
var revokeFamily = goredis.NewScript(luaNow + luaExtend + `local untilMs = tonumber(ARGV[1])
if redis.call('EXISTS', KEYS[1]) == 0 and untilMs <= now then return 0 end
extend(KEYS[1], 'rv', untilMs)
return 1`)

// cutOff: KEYS[1] the cutoff (a string: its At, ms); ARGV At ms, until ms. Keeps the later
// At and the later lease.
var cutOff = goredis.NewScript(`local cur = tonumber(redis.call('GET', KEYS[1]))
local at = tonumber(ARGV[1])
if cur and cur > at then at = cur end
local exp = redis.call('PEXPIRETIME', KEYS[1])
redis.call('SET', KEYS[1], string.format('%d', at))
if exp > tonumber(ARGV[2]) then redis.call('PEXPIREAT', KEYS[1], exp) else redis.call('PEXPIREAT', KEYS[1], ARGV[2]) end
return 1`)

// throttle: KEYS the throttle keys (one slot: the {thr} tag); ARGV[1] the outcome (0 check,
// 1 failure, 2 success), then per key limit, window ms (at least 1), backoff ms, max backoff ms,
// reset (0/1); the durations are rounded up to milliseconds.
// A key is a hash {f failures, w window end (a window after the last failure and its block),
// b blocked until} (ms), living until max(w, b).
// Returns {retry-after ms, failures...}: a positive retry-after means blocked, nothing changed.
// luaThrottle defines throttle(keys, argv), the body of the throttle script over the given
// tables (so that throttleRate can run it on a part of its KEYS and ARGV).
const luaThrottle = `local function throttle(keys, argv)
  local op = tonumber(argv[1])
  local recs, retry = {}, 0
  for i, k in ipairs(keys) do
    local v = redis.call('HMGET', k, 'f', 'w', 'b')
    local f, w, b = tonumber(v[1]) or 0, tonumber(v[2]) or 0, tonumber(v[3]) or 0
    if math.max(w, b) <= now then f, w, b = 0, 0, 0 end
    recs[i] = {f, w, b}
    local limit = tonumber(argv[2 + (i - 1) * 5])
    if limit > 0 and b > now and b - now > retry then retry = b - now end
  end
  local out = {retry}
  for i, k in ipairs(keys) do
    local r = recs[i]
    if retry == 0 then
      local base = 2 + (i - 1) * 5
      local limit, window, backoff, maxb, reset = tonumber(argv[base]), tonumber(argv[base + 1]),
        tonumber(argv[base + 2]), tonumber(argv[base + 3]), argv[base + 4] == '1'
      if op == 1 then
        r[1] = r[1] + 1
        if limit > 0 and r[1] >= limit then
          local d = backoff
          local n = r[1] - limit
          while n > 0 and d > 0 and d < maxb do d = d * 2; n = n - 1 end
          if d > maxb then d = maxb end
          r[3] = now + d
        end
        r[2] = math.max(now, r[3]) + window
        redis.call('HSET', k, 'f', r[1], 'w', r[2], 'b', r[3])
        redis.call('PEXPIREAT', k, math.max(r[2], r[3]))
      elseif op == 2 and reset then
        redis.call('DEL', k)
        r[1] = 0
      end
    end
    out[#out + 1] = r[1]
  end
  return out
end
`

var throttle = goredis.NewScript(luaNow + luaThrottle + `return throttle(KEYS, ARGV)`)

// takeRate: GCRA. KEYS[1] the bucket; ARGV[1] the emission interval in µs (one request),
// ARGV[2] the burst. The key holds the theoretical arrival time (µs). Returns 0 when the request
// is allowed (and taken), else the µs until one would be.
// luaTakeRate defines takeRate(key, interval, burst), the body of the takeRate script.
const luaTakeRate = `local function takeRate(key, interval, burst)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local tat = tonumber(redis.call('GET', key)) or now
  if tat < now then tat = now end
  local nextTat = tat + interval
  local allowAt = nextTat - interval * burst
  if allowAt > now then return math.ceil(allowAt - now) end
  redis.call('SET', key, string.format('%.0f', nextTat), 'PX', math.ceil((nextTat - now) / 1000) + 1)
  return 0
end
`

var takeRate = goredis.NewScript(luaTakeRate + `return takeRate(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]))`)

// throttleRate: throttle over KEYS but the last and ARGV but the last two, then, when the
// outcome is a success (2) and no key was blocked, takeRate of the last key with the last two
// ARGV. Returns throttle's answer followed by takeRate's (0 when no request was taken).
var throttleRate = goredis.NewScript(luaNow + luaThrottle + luaTakeRate + `local tk, ta = {}, {}
for i = 1, #KEYS - 1 do tk[i] = KEYS[i] end
for i = 1, #ARGV - 2 do ta[i] = ARGV[i] end
local out = throttle(tk, ta)
local wait = 0
if out[1] == 0 and tonumber(ARGV[1]) == 2 then
  wait = takeRate(KEYS[#KEYS], tonumber(ARGV[#ARGV - 1]), tonumber(ARGV[#ARGV]))
end
out[#out + 1] = wait
return out`)

// redeemCode: KEYS code, tok, fam, idx; ARGV client ID, record, family, expiry ms, tag, start
// ms (the family's start, as in createRefresh). The
// code as in takeCode and, when this call takes it, the refresh token as in createRefresh
// (indexed mode). Returns the code's value as it was (nil: none, or another client's), or 0
// when the token's hash is taken (then the code stays as it was).
const luaRedeemCode = `local v = redis.call('GET', KEYS[1])
if not v then return false end
local ok, r = pcall(cjson.decode, string.sub(v, 2))
if not ok or type(r) ~= 'table' then return redis.error_reply('bad code record') end
if r.c ~= ARGV[1] then return false end
if string.sub(v, 1, 1) ~= '0' then return v end
local tok, fam, idx = KEYS[2], KEYS[3], KEYS[4]
if redis.call('EXISTS', idx) == 1 then return 0 end
redis.call('SETRANGE', KEYS[1], 0, '1')
local exp = tonumber(ARGV[4])
if exp > now then
  redis.call('SET', idx, ARGV[5], 'PXAT', exp)
  redis.call('HSET', tok, 'd', ARGV[2], 'f', ARGV[3])
  redis.call('PEXPIREAT', tok, exp)
  extend(fam, 'x', exp)
  redis.call('HSETNX', fam, 's', ARGV[6])
end
return v`

var redeemCode = goredis.NewScript(luaNow + luaExtend + luaRedeemCode)

// noteUses: KEYS[1] the credential uses hash; ARGV[1] its lease in ms, then pairs of field
// (credential and client ID) and time (µs). Keeps the later time of each field and renews the
// hash's lease.
var noteUses = goredis.NewScript(`for i = 2, #ARGV, 2 do
  local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[i]))
  if not cur or cur < tonumber(ARGV[i + 1]) then redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1`)

// takeUses: KEYS[1] the credential uses hash; ARGV[1] how many to take (positive). Returns
// field, time, field, time... of the records it removed.
var takeUses = goredis.NewScript(`local v = redis.call('HRANDFIELD', KEYS[1], tonumber(ARGV[1]), 'WITHVALUES')
for i = 1, #v, 2 do redis.call('HDEL', KEYS[1], v[i]) end
return v`)

// luaAdmitted runs the function op after an admission (store.Admission): ARGV[1] is how many
// KEYS the admission has (n: the throttle keys, then the bucket's when ARGV[3] is '1'),
// ARGV[2] how many ARGV (m, from ARGV[4]: the throttle script's, its outcome first, then the
// bucket's interval and burst); op gets the KEYS and ARGV after those. Returns {retry-after
// ms, rate wait µs} when the admission refused (op did not run), else {0, 0, op's answer}.
const luaAdmitted = `local n, m, rate = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3] == '1'
local nt, mt = n, m
if rate then nt, mt = n - 1, m - 2 end
local tk, ta, ok, oa = {}, {}, {}, {}
for i = 1, nt do tk[i] = KEYS[i] end
for i = 1, mt do ta[i] = ARGV[3 + i] end
for i = n + 1, #KEYS do ok[#ok + 1] = KEYS[i] end
for i = 4 + m, #ARGV do oa[#oa + 1] = ARGV[i] end
local t = throttle(tk, ta)
local wait = 0
if t[1] == 0 and rate then wait = takeRate(KEYS[n], tonumber(ARGV[2 + m]), tonumber(ARGV[3 + m])) end
if t[1] > 0 or wait > 0 then return {t[1], wait} end
return {0, 0, op(ok, oa)}`

// admitted returns the script that runs the script body after an admission (luaAdmitted).
func admitted(body string) *goredis.Script {
	return goredis.NewScript(luaNow + luaExtend + luaWithinGrace + luaThrottle + luaTakeRate + "local function op(KEYS, ARGV)\n" + body + "\nend\n" + luaAdmitted)
}

var (
	takeCodeAdmitted      = admitted(luaTakeCode)
	redeemCodeAdmitted    = admitted(luaRedeemCode)
	rotateRefreshAdmitted = admitted(luaRotateRefresh)
)

var scripts = []*goredis.Script{putEntry, cutOff, takeCodeAdmitted, redeemCodeAdmitted, rotateRefreshAdmitted, takeCode, redeemCode, createRefresh, getRefresh, rotateRefresh, reportReuse, revokeFamily, throttle, takeRate, throttleRate, noteUses, takeUses, enqueueLogouts, claimLogouts, finishLogout, putDevice, deviceByUser, decideDevice, pollDevice}

// Back-channel logout deliveries (logout.go): KEYS[1] is the queue (a sorted set of delivery
// IDs by when they are due, server ms), KEYS[2] the deliveries' hash: per ID, the field <id>
// (the JSON record), a:<id> (attempts), x:<id> (the lease's end, server ms) and k:<id> (the
// current claim's token). Both keys share a hash tag, so every key a script touches is
// declared and in one slot (Cluster too); both live until the latest lease of a delivery.

// luaLogouts has drop, which forgets a delivery, and keep, which makes both keys live at
// least until ms.
const luaLogouts = `local function drop(id)
  redis.call('ZREM', KEYS[1], id)
  redis.call('HDEL', KEYS[2], id, 'a:' .. id, 'x:' .. id, 'k:' .. id)
end
local function keep(ms)
  for _, k in ipairs(KEYS) do
    local cur = redis.call('PEXPIRETIME', k)
    if cur == -1 or ms > cur then redis.call('PEXPIREAT', k, ms) end
  end
end
`

// enqueueLogouts: ARGV[1] the lease in ms, then pairs of ID and JSON record. Each is due now.
var enqueueLogouts = goredis.NewScript(luaNow + luaLogouts + `local untilMs = now + tonumber(ARGV[1])
for i = 2, #ARGV, 2 do
  local id = ARGV[i]
  redis.call('HDEL', KEYS[2], 'k:' .. id)
  redis.call('HSET', KEYS[2], id, ARGV[i + 1], 'a:' .. id, '0', 'x:' .. id, untilMs)
  redis.call('ZADD', KEYS[1], now, id)
end
keep(untilMs)
return 1`)

// claimLogouts: ARGV[1] how many (positive), ARGV[2] the claim's token, ARGV[3] its lease in
// ms. Returns ID, record, attempts... of the deliveries it claimed; drops the due IDs whose
// lease ended.
var claimLogouts = goredis.NewScript(luaNow + luaLogouts + `local limit = tonumber(ARGV[1])
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 4 * limit)
local out, n = {}, 0
for _, id in ipairs(ids) do
  if n == limit then break end
  local v = redis.call('HMGET', KEYS[2], id, 'a:' .. id, 'x:' .. id)
  if not v[1] or not v[3] or tonumber(v[3]) <= now then
    drop(id)
  else
    redis.call('HSET', KEYS[2], 'k:' .. id, ARGV[2])
    redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), id)
    out[#out + 1] = id
    out[#out + 1] = v[1]
    out[#out + 1] = v[2] or '0'
    n = n + 1
  end
end
return out`)

// finishLogout: ARGV[1] the delivery's ID, ARGV[2] the claim; ARGV[3] '1' to retry (ARGV[4]
// attempts, ARGV[5] delay in ms) rather than remove it. Returns 0 when the delivery is gone
// (or its lease ended), 1 when another claim holds it, 2 when done.
var finishLogout = goredis.NewScript(luaNow + luaLogouts + `local id = ARGV[1]
local v = redis.call('HMGET', KEYS[2], id, 'x:' .. id, 'k:' .. id)
if not v[1] or not v[2] or tonumber(v[2]) <= now then
  drop(id)
  return 0
end
if v[3] ~= ARGV[2] then return 1 end
if ARGV[3] == '1' then
  redis.call('HSET', KEYS[2], 'a:' .. id, ARGV[4])
  redis.call('HDEL', KEYS[2], 'k:' .. id)
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[5]), id)
else
  drop(id)
end
return 2`)

// putEntry: KEYS[1] the list (a hash of id -> "<expiry ms> <value>"); ARGV id, value, lease
// in ms, the most entries. Stores the entry, drops the expired ones and, over the bound, those
// that expire first; the hash lives until its last entry's lease ends.
var putEntry = goredis.NewScript(luaNow + `local exp = now + tonumber(ARGV[3])
redis.call('HSET', KEYS[1], ARGV[1], string.format('%d', exp) .. ' ' .. ARGV[2])
local all = redis.call('HGETALL', KEYS[1])
local live, last = {}, 0
for i = 1, #all, 2 do
  local e = tonumber(string.match(all[i + 1], '^(%d+) '))
  if not e or e <= now then
    redis.call('HDEL', KEYS[1], all[i])
  else
    live[#live + 1] = {all[i], e}
    if e > last then last = e end
  end
end
local max = tonumber(ARGV[4])
if #live > max then
  table.sort(live, function(a, b) if a[2] ~= b[2] then return a[2] < b[2] end return a[1] < b[1] end)
  for i = 1, #live - max do redis.call('HDEL', KEYS[1], live[i][1]) end
end
redis.call('PEXPIREAT', KEYS[1], last)
return 1`)
