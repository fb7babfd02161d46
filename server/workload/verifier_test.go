package workload_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/server/assertion"
	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/store"
	"github.com/latchkey-dev/latchkey/server/store/memory"
	"github.com/latchkey-dev/latchkey/server/workload"
)

const (
	latchkeyIssuer = "https://latchkey.example"
	tokenEndpoint  = latchkeyIssuer + oauth2.TokenPath
	clusterIssuer  = "https://kubernetes.default.svc.cluster.local"
	appNamespace   = "apps"
	saName         = "runner"
	saClientID     = "runner-client"
	ciIssuerName   = "ci"
	ciIssuerURL    = "https://ci.example"
	ciSubject      = "repo:org/repo:ref:refs/heads/main"
	ciClientID     = "ci-client"
	pkClientID     = "pk-client"
)

var (
	saSubject = registry.ServiceAccountSubject(appNamespace, saName)
	// verifierNow is the clock of every Verifier here.
	verifierNow = time.Unix(1_760_000_000, 0)
)

func clock() time.Time { return verifierNow }

// signingKey is an ES256 key generated for the test and its public JWK.
type signingKey struct {
	private *ecdsa.PrivateKey
	public  jose.JSONWebKey
}

func newSigningKey(t testing.TB, kid string) signingKey {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return signingKey{private: priv, public: jose.JSONWebKey{Key: priv.Public(), KeyID: kid, Algorithm: assertion.ES256, Use: "sig"}}
}

// sign signs claims with the key (ES256, its kid).
func (k signingKey) sign(t testing.TB, claims map[string]any) string {
	t.Helper()
	return signJWT(t, jose.SigningKey{Algorithm: jose.ES256, Key: k.private}, k.public.KeyID, claims)
}

func signJWT(t testing.TB, key jose.SigningKey, kid string, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	signer, err := jose.NewSigner(key, opts)
	require.NoError(t, err)
	payload, err := json.Marshal(claims)
	require.NoError(t, err)
	jws, err := signer.Sign(payload)
	require.NoError(t, err)
	s, err := jws.CompactSerialize()
	require.NoError(t, err)
	return s
}

// unsecuredJWT is an alg "none" JWT (RFC 7519 6): no signature at all.
func unsecuredJWT(t testing.TB, claims map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	require.NoError(t, err)
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + enc(payload) + "."
}

// jwks is the JSON of a JWK set of the keys' public halves.
func jwks(t testing.TB, keys ...signingKey) []byte {
	t.Helper()
	set := jose.JSONWebKeySet{}
	for _, k := range keys {
		set.Keys = append(set.Keys, k.public)
	}
	b, err := json.Marshal(set)
	require.NoError(t, err)
	return b
}

func publicKeys(keys ...signingKey) []jose.JSONWebKey {
	out := make([]jose.JSONWebKey, 0, len(keys))
	for _, k := range keys {
		out = append(out, k.public)
	}
	return out
}

// edit returns claims changed by the edits.
func edit(claims map[string]any, edits ...func(map[string]any)) map[string]any {
	for _, e := range edits {
		e(claims)
	}
	return claims
}

// saClaims are the claims of a projected ServiceAccount token of the client's ServiceAccount
// for Latchkey, valid at verifierNow for ten minutes.
func saClaims(edits ...func(map[string]any)) map[string]any {
	return edit(map[string]any{
		"iss": clusterIssuer,
		"sub": saSubject,
		"aud": []string{latchkeyIssuer},
		"iat": verifierNow.Unix(),
		"nbf": verifierNow.Unix(),
		"exp": verifierNow.Add(10 * time.Minute).Unix(),
		"jti": "3f1e6c1a-0b7e-4f55-9d7c-c0ffee000001",
		"kubernetes.io": map[string]any{
			"namespace":      appNamespace,
			"serviceaccount": map[string]any{"name": saName, "uid": "9b2f0c4e-uid-sa"},
			"pod":            map[string]any{"name": "runner-7c9d", "uid": "a1b2c3d4-uid-pod"},
			"node":           map[string]any{"name": "node-1", "uid": "e5f6a7b8-uid-node"},
		},
	}, edits...)
}

// ciClaims are the claims of a token of the ci WorkloadIssuer for the client's subject.
func ciClaims(edits ...func(map[string]any)) map[string]any {
	return edit(map[string]any{
		"iss":        ciIssuerURL,
		"sub":        ciSubject,
		"aud":        "latchkey",
		"iat":        verifierNow.Unix(),
		"exp":        verifierNow.Add(5 * time.Minute).Unix(),
		"repository": "org/repo",
	}, edits...)
}

// pkClaims are the claims of a private_key_jwt assertion of pkClientID with the jti.
func pkClaims(jti string, edits ...func(map[string]any)) map[string]any {
	return edit(map[string]any{
		"iss": pkClientID,
		"sub": pkClientID,
		"aud": tokenEndpoint,
		"iat": verifierNow.Unix(),
		"exp": verifierNow.Add(5 * time.Minute).Unix(),
		"jti": jti,
	}, edits...)
}

