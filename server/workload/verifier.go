package workload

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/latchkey-dev/latchkey/server/assertion"
	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/store"
)

// Modes of verifying the local cluster's ServiceAccount tokens.
const (
	// ModeTokenReview asks the API server (TokenReview): a deleted Pod's or re-created
	// ServiceAccount's tokens stop at once. The default.
	ModeTokenReview = "TokenReview"
	// ModeJWKS checks the signature against the cluster's JWKS: no round trip to the API
	// server, but a token stays valid until it expires whatever happens to its Pod.
	ModeJWKS = "JWKS"
)

// DefaultMaxAssertionLifetime bounds exp - iat of an assertion when nothing else does.
const DefaultMaxAssertionLifetime = time.Hour

// Counters counts single uses of assertion IDs (jti) in the leased store; store.Store
// implements it.
type Counters interface {
	Incr(ctx context.Context, key store.Hash, window time.Duration) (int64, error)
}

// Config configures a Verifier.
type Config struct {
	// Issuer is Latchkey's issuer URL: the audience every assertion must name.
	Issuer string
	// TokenEndpoint is the token endpoint's URL, also accepted as a private_key_jwt audience.
	TokenEndpoint string
	// Reviewer reviews the local cluster's ServiceAccount tokens (ModeTokenReview); it is
	// wrapped in a cache of successful reviews (at most ReviewTTL, never past exp).
	Reviewer assertion.Reviewer
	// ReviewTTL bounds how long a successful review is reused; zero means 30 s.
	ReviewTTL time.Duration
	// ClusterKeys verify the local cluster's ServiceAccount tokens in ModeJWKS (the cluster's
	// JWKS), issued by ClusterIssuer. When set, they are used instead of the Reviewer.
	ClusterKeys   assertion.KeySet
	ClusterIssuer string
	// Replay counts the jti of private_key_jwt assertions, each usable once; nil refuses
	// private_key_jwt (a single-use rule cannot be kept without it).
	Replay Counters
	// HTTPClient fetches remote key sets (jwksURI, WorkloadIssuers without a caBundle);
	// nil builds one per source.
	HTTPClient *http.Client
	// Now is the clock; nil: time.Now.
	Now func() time.Time
}

// Verifier verifies the client assertions of service_account_token and private_key_jwt
// clients (oauth2.AssertionVerifier).
type Verifier struct {
	cfg      Config
	reviewer *assertion.CachedReviewer
	now      func() time.Time

	mu      sync.Mutex
	issuers map[string]*issuerKeys // by WorkloadIssuer name
	remotes map[string]*remoteKeys // by private_key_jwt client ID
}

var _ oauth2.AssertionVerifier = (*Verifier)(nil)

// issuerKeys is what a Verifier derived from one WorkloadIssuer value.
type issuerKeys struct {
	from  *registry.WorkloadIssuer
	keys  assertion.KeySet
	rules *assertion.ClaimRules
	err   error // the issuer cannot be used as declared (bad CA bundle, rules)
}

// remoteKeys is the key set of a private_key_jwt client's jwksURI.
type remoteKeys struct {
	uri  string
	keys *assertion.Remote
}

// maxRemotes bounds the key sets kept for private_key_jwt clients, and for WorkloadIssuers.
const maxRemotes = 10000

// New returns a Verifier.
func New(cfg Config) (*Verifier, error) {
	if cfg.Issuer == "" {
		return nil, errors.New("workload: no issuer")
	}
	if cfg.ClusterKeys != nil && cfg.ClusterIssuer == "" {
		return nil, errors.New("workload: JWKS mode needs the cluster's issuer")
	}
	v := &Verifier{cfg: cfg, now: cfg.Now, issuers: map[string]*issuerKeys{}, remotes: map[string]*remoteKeys{}}
	if v.now == nil {
		v.now = time.Now
	}
	switch {
	case cfg.ClusterKeys != nil:
		// The kubelet hands one token out many times: a verified signature is reused like a
		// review, for at most ReviewTTL and never past exp.
		v.reviewer = assertion.NewCachedReviewer(keysReviewer{keys: cfg.ClusterKeys, issuer: cfg.ClusterIssuer, now: v.now},
			cfg.ReviewTTL, 0, v.now)
	case cfg.Reviewer != nil:
		v.reviewer = assertion.NewCachedReviewer(cfg.Reviewer, cfg.ReviewTTL, 0, v.now)
	}
	return v, nil
}

