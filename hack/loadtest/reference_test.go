package main

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/internal/harness"
)

func TestTheReferenceSignsEachTokenAndTheFloorAnswersOneToken(t *testing.T) {
	for _, tc := range []struct {
		name     string
		static   bool
		wantSame bool
	}{
		{"the reference handler signs a new token per request", false, false},
		{"the floor handler answers the token it signed at start", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, err := harness.FreeAddr()
			require.NoError(t, err)
			go func() { _ = serveReference(addr, "http://issuer", "c", "s3cret", tc.static) }()
			url := "http://" + addr + "/oauth2/token"
			var status int
			var body []byte
			require.Eventually(t, func() bool {
				status, body, err = post(t.Context(), http.DefaultClient, url, basic("c", "s3cret"), "grant_type=client_credentials")
				return err == nil
			}, 10*time.Second, 10*time.Millisecond)
			require.Equal(t, http.StatusOK, status, "%s", body)
			_, second, err := post(t.Context(), http.DefaultClient, url, basic("c", "s3cret"), "grant_type=client_credentials")
			require.NoError(t, err)
			var a, b referenceResponse
			require.NoError(t, json.Unmarshal(body, &a))
			require.NoError(t, json.Unmarshal(second, &b))
			assert.NotEmpty(t, a.AccessToken)
			assert.Equal(t, tc.wantSame, a.AccessToken == b.AccessToken)
			status, _, err = post(t.Context(), http.DefaultClient, url, basic("c", "wrong"), "grant_type=client_credentials")
			require.NoError(t, err)
			assert.Equal(t, http.StatusUnauthorized, status, "the secret is checked either way")
		})
	}
}
