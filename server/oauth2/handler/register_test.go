package handler_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	xoauth2 "golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/latchkey-dev/latchkey/internal/harness"
	"github.com/latchkey-dev/latchkey/server/keys"
	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/oauth2/handler"
	"github.com/latchkey-dev/latchkey/server/oauth2/register"
	"github.com/latchkey-dev/latchkey/server/registration"
	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/store"
	"github.com/latchkey-dev/latchkey/server/store/memory"
)

// The external test package lets these tests use server/registration, which imports oauth2.

const (
	regNamespace = "registered"
	// initialToken may register any scope (scopes=*); initialToken2 has no policy of its own;
	// ciToken may register client_credentials clients with read:projects only.
	initialToken  = "initial-token-0123456789abcdef"
	initialToken2 = "second-initial-token-0123456789"
	ciToken       = "ci-initial-token-0123456789abc"
	jsonType      = "application/json"
)

var regKeyring = sync.OnceValues(func() (*keys.Keyring, error) {
	set, err := keys.Generate([]string{keys.RS256}, time.Now().Add(-time.Minute))
	if err != nil {
		return nil, err
	}
	kr := keys.NewKeyring()
	return kr, kr.Load(set)
})

// regServer is a handler with the memory registrar over httptest.
type regServer struct {
	*httptest.Server
	registry *registry.Registry
	handler  http.Handler // what the server serves, for requests sent without a connection
}

type regOptions struct {
	open     bool
	noTokens bool
	maxBody  int64
	max      int // anonymous registrations
	maxToken int // registrations with an initial access token
	policy   register.Policy
	store    store.Store
	now      func() time.Time
	ipHeader string // handler.LoginConfig.ClientIPHeader
	audit    oauth2.Auditor
	// wrap, when set, wraps the memory registrar the handler gets.
	wrap func(register.ClientRegistrar) register.ClientRegistrar
}

// auditEvents is an oauth2.Auditor that keeps the events.
type auditEvents struct {
	mu     sync.Mutex
	events []oauth2.AuditEvent
}

func (a *auditEvents) Audit(e oauth2.AuditEvent) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.events = append(a.events, e)
}

func (a *auditEvents) named(name string) []oauth2.AuditEvent {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []oauth2.AuditEvent
	for _, e := range a.events {
		if e.Event == name {
			out = append(out, e)
		}
	}
	return out
}

func newRegServer(t *testing.T, o regOptions) *regServer {
	t.Helper()
	kr, err := regKeyring()
	require.NoError(t, err)
	reg := registry.New()
	reg.PutScope("read-projects", registry.Scope{Name: "read:projects"})
	reg.PutScope("write-projects", registry.Scope{Name: "write:projects"})
	reg.PutScope("admin-read", registry.Scope{Name: "admin:read", AllowedNamespaces: []string{"payments"}})
	mem, err := registration.NewMemory(reg, registration.MemoryOptions{Namespace: regNamespace, MaxClients: o.max, MaxInitialTokenClients: o.maxToken})
	require.NoError(t, err)
	var h http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	var registrar register.ClientRegistrar = mem
	if o.wrap != nil {
		registrar = o.wrap(mem)
	}
	cfg := handler.Config{
		Issuer: srv.URL, Registry: reg, Keys: kr, Registrar: registrar, RegistrationOpen: o.open, MaxBodyBytes: o.maxBody,
		RegistrationPolicy: o.policy, Store: o.store, Now: o.now, Login: handler.LoginConfig{ClientIPHeader: o.ipHeader},
		Audit: o.audit,
	}
	if !o.noTokens {
		cfg.RegistrationInitialTokens, err = register.ParseInitialTokens([]byte(initialToken + " scopes=*\n" + initialToken2 + "\n" +
			ciToken + " scopes=read:projects grants=client_credentials\n"))
		require.NoError(t, err)
	}
	h, err = handler.New(cfg)
	require.NoError(t, err)
	return &regServer{Server: srv, registry: reg, handler: h}
}

type regResponse struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

// call sends one request; bearer "" sends no Authorization header.
func (s *regServer) call(t *testing.T, method, path, bearer, contentType, body string) regResponse {
	t.Helper()
	return s.callWith(t, nil, method, path, bearer, contentType, body)
}

// callWith is call with extra request headers.
func (s *regServer) callWith(t *testing.T, header http.Header, method, path, bearer, contentType, body string) regResponse {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, s.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	for k, v := range header {
		req.Header[k] = v
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	res, err := s.Client().Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	out := regResponse{status: res.StatusCode, header: res.Header, raw: string(raw)}
	assert.Equal(t, "no-store", res.Header.Get("Cache-Control"), "every registration answer is no-store")
	if res.StatusCode != http.StatusNoContent && method != http.MethodHead {
		assert.Equal(t, "application/json;charset=UTF-8", res.Header.Get("Content-Type"))
		require.NoError(t, json.Unmarshal(raw, &out.body), "body %q", raw)
	}
	return out
}

// register POSTs metadata with the first initial access token and requires 201.
func (s *regServer) register(t *testing.T, body string) map[string]any {
	t.Helper()
	res := s.call(t, http.MethodPost, oauth2.RegistrationPath, initialToken, jsonType, body)
	require.Equal(t, http.StatusCreated, res.status, res.raw)
	return res.body
}

func str(m map[string]any, key string) string { s, _ := m[key].(string); return s }

// clientToken asks for a client_credentials token with Basic authentication.
func clientToken(ctx context.Context, srv *httptest.Server, id, secret string, scopes ...string) (*xoauth2.Token, error) {
	return clientTokenStyle(ctx, srv, xoauth2.AuthStyleInHeader, id, secret, scopes...)
}

// clientTokenStyle asks for a client_credentials token, authenticating in the style given.
func clientTokenStyle(ctx context.Context, srv *httptest.Server, style xoauth2.AuthStyle, id, secret string, scopes ...string) (*xoauth2.Token, error) {
	cc := clientcredentials.Config{ClientID: id, ClientSecret: secret, TokenURL: srv.URL + oauth2.TokenPath,
		Scopes: scopes, AuthStyle: style}
	return cc.Token(context.WithValue(ctx, xoauth2.HTTPClient, srv.Client()))
}

func requireOAuthError(t *testing.T, err error, code string, status int) {
	t.Helper()
	var re *xoauth2.RetrieveError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, code, re.ErrorCode)
	assert.Equal(t, status, re.Response.StatusCode)
}

