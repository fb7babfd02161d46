package seeds

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/latchkey-dev/latchkey/internal/harness"
)

// server is the latchkey process the examples run against, and the curl that runs them.
type server struct {
	base string
	curl string
}

var srv server //nolint:gochecknoglobals // one server per package, started in TestMain

const (
	clientID     = "seed-app"
	clientSecret = "seed-app-secret"
	username     = "seed-user"
	password     = "seed-password"
	// The hello.com document's Basic header S0VZOlNFQ1JFVA== is KEY:SECRET.
	keyID, keySecret = "KEY", "SECRET"
)

func fixtures(hash string) string {
	return `apiVersion: oauth.latchkey.dev/v1alpha1
kind: OAuthClient
metadata: {name: seed-app}
spec:
  clientID: ` + clientID + `
  grantTypes: [authorization_code, refresh_token, client_credentials, password]
  redirectURIs: ["https://myapp.com/callback", "https://yourapp.com/callback"]
  scopes: [openid, profile, email, read, write, "read:projects", "write:projects", "admin:read"]
  defaultScopes: [read]
  pkce: Optional
  consent: Remember
  secretPolicy: External
  secretRef: {name: seed-app, key: client-secret}
---
apiVersion: v1
kind: Secret
metadata: {name: seed-app}
stringData: {client-secret: ` + clientSecret + `}
---
apiVersion: oauth.latchkey.dev/v1alpha1
kind: OAuthClient
metadata: {name: seed-key}
spec:
  clientID: ` + keyID + `
  grantTypes: [client_credentials, password, refresh_token]
  scopes: [read]
  secretPolicy: External
  secretRef: {name: seed-key, key: client-secret}
---
apiVersion: v1
kind: Secret
metadata: {name: seed-key}
stringData: {client-secret: ` + keySecret + `}
---
apiVersion: oauth.latchkey.dev/v1alpha1
kind: User
metadata: {name: seed-user}
spec:
  username: ` + username + `
  email: seed-user@example.com
  emailVerified: true
  displayName: Seed User
  passwordSecretRef: {namespace: default, name: seed-user-password}
---
apiVersion: v1
kind: Secret
metadata: {name: seed-user-password}
stringData: {hash: '` + hash + `'}
---
` + scopes("openid", "profile", "email", "read", "write", "read:projects", "write:projects", "admin:read")
}

func scopes(names ...string) string {
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "apiVersion: oauth.latchkey.dev/v1alpha1\nkind: Scope\nmetadata: {name: %s}\nspec: {name: %q, description: %q}\n---\n",
			strings.ReplaceAll(n, ":", "-"), n, "Seed scope "+n)
	}
	return b.String()
}

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

func runMain(m *testing.M) int {
	fail := func(err error) int { fmt.Fprintln(os.Stderr, "seeds:", err); return 1 }
	curl, err := harness.Tool("curl", "curl")
	if err != nil {
		return fail(err)
	}
	tmp, err := os.MkdirTemp("", "latchkey-seeds-")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(tmp) //nolint:errcheck // temp
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		return fail(err)
	}
	dir := filepath.Join(tmp, "manifests")
	if err := os.Mkdir(dir, 0o750); err != nil {
		return fail(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "seeds.yaml"), []byte(fixtures(string(hash))), 0o600); err != nil {
		return fail(err)
	}
	bin, err := harness.BuildBinary(tmp)
	if err != nil {
		return fail(err)
	}
	latchkey, err := harness.StartServer(context.Background(), bin, filepath.Join(tmp, "latchkey.log"), 30*time.Second,
		func(harness.ServeAddrs) []string { return []string{"serve", "--manifests", dir} })
	if err != nil {
		return fail(err)
	}
	defer latchkey.Stop(10 * time.Second)
	srv = server{base: latchkey.URL(), curl: curl}
	code := m.Run()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "latchkey log:\n%s\n", latchkey.Log())
	}
	return code
}

// seed is one document and how its examples map onto the test server.
type seed struct {
	file string
	// hosts are the document's base URLs, replaced by the server's.
	hosts []string
}

func (s seed) text(t *testing.T) string {
	t.Helper()
	// The seed documents live in shared/, beside the repository's checkout (as in CI).
	dir := filepath.Join("..", "..", "..", "shared", "seeds")
	matches, err := filepath.Glob(filepath.Join(dir, s.file+"_*.txt"))
	require.NoError(t, err)
	require.Len(t, matches, 1, "seed document %s_*.txt in %s (shared/ must sit beside the checkout)", s.file, dir)
	b, err := os.ReadFile(matches[0])
	require.NoError(t, err)
	return string(b)
}

