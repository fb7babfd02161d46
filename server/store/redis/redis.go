package redis

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/latchkey-dev/latchkey/server/store"
)

// Options configures New.
type Options struct {
	// Addrs are host:port addresses: one for a standalone server, several for Cluster, or the
	// Sentinels' with MasterName.
	Addrs []string
	// Username and Password authenticate (ACL user, or Password alone for requirepass).
	Username string
	Password string
	// DB is the database number (standalone and Sentinel only).
	DB int
	// TLS, when set, connects with TLS.
	TLS *tls.Config
	// KeyPrefix starts every key (e.g. "latchkey:"), so several installations can share a server.
	KeyPrefix string
	// MasterName is the Sentinel master's name; set it to use Sentinel.
	MasterName string
	// Timeout bounds dialing, reading and writing (default 2 s).
	Timeout time.Duration
	// KnownRecords is how many records of the codes and refresh tokens it stored the Store
	// remembers (store.KnownRecords); 0 is DefaultKnownRecords, negative none.
	KnownRecords int
}

// Store is the Redis leased store; see the package comment.
type Store struct {
	c       goredis.UniversalClient
	prefix  string
	cluster bool // direct mode: refresh token index in its own round trip
	known   *known
}

// New returns a Store over a new client built from opts. It does not connect: call Ping.
func New(opts Options) (*Store, error) {
	if len(opts.Addrs) == 0 {
		return nil, errors.New("store/redis: no address")
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	c := goredis.NewUniversalClient(&goredis.UniversalOptions{
		Addrs:        opts.Addrs,
		Username:     opts.Username,
		Password:     opts.Password,
		DB:           opts.DB,
		TLSConfig:    opts.TLS,
		MasterName:   opts.MasterName,
		DialTimeout:  timeout,
		ReadTimeout:  timeout,
		WriteTimeout: timeout,
		// No retries: a command that reached the server before the connection failed may have
		// run, and a second run of TakeCode, RotateRefresh, Incr or Throttle would answer or
		// count as if another request had come (a code's replay, a refresh token's reuse).
		// The caller sees ErrUnavailable instead, and its client retries.
		MaxRetries: -1,
	})
	s := NewFromClient(c, opts.KeyPrefix)
	if opts.KnownRecords != 0 {
		s.known = newKnown(opts.KnownRecords)
	}
	return s, nil
}

// NewFromClient returns a Store over c (its Close closes c), remembering DefaultKnownRecords
// records. Give c no retries (MaxRetries -1), as New does: see the package comment.
func NewFromClient(c goredis.UniversalClient, prefix string) *Store {
	_, cluster := c.(*goredis.ClusterClient)
	return &Store{c: c, prefix: prefix, cluster: cluster, known: newKnown(DefaultKnownRecords)}
}

// Client returns the underlying client (e.g. to add hooks).
func (s *Store) Client() goredis.UniversalClient { return s.c }

// Close closes the client.
func (s *Store) Close() error { return s.c.Close() }

// Ping reports whether Redis answers, and loads the scripts.
func (s *Store) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.c.Ping(ctx).Err(); err != nil {
		return s.fail(ctx, "ping", err)
	}
	return nil
}

// LoadScripts loads the Lua scripts into the server's cache (else the first run of each sends
// its body once).
func (s *Store) LoadScripts(ctx context.Context) error {
	for _, sc := range scripts {
		if err := sc.Load(ctx, s.c).Err(); err != nil {
			return s.fail(ctx, "load scripts", err)
		}
	}
	return nil
}

// fail maps a client error: the context's error when it is done, else ErrUnavailable.
func (s *Store) fail(ctx context.Context, op string, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("store/redis: %s: %w", op, cerr)
	}
	return fmt.Errorf("store/redis: %s: %w: %w", op, store.ErrUnavailable, err)
}

func (s *Store) key(kind string, h store.Hash) string {
	return s.prefix + kind + ":{" + h.String() + "}"
}

// tag is a family's hash tag: the hex of its ID (any string is safe inside braces that way).
func tag(family string) string { return hex.EncodeToString([]byte(family)) }

func (s *Store) tokKey(tg string, h store.Hash) string {
	return s.prefix + "rt:{" + tg + "}:" + h.String()
}
func (s *Store) famKey(tg string) string { return s.prefix + "fam:{" + tg + "}" }

// sucKey holds what the rotation of token h kept (luaRotateRefresh), in its family's slot.
func (s *Store) sucKey(tg string, h store.Hash) string {
	return s.prefix + "rts:{" + tg + "}:" + h.String()
}

// ms is t in Unix milliseconds, rounded up (a lease never ends early).
func ms(t time.Time) int64 {
	return (t.UnixNano() + int64(time.Millisecond) - 1) / int64(time.Millisecond)
}

// ttlMS is d rounded up to a millisecond (Redis's resolution), so a lease never ends early.
func ttlMS(d time.Duration) time.Duration {
	return (d + time.Millisecond - 1).Truncate(time.Millisecond)
}

// ceilMS is d in whole milliseconds, rounded up like ttlMS; a negative d is 0.
func ceilMS(d time.Duration) int64 { return ttlMS(max(d, 0)).Milliseconds() }

// nanos encodes a time; 0 is the zero time.
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