// fakeReviewer is a narrow assertion.Reviewer: it answers review and err, and counts its calls.
type fakeReviewer struct {
	mu     sync.Mutex
	calls  int
	review assertion.Review
	err    error
}

func (f *fakeReviewer) Review(context.Context, string, []string) (assertion.Review, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	return f.review, f.err
}

func (f *fakeReviewer) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

var _ assertion.Reviewer = (*fakeReviewer)(nil)

// saClient is a service_account_token client bound to a ServiceAccount of appNamespace.
func saClient(id, source string, created time.Time) registry.Client {
	return registry.Client{
		Source: appNamespace + "/" + source, Namespace: appNamespace, Created: created, ID: id,
		Type: registry.Confidential, AuthMethod: registry.AuthMethodServiceAccountToken,
		GrantTypes: []string{"client_credentials"}, ServiceAccount: saName,
	}
}

// verify runs VerifyClientAssertion for the registry's client of the ID, as the token endpoint
// does: the client from the snapshot it passes.
func verify(t *testing.T, v *workload.Verifier, reg *registry.Registry, clientID, tok string) (time.Time, error) {
	t.Helper()
	snap := reg.Snapshot()
	c, ok := snap.Client(clientID)
	require.True(t, ok, "client %s is registered", clientID)
	return v.VerifyClientAssertion(t.Context(), snap, c, tok)
}

// requireOAuthError requires err to be an *oauth2.Error with the code and status whose
// description contains want and quotes no part of the assertion.
func requireOAuthError(t *testing.T, err error, code string, status int, want, tok string) {
	t.Helper()
	var oe *oauth2.Error
	require.ErrorAs(t, err, &oe)
	assert.Equal(t, code, oe.Code(), oe.Description())
	assert.Equal(t, status, oe.StatusCode())
	assert.Contains(t, oe.Description(), want)
	if tok == "" {
		return
	}
	assert.NotContains(t, oe.Description(), tok)
	assert.NotContains(t, err.Error(), tok)
	for _, part := range strings.Split(tok, ".") {
		if len(part) >= 16 {
			assert.NotContains(t, oe.Description(), part, "a part of the assertion")
		}
	}
}

// requireRefused requires err to be invalid_client (400) whose description contains want and
// quotes no part of the assertion.
func requireRefused(t *testing.T, err error, want, tok string) {
	t.Helper()
	requireOAuthError(t, err, "invalid_client", http.StatusBadRequest, want, tok)
}

func newVerifier(t *testing.T, cfg workload.Config) *workload.Verifier {
	t.Helper()
	cfg.Issuer, cfg.TokenEndpoint = latchkeyIssuer, tokenEndpoint
	if cfg.Now == nil {
		cfg.Now = clock
	}
	v, err := workload.New(cfg)
	require.NoError(t, err)
	return v
}

func TestVerifierConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  workload.Config
		ok   bool
	}{
		{"a verifier needs Latchkey's issuer", workload.Config{}, false},
		{"JWKS mode needs the cluster's issuer", workload.Config{Issuer: latchkeyIssuer, ClusterKeys: &assertion.StaticKeys{}}, false},
		{"an issuer alone is enough", workload.Config{Issuer: latchkeyIssuer}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := workload.New(tt.cfg)
			assert.Equal(t, tt.ok, err == nil, "%v", err)
		})
	}
}

