package registration_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	xoauth2 "golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
	"github.com/latchkey-dev/latchkey/controllers"
	"github.com/latchkey-dev/latchkey/controllers/registration"
	"github.com/latchkey-dev/latchkey/internal/harness/controlplane"
	"github.com/latchkey-dev/latchkey/server/keys"
	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/oauth2/handler"
	"github.com/latchkey-dev/latchkey/server/oauth2/register"
	"github.com/latchkey-dev/latchkey/server/oauth2/register/registrartest"
	"github.com/latchkey-dev/latchkey/server/registry"
)

const (
	systemNamespace = "latchkey-system"
	regNamespace    = "registered"
	initialToken    = "envtest-initial-token-0123456789"
	testTokenURL    = "https://latchkey.example/oauth2/token"
	waitFor         = 20 * time.Second
	tick            = 50 * time.Millisecond
)

// env is the control plane, a manager running controllers.Setup, and the Kubernetes registrar;
// set up once in TestMain.
type env struct {
	client    client.Client
	registry  *registry.Registry
	keyring   *keys.Keyring
	registrar *registration.Registrar
	mgr       ctrl.Manager
}

var suite *env

func TestMain(m *testing.M) {
	os.Exit(controlplane.Main(m, controlplane.Options{Scheme: []func(*runtime.Scheme) error{v1alpha1.AddToScheme}}, setup))
}

// setup creates the namespaces and the manager running controllers.Setup, with the registrar.
func setup(cp *controlplane.ControlPlane) ([]controlplane.Runnable, error) {
	for _, ns := range []string{systemNamespace, regNamespace} {
		if err := cp.Client().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			return nil, err
		}
	}
	mgr, err := ctrl.NewManager(cp.Config(), ctrl.Options{
		Scheme: cp.Scheme(), Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0",
	})
	if err != nil {
		return nil, err
	}
	suite = &env{client: cp.Client(), registry: registry.New(), keyring: keys.NewKeyring(), mgr: mgr}
	if err := controllers.Setup(mgr, controllers.Options{
		Registry: suite.registry, Keys: suite.keyring, Namespace: systemNamespace,
		Algorithms: []string{keys.RS256}, TokenURL: testTokenURL,
	}); err != nil {
		return nil, err
	}
	// As main.go wires it: writes with the manager's client, reads with its API reader.
	suite.registrar, err = registration.New(mgr.GetClient(), regNamespace,
		registration.WithReader(mgr.GetAPIReader()), registration.WithTokenURL(testTokenURL))
	if err != nil {
		return nil, err
	}
	return []controlplane.Runnable{mgr}, nil
}

// server serves the OAuth 2.0 handler with the Kubernetes registrar, once the keys are loaded.
func server(t *testing.T) *httptest.Server {
	t.Helper()
	require.Eventually(t, suite.keyring.Loaded, waitFor, tick, "signing keys loaded")
	var h http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	var err error
	h, err = handler.New(handler.Config{
		Issuer: srv.URL, Registry: suite.registry, Keys: suite.keyring, Registrar: suite.registrar,
		RegistrationInitialTokens: []register.InitialToken{{Hash: register.HashInitialToken(initialToken), Scopes: []string{register.AnyScope}}},
	})
	require.NoError(t, err)
	return srv
}

func createScope(t *testing.T, name string) {
	t.Helper()
	sc := &v1alpha1.Scope{
		ObjectMeta: metav1.ObjectMeta{Name: strings.ReplaceAll(name, ":", "-")},
		Spec:       v1alpha1.ScopeSpec{Name: name, Description: "test scope " + name},
	}
	require.NoError(t, suite.client.Create(t.Context(), sc))
	t.Cleanup(func() { _ = suite.client.Delete(context.Background(), sc) })
	require.Eventually(t, func() bool { _, ok := suite.registry.Snapshot().Scope(name); return ok }, waitFor, tick)
}

// call sends a JSON request with a bearer token and decodes the JSON answer.
func call(t *testing.T, srv *httptest.Server, method, path, bearer, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+bearer)
	res, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	var out map[string]any
	if len(raw) > 0 {
		require.NoError(t, json.Unmarshal(raw, &out), "body %q", raw)
	}
	return res.StatusCode, out
}

