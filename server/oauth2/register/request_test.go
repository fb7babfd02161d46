package register

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/redirecturi"
)

func TestCheckRegistrationRedirectURI(t *testing.T) {
	tests := []struct {
		uri string
		ok  bool
	}{
		{"https://app.example/cb", true},
		{"https://app.example:8443/cb?x=1&y=2", true},
		{"http://localhost/cb", true},
		{"http://localhost:8080", true},
		{"http://127.0.0.1:53412/cb", true},
		{"http://[::1]:8080/cb", true},
		{"com.example.app:/oauth2redirect", true},
		{"com.example.app://callback", true},
		{"myapp://callback", false},
		{"myapp:/cb", false},
		{"ws://app.example/cb", false},
		{"wss://app.example/cb", false},
		{"ftp://app.example/cb", false},
		{"blob:https://app.example/x", false},
		{"about:blank", false},
		{"view-source:https://app.example/", false},
		{"ms-officecmd:x", false},
		{"https://app.example/cb#frag", false},
		{"https://app.example/cb#", false},
		{"https:///cb", false},
		{"https:app.example", false},
		{"http://app.example/cb", false},
		{"http://localhost.evil.example/cb", false},
		{"http://127.0.0.2/cb", false},
		{"http://user@localhost/cb", false},
		{"https://user@app.example/cb", false},
		{"HTTPS://app.example/cb", false},
		{"Https://app.example/cb", false},
		{"javascript:alert(1)", false},
		{"data:text/html,hi", false},
		{"vbscript:msgbox", false},
		{"file:///etc/passwd", false},
		{"myapp:", false},
		{"/relative/cb", false},
		{"app.example/cb", false},
		{"", false},
		{"https://app.example/a b", false},
		{"https://app.example/a\tb", false},
		{"https://app.example/\u00a0", false},
		{"https://app.example/" + strings.Repeat("a", 2048), false},
	}
	for _, tt := range tests {
		name := fmt.Sprintf("%.60q is refused", tt.uri)
		if tt.ok {
			name = fmt.Sprintf("%.60q is accepted", tt.uri)
		}
		t.Run(name, func(t *testing.T) {
			err := redirecturi.Check(tt.uri)
			if tt.ok {
				assert.NoError(t, err)
			} else {
				assert.Error(t, err)
			}
		})
	}
}

func TestRegistrationRequestStringHidesTheSecret(t *testing.T) {
	r := registrationRequest{ClientID: "c", ClientSecret: "s3cret"}
	for _, printed := range []string{fmt.Sprint(r), fmt.Sprint(&r), fmt.Sprintf("%#v", r), fmt.Sprintf("%+v", &r)} {
		assert.NotContains(t, printed, "s3cret")
	}
	rc := RegisteredClient{ClientID: "c", ClientSecret: "s3cret", RegistrationAccessToken: "t0ken"}
	for _, printed := range []string{fmt.Sprint(rc), fmt.Sprint(&rc), fmt.Sprintf("%#v", rc), fmt.Sprintf("%+v", &rc)} {
		assert.NotContains(t, printed, "s3cret")
		assert.NotContains(t, printed, "t0ken")
	}
}