func TestVerifierReviewsServiceAccountTokensWithTheAPIServer(t *testing.T) {
	key := newSigningKey(t, "cluster-1")
	accepted := assertion.Review{Authenticated: true, Username: saSubject, Audiences: []string{latchkeyIssuer}}
	tests := []struct {
		name      string
		claims    map[string]any
		client    func(*registry.Client)
		review    assertion.Review
		reviewErr error
		// calls is how many TokenReviews were made; code "" means accepted.
		calls  int
		code   string
		status int
		want   string
	}{
		{name: "a token the API server authenticates is accepted", claims: saClaims(), review: accepted, calls: 1},
		{name: "a token the API server refuses is refused", claims: saClaims(),
			review: assertion.Review{Authenticated: false}, calls: 1,
			code: "invalid_client", status: 400, want: "The API server refused the ServiceAccount token"},
		{name: "an API server that cannot answer is temporarily_unavailable", claims: saClaims(),
			reviewErr: fmt.Errorf("%w: connection refused", assertion.ErrReviewUnavailable), calls: 1,
			code: "temporarily_unavailable", status: 503, want: "cannot be reviewed now"},
		{name: "a token the API server authenticates as another user is refused", claims: saClaims(),
			review: assertion.Review{Authenticated: true, Username: registry.ServiceAccountSubject(appNamespace, "other"),
				Audiences: []string{latchkeyIssuer}}, calls: 1,
			code: "invalid_client", status: 400, want: "belongs to another ServiceAccount"},
		{name: "a token whose reviewed audiences miss Latchkey's issuer is refused", claims: saClaims(),
			review: assertion.Review{Authenticated: true, Username: saSubject, Audiences: []string{"https://kubernetes.default.svc"}},
			calls:  1, code: "invalid_client", status: 400, want: "not for this issuer"},
		{name: "a token for another audience is refused without a review",
			claims: saClaims(func(c map[string]any) { c["aud"] = []string{"https://kubernetes.default.svc"} }),
			review: accepted, code: "invalid_client", status: 400, want: "audience not accepted"},
		{name: "a token for Latchkey and another audience is refused without a review",
			claims: saClaims(func(c map[string]any) { c["aud"] = []string{latchkeyIssuer, "https://kubernetes.default.svc"} }),
			review: accepted, code: "invalid_client", status: 400, want: "exactly one accepted audience"},
		{name: "a token that lives longer than an hour is refused without a review",
			claims: saClaims(func(c map[string]any) { c["exp"] = verifierNow.Add(2 * time.Hour).Unix() }),
			review: accepted, code: "invalid_client", status: 400, want: "exp - iat over 1h0m0s"},
		{name: "a token that lives longer than the client's maxAssertionLifetime is refused without a review",
			claims: saClaims(), client: func(c *registry.Client) { c.MaxAssertionLifetime = 5 * time.Minute },
			review: accepted, code: "invalid_client", status: 400, want: "exp - iat over 5m0s"},
		{name: "a token without iat is refused without a review",
			claims: saClaims(func(c map[string]any) { delete(c, "iat") }),
			review: accepted, code: "invalid_client", status: 400, want: "no iat"},
		{name: "a token the kubelet extended to a year is refused without a review",
			claims: saClaims(func(c map[string]any) {
				c["kubernetes.io"].(map[string]any)["warnafter"] = verifierNow.Add(5 * time.Minute).Unix()
			}),
			review: accepted, code: "invalid_client", status: 400, want: "warnafter"},
		{name: "a token of another ServiceAccount is refused without a review",
			claims: saClaims(func(c map[string]any) { c["sub"] = registry.ServiceAccountSubject(appNamespace, "other") }),
			review: accepted, code: "invalid_client", status: 400, want: "subject not accepted"},
		{name: "an expired token is refused without a review",
			claims: saClaims(func(c map[string]any) {
				c["iat"], c["exp"] = verifierNow.Add(-20*time.Minute).Unix(), verifierNow.Add(-10*time.Minute).Unix()
			}),
			review: accepted, code: "invalid_client", status: 400, want: "exp is past"},
		{name: "a token without iss is refused without a review",
			claims: saClaims(func(c map[string]any) { delete(c, "iss") }),
			review: accepted, code: "invalid_client", status: 400, want: "no iss"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := saClient(saClientID, saClientID, verifierNow)
			if tt.client != nil {
				tt.client(&c)
			}
			reg := registry.New()
			reg.PutClient(c)
			rv := &fakeReviewer{review: tt.review, err: tt.reviewErr}
			v := newVerifier(t, workload.Config{Reviewer: rv})
			tok := key.sign(t, tt.claims)

			exp, err := verify(t, v, reg, saClientID, tok)
			assert.Equal(t, tt.calls, rv.count(), "TokenReviews")
			if tt.code == "" {
				require.NoError(t, err)
				assert.Equal(t, time.Unix(tt.claims["exp"].(int64), 0), exp)
				return
			}
			assert.True(t, exp.IsZero())
			requireOAuthError(t, err, tt.code, tt.status, tt.want, tok)
		})
	}
}

func TestVerifierCachesAuthenticatedReviews(t *testing.T) {
	key := newSigningKey(t, "cluster-1")
	reg := registry.New()
	reg.PutClient(saClient(saClientID, saClientID, verifierNow))

	t.Run("an authenticated review is reused for the same token", func(t *testing.T) {
		rv := &fakeReviewer{review: assertion.Review{Authenticated: true, Username: saSubject, Audiences: []string{latchkeyIssuer}}}
		v := newVerifier(t, workload.Config{Reviewer: rv})
		tok := key.sign(t, saClaims())
		for range 3 {
			_, err := verify(t, v, reg, saClientID, tok)
			require.NoError(t, err)
		}
		assert.Equal(t, 1, rv.count())
		_, err := verify(t, v, reg, saClientID, key.sign(t, saClaims(func(c map[string]any) { c["jti"] = "another" })))
		require.NoError(t, err)
		assert.Equal(t, 2, rv.count(), "another token is reviewed")
	})
	t.Run("a cached review authenticates only the client of its ServiceAccount", func(t *testing.T) {
		rv := &fakeReviewer{review: assertion.Review{Authenticated: true, Username: saSubject, Audiences: []string{latchkeyIssuer}}}
		v := newVerifier(t, workload.Config{Reviewer: rv})
		other := saClient("other-client", "other-client", verifierNow)
		other.ServiceAccount = "other"
		withOther := registry.New()
		withOther.PutClient(saClient(saClientID, saClientID, verifierNow))
		withOther.PutClient(other)
		tok := key.sign(t, saClaims())
		exp, err := verify(t, v, withOther, saClientID, tok)
		require.NoError(t, err)
		again, err := verify(t, v, withOther, saClientID, tok)
		require.NoError(t, err)
		assert.Equal(t, exp, again, "the cached path returns the token's exp")
		_, err = verify(t, v, withOther, "other-client", tok)
		requireRefused(t, err, "", tok)
		assert.Equal(t, 1, rv.count(), "the other client's attempt is refused before any review")
	})
	t.Run("a refused review is asked again", func(t *testing.T) {
		rv := &fakeReviewer{review: assertion.Review{Authenticated: false}}
		v := newVerifier(t, workload.Config{Reviewer: rv})
		tok := key.sign(t, saClaims())
		for range 2 {
			_, err := verify(t, v, reg, saClientID, tok)
			requireRefused(t, err, "refused the ServiceAccount token", tok)
		}
		assert.Equal(t, 2, rv.count())
	})
	t.Run("a server without a reviewer or cluster keys refuses ServiceAccount tokens", func(t *testing.T) {
		v := newVerifier(t, workload.Config{})
		tok := key.sign(t, saClaims())
		_, err := verify(t, v, reg, saClientID, tok)
		requireRefused(t, err, "does not verify ServiceAccount tokens", tok)
	})
}