// VerifyClientAssertion checks the assertion for the client, by its binding: a ServiceAccount
// of its namespace, a subject of a WorkloadIssuer, or its own keys (private_key_jwt).
func (v *Verifier) VerifyClientAssertion(ctx context.Context, snap *registry.Snapshot, c *registry.Client, s string) (time.Time, error) {
	if exp, ok := v.cachedServiceAccount(snap, c, s); ok {
		return exp, nil
	}
	tok, err := assertion.Parse(s)
	if err != nil {
		return time.Time{}, refused(err)
	}
	switch {
	case c.AuthMethod == registry.AuthMethodServiceAccountToken && c.ServiceAccount != "":
		return v.serviceAccount(ctx, snap, c, tok, s)
	case c.AuthMethod == registry.AuthMethodServiceAccountToken && c.WorkloadIssuer != "":
		return v.workloadIssuer(ctx, snap, c, tok)
	case c.AuthMethod == registry.AuthMethodPrivateKeyJWT:
		return v.privateKeyJWT(ctx, c, tok)
	}
	return time.Time{}, oauth2.ErrInvalidClient.WithDescription("The client has no key or identity to verify an assertion with.")
}

// holds checks that the client holds its workload identity: two clients bound to one pair
// never both authenticate by it.
func holds(snap *registry.Snapshot, c *registry.Client) error {
	iss, sub, ok := c.WorkloadSubjectKey()
	if !ok {
		return nil
	}
	if h, ok := snap.SubjectHolder(iss, sub); !ok || h != c {
		return oauth2.ErrInvalidClient.WithDescription("Another client, created earlier, is bound to this workload identity.")
	}
	return nil
}

// cachedServiceAccount accepts a ServiceAccount token reviewed (or, in JWKS mode, verified) for
// this client within the review cache's lifetime without parsing it again: the kubelet hands one
// token out many times, and this is the path most requests take. Its claims passed this
// client's checks when it was reviewed; a later change of maxAssertionLifetime applies to it
// once the entry expires (at most the review cache's lifetime).
func (v *Verifier) cachedServiceAccount(snap *registry.Snapshot, c *registry.Client, raw string) (time.Time, bool) {
	if v.reviewer == nil || c.AuthMethod != registry.AuthMethodServiceAccountToken || c.ServiceAccount == "" || holds(snap, c) != nil {
		return time.Time{}, false
	}
	review, exp, ok := v.reviewer.Cached(raw, []string{v.cfg.Issuer})
	if !ok || review.Username != registry.ServiceAccountSubject(c.Namespace, c.ServiceAccount) ||
		!slices.Contains(review.Audiences, v.cfg.Issuer) || !exp.After(v.now()) {
		return time.Time{}, false
	}
	return exp, true
}

func (v *Verifier) serviceAccount(ctx context.Context, snap *registry.Snapshot, c *registry.Client, tok *assertion.Token, raw string) (time.Time, error) {
	if err := holds(snap, c); err != nil {
		return time.Time{}, err
	}
	sub := registry.ServiceAccountSubject(c.Namespace, c.ServiceAccount)
	p := assertion.Policy{
		Issuer: v.cfg.ClusterIssuer, Audiences: []string{v.cfg.Issuer}, ExactAudience: true, Subject: sub,
		MaxLifetime: maxLifetime(c.MaxAssertionLifetime), RefuseExtendedKubernetesTokens: true, Now: v.now,
	}
	claims, username, err := v.review(ctx, tok, raw, p, clientRefusal)
	switch {
	case err != nil:
		return time.Time{}, err
	case username != sub:
		return time.Time{}, oauth2.ErrInvalidClient.WithDescription("The ServiceAccount token belongs to another ServiceAccount.")
	}
	return claims.Expiry, nil
}