func FuzzParseRegistrationRequest(f *testing.F) {
	f.Add(`{"redirect_uris":["https://a.example/cb"],"client_name":"x","scope":"a b"}`)
	f.Add(`{"grant_types":["client_credentials"],"token_endpoint_auth_method":"client_secret_post"}`)
	f.Add(`{"token_endpoint_auth_method":"none","grant_types":["authorization_code","refresh_token"],"response_types":["code"],"redirect_uris":["com.example:/cb","http://[::1]:1/"]}`)
	f.Add(`{"grant_types":["client_credentials"],"grant_types":[]}`)
	f.Add(`{"a":[1,{"b":null}],"scope":null,"client_id":"x","client_secret":"y"}`)
	f.Add(`{"redirect_uris":["javascript:x","http://localhost#"],"response_types":["token"]}`)
	f.Add(`[] {}`)
	f.Add(`{"client_name":"\u0000\ud800"}`)
	f.Add(`{"client_name":" Demo \u202eppa","grant_types":["client_credentials"]}`)
	f.Add(`{"client_name":"GitHub\ufe0f","redirect_uris":["https://\u0430pp.example:0/cb\u200b"]}`)
	f.Add(`{"grant_types":["client_credentials"],"backchannel_logout_uri":"https://rp.example/logout","backchannel_logout_session_required":true}`)
	f.Add(`{"grant_types":["client_credentials"],"backchannel_logout_uri":"http://127.0.0.1:8081/x","backchannel_logout_session_required":"yes"}`)
	f.Fuzz(func(t *testing.T, body string) {
		req, err := parseRegistrationRequest([]byte(body))
		if err != nil {
			requireRegistrationError(t, err)
			require.Nil(t, req)
			return
		}
		m, err := req.validate()
		if err != nil {
			requireRegistrationError(t, err)
			return
		}
		require.Contains(t, []string{oauth2.AuthMethodBasic, oauth2.AuthMethodPost, oauth2.AuthMethodNone}, m.TokenEndpointAuthMethod)
		require.NotEmpty(t, m.GrantTypes)
		for _, g := range m.GrantTypes {
			require.Contains(t, []string{oauth2.GrantAuthorizationCode, oauth2.GrantRefreshToken, oauth2.GrantClientCredentials}, g)
		}
		require.False(t, m.Public() && slices.Contains(m.GrantTypes, oauth2.GrantClientCredentials))
		require.False(t, slices.Contains(m.GrantTypes, oauth2.GrantAuthorizationCode) && len(m.RedirectURIs) == 0)
		require.LessOrEqual(t, len(m.RedirectURIs), regMaxRedirectURIs)
		for _, u := range m.RedirectURIs {
			require.NoError(t, redirecturi.Check(u))
		}
		require.LessOrEqual(t, utf8.RuneCountInString(m.ClientName), regMaxClientNameRunes)
		require.Equal(t, -1, strings.IndexFunc(m.ClientName, hiddenInName), "no hidden characters in %q", m.ClientName)
		require.Equal(t, strings.TrimSpace(m.ClientName), m.ClientName)
		require.LessOrEqual(t, len(m.Scopes), regMaxScopes)
		for _, sc := range m.Scopes {
			require.Regexp(t, regScopeToken, sc)
		}
		require.Equal(t, m.Scopes, regDedupe(m.Scopes))
		require.Equal(t, m.RedirectURIs, regDedupe(m.RedirectURIs))
		if m.BackchannelLogoutURI != "" {
			require.NoError(t, redirecturi.CheckLogoutURI(m.BackchannelLogoutURI))
			require.True(t, strings.HasPrefix(m.BackchannelLogoutURI, "https://"), "registration accepts https logout URIs only")
		}
	})
}

