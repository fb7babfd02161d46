package handler

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"

	"github.com/latchkey-dev/latchkey/internal/harness"
	"github.com/latchkey-dev/latchkey/server/keys"
	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/password"
	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/store"
	"github.com/latchkey-dev/latchkey/server/store/memory"
	"github.com/latchkey-dev/latchkey/server/token"
)

// Users and clients of the user-grant tests.
const (
	aliceName, alicePassword = "alice", "alice-password"
	bobName, bobPassword     = "bob", "bob-password" // argon2id
	carolName                = "carol"               // disabled
	daveName                 = "dave"                // no password hash

	appID        = "web-app" // confidential: password, refresh_token
	appSecret    = "web-app-secret"
	spaID        = "spa" // public: password, refresh_token
	otherAppID   = "other-app"
	noRefreshID  = "no-refresh"
	esAppID      = "es-app"
	edAppID      = "ed-app"
	resourceID   = "resource-server" // client_credentials, introspects
	resourceSec  = "resource-secret"
	userSecret   = "user-client-secret"
	allOIDC      = "openid profile email"
	projectScope = "read:projects"
)

// hashes are made once: bcrypt at its minimum cost and a small argon2id keep tests fast.
var testHashes = sync.OnceValues(func() ([]byte, []byte) {
	bc, err := bcrypt.GenerateFromPassword([]byte(alicePassword), bcrypt.MinCost)
	if err != nil {
		panic(err)
	}
	salt := []byte("bob-salt-16bytes")
	ar := (&password.Argon2id{Memory: 64, Time: 1, Threads: 1, Salt: salt,
		Key: argon2.IDKey([]byte(bobPassword), salt, 1, 64, 1, 32)}).String()
	return bc, []byte(ar)
})

// userRegistry is testRegistry plus users, user-grant clients and scopes.
func userRegistry() *registry.Registry {
	r := testRegistry()
	r.PutScope("scope/groups", registry.Scope{Name: "groups", Claims: []string{"groups"}})
	r.PutScope("scope/handle", registry.Scope{Name: "handle", Claims: []string{"preferred_username"}})
	// A Scope resource may describe a built-in scope and change what it releases.
	bc, ar := testHashes()
	for _, u := range []registry.User{
		{Username: aliceName, Email: "alice@example.com", EmailVerified: true, DisplayName: "Alice Liddell",
			Groups: []string{"admins", "dev"}, PasswordHash: bc},
		{Username: bobName, Email: "bob@example.com", DisplayName: "Bob", PasswordHash: ar},
		{Username: carolName, PasswordHash: bc, Disabled: true},
		{Username: daveName},
	} {
		u.Source, u.Subject = u.Username, subjectOf(u.Username)
		r.PutUser(u)
	}
	userGrants := []string{"password", "refresh_token"}
	userScopes := []string{"openid", "profile", "email", "offline_access", "groups", "handle", projectScope, "write:projects"}
	for _, c := range []registry.Client{
		{ID: appID, GrantTypes: append([]string{"client_credentials"}, userGrants...), Scopes: userScopes,
			Audiences: []string{"https://api.example.com"}, Introspection: true},
		{ID: otherAppID, GrantTypes: userGrants, Scopes: userScopes, Introspection: true},
		{ID: noRefreshID, GrantTypes: []string{"password"}, Scopes: userScopes},
		{ID: esAppID, GrantTypes: userGrants, Scopes: userScopes, SigningAlgorithm: keys.ES256},
		{ID: edAppID, GrantTypes: userGrants, Scopes: userScopes, SigningAlgorithm: keys.EdDSA},
		{ID: resourceID, GrantTypes: []string{"client_credentials"}, Scopes: []string{"openid", projectScope}, Introspection: true},
		{ID: spaID, Type: registry.Public, AuthMethod: oauth2.AuthMethodNone, GrantTypes: userGrants, Scopes: userScopes},
	} {
		c.Source, c.Namespace = "apps/"+c.ID, "apps"
		if c.Type == "" {
			c.Type = registry.Confidential
			secret := userSecret
			switch c.ID {
			case appID:
				secret = appSecret
			case resourceID:
				secret = resourceSec
			}
			c.SecretHash, c.HasSecret = registry.HashSecret([]byte(secret)), true
		}
		r.PutClient(c)
	}
	return r
}

// userEnv is a handler with a real registry, real keys and the memory store over httptest.
type userEnv struct {
	srv   *httptest.Server
	h     http.Handler
	reg   *registry.Registry
	store *memory.Store
	clock *harness.Clock
	jwks  jose.JSONWebKeySet
}

func newUserEnv(t testing.TB, mutate ...func(*Config)) *userEnv {
	t.Helper()
	kr, err := testKeyring()
	require.NoError(t, err)
	clock := harness.NewClock(testNow)
	st := memory.New(memory.WithClock(clock.Now))
	cfg := Config{Issuer: testIssuer, Registry: userRegistry(), Keys: kr, Now: clock.Now, Store: st,
		Login: LoginConfig{FailureDelay: -1}}
	for _, m := range mutate {
		m(&cfg)
	}
	h, err := New(cfg)
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	reg, _ := cfg.Registry.(*registry.Registry)
	return &userEnv{srv: srv, h: h, reg: reg, store: st, clock: clock, jwks: kr.PublicKeys()}
}