func str(m map[string]any, key string) string { s, _ := m[key].(string); return s }

func clientToken(ctx context.Context, srv *httptest.Server, id, secret string, scopes ...string) (*xoauth2.Token, error) {
	cc := clientcredentials.Config{ClientID: id, ClientSecret: secret, TokenURL: srv.URL + oauth2.TokenPath,
		Scopes: scopes, AuthStyle: xoauth2.AuthStyleInHeader}
	return cc.Token(context.WithValue(ctx, xoauth2.HTTPClient, srv.Client()))
}

func getClient(ctx context.Context, name string) (*v1alpha1.OAuthClient, error) {
	var oc v1alpha1.OAuthClient
	err := suite.client.Get(ctx, types.NamespacedName{Namespace: regNamespace, Name: name}, &oc)
	return &oc, err
}

// waitReady waits for the Ready condition of the current generation.
func waitReady(t *testing.T, name string) *v1alpha1.OAuthClient {
	t.Helper()
	var got *v1alpha1.OAuthClient
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		oc, err := getClient(t.Context(), name)
		if !assert.NoError(c, err) {
			return
		}
		cond := meta.FindStatusCondition(oc.Status.Conditions, v1alpha1.ConditionReady)
		if assert.NotNil(c, cond) {
			assert.Equal(c, metav1.ConditionTrue, cond.Status, cond.Message)
			assert.Equal(c, oc.Generation, cond.ObservedGeneration)
		}
		got = oc
	}, waitFor, tick)
	return got
}

