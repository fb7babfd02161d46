package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Algorithms Latchkey signs with.
const (
	RS256 = string(jose.RS256)
	ES256 = string(jose.ES256)
	EdDSA = string(jose.EdDSA)
)

// SupportedAlgorithms lists every algorithm in the order the discovery document shows them.
func SupportedAlgorithms() []string { return []string{RS256, ES256, EdDSA} }

// Header types of the tokens signed here.
const (
	TypeAccessToken = "at+jwt" // RFC 9068
	TypeJWT         = "JWT"    // ID tokens
)

// ErrNoKey is returned when the keyring has no active key for an algorithm.
var ErrNoKey = errors.New("keys: no active signing key for algorithm")

// Key is one signing key and its schedule.
type Key struct {
	ID         string
	Algorithm  string
	Created    time.Time
	ActiveFrom time.Time
	RetireAt   time.Time
	// RetiredEarly marks a key retired at once (RetireNow: suspected leaked) rather than on
	// schedule. It neither signs nor is published on any replica's clock, and it stays in the set,
	// for the record, until every token it could have signed has expired (Rotate drops it then).
	RetiredEarly bool
	Private      crypto.Signer
}

// retired reports whether k is out of the JWKS and signs nothing at now.
func (k Key) retired(now time.Time) bool {
	return k.RetiredEarly || (!k.RetireAt.IsZero() && !now.Before(k.RetireAt))
}

// Set is the persisted key set.
type Set struct {
	Keys []Key
}

type wireKey struct {
	ID         string     `json:"kid"`
	Algorithm  string     `json:"alg"`
	Created    time.Time  `json:"created"`
	ActiveFrom time.Time  `json:"activeFrom"`
	RetireAt   *time.Time `json:"retireAt,omitempty"`
	// RetiredEarly goes with RetireAt: a binary that does not know it still honours RetireAt.
	RetiredEarly bool            `json:"retiredEarly,omitempty"`
	JWK          jose.JSONWebKey `json:"jwk"`
}

type wireSet struct {
	Keys []wireKey `json:"keys"`
}

// ClockSkew is how far behind another replica's clock may be. The keys of a brand-new set are
// active from ClockSkew before their creation, so every replica can sign with them at once.
const ClockSkew = 5 * time.Minute

// JWKSMaxAge is the longest a verifier may cache the JWKS (the max-age of its Cache-Control; the
// HTTP handler must not send more). A key added to a set that is already published starts
// signing PublishLead after its creation: by then every cached JWKS holds it, on every replica's
// clock.
const (
	JWKSMaxAge  = 5 * time.Minute
	PublishLead = JWKSMaxAge + ClockSkew
)

// NewKey generates a key for the algorithm, active from now.
func NewKey(alg string, now time.Time) (Key, error) {
	var priv crypto.Signer
	var err error
	switch alg {
	case RS256:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case EdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		return Key{}, fmt.Errorf("keys: unsupported algorithm %q", alg)
	}
	if err != nil {
		return Key{}, fmt.Errorf("keys: generate %s key: %w", alg, err)
	}
	kid := make([]byte, 12)
	if _, err := rand.Read(kid); err != nil {
		return Key{}, err
	}
	now = now.UTC().Truncate(time.Second)
	return Key{
		ID: fmt.Sprintf("%s-%x", alg, kid), Algorithm: alg, Created: now, ActiveFrom: now, Private: priv,
	}, nil
}

// Generate returns a new set with one key for each algorithm.
func Generate(algs []string, now time.Time) (*Set, error) {
	s := &Set{}
	if _, err := s.Ensure(algs, now); err != nil {
		return nil, err
	}
	return s, nil
}

// Ensure adds a key for every algorithm that has no unretired key; it reports whether it added
// any. In a brand-new (empty) set the keys are active at once (from ClockSkew before now); a key
// added to a set that already has keys, so may already be published and cached by verifiers, is
// published first and signs from PublishLead after now.
func (s *Set) Ensure(algs []string, now time.Time) (bool, error) {
	changed := false
	fresh := len(s.Keys) == 0
	for _, alg := range algs {
		if slices.ContainsFunc(s.Keys, func(k Key) bool { return k.Algorithm == alg && !k.retired(now) }) {
			continue
		}
		k, err := NewKey(alg, now)
		if err != nil {
			return changed, err
		}
		if fresh {
			k.ActiveFrom = k.Created.Add(-ClockSkew)
		} else {
			k.ActiveFrom = k.Created.Add(PublishLead)
		}
		s.Keys = append(s.Keys, k)
		changed = true
	}
	return changed, nil
}

// Marshal encodes the set, private keys included: store it only in a Secret or a 0600 file.
func (s *Set) Marshal() ([]byte, error) {
	w := wireSet{Keys: make([]wireKey, 0, len(s.Keys))}
	for _, k := range s.Keys {
		wk := wireKey{
			ID: k.ID, Algorithm: k.Algorithm, Created: k.Created, ActiveFrom: k.ActiveFrom, RetiredEarly: k.RetiredEarly,
			JWK: jose.JSONWebKey{Key: k.Private, KeyID: k.ID, Algorithm: k.Algorithm, Use: "sig"},
		}
		if !k.RetireAt.IsZero() {
			t := k.RetireAt
			wk.RetireAt = &t
		}
		w.Keys = append(w.Keys, wk)
	}
	return json.MarshalIndent(w, "", "  ")
}