func TestRegistrationRoundTrip(t *testing.T) {
	srv := newRegServer(t, regOptions{})
	ctx := t.Context()

	got := srv.register(t, `{
		"client_name": "Billing service",
		"grant_types": ["client_credentials"],
		"token_endpoint_auth_method": "client_secret_basic",
		"scope": "read:projects write:projects",
		"logo_uri": "https://billing.example/logo.png",
		"contacts": ["ops@billing.example"],
		"introspection": true
	}`)
	id, secret, regToken := str(got, "client_id"), str(got, "client_secret"), str(got, "registration_access_token")
	clientURI := srv.URL + oauth2.RegistrationPath + "/" + id

	t.Run("the registration response has the credentials and the stored metadata", func(t *testing.T) {
		assert.Regexp(t, `^dyn-[a-z2-7]{10}$`, id)
		assert.Len(t, secret, 43, "32 bytes in unpadded base64url")
		assert.Len(t, regToken, 43)
		assert.NotEqual(t, secret, regToken)
		assert.InDelta(t, 0, got["client_secret_expires_at"], 0)
		assert.InDelta(t, float64(time.Now().Unix()), got["client_id_issued_at"], 5)
		assert.Equal(t, clientURI, got["registration_client_uri"])
		assert.Equal(t, "client_secret_basic", got["token_endpoint_auth_method"])
		assert.Equal(t, []any{"client_credentials"}, got["grant_types"])
		assert.Equal(t, []any{}, got["response_types"])
		assert.Equal(t, "Billing service", got["client_name"])
		assert.Equal(t, "read:projects write:projects", got["scope"])
		assert.NotContains(t, got, "logo_uri", "unknown metadata is ignored, not stored")
		assert.NotContains(t, got, "redirect_uris")
	})

	t.Run("the registered client is served with the controllers' defaults", func(t *testing.T) {
		c, ok := srv.registry.Snapshot().Client(id)
		require.True(t, ok)
		assert.Equal(t, regNamespace+"/"+id, c.Source)
		assert.Equal(t, regNamespace, c.Namespace)
		assert.Equal(t, registry.Confidential, c.Type)
		assert.Equal(t, []string{id}, c.Audiences)
		assert.Equal(t, "RequiredS256", c.PKCE)
		assert.Equal(t, "Remember", c.Consent)
		assert.True(t, c.Registered, "marked as registered: the consent page says it is unverified")
		assert.False(t, c.Introspection, "registration never declares a resource server")
		assert.True(t, c.CheckSecret(secret))
		assert.False(t, c.CheckSecret(regToken))
	})

	t.Run("the returned credentials get a client_credentials token", func(t *testing.T) {
		tok, err := clientToken(ctx, srv.Server, id, secret, "read:projects")
		require.NoError(t, err)
		assert.Equal(t, "read:projects", tok.Extra("scope"))
		_, err = clientToken(ctx, srv.Server, id, regToken)
		requireOAuthError(t, err, "invalid_client", http.StatusUnauthorized)
	})

	t.Run("GET reads the registration without the secret", func(t *testing.T) {
		res := srv.call(t, http.MethodGet, oauth2.RegistrationPath+"/"+id, regToken, "", "")
		require.Equal(t, http.StatusOK, res.status, res.raw)
		assert.Equal(t, id, res.body["client_id"])
		assert.NotContains(t, res.body, "client_secret", "the secret is handed out once")
		assert.InDelta(t, 0, res.body["client_secret_expires_at"], 0)
		assert.Equal(t, regToken, res.body["registration_access_token"])
		assert.Equal(t, clientURI, res.body["registration_client_uri"])
		assert.Equal(t, got["client_id_issued_at"], res.body["client_id_issued_at"])
		assert.Equal(t, "read:projects write:projects", res.body["scope"])
	})

	t.Run("PUT replaces the metadata and omitted members are reset", func(t *testing.T) {
		res := srv.call(t, http.MethodPut, oauth2.RegistrationPath+"/"+id, regToken, jsonType, `{
			"client_id": "`+id+`", "client_secret": "`+secret+`",
			"grant_types": ["client_credentials", "refresh_token"],
			"redirect_uris": ["https://billing.example/callback"],
			"token_endpoint_auth_method": "client_secret_post",
			"scope": "read:projects openid",
			"registration_access_token": "ignored", "client_id_issued_at": 1
		}`)
		require.Equal(t, http.StatusOK, res.status, res.raw)
		assert.NotContains(t, res.body, "client_name", "omitted, so deleted (RFC 7592 2.2)")
		assert.Equal(t, []any{"client_credentials", "refresh_token"}, res.body["grant_types"])
		assert.Equal(t, []any{}, res.body["response_types"])
		assert.Equal(t, []any{"https://billing.example/callback"}, res.body["redirect_uris"])
		assert.Equal(t, "client_secret_post", res.body["token_endpoint_auth_method"])
		assert.Equal(t, "read:projects openid", res.body["scope"])
		c, _ := srv.registry.Snapshot().Client(id)
		assert.Equal(t, []string{"read:projects", "openid"}, c.Scopes)
		assert.True(t, c.CheckSecret(secret), "the secret survives an update")

		_, err := clientTokenStyle(ctx, srv.Server, xoauth2.AuthStyleInParams, id, secret, "write:projects")
		requireOAuthError(t, err, "invalid_scope", http.StatusBadRequest)
		_, err = clientToken(ctx, srv.Server, id, secret, "read:projects")
		requireOAuthError(t, err, "invalid_client", http.StatusUnauthorized) // client_secret_post is declared now
	})

	for _, tt := range []struct {
		name, body, code string
	}{
		{"PUT without client_id is invalid_client_metadata", `{"grant_types":["client_credentials"]}`, "invalid_client_metadata"},
		{"PUT with another client_id is invalid_client_metadata", `{"client_id":"dyn-other","grant_types":["client_credentials"]}`, "invalid_client_metadata"},
		{"PUT with a wrong client_secret is invalid_client_metadata", `{"client_id":"` + id + `","client_secret":"wrong","grant_types":["client_credentials"]}`, "invalid_client_metadata"},
		{"PUT to a public client is invalid_client_metadata", `{"client_id":"` + id + `","token_endpoint_auth_method":"none","grant_types":["refresh_token"]}`, "invalid_client_metadata"},
		{"PUT adding authorization_code without redirect URIs is invalid_redirect_uri", `{"client_id":"` + id + `"}`, "invalid_redirect_uri"},
		{"PUT adding authorization_code is invalid_client_metadata", `{"client_id":"` + id + `","grant_types":["client_credentials","authorization_code"],"redirect_uris":["https://billing.example/cb"]}`, "invalid_client_metadata"},
		{"PUT adding a scope outside the allowed scopes is invalid_client_metadata", `{"client_id":"` + id + `","grant_types":["client_credentials"],"scope":"read:projects write:projects"}`, "invalid_client_metadata"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := srv.call(t, http.MethodPut, oauth2.RegistrationPath+"/"+id, regToken, jsonType, tt.body)
			assert.Equal(t, http.StatusBadRequest, res.status, res.raw)
			assert.Equal(t, tt.code, res.body["error"])
		})
	}

	t.Run("DELETE removes the client and its credentials stop working", func(t *testing.T) {
		res := srv.call(t, http.MethodDelete, oauth2.RegistrationPath+"/"+id, regToken, "", "")
		require.Equal(t, http.StatusNoContent, res.status, res.raw)
		assert.Empty(t, res.raw)
		_, ok := srv.registry.Snapshot().Client(id)
		assert.False(t, ok)
		_, err := clientToken(ctx, srv.Server, id, secret)
		requireOAuthError(t, err, "invalid_client", http.StatusUnauthorized)
		for _, method := range []string{http.MethodGet, http.MethodDelete} {
			res := srv.call(t, method, oauth2.RegistrationPath+"/"+id, regToken, "", "")
			assert.Equal(t, http.StatusUnauthorized, res.status, "%s after DELETE", method)
			assert.Equal(t, "invalid_token", res.body["error"])
		}
	})
}

func TestRegistrationDefaultsAndPublicClients(t *testing.T) {
	srv := newRegServer(t, regOptions{})

	t.Run("RFC 7591 defaults: authorization_code, code, client_secret_basic", func(t *testing.T) {
		got := srv.register(t, `{"redirect_uris":["https://app.example/cb","https://app.example/cb"]}`)
		assert.Equal(t, []any{"authorization_code"}, got["grant_types"])
		assert.Equal(t, []any{"code"}, got["response_types"])
		assert.Equal(t, "client_secret_basic", got["token_endpoint_auth_method"])
		assert.Equal(t, []any{"https://app.example/cb"}, got["redirect_uris"], "duplicates are dropped")
		assert.NotEmpty(t, got["client_secret"])
		assert.NotContains(t, got, "scope")
	})

	t.Run("a public client gets no secret and is served as Public", func(t *testing.T) {
		got := srv.register(t, `{"token_endpoint_auth_method":"none","grant_types":["authorization_code","refresh_token"],
			"response_types":["code"],"redirect_uris":["com.example.app:/cb","http://127.0.0.1:8765/cb"],"scope":"openid offline_access"}`)
		assert.NotContains(t, got, "client_secret")
		assert.NotContains(t, got, "client_secret_expires_at")
		c, ok := srv.registry.Snapshot().Client(str(got, "client_id"))
		require.True(t, ok)
		assert.Equal(t, registry.Public, c.Type)
		assert.Empty(t, c.PostLogoutRedirectURIs)
		assert.Equal(t, "none", c.AuthMethod)
		assert.False(t, c.HasSecret)
	})
}

