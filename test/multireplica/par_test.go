package multireplica

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/latchkey-dev/latchkey/internal/harness"
)

func TestARequestPushedAtOneReplicaIsUsedOnceAtAnother(t *testing.T) {
	s := env
	a, b, c := s.replicas[0], s.replicas[1], s.replicas[2]
	verifier, state := oauth2.GenerateVerifier(), rand.Text()
	res, err := a.postForm(t.Context(), "/oauth2/par", spa, url.Values{
		"response_type": {"code"}, "redirect_uri": {demoRedirect}, "scope": {"openid profile read:projects"},
		"state": {state}, "code_challenge": {oauth2.S256ChallengeFromVerifier(verifier)}, "code_challenge_method": {"S256"},
		"prompt": {"consent"},
	})
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, res.status, "%s", res)
	uri := res.str("request_uri")
	require.True(t, strings.HasPrefix(uri, "urn:ietf:params:oauth:request_uri:"), uri)

	servers := []string{a.base, b.base, c.base}
	br := harness.NewBrowser(t, nil, servers...)
	br.Origin = s.issuer
	authorize := "/oauth2/authorize?client_id=" + url.QueryEscape(spaID) + "&request_uri=" + url.QueryEscape(uri)
	p := br.Get(b.base + authorize)
	require.True(t, p.IsLogin(), "a login page at %s: %d %s", b.name, p.Status, p.Body)
	p = br.Login(p, alice, alicePassword)
	require.True(t, p.IsConsent(), "a consent page: %s", p.Body)
	cb := br.Decide(p, "allow").Callback(t)
	require.Empty(t, cb.Error, cb.ErrorDescription)
	require.Equal(t, state, cb.State)

	got := c.token(t, spa, exchangeForm(cb.Code, verifier))
	require.Equal(t, http.StatusOK, got.status, "exchange at %s: %s", c.name, got)
	assert.NotEmpty(t, got.str("access_token"))

	again := harness.NewBrowser(t, nil, servers...).Get(c.base + authorize)
	assert.Equal(t, http.StatusBadRequest, again.Status, "a used request_uri at %s: %s", c.name, again.Body)
	assert.Nil(t, again.Location)
}

// publicDPoP posts a public client's form to path at replica r with a DPoP header.
func (r *replica) publicDPoP(t *testing.T, path, clientID string, form url.Values, proof string) apiResponse {
	t.Helper()
	form.Set("client_id", clientID)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, r.base+path, strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("DPoP", proof)
	return doJSON(t, req)
}

func TestACodeBoundByADPoPProofAtOneReplicasPushNeedsThatKeyAtAnother(t *testing.T) {
	s := env
	a, b, c := s.replicas[0], s.replicas[1], s.replicas[2]
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	servers := []string{a.base, b.base, c.base}
	// boundCode pushes at a with a proof of key, signs in at b and returns the code.
	boundCode := func(t *testing.T) (code, verifier string) {
		verifier = oauth2.GenerateVerifier()
		res := a.publicDPoP(t, "/oauth2/par", spaID, url.Values{
			"response_type": {"code"}, "redirect_uri": {demoRedirect}, "scope": {"openid read:projects"},
			"code_challenge": {oauth2.S256ChallengeFromVerifier(verifier)}, "code_challenge_method": {"S256"},
			"prompt": {"consent"},
		}, dpopProof(t, key, http.MethodPost, "/oauth2/par", nil))
		require.Equal(t, http.StatusCreated, res.status, "%s", res)
		br := harness.NewBrowser(t, nil, servers...)
		br.Origin = s.issuer
		p := br.Get(b.base + "/oauth2/authorize?client_id=" + url.QueryEscape(spaID) + "&request_uri=" + url.QueryEscape(res.str("request_uri")))
		p = br.Login(p, alice, alicePassword)
		cb := br.Decide(p, "allow").Callback(t)
		require.Empty(t, cb.Error, cb.ErrorDescription)
		return cb.Code, verifier
	}

	code, verifier := boundCode(t)
	res := c.publicDPoP(t, "/oauth2/token", spaID, exchangeForm(code, verifier), dpopProof(t, other, http.MethodPost, "/oauth2/token", nil))
	assert.Equal(t, http.StatusBadRequest, res.status, "another key at %s: %s", c.name, res)
	assert.Equal(t, "invalid_grant", res.str("error"))

	code, verifier = boundCode(t)
	res = c.publicDPoP(t, "/oauth2/token", spaID, exchangeForm(code, verifier), dpopProof(t, key, http.MethodPost, "/oauth2/token", nil))
	require.Equal(t, http.StatusOK, res.status, "the key at %s: %s", c.name, res)
	assert.Equal(t, "DPoP", res.str("token_type"))
}
