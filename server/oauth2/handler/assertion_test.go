package handler

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/internal/harness"
	"github.com/latchkey-dev/latchkey/server/keys"
	"github.com/latchkey-dev/latchkey/server/metrics"
	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/store/memory"
	"github.com/latchkey-dev/latchkey/server/workload"
)

// Clients of the assertion tests, besides testRegistry's.
const (
	pkjwtID         = "pkjwt-client"   // private_key_jwt, access tokens bounded by the assertion
	pkjwtOutlivesID = "pkjwt-outlives" // private_key_jwt, AccessTokenOutlivesAssertion
	pkjwtLifetime   = 30 * time.Minute // the access token lifetime of both
	rotatedID       = "rotated-client" // a secret rotated with a grace period
	rotatedSecret   = "rotated-new-secret"
	rotatedOld      = "rotated-old-secret"
	rotationGrace   = time.Hour // rotatedOld is accepted until testNow + rotationGrace
	assertionKID    = "pk-1"
)

// assertionEnv is the real handler with a workload.Verifier, the memory store, metrics and an
// auditor, on a fake clock, over HTTP.
type assertionEnv struct {
	srv     *httptest.Server
	clock   *harness.Clock
	key     *ecdsa.PrivateKey
	audit   *recordingAuditor
	uses    *recordingUses
	metrics *prometheus.Registry
	jwks    jose.JSONWebKeySet
}

// recordingUses keeps which credential authenticated which client.
type recordingUses struct {
	mu   sync.Mutex
	uses []string
}

func (r *recordingUses) CredentialUsed(c *registry.Client, cred oauth2.Credential) {
	r.mu.Lock()
	defer r.mu.Unlock()
	name := "current"
	if cred == oauth2.PreviousCredential {
		name = "previous"
	}
	r.uses = append(r.uses, c.ID+":"+name)
}

func (r *recordingUses) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.uses...)
}

func newAssertionEnv(t *testing.T) *assertionEnv {
	t.Helper()
	kr, err := testKeyring()
	require.NoError(t, err)
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	pub := jose.JSONWebKey{Key: priv.Public(), KeyID: assertionKID, Algorithm: "ES256", Use: "sig"}

	reg := testRegistry()
	cc := []string{"client_credentials"}
	for _, c := range []registry.Client{
		{ID: pkjwtID, AuthMethod: registry.AuthMethodPrivateKeyJWT, PublicKeys: []jose.JSONWebKey{pub}},
		{ID: pkjwtOutlivesID, AuthMethod: registry.AuthMethodPrivateKeyJWT, PublicKeys: []jose.JSONWebKey{pub},
			AccessTokenOutlivesAssertion: true},
	} {
		c.Source, c.Namespace, c.Type, c.GrantTypes = "payments/"+c.ID, "payments", registry.Confidential, cc
		c.Scopes, c.SigningAlgorithm, c.AccessTokenLifetime = []string{"read"}, keys.ES256, pkjwtLifetime
		reg.PutClient(c)
	}
	reg.PutClient(registry.Client{
		Source: "payments/" + rotatedID, Namespace: "payments", ID: rotatedID, Type: registry.Confidential,
		GrantTypes: cc, Scopes: []string{"read"},
		SecretHash: registry.HashSecret([]byte(rotatedSecret)), HasSecret: true,
		PreviousSecretHash: registry.HashSecret([]byte(rotatedOld)), PreviousSecretUntil: testNow.Add(rotationGrace),
	})

	clock := harness.NewClock(testNow)
	st := memory.New(memory.WithClock(clock.Now))
	verifier, err := workload.New(workload.Config{
		Issuer: testIssuer, TokenEndpoint: testIssuer + oauth2.TokenPath, Replay: st, Now: clock.Now,
	})
	require.NoError(t, err)
	promReg := prometheus.NewRegistry()
	m, err := metrics.New(promReg)
	require.NoError(t, err)
	e := &assertionEnv{clock: clock, key: priv, audit: &recordingAuditor{}, uses: &recordingUses{}, metrics: promReg, jwks: kr.PublicKeys()}
	h, err := New(Config{
		Issuer: testIssuer, Registry: reg, Keys: kr, Now: clock.Now, Store: st, Metrics: m, Audit: e.audit,
		ClientAssertions: verifier, CredentialUses: e.uses, Login: LoginConfig{FailureDelay: -1},
	})
	require.NoError(t, err)
	e.srv = httptest.NewServer(h)
	t.Cleanup(e.srv.Close)
	return e
}