func TestRegisteredClientIsAnOAuthClient(t *testing.T) {
	ctx := t.Context()
	srv := server(t)
	createScope(t, "read:things")
	createScope(t, "write:things")

	status, got := call(t, srv, http.MethodPost, oauth2.RegistrationPath, initialToken, `{
		"client_name": "Things importer", "grant_types": ["client_credentials"], "scope": "read:things write:things"}`)
	require.Equal(t, http.StatusCreated, status, got)
	id, secret, regToken := str(got, "client_id"), str(got, "client_secret"), str(got, "registration_access_token")
	clientPath := oauth2.RegistrationPath + "/" + id
	assert.Equal(t, srv.URL+clientPath, got["registration_client_uri"])

	t.Run("an OAuthClient with the label exists in the namespace and becomes Ready", func(t *testing.T) {
		oc := waitReady(t, id)
		assert.Equal(t, "true", oc.Labels[registration.LabelRegistered])
		h := sha256.Sum256([]byte(regToken))
		assert.Equal(t, hex.EncodeToString(h[:]), oc.Annotations[registration.AnnotationTokenHash], "only the token's hash is stored")
		assert.Equal(t, id, oc.Spec.ClientID)
		assert.Equal(t, id, oc.Status.ClientID)
		assert.Equal(t, v1alpha1.ClientTypeConfidential, oc.Spec.Type)
		assert.Equal(t, []v1alpha1.GrantType{v1alpha1.GrantTypeClientCredentials}, oc.Spec.GrantTypes)
		assert.Equal(t, []string{"read:things", "write:things"}, oc.Spec.Scopes)
		assert.Equal(t, "Things importer", oc.Spec.DisplayName)
		assert.Equal(t, "initial-token", oc.Labels[registration.LabelRegistrant])
		assert.False(t, oc.Spec.Introspection, "registration never declares a resource server")
		assert.Equal(t, v1alpha1.SecretPolicyExternal, oc.Spec.SecretPolicy)
		require.NotNil(t, oc.Spec.SecretRef)
		assert.Equal(t, id+"-oauth-client", oc.Status.SecretName)
		assert.Equal(t, oc.CreationTimestamp.Unix(), int64(got["client_id_issued_at"].(float64)))

		var s corev1.Secret
		require.NoError(t, suite.client.Get(ctx, types.NamespacedName{Namespace: regNamespace, Name: oc.Spec.SecretRef.Name}, &s))
		assert.Equal(t, secret, string(s.Data["client-secret"]))
		assert.Equal(t, id, string(s.Data["client-id"]))
		assert.Equal(t, testTokenURL, string(s.Data["token-url"]))
		assert.True(t, metav1.IsControlledBy(&s, oc), "the Secret is owned by the OAuthClient")
		for _, v := range s.Data {
			assert.NotEqual(t, regToken, string(v), "the registration token is not stored")
		}
	})

	t.Run("the returned credentials get a token", func(t *testing.T) {
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			tok, err := clientToken(ctx, srv, id, secret, "read:things")
			if assert.NoError(c, err) {
				assert.Equal(c, "read:things", tok.Extra("scope"))
			}
		}, waitFor, tick)
	})

	t.Run("GET reads the registration from the resource", func(t *testing.T) {
		status, res := call(t, srv, http.MethodGet, clientPath, regToken, "")
		require.Equal(t, http.StatusOK, status, res)
		assert.Equal(t, "Things importer", res["client_name"])
		assert.Equal(t, "client_secret_basic", res["token_endpoint_auth_method"])
		assert.NotContains(t, res, "client_secret")
	})

	t.Run("PUT updates the spec and keeps what an administrator set", func(t *testing.T) {
		// The leader writes status meanwhile (Ready, Propagated): retry on a conflict.
		require.NoError(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
			oc, err := getClient(ctx, id)
			if err != nil {
				return err
			}
			oc.Spec.Lifetimes = &v1alpha1.TokenLifetimes{AccessToken: ptr.To(intstr.FromInt(600))}
			oc.Spec.DefaultScopes = []string{"read:things"}
			return suite.client.Update(ctx, oc)
		}))

		status, res := call(t, srv, http.MethodPut, clientPath, regToken, `{"client_id":"`+id+`",
			"grant_types":["client_credentials"],"scope":"write:things","client_name":"Things exporter"}`)
		require.Equal(t, http.StatusOK, status, res)
		assert.Equal(t, "write:things", res["scope"])
		oc := waitReady(t, id)
		assert.Equal(t, "Things exporter", oc.Spec.DisplayName)
		assert.Equal(t, []string{"write:things"}, oc.Spec.Scopes)
		assert.Empty(t, oc.Spec.DefaultScopes, "a default scope no longer allowed is dropped")
		require.NotNil(t, oc.Spec.Lifetimes)
		assert.Equal(t, ptr.To(intstr.FromInt(600)), oc.Spec.Lifetimes.AccessToken)
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			tok, err := clientToken(ctx, srv, id, secret, "write:things")
			if assert.NoError(c, err) {
				assert.InDelta(c, 600, tok.Extra("expires_in"), 0)
			}
		}, waitFor, tick)
	})

	t.Run("a wrong registration token is 401", func(t *testing.T) {
		for _, method := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
			status, res := call(t, srv, method, clientPath, secret, `{"client_id":"`+id+`","grant_types":["client_credentials"]}`)
			assert.Equal(t, http.StatusUnauthorized, status, method)
			assert.Equal(t, "invalid_token", res["error"], method)
		}
	})

	t.Run("DELETE removes the resource and its Secret, and the token then fails", func(t *testing.T) {
		status, res := call(t, srv, http.MethodDelete, clientPath, regToken, "")
		require.Equal(t, http.StatusNoContent, status, res)
		_, err := getClient(ctx, id)
		assert.True(t, apierrors.IsNotFound(err), "OAuthClient deleted: %v", err)
		var s corev1.Secret
		err = suite.client.Get(ctx, types.NamespacedName{Namespace: regNamespace, Name: id + "-oauth-client"}, &s)
		assert.True(t, apierrors.IsNotFound(err), "Secret deleted: %v", err)
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			_, err := clientToken(ctx, srv, id, secret)
			var re *xoauth2.RetrieveError
			if assert.ErrorAs(c, err, &re) {
				assert.Equal(c, "invalid_client", re.ErrorCode)
			}
		}, waitFor, tick)
		status, res = call(t, srv, http.MethodGet, clientPath, regToken, "")
		assert.Equal(t, http.StatusUnauthorized, status, res)
	})
}

