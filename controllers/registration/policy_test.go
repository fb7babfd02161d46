package registration_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
	"github.com/latchkey-dev/latchkey/server/oauth2"
)

func TestRegistrationBreakingANamespacePolicyIsRefused(t *testing.T) {
	p := &v1alpha1.OAuthClientPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: regNamespace, Name: "registrations"},
		Spec: v1alpha1.OAuthClientPolicySpec{
			AllowedScopes:      []string{"openid", "billing:*"},
			AllowPublicClients: ptr.To(false),
			RedirectURIHosts:   []string{"*.example.com", "127.0.0.1"},
		},
	}
	require.NoError(t, suite.client.Create(t.Context(), p))
	t.Cleanup(func() { _ = suite.client.Delete(context.Background(), p) })
	createScope(t, "billing:read")
	createScope(t, "admin:all")
	srv := server(t)

	tests := []struct {
		name    string
		body    string
		refused string // in error_description; empty: registered
	}{
		{"a client within the policy is registered", `{"grant_types":["client_credentials","authorization_code"],` +
			`"redirect_uris":["https://app.example.com/cb"],"scope":"billing:read"}`, ""},
		{"a scope outside the policy is refused, naming the policy and the scope",
			`{"grant_types":["client_credentials"],"scope":"billing:read admin:all"}`,
			`OAuthClientPolicy ` + regNamespace + `/registrations: allowedScopes does not allow "admin:all"`},
		{"a public client is refused where the policy allows none",
			`{"token_endpoint_auth_method":"none","grant_types":["authorization_code"],"redirect_uris":["http://127.0.0.1:8765/cb"],"scope":"openid"}`,
			`allowPublicClients does not allow "Public"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, got := call(t, srv, http.MethodPost, oauth2.RegistrationPath, initialToken, tt.body)
			if tt.refused == "" {
				require.Equal(t, http.StatusCreated, status, got)
				id := str(got, "client_id")
				waitReady(t, id)
				// An update breaking the policy is refused too, and changes nothing.
				status, res := call(t, srv, http.MethodPut, oauth2.RegistrationPath+"/"+id, str(got, "registration_access_token"),
					`{"client_id":"`+id+`","grant_types":["client_credentials","authorization_code"],"redirect_uris":["https://evil.test/cb"],"scope":"billing:read"}`)
				assert.Equal(t, http.StatusBadRequest, status, res)
				assert.Equal(t, "invalid_client_metadata", res["error"])
				assert.Contains(t, str(res, "error_description"), `redirectURIHosts does not allow "https://evil.test/cb"`)
				oc, err := getClient(t.Context(), id)
				require.NoError(t, err)
				assert.Equal(t, []string{"https://app.example.com/cb"}, oc.Spec.RedirectURIs)
				return
			}
			assert.Equal(t, http.StatusBadRequest, status, got)
			assert.Equal(t, "invalid_client_metadata", got["error"])
			assert.Contains(t, str(got, "error_description"), tt.refused)
		})
	}
}