// assertion signs a private_key_jwt assertion of the client (iss and sub) for the token
// endpoint, with a fresh jti, issued now and expiring after lifetime.
func (e *assertionEnv) assertion(t *testing.T, clientID string, lifetime time.Duration) (string, time.Time) {
	t.Helper()
	jti := make([]byte, 16)
	_, err := rand.Read(jti)
	require.NoError(t, err)
	now := e.clock.Now()
	exp := now.Add(lifetime)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: e.key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", assertionKID))
	require.NoError(t, err)
	payload, err := json.Marshal(map[string]any{
		"iss": clientID, "sub": clientID, "aud": testIssuer + oauth2.TokenPath,
		"iat": now.Unix(), "exp": exp.Unix(), "jti": hex.EncodeToString(jti),
	})
	require.NoError(t, err)
	jws, err := signer.Sign(payload)
	require.NoError(t, err)
	s, err := jws.CompactSerialize()
	require.NoError(t, err)
	return s, exp
}

// postAssertion asks for a client_credentials token with the assertion; clientID "" sends no
// client_id.
func (e *assertionEnv) postAssertion(t *testing.T, clientID, tok string) response {
	t.Helper()
	form := url.Values{
		"grant_type": {"client_credentials"}, "scope": {"read"},
		"client_assertion_type": {oauth2.ClientAssertionTypeJWTBearer}, "client_assertion": {tok},
	}
	if clientID != "" {
		form.Set("client_id", clientID)
	}
	return doT(t, e.srv, request{path: oauth2.TokenPath, contentType: formType, body: form.Encode()})
}

// postSecret asks for a client_credentials token with client_secret_basic.
func (e *assertionEnv) postSecret(t *testing.T, clientID, secret string) response {
	t.Helper()
	return doT(t, e.srv, request{path: oauth2.TokenPath, contentType: formType, authorization: basic(clientID, secret), body: "grant_type=client_credentials"})
}

// requireClientError requires an invalid_client answer with the status whose description
// contains want and does not quote tok.
func requireClientError(t *testing.T, res response, status int, want, tok string) {
	t.Helper()
	require.Equal(t, status, res.status, "%v", res.body)
	assert.Equal(t, "invalid_client", res.body["error"])
	assert.Contains(t, res.body["error_description"], want)
	if tok != "" {
		raw, err := json.Marshal(res.body)
		require.NoError(t, err)
		assert.NotContains(t, string(raw), tok)
	}
}

