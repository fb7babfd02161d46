package handler

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/internal/harness"
	"github.com/latchkey-dev/latchkey/server/oauth2"
)

// deviceAuth is a device authorization response.
type deviceAuth struct {
	DeviceCode              string `json:"device_code"`
	UserCode                string `json:"user_code"`
	VerificationURI         string `json:"verification_uri"`
	VerificationURIComplete string `json:"verification_uri_complete"`
	ExpiresIn               int64  `json:"expires_in"`
	Interval                int64  `json:"interval"`
}

// postDeviceAuthorization posts a device authorization request with the form's parameters.
func (env *flowEnv) postDeviceAuthorization(t *testing.T, kv ...string) (*http.Response, map[string]any) {
	t.Helper()
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	res, err := env.srv.Client().Post(env.srv.URL+oauth2.DeviceAuthorizationPath, formType, strings.NewReader(v.Encode()))
	require.NoError(t, err)
	defer res.Body.Close()
	var out map[string]any
	require.NoError(t, json.NewDecoder(res.Body).Decode(&out))
	return res, out
}

// startDevice starts a device authorization of the client and returns its response.
func (env *flowEnv) startDevice(t *testing.T, clientID, scope string) deviceAuth {
	t.Helper()
	res, out := env.postDeviceAuthorization(t, "client_id", clientID, "scope", scope)
	require.Equal(t, http.StatusOK, res.StatusCode, "%v", out)
	raw, err := json.Marshal(out)
	require.NoError(t, err)
	var da deviceAuth
	require.NoError(t, json.Unmarshal(raw, &da))
	return da
}

// poll polls the token endpoint with the device code as the client.
func (env *flowEnv) poll(t *testing.T, clientID, deviceCode string) (int, map[string]any) {
	t.Helper()
	return env.exchangeForm(t, "grant_type", oauth2.GrantDeviceCode, "client_id", clientID, "device_code", deviceCode)
}

// enterUserCode opens the verification page, enters the code and returns the next page.
func enterUserCode(t *testing.T, b *harness.Browser, verificationURI, code string, headers ...string) harness.Page {
	t.Helper()
	p := b.Get(verificationURI)
	require.Equal(t, http.StatusOK, p.Status, p.Body)
	assertPageHeaders(t, p.Header)
	form := p.Hidden()
	require.NotEmpty(t, form.Get("csrf_token"))
	form.Set("user_code", code)
	target, err := p.URL.Parse("../oauth2/device")
	require.NoError(t, err)
	return b.Post(target.String(), form, headers...)
}

// approveDevice enters the code as alice, signs in and decides.
func (env *flowEnv) approveDevice(t *testing.T, da deviceAuth, decision string) harness.Page {
	t.Helper()
	b := env.browser(t)
	p := enterUserCode(t, b, da.VerificationURI, da.UserCode)
	require.True(t, p.IsLogin(), "the login page: %d %s", p.Status, p.Body)
	p = b.Login(p, ownerName, ownerPassword)
	require.True(t, p.IsConsent(), "the confirmation: %d %s", p.Status, p.Body)
	return b.Decide(p, decision)
}

func requireOAuthError(t *testing.T, status int, body map[string]any, wantStatus int, wantCode string) {
	t.Helper()
	require.Equal(t, wantCode, body["error"], "%v", body)
	require.Equal(t, wantStatus, status, "%v", body)
}

