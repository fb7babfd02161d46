package node

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/latchkey-dev/latchkey/internal/harness"
)

const (
	workerID, workerSecret = "node-worker", "node-worker-secret"
	rsID, rsSecret         = "node-resource-server", "node-resource-server-secret"
	appID                  = "node-spa"
	redirectURI            = "https://spa.example.test/callback"
	resource               = "https://orders.example.test"
	username, password     = "nadia", "nadia-password"
	// minNodeMajor is the oldest Node.js that oauth4webapi and openid-client support (WebCrypto
	// as globalThis.crypto).
	minNodeMajor = 20
)

// manifests are the clients, scopes and user the Node clients use: a DPoP-Required machine
// client, a resource server that may introspect, and a public single-page app whose tokens
// may be for one of two APIs.
func manifests(hash string) string {
	return `apiVersion: oauth.latchkey.dev/v1alpha1
kind: OAuthClient
metadata: {name: worker}
spec:
  clientID: ` + workerID + `
  grantTypes: [client_credentials]
  scopes: ["read:projects"]
  dpop: Required
  secretPolicy: External
  secretRef: {name: worker, key: client-secret}
---
apiVersion: v1
kind: Secret
metadata: {name: worker}
stringData: {client-secret: ` + workerSecret + `}
---
apiVersion: oauth.latchkey.dev/v1alpha1
kind: OAuthClient
metadata: {name: resource-server}
spec:
  clientID: ` + rsID + `
  grantTypes: [client_credentials]
  scopes: ["read:projects"]
  introspection: true
  secretPolicy: External
  secretRef: {name: resource-server, key: client-secret}
---
apiVersion: v1
kind: Secret
metadata: {name: resource-server}
stringData: {client-secret: ` + rsSecret + `}
---
apiVersion: oauth.latchkey.dev/v1alpha1
kind: OAuthClient
metadata: {name: spa}
spec:
  clientID: ` + appID + `
  type: Public
  grantTypes: [authorization_code, refresh_token]
  redirectURIs: ["` + redirectURI + `"]
  scopes: [openid, email, offline_access]
  audiences: ["` + resource + `", "https://billing.example.test"]
  pkce: Required
---
apiVersion: oauth.latchkey.dev/v1alpha1
kind: Scope
metadata: {name: read-projects}
spec: {name: "read:projects", description: "List and view projects"}
---
apiVersion: oauth.latchkey.dev/v1alpha1
kind: User
metadata: {name: nadia}
spec:
  username: ` + username + `
  email: nadia@example.com
  emailVerified: true
  passwordSecretRef: {namespace: default, name: nadia-password, key: hash}
---
apiVersion: v1
kind: Secret
metadata: {name: nadia-password, namespace: default}
stringData: {hash: '` + hash + `'}
`
}

// server is one latchkey process and what it does with DPoP nonces ("off" or "required", as
// client.mjs's NONCE).
type server struct {
	*harness.Server
	nonce string
}

// suite is what the tests of this package share.
type suite struct {
	node, dir string
	servers   []server
}

var env *suite //nolint:gochecknoglobals // one set of servers per package, started in TestMain

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

func runMain(m *testing.M) int {
	fail := func(what string, err error) int { fmt.Fprintf(os.Stderr, "node: %s: %v\n", what, err); return 1 }
	node, err := findNode()
	if err != nil {
		return fail("node", err)
	}
	dir, err := os.Getwd()
	if err != nil {
		return fail("working directory", err)
	}
	if err := npmPackages(dir); err != nil {
		return fail("npm packages", err)
	}
	tmp, err := os.MkdirTemp("", "latchkey-node-")
	if err != nil {
		return fail("temporary directory", err)
	}
	defer os.RemoveAll(tmp) //nolint:errcheck // best effort at exit
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		return fail("password hash", err)
	}
	dirManifests := filepath.Join(tmp, "manifests")
	if err := os.Mkdir(dirManifests, 0o700); err != nil {
		return fail("manifests", err)
	}
	if err := os.WriteFile(filepath.Join(dirManifests, "node.yaml"), []byte(manifests(string(hash))), 0o600); err != nil {
		return fail("manifests", err)
	}
	secretFile := filepath.Join(tmp, "dpop-nonce-secret")
	if err := os.WriteFile(secretFile, []byte(rand.Text()+rand.Text()), 0o600); err != nil {
		return fail("nonce secret", err)
	}
	binary, err := harness.BuildBinary(tmp)
	if err != nil {
		return fail("build", err)
	}
	s := &suite{node: node, dir: dir}
	for _, cfg := range []struct {
		nonce string
		args  []string
	}{
		{nonce: "off"},
		{nonce: "required", args: []string{"--dpop-nonce-secret-file", secretFile, "--dpop-require-nonce"}},
	} {
		srv, err := harness.StartServer(context.Background(), binary, filepath.Join(tmp, "latchkey-nonce-"+cfg.nonce+".log"), 60*time.Second,
			func(harness.ServeAddrs) []string {
				return append([]string{"serve", "--manifests", dirManifests, "--audit-log", "off"}, cfg.args...)
			})
		if err != nil {
			return fail("start latchkey", err)
		}
		defer srv.Stop(10 * time.Second)
		s.servers = append(s.servers, server{Server: srv, nonce: cfg.nonce})
	}
	env = s
	return m.Run()
}

