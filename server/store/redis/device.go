package redis

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/latchkey-dev/latchkey/server/store"
)

// Device grants live under the one hash tag {dev} (like the throttles' {thr}), so that the
// scripts that go from a user code to its grant touch one slot, also in Cluster.
func (s *Store) devPrefix() string                { return s.prefix + "dev:{dev}:" }
func (s *Store) devKey(h store.Hash) string       { return s.devPrefix() + h.String() }
func (s *Store) userCodeKey(uh store.Hash) string { return s.prefix + "duc:{dev}:" + uh.String() }

// deviceRec is the part of a device grant that never changes (the hash's field d).
type deviceRec struct {
	ClientID  string   `json:"c"`
	Scopes    []string `json:"sc,omitempty"`
	UserCode  string   `json:"u"`
	ExpiresAt int64    `json:"e"`
}

// putDevice: KEYS dev, duc; ARGV record, interval ms, expiry ms, device hash hex.
// Returns 0 (conflict) or 1.
var putDevice = goredis.NewScript(luaNow + `if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local exp = tonumber(ARGV[3])
if exp <= now then return 1 end
redis.call('HSET', KEYS[1], 'd', ARGV[1], 'st', '0', 'i', ARGV[2])
redis.call('PEXPIREAT', KEYS[1], exp)
redis.call('SET', KEYS[2], ARGV[4], 'PXAT', exp)
return 1`)

// luaPendingByUser finds the pending grant of the user code key KEYS[1] (ARGV[1] is the
// device keys' prefix): h its device hash hex, k its key, v its d, st, i fields; returns
// false when there is none.
const luaPendingByUser = `local h = redis.call('GET', KEYS[1])
if not h then return false end
local k = ARGV[1] .. h
local v = redis.call('HMGET', k, 'd', 'st', 'i')
if not v[1] or v[2] ~= '0' then return false end
`

// deviceByUser: KEYS duc; ARGV prefix. Returns {h, d, i} or nil.
var deviceByUser = goredis.NewScript(luaPendingByUser + `return {h, v[1], v[3]}`)

// decideDevice: KEYS duc; ARGV prefix, '1' approve or '0' deny, subject, auth time ns.
// Returns {h, d, i} or nil (nothing pending).
var decideDevice = goredis.NewScript(luaPendingByUser + `if ARGV[2] == '1' then
  redis.call('HSET', k, 'st', '1', 's', ARGV[3], 'a', ARGV[4])
else
  redis.call('HSET', k, 'st', '2')
end
redis.call('DEL', KEYS[1])
return {h, v[1], v[3]}`)

// pollDevice: KEYS dev; ARGV client ID, slow-down ms. Returns nil (unknown or another
// client's) or {result, d, status, interval ms, subject, auth time ns} with result 0 (polled),
// 1 (polled too soon: slow down) or 2 (an approved grant taken before).
var pollDevice = goredis.NewScript(luaNow + `local v = redis.call('HMGET', KEYS[1], 'd', 'st', 'i', 'p', 's', 'a', 't')
if not v[1] then return false end
local ok, r = pcall(cjson.decode, v[1])
if not ok or type(r) ~= 'table' then return redis.error_reply('bad device record') end
if r.c ~= ARGV[1] then return false end
local res, iv = 0, tonumber(v[3])
if v[2] == '0' then
  if v[4] and now - tonumber(v[4]) < iv then
    iv = iv + tonumber(ARGV[2])
    res = 1
  end
  redis.call('HSET', KEYS[1], 'p', now, 'i', iv)
elseif v[2] == '1' then
  if v[7] then res = 2 else redis.call('HSET', KEYS[1], 't', '1') end
end
return {res, v[1], v[2], tostring(iv), v[5] or '', v[6] or '0'}`)

// PutDeviceGrant stores a pending device grant in one script; see store.DeviceGrants.
func (s *Store) PutDeviceGrant(ctx context.Context, h store.Hash, g store.DeviceGrant) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b, _ := json.Marshal(deviceRec{ClientID: g.ClientID, Scopes: g.Scopes, UserCode: g.UserCode.String(), ExpiresAt: nanos(g.ExpiresAt)})
	n, err := putDevice.Run(ctx, s.c, []string{s.devKey(h), s.userCodeKey(g.UserCode)},
		string(b), ceilMS(g.Interval), ms(g.ExpiresAt), h.String()).Int64()
	if err != nil {
		return s.fail(ctx, "put device grant", err)
	}
	if n == 0 {
		return store.ErrConflict
	}
	return nil
}

