package controllers

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
	"github.com/latchkey-dev/latchkey/internal/harness/oidcissuer"
	"github.com/latchkey-dev/latchkey/server/keys"
	"github.com/latchkey-dev/latchkey/server/registry"
)

// gatedRegistry holds every write until the gate is closed.
type gatedRegistry struct {
	*registry.Registry
	gate <-chan struct{}
}

func (g *gatedRegistry) PutClient(c registry.Client)           { <-g.gate; g.Registry.PutClient(c) }
func (g *gatedRegistry) DeleteClient(source string)            { <-g.gate; g.Registry.DeleteClient(source) }
func (g *gatedRegistry) PutScope(src string, s registry.Scope) { <-g.gate; g.Registry.PutScope(src, s) }
func (g *gatedRegistry) DeleteScope(source string)             { <-g.gate; g.Registry.DeleteScope(source) }
func (g *gatedRegistry) PutUser(u registry.User)               { <-g.gate; g.Registry.PutUser(u) }
func (g *gatedRegistry) DeleteUser(source string)              { <-g.gate; g.Registry.DeleteUser(source) }
func (g *gatedRegistry) PutWorkloadIssuer(w registry.WorkloadIssuer) {
	<-g.gate
	g.Registry.PutWorkloadIssuer(w)
}
func (g *gatedRegistry) DeleteWorkloadIssuer(name string) {
	<-g.gate
	g.Registry.DeleteWorkloadIssuer(name)
}

func TestReadinessWaitsUntilTheRegistryIsFilled(t *testing.T) {
	ctx := t.Context()
	ns := newNamespace(t)
	// What exists before the replica starts: a client, a client and a User that cannot be served
	// (they count once refused), a Scope.
	served := &v1alpha1.OAuthClient{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "ready"},
		Spec: v1alpha1.OAuthClientSpec{Type: v1alpha1.ClientTypePublic,
			GrantTypes:   []v1alpha1.GrantType{v1alpha1.GrantTypeAuthorizationCode},
			RedirectURIs: []string{"https://app.example/cb"}},
	}
	invalid := confidentialClient(ns, "invalid", "a:read")
	invalid.Spec.DefaultScopes = []string{"b:write"} // the CRD accepts it, convert does not
	scope := &v1alpha1.Scope{ObjectMeta: metav1.ObjectMeta{Name: "ready-" + ns}, Spec: v1alpha1.ScopeSpec{Name: "ready:" + ns}}
	plaintext := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "pw"},
		Data:       map[string][]byte{"hash": []byte("not a hash")},
	}
	user := &v1alpha1.User{
		ObjectMeta: metav1.ObjectMeta{Name: "ready-" + ns},
		Spec: v1alpha1.UserSpec{Username: "ready-" + ns,
			PasswordSecretRef: &v1alpha1.SecretKeyRef{Namespace: ns, Name: "pw"}},
	}
	issuerKeys := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "issuer-keys"},
		Data:       map[string][]byte{"jwks.json": oidcissuer.JWKS(t, oidcissuer.NewKey(t, "k1"))},
	}
	issuer := &v1alpha1.WorkloadIssuer{
		ObjectMeta: metav1.ObjectMeta{Name: "ready-" + ns},
		Spec: v1alpha1.WorkloadIssuerSpec{Issuer: "https://ci.example", Audiences: []string{"latchkey"}, AllowedNamespaces: []string{ns},
			JWKSSecretRef: &v1alpha1.SecretKeyRef{Namespace: ns, Name: "issuer-keys"}},
	}
	for _, o := range []client.Object{served, invalid, scope, plaintext, user, issuerKeys, issuer} {
		require.NoError(t, suite.client.Create(ctx, o))
	}
	t.Cleanup(func() {
		_ = suite.client.Delete(context.Background(), scope)
		_ = suite.client.Delete(context.Background(), user)
		_ = suite.client.Delete(context.Background(), issuer)
	})

	gate := make(chan struct{})
	var open sync.Once
	reg := &gatedRegistry{Registry: registry.New(), gate: gate}
	ready := NewReadiness()
	// The suite's election: this replica stays a follower and runs the every-replica controllers.
	mgr, err := newManager(suite.cfg, suite.scheme, leaderElectionID)
	require.NoError(t, err)
	synced := &syncRecorder{}
	require.NoError(t, Setup(mgr, Options{Registry: reg, Keys: keys.NewKeyring(), Namespace: systemNamespace, Readiness: ready, SyncMetrics: synced}))
	require.Error(t, ready.Check(nil), "not ready before the manager starts")

	mctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mctx) }()
	t.Cleanup(func() {
		open.Do(func() { close(gate) })
		cancel()
		assert.NoError(t, <-done)
	})
	require.True(t, mgr.GetCache().WaitForCacheSync(ctx))

	// The informers are synced but the registry reconcilers are held: not ready.
	assert.Never(t, func() bool { return ready.Check(nil) == nil }, time.Second, tick,
		"ready before the registry holds what exists")
	assert.ErrorContains(t, ready.Check(nil), "not processed yet")

	open.Do(func() { close(gate) })
	require.Eventually(t, func() bool { return ready.Check(nil) == nil }, waitFor, tick)
	snap := reg.Snapshot()
	_, ok := snap.Client("ready." + ns)
	assert.True(t, ok, "the client that existed at start is served once ready")
	_, ok = snap.Scope("ready:" + ns)
	assert.True(t, ok, "the scope that existed at start is served once ready")
	_, ok = snap.Client("invalid." + ns)
	assert.False(t, ok)
	_, ok = snap.User("ready-" + ns)
	assert.False(t, ok, "a User with a plaintext password is refused, and counted")
	_, ok = snap.WorkloadIssuer("ready-" + ns)
	assert.True(t, ok, "the workload issuer that existed at start is served once ready")
	for _, kind := range []string{kindOAuthClient, kindScope, kindUser, kindWorkloadIssuer} {
		assert.True(t, synced.seen(kind), "the sync metrics heard of %s", kind)
	}
}

// syncRecorder is a SyncMetrics that remembers the kinds it heard of.
type syncRecorder struct {
	mu    sync.Mutex
	kinds map[string]int
}

func (s *syncRecorder) RegistrySynced(kind string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.kinds == nil {
		s.kinds = map[string]int{}
	}
	s.kinds[kind]++
}

func (s *syncRecorder) seen(kind string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.kinds[kind] > 0
}
