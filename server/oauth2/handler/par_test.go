package handler

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	xoauth2 "golang.org/x/oauth2"

	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/oauth2/browser"
	"github.com/latchkey-dev/latchkey/server/registry"
)

// pushForm is a valid pushed request of the SPA (a public client) with the pairs of kv
// replacing or adding parameters.
func pushForm(challenge string, kv ...string) url.Values {
	v := url.Values{
		"response_type": {"code"}, "client_id": {spaClientID}, "redirect_uri": {appRedirect},
		"scope": {"openid profile read:projects"}, "state": {"st-par"}, "nonce": {"n-par"},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"},
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			v.Del(kv[i])
		} else {
			v.Set(kv[i], kv[i+1])
		}
	}
	return v
}

// push posts a pushed authorization request.
func (env *flowEnv) push(t *testing.T, body, authorization string) response {
	t.Helper()
	return do(t, env.srv, request{path: oauth2.PushedAuthorizationRequestPath, contentType: formType, body: body, authorization: authorization})
}

// pushedURI pushes form and returns the request_uri.
func (env *flowEnv) pushedURI(t *testing.T, form url.Values, authorization string) string {
	t.Helper()
	res := env.push(t, form.Encode(), authorization)
	require.Equal(t, http.StatusCreated, res.status, "%v", res.body)
	uri, _ := res.body["request_uri"].(string)
	require.True(t, strings.HasPrefix(uri, browser.RequestURIPrefix), uri)
	assert.EqualValues(t, 60, res.body["expires_in"])
	assert.Equal(t, "no-store", res.header.Get("Cache-Control"))
	return uri
}

func TestAPushedRequestRunsTheCodeFlowWithPKCE(t *testing.T) {
	env := newFlowEnv(t)
	verifier, challenge := pkcePair()
	uri := env.pushedURI(t, pushForm(challenge), "")

	b := env.browser(t)
	// The other parameters of the authorization request are ignored (RFC 9126 4).
	p := b.Get(env.authorizeURL("client_id", spaClientID, "request_uri", uri, "state", "ignored", "scope", "write:projects"))
	require.True(t, p.IsLogin(), "%d %s", p.Status, p.Body)
	p = b.Login(p, ownerName, ownerPassword)
	if p.IsConsent() {
		assert.Contains(t, p.Body, readProjectDesc)
		p = b.Decide(p, "allow")
	}
	cb := p.Callback(t)
	require.Empty(t, cb.Error, cb.ErrorDescription)
	assert.Equal(t, "st-par", cb.State)

	cfg := env.oauth2Config(spaClientID, "")
	tok, err := cfg.Exchange(env.clientContext(context.Background()), cb.Code, xoauth2.VerifierOption(verifier))
	require.NoError(t, err)
	assert.Equal(t, "openid profile read:projects", tok.Extra("scope"))

	t.Run("the request_uri is used once", func(t *testing.T) {
		p := env.browser(t).Get(env.authorizeURL("client_id", spaClientID, "request_uri", uri))
		assert.Equal(t, http.StatusBadRequest, p.Status)
		assert.Nil(t, p.Location, "never redirected")
		assert.Contains(t, p.Body, "request_uri")
	})
}

func TestAConfidentialClientPushesWithBasicAuthentication(t *testing.T) {
	env := newFlowEnv(t)
	_, challenge := pkcePair()
	form := pushForm(challenge, "client_id", "")
	uri := env.pushedURI(t, form, basic(skipID, webSecret))
	p := env.browser(t).Get(env.authorizeURL("client_id", skipID, "request_uri", uri))
	assert.True(t, p.IsLogin(), "%d %s", p.Status, p.Body)
}