func TestRegisteredPublicClient(t *testing.T) {
	ctx := t.Context()
	srv := server(t)
	status, got := call(t, srv, http.MethodPost, oauth2.RegistrationPath, initialToken, `{
		"token_endpoint_auth_method":"none","grant_types":["authorization_code","refresh_token"],
		"redirect_uris":["http://127.0.0.1:8765/callback","com.example.app:/cb"],"scope":"openid",
		"post_logout_redirect_uris":["com.example.app:/bye"]}`)
	require.Equal(t, http.StatusCreated, status, got)
	id := str(got, "client_id")
	assert.NotContains(t, got, "client_secret")
	assert.Equal(t, []any{"com.example.app:/bye"}, got["post_logout_redirect_uris"])

	oc := waitReady(t, id)
	assert.Equal(t, v1alpha1.ClientTypePublic, oc.Spec.Type)
	assert.Nil(t, oc.Spec.SecretRef)
	assert.Empty(t, oc.Status.SecretName)
	assert.Equal(t, []string{"http://127.0.0.1:8765/callback", "com.example.app:/cb"}, oc.Spec.RedirectURIs)
	assert.Equal(t, []string{"com.example.app:/bye"}, oc.Spec.PostLogoutRedirectURIs)
	var secrets corev1.SecretList
	require.NoError(t, suite.client.List(ctx, &secrets, client.InNamespace(regNamespace), client.MatchingLabels{"oauth.latchkey.dev/client": id}))
	assert.Empty(t, secrets.Items, "a public client has no Secret")
	require.Eventually(t, func() bool {
		c, ok := suite.registry.Snapshot().Client(id)
		return ok && c.Type == registry.Public
	}, waitFor, tick)

	status, res := call(t, srv, http.MethodPut, oauth2.RegistrationPath+"/"+id, str(got, "registration_access_token"),
		`{"client_id":"`+id+`","grant_types":["client_credentials"]}`)
	assert.Equal(t, http.StatusBadRequest, status, res)
	assert.Equal(t, "invalid_client_metadata", res["error"])
}

func TestARegisteredBackchannelLogoutURIReachesTheOAuthClientAndTheRegistry(t *testing.T) {
	srv := server(t)
	status, got := call(t, srv, http.MethodPost, oauth2.RegistrationPath, initialToken, `{
		"grant_types":["client_credentials"],"backchannel_logout_uri":"https://rp.example/backchannel",
		"backchannel_logout_session_required":true}`)
	require.Equal(t, http.StatusCreated, status, got)
	assert.Equal(t, "https://rp.example/backchannel", got["backchannel_logout_uri"])
	assert.Equal(t, true, got["backchannel_logout_session_required"])
	id := str(got, "client_id")
	oc := waitReady(t, id)
	assert.Equal(t, "https://rp.example/backchannel", oc.Spec.BackchannelLogoutURI)
	assert.True(t, oc.Spec.BackchannelLogoutSessionRequired)
	require.Eventually(t, func() bool {
		c, ok := suite.registry.Snapshot().Client(id)
		return ok && c.BackchannelLogoutURI == "https://rp.example/backchannel" && c.BackchannelLogoutSessionRequired
	}, waitFor, tick)

	status, read := call(t, srv, http.MethodGet, oauth2.RegistrationPath+"/"+id, str(got, "registration_access_token"), "")
	require.Equal(t, http.StatusOK, status, read)
	assert.Equal(t, "https://rp.example/backchannel", read["backchannel_logout_uri"], "RFC 7592 read returns it")
}