type codeRec struct {
	ClientID            string   `json:"c"`
	RedirectURI         string   `json:"u"`
	Subject             string   `json:"s"`
	Scopes              []string `json:"sc,omitempty"`
	Nonce               string   `json:"n,omitempty"`
	CodeChallenge       string   `json:"cc,omitempty"`
	CodeChallengeMethod string   `json:"cm,omitempty"`
	AuthTime            int64    `json:"at,omitempty"`
	FamilyID            string   `json:"f"`
	SessionID           string   `json:"sid,omitempty"`
	Resources           []string `json:"rs,omitempty"`
	JKT                 string   `json:"jkt,omitempty"`
}

// refreshRec is a token's record without its family (kept in its own field, so a rotation
// stores next in old's family without decoding anything in Lua).
type refreshRec struct {
	ClientID  string   `json:"c"`
	Subject   string   `json:"s"`
	Scopes    []string `json:"sc,omitempty"`
	AuthTime  int64    `json:"at,omitempty"`
	IssuedAt  int64    `json:"ia,omitempty"`
	ExpiresAt int64    `json:"e,omitempty"`
	SessionID string   `json:"sid,omitempty"`
	Resources []string `json:"rs,omitempty"`
	JKT       string   `json:"jkt,omitempty"`
}

func encodeRefresh(rt *store.RefreshToken) string {
	b, _ := json.Marshal(refreshRec{ClientID: rt.ClientID, Subject: rt.Subject, Scopes: rt.Scopes,
		AuthTime: nanos(rt.AuthTime), IssuedAt: nanos(rt.IssuedAt), ExpiresAt: nanos(rt.ExpiresAt), SessionID: rt.SessionID,
		Resources: rt.Resources, JKT: rt.DPoPThumbprint})
	return string(b)
}

func decodeRefresh(d, family string) (store.RefreshToken, error) {
	var r refreshRec
	if err := json.Unmarshal([]byte(d), &r); err != nil {
		return store.RefreshToken{}, fmt.Errorf("store/redis: %w: bad refresh record: %w", store.ErrUnavailable, err)
	}
	return store.RefreshToken{FamilyID: family, ClientID: r.ClientID, Subject: r.Subject, Scopes: r.Scopes,
		AuthTime: fromNanos(r.AuthTime), IssuedAt: fromNanos(r.IssuedAt), ExpiresAt: fromNanos(r.ExpiresAt), SessionID: r.SessionID,
		Resources: r.Resources, DPoPThumbprint: r.JKT}, nil
}

// PutCode stores c under h for ttl; a hash holding a live code is ErrConflict.
func (s *Store) PutCode(ctx context.Context, h store.Hash, c store.Code, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if ttl <= 0 {
		return nil
	}
	b, _ := json.Marshal(codeRec{ClientID: c.ClientID, RedirectURI: c.RedirectURI, Subject: c.Subject, Scopes: c.Scopes,
		Nonce: c.Nonce, CodeChallenge: c.CodeChallenge, CodeChallengeMethod: c.CodeChallengeMethod,
		AuthTime: nanos(c.AuthTime), FamilyID: c.FamilyID, SessionID: c.SessionID, Resources: c.Resources,
		JKT: c.DPoPThumbprint})
	ok, err := s.c.SetNX(ctx, s.key("code", h), "0"+string(b), ttlMS(ttl)).Result()
	if err != nil {
		return s.fail(ctx, "put code", err)
	}
	if !ok {
		return store.ErrConflict
	}
	s.known.putCode(h, c, time.Now().Add(ttl))
	return nil
}

// TakeCode takes the code of clientID in one script; see store.Codes.
func (s *Store) TakeCode(ctx context.Context, h store.Hash, clientID string) (store.Code, error) {
	if err := ctx.Err(); err != nil {
		return store.Code{}, err
	}
	v, err := takeCode.Run(ctx, s.c, []string{s.key("code", h)}, clientID).Text()
	if errors.Is(err, goredis.Nil) {
		return store.Code{}, store.ErrNotFound
	}
	if err != nil {
		return store.Code{}, s.fail(ctx, "take code", err)
	}
	s.known.forget(h)
	return decodeCode(v)
}

// decodeCode decodes a code's value as the scripts answer it: the state byte and the JSON
// record; a used code is ErrAlreadyUsed with its record.
func decodeCode(v string) (store.Code, error) {
	if v == "" {
		return store.Code{}, fmt.Errorf("store/redis: %w: bad code record", store.ErrUnavailable)
	}
	// The script answers a record it decoded, so v holds the state byte and the JSON.
	var r codeRec
	if json.Unmarshal([]byte(v[1:]), &r) != nil {
		return store.Code{}, fmt.Errorf("store/redis: %w: bad code record", store.ErrUnavailable)
	}
	c := store.Code{ClientID: r.ClientID, RedirectURI: r.RedirectURI, Subject: r.Subject, Scopes: r.Scopes,
		Nonce: r.Nonce, CodeChallenge: r.CodeChallenge, CodeChallengeMethod: r.CodeChallengeMethod,
		AuthTime: fromNanos(r.AuthTime), FamilyID: r.FamilyID, SessionID: r.SessionID, Resources: r.Resources,
		DPoPThumbprint: r.JKT}
	if v[0] != '0' {
		return c, store.ErrAlreadyUsed
	}
	return c, nil
}

