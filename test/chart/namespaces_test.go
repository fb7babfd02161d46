package chart

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/latchkey-dev/latchkey/internal/harness"
)

// teamManifests are a confidential client with its Secret in namespace ns (client_id
// <ns>-service, secret <ns>-secret), and a User whose password Secret (alice-password's bcrypt
// hash, from config/samples) lives there.
func teamManifests(ns string) string {
	return `apiVersion: v1
kind: Secret
metadata: {name: service-secret, namespace: ` + ns + `}
stringData: {client-secret: ` + ns + `-secret, hash: "$2a$10$M/WFMgUA1Ao.gpWG9Se4QO7HHD/S8uVQjFZJ/cTR5kFtEViBBzg3m"}
---
apiVersion: oauth.latchkey.dev/v1alpha1
kind: OAuthClient
metadata: {name: service, namespace: ` + ns + `}
spec:
  clientID: ` + ns + `-service
  type: Confidential
  grantTypes: [client_credentials]
  tokenEndpointAuthMethod: client_secret_basic
  secretPolicy: External
  secretRef: {name: service-secret, key: client-secret}
---
apiVersion: oauth.latchkey.dev/v1alpha1
kind: User
metadata: {name: ` + ns + `-user}
spec:
  username: ` + ns + `-user
  passwordSecretRef: {namespace: ` + ns + `, name: service-secret, key: hash}
`
}

// teamToken asks for a client_credentials token as ns's client.
func teamToken(t *testing.T, srv *harness.Server, ns string) (int, map[string]any) {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL()+"/oauth2/token", strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(ns+"-service", ns+"-secret")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close() //nolint:errcheck // read fully below
	var body map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	return resp.StatusCode, body
}