// secretOf returns the secret of a test client.
func secretOf(id string) string {
	switch id {
	case appID:
		return appSecret
	case resourceID:
		return resourceSec
	case spaID, "":
		return ""
	case "KEY":
		return "SECRET"
	}
	return userSecret
}

// form posts a form to the path, authenticating as the client with client_secret_basic (a
// public client sends client_id in the body).
func (e *userEnv) form(t testing.TB, path, clientID string, values url.Values) response {
	t.Helper()
	rq := request{path: path, contentType: formType}
	if secret := secretOf(clientID); secret != "" {
		rq.authorization = basic(clientID, secret)
	} else if clientID != "" {
		values.Set("client_id", clientID)
	}
	rq.body = values.Encode()
	return doT(t, e.srv, rq)
}

// passwordLogin runs the password grant and requires success.
func (e *userEnv) passwordLogin(t testing.TB, clientID, user, pw, scope string) map[string]any {
	t.Helper()
	v := url.Values{"grant_type": {"password"}, "username": {user}, "password": {pw}}
	if scope != "" {
		v.Set("scope", scope)
	}
	res := e.form(t, oauth2.TokenPath, clientID, v)
	require.Equal(t, http.StatusOK, res.status, "%v", res.body)
	return res.body
}

// refresh runs the refresh_token grant.
func (e *userEnv) refresh(t testing.TB, clientID, rt, scope string) response {
	t.Helper()
	v := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
	if scope != "" {
		v.Set("scope", scope)
	}
	return e.form(t, oauth2.TokenPath, clientID, v)
}

// verifyJWT checks a token's signature against the JWKS and returns its header and claims.
func (e *userEnv) verifyJWT(t testing.TB, tok string) (jose.Header, map[string]any) {
	t.Helper()
	parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA})
	require.NoError(t, err)
	h := parsed.Headers[0]
	k := e.jwks.Key(h.KeyID)
	require.Len(t, k, 1)
	var std jwt.Claims
	var all map[string]any
	require.NoError(t, parsed.Claims(k[0].Key, &std, &all))
	require.NoError(t, std.Validate(jwt.Expected{Issuer: testIssuer, Time: e.clock.Now()}))
	return h, all
}

func str(v any) string { s, _ := v.(string); return s }

func TestUserTokens(t *testing.T) {
	e := newUserEnv(t)
	tests := []struct {
		name       string
		client     string
		scope      string
		alg        string
		wantID     bool
		wantRT     bool
		wantClaims map[string]any
		noClaims   []string
	}{
		{name: "openid profile email releases the profile and email claims in an RS256 ID token",
			client: appID, scope: allOIDC, alg: "RS256", wantID: true, wantRT: true,
			wantClaims: map[string]any{"name": "Alice Liddell", "preferred_username": "alice",
				"email": "alice@example.com", "email_verified": true},
			noClaims: []string{"groups", "nonce"}},
		{name: "openid alone releases no user claims",
			client: appID, scope: "openid", alg: "RS256", wantID: true, wantRT: true,
			noClaims: []string{"name", "email", "preferred_username", "groups"}},
		{name: "a Scope resource's claims decide what it releases",
			client: esAppID, scope: "openid groups handle", alg: "ES256", wantID: true, wantRT: true,
			wantClaims: map[string]any{"groups": []any{"admins", "dev"}, "preferred_username": "alice"},
			noClaims:   []string{"name", "email"}},
		{name: "an EdDSA client gets an EdDSA ID token",
			client: edAppID, scope: "openid email", alg: "EdDSA", wantID: true, wantRT: true,
			wantClaims: map[string]any{"email": "alice@example.com"}},
		{name: "without openid there is no ID token",
			client: appID, scope: projectScope, alg: "RS256", wantRT: true},
		{name: "a client without the refresh_token grant gets no refresh token",
			client: noRefreshID, scope: "openid offline_access", alg: "RS256", wantID: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := e.passwordLogin(t, tt.client, aliceName, alicePassword, tt.scope)
			assert.Equal(t, tt.scope, body["scope"])
			at := str(body["access_token"])
			h, claims := e.verifyJWT(t, at)
			assert.Equal(t, tt.alg, h.Algorithm)
			assert.Equal(t, "at+jwt", h.ExtraHeaders[jose.HeaderType])
			assert.Equal(t, subjectOf(aliceName), claims["sub"])
			assert.Equal(t, tt.client, claims["client_id"])
			assert.Equal(t, tt.scope, claims["scope"])
			sid := str(claims["latchkey_family"])
			assert.Len(t, sid, 22, "latchkey_family is the family ID")
			assert.NotContains(t, claims, "sid", "a password grant has no OP session")

			if tt.wantRT {
				rt := str(body["refresh_token"])
				require.True(t, token.IsRefreshToken(rt), "refresh token %q", rt)
				assert.Equal(t, sid, token.RefreshFamily(rt), "the refresh token is prefixed with its family")
				rec, err := e.store.GetRefresh(t.Context(), store.HashOf(rt))
				require.NoError(t, err, "the store knows the token by its hash")
				assert.Equal(t, tt.client, rec.ClientID)
				assert.Equal(t, strings.Fields(tt.scope), rec.Scopes)
				assert.WithinDuration(t, e.clock.Now().Add(oauth2.DefaultRefreshTokenLifetime), rec.ExpiresAt, 0)
			} else {
				assert.NotContains(t, body, "refresh_token")
			}
			if !tt.wantID {
				assert.NotContains(t, body, "id_token")
				return
			}
			idt := str(body["id_token"])
			ih, ic := e.verifyJWT(t, idt)
			assert.Equal(t, "JWT", ih.ExtraHeaders[jose.HeaderType])
			assert.Equal(t, tt.alg, ih.Algorithm)
			assert.Equal(t, subjectOf(aliceName), ic["sub"])
			assert.Equal(t, tt.client, ic["aud"])
			assert.InDelta(t, float64(e.clock.Now().Unix()), ic["auth_time"], 0)
			assert.InDelta(t, float64(e.clock.Now().Add(time.Hour).Unix()), ic["exp"], 0)
			assert.Equal(t, atHash(tt.alg, at), ic["at_hash"])
			for k, v := range tt.wantClaims {
				assert.Equal(t, v, ic[k], k)
			}
			for _, k := range tt.noClaims {
				assert.NotContains(t, ic, k)
			}
		})
	}
}