func TestRegisteringABackchannelLogoutURI(t *testing.T) {
	tests := []struct {
		name, body string
		wantURI    string
		wantSID    bool
		wantErr    string // a part of the description; empty: accepted
	}{
		{"an https URI and session required are kept",
			`{"grant_types":["client_credentials"],"backchannel_logout_uri":"https://rp.example/bcl","backchannel_logout_session_required":true}`,
			"https://rp.example/bcl", true, ""},
		{"null members are absent", `{"grant_types":["client_credentials"],"backchannel_logout_uri":null,"backchannel_logout_session_required":null}`, "", false, ""},
		{"http on a loopback host is refused: it would reach the server's own ports",
			`{"grant_types":["client_credentials"],"backchannel_logout_uri":"http://127.0.0.1:9090/metrics"}`, "", false, "must use https when registered dynamically"},
		{"http elsewhere is refused", `{"grant_types":["client_credentials"],"backchannel_logout_uri":"http://rp.example/bcl"}`, "", false, "loopback"},
		{"a private-use scheme is refused", `{"grant_types":["client_credentials"],"backchannel_logout_uri":"com.example.app:/bcl"}`, "", false, "https"},
		{"a fragment is refused", `{"grant_types":["client_credentials"],"backchannel_logout_uri":"https://rp.example/bcl#x"}`, "", false, "fragment"},
		{"a session flag that is not a boolean is refused", `{"grant_types":["client_credentials"],"backchannel_logout_session_required":"true"}`, "", false, "true or false"},
		{"a URI that is not a string is refused", `{"grant_types":["client_credentials"],"backchannel_logout_uri":["https://rp.example/bcl"]}`, "", false, "must be a string"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := parseRegistrationRequest([]byte(tc.body))
			var m ClientMetadata
			if err == nil {
				m, err = req.validate()
			}
			if tc.wantErr != "" {
				require.Error(t, err)
				requireRegistrationError(t, err)
				var oe *oauth2.Error
				require.ErrorAs(t, err, &oe)
				assert.Equal(t, "invalid_client_metadata", oe.Code())
				assert.Contains(t, oe.Description(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.wantURI, m.BackchannelLogoutURI)
			assert.Equal(t, tc.wantSID, m.BackchannelLogoutSessionRequired)
		})
	}
}

// requireRegistrationError requires one of the 400 errors RFC 7591 3.2.2 defines.
func requireRegistrationError(t *testing.T, err error) {
	t.Helper()
	var oe *oauth2.Error
	require.True(t, errors.As(err, &oe), "not an *oauth2.Error: %v", err)
	require.Contains(t, []string{"invalid_client_metadata", "invalid_redirect_uri"}, oe.Code())
	require.Equal(t, http.StatusBadRequest, oe.StatusCode())
	require.NotEmpty(t, oe.Description())
}

func TestRegistrationPostLogoutRedirectURIs(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		want    []string
		wantErr string
	}{
		{"registered post-logout redirect URIs are kept, without repeats",
			`{"redirect_uris":["https://a.example/cb"],"post_logout_redirect_uris":["https://a.example/bye","https://a.example/bye","com.example.app:/bye"]}`,
			[]string{"https://a.example/bye", "com.example.app:/bye"}, ""},
		{"none is none", `{"redirect_uris":["https://a.example/cb"]}`, nil, ""},
		{"one with a fragment is invalid client metadata",
			`{"redirect_uris":["https://a.example/cb"],"post_logout_redirect_uris":["https://a.example/bye#x"]}`, nil, "post-logout redirect URI"},
		{"an http one off loopback is invalid client metadata",
			`{"redirect_uris":["https://a.example/cb"],"post_logout_redirect_uris":["http://a.example/bye"]}`, nil, "post-logout redirect URI"},
		{"a string instead of an array is invalid client metadata",
			`{"redirect_uris":["https://a.example/cb"],"post_logout_redirect_uris":"https://a.example/bye"}`, nil, "post_logout_redirect_uris"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := parseRegistrationRequest([]byte(tt.body))
			if err == nil {
				var m ClientMetadata
				m, err = req.validate()
				if tt.wantErr == "" {
					require.NoError(t, err)
					assert.Equal(t, tt.want, m.PostLogoutRedirectURIs)
					return
				}
			}
			require.ErrorIs(t, err, ErrInvalidClientMetadata)
			var oe *oauth2.Error
			require.True(t, errors.As(err, &oe))
			assert.Contains(t, oe.Description(), tt.wantErr)
		})
	}
}

func TestRegisteringRequirePushedAuthorizationRequests(t *testing.T) {
	tests := []struct {
		name, body string
		want       bool
		wantErr    bool
	}{
		{"true is kept", `{"redirect_uris":["https://rp.example/cb"],"require_pushed_authorization_requests":true}`, true, false},
		{"absent is false", `{"redirect_uris":["https://rp.example/cb"]}`, false, false},
		{"a string is refused", `{"redirect_uris":["https://rp.example/cb"],"require_pushed_authorization_requests":"true"}`, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := parseRegistrationRequest([]byte(tc.body))
			var m ClientMetadata
			if err == nil {
				m, err = req.validate()
			}
			if tc.wantErr {
				require.Error(t, err)
				requireRegistrationError(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, m.RequirePushedAuthorizationRequests)
		})
	}
}