func TestClientAssertionGetsClientCredentialsTokens(t *testing.T) {
	e := newAssertionEnv(t)

	t.Run("a private_key_jwt client gets a token that expires with its assertion", func(t *testing.T) {
		tok, exp := e.assertion(t, pkjwtID, 5*time.Minute)
		res := e.postAssertion(t, pkjwtID, tok)
		require.Equal(t, http.StatusOK, res.status, "%v", res.body)
		at := verifyToken(t, e.jwks, str(res.body["access_token"]))
		assert.Equal(t, "ES256", at.header.Algorithm)
		assert.Equal(t, pkjwtID, at.claims["client_id"])
		assert.LessOrEqual(t, int64(at.claims["exp"].(float64)), exp.Unix())
		assert.Equal(t, float64(exp.Unix()), at.claims["exp"])
		assert.InDelta(t, (5 * time.Minute).Seconds(), res.body["expires_in"], 1)
	})
	t.Run("a token of a client that lets it outlive the assertion lives its full lifetime", func(t *testing.T) {
		tok, exp := e.assertion(t, pkjwtOutlivesID, 5*time.Minute)
		res := e.postAssertion(t, pkjwtOutlivesID, tok)
		require.Equal(t, http.StatusOK, res.status, "%v", res.body)
		at := verifyToken(t, e.jwks, str(res.body["access_token"]))
		assert.Equal(t, float64(testNow.Add(pkjwtLifetime).Unix()), at.claims["exp"])
		assert.Greater(t, int64(at.claims["exp"].(float64)), exp.Unix())
		assert.InDelta(t, pkjwtLifetime.Seconds(), res.body["expires_in"], 1)
	})
	t.Run("an assertion that lives longer than the access token does not lengthen it", func(t *testing.T) {
		tok, _ := e.assertion(t, pkjwtID, 50*time.Minute)
		res := e.postAssertion(t, pkjwtID, tok)
		require.Equal(t, http.StatusOK, res.status, "%v", res.body)
		at := verifyToken(t, e.jwks, str(res.body["access_token"]))
		assert.Equal(t, float64(testNow.Add(pkjwtLifetime).Unix()), at.claims["exp"])
	})
	t.Run("the same assertion again is invalid_client", func(t *testing.T) {
		tok, _ := e.assertion(t, pkjwtID, 5*time.Minute)
		require.Equal(t, http.StatusOK, e.postAssertion(t, pkjwtID, tok).status)
		requireClientError(t, e.postAssertion(t, pkjwtID, tok), http.StatusBadRequest, "already used", tok)
	})
	t.Run("a request without client_id is the client of the assertion's sub", func(t *testing.T) {
		tok, _ := e.assertion(t, pkjwtID, 5*time.Minute)
		res := e.postAssertion(t, "", tok)
		require.Equal(t, http.StatusOK, res.status, "%v", res.body)
		at := verifyToken(t, e.jwks, str(res.body["access_token"]))
		assert.Equal(t, pkjwtID, at.claims["client_id"])
	})
	t.Run("a client_id other than the assertion's iss and sub is refused", func(t *testing.T) {
		tok, _ := e.assertion(t, pkjwtID, 5*time.Minute)
		requireClientError(t, e.postAssertion(t, pkjwtOutlivesID, tok), http.StatusBadRequest, "issuer not accepted", tok)
	})
	t.Run("a client that authenticates with a secret refuses an assertion", func(t *testing.T) {
		tok, _ := e.assertion(t, billingID, 5*time.Minute)
		requireClientError(t, e.postAssertion(t, billingID, tok), http.StatusBadRequest,
			"The client authenticates with a client secret, not an assertion.", tok)
	})
	t.Run("a public client refuses an assertion", func(t *testing.T) {
		tok, _ := e.assertion(t, publicID, 5*time.Minute)
		requireClientError(t, e.postAssertion(t, publicID, tok), http.StatusBadRequest, "A public client has no secret.", tok)
	})
	t.Run("an unknown client's assertion is refused", func(t *testing.T) {
		tok, _ := e.assertion(t, "nobody", 5*time.Minute)
		requireClientError(t, e.postAssertion(t, "", tok), http.StatusBadRequest, "Unknown client or wrong credentials.", tok)
	})
	t.Run("a private_key_jwt client cannot use a secret", func(t *testing.T) {
		requireClientError(t, e.postSecret(t, pkjwtID, "guess"), http.StatusUnauthorized,
			"The client must authenticate with a client assertion (private_key_jwt).", "")
	})
	t.Run("an expired assertion is refused", func(t *testing.T) {
		tok, _ := e.assertion(t, pkjwtID, 5*time.Minute)
		e.clock.Advance(10 * time.Minute)
		defer e.clock.Set(testNow)
		requireClientError(t, e.postAssertion(t, pkjwtID, tok), http.StatusBadRequest, "exp is past", tok)
	})
	t.Run("another client_assertion_type is invalid_client", func(t *testing.T) {
		tok, _ := e.assertion(t, pkjwtID, 5*time.Minute)
		form := url.Values{"grant_type": {"client_credentials"}, "client_id": {pkjwtID},
			"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:saml2-bearer"}, "client_assertion": {tok}}
		res := doT(t, e.srv, request{path: oauth2.TokenPath, contentType: formType, body: form.Encode()})
		requireClientError(t, res, http.StatusBadRequest, oauth2.ClientAssertionTypeJWTBearer, tok)
	})
}

func TestClientAssertionsAreCountedAndAudited(t *testing.T) {
	e := newAssertionEnv(t)
	var sent []string
	for range 2 {
		tok, _ := e.assertion(t, pkjwtID, 5*time.Minute)
		res := e.postAssertion(t, pkjwtID, tok)
		require.Equal(t, http.StatusOK, res.status, "%v", res.body)
		sent = append(sent, tok, str(res.body["access_token"]))
	}
	replayed := sent[0]
	requireClientError(t, e.postAssertion(t, pkjwtID, replayed), http.StatusBadRequest, "already used", replayed)

	text, _ := scrape(t, e.metrics)
	for _, want := range []string{
		`latchkey_client_authentications_total{method="private_key_jwt"} 2`,
		`latchkey_client_auth_failures_total{method="private_key_jwt"} 1`,
		`latchkey_tokens_issued_total{client_id="pkjwt-client",client_namespace="payments",grant_type="client_credentials"} 2`,
		`latchkey_oauth_errors_total{error="invalid_client",handler="token"} 1`,
	} {
		assert.Contains(t, text, want)
	}
	assert.NotContains(t, text, `method="client_assertion"`, "an assertion is counted by the client's registered method")

	e.audit.mu.Lock()
	defer e.audit.mu.Unlock()
	var names []string
	for _, ev := range e.audit.events {
		names = append(names, ev.Event)
	}
	require.Equal(t, []string{oauth2.AuditTokenIssued, oauth2.AuditTokenIssued, oauth2.AuditClientAuthenticationFailed}, names)
	for _, ev := range e.audit.events[:2] {
		assert.Equal(t, pkjwtID, ev.ClientID)
		assert.Equal(t, "client_credentials", ev.GrantType)
		assert.Equal(t, oauth2.AuthMethodPrivateKeyJWT, ev.AuthMethod, "the client's registered method, not client_assertion")
		assert.Equal(t, "success", ev.Outcome)
		assert.Equal(t, []string{"read"}, ev.Scopes)
		assert.Regexp(t, `^jti:[0-9A-Za-z_-]{16,}$`, ev.TokenRef, "the issued access token's jti")
		assert.NotEmpty(t, ev.RemoteAddr)
	}
	failed := e.audit.events[2]
	assert.Equal(t, pkjwtID, failed.ClientID)
	assert.Equal(t, oauth2.AuthMethodPrivateKeyJWT, failed.AuthMethod)
	assert.Equal(t, "failure", failed.Outcome)
	assert.Contains(t, failed.Reason, "private_key_jwt: The client assertion was already used")

	raw, err := json.Marshal(e.audit.events)
	require.NoError(t, err)
	for _, s := range sent {
		assert.NotContains(t, string(raw), s)
		assert.NotContains(t, text, s)
	}
	assert.Equal(t, []string{pkjwtID + ":current", pkjwtID + ":current"}, e.uses.all())
}