// refusal is how a refused token is answered: invalid_client for a client assertion,
// invalid_grant for a token exchange's subject or actor token.
type refusal struct {
	code *oauth2.Error
	what string // "client assertion", "subject token"
}

var (
	clientRefusal  = refusal{code: oauth2.ErrInvalidClient, what: "client assertion"}
	subjectRefusal = refusal{code: oauth2.ErrInvalidGrant, what: "subject or actor token"}
)

// review has the API server review a ServiceAccount token (or, in JWKS mode, checks its
// signature) once its claims pass p, and returns its claims and the reviewed username. The
// claims are checked before the API server is asked so that tokens that cannot pass (another
// audience, too long a lifetime) cost no TokenReview. The issuer is the reviewer's to check.
func (v *Verifier) review(ctx context.Context, tok *assertion.Token, raw string, p assertion.Policy, r refusal) (assertion.UnverifiedClaims, string, error) {
	if v.reviewer == nil {
		return assertion.UnverifiedClaims{}, "", r.code.WithDescription("This server does not verify ServiceAccount tokens.")
	}
	claims, err := checkUnverified(tok, p)
	if err != nil {
		return claims, "", r.refused(err)
	}
	review, err := v.reviewer.Review(ctx, raw, []string{v.cfg.Issuer}, claims.Expiry)
	switch {
	case errors.Is(err, assertion.ErrReviewUnavailable):
		return claims, "", oauth2.ErrTemporarilyUnavailable.WithDescription("The ServiceAccount token cannot be reviewed now; retry.").WithCause(err)
	case err != nil:
		return claims, "", err
	case !review.Authenticated && review.Refusal != "":
		return claims, "", r.code.WithDescription("The ServiceAccount token was refused: " + review.Refusal + ".")
	case !review.Authenticated:
		return claims, "", r.code.WithDescription(
			"The API server refused the ServiceAccount token (expired, its Pod deleted, or its ServiceAccount re-created).")
	case !slices.Contains(review.Audiences, v.cfg.Issuer):
		return claims, "", r.code.WithDescription("The ServiceAccount token is not for this issuer.")
	}
	return claims, review.Username, nil
}

// keysReviewer reviews ServiceAccount tokens against the cluster's keys (the JWKS mode): the
// signature, the issuer, the audience and the lifetime, without asking the API server whether
// the token's Pod and ServiceAccount still exist.
type keysReviewer struct {
	keys   assertion.KeySet
	issuer string
	now    func() time.Time
}

func (r keysReviewer) Review(ctx context.Context, token string, audiences []string) (assertion.Review, error) {
	tok, err := assertion.Parse(token)
	if err != nil {
		return assertion.Review{Refusal: err.Error()}, nil //nolint:nilerr // a token that does not parse is refused, not an outage
	}
	claims, err := assertion.Verify(ctx, tok, r.keys, assertion.Policy{
		Issuer: r.issuer, Audiences: audiences, ExactAudience: true, RefuseExtendedKubernetesTokens: true, Now: r.now,
	})
	switch {
	case errors.Is(err, assertion.ErrKeysUnavailable):
		return assertion.Review{}, fmt.Errorf("%w: %w", assertion.ErrReviewUnavailable, err)
	case err != nil:
		return assertion.Review{Refusal: err.Error()}, nil //nolint:nilerr // refused: Authenticated false
	}
	return assertion.Review{Authenticated: true, Username: claims.Subject, Audiences: claims.Audience}, nil
}

