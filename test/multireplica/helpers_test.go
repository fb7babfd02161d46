package multireplica

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/stretchr/testify/require"
)

// The sample resources of config/samples the tests use.
const (
	demoRedirect  = "http://localhost:3000/callback"
	serviceID     = "demo-service"
	serviceSecret = "demo-service-secret"
	spaID         = "demo-spa"
	webappID      = "demo-webapp"
	webappSecret  = "demo-webapp-secret"
	alice         = "alice"
	alicePassword = "alice-password"
)

type clientAuth struct{ id, secret string }

var (
	service = clientAuth{serviceID, serviceSecret}
	webapp  = clientAuth{webappID, webappSecret}
	spa     = clientAuth{id: spaID}
)

type apiResponse struct {
	status int
	header http.Header
	body   map[string]any
}

func (r apiResponse) String() string { return fmt.Sprintf("%d %v", r.status, r.body) }

func (r apiResponse) str(key string) string {
	v, _ := r.body[key].(string)
	return v
}

// postForm posts a form to an endpoint of the replica as the client.
func (r *replica) postForm(ctx context.Context, path string, auth clientAuth, form url.Values) (apiResponse, error) {
	return r.postFormWith(ctx, http.DefaultClient, path, auth, form)
}

// postFormWith is postForm through the HTTP client c (from another source address, say).
func (r *replica) postFormWith(ctx context.Context, c *http.Client, path string, auth clientAuth, form url.Values) (apiResponse, error) {
	if auth.secret == "" {
		form.Set("client_id", auth.id)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		return apiResponse{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if auth.secret != "" {
		req.SetBasicAuth(url.QueryEscape(auth.id), url.QueryEscape(auth.secret))
	}
	resp, err := c.Do(req)
	if err != nil {
		return apiResponse{}, err
	}
	defer resp.Body.Close() //nolint:errcheck // test
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return apiResponse{}, err
	}
	out := apiResponse{status: resp.StatusCode, header: resp.Header}
	if len(raw) == 0 {
		return out, nil
	}
	if err := json.Unmarshal(raw, &out.body); err != nil {
		return out, fmt.Errorf("%s %s answered %d with %s: %w", r.name, path, resp.StatusCode, raw, err)
	}
	return out, nil
}

func (r *replica) passwordGrant(ctx context.Context) (apiResponse, error) {
	return r.passwordGrantWith(ctx, http.DefaultClient)
}

// passwordGrantWith gets alice's tokens for demo-webapp through the HTTP client c.
func (r *replica) passwordGrantWith(ctx context.Context, c *http.Client) (apiResponse, error) {
	return r.postFormWith(ctx, c, "/oauth2/token", webapp, url.Values{
		"grant_type": {"password"}, "username": {alice}, "password": {alicePassword}, "scope": {"openid profile email"},
	})
}

// token posts to the token endpoint and fails the test on a transport error.
func (r *replica) token(t *testing.T, auth clientAuth, form url.Values) apiResponse {
	t.Helper()
	res, err := r.postForm(t.Context(), "/oauth2/token", auth, form)
	require.NoError(t, err)
	return res
}

// tokens gets alice's tokens for demo-webapp with the password grant.
func (r *replica) tokens(t *testing.T) apiResponse {
	t.Helper()
	res, err := r.passwordGrant(t.Context())
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.status, "password grant at %s: %s", r.name, res)
	require.NotEmpty(t, res.str("access_token"))
	require.NotEmpty(t, res.str("refresh_token"))
	return res
}

// clientCredentials gets a token for demo-service.
func (r *replica) clientCredentials(t *testing.T) string {
	t.Helper()
	res := r.token(t, service, url.Values{"grant_type": {"client_credentials"}, "scope": {"read:projects"}})
	require.Equal(t, http.StatusOK, res.status, "client_credentials at %s: %s", r.name, res)
	require.NotEmpty(t, res.str("access_token"))
	return res.str("access_token")
}

// refresh presents a refresh token as demo-webapp.
func (r *replica) refresh(t *testing.T, rt string) apiResponse {
	t.Helper()
	return r.token(t, webapp, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
}

// introspect asks the replica whether a token is active, as demo-service.
func (r *replica) introspect(t *testing.T, tok string) bool {
	t.Helper()
	res, err := r.postForm(t.Context(), "/oauth2/introspect", service, url.Values{"token": {tok}})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.status, "introspection at %s: %s", r.name, res)
	active, ok := res.body["active"].(bool)
	require.True(t, ok, "introspection at %s has active: %s", r.name, res)
	return active
}

func (r *replica) revoke(t *testing.T, auth clientAuth, tok, hint string) {
	t.Helper()
	res, err := r.postForm(t.Context(), "/oauth2/revoke", auth, url.Values{"token": {tok}, "token_type_hint": {hint}})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.status, "revocation at %s: %s", r.name, res)
}

func (r *replica) userinfo(t *testing.T, accessToken string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, r.base+"/oauth2/userinfo", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+accessToken)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode
}

// jwks fetches the replica's published key set.
func (r *replica) jwks(t *testing.T) jose.JSONWebKeySet {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, r.base+"/.well-known/jwks.json", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close() //nolint:errcheck // test
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var set jose.JSONWebKeySet
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&set))
	require.NotEmpty(t, set.Keys, "%s publishes keys", r.name)
	return set
}

func kids(set jose.JSONWebKeySet) []string {
	out := make([]string, 0, len(set.Keys))
	for _, k := range set.Keys {
		out = append(out, k.KeyID)
	}
	return out
}

// allowedAlgorithms is the signature allow-list of verification.
var allowedAlgorithms = []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA} //nolint:gochecknoglobals // constant list

// kidOf returns the key ID of a signed token.
func kidOf(t *testing.T, token string) string {
	t.Helper()
	parsed, err := jwt.ParseSigned(token, allowedAlgorithms)
	require.NoError(t, err)
	require.Len(t, parsed.Headers, 1)
	return parsed.Headers[0].KeyID
}

// verifyWith checks an access token's signature against the key set and its iss and exp.
func verifyWith(t *testing.T, set jose.JSONWebKeySet, token, issuer string) map[string]any {
	t.Helper()
	parsed, err := jwt.ParseSigned(token, allowedAlgorithms)
	require.NoError(t, err)
	require.Len(t, parsed.Headers, 1)
	keys := set.Key(parsed.Headers[0].KeyID)
	require.Len(t, keys, 1, "kid %s must be published (have %v)", parsed.Headers[0].KeyID, kids(set))
	claims := map[string]any{}
	var std jwt.Claims
	require.NoError(t, parsed.Claims(keys[0].Key, &claims, &std))
	require.NoError(t, std.ValidateWithLeeway(jwt.Expected{Issuer: issuer, Time: time.Now()}, time.Minute))
	return claims
}