// CreateRefresh stores the first token of a family; see store.RefreshTokens.
func (s *Store) CreateRefresh(ctx context.Context, h store.Hash, rt store.RefreshToken) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.cluster {
		// The index is in h's slot: claim it first (SET NX), then write the family's slot.
		if done, err := s.claimIndex(ctx, h, rt); done || err != nil {
			return err
		}
	}
	return s.createRefresh(ctx, h, rt)
}

// claimIndex claims the index of a new token h in Cluster, before its family's slot is
// written: ErrConflict when h is taken; done when rt's lease already ended (nothing to
// store).
func (s *Store) claimIndex(ctx context.Context, h store.Hash, rt store.RefreshToken) (done bool, err error) {
	idx := s.key("rti", h)
	if !time.Now().Before(rt.ExpiresAt) {
		n, err := s.c.Exists(ctx, idx).Result()
		if err != nil {
			return true, s.fail(ctx, "create refresh token", err)
		}
		if n > 0 {
			return true, store.ErrConflict
		}
		return true, nil
	}
	// SET NX GET: a claim already held by the same family (left by a call that failed after
	// it) is reused; the script then checks for a live token under h in the family's slot.
	tg := tag(rt.FamilyID)
	prev, err := s.c.Do(ctx, "SET", idx, tg, "NX", "GET", "PXAT", ms(rt.ExpiresAt)).Text()
	if err != nil && !errors.Is(err, goredis.Nil) {
		return true, s.fail(ctx, "create refresh token", err)
	}
	if err == nil && prev != tg {
		return true, store.ErrConflict
	}
	return false, nil
}

// createRefresh runs the createRefresh script: with the index in indexed mode, without it (a
// claimed one) in Cluster.
func (s *Store) createRefresh(ctx context.Context, h store.Hash, rt store.RefreshToken) error {
	tg := tag(rt.FamilyID)
	keys := []string{s.tokKey(tg, h), s.famKey(tg)}
	if !s.cluster {
		keys = append(keys, s.key("rti", h))
	}
	n, err := createRefresh.Run(ctx, s.c, keys, encodeRefresh(&rt), rt.FamilyID, ms(rt.ExpiresAt), tg, startMS(rt.IssuedAt)).Int()
	if err != nil {
		return s.fail(ctx, "create refresh token", err)
	}
	if n == 0 {
		return store.ErrConflict
	}
	s.known.putRefresh(h, rt)
	return nil
}

// RedeemCode takes the code and creates the refresh token in one script; see store.Codes. In
// Cluster (the code and the token's keys live in different slots) it claims the token's index,
// takes the code, then writes the token in its family's slot: three round trips, and a failure
// of the last leaves the code taken.
func (s *Store) RedeemCode(ctx context.Context, h store.Hash, clientID string, rh store.Hash, rt store.RefreshToken) (store.Code, error) {
	if err := ctx.Err(); err != nil {
		return store.Code{}, err
	}
	if s.cluster {
		done, err := s.claimIndex(ctx, rh, rt)
		if err != nil {
			return store.Code{}, err
		}
		c, err := s.TakeCode(ctx, h, clientID)
		if err != nil || done {
			return c, err // a claim left behind points at no token
		}
		return c, s.createRefresh(ctx, rh, rt)
	}
	keys, args := s.redeemArgs(h, clientID, rh, rt)
	v, err := redeemCode.Run(ctx, s.c, keys, args...).Result()
	if errors.Is(err, goredis.Nil) {
		return store.Code{}, store.ErrNotFound
	}
	if err != nil {
		return store.Code{}, s.fail(ctx, "redeem code", err)
	}
	return s.redeemed(h, rh, rt, v)
}

// redeemArgs are the KEYS and ARGV of the redeemCode script (indexed mode).
func (s *Store) redeemArgs(h store.Hash, clientID string, rh store.Hash, rt store.RefreshToken) ([]string, []any) {
	tg := tag(rt.FamilyID)
	return []string{s.key("code", h), s.tokKey(tg, rh), s.famKey(tg), s.key("rti", rh)},
		[]any{clientID, encodeRefresh(&rt), rt.FamilyID, ms(rt.ExpiresAt), tg, startMS(rt.IssuedAt)}
}

// redeemed decodes the redeemCode script's answer v (nil: not found).
func (s *Store) redeemed(h, rh store.Hash, rt store.RefreshToken, v any) (store.Code, error) {
	if v == nil {
		return store.Code{}, store.ErrNotFound
	}
	val, ok := v.(string)
	if !ok {
		return store.Code{}, store.ErrConflict // the token's hash was taken; the code was not
	}
	s.known.forget(h)
	c, err := decodeCode(val)
	if err == nil {
		s.known.putRefresh(rh, rt)
	}
	return c, err
}

// admissionArgs are the admission's KEYS and the ARGV that start an admitted script (see
// luaAdmitted).
func (s *Store) admissionArgs(adm store.Admission) ([]string, []any) {
	names, targs := s.throttleArgs(adm.Keys, store.Success, 1)
	rate := 0
	if adm.Rate != nil {
		rate = 1
		names = append(names, s.key("rate", adm.Rate.Key))
		targs = append(targs, rateInterval(adm.Rate.PerMinute), adm.Rate.Burst)
	}
	return names, append([]any{len(names), len(targs), rate}, targs...)
}