// checkUnverified applies the claim rules of p (but the issuer and the signature, which the
// API server checks) to a token the API server will review.
func checkUnverified(tok *assertion.Token, p assertion.Policy) (assertion.UnverifiedClaims, error) {
	p.Issuer = tok.UnverifiedClaims().Issuer
	if p.Issuer == "" {
		return assertion.UnverifiedClaims{}, fmt.Errorf("%w: the token has no iss", assertion.ErrIssuer)
	}
	return assertion.CheckClaims(tok, p)
}

func (v *Verifier) workloadIssuer(ctx context.Context, snap *registry.Snapshot, c *registry.Client, tok *assertion.Token) (time.Time, error) {
	w, ok := snap.WorkloadIssuer(c.WorkloadIssuer)
	if !ok {
		return time.Time{}, oauth2.ErrInvalidClient.WithDescription("The client's WorkloadIssuer does not exist.")
	}
	if !w.AllowsNamespace(c.Namespace) {
		return time.Time{}, oauth2.ErrInvalidClient.WithDescription("The client's namespace may not bind to its WorkloadIssuer.")
	}
	if err := holds(snap, c); err != nil {
		return time.Time{}, err
	}
	ik := v.issuerKeys(w)
	if ik.err != nil {
		return time.Time{}, oauth2.ErrInvalidClient.WithDescription("The client's WorkloadIssuer cannot be used: " + ik.err.Error())
	}
	claims, err := assertion.Verify(ctx, tok, ik.keys, assertion.Policy{
		Issuer: w.Issuer, Audiences: w.Audiences, Subject: c.WorkloadSubject,
		MaxLifetime:                    issuerLifetime(w, c),
		RefuseExtendedKubernetesTokens: true, Rules: ik.rules, Now: v.now,
	})
	if err != nil {
		return time.Time{}, refused(err)
	}
	return claims.Expiry, nil
}

// issuerKeys returns the key set and rules of the issuer, built again when its value changed.
func (v *Verifier) issuerKeys(w *registry.WorkloadIssuer) *issuerKeys {
	v.mu.Lock()
	defer v.mu.Unlock()
	if ik, ok := v.issuers[w.Name]; ok && ik.from == w {
		return ik
	}
	ik := &issuerKeys{from: w}
	rules := make([]assertion.ClaimRule, 0, len(w.ClaimRules))
	for _, r := range w.ClaimRules {
		rules = append(rules, assertion.ClaimRule{Expression: r.Expression, Message: r.Message})
	}
	ik.rules, ik.err = assertion.CompileClaimRules(rules)
	if ik.err == nil {
		ik.keys, ik.err = IssuerKeySet(w, v.cfg.HTTPClient, v.now)
	}
	if len(v.issuers) >= maxRemotes {
		clear(v.issuers) // deleted issuers' entries go too; the rest are built again on use
	}
	v.issuers[w.Name] = ik
	return ik
}

// IssuerKeySet returns the key set of a WorkloadIssuer: its static keys, or a Remote (its
// jwksURI or discovery), trusting its CA bundle when it has one. The status controller uses the
// same to report on the issuer.
func IssuerKeySet(w *registry.WorkloadIssuer, client *http.Client, now func() time.Time) (assertion.KeySet, error) {
	if len(w.StaticKeys) > 0 {
		return assertion.NewStaticKeys(w.StaticKeys)
	}
	cfg := assertion.RemoteConfig{
		Issuer: w.Issuer, JWKSURI: w.JWKSURI, CABundle: w.CABundle, RefreshPeriod: w.RefreshPeriod, Now: now,
	}
	if len(w.CABundle) == 0 {
		cfg.HTTPClient = client
	}
	return assertion.NewRemote(cfg)
}