func TestVerifierChecksServiceAccountTokensWithTheClusterKeys(t *testing.T) {
	cluster := newSigningKey(t, "cluster-1")
	keys, err := assertion.NewStaticKeys(publicKeys(cluster))
	require.NoError(t, err)
	impostor := newSigningKey(t, "cluster-1")
	other := newSigningKey(t, "other-kid")
	tests := []struct {
		name   string
		key    signingKey
		claims map[string]any
		want   string // "" means accepted
	}{
		{"a token signed with the cluster's key is accepted", cluster, saClaims(), ""},
		{"a token signed with another key of the same kid is refused", impostor, saClaims(), "invalid signature"},
		{"a token signed with an unknown key ID is refused", other, saClaims(), "no ES256 key with kid"},
		{"a token of another issuer is refused", cluster,
			saClaims(func(c map[string]any) { c["iss"] = "https://other-cluster.example" }), "issuer not accepted"},
		{"a token for two audiences is refused", cluster,
			saClaims(func(c map[string]any) { c["aud"] = []string{latchkeyIssuer, "https://kubernetes.default.svc"} }), "audience not accepted"},
		{"a token of another ServiceAccount is refused", cluster,
			saClaims(func(c map[string]any) { c["sub"] = registry.ServiceAccountSubject("other", saName) }), "subject not accepted"},
		{"a token the kubelet extended to a year is refused", cluster,
			saClaims(func(c map[string]any) {
				c["kubernetes.io"].(map[string]any)["warnafter"] = verifierNow.Add(time.Minute).Unix()
			}), "warnafter"},
		{"a token that lives longer than an hour is refused", cluster,
			saClaims(func(c map[string]any) { c["exp"] = verifierNow.Add(90 * time.Minute).Unix() }), "lifetime not accepted"},
		{"an expired token is refused", cluster,
			saClaims(func(c map[string]any) {
				c["iat"], c["exp"] = verifierNow.Add(-time.Hour).Unix(), verifierNow.Add(-time.Minute).Unix()
			}), "exp is past"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := registry.New()
			reg.PutClient(saClient(saClientID, saClientID, verifierNow))
			rv := &fakeReviewer{review: assertion.Review{Authenticated: true, Username: saSubject, Audiences: []string{latchkeyIssuer}}}
			v := newVerifier(t, workload.Config{ClusterKeys: keys, ClusterIssuer: clusterIssuer, Reviewer: rv})
			tok := tt.key.sign(t, tt.claims)

			exp, err := verify(t, v, reg, saClientID, tok)
			assert.Zero(t, rv.count(), "JWKS mode makes no TokenReview")
			if tt.want == "" {
				require.NoError(t, err)
				assert.Equal(t, time.Unix(tt.claims["exp"].(int64), 0), exp)
				return
			}
			requireRefused(t, err, tt.want, tok)
		})
	}
}