// findNode returns the path of node (Debian's nodejs, installed when missing), which must be
// at least minNodeMajor.
func findNode() (string, error) {
	node, err := harness.Tool("node", "nodejs")
	if err != nil {
		return "", err
	}
	out, err := exec.CommandContext(context.Background(), node, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("%s --version: %w", node, err)
	}
	version := strings.TrimSpace(string(out))
	major, err := strconv.Atoi(strings.SplitN(strings.TrimPrefix(version, "v"), ".", 2)[0])
	if err != nil {
		return "", fmt.Errorf("%s --version said %q", node, version)
	}
	if major < minNodeMajor {
		return "", fmt.Errorf("%s is Node.js %s; oauth4webapi and openid-client need %d or later (Debian 13's nodejs, or NodeSource's)", node, version, minNodeMajor)
	}
	return node, nil
}

// npmPackages installs the locked npm packages of dir when node_modules lacks one of them or
// holds another version than package-lock.json names.
func npmPackages(dir string) error {
	var lock struct {
		Packages map[string]struct {
			Version string `json:"version"`
		} `json:"packages"`
	}
	raw, err := os.ReadFile(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, &lock); err != nil {
		return fmt.Errorf("package-lock.json: %w", err)
	}
	find := func() (string, error) {
		for path, want := range lock.Packages {
			if path == "" {
				continue // the folder's own package
			}
			raw, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(path), "package.json"))
			if err != nil {
				return "", err
			}
			var got struct {
				Version string `json:"version"`
			}
			if err := json.Unmarshal(raw, &got); err != nil || got.Version != want.Version {
				return "", fmt.Errorf("%s is %q, the lock names %q", path, got.Version, want.Version)
			}
		}
		return filepath.Join(dir, "node_modules"), nil
	}
	_, err = harness.Provide("the npm packages of test/node", find, harness.Install{Script: "hack/npm-ci.sh", Args: []string{"test/node"}})
	return err
}

// run runs `node client.mjs command` with the variables vars and returns what it printed on
// stdout (one JSON object). When Node exits non-zero the test fails with its stderr (the
// failed check) and the tail of the server's log.
func (s *suite) run(t *testing.T, srv server, command string, vars map[string]string) map[string]any {
	t.Helper()
	out, stderr, err := s.runNode(t, srv, command, vars)
	if err != nil {
		t.Fatalf("node client.mjs %s against the server with nonces %s: %v\n%s\nlatchkey log (tail):\n%s",
			command, srv.nonce, err, stderr, srv.Tail(4096))
	}
	got := map[string]any{}
	require.NoError(t, json.Unmarshal(out, &got), "stdout of node client.mjs %s: %s", command, out)
	return got
}

func (s *suite) runNode(t *testing.T, srv server, command string, vars map[string]string) (stdout []byte, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.node, "client.mjs", command)
	cmd.Dir = s.dir
	cmd.Env = append(os.Environ(), "ISSUER="+srv.URL(), "NONCE="+srv.nonce)
	for k, v := range vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var outBuf, errBuf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &outBuf, &errBuf
	err = cmd.Run()
	// Node prints no token, code or key: nothing that looks like a JWT or a JWK's private part.
	for _, out := range []string{outBuf.String(), errBuf.String()} {
		assert.NotRegexp(t, `eyJ[A-Za-z0-9_-]{8,}\.`, out, "node client.mjs %s printed a JWT", command)
		assert.NotContains(t, out, `"d":`, "node client.mjs %s printed a private key", command)
		assert.NotContains(t, out, "code=", "node client.mjs %s printed an authorization code", command)
	}
	return outBuf.Bytes(), errBuf.String(), err
}

// forEachServer runs test against the server without nonces and the one that requires them.
func forEachServer(t *testing.T, test func(t *testing.T, srv server)) {
	t.Helper()
	for _, srv := range env.servers {
		t.Run("with DPoP nonces "+srv.nonce, func(t *testing.T) { test(t, srv) })
	}
}

func TestOAuth4WebAPIGetsADPoPBoundClientCredentialsTokenAndIntrospectsIt(t *testing.T) {
	forEachServer(t, func(t *testing.T, srv server) {
		got := env.run(t, srv, "cc", map[string]string{
			"CLIENT_ID": workerID, "CLIENT_SECRET": workerSecret,
			"INTROSPECTOR_ID": rsID, "INTROSPECTOR_SECRET": rsSecret,
		})
		assert.Equal(t, "dpop", got["token_type"])
		assert.Equal(t, true, got["jkt_matches"])
		assert.Equal(t, true, got["introspection_cnf"])
	})
}

