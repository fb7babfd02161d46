package manifests

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"
	corev1 "k8s.io/api/core/v1"

	"github.com/latchkey-dev/latchkey/server/registry"
)

const clientYAML = `apiVersion: oauth.latchkey.dev/v1alpha1
kind: OAuthClient
metadata: {name: billing}
spec:
  clientID: billing-service
  grantTypes: [client_credentials]
  scopes: ["read:projects"]
  secretPolicy: External
  secretRef: {name: billing-oauth, key: client-secret}
---
apiVersion: oauth.latchkey.dev/v1alpha1
kind: Scope
metadata: {name: read-projects}
spec: {name: "read:projects", description: "List and view projects", default: true}
`

func secretYAML(secret string, demo bool) string {
	ann := ""
	if demo {
		ann = "\n  annotations: {" + DemoCredentialsAnnotation + `: "true"}`
	}
	return `apiVersion: v1
kind: Secret
metadata:
  name: billing-oauth` + ann + `
stringData: {client-secret: ` + secret + `}
`
}

func write(t *testing.T, dir, name, content string) {
	t.Helper()
	require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600))
}

func load(t *testing.T, dir string) (*Loader, *registry.Registry) {
	t.Helper()
	l, reg, _ := loadWarned(t, dir)
	return l, reg
}

// loadWarned loads dir with a Warner that records what the loader warns about.
func loadWarned(t *testing.T, dir string) (*Loader, *registry.Registry, *warnings) {
	t.Helper()
	reg := registry.New()
	w := &warnings{}
	l, err := New(dir, reg, w)
	require.NoError(t, err)
	require.NoError(t, l.Load(t.Context()))
	return l, reg, w
}

// warnings records Warnw calls, as the zap logger main.go wires in would print them.
type warnings struct {
	mu    sync.Mutex
	lines []string
}

func (w *warnings) Warnw(msg string, keysAndValues ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	line := msg
	for i := 0; i+1 < len(keysAndValues); i += 2 {
		line += fmt.Sprintf(" %v=%v", keysAndValues[i], keysAndValues[i+1])
	}
	w.lines = append(w.lines, line)
}

// reset forgets what was recorded.
func (w *warnings) reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.lines = nil
}

// with returns the recorded lines that contain every one of parts.
func (w *warnings) with(parts ...string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, l := range w.lines {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(l, p)
		}
		if all {
			out = append(out, l)
		}
	}
	return out
}

func (w *warnings) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.lines, "\n")
}

func TestLoadConvertsEveryKind(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "client.yaml", clientYAML)
	write(t, dir, "secret.yaml", secretYAML("s3cret", true))
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	require.NoError(t, err)
	write(t, dir, "user.yaml", `apiVersion: oauth.latchkey.dev/v1alpha1
kind: User
metadata: {name: alice}
spec:
  username: alice
  email: alice@example.com
  passwordSecretRef: {namespace: default, name: alice-password, key: hash}
---
apiVersion: v1
kind: Secret
metadata: {name: alice-password, namespace: default}
stringData: {hash: '`+string(hash)+`'}
`)
	write(t, dir, "kustomization.yaml", "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [client.yaml]\n")
	write(t, dir, "notes.txt", "not a manifest")

	l, reg := load(t, dir)
	snap := reg.Snapshot()
	c, ok := snap.Client("billing-service")
	require.True(t, ok)
	assert.Equal(t, "default/billing", c.Source, "a namespaced object without a namespace is in default")
	assert.True(t, c.CheckSecret("s3cret"))
	sc, ok := snap.Scope("read:projects")
	require.True(t, ok)
	assert.True(t, sc.Default)
	u, ok := snap.User("alice")
	require.True(t, ok)
	assert.NoError(t, bcrypt.CompareHashAndPassword(u.PasswordHash, []byte("pw")))
	require.NotNil(t, l.Demo())
	assert.Equal(t, DemoClient{ClientID: "billing-service", ClientSecret: "s3cret"}, *l.Demo(),
		"the demo secret is read from stringData like the client's")
}