// skipURL names the example URLs outside Latchkey's surface: a resource server's API and the
// seeds' own registration shapes (Latchkey registers clients by RFC 7591 at /oauth2/register).
var skipURL = regexp.MustCompile(`/v1/(resource|projects|\{clients\|register\})|/apps/register`) //nolint:gochecknoglobals // a fixed rule

// example is one curl command of a document, as argv.
type example struct{ args []string }

func (e example) String() string { return strings.Join(e.args, " ") }

// curlCommands reads every curl command of a document: a command runs from "curl" to the end of
// its line, continued by a trailing backslash, by quotes that span lines, or (as the hello.com
// document writes them) by following lines that start with an option.
func curlCommands(text string) []example {
	var out []example
	lines := strings.Split(text, "\n")
	for i := 0; i < len(lines); i++ {
		if !strings.HasPrefix(strings.TrimSpace(lines[i]), "curl ") {
			continue
		}
		var cmd strings.Builder
		cmd.WriteString(strings.TrimSpace(lines[i]))
		for i+1 < len(lines) {
			next := strings.TrimSpace(lines[i+1])
			open := openQuote(cmd.String())
			if !open && !strings.HasSuffix(cmd.String(), `\`) && !strings.HasPrefix(next, "-") {
				break
			}
			cmd.WriteString("\n" + lines[i+1])
			i++
		}
		out = append(out, example{args: shellSplit(cmd.String())})
	}
	return out
}

// openQuote reports whether s ends inside a quoted string.
func openQuote(s string) bool {
	var q rune
	for _, r := range s {
		switch {
		case q == 0 && (r == '\'' || r == '"'):
			q = r
		case r == q:
			q = 0
		}
	}
	return q != 0
}

// shellSplit splits a command line as a POSIX shell would for these documents: quotes,
// backslash-newline continuations. A closing quote glued to following prose (the flattened
// AuthMaster document: `}'Save the app_id`) ends the command.
func shellSplit(s string) []string {
	var args []string
	var cur strings.Builder
	inArg := false
	runes := []rune(s)
	for i := 0; i < len(runes); i++ {
		r := runes[i]
		switch {
		case r == '\\' && i+1 < len(runes) && runes[i+1] == '\n':
			i++
		case r == '\'' || r == '"':
			j := i + 1
			for j < len(runes) && runes[j] != r {
				j++
			}
			cur.WriteString(string(runes[i+1 : min(j, len(runes))]))
			inArg, i = true, j
			if j+1 < len(runes) && runes[j+1] >= 'A' && runes[j+1] <= 'Z' {
				return append(args, cur.String())
			}
		case r == ' ' || r == '\t' || r == '\n':
			if inArg {
				args = append(args, cur.String())
				cur.Reset()
				inArg = false
			}
		default:
			cur.WriteRune(r)
			inArg = true
		}
	}
	if inArg {
		args = append(args, cur.String())
	}
	return args
}

// authorizeURLs reads the documents' authorization request URLs, written one parameter a line.
func authorizeURLs(text string) []string {
	var out []string
	lines := strings.Split(text, "\n")
	start := regexp.MustCompile(`^(GET )?(https://\S+/authorize)\?$`)
	param := regexp.MustCompile(`^[a-z_]+=.*$`)
	for i := 0; i < len(lines); i++ {
		m := start.FindStringSubmatch(strings.TrimSpace(lines[i]))
		if m == nil {
			continue
		}
		u := m[2] + "?"
		for i+1 < len(lines) && param.MatchString(strings.TrimSpace(lines[i+1])) {
			// A space in a value (scope=read:projects write:projects) is what a browser sends as %20.
			u += strings.ReplaceAll(strings.TrimSpace(lines[i+1]), " ", "%20")
			i++
		}
		out = append(out, strings.TrimSuffix(u, "&"))
	}
	return out
}

// values are the placeholders' values; they change as the examples run (codes, tokens).
type values map[string]string

func (s seed) rewrite(v values, arg string) string {
	for _, h := range s.hosts {
		arg = strings.ReplaceAll(arg, h, srv.base)
	}
	// Longer placeholders first: YOUR_REFRESH_TOKEN before REFRESH_TOKEN.
	keys := slices.SortedFunc(maps.Keys(v), func(a, b string) int { return len(b) - len(a) })
	for _, k := range keys {
		arg = strings.ReplaceAll(arg, k, v[k])
	}
	return arg
}

// gluedProse finds prose glued to a URL by the flattened documents ("openid-configurationThis").
var gluedProse = regexp.MustCompile(`^(https?://\S*?[a-z0-9/])[A-Z]`) //nolint:gochecknoglobals // a fixed pattern

// withValue are the curl options of the documents that take a value.
var withValue = map[string]bool{"-H": true, "-d": true, "-X": true, "-u": true, "--data-urlencode": true} //nolint:gochecknoglobals // a fixed set

// cleanArgs keeps options, their values and URLs, and drops prose that the flattened documents
// glued onto a command.
func cleanArgs(args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case withValue[a] && i+1 < len(args):
			out = append(out, a, args[i+1])
			i++
		case strings.HasPrefix(a, "-"):
			out = append(out, a)
		case strings.HasPrefix(a, "http"):
			if m := gluedProse.FindStringSubmatch(a); m != nil {
				a = m[1]
			}
			out = append(out, a)
		}
	}
	return out
}

// response is what curl printed: the status line and the JSON body.
type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

// run runs an example with curl, adding the client's credentials when it sends none.
func (s seed) run(t *testing.T, e example, v values) response {
	t.Helper()
	args := make([]string, 0, len(e.args)+6)
	hasCreds := false
	for _, a := range cleanArgs(e.args[1:]) {
		a = s.rewrite(v, a)
		hasCreds = hasCreds || strings.Contains(a, "client_secret") || strings.HasPrefix(a, "Authorization: Basic") ||
			strings.HasPrefix(a, "Authorization: Bearer")
		args = append(args, a)
	}
	if !hasCreds && !strings.Contains(strings.Join(args, " "), "/.well-known/") {
		args = append(args, "-u", clientID+":"+clientSecret)
	}
	args = append([]string{"-sS", "-i", "--max-time", "10"}, args...)
	out, err := exec.CommandContext(t.Context(), srv.curl, args...).CombinedOutput()
	require.NoError(t, err, "curl %s: %s", strings.Join(args, " "), out)
	resp := parseHTTP(t, out)
	t.Logf("curl %s -> %d", strings.Join(args, " "), resp.status)
	return resp
}

func parseHTTP(t *testing.T, out []byte) response {
	t.Helper()
	head, body, ok := bytes.Cut(out, []byte("\r\n\r\n"))
	require.True(t, ok, "no HTTP response: %s", out)
	lines := strings.Split(string(head), "\r\n")
	var r response
	_, err := fmt.Sscanf(lines[0], "HTTP/1.1 %d", &r.status)
	require.NoError(t, err, lines[0])
	r.header = http.Header{}
	for _, l := range lines[1:] {
		k, v, _ := strings.Cut(l, ": ")
		r.header.Add(k, v)
	}
	r.raw = string(body)
	if len(bytes.TrimSpace(body)) > 0 {
		require.NoError(t, json.Unmarshal(body, &r.body), "a JSON body, never HTML: %s", body)
	}
	return r
}

// tokenShape checks the documented token response members.
func tokenShape(t *testing.T, r response, refresh bool) {
	t.Helper()
	require.Equal(t, http.StatusOK, r.status, r.raw)
	assert.NotEmpty(t, r.body["access_token"])
	assert.Equal(t, "Bearer", r.body["token_type"])
	assert.InDelta(t, 3600, r.body["expires_in"], 0)
	assert.Equal(t, "no-store", r.header.Get("Cache-Control"))
	if refresh {
		assert.NotEmpty(t, r.body["refresh_token"])
	} else {
		assert.Nil(t, r.body["refresh_token"])
	}
}

// authorize opens an authorization URL with a browser-like client, signs in as the seed user,
// allows on the consent page and returns the redirect it lands on (never followed).
func authorize(t *testing.T, u string) *url.URL {
	t.Helper()
	b := harness.NewBrowser(t, nil, srv.base)
	p := b.Get(u)
	for range 4 {
		if p.Location != nil {
			require.Contains(t, []int{http.StatusSeeOther, http.StatusFound}, p.Status)
			return p.Location
		}
		require.Equal(t, http.StatusOK, p.Status, "%s", p.Body)
		if p.IsLogin() {
			p = b.Login(p, username, password)
		} else {
			p = b.Decide(p, "allow")
		}
	}
	t.Fatal("no redirect after login and consent")
	return nil
}

// pkceVerifier is the code verifier of the examples that use PKCE.
const pkceVerifier = "seed-verifier-0123456789-abcdefghijklmnopqrstuvwxyz"

func pkceChallenge() string {
	sum := sha256.Sum256([]byte(pkceVerifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func jsonDecode(resp *http.Response, v any) error { return json.NewDecoder(resp.Body).Decode(v) }