func TestOnlyRegisteredClientsCanBeManaged(t *testing.T) {
	ctx := t.Context()
	srv := server(t)
	manual := &v1alpha1.OAuthClient{
		ObjectMeta: metav1.ObjectMeta{Namespace: regNamespace, Name: "dyn-manual0000",
			Annotations: map[string]string{registration.AnnotationTokenHash: hex.EncodeToString(make([]byte, 32))}},
		Spec: v1alpha1.OAuthClientSpec{ClientID: "dyn-manual0000", GrantTypes: []v1alpha1.GrantType{v1alpha1.GrantTypeClientCredentials}},
	}
	require.NoError(t, suite.client.Create(ctx, manual))
	t.Cleanup(func() { _ = suite.client.Delete(context.Background(), manual) })
	for _, p := range []string{"dyn-manual0000", "Not_A_Name", "dyn-missing000"} {
		status, res := call(t, srv, http.MethodDelete, oauth2.RegistrationPath+"/"+p, initialToken, "")
		assert.Equal(t, http.StatusUnauthorized, status, "%s: %v", p, res)
	}
	_, err := getClient(ctx, manual.Name)
	assert.NoError(t, err, "a client without the label is never deleted")
}

func TestRegistrarMapsAPIErrors(t *testing.T) {
	ctx := t.Context()
	t.Run("a refusal by the API server is invalid_client_metadata", func(t *testing.T) {
		// The handler would refuse this redirect URI first; the CRD's CEL rule is the last check.
		_, err := suite.registrar.Register(ctx, register.ClientMetadata{
			TokenEndpointAuthMethod: "client_secret_basic", GrantTypes: []string{"authorization_code"},
			RedirectURIs: []string{"http://app.example/cb"},
		}, register.RegistrantInitialToken)
		assert.ErrorIs(t, err, register.ErrInvalidClientMetadata)
		var list v1alpha1.OAuthClientList
		require.NoError(t, suite.client.List(ctx, &list, client.InNamespace(regNamespace)))
		for _, oc := range list.Items {
			assert.NotContains(t, oc.Spec.RedirectURIs, "http://app.example/cb")
		}
	})
	t.Run("MaxClients bounds the anonymous registrations of the namespace", func(t *testing.T) {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "limited-"}}
		require.NoError(t, suite.client.Create(ctx, ns))
		r, err := registration.New(suite.mgr.GetClient(), ns.Name, registration.WithReader(suite.mgr.GetAPIReader()), registration.WithMaxClients(1))
		require.NoError(t, err)
		m := register.ClientMetadata{TokenEndpointAuthMethod: "none", GrantTypes: []string{"refresh_token"}}
		rc, err := r.Register(ctx, m, register.RegistrantAnonymous)
		require.NoError(t, err)
		assert.Empty(t, rc.ClientSecret)
		_, err = r.Register(ctx, m, register.RegistrantAnonymous)
		assert.ErrorIs(t, err, register.ErrRegistrationLimit)
		require.NoError(t, r.Delete(ctx, rc.ClientID))
		_, err = r.Register(ctx, m, register.RegistrantAnonymous)
		assert.NoError(t, err, "a deleted client frees its place")
	})
	t.Run("anonymous registrations at their bound never lock out initial-token holders", func(t *testing.T) {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "quotas-"}}
		require.NoError(t, suite.client.Create(ctx, ns))
		r, err := registration.New(suite.mgr.GetClient(), ns.Name, registration.WithReader(suite.mgr.GetAPIReader()),
			registration.WithMaxClients(2), registration.WithMaxInitialTokenClients(1))
		require.NoError(t, err)
		// A registered OAuthClient from before the registrant label counts as anonymous.
		legacy := &v1alpha1.OAuthClient{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "dyn-legacy0000", Labels: map[string]string{registration.LabelRegistered: "true"}},
			Spec:       v1alpha1.OAuthClientSpec{Type: v1alpha1.ClientTypePublic, GrantTypes: []v1alpha1.GrantType{v1alpha1.GrantTypeRefreshToken}},
		}
		require.NoError(t, suite.client.Create(ctx, legacy))
		ids := registrartest.SeparateQuotas(t, r, 1, 1)

		for id, want := range map[string]string{ids[register.RegistrantAnonymous][0]: "anonymous", ids[register.RegistrantInitialToken][0]: "initial-token"} {
			var oc v1alpha1.OAuthClient
			require.NoError(t, suite.client.Get(ctx, types.NamespacedName{Namespace: ns.Name, Name: id}, &oc))
			assert.Equal(t, want, oc.Labels[registration.LabelRegistrant], id)
			assert.False(t, oc.Spec.Introspection, "registration never declares a resource server")
		}
	})
	t.Run("New refuses an invalid namespace", func(t *testing.T) {
		_, err := registration.New(suite.client, "Not A Namespace")
		assert.Error(t, err)
	})
}