func TestDeviceFlowFromAuthorizationToTokens(t *testing.T) {
	env := newFlowEnv(t)
	res, out := env.postDeviceAuthorization(t, "client_id", deviceID, "scope", "openid read:projects")
	require.Equal(t, http.StatusOK, res.StatusCode, "%v", out)
	assert.Equal(t, "no-store", res.Header.Get("Cache-Control"))
	da := env.startDevice(t, deviceID, "openid read:projects")
	assert.True(t, oauth2.WellFormedSecret(da.DeviceCode))
	assert.Regexp(t, `^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$`, da.UserCode)
	assert.Equal(t, env.srv.URL+oauth2.DevicePath, da.VerificationURI)
	assert.Equal(t, da.VerificationURI+"?user_code="+da.UserCode, da.VerificationURIComplete)
	assert.Equal(t, int64(600), da.ExpiresIn)
	assert.Equal(t, int64(5), da.Interval)

	status, body := env.poll(t, deviceID, da.DeviceCode)
	requireOAuthError(t, status, body, http.StatusBadRequest, "authorization_pending")
	status, body = env.poll(t, deviceID, da.DeviceCode)
	requireOAuthError(t, status, body, http.StatusBadRequest, "slow_down")
	env.clock.Advance(6 * time.Second) // the interval is 10 s now
	status, body = env.poll(t, deviceID, da.DeviceCode)
	requireOAuthError(t, status, body, http.StatusBadRequest, "slow_down")
	env.clock.Advance(16 * time.Second) // and 15 s now
	status, body = env.poll(t, deviceID, da.DeviceCode)
	requireOAuthError(t, status, body, http.StatusBadRequest, "authorization_pending")

	b := env.browser(t)
	p := b.Get(da.VerificationURIComplete)
	require.Equal(t, http.StatusOK, p.Status)
	assert.Contains(t, p.Body, `value="`+da.UserCode+`"`, "verification_uri_complete fills in the code")
	// Typed in lower case, without the dash and with spaces: the same code.
	p = enterUserCode(t, b, da.VerificationURI, " "+strings.ToLower(strings.ReplaceAll(da.UserCode, "-", ""))+" ")
	require.True(t, p.IsLogin(), "%d %s", p.Status, p.Body)
	p = b.Login(p, ownerName, ownerPassword)
	require.True(t, p.IsConsent(), "%d %s", p.Status, p.Body)
	assert.Contains(t, p.Body, "Project CLI")
	assert.Contains(t, p.Body, da.UserCode)
	assert.Contains(t, p.Body, readProjectDesc)
	assert.NotContains(t, p.Body, "you will be sent to")
	p = b.Decide(p, "allow")
	require.Equal(t, http.StatusOK, p.Status, p.Body)
	assert.Contains(t, p.Body, "Device connected")
	assert.Nil(t, p.Location)

	env.clock.Advance(16 * time.Second)
	status, body = env.poll(t, deviceID, da.DeviceCode)
	require.Equal(t, http.StatusOK, status, "%v", body)
	assert.NotEmpty(t, body["access_token"])
	assert.NotEmpty(t, body["refresh_token"], "the client lists refresh_token")
	assert.NotEmpty(t, body["id_token"], "openid was granted")
	assert.Equal(t, "openid read:projects", body["scope"])

	t.Run("a second redemption of the device code fails", func(t *testing.T) {
		status, body := env.poll(t, deviceID, da.DeviceCode)
		requireOAuthError(t, status, body, http.StatusBadRequest, "invalid_grant")
	})
	t.Run("the user code no longer works on the verification page", func(t *testing.T) {
		p := enterUserCode(t, env.browser(t), da.VerificationURI, da.UserCode)
		require.Equal(t, http.StatusBadRequest, p.Status)
		assert.Contains(t, p.Body, "not valid or has expired")
	})
	t.Run("the refresh token works", func(t *testing.T) {
		status, out := env.exchangeForm(t, "grant_type", "refresh_token", "client_id", deviceID, "refresh_token", body["refresh_token"].(string))
		require.Equal(t, http.StatusOK, status, "%v", out)
	})
}