func (v *Verifier) privateKeyJWT(ctx context.Context, c *registry.Client, tok *assertion.Token) (time.Time, error) {
	if v.cfg.Replay == nil {
		return time.Time{}, oauth2.ErrInvalidClient.WithDescription("This server cannot keep assertions single-use; private_key_jwt is off.")
	}
	keys, err := v.clientKeys(c)
	if err != nil {
		return time.Time{}, oauth2.ErrInvalidClient.WithDescription("The client's keys cannot be used: " + err.Error())
	}
	audiences := []string{v.cfg.Issuer}
	if v.cfg.TokenEndpoint != "" {
		audiences = append(audiences, v.cfg.TokenEndpoint)
	}
	claims, err := assertion.Verify(ctx, tok, keys, assertion.Policy{
		Issuer: c.ID, Subject: c.ID, Audiences: audiences, RequireJTI: true,
		MaxLifetime: maxLifetime(c.MaxAssertionLifetime), Now: v.now,
	})
	if err != nil {
		return time.Time{}, refused(err)
	}
	// Single use within its lifetime (RFC 7523 3, OIDC Core 9): the jti is remembered until
	// the assertion expires, plus the leeway Verify allowed.
	window := claims.Expiry.Sub(v.now()) + assertion.DefaultLeeway
	n, err := v.cfg.Replay.Incr(ctx, store.HashOf("client-assertion-jti\x00"+c.ID+"\x00"+claims.ID), max(window, time.Second))
	switch {
	case err != nil:
		return time.Time{}, err // the store decides: 503 when unavailable, never accepted unchecked
	case n > 1:
		return time.Time{}, oauth2.ErrInvalidClient.WithDescription("The client assertion was already used (its jti).")
	}
	return claims.Expiry, nil
}

// clientKeys returns the key set of a private_key_jwt client: its keys, or a Remote of its
// jwksURI (kept per client while its URI stays the same).
func (v *Verifier) clientKeys(c *registry.Client) (assertion.KeySet, error) {
	if c.JWKSURI == "" {
		return assertion.NewStaticKeys(c.PublicKeys)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if rk, ok := v.remotes[c.ID]; ok && rk.uri == c.JWKSURI {
		return rk.keys, nil
	}
	r, err := assertion.NewRemote(assertion.RemoteConfig{Issuer: c.ID, JWKSURI: c.JWKSURI, HTTPClient: v.cfg.HTTPClient, Now: v.now})
	if err != nil {
		return nil, err
	}
	if len(v.remotes) >= maxRemotes {
		clear(v.remotes) // rare: fetched again on demand
	}
	v.remotes[c.ID] = &remoteKeys{uri: c.JWKSURI, keys: r}
	return r, nil
}

// issuerLifetime bounds a WorkloadIssuer token: the issuer's bound (1 h by default), narrowed by
// the client's own when it sets one.
func issuerLifetime(w *registry.WorkloadIssuer, c *registry.Client) time.Duration {
	lt := maxLifetime(w.MaxAssertionLifetime)
	if c.MaxAssertionLifetime > 0 {
		lt = min(lt, c.MaxAssertionLifetime)
	}
	return lt
}

func maxLifetime(d time.Duration) time.Duration {
	if d <= 0 {
		return DefaultMaxAssertionLifetime
	}
	return d
}

// refused maps a client assertion's verification error to the answer (refusal.refused).
func refused(err error) error { return clientRefusal.refused(err) }

// refused maps a verification error to the answer: the refusal's error with the error's safe
// description, or temporarily_unavailable when the keys cannot be fetched.
func (r refusal) refused(err error) error {
	if errors.Is(err, assertion.ErrKeysUnavailable) {
		return oauth2.ErrTemporarilyUnavailable.WithDescription("The keys that verify the " + r.what + " cannot be fetched now; retry.").WithCause(err)
	}
	if errors.Is(err, assertion.ErrPolicy) {
		return oauth2.ErrServerError.WithCause(err)
	}
	return r.code.WithDescription("The " + r.what + " was refused: " + err.Error() + ".").WithCause(err)
}
