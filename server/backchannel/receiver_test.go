package backchannel_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/server/backchannel"
	"github.com/latchkey-dev/latchkey/server/keys"
)

// received is one logout token a receiver took in, verified against the JWKS.
type received struct {
	header jose.Header
	claims map[string]any
}

// receiver is a relying party's back-channel logout endpoint on a loopback port: it verifies
// every logout token against the server's JWKS and answers with the statuses of answers in
// turn (200 once they run out).
type receiver struct {
	t    *testing.T
	srv  *httptest.Server
	jwks jose.JSONWebKeySet

	mu      sync.Mutex
	answers []int
	hits    int
	got     []received
	bad     []string
}

func newReceiver(t *testing.T, keyring *keys.Keyring, answers ...int) *receiver {
	t.Helper()
	r := &receiver{t: t, answers: answers}
	require.NoError(t, json.Unmarshal(keyring.JWKS(), &r.jwks), "the published JWKS")
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) URL() string { return r.srv.URL + "/backchannel-logout" }

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hits++
	status := http.StatusOK
	if len(r.answers) > 0 {
		status, r.answers = r.answers[0], r.answers[1:]
	}
	if msg := r.check(req); msg != "" {
		r.bad = append(r.bad, msg)
		status = http.StatusBadRequest
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
}

// check verifies the request as OIDC Back-Channel Logout 2.5 and 2.6 ask; it returns what is
// wrong, or "".
func (r *receiver) check(req *http.Request) string {
	if req.Method != http.MethodPost || req.URL.Path != "/backchannel-logout" {
		return "method or path: " + req.Method + " " + req.URL.Path
	}
	if ct := req.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
		return "content type " + ct
	}
	if err := req.ParseForm(); err != nil {
		return err.Error()
	}
	if len(req.PostForm) != 1 || len(req.PostForm["logout_token"]) != 1 {
		return "form must hold exactly one logout_token"
	}
	jws, err := jose.ParseSignedCompact(req.PostForm.Get("logout_token"), []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA})
	if err != nil {
		return "parse: " + err.Error()
	}
	h := jws.Signatures[0].Protected
	keysByID := r.jwks.Key(h.KeyID)
	if len(keysByID) != 1 {
		return "kid not in the JWKS: " + h.KeyID
	}
	payload, err := jws.Verify(keysByID[0])
	if err != nil {
		return "verify: " + err.Error()
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		return "claims: " + err.Error()
	}
	r.got = append(r.got, received{header: h, claims: claims})
	return ""
}

// tokens returns what the receiver verified, and fails the test on anything it refused.
func (r *receiver) tokens() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	assert.Empty(r.t, r.bad, "requests the receiver refused")
	return append([]received(nil), r.got...)
}

func (r *receiver) hitCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.hits
}

// requireLogoutToken checks every claim of a logout token for client of the session.
func requireLogoutToken(t *testing.T, got received, client, sid, sub string, alg string) {
	t.Helper()
	assert.Equal(t, backchannel.TokenType, got.header.ExtraHeaders[jose.HeaderType], "typ")
	assert.Equal(t, alg, got.header.Algorithm)
	c := got.claims
	assert.Equal(t, issuer, c["iss"])
	assert.Equal(t, client, c["aud"])
	iat, _ := c["iat"].(float64)
	exp, _ := c["exp"].(float64)
	assert.InDelta(t, float64(time.Now().Unix()), iat, 10, "iat is now")
	assert.Greater(t, exp, iat)
	assert.LessOrEqual(t, exp-iat, 120.0, "exp is at most 2 minutes after iat")
	assert.NotEmpty(t, c["jti"])
	assert.Equal(t, map[string]any{backchannel.LogoutEvent: map[string]any{}}, c["events"])
	if sid == "" {
		assert.NotContains(t, c, "sid")
	} else {
		assert.Equal(t, sid, c["sid"])
	}
	assert.Equal(t, sub, c["sub"])
	assert.NotContains(t, c, "nonce", "a logout token never carries a nonce")
	want := []string{"iss", "aud", "iat", "exp", "jti", "events", "sub"}
	if sid != "" {
		want = append(want, "sid")
	}
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	assert.ElementsMatch(t, want, keys, "no other claims")
}

// newServer serves h on a loopback port until the test ends and returns its URL.
func newServer(t *testing.T, h http.HandlerFunc) string {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}