// Parse decodes a set written by Marshal and checks every key.
func Parse(data []byte) (*Set, error) {
	var w wireSet
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, fmt.Errorf("keys: decode key set: %w", err)
	}
	s := &Set{Keys: make([]Key, 0, len(w.Keys))}
	for i, wk := range w.Keys {
		priv, ok := wk.JWK.Key.(crypto.Signer)
		if !ok || wk.JWK.IsPublic() {
			return nil, fmt.Errorf("keys: key %d (%s) has no private key", i, wk.ID)
		}
		if err := checkAlgorithm(wk.Algorithm, priv); err != nil {
			return nil, fmt.Errorf("keys: key %d (%s): %w", i, wk.ID, err)
		}
		if wk.ID == "" {
			return nil, fmt.Errorf("keys: key %d has no kid", i)
		}
		if wk.RetiredEarly && wk.RetireAt == nil {
			return nil, fmt.Errorf("keys: key %d (%s) is retired early without retireAt", i, wk.ID)
		}
		k := Key{ID: wk.ID, Algorithm: wk.Algorithm, Created: wk.Created, ActiveFrom: wk.ActiveFrom, RetiredEarly: wk.RetiredEarly, Private: priv}
		if wk.RetireAt != nil {
			k.RetireAt = *wk.RetireAt
		}
		s.Keys = append(s.Keys, k)
	}
	return s, nil
}

func checkAlgorithm(alg string, priv crypto.Signer) error {
	switch p := priv.(type) {
	case *rsa.PrivateKey:
		if alg == RS256 && p.N.BitLen() >= 2048 {
			return nil
		}
	case *ecdsa.PrivateKey:
		if alg == ES256 && p.Curve == elliptic.P256() {
			return nil
		}
	case ed25519.PrivateKey:
		if alg == EdDSA {
			return nil
		}
	}
	return fmt.Errorf("algorithm %q does not fit the key", alg)
}