func TestVerifierLetsOnlyTheEarliestClientHoldAWorkloadIdentity(t *testing.T) {
	t.Run("ServiceAccount", func(t *testing.T) {
		key := newSigningKey(t, "cluster-1")
		reg := registry.New()
		reg.PutClient(saClient("first", "first", verifierNow.Add(-time.Hour)))
		reg.PutClient(saClient("second", "second", verifierNow))
		rv := &fakeReviewer{review: assertion.Review{Authenticated: true, Username: saSubject, Audiences: []string{latchkeyIssuer}}}
		v := newVerifier(t, workload.Config{Reviewer: rv})
		tok := key.sign(t, saClaims())

		_, err := verify(t, v, reg, "second", tok)
		requireRefused(t, err, "Another client, created earlier, is bound to this workload identity.", tok)
		assert.Zero(t, rv.count(), "a client that does not hold its identity costs no TokenReview")
		_, err = verify(t, v, reg, "first", tok)
		require.NoError(t, err)

		reg.DeleteClient(appNamespace + "/first")
		_, err = verify(t, v, reg, "second", tok)
		require.NoError(t, err, "once the earlier client is gone, the later one holds the identity")
	})
	t.Run("WorkloadIssuer subject", func(t *testing.T) {
		key := newSigningKey(t, "ci-1")
		reg := registry.New()
		reg.PutWorkloadIssuer(ciIssuer(key))
		first, second := ciClient(), ciClient()
		first.ID, first.Source, first.Created = "first", appNamespace+"/first", verifierNow.Add(-time.Hour)
		second.ID, second.Source = "second", appNamespace+"/second"
		reg.PutClient(second)
		reg.PutClient(first)
		v := newVerifier(t, workload.Config{})
		tok := key.sign(t, ciClaims())

		_, err := verify(t, v, reg, "second", tok)
		requireRefused(t, err, "Another client, created earlier", tok)
		_, err = verify(t, v, reg, "first", tok)
		require.NoError(t, err)
	})
}

// ciIssuer is the ci WorkloadIssuer with static keys, for clients of appNamespace, with a claim
// rule on the repository.
func ciIssuer(keys ...signingKey) registry.WorkloadIssuer {
	return registry.WorkloadIssuer{
		Name: ciIssuerName, Generation: 1, Issuer: ciIssuerURL, StaticKeys: publicKeys(keys...),
		Audiences: []string{"latchkey"}, AllowedNamespaces: []string{appNamespace},
		ClaimRules: []registry.ClaimRule{{Expression: `claims.repository.startsWith("org/")`, Message: "only the org's repositories"}},
	}
}

// ciClient is a service_account_token client bound to ciSubject of the ci issuer.
func ciClient() registry.Client {
	return registry.Client{
		Source: appNamespace + "/" + ciClientID, Namespace: appNamespace, Created: verifierNow, ID: ciClientID,
		Type: registry.Confidential, AuthMethod: registry.AuthMethodServiceAccountToken,
		GrantTypes: []string{"client_credentials"}, WorkloadIssuer: ciIssuerName, WorkloadSubject: ciSubject,
	}
}

func TestVerifierChecksWorkloadIssuerTokensWithStaticKeys(t *testing.T) {
	key := newSigningKey(t, "ci-1")
	stranger := newSigningKey(t, "ci-1")
	tests := []struct {
		name   string
		issuer func(*registry.WorkloadIssuer)
		client func(*registry.Client)
		key    *signingKey
		claims map[string]any
		want   string // "" means accepted
	}{
		{name: "a token of the issuer for the client's subject is accepted", claims: ciClaims()},
		{name: "an issuer that allows every namespace accepts the client",
			issuer: func(w *registry.WorkloadIssuer) { w.AllowedNamespaces = []string{"*"} }, claims: ciClaims()},
		{name: "a client of a namespace the issuer does not allow is refused",
			issuer: func(w *registry.WorkloadIssuer) { w.AllowedNamespaces = []string{"other"} }, claims: ciClaims(),
			want: "The client's namespace may not bind to its WorkloadIssuer."},
		{name: "a client whose WorkloadIssuer does not exist is refused",
			client: func(c *registry.Client) { c.WorkloadIssuer = "ghost" }, claims: ciClaims(),
			want: "The client's WorkloadIssuer does not exist."},
		{name: "a token for another subject is refused",
			claims: ciClaims(func(c map[string]any) { c["sub"] = "repo:org/repo:ref:refs/heads/feature" }), want: "subject not accepted"},
		{name: "a token a claim rule refuses is refused",
			claims: ciClaims(func(c map[string]any) { c["repository"] = "evil/repo" }), want: "only the org's repositories"},
		{name: "a token for an audience the issuer does not declare is refused",
			claims: ciClaims(func(c map[string]any) { c["aud"] = "someone-else" }), want: "audience not accepted"},
		{name: "a token of another issuer is refused",
			claims: ciClaims(func(c map[string]any) { c["iss"] = "https://evil.example" }), want: "issuer not accepted"},
		{name: "a token signed with a key outside the issuer's set is refused", key: &stranger,
			claims: ciClaims(), want: "invalid signature"},
		{name: "a token that lives longer than the issuer's maxAssertionLifetime is refused",
			issuer: func(w *registry.WorkloadIssuer) { w.MaxAssertionLifetime = 2 * time.Minute }, claims: ciClaims(),
			want: "exp - iat over 2m0s"},
		{name: "an expired token is refused",
			claims: ciClaims(func(c map[string]any) {
				c["iat"], c["exp"] = verifierNow.Add(-10*time.Minute).Unix(), verifierNow.Add(-5*time.Minute).Unix()
			}), want: "exp is past"},
		{name: "an issuer whose claim rule does not compile cannot be used",
			issuer: func(w *registry.WorkloadIssuer) { w.ClaimRules = []registry.ClaimRule{{Expression: "claims.("}} },
			claims: ciClaims(), want: "The client's WorkloadIssuer cannot be used"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, c := ciIssuer(key), ciClient()
			if tt.issuer != nil {
				tt.issuer(&w)
			}
			if tt.client != nil {
				tt.client(&c)
			}
			reg := registry.New()
			reg.PutWorkloadIssuer(w)
			reg.PutClient(c)
			v := newVerifier(t, workload.Config{})
			signer := key
			if tt.key != nil {
				signer = *tt.key
			}
			tok := signer.sign(t, tt.claims)

			exp, err := verify(t, v, reg, ciClientID, tok)
			if tt.want == "" {
				require.NoError(t, err)
				assert.Equal(t, time.Unix(tt.claims["exp"].(int64), 0), exp)
				return
			}
			requireRefused(t, err, tt.want, tok)
		})
	}
}