func TestPreviousSecretInsideItsGracePeriod(t *testing.T) {
	e := newAssertionEnv(t)
	tests := []struct {
		name     string
		after    time.Duration // after testNow
		secret   string
		status   int
		previous bool // the previous secret authenticated
	}{
		{name: "the new secret authenticates", secret: rotatedSecret, status: http.StatusOK},
		{name: "the old secret authenticates inside the grace period", secret: rotatedOld, status: http.StatusOK, previous: true},
		{name: "the old secret authenticates until just before the period ends", after: rotationGrace - time.Second,
			secret: rotatedOld, status: http.StatusOK, previous: true},
		{name: "the old secret is refused once the period has ended", after: rotationGrace, secret: rotatedOld,
			status: http.StatusUnauthorized},
		{name: "the old secret is refused long after", after: 24 * time.Hour, secret: rotatedOld, status: http.StatusUnauthorized},
		{name: "the new secret still authenticates after the period", after: 24 * time.Hour, secret: rotatedSecret, status: http.StatusOK},
		{name: "another secret is refused inside the period", secret: "not-a-secret-of-the-client", status: http.StatusUnauthorized},
	}
	previousUses := 0
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.clock.Set(testNow.Add(tt.after))
			e.audit.mu.Lock()
			e.audit.events = nil
			e.audit.mu.Unlock()
			usesBefore := len(e.uses.all())

			res := e.postSecret(t, rotatedID, tt.secret)
			require.Equal(t, tt.status, res.status, "%v", res.body)
			e.audit.mu.Lock()
			events := append([]oauth2.AuditEvent(nil), e.audit.events...)
			e.audit.mu.Unlock()
			var previous []oauth2.AuditEvent
			for _, ev := range events {
				if ev.Event == oauth2.AuditPreviousSecretUsed {
					previous = append(previous, ev)
				}
			}
			if tt.status != http.StatusOK {
				assert.Equal(t, "invalid_client", res.body["error"])
				assert.Empty(t, previous)
				assert.Len(t, e.uses.all(), usesBefore, "a failure is no use")
				return
			}
			uses := e.uses.all()
			require.Len(t, uses, usesBefore+1)
			if !tt.previous {
				assert.Empty(t, previous)
				assert.Equal(t, rotatedID+":current", uses[usesBefore])
				return
			}
			previousUses++
			require.Len(t, previous, 1)
			assert.Equal(t, rotatedID, previous[0].ClientID)
			assert.Equal(t, oauth2.AuthMethodBasic, previous[0].AuthMethod)
			assert.Equal(t, "success", previous[0].Outcome)
			assert.Equal(t, rotatedID+":previous", uses[usesBefore])
			for _, ev := range events {
				if ev.Event == oauth2.AuditTokenIssued {
					assert.Equal(t, oauth2.AuthMethodBasic, ev.AuthMethod)
				}
			}
			text, _ := scrape(t, e.metrics)
			assert.Contains(t, text, `latchkey_client_previous_secret_used_total{client_id="rotated-client",client_namespace="payments"} `+
				strconv.Itoa(previousUses))
			raw, err := json.Marshal(events)
			require.NoError(t, err)
			assert.NotContains(t, string(raw), rotatedOld)
		})
	}
}