func TestReloadFollowsTheFolder(t *testing.T) {
	tests := []struct {
		name   string
		change func(t *testing.T, dir string)
		check  func(t *testing.T, snap *registry.Snapshot)
	}{
		{
			name:   "a rotated Secret replaces the old client secret",
			change: func(t *testing.T, dir string) { write(t, dir, "secret.yaml", secretYAML("rotated", false)) },
			check: func(t *testing.T, snap *registry.Snapshot) {
				c, ok := snap.Client("billing-service")
				require.True(t, ok)
				assert.True(t, c.CheckSecret("rotated"))
				assert.False(t, c.CheckSecret("s3cret"))
			},
		},
		{
			name:   "a removed file removes its clients and scopes",
			change: func(t *testing.T, dir string) { require.NoError(t, os.Remove(filepath.Join(dir, "client.yaml"))) },
			check: func(t *testing.T, snap *registry.Snapshot) {
				_, ok := snap.Client("billing-service")
				assert.False(t, ok)
				_, ok = snap.Scope("read:projects")
				assert.False(t, ok)
			},
		},
		{
			name:   "a removed Secret stops the client it belonged to authenticating (it keeps its client ID, as in a cluster)",
			change: func(t *testing.T, dir string) { require.NoError(t, os.Remove(filepath.Join(dir, "secret.yaml"))) },
			check: func(t *testing.T, snap *registry.Snapshot) {
				c, ok := snap.Client("billing-service")
				require.True(t, ok)
				assert.False(t, c.HasSecret)
				assert.False(t, c.CheckSecret("s3cret"))
			},
		},
		{
			name:   "a half-written file keeps what it held before",
			change: func(t *testing.T, dir string) { write(t, dir, "client.yaml", clientYAML[:120]+"\n  : [broken") },
			check: func(t *testing.T, snap *registry.Snapshot) {
				c, ok := snap.Client("billing-service")
				require.True(t, ok)
				assert.True(t, c.CheckSecret("s3cret"))
			},
		},
		{
			name: "a misspelt field is refused, keeping the last good contents",
			change: func(t *testing.T, dir string) {
				write(t, dir, "client.yaml", clientYAML+"---\napiVersion: oauth.latchkey.dev/v1alpha1\nkind: Scope\nmetadata: {name: y}\nspec: {name: y, descripton: typo}\n")
			},
			check: func(t *testing.T, snap *registry.Snapshot) {
				_, ok := snap.Client("billing-service")
				assert.True(t, ok)
				_, ok = snap.Scope("y")
				assert.False(t, ok, "strict decoding refuses unknown fields")
			},
		},
		{
			name: "a Generate client without a Secret in the folder is served without a secret (nothing is generated)",
			change: func(t *testing.T, dir string) {
				write(t, dir, "gen.yaml", "apiVersion: oauth.latchkey.dev/v1alpha1\nkind: OAuthClient\nmetadata: {name: gen}\nspec: {grantTypes: [client_credentials]}\n")
			},
			check: func(t *testing.T, snap *registry.Snapshot) {
				c, ok := snap.Client("gen.default")
				require.True(t, ok)
				assert.False(t, c.HasSecret)
				assert.False(t, c.CheckSecret(""))
				_, ok = snap.Client("billing-service")
				assert.True(t, ok)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, dir, "client.yaml", clientYAML)
			write(t, dir, "secret.yaml", secretYAML("s3cret", false))
			l, reg := load(t, dir)
			tt.change(t, dir)
			require.NoError(t, l.Load(t.Context()))
			tt.check(t, reg.Snapshot())
		})
	}
}

func TestWatchReloadsOnChange(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "client.yaml", clientYAML)
	write(t, dir, "secret.yaml", secretYAML("s3cret", false))
	l, reg := load(t, dir)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- l.Watch(ctx, 20*time.Millisecond) }()
	defer func() { cancel(); require.NoError(t, <-done) }()

	require.NoError(t, os.MkdirAll(filepath.Join(dir, "more"), 0o750))
	time.Sleep(100 * time.Millisecond) // let the watcher see the new folder
	write(t, filepath.Join(dir, "more"), "secret.yaml", secretYAML("rotated", false))
	require.NoError(t, os.Remove(filepath.Join(dir, "secret.yaml")))
	assert.Eventually(t, func() bool {
		c, ok := reg.Snapshot().Client("billing-service")
		return ok && c.CheckSecret("rotated")
	}, 5*time.Second, 20*time.Millisecond, "a Secret written to a new sub-folder is picked up")
}

func TestWatchReloadsWhileChangesKeepComing(t *testing.T) {
	const debounce = 200 * time.Millisecond // reload at most 2 s after the first change
	dir := t.TempDir()
	write(t, dir, "client.yaml", clientYAML)
	write(t, dir, "secret.yaml", secretYAML("s3cret", false))
	l, reg := load(t, dir)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- l.Watch(ctx, debounce) }()
	defer func() { cancel(); require.NoError(t, <-done) }()
	time.Sleep(100 * time.Millisecond) // let the watcher start

	// A tool rewrites a file every few milliseconds, never leaving a quiet debounce window.
	noiseCtx, stopNoise := context.WithTimeout(ctx, 8*time.Second)
	defer stopNoise()
	noise := make(chan struct{})
	go func() {
		defer close(noise)
		for i := 0; noiseCtx.Err() == nil; i++ {
			_ = os.WriteFile(filepath.Join(dir, "noise.yaml"), []byte("# "+time.Now().String()+"\n"), 0o600)
			time.Sleep(5 * time.Millisecond)
		}
	}()
	start := time.Now()
	write(t, dir, "secret.yaml", secretYAML("rotated", false))
	require.Eventually(t, func() bool {
		c, ok := reg.Snapshot().Client("billing-service")
		return ok && c.CheckSecret("rotated")
	}, 5*time.Second, 20*time.Millisecond, "reloaded within 10 debounce intervals although changes kept coming")
	assert.Less(t, time.Since(start), 5*time.Second)
	select {
	case <-noise:
		t.Fatal("the writes stopped before the reload; the test proved nothing")
	default:
	}
	stopNoise()
	<-noise
}

func FuzzParseFile(f *testing.F) {
	f.Add([]byte(clientYAML))
	f.Add([]byte(secretYAML("x", true)))
	f.Add([]byte("---\n---\n"))
	f.Add([]byte(`{"apiVersion":"v1","kind":"Secret","metadata":{"name":"a"},"data":{"k":"!!"}}`))
	reg := registry.New()
	l, err := New(f.TempDir(), reg, nil) // nil: warnings go to the (discarding) logr of the context
	require.NoError(f, err)
	f.Fuzz(func(t *testing.T, data []byte) {
		objs := &Objects{Secrets: map[string]*corev1.Secret{}}
		if err := l.parse(context.Background(), bytes.NewReader(data), objs); err != nil { // must not panic; errors are reported per file
			_ = atLine("f.yaml", data, err)
		}
		var b batch
		require.NoError(t, l.apply(context.Background(), objs, &b))
		b.publish(reg)
	})
}