// runAdmitted runs an admitted script with the admission's and the operation's KEYS and ARGV,
// and returns the admission's result and, when it admitted, the operation's answer.
func (s *Store) runAdmitted(ctx context.Context, sc *goredis.Script, op string, adm store.Admission, keys []string, args []any) (store.ThrottleResult, any, error) {
	akeys, aargs := s.admissionArgs(adm)
	v, err := sc.Run(ctx, s.c, append(akeys, keys...), append(aargs, args...)...).Slice()
	if err != nil {
		return store.ThrottleResult{}, nil, s.fail(ctx, op, err)
	}
	if len(v) < 2 {
		return store.ThrottleResult{}, nil, fmt.Errorf("store/redis: %s: %w: answered %d values", op, store.ErrUnavailable, len(v))
	}
	retry, _ := v[0].(int64)
	wait, _ := v[1].(int64)
	res := store.ThrottleResult{RetryAfter: time.Duration(retry) * time.Millisecond, RateWait: time.Duration(wait) * time.Microsecond}
	if res.Refused() || len(v) < 3 {
		return res, nil, nil
	}
	if e, ok := v[2].(error); ok { // the operation's error reply
		return res, nil, s.fail(ctx, op, e)
	}
	return res, v[2], nil
}

// admit applies an admission on its own (Cluster: in its own round trip).
func (s *Store) admit(ctx context.Context, adm store.Admission) (store.ThrottleResult, error) {
	if adm.Rate != nil {
		return s.ThrottleRate(ctx, adm.Keys, store.Success, *adm.Rate)
	}
	return s.Throttle(ctx, adm.Keys, store.Success)
}

// TakeCodeAdmitted is TakeCode after the admission, in one script; see store.Admissions. In
// Cluster the admission is a round trip of its own.
func (s *Store) TakeCodeAdmitted(ctx context.Context, adm store.Admission, h store.Hash, clientID string) (store.ThrottleResult, store.Code, error) {
	if err := ctx.Err(); err != nil {
		return store.ThrottleResult{}, store.Code{}, err
	}
	if s.cluster {
		res, err := s.admit(ctx, adm)
		if err != nil || res.Refused() {
			return res, store.Code{}, err
		}
		c, err := s.TakeCode(ctx, h, clientID)
		return res, c, err
	}
	res, v, err := s.runAdmitted(ctx, takeCodeAdmitted, "take code", adm, []string{s.key("code", h)}, []any{clientID})
	if err != nil || res.Refused() {
		return res, store.Code{}, err
	}
	val, _ := v.(string)
	if val == "" {
		return res, store.Code{}, store.ErrNotFound
	}
	s.known.forget(h)
	c, err := decodeCode(val)
	return res, c, err
}

// RedeemCodeAdmitted is RedeemCode after the admission, in one script; see store.Admissions.
// In Cluster (the throttles live in their own slot) the admission is a round trip of its own.
func (s *Store) RedeemCodeAdmitted(ctx context.Context, adm store.Admission, h store.Hash, clientID string, rh store.Hash, rt store.RefreshToken) (store.ThrottleResult, store.Code, error) {
	if err := ctx.Err(); err != nil {
		return store.ThrottleResult{}, store.Code{}, err
	}
	if s.cluster {
		res, err := s.admit(ctx, adm)
		if err != nil || res.Refused() {
			return res, store.Code{}, err
		}
		c, err := s.RedeemCode(ctx, h, clientID, rh, rt)
		return res, c, err
	}
	keys, args := s.redeemArgs(h, clientID, rh, rt)
	res, v, err := s.runAdmitted(ctx, redeemCodeAdmitted, "redeem code", adm, keys, args)
	if err != nil || res.Refused() {
		return res, store.Code{}, err
	}
	c, err := s.redeemed(h, rh, rt, v)
	return res, c, err
}

// RotateRefreshAdmitted is RotateRefresh after the admission, in one script; see
// store.Admissions and RedeemCodeAdmitted.
func (s *Store) RotateRefreshAdmitted(ctx context.Context, adm store.Admission, old, h store.Hash, next store.RefreshToken, sealed []byte, grace time.Duration) (store.ThrottleResult, store.RefreshToken, error) {
	if err := ctx.Err(); err != nil {
		return store.ThrottleResult{}, store.RefreshToken{}, err
	}
	if s.cluster || old == h {
		res, err := s.admit(ctx, adm)
		if err != nil || res.Refused() {
			return res, store.RefreshToken{}, err
		}
		rt, err := s.RotateRefresh(ctx, old, h, next, sealed, grace)
		return res, rt, err
	}
	keys, args := s.rotateArgs(old, h, next, sealed, grace, identityOf(&next))
	res, v, err := s.runAdmitted(ctx, rotateRefreshAdmitted, "rotate refresh token", adm, keys, args)
	if err != nil || res.Refused() {
		return res, store.RefreshToken{}, err
	}
	vs, _ := v.([]any)
	rt, err := s.rotated(old, h, next, vs)
	var other *otherIdentity
	if errors.As(err, &other) {
		// Admitted already: rotate without the admission, with old's identity.
		rt, err = s.rotate(ctx, old, h, next, sealed, grace, other.id)
		if errors.As(err, &other) {
			err = store.ErrConflict
		}
	}
	return res, rt, err
}