// atHash computes at_hash independently of server/token.
func atHash(alg, at string) string {
	if alg == "EdDSA" {
		sum := sha512.Sum512([]byte(at))
		return base64.RawURLEncoding.EncodeToString(sum[:32])
	}
	sum := sha256.Sum256([]byte(at))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

func TestIDTokensPassTheGoOIDCVerifier(t *testing.T) {
	e := newUserEnv(t)
	for _, id := range []string{appID, esAppID, edAppID} {
		t.Run("an ID token of "+id+" verifies with go-oidc, at_hash included", func(t *testing.T) {
			body := e.passwordLogin(t, id, aliceName, alicePassword, allOIDC)
			ks := &oidc.StaticKeySet{}
			for _, k := range e.jwks.Keys {
				ks.PublicKeys = append(ks.PublicKeys, k.Key)
			}
			v := oidc.NewVerifier(testIssuer, ks, &oidc.Config{
				ClientID: id, Now: e.clock.Now,
				SupportedSigningAlgs: []string{oidc.RS256, oidc.ES256, oidc.EdDSA},
			})
			idt, err := v.Verify(context.Background(), str(body["id_token"]))
			require.NoError(t, err)
			assert.Equal(t, subjectOf(aliceName), idt.Subject)
			require.NoError(t, idt.VerifyAccessToken(str(body["access_token"])))
			require.Error(t, idt.VerifyAccessToken(str(body["access_token"])+"x"), "another token fails at_hash")
			var claims struct {
				Email    string `json:"email"`
				Verified bool   `json:"email_verified"`
				Name     string `json:"name"`
			}
			require.NoError(t, idt.Claims(&claims))
			assert.Equal(t, "alice@example.com", claims.Email)
			assert.True(t, claims.Verified)
			assert.Equal(t, "Alice Liddell", claims.Name)
		})
	}
}

func TestDiscoveryWithTheStoreMatchesGoldenFiles(t *testing.T) {
	e := newUserEnv(t, func(c *Config) { c.BackchannelLogout = true })
	assertDiscoveryGolden(t, e.srv, ".store")
	t.Run("the built-in scopes and the user endpoints are advertised", func(t *testing.T) {
		var m map[string]any
		require.NoError(t, json.Unmarshal(get(t, e.srv.URL+oauth2.OpenIDConfigurationPath, e.srv.Client()), &m))
		assert.Subset(t, m["scopes_supported"], []any{"openid", "profile", "email", "address", "phone", "offline_access", "groups"})
		assert.Subset(t, m["grant_types_supported"], []any{"client_credentials", "password", "refresh_token"})
		assert.Equal(t, true, m["backchannel_logout_supported"])
		assert.Equal(t, true, m["backchannel_logout_session_supported"])
		assert.Equal(t, testIssuer+oauth2.UserinfoPath, m["userinfo_endpoint"])
		assert.Equal(t, testIssuer+oauth2.RevocationPath, m["revocation_endpoint"])
		assert.Equal(t, testIssuer+oauth2.IntrospectionPath, m["introspection_endpoint"])
		assert.Subset(t, m["claims_supported"], []any{"sub", "email", "email_verified", "name", "preferred_username", "groups"})
	})
}