func TestRegistrationOfPostLogoutRedirectURIs(t *testing.T) {
	srv := newRegServer(t, regOptions{})
	got := srv.register(t, `{"token_endpoint_auth_method":"none","redirect_uris":["https://app.example/cb"],
		"post_logout_redirect_uris":["https://app.example/bye"]}`)
	assert.Equal(t, []any{"https://app.example/bye"}, got["post_logout_redirect_uris"])
	c, ok := srv.registry.Snapshot().Client(str(got, "client_id"))
	require.True(t, ok)
	assert.Equal(t, []string{"https://app.example/bye"}, c.PostLogoutRedirectURIs, "the registered client can name it at logout")
}

func TestRegistrationValidation(t *testing.T) {
	srv := newRegServer(t, regOptions{maxBody: 4096})
	tests := []struct {
		name        string
		contentType string
		body        string
		status      int
		code        string
	}{
		{"a fragment in a redirect URI is invalid_redirect_uri", jsonType, `{"redirect_uris":["https://a.example/cb#x"]}`, 400, "invalid_redirect_uri"},
		{"http on a non-loopback host is invalid_redirect_uri", jsonType, `{"redirect_uris":["http://app.example/cb"]}`, 400, "invalid_redirect_uri"},
		{"http on a host that starts like localhost is invalid_redirect_uri", jsonType, `{"redirect_uris":["http://localhost.evil.example/cb"]}`, 400, "invalid_redirect_uri"},
		{"a javascript: redirect URI is invalid_redirect_uri", jsonType, `{"redirect_uris":["javascript:alert(1)"]}`, 400, "invalid_redirect_uri"},
		{"a data: redirect URI is invalid_redirect_uri", jsonType, `{"redirect_uris":["data:text/html,x"]}`, 400, "invalid_redirect_uri"},
		{"a ws redirect URI is invalid_redirect_uri", jsonType, `{"redirect_uris":["ws://a.example/cb"]}`, 400, "invalid_redirect_uri"},
		{"a ftp redirect URI is invalid_redirect_uri", jsonType, `{"redirect_uris":["ftp://a.example/cb"]}`, 400, "invalid_redirect_uri"},
		{"a blob redirect URI is invalid_redirect_uri", jsonType, `{"redirect_uris":["blob:https://a.example/x"]}`, 400, "invalid_redirect_uri"},
		{"a about:blank redirect URI is invalid_redirect_uri", jsonType, `{"redirect_uris":["about:blank"]}`, 400, "invalid_redirect_uri"},
		{"a view-source redirect URI is invalid_redirect_uri", jsonType, `{"redirect_uris":["view-source:https://a.example/"]}`, 400, "invalid_redirect_uri"},
		{"a ms-officecmd redirect URI is invalid_redirect_uri", jsonType, `{"redirect_uris":["ms-officecmd:open"]}`, 400, "invalid_redirect_uri"},
		{"a single-label private-use redirect URI is invalid_redirect_uri", jsonType, `{"redirect_uris":["myapp:/cb"]}`, 400, "invalid_redirect_uri"},
		{"a relative redirect URI is invalid_redirect_uri", jsonType, `{"redirect_uris":["/cb"]}`, 400, "invalid_redirect_uri"},
		{"an upper-case scheme is invalid_redirect_uri", jsonType, `{"redirect_uris":["HTTPS://a.example/cb"]}`, 400, "invalid_redirect_uri"},
		{"user information in a redirect URI is invalid_redirect_uri", jsonType, `{"redirect_uris":["https://u:p@a.example/cb"]}`, 400, "invalid_redirect_uri"},
		{"white space in a redirect URI is invalid_redirect_uri", jsonType, `{"redirect_uris":["https://a.example/c b"]}`, 400, "invalid_redirect_uri"},
		{"a zero-width space in a redirect URI is invalid_redirect_uri", jsonType, `{"redirect_uris":["https://a.example/c\u200bb"]}`, 400, "invalid_redirect_uri"},
		{"a right-to-left override in a redirect URI is invalid_redirect_uri", jsonType, `{"redirect_uris":["https://a.example/\u202ebc"]}`, 400, "invalid_redirect_uri"},
		{"a non-ASCII host is invalid_redirect_uri", jsonType, `{"redirect_uris":["https://\u0430pp.example/cb"]}`, 400, "invalid_redirect_uri"},
		{"a percent-encoded non-ASCII host is invalid_redirect_uri", jsonType, `{"redirect_uris":["https://%D0%B0pp.example/cb"]}`, 400, "invalid_redirect_uri"},
		{"port 0 is invalid_redirect_uri", jsonType, `{"redirect_uris":["http://127.0.0.1:0/cb"]}`, 400, "invalid_redirect_uri"},
		{"port 99999 is invalid_redirect_uri", jsonType, `{"redirect_uris":["https://a.example:99999/cb"]}`, 400, "invalid_redirect_uri"},
		{"authorization_code without redirect URIs is invalid_redirect_uri", jsonType, `{"grant_types":["authorization_code"]}`, 400, "invalid_redirect_uri"},
		{"a public client with client_credentials is invalid_client_metadata", jsonType, `{"token_endpoint_auth_method":"none","grant_types":["client_credentials"]}`, 400, "invalid_client_metadata"},
		{"a public client with token exchange is invalid_client_metadata", jsonType, `{"token_endpoint_auth_method":"none","grant_types":["urn:ietf:params:oauth:grant-type:token-exchange"]}`, 400, "invalid_client_metadata"},
		{"an unknown grant type is invalid_client_metadata", jsonType, `{"grant_types":["urn:ietf:params:oauth:grant-type:jwt-bearer"]}`, 400, "invalid_client_metadata"},
		{"the implicit grant is invalid_client_metadata", jsonType, `{"grant_types":["implicit"],"response_types":["token"],"redirect_uris":["https://a.example/cb"]}`, 400, "invalid_client_metadata"},
		{"the password grant is invalid_client_metadata", jsonType, `{"grant_types":["password"]}`, 400, "invalid_client_metadata"},
		{"an empty grant_types is invalid_client_metadata", jsonType, `{"grant_types":[]}`, 400, "invalid_client_metadata"},
		{"response_types token is invalid_client_metadata", jsonType, `{"response_types":["token"],"redirect_uris":["https://a.example/cb"]}`, 400, "invalid_client_metadata"},
		{"response_types code without authorization_code is invalid_client_metadata", jsonType, `{"grant_types":["client_credentials"],"response_types":["code"]}`, 400, "invalid_client_metadata"},
		{"private_key_jwt is invalid_client_metadata", jsonType, `{"grant_types":["client_credentials"],"token_endpoint_auth_method":"private_key_jwt"}`, 400, "invalid_client_metadata"},
		{"an unknown scope is invalid_client_metadata", jsonType, `{"grant_types":["client_credentials"],"scope":"read:projects ghost"}`, 400, "invalid_client_metadata"},
		{"a scope of other namespaces is invalid_client_metadata", jsonType, `{"grant_types":["client_credentials"],"scope":"admin:read"}`, 400, "invalid_client_metadata"},
		{"a scope with a quote is invalid_client_metadata", jsonType, `{"grant_types":["client_credentials"],"scope":"a\"b"}`, 400, "invalid_client_metadata"},
		{"a scope array is invalid_client_metadata", jsonType, `{"grant_types":["client_credentials"],"scope":["read:projects"]}`, 400, "invalid_client_metadata"},
		{"a string for an array is invalid_client_metadata", jsonType, `{"redirect_uris":"https://a.example/cb"}`, 400, "invalid_client_metadata"},
		{"a number in an array is invalid_client_metadata", jsonType, `{"grant_types":["client_credentials",1]}`, 400, "invalid_client_metadata"},
		{"a too long client_name is invalid_client_metadata", jsonType, `{"grant_types":["client_credentials"],"client_name":"` + strings.Repeat("é", 129) + `"}`, 400, "invalid_client_metadata"},
		{"a control character in client_name is invalid_client_metadata", jsonType, `{"grant_types":["client_credentials"],"client_name":"a\u0007b"}`, 400, "invalid_client_metadata"},
		{"a duplicated member is invalid_client_metadata", jsonType, `{"grant_types":["client_credentials"],"grant_types":["authorization_code"]}`, 400, "invalid_client_metadata"},
		{"a duplicated member spelled with an escape is invalid_client_metadata", jsonType, `{"scope":"read:projects","\u0073cope":"ghost","grant_types":["client_credentials"]}`, 400, "invalid_client_metadata"},
		{"a duplicated unknown member is invalid_client_metadata", jsonType, `{"x":1,"x":2,"grant_types":["client_credentials"]}`, 400, "invalid_client_metadata"},
		{"malformed JSON is invalid_client_metadata", jsonType, `{"grant_types":["client_credentials"]`, 400, "invalid_client_metadata"},
		{"a JSON array is invalid_client_metadata", jsonType, `[{"grant_types":["client_credentials"]}]`, 400, "invalid_client_metadata"},
		{"data after the object is invalid_client_metadata", jsonType, `{"grant_types":["client_credentials"]} {}`, 400, "invalid_client_metadata"},
		{"an empty body is invalid_client_metadata", jsonType, ``, 400, "invalid_client_metadata"},
		{"a form body is 415 invalid_request", "application/x-www-form-urlencoded", `grant_types=client_credentials`, 415, "invalid_request"},
		{"no Content-Type is 415 invalid_request", "", `{"grant_types":["client_credentials"]}`, 415, "invalid_request"},
		{"a Latin-1 charset is 415 invalid_request", "application/json; charset=iso-8859-1", `{"grant_types":["client_credentials"]}`, 415, "invalid_request"},
		{"an oversized body is 413 invalid_request", jsonType, `{"client_name":"` + strings.Repeat("a", 5000) + `"}`, 413, "invalid_request"},
		{"a UTF-8 charset parameter is accepted", "application/json; charset=utf-8", `{"grant_types":["client_credentials"]}`, 201, ""},
		{"null members count as omitted", jsonType, `{"grant_types":["client_credentials"],"scope":null,"redirect_uris":null,"client_name":null}`, 201, ""},
		{"unknown members of any type are ignored", jsonType, `{"grant_types":["client_credentials"],"software_statement":"x.y.z","jwks":{"keys":[]},"client_name#ja":"名前"}`, 201, ""},
		{"a punycode host and port 65535 are accepted", jsonType, `{"redirect_uris":["https://xn--pp-7ka.example:65535/cb"]}`, 201, ""},
		{"a private-use scheme, https and loopback redirect URIs are accepted", jsonType, `{"redirect_uris":["com.example.app:/cb","https://a.example/cb?x=1","http://localhost:9/cb","http://[::1]/cb"]}`, 201, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := srv.call(t, http.MethodPost, oauth2.RegistrationPath, initialToken, tt.contentType, tt.body)
			assert.Equal(t, tt.status, res.status, res.raw)
			if tt.code != "" {
				assert.Equal(t, tt.code, res.body["error"])
				assert.NotEmpty(t, res.body["error_description"])
			} else {
				assert.NotEmpty(t, res.body["client_id"])
			}
		})
	}
}

