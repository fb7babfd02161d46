package handler

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/store/memory"
	"github.com/latchkey-dev/latchkey/server/workload"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// get fetches a document and checks the headers every discovery answer has.
func get(t *testing.T, url string, client *http.Client) []byte {
	t.Helper()
	res, err := client.Get(url)
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, "application/json;charset=UTF-8", res.Header.Get("Content-Type"))
	assert.Equal(t, "public, max-age=300", res.Header.Get("Cache-Control"))
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return body
}

// assertDiscoveryGolden compares both discovery documents of srv with the golden files
// testdata/<document><suffix>.golden.json (rewritten with -update).
func assertDiscoveryGolden(t *testing.T, srv *httptest.Server, suffix string) {
	t.Helper()
	for _, path := range []string{oauth2.OpenIDConfigurationPath, oauth2.AuthorizationServerPath} {
		t.Run("the document at "+path+" matches its golden file", func(t *testing.T) {
			body := get(t, srv.URL+path, srv.Client())
			golden := filepath.Join("testdata", filepath.Base(path)+suffix+".golden.json")
			if *update {
				var pretty bytes.Buffer
				require.NoError(t, json.Indent(&pretty, body, "", "  "))
				require.NoError(t, os.WriteFile(golden, pretty.Bytes(), 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err)
			assert.JSONEq(t, string(want), string(body))
		})
	}
}

func TestDiscoveryDocumentsMatchGoldenFiles(t *testing.T) {
	assertDiscoveryGolden(t, newTestServer(t), "")
}

func TestDiscoveryDescribesOnlyWhatWorks(t *testing.T) {
	srv := newTestServer(t)
	var m map[string]any
	require.NoError(t, json.Unmarshal(get(t, srv.URL+oauth2.OpenIDConfigurationPath, srv.Client()), &m))

	t.Run("without a store there is no authorization endpoint", func(t *testing.T) {
		assert.NotContains(t, m, "authorization_endpoint")
		assert.Equal(t, []any{}, m["response_types_supported"])
	})
	t.Run("the only grant is client_credentials", func(t *testing.T) {
		assert.Equal(t, []any{"client_credentials"}, m["grant_types_supported"])
	})
	t.Run("the signing algorithms are the keyring's", func(t *testing.T) {
		assert.Equal(t, []any{"RS256", "ES256", "EdDSA"}, m["id_token_signing_alg_values_supported"])
	})
	t.Run("the scopes come from the registry, sorted", func(t *testing.T) {
		assert.Equal(t, []any{"admin:read", "other-ns-only", "payments-only", "read", "read:projects", "write:projects"},
			m["scopes_supported"])
	})
	t.Run("the token endpoint is under the issuer", func(t *testing.T) {
		u, _ := m["token_endpoint"].(string)
		assert.Equal(t, testIssuer+oauth2.TokenPath, u)
	})
	t.Run("HEAD works on discovery", func(t *testing.T) {
		res, err := srv.Client().Head(srv.URL + oauth2.OpenIDConfigurationPath)
		require.NoError(t, err)
		res.Body.Close()
		assert.Equal(t, http.StatusOK, res.StatusCode)
	})
}

func TestJWKSPublishesThePublicKeys(t *testing.T) {
	srv := newTestServer(t)
	body := get(t, srv.URL+oauth2.JWKSPath, srv.Client())
	var set jose.JSONWebKeySet
	require.NoError(t, json.Unmarshal(body, &set))
	require.Len(t, set.Keys, 3)
	algs := map[string]bool{}
	for _, k := range set.Keys {
		assert.True(t, k.IsPublic(), "key %s is public", k.KeyID)
		assert.True(t, k.Valid())
		assert.NotEmpty(t, k.KeyID)
		assert.Equal(t, "sig", k.Use)
		algs[k.Algorithm] = true
	}
	assert.Equal(t, map[string]bool{"RS256": true, "ES256": true, "EdDSA": true}, algs)
	assert.NotContains(t, string(body), `"d":`, "no private key material")
}

func TestDiscoveryAdvertisesTheAssertionMethodsTheServerVerifies(t *testing.T) {
	kr, err := testKeyring()
	require.NoError(t, err)
	verifier, err := workload.New(workload.Config{Issuer: testIssuer})
	require.NoError(t, err)
	tests := []struct {
		name        string
		cfg         Config
		wantMethods []any
	}{
		{"without a verifier only the secret methods are listed",
			Config{}, []any{"client_secret_basic", "client_secret_post"}},
		{"a verifier without a store adds service_account_token (private_key_jwt needs a store for its jti)",
			Config{ClientAssertions: verifier}, []any{"client_secret_basic", "client_secret_post", "service_account_token"}},
		{"a verifier with a store adds both",
			Config{ClientAssertions: verifier, Store: memory.New()},
			[]any{"client_secret_basic", "client_secret_post", "none", "service_account_token", "private_key_jwt"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.Issuer, cfg.Registry, cfg.Keys, cfg.Now = testIssuer, testRegistry(), kr, func() time.Time { return testNow }
			h, err := New(cfg)
			require.NoError(t, err)
			srv := httptest.NewServer(h)
			t.Cleanup(srv.Close)
			var m map[string]any
			require.NoError(t, json.Unmarshal(get(t, srv.URL+oauth2.AuthorizationServerPath, srv.Client()), &m))
			assert.Equal(t, tt.wantMethods, m["token_endpoint_auth_methods_supported"])
			if cfg.ClientAssertions == nil {
				assert.NotContains(t, m, "token_endpoint_auth_signing_alg_values_supported")
				return
			}
			assert.Contains(t, m["token_endpoint_auth_signing_alg_values_supported"], "ES256")
			assert.NotContains(t, m["token_endpoint_auth_signing_alg_values_supported"], "HS256")
			if cfg.Store != nil {
				assert.Contains(t, m["introspection_endpoint_auth_methods_supported"], "private_key_jwt")
				assert.Equal(t, []any{"client_secret_basic", "client_secret_post"}, m["introspection_endpoint_auth_methods_supported"].([]any)[:2])
			}
		})
	}
}