// DeviceGrantByUserCode finds a pending grant in one script; see store.DeviceGrants.
func (s *Store) DeviceGrantByUserCode(ctx context.Context, uh store.Hash) (store.Hash, store.DeviceGrant, error) {
	if err := ctx.Err(); err != nil {
		return store.Hash{}, store.DeviceGrant{}, err
	}
	v, err := deviceByUser.Run(ctx, s.c, []string{s.userCodeKey(uh)}, s.devPrefix()).Slice()
	if errors.Is(err, goredis.Nil) {
		return store.Hash{}, store.DeviceGrant{}, store.ErrNotFound
	}
	if err != nil {
		return store.Hash{}, store.DeviceGrant{}, s.fail(ctx, "device grant by user code", err)
	}
	h, g, err := decodeDevice(str(v, 0), str(v, 1), str(v, 2))
	return h, g, err
}

// DecideDeviceGrant approves or denies a pending grant in one script; see store.DeviceGrants.
func (s *Store) DecideDeviceGrant(ctx context.Context, uh store.Hash, approve bool, subject string, authTime time.Time) (store.DeviceGrant, error) {
	if err := ctx.Err(); err != nil {
		return store.DeviceGrant{}, err
	}
	flag := "0"
	if approve {
		flag = "1"
	}
	v, err := decideDevice.Run(ctx, s.c, []string{s.userCodeKey(uh)}, s.devPrefix(), flag, subject, nanos(authTime)).Slice()
	if errors.Is(err, goredis.Nil) {
		return store.DeviceGrant{}, store.ErrNotFound
	}
	if err != nil {
		return store.DeviceGrant{}, s.fail(ctx, "decide device grant", err)
	}
	_, g, err := decodeDevice(str(v, 0), str(v, 1), str(v, 2))
	if err != nil {
		return store.DeviceGrant{}, err
	}
	g.Status = store.DeviceDenied
	if approve {
		g.Status, g.Subject, g.AuthTime = store.DeviceApproved, subject, fromNanos(nanos(authTime))
	}
	return g, nil
}

// PollDeviceGrant is one poll of a device code, in one script; see store.DeviceGrants.
func (s *Store) PollDeviceGrant(ctx context.Context, h store.Hash, clientID string, slowDown time.Duration) (store.DevicePoll, error) {
	if err := ctx.Err(); err != nil {
		return store.DevicePoll{}, err
	}
	v, err := pollDevice.Run(ctx, s.c, []string{s.devKey(h)}, clientID, ceilMS(slowDown)).Slice()
	if errors.Is(err, goredis.Nil) {
		return store.DevicePoll{}, store.ErrNotFound
	}
	if err != nil {
		return store.DevicePoll{}, s.fail(ctx, "poll device grant", err)
	}
	_, g, err := decodeDevice(h.String(), str(v, 1), str(v, 3))
	if err != nil {
		return store.DevicePoll{}, err
	}
	st, _ := strconv.Atoi(str(v, 2))
	g.Status = store.DeviceStatus(st)
	g.Subject = str(v, 4)
	at, _ := strconv.ParseInt(str(v, 5), 10, 64)
	g.AuthTime = fromNanos(at)
	switch status(v) {
	case 1:
		return store.DevicePoll{Grant: g, SlowDown: true}, nil
	case 2:
		return store.DevicePoll{Grant: g}, store.ErrAlreadyUsed
	}
	return store.DevicePoll{Grant: g}, nil
}

// decodeDevice decodes a grant's device hash hex, its d field and its interval in ms.
func decodeDevice(hexHash, d, interval string) (store.Hash, store.DeviceGrant, error) {
	bad := func(what string) error {
		return fmt.Errorf("store/redis: %w: bad device record: %s", store.ErrUnavailable, what)
	}
	h, ok := hashFromHex(hexHash)
	if !ok {
		return h, store.DeviceGrant{}, bad("hash")
	}
	var r deviceRec
	if err := json.Unmarshal([]byte(d), &r); err != nil {
		return h, store.DeviceGrant{}, bad("record")
	}
	uh, _ := hashFromHex(r.UserCode)
	iv, err := strconv.ParseInt(interval, 10, 64)
	if err != nil {
		return h, store.DeviceGrant{}, bad("interval")
	}
	return h, store.DeviceGrant{ClientID: r.ClientID, Scopes: r.Scopes, UserCode: uh,
		Interval: time.Duration(iv) * time.Millisecond, ExpiresAt: fromNanos(r.ExpiresAt)}, nil
}

// hashFromHex parses a Hash's hex form.
func hashFromHex(s string) (store.Hash, bool) {
	var h store.Hash
	raw, err := hex.DecodeString(s)
	if err != nil || len(raw) != len(h) {
		return h, false
	}
	copy(h[:], raw)
	return h, true
}