func TestRegistrationNeedsTheInitialAccessToken(t *testing.T) {
	body := `{"grant_types":["client_credentials"]}`
	publicBody := `{"token_endpoint_auth_method":"none","redirect_uris":["http://127.0.0.1/cb"]}`
	closed := newRegServer(t, regOptions{})
	open := newRegServer(t, regOptions{open: true})
	onlyOpen := newRegServer(t, regOptions{open: true, noTokens: true})
	tests := []struct {
		name      string
		srv       *regServer
		auth      string // the whole Authorization header
		body      string
		status    int
		code      string
		challenge string
	}{
		{"without a token it is 401 invalid_token with a bare challenge", closed, "", body, 401, "invalid_token", `Bearer realm="latchkey"`},
		{"a wrong token is 401 invalid_token", closed, "Bearer wrong-token-0123456789abcdef", body, 401, "invalid_token", `Bearer realm="latchkey", error="invalid_token"`},
		{"Basic credentials are 401 invalid_token", closed, basicHeader(initialToken), body, 401, "invalid_token", `Bearer realm="latchkey", error="invalid_token"`},
		{"a malformed bearer token is 401 invalid_token", closed, "Bearer a b", body, 401, "invalid_token", `Bearer realm="latchkey", error="invalid_token"`},
		{"an empty bearer token is 401 invalid_token", closed, "Bearer ", body, 401, "invalid_token", `Bearer realm="latchkey", error="invalid_token"`},
		{"the second configured token works", closed, "Bearer " + initialToken2, body, 201, "", ""},
		{"the scheme is case-insensitive", closed, "bearer " + initialToken, body, 201, "", ""},
		{"open registration works without a token", open, "", publicBody, 201, "", ""},
		{"open registration without a token cannot get client_credentials", open, "", body, 400, "invalid_client_metadata", ""},
		{"open registration with a token can get client_credentials", open, "Bearer " + initialToken, body, 201, "", ""},
		{"open registration refuses a wrong token", open, "Bearer wrong-token-0123456789abcdef", publicBody, 401, "invalid_token", `Bearer realm="latchkey", error="invalid_token"`},
		{"open registration without tokens refuses any token", onlyOpen, "Bearer " + initialToken, publicBody, 401, "invalid_token", `Bearer realm="latchkey", error="invalid_token"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, tt.srv.URL+oauth2.RegistrationPath, strings.NewReader(tt.body))
			require.NoError(t, err)
			req.Header.Set("Content-Type", jsonType)
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			res, err := tt.srv.Client().Do(req)
			require.NoError(t, err)
			defer res.Body.Close()
			var body map[string]any
			require.NoError(t, json.NewDecoder(res.Body).Decode(&body))
			assert.Equal(t, tt.status, res.StatusCode, body)
			assert.Equal(t, tt.challenge, res.Header.Get("WWW-Authenticate"))
			if tt.code != "" {
				assert.Equal(t, tt.code, body["error"])
			}
		})
	}
}

func basicHeader(s string) string { return "Basic " + s }

// assertMetadataRefused asserts a 400 invalid_client_metadata whose description contains word.
func assertMetadataRefused(t *testing.T, res regResponse, word string) {
	t.Helper()
	assert.Equal(t, http.StatusBadRequest, res.status, res.raw)
	assert.Equal(t, "invalid_client_metadata", res.body["error"])
	assert.Contains(t, res.body["error_description"], word)
}

func TestClientConfigurationNeedsTheRegistrationAccessToken(t *testing.T) {
	srv := newRegServer(t, regOptions{})
	a := srv.register(t, `{"grant_types":["client_credentials"]}`)
	b := srv.register(t, `{"grant_types":["client_credentials"]}`)
	aPath := oauth2.RegistrationPath + "/" + str(a, "client_id")
	update := `{"client_id":"` + str(a, "client_id") + `","grant_types":["client_credentials"],"client_name":"taken over"}`
	for _, method := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
		for _, tt := range []struct {
			name, path, token string
		}{
			{"without a token", aPath, ""},
			{"with a wrong token", aPath, "wrong-token-0123456789abcdef"},
			{"with another client's token", aPath, str(b, "registration_access_token")},
			{"with the initial access token", aPath, initialToken},
			{"with the client secret", aPath, str(a, "client_secret")},
			{"for a client that does not exist", oauth2.RegistrationPath + "/dyn-aaaaaaaaaa", str(a, "registration_access_token")},
			{"for a client ID that is too long", oauth2.RegistrationPath + "/" + strings.Repeat("a", 300), str(a, "registration_access_token")},
		} {
			t.Run(method+" "+tt.name+" is 401 invalid_token", func(t *testing.T) {
				res := srv.call(t, method, tt.path, tt.token, jsonType, update)
				assert.Equal(t, http.StatusUnauthorized, res.status, res.raw)
				assert.Equal(t, "invalid_token", res.body["error"])
				assert.True(t, strings.HasPrefix(res.header.Get("WWW-Authenticate"), `Bearer realm="latchkey"`))
			})
		}
	}
	t.Run("the client is unchanged", func(t *testing.T) {
		res := srv.call(t, http.MethodGet, aPath, str(a, "registration_access_token"), "", "")
		require.Equal(t, http.StatusOK, res.status, res.raw)
		assert.NotContains(t, res.body, "client_name")
	})
	t.Run("client_credentials cannot be added by an update", func(t *testing.T) {
		c := srv.register(t, `{"redirect_uris":["https://a.example/cb"]}`)
		res := srv.call(t, http.MethodPut, oauth2.RegistrationPath+"/"+str(c, "client_id"), str(c, "registration_access_token"), jsonType,
			`{"client_id":"`+str(c, "client_id")+`","redirect_uris":["https://a.example/cb"],"grant_types":["authorization_code","client_credentials"]}`)
		assert.Equal(t, http.StatusBadRequest, res.status, res.raw)
		assert.Equal(t, "invalid_client_metadata", res.body["error"])
	})
}

func TestRegistrationEndpointMethodsAndLimits(t *testing.T) {
	srv := newRegServer(t, regOptions{open: true, max: 1, maxToken: 2})
	t.Run("GET on the registration endpoint is 405", func(t *testing.T) {
		res := srv.call(t, http.MethodGet, oauth2.RegistrationPath, initialToken, "", "")
		assert.Equal(t, http.StatusMethodNotAllowed, res.status)
		assert.Equal(t, "POST", res.header.Get("Allow"))
	})
	t.Run("PATCH on a client configuration endpoint is 405", func(t *testing.T) {
		res := srv.call(t, http.MethodPatch, oauth2.RegistrationPath+"/dyn-x", initialToken, jsonType, "{}")
		assert.Equal(t, http.StatusMethodNotAllowed, res.status)
		assert.Equal(t, "GET, HEAD, PUT, DELETE", res.header.Get("Allow"))
	})
	t.Run("a nested path is 404", func(t *testing.T) {
		res := srv.call(t, http.MethodGet, oauth2.RegistrationPath+"/dyn-x/y", initialToken, "", "")
		assert.Equal(t, http.StatusNotFound, res.status)
	})
	t.Run("past MaxClients anonymous registration is 403 access_denied, and token holders still register", func(t *testing.T) {
		public := `{"token_endpoint_auth_method":"none","redirect_uris":["http://127.0.0.1/cb"]}`
		res := srv.call(t, http.MethodPost, oauth2.RegistrationPath, "", jsonType, public)
		require.Equal(t, http.StatusCreated, res.status, res.raw)
		res = srv.call(t, http.MethodPost, oauth2.RegistrationPath, "", jsonType, public)
		assert.Equal(t, http.StatusForbidden, res.status, res.raw)
		assert.Equal(t, "access_denied", res.body["error"])

		srv.register(t, `{"grant_types":["client_credentials"]}`)
		srv.register(t, public)
		res = srv.call(t, http.MethodPost, oauth2.RegistrationPath, initialToken, jsonType, public)
		assert.Equal(t, http.StatusForbidden, res.status, "token holders have their own bound: %s", res.raw)
		assert.Equal(t, "access_denied", res.body["error"])
	})
}

func TestRegistrationDiscoveryAndConfig(t *testing.T) {
	kr, err := regKeyring()
	require.NoError(t, err)
	reg := registry.New()
	mem, err := registration.NewMemory(reg, registration.MemoryOptions{Namespace: regNamespace})
	require.NoError(t, err)

	metadataOf := func(t *testing.T, h http.Handler, path string) map[string]any {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		require.Equal(t, http.StatusOK, rec.Code)
		var m map[string]any
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &m))
		return m
	}

	t.Run("with a registrar, both metadata documents name the registration endpoint", func(t *testing.T) {
		h, err := handler.New(handler.Config{Issuer: "https://id.example/", Registry: reg, Keys: kr, Registrar: mem, RegistrationOpen: true})
		require.NoError(t, err)
		for _, p := range []string{oauth2.OpenIDConfigurationPath, oauth2.AuthorizationServerPath} {
			assert.Equal(t, "https://id.example/oauth2/register", metadataOf(t, h, p)["registration_endpoint"], p)
		}
	})
	t.Run("without a registrar, the endpoint is 404 and absent from the metadata", func(t *testing.T) {
		h, err := handler.New(handler.Config{Issuer: "https://id.example", Registry: reg, Keys: kr})
		require.NoError(t, err)
		assert.NotContains(t, metadataOf(t, h, oauth2.OpenIDConfigurationPath), "registration_endpoint")
		for _, p := range []string{oauth2.RegistrationPath, oauth2.RegistrationPath + "/dyn-x"} {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, p, strings.NewReader("{}")))
			assert.Equal(t, http.StatusNotFound, rec.Code, p)
		}
	})
	for _, tt := range []struct {
		name string
		cfg  handler.Config
	}{
		{"a registrar without initial tokens or open registration is refused", handler.Config{Registrar: mem}},
		{"initial tokens without a registrar are refused", handler.Config{RegistrationInitialTokens: []register.InitialToken{{}}}},
		{"open registration without a registrar is refused", handler.Config{RegistrationOpen: true}},
		{"an allowed scope that is not a scope token is refused", handler.Config{Registrar: mem, RegistrationOpen: true,
			RegistrationPolicy: register.Policy{AllowedScopes: []string{"openid", "a\"b"}}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Issuer, tt.cfg.Registry, tt.cfg.Keys = "https://id.example", reg, kr
			_, err := handler.New(tt.cfg)
			assert.Error(t, err)
		})
	}
}

func TestRegistrationScopeAndGrantPolicy(t *testing.T) {
	srv := newRegServer(t, regOptions{open: true})
	custom := newRegServer(t, regOptions{open: true, policy: register.Policy{AllowedScopes: []string{"read:projects"}}})
	const cc, public = `"grant_types":["client_credentials"]`, `"token_endpoint_auth_method":"none","redirect_uris":["http://127.0.0.1/cb"]`
	tests := []struct {
		name    string
		srv     *regServer
		token   string // "" registers anonymously
		body    string
		refused string // a word of the error_description; "" means 201
	}{
		{"an anonymous registration gets the default allowed scopes", srv, "", `{` + public + `,"scope":"openid profile email"}`, ""},
		{"an anonymous registration cannot request an existing API scope", srv, "", `{` + public + `,"scope":"openid read:projects"}`, `"read:projects"`},
		{"an anonymous registration learns nothing of which scopes exist", srv, "", `{` + public + `,"scope":"admin:write"}`, "not allowed for anonymous registrations"},
		{"a token without a policy gets the allowed scopes", srv, initialToken2, `{` + cc + `,"scope":"openid"}`, ""},
		{"a token without a policy cannot request other scopes", srv, initialToken2, `{` + cc + `,"scope":"write:projects"}`, `"write:projects"`},
		{"a token with scopes=* may request any existing scope", srv, initialToken, `{` + cc + `,"scope":"read:projects write:projects openid"}`, ""},
		{"a token with scopes=* still cannot request a scope of other namespaces", srv, initialToken, `{` + cc + `,"scope":"admin:read"}`, `"admin:read"`},
		{"a token with a scope list may request those", srv, ciToken, `{` + cc + `,"scope":"read:projects"}`, ""},
		{"a token with a scope list replaces the allowed scopes", srv, ciToken, `{` + cc + `,"scope":"openid"}`, "not allowed for this initial access token"},
		{"a token with a grant list refuses other grant types", srv, ciToken, `{"grant_types":["authorization_code"],"redirect_uris":["https://a.example/cb"]}`, `"authorization_code"`},
		{"a token with a grant list refuses the default grant type", srv, ciToken, `{"redirect_uris":["https://a.example/cb"]}`, "not allowed with this initial access token"},
		{"the allowed scopes come from the policy", custom, "", `{` + public + `,"scope":"read:projects"}`, ""},
		{"scopes outside the policy's allowed scopes are refused", custom, "", `{` + public + `,"scope":"openid"}`, `"openid"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := tt.srv.call(t, http.MethodPost, oauth2.RegistrationPath, tt.token, jsonType, tt.body)
			if tt.refused == "" {
				require.Equal(t, http.StatusCreated, res.status, res.raw)
				c, ok := tt.srv.registry.Snapshot().Client(str(res.body, "client_id"))
				require.True(t, ok)
				assert.False(t, c.Introspection, "registration never declares a resource server")
				return
			}
			assertMetadataRefused(t, res, tt.refused)
		})
	}

	t.Run("an anonymously registered client cannot widen its scopes by an update", func(t *testing.T) {
		res := srv.call(t, http.MethodPost, oauth2.RegistrationPath, "", jsonType, `{`+public+`,"scope":"openid"}`)
		require.Equal(t, http.StatusCreated, res.status, res.raw)
		id, tok := str(res.body, "client_id"), str(res.body, "registration_access_token")
		res = srv.call(t, http.MethodPut, oauth2.RegistrationPath+"/"+id, tok, jsonType, `{"client_id":"`+id+`",`+public+`,"scope":"openid read:projects"}`)
		assertMetadataRefused(t, res, `"read:projects"`)
		res = srv.call(t, http.MethodPut, oauth2.RegistrationPath+"/"+id, tok, jsonType, `{"client_id":"`+id+`",`+public+`,"scope":"openid email","grant_types":["authorization_code","refresh_token"]}`)
		assert.Equal(t, http.StatusOK, res.status, "allowed scopes and refresh_token can be added: %s", res.raw)
	})
}

