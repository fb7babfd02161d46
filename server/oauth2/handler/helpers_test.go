package handler

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/server/keys"
	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/registry"
)

// testKeyring has one key per algorithm, generated once per test binary: RSA keys are slow.
var testKeyring = sync.OnceValues(func() (*keys.Keyring, error) {
	set, err := keys.Generate(keys.SupportedAlgorithms(), time.Now().Add(-time.Minute))
	if err != nil {
		return nil, err
	}
	kr := keys.NewKeyring()
	return kr, kr.Load(set)
})

const testIssuer = "https://latchkey.example"

// subjectOf is the subject the test registries give a username: deliberately not the username,
// so a test cannot pass by confusing the two.
func subjectOf(username string) string { return "sub-" + username + "-0001" }

// testNow is the fixed clock of the handler under test.
var testNow = time.Unix(1_760_000_000, 0)

// Clients of the test registry and their secrets.
const (
	billingID     = "billing-service"
	billingSecret = "billing-secret"
	specialID     = "svc:special%id"
	specialSecret = "s3:cr%et+/=&x ü"
	defaultsID    = "with-defaults"
	markedID      = "marked-defaults"
	noGrantID     = "no-grant"
	publicID      = "public-app"
	esID          = "es-client"
	edID          = "ed-client"
	commonSecret  = "common-secret"
)

func testRegistry() *registry.Registry {
	r := registry.New()
	for _, sc := range []registry.Scope{
		{Name: "read:projects", Default: true},
		{Name: "write:projects"},
		{Name: "admin:read"},
		{Name: "read"},
		{Name: "other-ns-only", AllowedNamespaces: []string{"other"}},
		{Name: "payments-only", AllowedNamespaces: []string{"payments"}},
	} {
		r.PutScope("scope/"+sc.Name, sc)
	}
	cc := []string{"client_credentials"}
	confidential := func(id, secret string, c registry.Client) registry.Client {
		c.Source, c.ID, c.Type = "payments/"+id, id, registry.Confidential
		if c.Namespace == "" {
			c.Namespace = "payments"
		}
		if c.GrantTypes == nil {
			c.GrantTypes = cc
		}
		c.SecretHash, c.HasSecret = registry.HashSecret([]byte(secret)), true
		return c
	}
	for _, c := range []registry.Client{
		confidential(billingID, billingSecret, registry.Client{
			Scopes:    []string{"read:projects", "write:projects", "admin:read", "other-ns-only", "payments-only", "ghost"},
			Audiences: []string{"https://api.example.com"},
		}),
		confidential(specialID, specialSecret, registry.Client{Scopes: []string{"read"}}),
		confidential(defaultsID, commonSecret, registry.Client{
			Scopes: []string{"read:projects", "admin:read", "other-ns-only"}, DefaultScopes: []string{"admin:read", "other-ns-only", "ghost"},
		}),
		confidential(markedID, commonSecret, registry.Client{Scopes: []string{"read:projects", "admin:read"}}),
		confidential(noGrantID, commonSecret, registry.Client{GrantTypes: []string{"authorization_code"}}),
		confidential(esID, commonSecret, registry.Client{SigningAlgorithm: keys.ES256, Scopes: []string{"read"},
			AccessTokenLifetime: 10 * time.Minute}),
		confidential(edID, commonSecret, registry.Client{SigningAlgorithm: keys.EdDSA, Scopes: []string{"read"},
			Audiences: []string{"https://a.example", "https://b.example"}}),
		{Source: "web/" + publicID, Namespace: "web", ID: publicID, Type: registry.Public, AuthMethod: oauth2.AuthMethodNone, GrantTypes: cc},
	} {
		r.PutClient(c)
	}
	return r
}

func newTestHandler(t testing.TB) http.Handler {
	t.Helper()
	kr, err := testKeyring()
	require.NoError(t, err)
	h, err := New(Config{
		Issuer: testIssuer, Registry: testRegistry(), Keys: kr, Now: func() time.Time { return testNow },
	})
	require.NoError(t, err)
	return h
}

