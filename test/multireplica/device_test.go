package multireplica

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/internal/harness"
)

// demo-cli is the samples' public client of the device authorization grant.
const (
	deviceCLIID = "demo-cli"
	deviceGrant = "urn:ietf:params:oauth:grant-type:device_code"
)

var deviceCLI = clientAuth{id: deviceCLIID}

// waitDeviceCLI waits until demo-cli is Ready and every replica serves it.
func waitDeviceCLI(t *testing.T, s *suite) {
	t.Helper()
	out, err := s.cp.Kubectl(nil, "wait", "-n", "default", "--for=condition=Ready", "--timeout=30s", "oauthclient/"+deviceCLIID)
	require.NoError(t, err, out)
	for _, r := range s.replicas {
		require.Eventually(t, func() bool {
			res, err := r.postForm(t.Context(), "/oauth2/device_authorization", deviceCLI, url.Values{"scope": {"openid"}})
			return err == nil && res.status == http.StatusOK
		}, 30*time.Second, 200*time.Millisecond, "%s serves demo-cli", r.name)
	}
}

func TestADeviceStartedAtOneReplicaIsApprovedAtAnotherAndPolledAtAThird(t *testing.T) {
	s := env
	waitDeviceCLI(t, s)
	a, b, c := s.replicas[0], s.replicas[1], s.replicas[2]

	res, err := a.postForm(t.Context(), "/oauth2/device_authorization", deviceCLI, url.Values{"scope": {"openid read:projects"}})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.status, "%s", res)
	deviceCode, userCode := res.str("device_code"), res.str("user_code")
	assert.Equal(t, s.issuer+"/oauth2/device", res.str("verification_uri"), "the shared issuer's page")
	assert.EqualValues(t, 1, res.body["interval"])
	poll := func(r *replica) apiResponse {
		return r.token(t, deviceCLI, url.Values{"grant_type": {deviceGrant}, "device_code": {deviceCode}})
	}

	first := poll(b)
	assert.Equal(t, "authorization_pending", first.str("error"), "%s at %s", first, b.name)
	tooSoon, lastPoll := poll(c), time.Now()
	assert.Equal(t, "slow_down", tooSoon.str("error"), "the interval holds across replicas: %s at %s", tooSoon, c.name)

	// The user enters the code at replica b, behind the issuer's address.
	servers := []string{a.base, b.base, c.base}
	br := harness.NewBrowser(t, nil, servers...)
	br.Origin = s.issuer
	p := br.Get(b.base + "/oauth2/device?user_code=" + url.QueryEscape(userCode))
	require.Equal(t, http.StatusOK, p.Status, p.Body)
	form := p.Hidden()
	form.Set("user_code", userCode)
	p = br.Submit(p, "../oauth2/device", form)
	require.True(t, p.IsLogin(), "%d %s", p.Status, p.Body)
	p = br.Login(p, alice, alicePassword)
	require.True(t, p.IsConsent(), "%d %s", p.Status, p.Body)
	assert.Contains(t, p.Body, userCode)
	p = br.Decide(p, "allow")
	require.Equal(t, http.StatusOK, p.Status, p.Body)
	assert.Contains(t, p.Body, "Device connected")

	// slow_down added 5 s to the interval of 1 s: the next poll waits that long.
	time.Sleep(time.Until(lastPoll.Add(6*time.Second + 500*time.Millisecond)))
	got := poll(c)
	require.Equal(t, http.StatusOK, got.status, "the tokens at %s: %s", c.name, got)
	require.NotEmpty(t, got.str("access_token"))
	require.NotEmpty(t, got.str("refresh_token"))
	require.NotEmpty(t, got.str("id_token"))
	assert.True(t, b.introspect(t, got.str("access_token")), "active at %s", b.name)

	again := poll(a)
	assert.Equal(t, "invalid_grant", again.str("error"), "redeemed once: %s at %s", again, a.name)
}