func TestRegistrationClientNames(t *testing.T) {
	srv := newRegServer(t, regOptions{open: true})
	srv.registry.PutClient(registry.Client{Source: "web/demo-web", Namespace: "web", ID: "demo-web", Type: registry.Public,
		DisplayName: "Demo web application", GrantTypes: []string{"authorization_code"}, RedirectURIs: []string{"https://demo.example/cb"}})
	const public = `"token_endpoint_auth_method":"none","redirect_uris":["http://127.0.0.1/cb"]`
	tests := []struct {
		name, clientName, refused string // refused: a word of the error_description; "" means 201
	}{
		{"another client's display name is refused", "Demo web application", "another client"},
		{"another client's display name in other case and spacing is refused", "  DEMO   web Application ", "another client"},
		{"another client's display name in full-width letters is refused", "Ｄｅｍｏ web application", "another client"},
		{"another client's display name with no-break spaces is refused", "Demo\u00a0web\u00a0application", "another client"},
		{"another client's client ID is refused", "Demo-Web", "another client"},
		{"a right-to-left override is refused", "Demo \u202enoitacilppa", "format (bidirectional"},
		{"a right-to-left mark is refused", "Demo\u200f app", "format (bidirectional"},
		{"an isolate is refused", "\u2066Demo\u2069", "format (bidirectional"},
		{"a zero-width space is refused", "Demo\u200b web application", "format (bidirectional"},
		{"a line separator is refused", "Demo\u2028app", "line separators"},
		{"a variation selector after a name is refused", "Demo web application\ufe0f", "invisible"},
		{"a supplementary variation selector is refused", "Demo web application\U000e0100", "invisible"},
		{"a combining grapheme joiner is refused", "Demo web application\u034f", "invisible"},
		{"a Hangul filler is refused", "Demo web application\u3164", "invisible"},
		{"a Hangul choseong filler is refused", "Demo web application\u115f", "invisible"},
		{"a half-width Hangul filler is refused", "Demo web application\uffa0", "invisible"},
		{"a Braille blank is refused", "Demo web application\u2800", "invisible"},
		{"a name of its own is accepted", "Demo web application 2", ""},
		{"letters of any script are accepted", "Démo 名前", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, err := json.Marshal(tt.clientName)
			require.NoError(t, err)
			res := srv.call(t, http.MethodPost, oauth2.RegistrationPath, "", jsonType, `{`+public+`,"client_name":`+string(body)+`}`)
			if tt.refused == "" {
				require.Equal(t, http.StatusCreated, res.status, res.raw)
				return
			}
			assertMetadataRefused(t, res, tt.refused)
		})
	}

	t.Run("the name registered first is taken; an update keeps its own name but cannot take another", func(t *testing.T) {
		res := srv.call(t, http.MethodPost, oauth2.RegistrationPath, "", jsonType, `{`+public+`,"client_name":" Photo printer "}`)
		require.Equal(t, http.StatusCreated, res.status, res.raw)
		assert.Equal(t, "Photo printer", res.body["client_name"], "surrounding white space is trimmed")
		id, tok := str(res.body, "client_id"), str(res.body, "registration_access_token")
		again := srv.call(t, http.MethodPost, oauth2.RegistrationPath, "", jsonType, `{`+public+`,"client_name":"photo printer"}`)
		assert.Equal(t, http.StatusBadRequest, again.status, again.raw)

		res = srv.call(t, http.MethodPut, oauth2.RegistrationPath+"/"+id, tok, jsonType, `{"client_id":"`+id+`",`+public+`,"client_name":"Photo Printer"}`)
		assert.Equal(t, http.StatusOK, res.status, res.raw)
		res = srv.call(t, http.MethodPut, oauth2.RegistrationPath+"/"+id, tok, jsonType, `{"client_id":"`+id+`",`+public+`,"client_name":"Demo web application"}`)
		assertMetadataRefused(t, res, "another client")
	})
}