func TestDeviceFlowDecisionsAndPolls(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, env *flowEnv, da deviceAuth)
	}{
		{
			name: "a denied device gets access_denied on every poll",
			run: func(t *testing.T, env *flowEnv, da deviceAuth) {
				p := env.approveDevice(t, da, "deny")
				require.Equal(t, http.StatusOK, p.Status)
				assert.Contains(t, p.Body, "Access denied")
				for range 2 {
					env.clock.Advance(time.Minute)
					status, body := env.poll(t, deviceID, da.DeviceCode)
					requireOAuthError(t, status, body, http.StatusBadRequest, "access_denied")
				}
			},
		},
		{
			name: "a device code past its lifetime is expired_token, and its user code is gone",
			run: func(t *testing.T, env *flowEnv, da deviceAuth) {
				env.clock.Advance(10*time.Minute + time.Second)
				status, body := env.poll(t, deviceID, da.DeviceCode)
				requireOAuthError(t, status, body, http.StatusBadRequest, "expired_token")
				p := enterUserCode(t, env.browser(t), da.VerificationURI, da.UserCode)
				require.Equal(t, http.StatusBadRequest, p.Status)
			},
		},
		{
			name: "another client's poll is expired_token and neither uses up nor slows the code",
			run: func(t *testing.T, env *flowEnv, da deviceAuth) {
				status, body := env.poll(t, device2ID, da.DeviceCode)
				requireOAuthError(t, status, body, http.StatusBadRequest, "expired_token")
				status, body = env.poll(t, deviceID, da.DeviceCode)
				requireOAuthError(t, status, body, http.StatusBadRequest, "authorization_pending")
				env.approveDevice(t, da, "allow")
				status, body = env.poll(t, device2ID, da.DeviceCode)
				requireOAuthError(t, status, body, http.StatusBadRequest, "expired_token")
				env.clock.Advance(10 * time.Second)
				status, body = env.poll(t, deviceID, da.DeviceCode)
				require.Equal(t, http.StatusOK, status, "%v", body)
			},
		},
		{
			name: "a malformed or missing device code is refused without reaching the store",
			run: func(t *testing.T, env *flowEnv, _ deviceAuth) {
				status, body := env.poll(t, deviceID, "not-a-device-code")
				requireOAuthError(t, status, body, http.StatusBadRequest, "invalid_grant")
				status, body = env.exchangeForm(t, "grant_type", oauth2.GrantDeviceCode, "client_id", deviceID)
				requireOAuthError(t, status, body, http.StatusBadRequest, "invalid_request")
			},
		},
		{
			name: "a client without the grant cannot poll",
			run: func(t *testing.T, env *flowEnv, da deviceAuth) {
				status, body := env.poll(t, spaClientID, da.DeviceCode)
				requireOAuthError(t, status, body, http.StatusBadRequest, "unauthorized_client")
			},
		},
		{
			name: "the confirmation page cannot be answered from another browser",
			run: func(t *testing.T, env *flowEnv, da deviceAuth) {
				b := env.browser(t)
				p := b.Login(enterUserCode(t, b, da.VerificationURI, da.UserCode), ownerName, ownerPassword)
				require.True(t, p.IsConsent())
				form := p.Hidden()
				form.Set("decision", "allow")
				other := env.browser(t)
				q := other.Post(env.srv.URL+oauth2.ConsentPath, form)
				require.Equal(t, http.StatusForbidden, q.Status)
				status, body := env.poll(t, deviceID, da.DeviceCode)
				requireOAuthError(t, status, body, http.StatusBadRequest, "authorization_pending")
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := newFlowEnv(t)
			tc.run(t, env, env.startDevice(t, deviceID, "openid"))
		})
	}
}

func TestDeviceAuthorizationRequestErrors(t *testing.T) {
	env := newFlowEnv(t)
	tests := []struct {
		name, body string
		status     int
		code       string
	}{
		{"a client without the device_code grant is unauthorized_client", "client_id=" + spaClientID, 400, "unauthorized_client"},
		{"an unknown client is invalid_client", "client_id=nobody", 400, "invalid_client"},
		{"no client at all is invalid_client", "scope=openid", 400, "invalid_client"},
		{"a scope the client may not have is invalid_scope", "client_id=" + deviceID + "&scope=admin", 400, "invalid_scope"},
		{"a grant_type is invalid_request", "client_id=" + deviceID + "&grant_type=" + url.QueryEscape(oauth2.GrantDeviceCode), 400, "invalid_request"},
		{"a repeated parameter is invalid_request", "client_id=" + deviceID + "&scope=openid&scope=email", 400, "invalid_request"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := env.srv.Client().Post(env.srv.URL+oauth2.DeviceAuthorizationPath, formType, strings.NewReader(tc.body))
			require.NoError(t, err)
			defer res.Body.Close()
			var body map[string]any
			require.NoError(t, json.NewDecoder(res.Body).Decode(&body))
			requireOAuthError(t, res.StatusCode, body, tc.status, tc.code)
			assert.Contains(t, res.Header.Get("Content-Type"), "application/json")
		})
	}
	t.Run("GET is 405 with Allow: POST", func(t *testing.T) {
		res, err := env.srv.Client().Get(env.srv.URL + oauth2.DeviceAuthorizationPath)
		require.NoError(t, err)
		defer res.Body.Close()
		assert.Equal(t, http.StatusMethodNotAllowed, res.StatusCode)
		assert.Equal(t, http.MethodPost, res.Header.Get("Allow"))
	})
}