// refreshKeys returns the keys of the script for token h: in indexed mode its index key and
// the ARGV to build the others; in Cluster the token, family and successor keys, after
// reading the index.
func (s *Store) refreshKeys(ctx context.Context, h store.Hash) (keys []string, tg string, err error) {
	if !s.cluster {
		return []string{s.key("rti", h)}, "", nil
	}
	tg, err = s.c.Get(ctx, s.key("rti", h)).Result()
	if errors.Is(err, goredis.Nil) {
		return nil, "", store.ErrNotFound
	}
	if err != nil {
		return nil, "", s.fail(ctx, "read refresh token index", err)
	}
	return []string{s.tokKey(tg, h), s.famKey(tg), s.sucKey(tg, h)}, tg, nil
}

// GetRefresh returns an active token; ErrReused comes with the rotated token's record.
func (s *Store) GetRefresh(ctx context.Context, h store.Hash) (store.RefreshToken, error) {
	if err := ctx.Err(); err != nil {
		return store.RefreshToken{}, err
	}
	keys, _, err := s.refreshKeys(ctx, h)
	if err != nil {
		return store.RefreshToken{}, err
	}
	v, err := getRefresh.Run(ctx, s.c, keys, s.prefix, h.String()).Slice()
	if err != nil {
		return store.RefreshToken{}, s.fail(ctx, "get refresh token", err)
	}
	switch status(v) {
	case 1, 3:
		rt, err := decodeRefresh(str(v, 1), str(v, 2))
		if err != nil {
			return store.RefreshToken{}, err
		}
		if status(v) == 3 {
			return rt, store.ErrReused
		}
		return rt, nil
	case 2:
		return store.RefreshToken{}, store.ErrRevoked
	default:
		return store.RefreshToken{}, store.ErrNotFound
	}
}

func status(v []any) int64 {
	if len(v) == 0 {
		return -1
	}
	n, _ := v[0].(int64)
	return n
}

func str(v []any, i int) string {
	if i >= len(v) {
		return ""
	}
	s, _ := v[i].(string)
	return s
}

// RotateRefresh replaces old by next in one script, keeping sealed beside old's rotation for
// grace; see store.RefreshTokens. next is stored in old's family whatever next.FamilyID says.
func (s *Store) RotateRefresh(ctx context.Context, old, h store.Hash, next store.RefreshToken, sealed []byte, grace time.Duration) (store.RefreshToken, error) {
	if err := ctx.Err(); err != nil {
		return store.RefreshToken{}, err
	}
	if old == h {
		return store.RefreshToken{}, store.ErrConflict
	}
	rt, err := s.rotate(ctx, old, h, next, sealed, grace, identityOf(&next))
	var other *otherIdentity
	if errors.As(err, &other) {
		// next is not of old's client, subject and session: check old's cutoffs instead.
		rt, err = s.rotate(ctx, old, h, next, sealed, grace, other.id)
		if errors.As(err, &other) {
			return store.RefreshToken{}, store.ErrConflict
		}
	}
	return rt, err
}

// rotate runs the rotateRefresh script for RotateRefresh, checking the cutoffs of id.
func (s *Store) rotate(ctx context.Context, old, h store.Hash, next store.RefreshToken, sealed []byte, grace time.Duration, id identity) (store.RefreshToken, error) {
	if !s.cluster {
		keys, args := s.rotateArgs(old, h, next, sealed, grace, id)
		v, err := rotateRefresh.Run(ctx, s.c, keys, args...).Slice()
		if err != nil {
			return store.RefreshToken{}, s.fail(ctx, "rotate refresh token", err)
		}
		return s.rotated(old, h, next, v)
	}
	exp := ms(next.ExpiresAt)
	keys, tg, err := s.refreshKeys(ctx, old)
	if err != nil {
		return store.RefreshToken{}, err
	}
	// Claim next's index (in h's slot) before the rotation, so no rotated token is ever
	// unreachable; a claim left by a failed rotation points at no token (ErrNotFound).
	if time.Now().Before(next.ExpiresAt) {
		// SET NX GET: a claim already held by the same family is reused (the script checks
		// for a live token under h in the family's slot).
		prev, err := s.c.Do(ctx, "SET", s.key("rti", h), tg, "NX", "GET", "PXAT", exp).Text()
		if err != nil && !errors.Is(err, goredis.Nil) {
			return store.RefreshToken{}, s.fail(ctx, "rotate refresh token", err)
		}
		if err == nil && prev != tg {
			return store.RefreshToken{}, store.ErrConflict
		}
	}
	// The cutoffs live in their own slots: read before, so a cutoff recorded between the read
	// and the script ends the family at its next rotation.
	cut, err := s.latestCutoff(ctx, id.client, id.subject, id.session)
	if err != nil {
		return store.RefreshToken{}, err
	}
	keys = append(keys, s.tokKey(tg, h))
	v, err := rotateRefresh.Run(ctx, s.c, keys, s.prefix, old.String(), h.String(), encodeRefresh(&next), exp, graceMS(grace), sealed,
		id.client, id.subject, id.session, cut, 0).Slice()
	if err != nil {
		return store.RefreshToken{}, s.fail(ctx, "rotate refresh token", err)
	}
	return s.rotated(old, h, next, v)
}

// identity is whose cutoffs a rotation checks (store.CutoffKeys): the client, subject and OP
// session of the token it rotates.
type identity struct{ client, subject, session string }