func TestOpenIDClientDiscoversTheServerAndGetsADPoPBoundClientCredentialsToken(t *testing.T) {
	forEachServer(t, func(t *testing.T, srv server) {
		got := env.run(t, srv, "oc-cc", map[string]string{"CLIENT_ID": workerID, "CLIENT_SECRET": workerSecret})
		assert.Equal(t, "dpop", got["token_type"])
		assert.Equal(t, true, got["jkt_matches"])
	})
}

func TestOAuth4WebAPIRunsCodeWithPKCEThroughPARWithAResourceAndDPoP(t *testing.T) {
	forEachServer(t, func(t *testing.T, srv server) {
		for _, tt := range []struct{ name, bind string }{
			{"the key is first used at the token endpoint", ""},
			{"the code is bound to the key by dpop_jkt", "dpop_jkt"},
			{"the code is bound to the key by a DPoP proof with the push", "proof"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				vars := map[string]string{
					"CLIENT_ID": appID, "REDIRECT_URI": redirectURI, "RESOURCE": resource,
					"STATE_FILE": filepath.Join(t.TempDir(), "state.json"), "BIND": tt.bind,
				}
				started := env.run(t, srv, "par-start", vars)
				authURL, _ := started["authorizationUrl"].(string)
				require.True(t, strings.HasPrefix(authURL, srv.URL()+"/oauth2/authorize?"), "authorization URL %q", authURL)

				vars["CALLBACK_URL"] = signIn(t, srv, authURL)
				got := env.run(t, srv, "par-finish", vars)
				assert.Equal(t, "dpop", got["token_type"])
				assert.Equal(t, resource, got["aud"])
				assert.Equal(t, true, got["id_token_validated"])
				assert.Equal(t, true, got["refreshed"])
			})
		}
	})
}

func TestOpenIDClientRunsCodeWithPKCEThroughPARWithAResourceAndDPoP(t *testing.T) {
	forEachServer(t, func(t *testing.T, srv server) {
		vars := map[string]string{
			"CLIENT_ID": appID, "REDIRECT_URI": redirectURI, "RESOURCE": resource,
			"STATE_FILE": filepath.Join(t.TempDir(), "state.json"),
		}
		started := env.run(t, srv, "oc-par-start", vars)
		authURL, _ := started["authorizationUrl"].(string)
		require.True(t, strings.HasPrefix(authURL, srv.URL()+"/oauth2/authorize?"), "authorization URL %q", authURL)

		vars["CALLBACK_URL"] = signIn(t, srv, authURL)
		got := env.run(t, srv, "oc-par-finish", vars)
		assert.Equal(t, "dpop", got["token_type"])
		assert.Equal(t, resource, got["aud"])
		assert.Equal(t, true, got["refreshed"])
	})
}

// signIn signs the user in at authURL and consents, as a browser would, and returns the URL of
// the redirect to the client (the callback).
func signIn(t *testing.T, srv server, authURL string) string {
	t.Helper()
	b := harness.NewBrowser(t, nil, srv.URL())
	p := b.Get(authURL)
	p = b.Login(p, username, password)
	if p.IsConsent() {
		p = b.Decide(p, "allow")
	}
	cb := p.Callback(t)
	require.Empty(t, cb.Error, "authorization error: %s", cb.ErrorDescription)
	require.Equal(t, redirectURI, cb.URI)
	return p.Location.String()
}

func TestNodeReportsAFailedCheckAndExitsNonZero(t *testing.T) {
	// The Node side must fail when the server is wrong: here a client ID the server does not
	// know makes the token request fail, and Node says why without printing any secret.
	srv := env.servers[0]
	out, stderr, err := env.runNode(t, srv, "cc", map[string]string{
		"CLIENT_ID": "nobody", "CLIENT_SECRET": workerSecret, "INTROSPECTOR_ID": rsID, "INTROSPECTOR_SECRET": rsSecret,
	})
	var exit *exec.ExitError
	require.True(t, errors.As(err, &exit), "node exits non-zero: %v, stdout %s", err, out)
	assert.Contains(t, stderr, "invalid_client")
	assert.NotContains(t, stderr, workerSecret)
	assert.Empty(t, out)
}

func TestNodeFailsWhenTheAccessTokenIsForAnotherResource(t *testing.T) {
	// The checks of client.mjs can fail: told to expect another resource than the one it asked
	// for, par-finish finds the access token's aud wrong and exits non-zero.
	srv := env.servers[0]
	vars := map[string]string{
		"CLIENT_ID": appID, "REDIRECT_URI": redirectURI, "RESOURCE": resource,
		"STATE_FILE": filepath.Join(t.TempDir(), "state.json"),
	}
	started := env.run(t, srv, "par-start", vars)
	authURL, _ := started["authorizationUrl"].(string)
	vars["CALLBACK_URL"] = signIn(t, srv, authURL)
	vars["RESOURCE"] = "https://billing.example.test"
	out, stderr, err := env.runNode(t, srv, "par-finish", vars)
	var exit *exec.ExitError
	require.True(t, errors.As(err, &exit), "node exits non-zero: %v, stdout %s", err, out)
	assert.Contains(t, stderr, `"aud"`)
	assert.Empty(t, out)
}