func TestRegistrationIsRateLimitedPerAddress(t *testing.T) {
	// 10:59:00, a minute before the hour's window ends.
	clock := harness.NewClock(time.Date(2030, 1, 2, 10, 59, 0, 0, time.UTC))
	aud := &auditEvents{}
	srv := newRegServer(t, regOptions{
		open: true, store: memory.New(memory.WithClock(clock.Now)), now: clock.Now, ipHeader: "X-Real-IP", audit: aud,
		policy: register.Policy{RateLimit: register.RateLimit{Anonymous: 2, InitialToken: 3, Window: time.Hour}},
	})
	const public = `{"token_endpoint_auth_method":"none","redirect_uris":["http://127.0.0.1/cb"]}`
	from := func(addr string) http.Header { return http.Header{"X-Real-Ip": {addr}} }
	post := func(t *testing.T, addr, bearer, body string) regResponse {
		t.Helper()
		return srv.callWith(t, from(addr), http.MethodPost, oauth2.RegistrationPath, bearer, jsonType, body)
	}

	require.Equal(t, http.StatusCreated, post(t, "192.0.2.1", "", public).status)
	require.Equal(t, http.StatusBadRequest, post(t, "192.0.2.1", "", `{"grant_types":["password"]}`).status, "a refused attempt counts too")

	t.Run("past the anonymous limit the address gets 429 with Retry-After and a JSON error", func(t *testing.T) {
		res := post(t, "192.0.2.1", "", public)
		require.Equal(t, http.StatusTooManyRequests, res.status, res.raw)
		assert.Equal(t, "60", res.header.Get("Retry-After"), "the seconds until the window ends")
		assert.Equal(t, "temporarily_unavailable", res.body["error"])
		assert.NotEmpty(t, res.body["error_description"])
		limited := aud.named(oauth2.AuditRateLimited)
		require.Len(t, limited, 1, "the refusal is audited")
		assert.Equal(t, "192.0.2.1", limited[0].ClientAddr, "the address from the trusted proxy's header")
		assert.Equal(t, "failure", limited[0].Outcome)
	})
	t.Run("another address still registers", func(t *testing.T) {
		assert.Equal(t, http.StatusCreated, post(t, "192.0.2.2", "", public).status)
	})
	t.Run("the addresses of one IPv6 /64 share a count, another /64 has its own", func(t *testing.T) {
		require.Equal(t, http.StatusCreated, post(t, "2001:db8:1:2::1", "", public).status)
		require.Equal(t, http.StatusCreated, post(t, "2001:db8:1:2::2", "", public).status)
		res := post(t, "2001:db8:1:2:ffff::3", "", public)
		assert.Equal(t, http.StatusTooManyRequests, res.status, "a third address of the /64: %s", res.raw)
		assert.Equal(t, http.StatusCreated, post(t, "2001:db8:1:3::1", "", public).status, "the next /64")
	})
	t.Run("initial-token holders from the same address have their own limit", func(t *testing.T) {
		for i := range 3 {
			res := post(t, "192.0.2.1", initialToken, public)
			require.Equal(t, http.StatusCreated, res.status, "registration %d: %s", i, res.raw)
		}
		res := post(t, "192.0.2.1", initialToken2, public)
		assert.Equal(t, http.StatusTooManyRequests, res.status, "the limit counts every initial access token: %s", res.raw)
		assert.Equal(t, "60", res.header.Get("Retry-After"))
	})
	t.Run("a wrong initial access token is refused before it is counted", func(t *testing.T) {
		res := post(t, "192.0.2.3", "wrong-token-0123456789abcdef", public)
		assert.Equal(t, http.StatusUnauthorized, res.status, res.raw)
	})
	t.Run("RFC 7592 management with the client's token is not counted by the registration rate limit", func(t *testing.T) {
		res := post(t, "192.0.2.4", "", public)
		require.Equal(t, http.StatusCreated, res.status, res.raw)
		path, tok := oauth2.RegistrationPath+"/"+str(res.body, "client_id"), str(res.body, "registration_access_token")
		for range 3 {
			assert.Equal(t, http.StatusOK, srv.callWith(t, from("192.0.2.4"), http.MethodGet, path, tok, "", "").status)
		}
	})
	t.Run("the next window admits the address again", func(t *testing.T) {
		clock.Advance(time.Minute)
		assert.Equal(t, http.StatusCreated, post(t, "192.0.2.1", "", public).status)
		assert.Equal(t, http.StatusCreated, post(t, "192.0.2.1", initialToken, public).status)
	})
	t.Run("a rate limit without a store is refused", func(t *testing.T) {
		kr, err := regKeyring()
		require.NoError(t, err)
		reg := registry.New()
		mem, err := registration.NewMemory(reg, registration.MemoryOptions{Namespace: regNamespace})
		require.NoError(t, err)
		_, err = handler.New(handler.Config{Issuer: "https://id.example", Registry: reg, Keys: kr, Registrar: mem, RegistrationOpen: true,
			RegistrationPolicy: register.Policy{RateLimit: register.RateLimit{Anonymous: 1}}})
		assert.Error(t, err)
	})
}

