package handler

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/server/oauth2"
)

func TestHSTSIsSentOnlyByAnHTTPSIssuer(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  func(*testing.T, ...envOption) *flowEnv
		want string
	}{
		{"An https issuer sends Strict-Transport-Security on every answer", newTLSFlowEnv, hstsValue},
		{"An http issuer sends none", newFlowEnv, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := tc.env(t)
			for _, path := range []string{oauth2.OpenIDConfigurationPath, oauth2.JWKSPath, oauth2.AuthorizePath, oauth2.TokenPath, "/no-such-path"} {
				res, err := env.srv.Client().Get(env.srv.URL + path)
				require.NoError(t, err)
				_ = res.Body.Close()
				assert.Equal(t, tc.want, res.Header.Get("Strict-Transport-Security"), path)
			}
		})
	}
}