func newTestServer(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(newTestHandler(t))
	t.Cleanup(srv.Close)
	return srv
}

// basic is the client_secret_basic header of RFC 6749 2.3.1.
func basic(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}

// request describes one HTTP request in a table.
type request struct {
	method, path, contentType, authorization, body string
	// forwardedFor is sent as X-Forwarded-For.
	forwardedFor string
	// header holds more headers (each value is sent, in order).
	header http.Header
}

type response struct {
	status int
	header http.Header
	body   map[string]any
}

// do sends the request (POST to the token endpoint unless it says otherwise) and requires a
// JSON answer with a body, except for HEAD.
func do(t *testing.T, srv *httptest.Server, rq request) response {
	t.Helper()
	if rq.path == "" {
		rq.path = oauth2.TokenPath
	}
	res := doT(t, srv, rq)
	assert.True(t, strings.HasPrefix(res.header.Get("Content-Type"), "application/json"),
		"Content-Type %q", res.header.Get("Content-Type"))
	if rq.method != http.MethodHead {
		require.NotNil(t, res.body, "a JSON body")
	}
	return res
}

// doT sends the request (POST unless it says otherwise) and decodes the JSON body, if any (a
// revocation answers none).
func doT(t testing.TB, srv *httptest.Server, rq request) response {
	t.Helper()
	return doWith(t, srv.Client(), srv, rq)
}

// doWith is doT through the HTTP client c (another source address, say).
func doWith(t testing.TB, c *http.Client, srv *httptest.Server, rq request) response {
	t.Helper()
	if rq.method == "" {
		rq.method = http.MethodPost
	}
	req, err := http.NewRequest(rq.method, srv.URL+rq.path, strings.NewReader(rq.body))
	require.NoError(t, err)
	if rq.contentType != "" {
		req.Header.Set("Content-Type", rq.contentType)
	}
	if rq.authorization != "" {
		req.Header.Set("Authorization", rq.authorization)
	}
	if rq.forwardedFor != "" {
		req.Header.Set("X-Forwarded-For", rq.forwardedFor)
	}
	for k, vs := range rq.header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	res, err := c.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	out := response{status: res.StatusCode, header: res.Header}
	raw, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	if len(raw) > 0 {
		require.NoError(t, json.Unmarshal(raw, &out.body), "body %q", raw)
	}
	return out
}

const formType = "application/x-www-form-urlencoded"

// fetchJWKS gets the published keys over HTTP.
func fetchJWKS(t *testing.T, srv *httptest.Server) jose.JSONWebKeySet {
	t.Helper()
	res, err := srv.Client().Get(srv.URL + oauth2.JWKSPath)
	require.NoError(t, err)
	defer res.Body.Close()
	var set jose.JSONWebKeySet
	require.NoError(t, json.NewDecoder(res.Body).Decode(&set))
	return set
}

// verifiedToken is an access token checked against the JWKS.
type verifiedToken struct {
	header jose.Header
	claims map[string]any
}

func verifyToken(t *testing.T, jwks jose.JSONWebKeySet, tok string) verifiedToken {
	t.Helper()
	parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA})
	require.NoError(t, err)
	require.Len(t, parsed.Headers, 1)
	h := parsed.Headers[0]
	k := jwks.Key(h.KeyID)
	require.Len(t, k, 1, "kid %q is in the JWKS", h.KeyID)
	assert.Equal(t, h.Algorithm, k[0].Algorithm)
	var std jwt.Claims
	var all map[string]any
	require.NoError(t, parsed.Claims(k[0].Key, &std, &all))
	require.NoError(t, std.Validate(jwt.Expected{Issuer: testIssuer, Time: testNow.Add(time.Second)}))
	return verifiedToken{header: h, claims: all}
}
