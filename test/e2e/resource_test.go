package e2e

import (
	"errors"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

const resourceClient = `apiVersion: oauth.latchkey.dev/v1alpha1
kind: OAuthClient
metadata: {name: gateway, namespace: e2e-resource}
spec:
  grantTypes: [client_credentials]
  audiences: ["https://orders.example.com", "https://billing.example.com"]
`

// TestResourceIndicatorsSelectTheAudience applies a client that may reach two audiences and
// asks for tokens with RFC 8707 resource: golang.org/x/oauth2 for one audience, curl for a
// resource the client may not reach.
func TestResourceIndicatorsSelectTheAudience(t *testing.T) {
	s := env
	s.cp.MustKubectl(t, nil, "create", "namespace", "e2e-resource")
	s.cp.MustKubectl(t, []byte(resourceClient), "apply", "-f", "-")
	s.waitReady(t, "e2e-resource", "gateway")
	id, secret := s.credentials(t, "e2e-resource", "gateway")

	var tok *oauth2.Token
	require.Eventually(t, func() bool {
		cc := clientcredentials.Config{ClientID: id, ClientSecret: secret, TokenURL: s.issuer + "/oauth2/token",
			EndpointParams: url.Values{"resource": {"https://billing.example.com"}}}
		var err error
		tok, err = cc.Token(t.Context())
		return err == nil
	}, 10*time.Second, 100*time.Millisecond)
	assert.Equal(t, "https://billing.example.com", s.verify(t, tok.AccessToken)["aud"])

	cc := clientcredentials.Config{ClientID: id, ClientSecret: secret, TokenURL: s.issuer + "/oauth2/token"}
	tok, err := cc.Token(t.Context())
	require.NoError(t, err)
	assert.Equal(t, []any{"https://orders.example.com", "https://billing.example.com"}, s.verify(t, tok.AccessToken)["aud"],
		"without resource the token carries every audience")

	cc.EndpointParams = url.Values{"resource": {"https://admin.example.com"}}
	_, err = cc.Token(t.Context())
	var re *oauth2.RetrieveError
	require.True(t, errors.As(err, &re), "%v", err)
	assert.Equal(t, "invalid_target", re.ErrorCode)
	assert.Equal(t, http.StatusBadRequest, re.Response.StatusCode)

	out, err := exec.CommandContext(t.Context(), "curl", "-sS", "-u", url.QueryEscape(id)+":"+url.QueryEscape(secret),
		"-d", "grant_type=client_credentials", "--data-urlencode", "resource=https://orders.example.com#frag",
		s.issuer+"/oauth2/token").CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.True(t, strings.Contains(string(out), `"error":"invalid_target"`), "%s", out)
}