func TestThePushedRequestEndpointRefusesBadRequestsWithJSON(t *testing.T) {
	env := newFlowEnv(t)
	_, challenge := pkcePair()
	for _, tc := range []struct {
		name, contentType, body, authorization string
		status                                 int
		code                                   string
	}{
		{name: "a request_uri inside a pushed request is invalid_request",
			body: pushForm(challenge, "request_uri", browser.RequestURIPrefix+"x").Encode(), status: 400, code: "invalid_request"},
		{name: "a duplicated parameter is invalid_request",
			body: pushForm(challenge).Encode() + "&state=again", status: 400, code: "invalid_request"},
		{name: "a duplicated client_id is invalid_request",
			body: pushForm(challenge).Encode() + "&client_id=" + spaClientID, status: 400, code: "invalid_request"},
		{name: "a JSON body is invalid_request", contentType: "application/json",
			body: `{"client_id":"spa"}`, status: 400, code: "invalid_request"},
		{name: "an oversized body is refused with 413",
			body: pushForm(challenge, "state", strings.Repeat("s", 2<<20)).Encode(), status: 413, code: "invalid_request"},
		{name: "a missing code_challenge where the client needs PKCE is invalid_request",
			body: pushForm("", "code_challenge", "", "code_challenge_method", "").Encode(), status: 400, code: "invalid_request"},
		{name: "an unregistered redirect_uri is invalid_request",
			body: pushForm(challenge, "redirect_uri", "https://evil.example/cb").Encode(), status: 400, code: "invalid_request"},
		{name: "an unsupported response_type is refused",
			body: pushForm(challenge, "response_type", "token").Encode(), status: 400, code: "unsupported_response_type"},
		{name: "a scope the client may not ask for is invalid_scope",
			body: pushForm(challenge, "scope", "admin:everything").Encode(), status: 400, code: "invalid_scope"},
		{name: "an unknown client is invalid_client (400 without an Authorization header)",
			body: pushForm(challenge, "client_id", "nobody").Encode(), status: 400, code: "invalid_client"},
		{name: "a wrong secret is invalid_client",
			body: pushForm(challenge, "client_id", "").Encode(), authorization: basic(skipID, "wrong"), status: 401, code: "invalid_client"},
		{name: "a client_id other than the authenticated client is invalid_request",
			body: pushForm(challenge, "client_id", spaClientID).Encode(), authorization: basic(skipID, webSecret), status: 400, code: "invalid_request"},
		{name: "a client without the authorization_code grant is unauthorized_client",
			body: pushForm(challenge, "client_id", noCodeGrantID).Encode(), status: 400, code: "unauthorized_client"},
		{name: "a grant_type is invalid_request",
			body: pushForm(challenge, "grant_type", "authorization_code").Encode(), status: 400, code: "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ct := tc.contentType
			if ct == "" {
				ct = formType
			}
			res := do(t, env.srv, request{path: oauth2.PushedAuthorizationRequestPath, contentType: ct, body: tc.body, authorization: tc.authorization})
			assert.Equal(t, tc.status, res.status, "%v", res.body)
			assert.Equal(t, tc.code, res.body["error"], "%v", res.body)
		})
	}
	t.Run("GET is 405 with JSON", func(t *testing.T) {
		res := do(t, env.srv, request{method: http.MethodGet, path: oauth2.PushedAuthorizationRequestPath})
		assert.Equal(t, http.StatusMethodNotAllowed, res.status)
	})
}

