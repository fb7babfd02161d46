package controllers

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
	"github.com/latchkey-dev/latchkey/internal/harness/controlplane"
	"github.com/latchkey-dev/latchkey/server/keys"
	latchkeyoauth2 "github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/oauth2/handler"
	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/store/memory"
)

const (
	systemNamespace  = "latchkey-system"
	leaderElectionID = "latchkey-controllers-test"
	testIssuer       = "https://latchkey.example"
	testTokenURL     = testIssuer + "/oauth2/token"
	waitFor          = 20 * time.Second
	tick             = 50 * time.Millisecond
	// credentialStatusInterval is how often the leader writes the last-used times in the tests.
	credentialStatusInterval = 200 * time.Millisecond
)

// replica is one running manager with its own registry and keyring, like one server pod.
type replica struct {
	registry *registry.Registry
	keyring  *keys.Keyring
}

// suite is the envtest control plane and the two replicas every test shares (set up once in
// TestMain; a package variable because TestMain cannot hand values to tests otherwise).
type testSuite struct {
	cfg      *rest.Config
	scheme   *runtime.Scheme
	client   client.Client
	replicas []*replica
	// uses is the leased store the replicas' leaders take credential uses from (the tests'
	// token servers note them there).
	uses *memory.Store
}

var suite *testSuite

func TestMain(m *testing.M) {
	os.Exit(controlplane.Main(m, controlplane.Options{Scheme: []func(*runtime.Scheme) error{v1alpha1.AddToScheme}}, setupSuite))
}

// setupSuite creates the system namespace and the two replicas, started together, sharing one
// leader election: one writes, both serve.
func setupSuite(cp *controlplane.ControlPlane) ([]controlplane.Runnable, error) {
	cfg, s, c := cp.Config(), cp.Scheme(), cp.Client()
	if err := c.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: systemNamespace}}); err != nil {
		return nil, err
	}
	suite = &testSuite{cfg: cfg, scheme: s, client: c, uses: memory.New()}
	var managers []controlplane.Runnable
	for range 2 {
		r, mgr, err := newReplica(cfg, s, leaderElectionID, Options{Namespace: systemNamespace, TokenURL: testTokenURL,
			CredentialUses: suite.uses, CredentialStatusInterval: credentialStatusInterval,
			ResourceMetadata: handler.ResourceMetadata(handler.Config{Issuer: testIssuer})})
		if err != nil {
			return nil, err
		}
		suite.replicas = append(suite.replicas, r)
		managers = append(managers, mgr)
	}
	return managers, nil
}

// newReplica builds a manager with leader election and Setup applied; opts gets a new registry
// and keyring.
func newReplica(cfg *rest.Config, s *runtime.Scheme, electionID string, opts Options) (*replica, ctrl.Manager, error) {
	mgr, err := newManager(cfg, s, electionID)
	if err != nil {
		return nil, nil, err
	}
	r := &replica{registry: registry.New(), keyring: keys.NewKeyring()}
	opts.Registry, opts.Keys = r.registry, r.keyring
	if err := Setup(mgr, opts); err != nil {
		return nil, nil, err
	}
	return r, mgr, nil
}

// newManager builds a manager with leader election, as main.go does (Setup not applied).
func newManager(cfg *rest.Config, s *runtime.Scheme, electionID string) (ctrl.Manager, error) {
	return ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                        s,
		Metrics:                       metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress:        "0",
		LeaderElection:                true,
		LeaderElectionID:              electionID,
		LeaderElectionNamespace:       systemNamespace,
		LeaderElectionReleaseOnCancel: true,
		// Fresh etcd: the first replica acquires the Lease at once. Renewal is generous so a
		// loaded 2-core machine does not lose it (a lost lease stops the manager).
		LeaseDuration: ptr.To(15 * time.Second),
		RenewDeadline: ptr.To(10 * time.Second),
		RetryPeriod:   ptr.To(500 * time.Millisecond),
		// Several managers run in one process; controller names repeat.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
}

// newNamespace creates a namespace for one test.
func newNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "test-"}}
	require.NoError(t, suite.client.Create(t.Context(), ns))
	return ns.Name
}

func confidentialClient(ns, name string, scopes ...string) *v1alpha1.OAuthClient {
	return &v1alpha1.OAuthClient{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.OAuthClientSpec{
			GrantTypes: []v1alpha1.GrantType{v1alpha1.GrantTypeClientCredentials},
			Scopes:     scopes,
		},
	}
}

