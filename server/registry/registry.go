package registry

import (
	"crypto/sha256"
	"crypto/subtle"
	"iter"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// ClientType is Confidential or Public.
type ClientType string

// Client types.
const (
	Confidential ClientType = "Confidential"
	Public       ClientType = "Public"
)

// Client is one OAuth client as the server sees it.
type Client struct {
	// Source is the key of the resource it came from ("namespace/name").
	Source    string
	Namespace string
	// Created orders clients that claim the same ID: the earliest wins.
	Created time.Time

	ID          string
	Type        ClientType
	DisplayName string
	// GrantTypes the client may use, e.g. "client_credentials".
	GrantTypes []string
	// RedirectURIs are matched exactly.
	RedirectURIs []string
	// Scopes the client may request; DefaultScopes are granted when it asks for none.
	Scopes        []string
	DefaultScopes []string
	Audiences     []string
	// AuthMethod is none for a public client; for a confidential one client_secret_basic or
	// client_secret_post when declared (then the only method accepted), "" when not (either).
	AuthMethod string
	// SecretHash is the SHA-256 of the client secret; HasSecret is false while none is known
	// (a confidential client without a secret cannot authenticate).
	SecretHash [sha256.Size]byte
	HasSecret  bool

	// Lifetimes; zero means the server default.
	AccessTokenLifetime  time.Duration
	RefreshTokenLifetime time.Duration
	IDTokenLifetime      time.Duration
	CodeLifetime         time.Duration
	// SigningAlgorithm overrides the server default when set (RS256, ES256, EdDSA).
	SigningAlgorithm string
	// PKCE is RequiredS256, Required or Optional; Consent is Always, Remember or Skip.
	PKCE    string
	Consent string

	// RateLimit bounds the client's token requests; a zero PerMinute means the server's default.
	RateLimit RateLimit
	// AllowedOrigins are the browser origins (scheme://host[:port], as browsers serialise them)
	// allowed to call the server for this client with CORS; only a Public client's count
	// (Snapshot.AllowsOrigin).
	AllowedOrigins []string
	// Introspection: the client is a declared resource server that may introspect tokens.
	Introspection bool
	// Registered: the client was created by dynamic registration (RFC 7591), so nobody
	// vouched for its name; the consent page says so.
	Registered bool

	// PreviousSecretHash is the SHA-256 of the client's previous secret, accepted until
	// PreviousSecretUntil (secret rotation with a grace period); a zero time means none.
	PreviousSecretHash  [sha256.Size]byte
	PreviousSecretUntil time.Time

	// Assertion-based authentication (AuthMethod service_account_token or private_key_jwt).
	//
	// ServiceAccount is the name of the ServiceAccount (in Namespace) whose projected tokens
	// authenticate the client; WorkloadIssuer and WorkloadSubject instead bind it to a subject
	// of a WorkloadIssuer (its name). Exactly one of the two is set for service_account_token.
	ServiceAccount  string
	WorkloadIssuer  string
	WorkloadSubject string
	// PublicKeys verify a private_key_jwt client's assertions (inline, from a Secret, or the
	// generated key pair's); JWKSURI serves them instead when set.
	PublicKeys []jose.JSONWebKey
	JWKSURI    string
	// MaxAssertionLifetime bounds exp - iat of the client's assertions; zero means the server
	// default (1 h).
	MaxAssertionLifetime time.Duration
	// AccessTokenOutlivesAssertion lets an access token obtained with an assertion live its full
	// lifetime; by default it expires no later than the assertion.
	AccessTokenOutlivesAssertion bool
}

// Client authentication methods that use a JWT-bearer client assertion (RFC 7523 2.2).
const (
	AuthMethodServiceAccountToken = "service_account_token"
	AuthMethodPrivateKeyJWT       = "private_key_jwt"
)

// UsesAssertion reports whether the client authenticates with a client assertion.
func (c *Client) UsesAssertion() bool {
	return c.AuthMethod == AuthMethodServiceAccountToken || c.AuthMethod == AuthMethodPrivateKeyJWT
}

// LocalIssuer is the WorkloadSubjectKey issuer of the ServiceAccount tokens of Latchkey's own
// cluster (Client.ServiceAccount).
const LocalIssuer = "kubernetes"

// WorkloadSubjectKey returns the (issuer, subject) pair the client is bound to: a WorkloadIssuer
// name and subject, or LocalIssuer and system:serviceaccount:<namespace>:<name>; ok is false
// for a client bound to none.
func (c *Client) WorkloadSubjectKey() (issuer, subject string, ok bool) {
	switch {
	case c.AuthMethod != AuthMethodServiceAccountToken:
		return "", "", false
	case c.ServiceAccount != "":
		return LocalIssuer, ServiceAccountSubject(c.Namespace, c.ServiceAccount), true
	case c.WorkloadIssuer != "":
		return c.WorkloadIssuer, c.WorkloadSubject, true
	}
	return "", "", false
}

// ServiceAccountSubject is the sub (and TokenReview username) of a ServiceAccount's tokens.
func ServiceAccountSubject(namespace, name string) string {
	return "system:serviceaccount:" + namespace + ":" + name
}

// RateLimit is a token bucket: PerMinute sustained, Burst at once.
type RateLimit struct {
	PerMinute, Burst int
}

// WithDefaultBurst is the limit with its default burst when it has none: a tenth of the rate,
// at least 1.
func (l RateLimit) WithDefaultBurst() RateLimit {
	if l.Burst <= 0 {
		l.Burst = max(l.PerMinute/10, 1)
	}
	return l
}

// HashSecret is the hash the registry keeps of a client secret.
func HashSecret(secret []byte) [sha256.Size]byte { return sha256.Sum256(secret) }

// CheckSecret reports, in constant time, whether secret is the client's secret.
func (c *Client) CheckSecret(secret string) bool {
	h := sha256.Sum256([]byte(secret))
	ok := subtle.ConstantTimeCompare(h[:], c.SecretHash[:]) == 1
	return ok && c.HasSecret
}

// SecretMatch is which of a client's secrets a presented secret is.
type SecretMatch int

// Secret matches.
const (
	NoSecret SecretMatch = iota
	CurrentSecret
	PreviousSecret
)

// MatchSecret reports, in constant time, whether secret is the client's current secret, or its
// previous one while that is accepted at now. Both hashes are always compared.
func (c *Client) MatchSecret(secret string, now time.Time) SecretMatch {
	h := sha256.Sum256([]byte(secret))
	cur := subtle.ConstantTimeCompare(h[:], c.SecretHash[:]) == 1 && c.HasSecret
	prev := subtle.ConstantTimeCompare(h[:], c.PreviousSecretHash[:]) == 1 &&
		!c.PreviousSecretUntil.IsZero() && now.Before(c.PreviousSecretUntil)
	switch {
	case cur:
		return CurrentSecret
	case prev:
		return PreviousSecret
	}
	return NoSecret
}

// AllowsGrant reports whether the client lists the grant type.
func (c *Client) AllowsGrant(grant string) bool { return slices.Contains(c.GrantTypes, grant) }

// AllowsScope reports whether the client may request the scope.
func (c *Client) AllowsScope(scope string) bool { return slices.Contains(c.Scopes, scope) }

// Scope is one OAuth scope.
type Scope struct {
	// Created orders scopes that claim the same name: the earliest wins (see Precedes).
	Created     time.Time
	Name        string
	Description string
	// Claims released by the scope in ID tokens and userinfo.
	Claims []string
	// Default scopes are granted when a client asks for none and is allowed the scope.
	Default bool
	// AllowedNamespaces limits which namespaces' clients may request it; empty means all.
	AllowedNamespaces []string
}

// AllowsNamespace reports whether clients of the namespace may request the scope.
func (s *Scope) AllowsNamespace(ns string) bool {
	return len(s.AllowedNamespaces) == 0 || slices.Contains(s.AllowedNamespaces, ns)
}

// User is a person who can log in.
type User struct {
	// Source is the name of the resource it came from.
	Source string
	// Created orders users that claim the same username: the earliest wins (see Precedes).
	Created time.Time
	// Subject is the user's OIDC sub: stable and never reassigned (the resource's UID), so a
	// user deleted and re-created under the same username is a different subject. Tokens,
	// sessions and consents name the user by Subject; only logins look users up by Username.
	Subject       string
	Username      string
	Email         string
	EmailVerified bool
	DisplayName   string
	Groups        []string
	// PasswordHash is a bcrypt or argon2id (PHC) hash; empty means the user cannot log in.
	PasswordHash []byte
	Disabled     bool
}

// Snapshot is an immutable view of the registry. Never modify one or anything it returns.
type Snapshot struct {
	clients   map[string]*Client // by source
	byID      map[string]*Client // by client ID: the winner of each ID
	scopes    map[string]*Scope  // by source
	scopeName map[string]*Scope  // by scope name
	users     map[string]*User   // by source
	userName  map[string]*User   // by username
	userSub   map[string]*User   // by subject
	// origins counts, per CORS origin, the winning Public clients (byID) that list it: an
	// origin is allowed while its count is positive (AllowsOrigin).
	origins map[string]int
	// subjects holds, per workload identity, the client that holds it (SubjectHolder).
	subjects map[subjectPair]*Client
	issuers  map[string]*WorkloadIssuer // by name
}

// Counts returns the number of clients (by client ID), scopes (by name) and users (by
// username) in the snapshot.
func (s *Snapshot) Counts() (clients, scopes, users int) {
	return len(s.byID), len(s.scopeName), len(s.userName)
}

// Client returns the client with the client ID.
func (s *Snapshot) Client(id string) (*Client, bool) { c, ok := s.byID[id]; return c, ok }

// Clients returns every client the snapshot serves (the winner of each client ID), in no
// particular order.
func (s *Snapshot) Clients() iter.Seq[*Client] { return maps.Values(s.byID) }

// Scope returns the scope with the name.
func (s *Snapshot) Scope(name string) (*Scope, bool) { sc, ok := s.scopeName[name]; return sc, ok }

// User returns the user with the username.
func (s *Snapshot) User(username string) (*User, bool) { u, ok := s.userName[username]; return u, ok }

// UserBySubject returns the user with the subject (the sub of its tokens, sessions and
// consents). An empty subject is never found.
func (s *Snapshot) UserBySubject(sub string) (*User, bool) {
	if sub == "" {
		return nil, false
	}
	u, ok := s.userSub[sub]
	return u, ok
}

// AllowsOrigin reports whether a Public client served in the snapshot lists the origin in its
// AllowedOrigins: one map lookup, compared byte for byte (the Origin header as sent).
func (s *Snapshot) AllowsOrigin(origin string) bool { _, ok := s.origins[origin]; return ok }

// Scopes returns every scope, sorted by name.
func (s *Snapshot) Scopes() []*Scope {
	out := make([]*Scope, 0, len(s.scopeName))
	for _, sc := range s.scopeName {
		out = append(out, sc)
	}
	slices.SortFunc(out, func(a, b *Scope) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Registry is the writable holder of the current Snapshot.
type Registry struct {
	mu  sync.Mutex
	cur atomic.Pointer[Snapshot]
}

// New returns an empty registry.
func New() *Registry {
	r := &Registry{}
	r.cur.Store(&Snapshot{
		clients: map[string]*Client{}, byID: map[string]*Client{},
		scopes: map[string]*Scope{}, scopeName: map[string]*Scope{},
		users: map[string]*User{}, userName: map[string]*User{}, userSub: map[string]*User{},
		origins: map[string]int{}, subjects: map[subjectPair]*Client{}, issuers: map[string]*WorkloadIssuer{},
	})
	return r
}

// Snapshot returns the current snapshot; it never changes, so hold it for a whole request.
func (r *Registry) Snapshot() *Snapshot { return r.cur.Load() }

// Wins reports whether a should serve a client ID that b claims too: the earlier creation time,
// then the smaller source key (Precedes).
func Wins(a, b *Client) bool { return Precedes(a.Created, a.Source, b.Created, b.Source) }

// Precedes is the one rule that decides every name two sources claim (a client ID, a username, a
// scope name): a, created at aCreated from source aSource, wins over b when it was created
// earlier, or at the same time from the smaller source key. The leader's status controllers use
// it too, so the resource marked Ready is the one every replica serves.
func Precedes(aCreated time.Time, aSource string, bCreated time.Time, bSource string) bool {
	if !aCreated.Equal(bCreated) {
		return aCreated.Before(bCreated)
	}
	return aSource < bSource
}

// PutClient stores or replaces the client of c.Source.
func (r *Registry) PutClient(c Client) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.cur.Load()
	next := *old
	next.clients = cloneMap(old.clients)
	prev := next.clients[c.Source]
	next.clients[c.Source] = &c
	next.byID = cloneMap(old.byID)
	ids := []string{c.ID}
	if prev != nil && prev.ID != c.ID {
		ids = append(ids, prev.ID)
	}
	for _, id := range ids {
		reindex(&next, id)
	}
	next.origins = originsAfter(old, &next, ids...)
	next.subjects = subjectsAfter(old, &next, prev, &c)
	r.cur.Store(&next)
}

// DeleteClient removes the client of the source key, if any.
func (r *Registry) DeleteClient(source string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.cur.Load()
	prev, ok := old.clients[source]
	if !ok {
		return
	}
	next := *old
	next.clients = cloneMap(old.clients)
	delete(next.clients, source)
	next.byID = cloneMap(old.byID)
	reindex(&next, prev.ID)
	next.origins = originsAfter(old, &next, prev.ID)
	next.subjects = subjectsAfter(old, &next, prev, nil)
	r.cur.Store(&next)
}

// reindex recomputes the winner of one client ID. It scans the clients, as cheap as the map copy
// every write already makes.
func reindex(s *Snapshot, id string) {
	delete(s.byID, id)
	for _, c := range s.clients {
		if c.ID != id {
			continue
		}
		if w, has := s.byID[id]; !has || Wins(c, w) {
			s.byID[id] = c
		}
	}
}

// originsAfter returns the origin counts of s, built from old by a write that may have changed
// the winners of the client IDs: old's counts when no winner with origins changed (most writes),
// else a copy with the old winners' origins taken out and the new winners' put in. The cost is
// a copy of the origin index, never a scan of the clients.
func originsAfter(old, s *Snapshot, ids ...string) map[string]int {
	out, copied := old.origins, false
	for _, id := range ids {
		was, now := old.byID[id], s.byID[id]
		if was == now || slices.Equal(corsOrigins(was), corsOrigins(now)) {
			continue // the same origins (none, most often): the counts stay
		}
		if !copied {
			out, copied = cloneMap(old.origins), true
		}
		for _, o := range corsOrigins(was) {
			if out[o]--; out[o] <= 0 {
				delete(out, o)
			}
		}
		for _, o := range corsOrigins(now) {
			out[o]++
		}
	}
	return out
}

// corsOrigins are the origins a client allows: a Public client's AllowedOrigins, none for a
// Confidential one (or none at all).
func corsOrigins(c *Client) []string {
	if c == nil || c.Type != Public {
		return nil
	}
	return c.AllowedOrigins
}

// PutScope stores or replaces the scope of the source key.
func (r *Registry) PutScope(source string, sc Scope) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.cur.Load()
	next := *old
	next.scopes = cloneMap(old.scopes)
	next.scopes[source] = &sc
	next.scopeName = indexBy(next.scopes, scopeKey)
	r.cur.Store(&next)
}

// DeleteScope removes the scope of the source key, if any.
func (r *Registry) DeleteScope(source string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.cur.Load()
	if _, ok := old.scopes[source]; !ok {
		return
	}
	next := *old
	next.scopes = cloneMap(old.scopes)
	delete(next.scopes, source)
	next.scopeName = indexBy(next.scopes, scopeKey)
	r.cur.Store(&next)
}

// PutUser stores or replaces the user of u.Source.
func (r *Registry) PutUser(u User) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.cur.Load()
	next := *old
	next.users = cloneMap(old.users)
	next.users[u.Source] = &u
	next.userName = indexBy(next.users, userKey)
	next.userSub = indexBy(next.users, subjectKey)
	r.cur.Store(&next)
}

