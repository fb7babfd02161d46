package multireplica

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/harness"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// dpopProof signs a DPoP proof with key for method at the shared issuer's path; extra claims
// are added.
func dpopProof(t *testing.T, key *ecdsa.PrivateKey, method, path string, extra map[string]any) string {
	t.Helper()
	out, err := harness.DPoPProof(key, method, env.issuer+path, time.Now(), extra)
	require.NoError(t, err)
	return out
}

// dpopToken posts a token request with a DPoP header to replica r.
func (r *replica) dpopToken(t *testing.T, auth clientAuth, form url.Values, proof string) apiResponse {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, r.base+"/oauth2/token", strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(auth.id), url.QueryEscape(auth.secret))
	req.Header.Set("DPoP", proof)
	return doJSON(t, req)
}

func doJSON(t *testing.T, req *http.Request) apiResponse {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close() //nolint:errcheck // test
	raw, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	out := apiResponse{status: res.StatusCode, header: res.Header}
	require.NoError(t, json.Unmarshal(raw, &out.body), "%s", raw)
	return out
}

func TestADPoPProofUsedAtOneReplicaIsAReplayAtEveryOtherAndNoncesAreShared(t *testing.T) {
	s := env
	a, b, c := s.replicas[0], s.replicas[1], s.replicas[2]
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	cc := url.Values{"grant_type": {"client_credentials"}, "scope": {"read:projects"}}

	proof := dpopProof(t, key, http.MethodPost, "/oauth2/token", nil)
	res := a.dpopToken(t, service, cc, proof)
	require.Equal(t, http.StatusOK, res.status, "%s", res)
	assert.Equal(t, "DPoP", res.str("token_type"))
	for _, r := range []*replica{b, c, a} {
		replay := r.dpopToken(t, service, cc, proof)
		assert.Equal(t, http.StatusBadRequest, replay.status, "replay at %s: %s", r.name, replay)
		assert.Equal(t, "invalid_dpop_proof", replay.str("error"), "replay at %s", r.name)
	}

	nonce := res.header.Get("DPoP-Nonce")
	require.NotEmpty(t, nonce, "replicas with a nonce secret send nonces")
	withNonce := b.dpopToken(t, service, cc, dpopProof(t, key, http.MethodPost, "/oauth2/token", map[string]any{"nonce": nonce}))
	assert.Equal(t, http.StatusOK, withNonce.status, "%s's nonce at %s: %s", a.name, b.name, withNonce)
	forged := c.dpopToken(t, service, cc, dpopProof(t, key, http.MethodPost, "/oauth2/token", map[string]any{"nonce": "Zm9yZ2Vk"}))
	assert.Equal(t, "use_dpop_nonce", forged.str("error"), "a forged nonce at %s: %s", c.name, forged)

	// A user's bound token from one replica works at another's userinfo with a proof of its key.
	login := a.dpopToken(t, webapp, url.Values{"grant_type": {"password"}, "username": {alice}, "password": {alicePassword}, "scope": {"openid"}},
		dpopProof(t, key, http.MethodPost, "/oauth2/token", nil))
	require.Equal(t, http.StatusOK, login.status, "%s", login)
	at := login.str("access_token")
	sum := sha256.Sum256([]byte(at))
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, b.base+"/oauth2/userinfo", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "DPoP "+at)
	req.Header.Set("DPoP", dpopProof(t, key, http.MethodGet, "/oauth2/userinfo", map[string]any{"ath": base64.RawURLEncoding.EncodeToString(sum[:])}))
	info := doJSON(t, req)
	assert.Equal(t, http.StatusOK, info.status, "userinfo at %s: %s", b.name, info)
	assert.NotEmpty(t, info.str("sub"))
}