// canI runs `kubectl auth can-i` as user and reports the answer (exit status 0: yes, 1: no).
func (s *suite) canI(t *testing.T, user string, args ...string) bool {
	t.Helper()
	cmd := exec.Command(s.cp.KubectlPath(), append([]string{"--kubeconfig", s.cp.Kubeconfig(), "auth", "can-i", "--as", user}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	answer := strings.TrimSpace(string(out))
	var ee *exec.ExitError
	switch {
	case err == nil && answer == "yes":
		return true
	case errors.As(err, &ee) && ee.ExitCode() == 1 && answer == "no":
		return false
	}
	t.Fatalf("kubectl auth can-i %v: %v: %s %s", args, err, out, stderr.String())
	return false
}

// TestChartWatchNamespaces installs the chart with watchNamespaces=[team-a] and runs the server
// as its ServiceAccount: Secrets are granted by Roles in team-a and the release namespace only,
// a client in team-a is served, one in team-b is invisible, and a User whose password Secret is
// in team-b is told its namespace is not watched.
func TestChartWatchNamespaces(t *testing.T) {
	s := env
	const ns = "latchkey-scoped"
	for _, team := range []string{"team-a", "team-b"} {
		if out, err := s.cp.Kubectl(nil, "create", "namespace", team); err != nil && !strings.Contains(out, "AlreadyExists") {
			t.Fatalf("create namespace %s: %v: %s", team, err, out)
		}
	}
	objs := s.render(t, "scoped", ns, "watchNamespaces={team-a}")
	require.Contains(t, containerArgs(t, objs), "--watch-namespaces=team-a")
	cr := managerClusterRole(objs)
	require.NotNil(t, cr, "the chart renders no manager ClusterRole")
	rules, _, err := unstructured.NestedSlice(cr.Object, "rules")
	require.NoError(t, err)
	for _, r := range rules {
		resources, _, _ := unstructured.NestedStringSlice(r.(map[string]any), "resources") //nolint:forcetypeassert // decoded YAML
		for _, res := range resources {
			assert.False(t, strings.HasPrefix(res, "secrets") || strings.HasPrefix(res, "oauthclients") ||
				strings.HasPrefix(res, "configmaps") || strings.HasPrefix(res, "protectedresources"),
				"the ClusterRole grants %s with watchNamespaces", res)
		}
	}
	s.install(t, ns, objs)
	user := serviceAccountUser(t, ns, objs)

	for _, tc := range []struct {
		name string
		args []string
		want bool
	}{
		{"no Secret is listed across namespaces", []string{"list", "secrets", "--all-namespaces"}, false},
		{"no Secret is read across namespaces", []string{"get", "secrets", "--all-namespaces"}, false},
		{"no OAuthClient is listed across namespaces", []string{"list", "oauthclients.oauth.latchkey.dev", "--all-namespaces"}, false},
		{"Secrets in the watched namespace are read", []string{"get", "secrets", "-n", "team-a"}, true},
		{"Secrets in the watched namespace are watched", []string{"watch", "secrets", "-n", "team-a"}, true},
		{"Secrets in the release namespace are read (the signing keys)", []string{"get", "secrets", "-n", ns}, true},
		{"Secrets in another namespace are not read", []string{"get", "secrets", "-n", "team-b"}, false},
		{"OAuthClients in another namespace are not listed", []string{"list", "oauthclients.oauth.latchkey.dev", "-n", "team-b"}, false},
		{"no OAuthClientPolicy is listed across namespaces", []string{"list", "oauthclientpolicies.oauth.latchkey.dev", "--all-namespaces"}, false},
		{"OAuthClientPolicies in the watched namespace are watched", []string{"watch", "oauthclientpolicies.oauth.latchkey.dev", "-n", "team-a"}, true},
		{"OAuthClientPolicies in the release namespace are watched (the default policy)", []string{"watch", "oauthclientpolicies.oauth.latchkey.dev", "-n", ns}, true},
		{"no ProtectedResource is listed across namespaces", []string{"list", "protectedresources.oauth.latchkey.dev", "--all-namespaces"}, false},
		{"ProtectedResources in the watched namespace are watched", []string{"watch", "protectedresources.oauth.latchkey.dev", "-n", "team-a"}, true},
		{"no ConfigMap is listed across namespaces", []string{"list", "configmaps", "--all-namespaces"}, false},
		{"metadata ConfigMaps are written in the watched namespace", []string{"create", "configmaps", "-n", "team-a"}, true},
		{"TokenReviews are still created", []string{"create", "tokenreviews.authentication.k8s.io"}, true},
		{"Users are still watched cluster-wide", []string{"watch", "users.oauth.latchkey.dev"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, s.canI(t, user, tc.args...))
		})
	}

	srv, err := s.start(t, containerArgs(t, objs), s.impersonatingKubeconfig(t, user), 30*time.Second)
	require.NoError(t, err, "latchkey (as %s, watching team-a) not ready within 30s", user)
	for _, team := range []string{"team-a", "team-b"} {
		s.cp.MustKubectl(t, []byte(teamManifests(team)), "apply", "-f", "-")
	}

	t.Run("a client in a watched namespace becomes Ready and gets a token", func(t *testing.T) {
		s.cp.MustKubectl(t, nil, "wait", "-n", "team-a", "--for=condition=Ready", "--timeout=30s", "oauthclient/service")
		var (
			status int
			body   map[string]any
		)
		require.Eventually(t, func() bool {
			status, body = teamToken(t, srv, "team-a")
			return status == http.StatusOK
		}, 20*time.Second, 200*time.Millisecond, "token: %d %v", status, body)
		assert.NotEmpty(t, body["access_token"])
	})
	t.Run("a User whose password Secret is in a watched namespace becomes Ready", func(t *testing.T) {
		s.cp.MustKubectl(t, nil, "wait", "--for=condition=Ready", "--timeout=30s", "user/team-a-user")
	})
	t.Run("a User whose password Secret is in another namespace is told it is not watched", func(t *testing.T) {
		s.cp.MustKubectl(t, nil, "wait", "--for=jsonpath={.status.conditions[?(@.type==\"Ready\")].reason}=SecretNotFound", "--timeout=30s", "user/team-b-user")
		msg := s.cp.MustKubectl(t, nil, "get", "user/team-b-user", "-o", "jsonpath={.status.conditions[?(@.type==\"Ready\")].message}")
		assert.Contains(t, msg, "namespace team-b is not watched")
	})
	t.Run("a client in another namespace is invisible", func(t *testing.T) {
		// By now the server has served team-a's client and judged both Users: a client it could
		// see would have its status written too.
		status, body := teamToken(t, srv, "team-b")
		assert.Equal(t, http.StatusUnauthorized, status)
		assert.Equal(t, "invalid_client", body["error"])
		conds := s.cp.MustKubectl(t, nil, "get", "-n", "team-b", "oauthclient/service", "-o", "jsonpath={.status}")
		assert.Empty(t, strings.TrimSpace(conds), "a client outside the watched namespaces got a status")
	})
}

// TestChartAggregatedRoles checks the chart's view and edit ClusterRoles: their labels put them
// into the built-in view, edit and admin ClusterRoles, and what they grant. envtest runs no
// kube-controller-manager, so no clusterrole-aggregation controller fills the built-in roles:
// the edit role is bound directly in a namespace, as the aggregation would bind it through edit.
func TestChartAggregatedRoles(t *testing.T) {
	s := env
	const ns = "latchkey-aggregated"
	objs := s.render(t, "agg", ns)
	labels := map[string]map[string]string{}
	for _, o := range objs {
		if o.GetKind() == "ClusterRole" {
			labels[o.GetName()] = o.GetLabels()
		}
	}
	const aggregate = "rbac.authorization.k8s.io/aggregate-to-"
	for _, tc := range []struct {
		role string
		into []string
	}{
		{"agg-latchkey-view", []string{"view", "edit", "admin"}},
		{"agg-latchkey-edit", []string{"edit", "admin"}},
	} {
		t.Run(tc.role+" is aggregated into "+strings.Join(tc.into, ", "), func(t *testing.T) {
			require.Contains(t, labels, tc.role)
			for _, into := range tc.into {
				assert.Equal(t, "true", labels[tc.role][aggregate+into])
			}
			if !slices.Contains(tc.into, "view") {
				assert.NotContains(t, labels[tc.role], aggregate+"view", "view must not write")
			}
		})
	}
	s.install(t, ns, objs)
	if out, err := s.cp.Kubectl(nil, "create", "namespace", "team-c"); err != nil && !strings.Contains(out, "AlreadyExists") {
		t.Fatalf("create namespace: %v: %s", err, out)
	}
	const editor = "team-c-editor"
	s.cp.MustKubectl(t, nil, "create", "rolebinding", "latchkey-edit", "-n", "team-c", "--clusterrole=agg-latchkey-edit", "--user="+editor)

	for _, tc := range []struct {
		name string
		args []string
		want bool
	}{
		{"an editor creates OAuthClients in the namespace", []string{"create", "oauthclients.oauth.latchkey.dev", "-n", "team-c"}, true},
		{"an editor deletes OAuthClients in the namespace", []string{"delete", "oauthclients.oauth.latchkey.dev", "-n", "team-c"}, true},
		{"an editor does not write OAuthClient status", []string{"update", "oauthclients.oauth.latchkey.dev", "--subresource=status", "-n", "team-c"}, false},
		{"an editor does not create OAuthClients elsewhere", []string{"create", "oauthclients.oauth.latchkey.dev", "-n", "default"}, false},
		{"an editor creates ProtectedResources in the namespace", []string{"create", "protectedresources.oauth.latchkey.dev", "-n", "team-c"}, true},
		{"an editor does not write ProtectedResource status", []string{"update", "protectedresources.oauth.latchkey.dev", "--subresource=status", "-n", "team-c"}, false},
		{"an editor does not create Scopes", []string{"create", "scopes.oauth.latchkey.dev"}, false},
		{"an editor does not create Users", []string{"create", "users.oauth.latchkey.dev"}, false},
		{"an editor does not create WorkloadIssuers", []string{"create", "workloadissuers.oauth.latchkey.dev"}, false},
		{"an editor reads no Secrets through it", []string{"get", "secrets", "-n", "team-c"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, s.canI(t, editor, tc.args...))
		})
	}
	t.Run("an editor's OAuthClient is created", func(t *testing.T) {
		kc := s.impersonatingKubeconfig(t, editor)
		cmd := exec.Command(s.cp.KubectlPath(), "--kubeconfig", kc, "apply", "-f", "-")
		cmd.Stdin = strings.NewReader(`apiVersion: oauth.latchkey.dev/v1alpha1
kind: OAuthClient
metadata: {name: app, namespace: team-c}
spec:
  type: Public
  grantTypes: [authorization_code]
  redirectURIs: ["http://localhost:3000/callback"]
  tokenEndpointAuthMethod: none
`)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
	})
}