func TestAnAPIServerThatCannotAnswerIsTemporarilyUnavailable(t *testing.T) {
	ctx := t.Context()
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	tests := []struct {
		name        string
		err         error
		unavailable bool
	}{
		{"throttling (429) is temporarily unavailable", apierrors.NewTooManyRequests("slow down", 1), true},
		{"an unavailable API server (503) is temporarily unavailable", apierrors.NewServiceUnavailable("down"), true},
		{"a timeout (504) is temporarily unavailable", apierrors.NewTimeoutError("too slow", 1), true},
		{"a server timeout is temporarily unavailable", apierrors.NewServerTimeout(v1alpha1.GroupVersion.WithResource("oauthclients").GroupResource(), "create", 1), true},
		{"a refused connection is temporarily unavailable", refused, true},
		{"an internal error of the API server is a server error", apierrors.NewInternalError(errors.New("etcd broke")), false},
		{"a forbidden call (missing RBAC) is a server error", apierrors.NewForbidden(v1alpha1.GroupVersion.WithResource("oauthclients").GroupResource(), "x", errors.New("no")), false},
	}
	apiClient, err := client.NewWithWatch(suite.mgr.GetConfig(), client.Options{Scheme: suite.mgr.GetScheme()})
	require.NoError(t, err)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			failing := interceptor.NewClient(apiClient, interceptor.Funcs{
				Create: func(context.Context, client.WithWatch, client.Object, ...client.CreateOption) error { return tt.err },
				Get: func(context.Context, client.WithWatch, client.ObjectKey, client.Object, ...client.GetOption) error {
					return tt.err
				},
			})
			r, err := registration.New(failing, regNamespace)
			require.NoError(t, err)
			_, regErr := r.Register(ctx, register.ClientMetadata{TokenEndpointAuthMethod: oauth2.AuthMethodNone,
				GrantTypes: []string{oauth2.GrantRefreshToken}}, register.RegistrantAnonymous)
			getErr := r.CheckRegistrationToken(ctx, "dyn-aaaaaaaaaa", "token")
			for _, err := range []error{regErr, getErr} {
				require.Error(t, err)
				assert.Equal(t, tt.unavailable, errors.Is(err, register.ErrRegistrarUnavailable), "%v", err)
				assert.ErrorIs(t, err, tt.err, "the cause is kept for the log")
			}
		})
	}
	t.Run("the handler answers a throttled registration 503 temporarily_unavailable", func(t *testing.T) {
		failing := interceptor.NewClient(apiClient, interceptor.Funcs{
			Create: func(context.Context, client.WithWatch, client.Object, ...client.CreateOption) error {
				return apierrors.NewTooManyRequests("slow down", 1)
			},
		})
		r, err := registration.New(failing, regNamespace)
		require.NoError(t, err)
		require.Eventually(t, suite.keyring.Loaded, waitFor, tick, "signing keys loaded")
		h, err := handler.New(handler.Config{
			Issuer: "https://latchkey.example", Registry: suite.registry, Keys: suite.keyring, Registrar: r,
			RegistrationInitialTokens: []register.InitialToken{{Hash: register.HashInitialToken(initialToken)}},
		})
		require.NoError(t, err)
		req := httptest.NewRequestWithContext(ctx, http.MethodPost, oauth2.RegistrationPath, strings.NewReader(`{"grant_types":["client_credentials"]}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+initialToken)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		assert.Equal(t, http.StatusServiceUnavailable, rec.Code, rec.Body.String())
		var body map[string]any
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
		assert.Equal(t, "temporarily_unavailable", body["error"])
	})
}