func TestARequestURIIsRefusedToAnotherClientAndWhenExpired(t *testing.T) {
	env := newFlowEnv(t)
	_, challenge := pkcePair()
	for _, tc := range []struct {
		name     string
		clientID string
		wait     time.Duration
		uri      func(pushed string) string
	}{
		{name: "another client cannot use a pushed request", clientID: alwaysID},
		{name: "an expired request_uri is refused", clientID: spaClientID, wait: 61 * time.Second},
		{name: "an unknown request_uri is refused", clientID: spaClientID,
			uri: func(string) string { return browser.RequestURIPrefix + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" }},
		{name: "a request_uri of another scheme is refused", clientID: spaClientID,
			uri: func(pushed string) string {
				return "https://evil.example/" + strings.TrimPrefix(pushed, browser.RequestURIPrefix)
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			uri := env.pushedURI(t, pushForm(challenge), "")
			env.clock.Advance(tc.wait)
			use := uri
			if tc.uri != nil {
				use = tc.uri(uri)
			}
			p := env.browser(t).Get(env.authorizeURL("client_id", tc.clientID, "request_uri", use))
			assert.Equal(t, http.StatusBadRequest, p.Status)
			assert.Nil(t, p.Location, "never redirected")
		})
	}
	t.Run("another client's attempt does not use up the request_uri", func(t *testing.T) {
		uri := env.pushedURI(t, pushForm(challenge), "")
		p := env.browser(t).Get(env.authorizeURL("client_id", alwaysID, "request_uri", uri))
		assert.Equal(t, http.StatusBadRequest, p.Status)
		p = env.browser(t).Get(env.authorizeURL("client_id", spaClientID, "request_uri", uri))
		assert.True(t, p.IsLogin(), "%d %s", p.Status, p.Body)
	})
}

func TestRequiredPushedRequestsRefuseOtherAuthorizationRequests(t *testing.T) {
	t.Run("the server-wide flag refuses a request without request_uri", func(t *testing.T) {
		env := newFlowEnv(t, func(c *Config) { c.RequirePushedAuthorizationRequests = true })
		_, challenge := pkcePair()
		cb := env.browser(t).Get(env.spaRequest(challenge)).Callback(t)
		assert.Equal(t, "invalid_request", cb.Error)
		assert.Equal(t, "st-123", cb.State)
		uri := env.pushedURI(t, pushForm(challenge), "")
		p := env.browser(t).Get(env.authorizeURL("client_id", spaClientID, "request_uri", uri))
		assert.True(t, p.IsLogin(), "%d %s", p.Status, p.Body)
	})
	t.Run("a client that requires pushed requests is refused without request_uri", func(t *testing.T) {
		env := newFlowEnv(t)
		c, ok := env.reg.Snapshot().Client(spaClientID)
		require.True(t, ok)
		cc := *c
		cc.RequirePushedAuthorizationRequests = true
		env.reg.PutClient(cc)
		_, challenge := pkcePair()
		cb := env.browser(t).Get(env.spaRequest(challenge)).Callback(t)
		assert.Equal(t, "invalid_request", cb.Error)
		other, _ := env.reg.Snapshot().Client(alwaysID)
		assert.False(t, other.RequirePushedAuthorizationRequests)
	})
}

func TestThePushedRequestEndpointAppliesTheClientRateLimit(t *testing.T) {
	env := newFlowEnv(t, func(c *Config) { c.ClientRateLimit = registry.RateLimit{PerMinute: 1, Burst: 2} })
	_, challenge := pkcePair()
	body := pushForm(challenge).Encode()
	for range 2 {
		assert.Equal(t, http.StatusCreated, env.push(t, body, "").status)
	}
	res := env.push(t, body, "")
	assert.Equal(t, http.StatusTooManyRequests, res.status)
	assert.NotEmpty(t, res.header.Get("Retry-After"))
}

func TestAPushedRequestIsAuditedWithoutItsRequestURI(t *testing.T) {
	aud := &recordingAuditor{}
	env := newFlowEnv(t, func(c *Config) { c.Audit = aud })
	_, challenge := pkcePair()
	uri := env.pushedURI(t, pushForm(challenge), "")
	aud.mu.Lock()
	defer aud.mu.Unlock()
	var pushed []oauth2.AuditEvent
	for _, e := range aud.events {
		if e.Event == oauth2.AuditAuthorizationRequestPushed {
			pushed = append(pushed, e)
		}
	}
	require.Len(t, pushed, 1)
	assert.Equal(t, spaClientID, pushed[0].ClientID)
	assert.Equal(t, []string{"openid", "profile", "read:projects"}, pushed[0].Scopes)
	id := strings.TrimPrefix(uri, browser.RequestURIPrefix)
	assert.NotContains(t, fmt.Sprintf("%+v", pushed[0]), id, "the request_uri is a bearer secret")
}

func TestAPushedRequestKeepsItsResourceIndicators(t *testing.T) {
	env := newFlowEnv(t)
	c, ok := env.reg.Snapshot().Client(spaClientID)
	require.True(t, ok)
	spa := *c
	spa.Audiences = []string{apiA, apiB}
	env.reg.PutClient(spa)

	t.Run("a resource the client may not reach is refused at the push", func(t *testing.T) {
		_, challenge := pkcePair()
		res := env.push(t, pushForm(challenge, "resource", "https://evil.example/").Encode(), "")
		assert.Equal(t, http.StatusBadRequest, res.status)
		assert.Equal(t, "invalid_target", res.body["error"])
	})
	t.Run("the pushed resource becomes the token's audience", func(t *testing.T) {
		verifier, challenge := pkcePair()
		uri := env.pushedURI(t, pushForm(challenge, "resource", apiB), "")
		b := env.browser(t)
		p := b.Login(b.Get(env.authorizeURL("client_id", spaClientID, "request_uri", uri, "resource", apiA)), ownerName, ownerPassword)
		if p.IsConsent() {
			p = b.Decide(p, "allow")
		}
		cb := p.Callback(t)
		require.Empty(t, cb.Error, cb.ErrorDescription)
		status, body := env.exchangeForm(t, "grant_type", "authorization_code", "code", cb.Code,
			"client_id", spaClientID, "redirect_uri", appRedirect, "code_verifier", verifier)
		require.Equal(t, http.StatusOK, status, "%v", body)
		assert.Equal(t, apiB, signedClaims(t, str(body["access_token"]))["aud"], "the pushed resource, not the URL's")
	})
}