// tlsIssuer is an OIDC issuer over TLS (discovery and a JWKS) that counts its requests.
type tlsIssuer struct {
	srv      *httptest.Server
	requests atomic.Int64
	mu       sync.Mutex
	jwks     []byte
}

func newTLSIssuer(t *testing.T, keys ...signingKey) *tlsIssuer {
	t.Helper()
	is := &tlsIssuer{jwks: jwks(t, keys...)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		is.requests.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": is.srv.URL, "jwks_uri": is.srv.URL + "/jwks"})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, _ *http.Request) {
		is.requests.Add(1)
		is.mu.Lock()
		defer is.mu.Unlock()
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write(is.jwks)
	})
	is.srv = httptest.NewTLSServer(mux)
	t.Cleanup(is.srv.Close)
	return is
}

func (is *tlsIssuer) caBundle() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: is.srv.Certificate().Raw})
}

func TestVerifierFetchesAWorkloadIssuersKeysOverTLS(t *testing.T) {
	key := newSigningKey(t, "remote-1")
	is := newTLSIssuer(t, key)
	remoteIssuer := func(caBundle []byte) registry.WorkloadIssuer {
		w := ciIssuer()
		w.Issuer, w.StaticKeys, w.CABundle = is.srv.URL, nil, caBundle
		return w
	}
	claims := func() map[string]any { return ciClaims(func(c map[string]any) { c["iss"] = is.srv.URL }) }
	reg := registry.New()
	reg.PutClient(ciClient())
	v := newVerifier(t, workload.Config{})

	t.Run("keys that cannot be fetched (a server outside the trusted roots) are temporarily_unavailable", func(t *testing.T) {
		reg.PutWorkloadIssuer(remoteIssuer(nil))
		tok := key.sign(t, claims())
		_, err := verify(t, v, reg, ciClientID, tok)
		requireOAuthError(t, err, "temporarily_unavailable", http.StatusServiceUnavailable, "cannot be fetched now", tok)
	})
	t.Run("a changed issuer is rebuilt: with its CA bundle, its discovered keys verify the token", func(t *testing.T) {
		w := remoteIssuer(is.caBundle())
		w.Generation = 2
		reg.PutWorkloadIssuer(w)
		before := is.requests.Load()
		for i := range 3 {
			tok := key.sign(t, claims())
			exp, err := verify(t, v, reg, ciClientID, tok)
			require.NoError(t, err, "token %d", i)
			assert.Equal(t, verifierNow.Add(5*time.Minute), exp)
		}
		assert.Equal(t, int64(2), is.requests.Load()-before, "discovery and the JWKS, fetched once")
	})
	t.Run("a token of the remote issuer signed with another key is refused", func(t *testing.T) {
		tok := newSigningKey(t, "remote-2").sign(t, claims())
		_, err := verify(t, v, reg, ciClientID, tok)
		requireRefused(t, err, "no ES256 key with kid", tok)
	})
}

func TestVerifierRebuildsAChangedWorkloadIssuer(t *testing.T) {
	oldKey, newKey := newSigningKey(t, "ci-1"), newSigningKey(t, "ci-2")
	reg := registry.New()
	reg.PutWorkloadIssuer(ciIssuer(oldKey))
	reg.PutClient(ciClient())
	v := newVerifier(t, workload.Config{})

	oldTok, newTok := oldKey.sign(t, ciClaims()), newKey.sign(t, ciClaims())
	_, err := verify(t, v, reg, ciClientID, oldTok)
	require.NoError(t, err)
	_, err = verify(t, v, reg, ciClientID, newTok)
	requireRefused(t, err, "no ES256 key", newTok)

	rotated := ciIssuer(newKey)
	rotated.Generation = 2
	reg.PutWorkloadIssuer(rotated)
	_, err = verify(t, v, reg, ciClientID, newTok)
	require.NoError(t, err, "the new key verifies once the issuer changed")
	_, err = verify(t, v, reg, ciClientID, oldTok)
	requireRefused(t, err, "no ES256 key", oldTok)

	ruled := ciIssuer(newKey)
	ruled.Generation, ruled.ClaimRules = 3, []registry.ClaimRule{{Expression: `claims.repository == "org/other"`, Message: "only org/other"}}
	reg.PutWorkloadIssuer(ruled)
	_, err = verify(t, v, reg, ciClientID, newTok)
	requireRefused(t, err, "only org/other", newTok)
}