// DeleteUser removes the user of the source key, if any.
func (r *Registry) DeleteUser(source string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.cur.Load()
	if _, ok := old.users[source]; !ok {
		return
	}
	next := *old
	next.users = cloneMap(old.users)
	delete(next.users, source)
	next.userName = indexBy(next.users, userKey)
	next.userSub = indexBy(next.users, subjectKey)
	r.cur.Store(&next)
}

func scopeKey(s *Scope) (string, time.Time) { return s.Name, s.Created }
func userKey(u *User) (string, time.Time)   { return u.Username, u.Created }

// subjectKey indexes users by Subject. Subjects are unique (UIDs); should two sources claim one
// anyway, Precedes decides as for usernames. A user without a subject is indexed under "",
// which UserBySubject never looks up.
func subjectKey(u *User) (string, time.Time) { return u.Subject, u.Created }

// indexBy indexes values by a name; when two sources share a name, the one that Precedes wins
// (created first, then the smaller source), the same rule as client IDs.
func indexBy[V any](bySource map[string]*V, key func(*V) (name string, created time.Time)) map[string]*V {
	type claim struct {
		src     string
		created time.Time
	}
	out := make(map[string]*V, len(bySource))
	owner := make(map[string]claim, len(bySource))
	for src, v := range bySource {
		n, created := key(v)
		if o, ok := owner[n]; ok && !Precedes(created, src, o.created, o.src) {
			continue
		}
		owner[n] = claim{src: src, created: created}
		out[n] = v
	}
	return out
}

func cloneMap[K comparable, V any](m map[K]V) map[K]V {
	out := make(map[K]V, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	return out
}