func identityOf(rt *store.RefreshToken) identity {
	return identity{client: rt.ClientID, subject: rt.Subject, session: rt.SessionID}
}

// otherIdentity is the rotateRefresh script's answer when the identity it was given is not the
// old token's (id): nothing changed.
type otherIdentity struct{ id identity }

func (e *otherIdentity) Error() string { return "store/redis: rotation of another identity's token" }

// rotateArgs are the KEYS and ARGV of the rotateRefresh script in indexed mode: the cutoffs
// of next's client, subject and session are declared keys (store.CutoffKeys).
func (s *Store) rotateArgs(old, h store.Hash, next store.RefreshToken, sealed []byte, grace time.Duration, id identity) ([]string, []any) {
	cuts, n := store.CutoffKeys(id.client, id.subject, id.session)
	keys := []string{s.key("rti", old), s.key("rti", h)}
	for _, c := range cuts[:n] {
		keys = append(keys, s.cutKey(c))
	}
	return keys, []any{s.prefix, old.String(), h.String(), encodeRefresh(&next), ms(next.ExpiresAt), graceMS(grace), sealed,
		id.client, id.subject, id.session, "", n}
}

// graceMS is the grace window in the scripts' milliseconds, rounded down: a sealed successor
// is never kept longer than grace.
func graceMS(grace time.Duration) int64 { return max(grace, 0).Milliseconds() }

// rotated decodes the rotateRefresh script's answer v.
func (s *Store) rotated(old, h store.Hash, next store.RefreshToken, v []any) (store.RefreshToken, error) {
	s.known.forget(old) // rotated now, or it could not be
	switch status(v) {
	case 1:
		rec, err := decodeRefresh(str(v, 1), str(v, 2))
		if err == nil {
			next.FamilyID = rec.FamilyID // stored in old's family
			s.known.putRefresh(h, next)
		}
		return rec, err
	case 2:
		return store.RefreshToken{}, store.ErrRevoked
	case 3:
		return store.RefreshToken{}, store.ErrReused
	case 4:
		return store.RefreshToken{}, store.ErrConflict
	case 5:
		return store.RefreshToken{}, &store.SuccessorError{Sealed: []byte(str(v, 1))}
	case 6:
		rec, err := decodeRefresh(str(v, 1), "")
		if err != nil {
			return store.RefreshToken{}, err
		}
		return store.RefreshToken{}, &otherIdentity{id: identityOf(&rec)}
	default:
		return store.RefreshToken{}, store.ErrNotFound
	}
}

// ReportRefreshReuse applies the reuse rule to a rotated token in one script; see
// store.RefreshTokens.
func (s *Store) ReportRefreshReuse(ctx context.Context, h store.Hash, grace time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	keys, _, err := s.refreshKeys(ctx, h)
	if err != nil {
		return err
	}
	v, err := reportReuse.Run(ctx, s.c, keys, s.prefix, h.String(), graceMS(grace)).Slice()
	if err != nil {
		return s.fail(ctx, "report refresh token reuse", err)
	}
	switch status(v) {
	case 1:
		return nil
	case 2:
		return store.ErrRevoked
	case 3:
		return store.ErrReused
	case 4:
		return store.ErrConflict
	case 5:
		if err := s.successorCutOff(ctx, str(v, 2), str(v, 3)); err != nil {
			return err
		}
		return &store.SuccessorError{Sealed: []byte(str(v, 1))}
	default:
		return store.ErrNotFound
	}
}

// RevokeFamily revokes the family until until, or while any of its tokens lives.
func (s *Store) RevokeFamily(ctx context.Context, familyID string, until time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := revokeFamily.Run(ctx, s.c, []string{s.famKey(tag(familyID))}, ms(until)).Err(); err != nil {
		return s.fail(ctx, "revoke family", err)
	}
	return nil
}

// FamilyRevoked reports whether the family was revoked.
func (s *Store) FamilyRevoked(ctx context.Context, familyID string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	ok, err := s.c.HExists(ctx, s.famKey(tag(familyID)), "rv").Result()
	if err != nil {
		return false, s.fail(ctx, "family revoked", err)
	}
	return ok, nil
}

func (s *Store) jtiKey(jti string) string { return s.prefix + "jti:" + jti }

// RevokeToken remembers jti until until, never shortening an earlier revocation.
func (s *Store) RevokeToken(ctx context.Context, jti string, until time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !time.Now().Before(until) {
		return nil
	}
	k, at := s.jtiKey(jti), time.UnixMilli(ms(until))
	_, err := s.c.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.SetArgs(ctx, k, "1", goredis.SetArgs{Mode: "NX", ExpireAt: at})
		p.Do(ctx, "PEXPIREAT", k, at.UnixMilli(), "GT")
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		return s.fail(ctx, "revoke token", err)
	}
	return nil
}

// TokenRevoked reports whether jti was revoked.
func (s *Store) TokenRevoked(ctx context.Context, jti string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	n, err := s.c.Exists(ctx, s.jtiKey(jti)).Result()
	if err != nil {
		return false, s.fail(ctx, "token revoked", err)
	}
	return n > 0, nil
}

func (s *Store) recKey(kind string, h store.Hash) string {
	return s.prefix + "rec:" + strconv.Itoa(len(kind)) + ":" + kind + ":{" + h.String() + "}"
}

