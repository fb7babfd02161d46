package memory

import (
	"context"
	"crypto/sha256"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/latchkey-dev/latchkey/server/store"
)

const (
	// notRotated is refreshRecord.rotated of an active token.
	notRotated = math.MinInt64
	// oddFamily marks refreshRecord.name as the ID of a family ID that is not canonical.
	oddFamily = 1 << 31
)

// refreshRecord is a refresh token's record: 64 bytes without a pointer, so a million of them
// cost the garbage collector nothing to scan. Strings and scope sets are IDs in the shard's
// interning tables; times are Unix nanoseconds.
type refreshRecord struct {
	// family is the family ID decoded from its canonical form (22 characters of base64url,
	// 16 bytes), or for any other string the first 16 bytes of its SHA-256, with the string
	// itself interned under name.
	family   [16]byte
	name     uint32 // oddFamily | ID in strs; 0 for a canonical family ID
	client   uint32
	subject  uint32 // the subject, with "\x00" and the session ID after it when there is one
	scopes   uint32
	authTime int64
	issuedAt int64
	expires  int64
	rotated  int64 // when it was rotated; notRotated while active
}

// familyKey names a family in the revocation shards.
type familyKey struct {
	raw    [16]byte
	hashed bool // raw is a SHA-256 prefix, not a canonical ID
}

func (r *refreshRecord) familyKey() familyKey {
	return familyKey{raw: r.family, hashed: r.name != 0}
}

// familyShard holds the revoked families whose key falls in it. Its mutex is always taken
// last (never while waiting for a shard's), so the two kinds of lock cannot deadlock.
type familyShard struct {
	mu      sync.Mutex
	revoked map[familyKey]int64 // until, Unix nanoseconds
	exp     deadlines[familyKey]
	_       [64]byte
}

func (f *familyShard) expire(now int64, limit int) int {
	n := 0
	for ; n < limit && f.exp.due(now); n++ {
		k := f.exp.pop().key
		if until, ok := f.revoked[k]; ok && until <= now {
			delete(f.revoked, k)
		}
	}
	return n
}

func (s *Store) parseFamily(id string) familyKey {
	var k familyKey
	if len(id) == 22 {
		if n, err := s.b64.Decode(k.raw[:], []byte(id)); err == nil && n == len(k.raw) {
			return k
		}
	}
	sum := sha256.Sum256([]byte(id))
	copy(k.raw[:], sum[:])
	k.hashed = true
	return k
}

func (s *Store) familyShard(k familyKey) *familyShard {
	return &s.families[uint64(k.raw[0])&s.mask]
}

func (s *Store) familyRevoked(k familyKey, now int64) bool {
	f := s.familyShard(k)
	f.mu.Lock()
	until, ok := f.revoked[k]
	f.mu.Unlock()
	return ok && until > now
}

// revokeFamily remembers the family as revoked until until, or until maxExpiry if later (or
// longer, when it already was). maxExpiry is read under the family's lock: a token stored
// concurrently either raised it before, or finds the revocation when it calls
// extendRevocation after.
func (s *Store) revokeFamily(k familyKey, until, now int64) {
	f := s.familyShard(k)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.expire(now, lazyBatch)
	until = max(until, s.maxExpiry.Load())
	if until <= now {
		return
	}
	if cur, ok := f.revoked[k]; ok && cur >= until {
		return
	}
	f.revoked[k] = until
	f.exp.push(until, k)
}

// extendRevocation keeps a revoked family revoked until a token just stored in it expires.
// Every store of a token calls it, after noteExpiry and after storing.
func (s *Store) extendRevocation(k familyKey, expires, now int64) {
	f := s.familyShard(k)
	f.mu.Lock()
	if cur, ok := f.revoked[k]; ok && cur > now && cur < expires {
		f.revoked[k] = expires
		f.exp.push(expires, k)
	}
	f.mu.Unlock()
}

// noteExpiry raises maxExpiry to exp. It is called before a token is stored, so a revocation
// computed after it covers the token.
func (s *Store) noteExpiry(exp int64) {
	for {
		cur := s.maxExpiry.Load()
		if cur >= exp || s.maxExpiry.CompareAndSwap(cur, exp) {
			return
		}
	}
}

func (sh *shard) ref(v string) uint32 {
	id, ok := sh.strs.acquire(v)
	if !ok {
		id = sh.strs.add(strings.Clone(v), struct{}{})
	}
	return id
}

func (sh *shard) refScopes(scopes []string) uint32 {
	sh.buf = appendScopesKey(sh.buf[:0], scopes)
	if id, ok := sh.scopes.acquireBytes(sh.buf); ok {
		return id
	}
	own := make([]string, len(scopes))
	for i, sc := range scopes {
		own[i] = strings.Clone(sc)
	}
	return sh.scopes.add(string(sh.buf), own)
}