func createScope(t *testing.T, name string) {
	t.Helper()
	sc := &v1alpha1.Scope{
		ObjectMeta: metav1.ObjectMeta{Name: strings.NewReplacer(":", "-", "_", "-").Replace(name)},
		Spec:       v1alpha1.ScopeSpec{Name: name, Description: "test scope " + name},
	}
	require.NoError(t, suite.client.Create(t.Context(), sc))
	t.Cleanup(func() { _ = suite.client.Delete(context.Background(), sc) })
}

// readyCondition returns the OAuthClient's current Ready condition (nil if none) and the object.
func getClient(t assert.TestingT, key types.NamespacedName) (*v1alpha1.OAuthClient, *metav1.Condition) {
	var oc v1alpha1.OAuthClient
	if !assert.NoError(t, suite.client.Get(context.Background(), key, &oc)) {
		return nil, nil
	}
	return &oc, meta.FindStatusCondition(oc.Status.Conditions, v1alpha1.ConditionReady)
}

// updateClient applies change to the stored OAuthClient and updates it, again on a conflict
// (the controllers write its status meanwhile).
func updateClient(t *testing.T, key types.NamespacedName, change func(*v1alpha1.OAuthClient)) {
	t.Helper()
	require.NoError(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var oc v1alpha1.OAuthClient
		if err := suite.client.Get(t.Context(), key, &oc); err != nil {
			return err
		}
		change(&oc)
		return suite.client.Update(t.Context(), &oc)
	}))
}

// waitReady waits for the OAuthClient's Ready condition with the reason and returns the object.
func waitReady(t *testing.T, key types.NamespacedName, status metav1.ConditionStatus, reason string) *v1alpha1.OAuthClient {
	t.Helper()
	var got *v1alpha1.OAuthClient
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		oc, cond := getClient(c, key)
		if !assert.NotNil(c, cond, "Ready condition") {
			return
		}
		assert.Equal(c, status, cond.Status)
		assert.Equal(c, reason, cond.Reason, cond.Message)
		assert.Equal(c, oc.Generation, cond.ObservedGeneration)
		assert.Equal(c, oc.Generation, oc.Status.ObservedGeneration)
		got = oc
	}, waitFor, tick)
	return got
}

// waitServed waits until every replica serves the client ID from source and check passes on it.
func waitServed(t *testing.T, id, source string, check func(c *assert.CollectT, cl *registry.Client)) {
	t.Helper()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		for i, r := range suite.replicas {
			cl, ok := r.registry.Snapshot().Client(id)
			if !assert.True(c, ok, "replica %d serves %s", i, id) {
				continue
			}
			assert.Equal(c, source, cl.Source, "replica %d", i)
			if check != nil {
				check(c, cl)
			}
		}
	}, waitFor, tick)
}

func secretValue(t *testing.T, ns, name, key string) string {
	t.Helper()
	var s corev1.Secret
	require.NoError(t, suite.client.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: name}, &s))
	require.NotEmpty(t, s.Data[key])
	return string(s.Data[key])
}

// waitEvent waits for an events.k8s.io Event with the reason about the object (Events about
// cluster-scoped objects are in the default namespace).
func waitEvent(t *testing.T, ns, regarding, reason string) {
	t.Helper()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		var list eventsv1.EventList
		if !assert.NoError(c, suite.client.List(context.Background(), &list, client.InNamespace(ns))) {
			return
		}
		found := false
		for _, e := range list.Items {
			found = found || (e.Reason == reason && e.Regarding.Name == regarding)
		}
		assert.True(c, found, "Event %s about %s", reason, regarding)
	}, waitFor, tick)
}

// tokenServer serves the real OAuth 2.0 handler over the registry and keyring of one replica.
func tokenServer(t *testing.T, r *replica) *httptest.Server {
	t.Helper()
	var h http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { h.ServeHTTP(w, req) }))
	t.Cleanup(srv.Close)
	var err error
	h, err = handler.New(handler.Config{Issuer: srv.URL, Registry: r.registry, Keys: r.keyring})
	require.NoError(t, err)
	return srv
}

// requestToken asks srv for a client_credentials token with HTTP Basic client authentication.
func requestToken(ctx context.Context, srv *httptest.Server, id, secret string, scopes ...string) (*oauth2.Token, error) {
	cc := clientcredentials.Config{
		ClientID: id, ClientSecret: secret, TokenURL: srv.URL + latchkeyoauth2.TokenPath,
		Scopes: scopes, AuthStyle: oauth2.AuthStyleInHeader,
	}
	return cc.Token(context.WithValue(ctx, oauth2.HTTPClient, srv.Client()))
}

// assertOAuthError asserts err is an RFC 6749 error response with the code.
func assertOAuthError(t *testing.T, err error, code string) {
	t.Helper()
	var re *oauth2.RetrieveError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, code, re.ErrorCode)
}