// PutRecord stores value under kind and h for ttl, replacing any record.
func (s *Store) PutRecord(ctx context.Context, kind string, h store.Hash, value []byte, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var err error
	if ttl <= 0 {
		err = s.c.Del(ctx, s.recKey(kind, h)).Err()
	} else {
		err = s.c.Set(ctx, s.recKey(kind, h), value, ttlMS(ttl)).Err()
	}
	if err != nil {
		return s.fail(ctx, "put record", err)
	}
	return nil
}

// GetRecord returns the record under kind and h.
func (s *Store) GetRecord(ctx context.Context, kind string, h store.Hash) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b, err := s.c.Get(ctx, s.recKey(kind, h)).Bytes()
	if errors.Is(err, goredis.Nil) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, s.fail(ctx, "get record", err)
	}
	return b, nil
}

// DeleteRecord deletes the record under kind and h, if any.
func (s *Store) DeleteRecord(ctx context.Context, kind string, h store.Hash) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.c.Del(ctx, s.recKey(kind, h)).Err(); err != nil {
		return s.fail(ctx, "delete record", err)
	}
	return nil
}

// TakeRecord returns the record under kind and h and deletes it (GETDEL, one atomic step).
func (s *Store) TakeRecord(ctx context.Context, kind string, h store.Hash) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b, err := s.c.GetDel(ctx, s.recKey(kind, h)).Bytes()
	if errors.Is(err, goredis.Nil) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, s.fail(ctx, "take record", err)
	}
	return b, nil
}

func (s *Store) listKey(kind string, h store.Hash) string {
	return s.prefix + "list:" + strconv.Itoa(len(kind)) + ":" + kind + ":{" + h.String() + "}"
}

// PutEntry stores an entry in one script (putEntry); see store.Lists.
func (s *Store) PutEntry(ctx context.Context, kind string, h store.Hash, id string, value []byte, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if ttl <= 0 {
		return s.DeleteEntry(ctx, kind, h, id)
	}
	if err := putEntry.Run(ctx, s.c, []string{s.listKey(kind, h)}, id, value, ceilMS(ttl), store.MaxListEntries).Err(); err != nil {
		return s.fail(ctx, "put entry", err)
	}
	return nil
}

// ListEntries returns the live entries ordered by id; see store.Lists. Entries are live until
// their lease ends by this replica's clock (the script drops them by the server's).
func (s *Store) ListEntries(ctx context.Context, kind string, h store.Hash) ([]store.Entry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	all, err := s.c.HGetAll(ctx, s.listKey(kind, h)).Result()
	if err != nil {
		return nil, s.fail(ctx, "list entries", err)
	}
	now := time.Now()
	out := make([]store.Entry, 0, len(all))
	for id, v := range all {
		expMS, value, ok := strings.Cut(v, " ")
		n, err := strconv.ParseInt(expMS, 10, 64)
		if !ok || err != nil {
			continue
		}
		if exp := time.UnixMilli(n); exp.After(now) {
			out = append(out, store.Entry{ID: id, Value: []byte(value), ExpiresAt: exp})
		}
	}
	slices.SortFunc(out, func(a, b store.Entry) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// DeleteEntry removes an entry; see store.Lists.
func (s *Store) DeleteEntry(ctx context.Context, kind string, h store.Hash, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.c.HDel(ctx, s.listKey(kind, h), id).Err(); err != nil {
		return s.fail(ctx, "delete entry", err)
	}
	return nil
}

// Incr adds one to the counter (SET NX with the window, then INCR, in one transaction).
func (s *Store) Incr(ctx context.Context, key store.Hash, window time.Duration) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	k := s.key("cnt", key)
	var incr *goredis.IntCmd
	_, err := s.c.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.SetNX(ctx, k, 0, ttlMS(max(window, time.Millisecond)))
		incr = p.Incr(ctx, k)
		return nil
	})
	if err != nil {
		return 0, s.fail(ctx, "incr", err)
	}
	return incr.Val(), nil
}

// Reset drops the counter.
func (s *Store) Reset(ctx context.Context, key store.Hash) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.c.Del(ctx, s.key("cnt", key)).Err(); err != nil {
		return s.fail(ctx, "reset", err)
	}
	return nil
}

// throttleArgs returns the KEYS and ARGV of the throttle script for the keys, with room for
// extra more of each.
func (s *Store) throttleArgs(keys []store.ThrottleKey, outcome store.Outcome, extra int) ([]string, []any) {
	names := make([]string, len(keys), len(keys)+extra)
	args := make([]any, 0, 1+5*len(keys)+2*extra)
	args = append(args, int(outcome))
	for i, k := range keys {
		names[i] = s.prefix + "thr:" + throttleTag + ":" + k.Key.String()
		reset := 0
		if k.ResetOnSuccess {
			reset = 1
		}
		args = append(args, k.Limit, ceilMS(max(k.Window, time.Millisecond)), ceilMS(k.Backoff), ceilMS(k.MaxBackoff), reset)
	}
	return names, args
}

// throttleTag puts every throttle key in one hash slot, so that one script sees all the keys
// of an attempt (identity and address counters share no natural tag) also in Redis Cluster.
const throttleTag = "{thr}"