func TestWrongUserCodesAreLimitedPerAddressAndGlobally(t *testing.T) {
	env := newFlowEnv(t, func(c *Config) {
		c.Login.ClientIPHeader = "X-Forwarded-For"
		c.Device.Verification.PerAddress = 3
		c.Device.Verification.Global = 5
	})
	da := env.startDevice(t, deviceID, "openid")
	wrong := "BBBB-BBBB"
	if da.UserCode == wrong {
		wrong = "CCCC-CCCC"
	}
	from := func(addr string) []string { return []string{"X-Forwarded-For", addr} }
	b := env.browser(t)

	for i := range 3 {
		p := enterUserCode(t, b, da.VerificationURI, wrong, from("192.0.2.1")...)
		require.Equal(t, http.StatusBadRequest, p.Status, "wrong code %d", i+1)
		assert.Contains(t, p.Body, "not valid or has expired")
	}
	p := enterUserCode(t, b, da.VerificationURI, da.UserCode, from("192.0.2.1")...)
	require.Equal(t, http.StatusTooManyRequests, p.Status, "blocked, even with the right code")
	assert.NotEmpty(t, p.Header.Get("Retry-After"))
	assert.Contains(t, p.Body, "Too many wrong codes")

	t.Run("a code that is not well formed is not counted", func(t *testing.T) {
		for range 5 {
			p := enterUserCode(t, b, da.VerificationURI, "not a code", from("192.0.2.2")...)
			require.Equal(t, http.StatusBadRequest, p.Status)
		}
	})
	t.Run("another address still gets in with the right code", func(t *testing.T) {
		p := enterUserCode(t, env.browser(t), da.VerificationURI, da.UserCode, from("192.0.2.2")...)
		require.True(t, p.IsLogin(), "%d %s", p.Status, p.Body)
	})
	t.Run("past the global limit every address waits", func(t *testing.T) {
		for _, addr := range []string{"198.51.100.1", "198.51.100.2"} {
			p := enterUserCode(t, b, da.VerificationURI, wrong, from(addr)...)
			require.Equal(t, http.StatusBadRequest, p.Status)
		}
		p := enterUserCode(t, env.browser(t), da.VerificationURI, da.UserCode, from("203.0.113.9")...)
		require.Equal(t, http.StatusTooManyRequests, p.Status)
		env.clock.Advance(2 * time.Second) // the global block's back-off
		p = enterUserCode(t, env.browser(t), da.VerificationURI, da.UserCode, from("203.0.113.9")...)
		require.True(t, p.IsLogin(), "%d %s", p.Status, p.Body)
	})
}

func TestTheVerificationFormIsCSRFProtected(t *testing.T) {
	env := newFlowEnv(t)
	da := env.startDevice(t, deviceID, "openid")
	tests := []struct {
		name string
		post func(b *harness.Browser) harness.Page
	}{
		{"a form without the token is refused", func(b *harness.Browser) harness.Page {
			b.Get(da.VerificationURI)
			return b.Post(env.srv.URL+oauth2.DevicePath, url.Values{"user_code": {da.UserCode}})
		}},
		{"another browser's token is refused", func(b *harness.Browser) harness.Page {
			token := env.browser(t).Get(da.VerificationURI).Hidden().Get("csrf_token")
			b.Get(da.VerificationURI)
			return b.Post(env.srv.URL+oauth2.DevicePath, url.Values{"user_code": {da.UserCode}, "csrf_token": {token}})
		}},
		{"a cross-site form is refused", func(b *harness.Browser) harness.Page {
			form := b.Get(da.VerificationURI).Hidden()
			form.Set("user_code", da.UserCode)
			return b.Post(env.srv.URL+oauth2.DevicePath, form, "Sec-Fetch-Site", "cross-site")
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.post(env.browser(t))
			require.Equal(t, http.StatusForbidden, p.Status, p.Body)
			assertPageHeaders(t, p.Header)
		})
	}
}