// pkClient is a private_key_jwt client with the keys inline.
func pkClient(keys ...signingKey) registry.Client {
	return registry.Client{
		Source: appNamespace + "/" + pkClientID, Namespace: appNamespace, Created: verifierNow, ID: pkClientID,
		Type: registry.Confidential, AuthMethod: registry.AuthMethodPrivateKeyJWT,
		GrantTypes: []string{"client_credentials"}, PublicKeys: publicKeys(keys...),
	}
}

func TestVerifierChecksPrivateKeyJWTAssertions(t *testing.T) {
	key := newSigningKey(t, "pk-1")
	stranger := newSigningKey(t, "pk-1")
	pubJSON, err := json.Marshal(key.public)
	require.NoError(t, err)
	hmacKey := jose.SigningKey{Algorithm: jose.HS256, Key: pubJSON} // the classic confusion: the public key as an HMAC secret
	tests := []struct {
		name   string
		client func(*registry.Client)
		token  func(t *testing.T) string
		want   string // "" means accepted
	}{
		{name: "an assertion for the token endpoint is accepted",
			token: func(t *testing.T) string { return key.sign(t, pkClaims("jti-1")) }},
		{name: "an assertion for the issuer is accepted",
			token: func(t *testing.T) string {
				return key.sign(t, pkClaims("jti-1", func(c map[string]any) { c["aud"] = latchkeyIssuer }))
			}},
		{name: "an assertion for the token endpoint among other audiences is accepted",
			token: func(t *testing.T) string {
				return key.sign(t, pkClaims("jti-1", func(c map[string]any) { c["aud"] = []string{"https://other.example", tokenEndpoint} }))
			}},
		{name: "an assertion for another audience is refused",
			token: func(t *testing.T) string {
				return key.sign(t, pkClaims("jti-1", func(c map[string]any) { c["aud"] = "https://other.example/token" }))
			}, want: "audience not accepted"},
		{name: "an assertion without jti is refused",
			token: func(t *testing.T) string { return key.sign(t, pkClaims("")) }, want: "no jti"},
		{name: "an assertion whose iss is not the client ID is refused",
			token: func(t *testing.T) string {
				return key.sign(t, pkClaims("jti-1", func(c map[string]any) { c["iss"] = "someone-else" }))
			}, want: "issuer not accepted"},
		{name: "an assertion whose sub is not the client ID is refused",
			token: func(t *testing.T) string {
				return key.sign(t, pkClaims("jti-1", func(c map[string]any) { c["sub"] = "someone-else" }))
			}, want: "subject not accepted"},
		{name: "an assertion signed with HS256 (the public key as a secret) is refused",
			token: func(t *testing.T) string { return signJWT(t, hmacKey, "pk-1", pkClaims("jti-1")) },
			want:  "unsupported signing algorithm"},
		{name: "an unsigned assertion (alg none) is refused",
			token: func(t *testing.T) string { return unsecuredJWT(t, pkClaims("jti-1")) }, want: "malformed token"},
		{name: "an expired assertion is refused",
			token: func(t *testing.T) string {
				return key.sign(t, pkClaims("jti-1", func(c map[string]any) {
					c["iat"], c["exp"] = verifierNow.Add(-5*time.Minute).Unix(), verifierNow.Add(-time.Minute).Unix()
				}))
			}, want: "exp is past"},
		{name: "an assertion issued in the future is refused",
			token: func(t *testing.T) string {
				return key.sign(t, pkClaims("jti-1", func(c map[string]any) {
					c["iat"], c["exp"] = verifierNow.Add(5*time.Minute).Unix(), verifierNow.Add(10*time.Minute).Unix()
				}))
			}, want: "iat is in the future"},
		{name: "an assertion that lives longer than the client's maxAssertionLifetime is refused",
			client: func(c *registry.Client) { c.MaxAssertionLifetime = time.Minute },
			token:  func(t *testing.T) string { return key.sign(t, pkClaims("jti-1")) }, want: "exp - iat over 1m0s"},
		{name: "an assertion signed with another key is refused",
			token: func(t *testing.T) string { return stranger.sign(t, pkClaims("jti-1")) }, want: "invalid signature"},
		{name: "an assertion that is not a JWT is refused",
			token: func(*testing.T) string { return "not-a-jwt" }, want: "malformed token"},
		{name: "a client without usable keys is refused",
			client: func(c *registry.Client) {
				c.PublicKeys = []jose.JSONWebKey{{Key: key.private, KeyID: "pk-1", Algorithm: assertion.ES256}}
			},
			token: func(t *testing.T) string { return key.sign(t, pkClaims("jti-1")) }, want: "The client's keys cannot be used"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := pkClient(key)
			if tt.client != nil {
				tt.client(&c)
			}
			reg := registry.New()
			reg.PutClient(c)
			v := newVerifier(t, workload.Config{Replay: memory.New(memory.WithClock(clock))})
			tok := tt.token(t)

			exp, err := verify(t, v, reg, pkClientID, tok)
			if tt.want == "" {
				require.NoError(t, err)
				assert.Equal(t, verifierNow.Add(5*time.Minute), exp)
				return
			}
			requireRefused(t, err, tt.want, tok)
		})
	}
}