// Throttle records an attempt on the keys in one script; see store.Throttles.
func (s *Store) Throttle(ctx context.Context, keys []store.ThrottleKey, outcome store.Outcome) (store.ThrottleResult, error) {
	if err := ctx.Err(); err != nil {
		return store.ThrottleResult{}, err
	}
	names, args := s.throttleArgs(keys, outcome, 0)
	v, err := throttle.Run(ctx, s.c, names, args...).Int64Slice()
	if err != nil {
		return store.ThrottleResult{}, s.fail(ctx, "throttle", err)
	}
	if len(v) != 1+len(keys) {
		return store.ThrottleResult{}, fmt.Errorf("store/redis: throttle answered %d values for %d keys", len(v), len(keys))
	}
	return store.ThrottleResult{RetryAfter: time.Duration(v[0]) * time.Millisecond, Failures: v[1:]}, nil
}

// ThrottleRate is Throttle and TakeRate in one script; see store.Throttles. In Cluster (the
// bucket's key is not in the throttles' slot) it is Throttle, then TakeRate: two round trips.
func (s *Store) ThrottleRate(ctx context.Context, keys []store.ThrottleKey, outcome store.Outcome, rt store.RateTake) (store.ThrottleResult, error) {
	if s.cluster {
		res, err := s.Throttle(ctx, keys, outcome)
		if err != nil || res.RetryAfter > 0 || outcome != store.Success {
			return res, err
		}
		res.RateWait, err = s.TakeRate(ctx, rt.Key, rt.PerMinute, rt.Burst)
		return res, err
	}
	if err := ctx.Err(); err != nil {
		return store.ThrottleResult{}, err
	}
	names, args := s.throttleArgs(keys, outcome, 1)
	names = append(names, s.key("rate", rt.Key))
	args = append(args, rateInterval(rt.PerMinute), rt.Burst)
	v, err := throttleRate.Run(ctx, s.c, names, args...).Int64Slice()
	if err != nil {
		return store.ThrottleResult{}, s.fail(ctx, "throttle and take rate", err)
	}
	if len(v) != 2+len(keys) {
		return store.ThrottleResult{}, fmt.Errorf("store/redis: throttle and take rate answered %d values for %d keys", len(v), len(keys))
	}
	return store.ThrottleResult{RetryAfter: time.Duration(v[0]) * time.Millisecond, Failures: v[1 : 1+len(keys)],
		RateWait: time.Duration(v[1+len(keys)]) * time.Microsecond}, nil
}

// rateInterval is a bucket's emission interval (one request) in µs.
func rateInterval(perMinute int) float64 {
	return float64(time.Minute/time.Microsecond) / float64(perMinute)
}

// TakeRate takes one request from the key's bucket with a GCRA script; see store.RateLimits.
func (s *Store) TakeRate(ctx context.Context, key store.Hash, perMinute, burst int) (time.Duration, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	wait, err := takeRate.Run(ctx, s.c, []string{s.key("rate", key)}, rateInterval(perMinute), burst).Int64()
	if err != nil {
		return 0, s.fail(ctx, "take rate", err)
	}
	return time.Duration(wait) * time.Microsecond, nil
}

// Fields of the credential uses hash: the credential's letter, then the client ID.
const (
	currentUse  = "c:"
	previousUse = "p:"
)

func (s *Store) usesKey() string { return s.prefix + "uses" }

// NoteCredentialUses keeps the latest time of each client's credential in one script; see
// store.CredentialUses.
func (s *Store) NoteCredentialUses(ctx context.Context, uses []store.CredentialUse) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(uses) == 0 {
		return nil
	}
	args := make([]any, 0, 1+2*len(uses))
	args = append(args, ceilMS(store.CredentialUseLease))
	for _, u := range uses {
		field := currentUse + u.ClientID
		if u.Previous {
			field = previousUse + u.ClientID
		}
		args = append(args, field, u.At.UnixMicro())
	}
	if err := noteUses.Run(ctx, s.c, []string{s.usesKey()}, args...).Err(); err != nil {
		return s.fail(ctx, "note credential uses", err)
	}
	return nil
}

// TakeCredentialUses removes and returns up to limit noted uses in one script.
func (s *Store) TakeCredentialUses(ctx context.Context, limit int) ([]store.CredentialUse, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	v, err := takeUses.Run(ctx, s.c, []string{s.usesKey()}, limit).StringSlice()
	if err != nil {
		return nil, s.fail(ctx, "take credential uses", err)
	}
	out := make([]store.CredentialUse, 0, len(v)/2)
	for i := 0; i+1 < len(v); i += 2 {
		us, err := strconv.ParseInt(v[i+1], 10, 64)
		if err != nil {
			continue // not ours: dropped
		}
		u := store.CredentialUse{At: time.UnixMicro(us).UTC()}
		switch {
		case strings.HasPrefix(v[i], currentUse):
			u.ClientID = v[i][len(currentUse):]
		case strings.HasPrefix(v[i], previousUse):
			u.ClientID, u.Previous = v[i][len(previousUse):], true
		default:
			continue
		}
		out = append(out, u)
	}
	return out, nil
}

var _ store.Store = (*Store)(nil)

// Start waits for ctx to end, then closes the client: with NeedLeaderElection it makes the
// store a controller-runtime Runnable on every replica, like the memory store.
func (s *Store) Start(ctx context.Context) error {
	<-ctx.Done()
	return s.Close()
}

// NeedLeaderElection is false: every replica uses the store.
func (s *Store) NeedLeaderElection() bool { return false }