// subjectSession is what a refresh record interns as its subject: the subject, and the OP
// session ID after a NUL when there is one, and the DPoP key thumbprint after another NUL when
// there is one (sharing the field keeps the record at 64 bytes; no value holds a NUL).
func subjectSession(subject, session, jkt string) string {
	switch {
	case jkt != "":
		return subject + "\x00" + session + "\x00" + jkt
	case session != "":
		return subject + "\x00" + session
	}
	return subject
}

// splitSubject undoes subjectSession.
func splitSubject(s string) (subject, session, jkt string) {
	subject, rest, _ := strings.Cut(s, "\x00")
	session, jkt, _ = strings.Cut(rest, "\x00")
	return subject, session, jkt
}

// encodeRefresh interns rt's values in the shard; familyName is the family ID when k.hashed.
func (sh *shard) encodeRefresh(rt *store.RefreshToken, k familyKey, familyName string, expires int64) refreshRecord {
	r := refreshRecord{
		family:   k.raw,
		client:   sh.ref(rt.ClientID),
		subject:  sh.ref(subjectSession(rt.Subject, rt.SessionID, rt.DPoPThumbprint)),
		scopes:   sh.refScopes(grantedSet(rt.Scopes, rt.Resources)),
		authTime: unixNano(rt.AuthTime),
		issuedAt: unixNano(rt.IssuedAt),
		expires:  expires,
		rotated:  notRotated,
	}
	if k.hashed {
		r.name = oddFamily | sh.ref(familyName)
	}
	return r
}

func (sh *shard) releaseRefresh(r refreshRecord) {
	sh.strs.release(r.client)
	sh.strs.release(r.subject)
	sh.scopes.release(r.scopes)
	if r.name != 0 {
		sh.strs.release(r.name &^ oddFamily)
	}
}

// setRefresh stores r under h, replacing (and releasing) an expired record there.
func (sh *shard) setRefresh(h *store.Hash, r refreshRecord) {
	if p, ok := sh.refresh.find(h); ok {
		sh.releaseRefresh(sh.refresh.remove(p))
	}
	sh.refresh.insert(h, r)
}

// refreshView is a record with its interned values looked up, taken under the shard's lock
// (the strings and the scope slice it holds are never written again).
type refreshView struct {
	r       refreshRecord
	client  string
	subject string
	session string
	jkt     string
	family  string // when r.name != 0
	scopes  []string
}

func (sh *shard) view(r refreshRecord) refreshView {
	v := refreshView{
		r:      r,
		client: sh.strs.key(r.client),
		scopes: sh.scopes.val(r.scopes),
	}
	v.subject, v.session, v.jkt = splitSubject(sh.strs.key(r.subject))
	if r.name != 0 {
		v.family = sh.strs.key(r.name &^ oddFamily)
	}
	return v
}

func (s *Store) token(v *refreshView) store.RefreshToken {
	family := v.family
	scopes, resources := splitGrantedSet(v.scopes)
	if v.r.name == 0 {
		family = s.b64.EncodeToString(v.r.family[:])
	}
	return store.RefreshToken{
		FamilyID:       family,
		ClientID:       v.client,
		Subject:        v.subject,
		SessionID:      v.session,
		Scopes:         slices.Clone(scopes),
		Resources:      slices.Clone(resources),
		DPoPThumbprint: v.jkt,
		AuthTime:       fromUnixNano(v.r.authTime),
		IssuedAt:       fromUnixNano(v.r.issuedAt),
		ExpiresAt:      fromUnixNano(v.r.expires),
	}
}

// CreateRefresh stores the first token of a family; see store.RefreshTokens. A hash that holds
// a live token is ErrConflict; a token whose ExpiresAt has passed is not stored. A token
// created in a revoked family is stored but revoked, and so is one whose family a cutoff ends
// (cutoff.go).
func (s *Store) CreateRefresh(ctx context.Context, h store.Hash, rt store.RefreshToken) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	now := s.nowNano()
	exp := unixNano(rt.ExpiresAt)
	k := s.parseFamily(rt.FamilyID)
	sh := s.shardOf(h)
	sh.mu.Lock()
	if old, ok := sh.refresh.get(&h); ok && old.expires > now {
		sh.mu.Unlock()
		return store.ErrConflict
	}
	sh.expire(now, lazyBatch)
	if exp <= now {
		sh.mu.Unlock()
		return nil
	}
	s.noteExpiry(exp)
	sh.setRefresh(&h, sh.encodeRefresh(&rt, k, rt.FamilyID, exp))
	sh.mu.Unlock()
	s.extendRevocation(k, exp, now)
	s.cutOffOnCreate(&rt, k, now)
	return nil
}