// countingRegistrar counts the registration access token checks that reach the registrar (in a
// cluster, each is a read from the API server).
type countingRegistrar struct {
	register.ClientRegistrar
	mu     sync.Mutex
	checks int
}

func (c *countingRegistrar) CheckRegistrationToken(ctx context.Context, clientID, token string) error {
	c.mu.Lock()
	c.checks++
	c.mu.Unlock()
	return c.ClientRegistrar.CheckRegistrationToken(ctx, clientID, token)
}

func (c *countingRegistrar) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.checks
}

func TestRegistrationTokenGuessingIsThrottledPerAddress(t *testing.T) {
	clock := harness.NewClock(time.Date(2030, 1, 2, 10, 0, 0, 0, time.UTC))
	aud := &auditEvents{}
	counting := &countingRegistrar{}
	srv := newRegServer(t, regOptions{
		store: memory.New(memory.WithClock(clock.Now)), now: clock.Now, ipHeader: "X-Real-IP", audit: aud,
		wrap: func(r register.ClientRegistrar) register.ClientRegistrar {
			counting.ClientRegistrar = r
			return counting
		},
	})
	const junk = "junk-token-0123456789abcdef0123456789"
	from := func(addr string) http.Header { return http.Header{"X-Real-Ip": {addr}} }
	client := srv.register(t, `{"grant_types":["client_credentials"]}`)
	path, regToken := oauth2.RegistrationPath+"/"+str(client, "client_id"), str(client, "registration_access_token")
	get := func(t *testing.T, addr, p, token string) regResponse {
		t.Helper()
		return srv.callWith(t, from(addr), http.MethodGet, p, token, "", "")
	}
	post := func(t *testing.T, addr, token string) regResponse {
		t.Helper()
		return srv.callWith(t, from(addr), http.MethodPost, oauth2.RegistrationPath, token, jsonType, `{"grant_types":["client_credentials"]}`)
	}
	requireTooMany := func(t *testing.T, res regResponse) {
		t.Helper()
		require.Equal(t, http.StatusTooManyRequests, res.status, res.raw)
		assert.Equal(t, "1", res.header.Get("Retry-After"), "the first block lasts a second")
		assert.Equal(t, "temporarily_unavailable", res.body["error"])
	}

	t.Run("junk registration access tokens from one address get 429 after five, even with the right token then", func(t *testing.T) {
		for i := range 5 {
			res := get(t, "192.0.2.66", path, junk)
			require.Equal(t, http.StatusUnauthorized, res.status, "failure %d: %s", i+1, res.raw)
			assert.Equal(t, "invalid_token", res.body["error"])
		}
		before := counting.count()
		requireTooMany(t, get(t, "192.0.2.66", path, junk))
		requireTooMany(t, get(t, "192.0.2.66", path, regToken))
		res := srv.callWith(t, from("192.0.2.66"), http.MethodDelete, path, regToken, "", "")
		require.Equal(t, http.StatusTooManyRequests, res.status, "DELETE is guarded too: %s", res.raw)
		assert.Equal(t, before, counting.count(), "a blocked address never reaches the registrar")
		limited := aud.named(oauth2.AuditRateLimited)
		require.NotEmpty(t, limited, "the refusals are audited")
		assert.Equal(t, "192.0.2.66", limited[0].ClientAddr)
		assert.Contains(t, limited[0].Reason, "registration access token")
	})
	t.Run("another address still reads and updates the client with its token", func(t *testing.T) {
		res := get(t, "192.0.2.7", path, regToken)
		require.Equal(t, http.StatusOK, res.status, res.raw)
		res = srv.callWith(t, from("192.0.2.7"), http.MethodPut, path, regToken, jsonType,
			`{"client_id":"`+str(client, "client_id")+`","grant_types":["client_credentials"],"client_name":"still mine"}`)
		assert.Equal(t, http.StatusOK, res.status, res.raw)
	})
	t.Run("the block ends, and the right token then works from the address again", func(t *testing.T) {
		clock.Advance(2 * time.Second)
		res := get(t, "192.0.2.66", path, regToken)
		assert.Equal(t, http.StatusOK, res.status, res.raw)
	})
	t.Run("junk tokens for many client IDs from one address get 429 after twenty", func(t *testing.T) {
		for i := range 20 {
			res := get(t, "192.0.2.77", fmt.Sprintf("%s/dyn-guess%05d", oauth2.RegistrationPath, i), junk)
			require.Equal(t, http.StatusUnauthorized, res.status, "failure %d: %s", i+1, res.raw)
		}
		requireTooMany(t, get(t, "192.0.2.77", oauth2.RegistrationPath+"/dyn-guess99999", junk))
		requireTooMany(t, get(t, "192.0.2.77", path, regToken))
		assert.Equal(t, http.StatusOK, get(t, "192.0.2.78", path, regToken).status, "another address is not blocked")
	})
	t.Run("initial access token guesses from one address get 429 after five, even with a right token then", func(t *testing.T) {
		for i := range 5 {
			res := post(t, "198.51.100.1", fmt.Sprintf("guess-%02d-0123456789abcdef", i))
			require.Equal(t, http.StatusUnauthorized, res.status, "guess %d: %s", i+1, res.raw)
			assert.Equal(t, "invalid_token", res.body["error"])
		}
		requireTooMany(t, post(t, "198.51.100.1", "guess-99-0123456789abcdef"))
		requireTooMany(t, post(t, "198.51.100.1", initialToken))
		limited := aud.named(oauth2.AuditRateLimited)
		assert.Contains(t, limited[len(limited)-1].Reason, "initial access token")
	})
	t.Run("another address still registers with an initial access token", func(t *testing.T) {
		res := post(t, "198.51.100.2", initialToken)
		assert.Equal(t, http.StatusCreated, res.status, res.raw)
	})
}