func TestVerifierKeepsPrivateKeyJWTAssertionsSingleUse(t *testing.T) {
	key := newSigningKey(t, "pk-1")
	reg := registry.New()
	reg.PutClient(pkClient(key))

	t.Run("an assertion used again is refused, another jti is not", func(t *testing.T) {
		v := newVerifier(t, workload.Config{Replay: memory.New(memory.WithClock(clock))})
		tok := key.sign(t, pkClaims("once"))
		_, err := verify(t, v, reg, pkClientID, tok)
		require.NoError(t, err)
		_, err = verify(t, v, reg, pkClientID, tok)
		requireRefused(t, err, "already used", tok)

		again := key.sign(t, pkClaims("once", func(c map[string]any) { c["exp"] = verifierNow.Add(4 * time.Minute).Unix() }))
		_, err = verify(t, v, reg, pkClientID, again)
		requireRefused(t, err, "already used", again)
		_, err = verify(t, v, reg, pkClientID, key.sign(t, pkClaims("twice")))
		require.NoError(t, err)
	})
	t.Run("without a store to count jti in, private_key_jwt is refused", func(t *testing.T) {
		v := newVerifier(t, workload.Config{})
		tok := key.sign(t, pkClaims("jti-1"))
		_, err := verify(t, v, reg, pkClientID, tok)
		requireRefused(t, err, "private_key_jwt is off", tok)
	})
	t.Run("a store that cannot count is not an accept", func(t *testing.T) {
		v := newVerifier(t, workload.Config{Replay: failingCounters{}})
		tok := key.sign(t, pkClaims("jti-1"))
		_, err := verify(t, v, reg, pkClientID, tok)
		require.Error(t, err)
		assert.False(t, errors.Is(err, oauth2.ErrInvalidClient))
		assert.ErrorIs(t, oauth2.FromStore(err), oauth2.ErrTemporarilyUnavailable)
	})
}

// failingCounters is a leased store that cannot be reached.
type failingCounters struct{}

func (failingCounters) Incr(context.Context, store.Hash, time.Duration) (int64, error) {
	return 0, fmt.Errorf("redis: %w", store.ErrUnavailable)
}

func TestVerifierFetchesAPrivateKeyJWTClientsJWKSURI(t *testing.T) {
	key := newSigningKey(t, "pk-remote")
	is := newTLSIssuer(t, key)
	c := pkClient()
	c.JWKSURI = is.srv.URL + "/jwks"
	reg := registry.New()
	reg.PutClient(c)

	t.Run("the keys of the client's jwksURI verify its assertions, fetched once", func(t *testing.T) {
		v := newVerifier(t, workload.Config{Replay: memory.New(memory.WithClock(clock)), HTTPClient: is.srv.Client()})
		before := is.requests.Load()
		for _, jti := range []string{"a", "b", "c"} {
			exp, err := verify(t, v, reg, pkClientID, key.sign(t, pkClaims(jti)))
			require.NoError(t, err)
			assert.Equal(t, verifierNow.Add(5*time.Minute), exp)
		}
		assert.Equal(t, int64(1), is.requests.Load()-before)
		tok := newSigningKey(t, "pk-remote").sign(t, pkClaims("d"))
		_, err := verify(t, v, reg, pkClientID, tok)
		requireRefused(t, err, "invalid signature", tok)
	})
	t.Run("a jwksURI that cannot be fetched is temporarily_unavailable", func(t *testing.T) {
		v := newVerifier(t, workload.Config{Replay: memory.New(memory.WithClock(clock))}) // system roots: the test CA is unknown
		tok := key.sign(t, pkClaims("e"))
		_, err := verify(t, v, reg, pkClientID, tok)
		requireOAuthError(t, err, "temporarily_unavailable", http.StatusServiceUnavailable, "cannot be fetched now", tok)
	})
}

func TestVerifierRefusesAClientWithoutAnIdentity(t *testing.T) {
	c := saClient(saClientID, saClientID, verifierNow)
	c.ServiceAccount = ""
	reg := registry.New()
	reg.PutClient(c)
	tok := newSigningKey(t, "k").sign(t, saClaims())
	_, err := verify(t, newVerifier(t, workload.Config{}), reg, saClientID, tok)
	requireRefused(t, err, "no key or identity", tok)
}