// GetRefresh returns an active token; see store.RefreshTokens. ErrReused comes with the
// rotated token's record (so the caller can check whose it is); other errors with a zero one.
func (s *Store) GetRefresh(ctx context.Context, h store.Hash) (store.RefreshToken, error) {
	if err := ctx.Err(); err != nil {
		return store.RefreshToken{}, err
	}
	now := s.nowNano()
	sh := s.shardOf(h)
	sh.mu.Lock()
	r, ok := sh.refresh.get(&h)
	if !ok || r.expires <= now {
		sh.mu.Unlock()
		return store.RefreshToken{}, store.ErrNotFound
	}
	v := sh.view(r)
	sh.mu.Unlock()
	if s.familyRevoked(r.familyKey(), now) {
		return store.RefreshToken{}, store.ErrRevoked
	}
	if r.rotated != notRotated {
		return s.token(&v), store.ErrReused
	}
	return s.token(&v), nil
}

// RotateRefresh replaces old by next; see store.RefreshTokens. next is stored in old's family
// whatever its FamilyID says; a next whose ExpiresAt has passed is not stored (and sealed is
// not kept). h equal to old, or holding a live token, is ErrConflict. Errors come with a zero
// record.
func (s *Store) RotateRefresh(ctx context.Context, old, h store.Hash, next store.RefreshToken, sealed []byte, grace time.Duration) (store.RefreshToken, error) {
	if err := ctx.Err(); err != nil {
		return store.RefreshToken{}, err
	}
	if old == h {
		return store.RefreshToken{}, store.ErrConflict
	}
	now := s.nowNano()
	nextExp := unixNano(next.ExpiresAt)
	if nextExp > now {
		s.noteExpiry(nextExp)
	}
	sa, sb, unlock := s.lockPair(old, h)
	p, ok := sa.refresh.find(&old)
	var r refreshRecord
	if ok {
		r = sa.refresh.slab[p].rec
	}
	if !ok || r.expires <= now {
		unlock()
		return store.RefreshToken{}, store.ErrNotFound
	}
	k := r.familyKey()
	if s.familyRevoked(k, now) {
		unlock()
		return store.RefreshToken{}, store.ErrRevoked
	}
	if r.rotated != notRotated {
		unlock()
		if now-r.rotated < int64(grace) {
			return store.RefreshToken{}, s.presentedWithinGrace(old, k, r.expires, now)
		}
		s.revokeFamily(k, r.expires, now)
		return store.RefreshToken{}, store.ErrReused
	}
	if x, ok := sb.refresh.get(&h); ok && x.expires > now {
		unlock()
		return store.RefreshToken{}, store.ErrConflict
	}
	v := sa.view(r)
	sa.refresh.slab[p].rec.rotated = now
	if nextExp > now {
		sb.setRefresh(&h, sb.encodeRefresh(&next, k, v.family, nextExp))
		if len(sealed) > 0 && grace > 0 {
			sa.keepSuccessor(old, h, sealed, now+int64(grace))
		}
	}
	sb.expire(now, lazyBatch)
	unlock()
	if nextExp > now {
		// The family may have been revoked since the check above.
		s.extendRevocation(k, nextExp, now)
	}
	return s.token(&v), nil
}

// ReportRefreshReuse applies the reuse rule to a rotated token; see store.RefreshTokens.
func (s *Store) ReportRefreshReuse(ctx context.Context, h store.Hash, grace time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	now := s.nowNano()
	sh := s.shardOf(h)
	sh.mu.Lock()
	r, ok := sh.refresh.get(&h)
	sh.mu.Unlock()
	if !ok || r.expires <= now {
		return store.ErrNotFound
	}
	k := r.familyKey()
	switch {
	case s.familyRevoked(k, now):
		return store.ErrRevoked
	case r.rotated == notRotated:
		return nil
	case now-r.rotated < int64(grace):
		return s.presentedWithinGrace(h, k, r.expires, now)
	}
	s.revokeFamily(k, r.expires, now)
	return store.ErrReused
}

// RevokeFamily revokes every token of the family. The revocation is remembered until until,
// or until the latest ExpiresAt of any refresh token stored if that is later, so that no
// token of the family outlives it.
func (s *Store) RevokeFamily(ctx context.Context, familyID string, until time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.revokeFamily(s.parseFamily(familyID), unixNano(until), s.nowNano())
	return nil
}

// FamilyRevoked reports whether the family was revoked.
func (s *Store) FamilyRevoked(ctx context.Context, familyID string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	return s.familyRevoked(s.parseFamily(familyID), s.nowNano()), nil
}

// grantedSet is what a refresh record interns as its scope set: the scopes and, when the
// family holds resources (RFC 8707), an empty marker and the resources after them (a scope
// name is never empty; sharing the set keeps the record at 64 bytes).
func grantedSet(scopes, resources []string) []string {
	if resources == nil {
		return scopes
	}
	set := make([]string, 0, len(scopes)+1+len(resources))
	set = append(set, scopes...)
	set = append(set, "")
	return append(set, resources...)
}

// splitGrantedSet is grantedSet's inverse.
func splitGrantedSet(set []string) (scopes, resources []string) {
	i := slices.Index(set, "")
	switch {
	case i < 0:
		return set, nil
	case i == 0:
		return nil, set[1:]
	}
	return set[:i], set[i+1:]
}