// LoadOrCreateFile reads the key set from path, or generates one for algs and writes it there
// (mode 0600) when the file does not exist. Missing algorithms are added and written back.
func LoadOrCreateFile(path string, algs []string, now time.Time) (*Set, error) {
	data, err := os.ReadFile(path)
	var s *Set
	switch {
	case errors.Is(err, os.ErrNotExist):
		s = &Set{}
	case err != nil:
		return nil, fmt.Errorf("keys: read %s: %w", path, err)
	default:
		if s, err = Parse(data); err != nil {
			return nil, err
		}
	}
	changed, err := s.Ensure(algs, now)
	if err != nil {
		return nil, err
	}
	if !changed {
		return s, nil
	}
	out, err := s.Marshal()
	if err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".keys-*")
	if err != nil {
		return nil, fmt.Errorf("keys: write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) //nolint:errcheck // gone after the rename
	if _, err := tmp.Write(out); err != nil {
		tmp.Close() //nolint:errcheck,gosec // the write error is the one to report
		return nil, fmt.Errorf("keys: write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("keys: write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return nil, fmt.Errorf("keys: write %s: %w", path, err)
	}
	return s, nil
}

// Signer signs tokens with one key.
type Signer struct {
	KeyID     string
	Algorithm string
	key       Key
	byType    map[string]*compactSigner
}

// Sign returns the compact JWS of payload with the header typ (TypeAccessToken or TypeJWT).
func (s *Signer) Sign(typ string, payload []byte) (string, error) {
	cs, ok := s.byType[typ]
	if !ok {
		return "", fmt.Errorf("keys: unknown token type %q", typ)
	}
	return cs.sign(payload)
}

// JOSESigner returns a go-jose signer of the key that writes typ and the key ID into the
// protected header, for tokens signed rarely enough that Sign's speed does not matter (logout
// tokens); go-jose builds and encodes them.
func (s *Signer) JOSESigner(typ string) (jose.Signer, error) {
	return jose.NewSigner(
		jose.SigningKey{Algorithm: jose.SignatureAlgorithm(s.Algorithm), Key: jose.JSONWebKey{Key: s.key.Private, KeyID: s.KeyID, Algorithm: s.Algorithm}},
		(&jose.SignerOptions{}).WithType(jose.ContentType(typ)))
}

type compiled struct {
	signers map[string][]*Signer // by algorithm, newest active first
	set     []Key                // as loaded, for Set
	keys    []Key                // newest ActiveFrom first
	view    atomic.Pointer[publicView]
}

// publicView is the published part of a compiled set at some time: every key not retired then.
// It stays valid until the next RetireAt after that time (zero: for ever).
type publicView struct {
	jwks   []byte
	public jose.JSONWebKeySet
	until  time.Time
}

// publicAt builds the view of the keys not retired at now.
func (c *compiled) publicAt(now time.Time) (*publicView, error) {
	v := &publicView{public: jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}}
	for _, key := range c.keys {
		if key.retired(now) {
			continue // retired: every token it signed has expired, or it was retired early
		}
		if !key.RetireAt.IsZero() && (v.until.IsZero() || key.RetireAt.Before(v.until)) {
			v.until = key.RetireAt
		}
		v.public.Keys = append(v.public.Keys, jose.JSONWebKey{Key: key.Private.Public(), KeyID: key.ID, Algorithm: key.Algorithm, Use: "sig"})
	}
	jwks, err := json.Marshal(v.public)
	if err != nil {
		return nil, fmt.Errorf("keys: encode JWKS: %w", err)
	}
	v.jwks = jwks
	return v, nil
}

// current returns the view for now, rebuilding it once a key retired since it was built.
func (c *compiled) current(now time.Time) *publicView {
	v := c.view.Load()
	if v.until.IsZero() || now.Before(v.until) {
		return v
	}
	next, err := c.publicAt(now)
	if err != nil {
		return v // cannot happen: the same keys encoded at Load
	}
	c.view.CompareAndSwap(v, next)
	return next
}

// Keyring is the live key set of a server: loaded whole, swapped atomically, read lock-free.
type Keyring struct {
	cur atomic.Pointer[compiled]
	now func() time.Time
}

// NewKeyring returns an empty keyring; it signs nothing until Load.
func NewKeyring() *Keyring { return &Keyring{now: time.Now} }

// Load compiles the set and makes it current. The JWKS publishes every key of the set that is not
// retired (future keys included, so they are cached before they sign); a key drops out of it when
// its RetireAt passes, or at once when it is retired early.
func (k *Keyring) Load(s *Set) error {
	c := &compiled{signers: map[string][]*Signer{}, set: slices.Clone(s.Keys), keys: slices.Clone(s.Keys)}
	slices.SortStableFunc(c.keys, func(a, b Key) int { return b.ActiveFrom.Compare(a.ActiveFrom) })
	for _, key := range c.keys {
		sg := &Signer{KeyID: key.ID, Algorithm: key.Algorithm, key: key, byType: map[string]*compactSigner{}}
		for _, typ := range []string{TypeAccessToken, TypeJWT} {
			cs, err := newCompactSigner(key.Algorithm, key.ID, typ, key.Private)
			if err != nil {
				return fmt.Errorf("keys: signer for %s: %w", key.ID, err)
			}
			sg.byType[typ] = cs
		}
		c.signers[key.Algorithm] = append(c.signers[key.Algorithm], sg)
	}
	v, err := c.publicAt(k.now())
	if err != nil {
		return err
	}
	c.view.Store(v)
	k.cur.Store(c)
	return nil
}

// LoadBytes parses and loads a marshalled set.
func (k *Keyring) LoadBytes(data []byte) error {
	s, err := Parse(data)
	if err != nil {
		return err
	}
	return k.Load(s)
}

// Loaded reports whether a key set was loaded.
func (k *Keyring) Loaded() bool { return k.cur.Load() != nil }

// Set returns a copy of the set last loaded (private keys included; the Key values are copies,
// the private keys are shared and must not be modified), or nil when nothing was loaded. The
// leader writes it back when the key Secret disappears, so issued tokens keep verifying.
func (k *Keyring) Set() *Set {
	c := k.cur.Load()
	if c == nil {
		return nil
	}
	return &Set{Keys: slices.Clone(c.set)}
}

// Signer returns the newest key of the algorithm that is active now and not retired.
func (k *Keyring) Signer(alg string) (*Signer, error) {
	c := k.cur.Load()
	if c == nil {
		return nil, fmt.Errorf("%w %s", ErrNoKey, alg)
	}
	now := k.now()
	for _, sg := range c.signers[alg] {
		if !now.Before(sg.key.ActiveFrom) && !sg.key.retired(now) {
			return sg, nil
		}
	}
	return nil, fmt.Errorf("%w %s", ErrNoKey, alg)
}

// JWKS returns the public JSON Web Key Set; callers must not modify it.
func (k *Keyring) JWKS() []byte {
	c := k.cur.Load()
	if c == nil {
		return []byte(`{"keys":[]}`)
	}
	return c.current(k.now()).jwks
}

// PublicKeys returns the published public keys, for verifying tokens this server signed.
func (k *Keyring) PublicKeys() jose.JSONWebKeySet {
	c := k.cur.Load()
	if c == nil {
		return jose.JSONWebKeySet{}
	}
	return c.current(k.now()).public
}

// Algorithms returns the algorithms that have an active key now, in SupportedAlgorithms order.
func (k *Keyring) Algorithms() []string {
	var out []string
	for _, alg := range SupportedAlgorithms() {
		if _, err := k.Signer(alg); err == nil {
			out = append(out, alg)
		}
	}
	return out
}