// unreachableThrottles is a memory store whose throttles cannot be reached, as when Redis is
// down.
type unreachableThrottles struct{ *memory.Store }

func (unreachableThrottles) Throttle(context.Context, []store.ThrottleKey, store.Outcome) (store.ThrottleResult, error) {
	return store.ThrottleResult{}, store.ErrUnavailable
}

func TestRegistrationTokensAreNotThrottledWhenTheStoreIsUnreachable(t *testing.T) {
	srv := newRegServer(t, regOptions{store: unreachableThrottles{memory.New()}})
	client := srv.register(t, `{"grant_types":["client_credentials"]}`)
	path, regToken := oauth2.RegistrationPath+"/"+str(client, "client_id"), str(client, "registration_access_token")
	for i := range 7 {
		res := srv.call(t, http.MethodPost, oauth2.RegistrationPath, "guess-0123456789abcdef", jsonType, `{"grant_types":["client_credentials"]}`)
		require.Equal(t, http.StatusUnauthorized, res.status, "guess %d is refused as a wrong token, not 429 or 500: %s", i+1, res.raw)
		res = srv.call(t, http.MethodGet, path, "junk-0123456789abcdef", "", "")
		require.Equal(t, http.StatusUnauthorized, res.status, "junk %d: %s", i+1, res.raw)
	}
	assert.Equal(t, http.StatusOK, srv.call(t, http.MethodGet, path, regToken, "", "").status, "the right registration access token works")
	srv.register(t, `{"grant_types":["client_credentials"]}`) // the right initial access token works
}

// failingRegistrar is a registrar whose Register and Get fail with err once it is set.
type failingRegistrar struct {
	register.ClientRegistrar
	err error
}

func (f *failingRegistrar) Register(ctx context.Context, m register.ClientMetadata, by register.Registrant) (register.RegisteredClient, error) {
	if f.err != nil {
		return register.RegisteredClient{}, f.err
	}
	return f.ClientRegistrar.Register(ctx, m, by)
}

func (f *failingRegistrar) Get(ctx context.Context, clientID string) (register.RegisteredClient, error) {
	if f.err != nil {
		return register.RegisteredClient{}, f.err
	}
	return f.ClientRegistrar.Get(ctx, clientID)
}

func TestRegistrarFailuresAreTemporarilyUnavailableOrServerError(t *testing.T) {
	failing := &failingRegistrar{}
	srv := newRegServer(t, regOptions{wrap: func(r register.ClientRegistrar) register.ClientRegistrar { failing.ClientRegistrar = r; return failing }})
	client := srv.register(t, `{"grant_types":["client_credentials"]}`)
	path, regToken := oauth2.RegistrationPath+"/"+str(client, "client_id"), str(client, "registration_access_token")
	tests := []struct {
		name   string
		err    error
		status int
		code   string
	}{
		{"a registrar whose backend throttles is 503 temporarily_unavailable",
			fmt.Errorf("registration: create OAuthClient: %w: %w", register.ErrRegistrarUnavailable, errors.New("too many requests")), 503, "temporarily_unavailable"},
		{"a registrar that ran out of time is 503 temporarily_unavailable",
			fmt.Errorf("registration: get OAuthClient: %w", context.DeadlineExceeded), 503, "temporarily_unavailable"},
		{"a registrar whose caller went away is 503 temporarily_unavailable",
			fmt.Errorf("registration: get OAuthClient: %w", context.Canceled), 503, "temporarily_unavailable"},
		{"any other registrar error is 500 server_error", errors.New("registration: disk on fire"), 500, "server_error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			failing.err = tt.err
			t.Cleanup(func() { failing.err = nil })
			for _, res := range []regResponse{
				srv.call(t, http.MethodPost, oauth2.RegistrationPath, initialToken, jsonType, `{"grant_types":["client_credentials"]}`),
				srv.call(t, http.MethodGet, path, regToken, "", ""),
			} {
				assert.Equal(t, tt.status, res.status, res.raw)
				assert.Equal(t, tt.code, res.body["error"])
				assert.NotContains(t, res.raw, "disk on fire", "the cause is never sent")
			}
		})
	}
	t.Run("a request that ended before the memory registrar ran is 503 temporarily_unavailable", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		req := httptest.NewRequestWithContext(ctx, http.MethodPost, srv.URL+oauth2.RegistrationPath, strings.NewReader(`{"grant_types":["client_credentials"]}`))
		req.Header.Set("Content-Type", jsonType)
		req.Header.Set("Authorization", "Bearer "+initialToken)
		rec := httptest.NewRecorder()
		before := len(slices.Collect(srv.registry.Snapshot().Clients()))
		srv.handler.ServeHTTP(rec, req)
		assert.Equal(t, http.StatusServiceUnavailable, rec.Code, rec.Body.String())
		assert.Contains(t, rec.Body.String(), `"temporarily_unavailable"`)
		assert.Len(t, slices.Collect(srv.registry.Snapshot().Clients()), before, "nothing was registered")
	})
}

func TestAConfidentialClientRegistersTokenExchange(t *testing.T) {
	srv := newRegServer(t, regOptions{store: memory.New()})
	got := srv.register(t, `{"grant_types":["urn:ietf:params:oauth:grant-type:token-exchange"]}`)
	assert.Equal(t, []any{oauth2.GrantTokenExchange}, got["grant_types"])
	assert.NotEmpty(t, got["client_secret"])
}

func TestARegisteredPublicCLIStartsADeviceAuthorization(t *testing.T) {
	srv := newRegServer(t, regOptions{store: memory.New()})
	got := srv.register(t, `{"token_endpoint_auth_method":"none","grant_types":["urn:ietf:params:oauth:grant-type:device_code","refresh_token"],"scope":"openid"}`)
	assert.Equal(t, []any{oauth2.GrantDeviceCode, "refresh_token"}, got["grant_types"])
	assert.Equal(t, []any{}, got["response_types"], "no code flow, no response type")
	res, err := srv.Client().PostForm(srv.URL+oauth2.DeviceAuthorizationPath, url.Values{"client_id": {str(got, "client_id")}, "scope": {"openid"}})
	require.NoError(t, err)
	defer res.Body.Close()
	var body map[string]any
	require.NoError(t, json.NewDecoder(res.Body).Decode(&body))
	require.Equal(t, http.StatusOK, res.StatusCode, "%v", body)
	assert.NotEmpty(t, body["user_code"])
}
