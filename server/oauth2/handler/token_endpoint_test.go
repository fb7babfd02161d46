package handler

import (
	"net/http"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTokenEndpointRefusesBadRequests(t *testing.T) {
	srv := newTestServer(t)
	billing := basic(billingID, billingSecret)
	cc := "grant_type=client_credentials"
	tests := []struct {
		name      string
		req       request
		status    int
		err       string
		challenge bool
	}{
		{name: "a missing grant_type is invalid_request",
			req:    request{contentType: formType, authorization: billing, body: "scope=read"},
			status: 400, err: "invalid_request"},
		{name: "an empty grant_type counts as missing",
			req:    request{contentType: formType, authorization: billing, body: "grant_type="},
			status: 400, err: "invalid_request"},
		{name: "an unknown grant_type is unsupported_grant_type",
			req:    request{contentType: formType, authorization: billing, body: "grant_type=urn:example:magic"},
			status: 400, err: "unsupported_grant_type"},
		{name: "a grant type not built yet is unsupported_grant_type",
			req:    request{contentType: formType, body: "grant_type=password&username=a&password=b&client_id=" + billingID},
			status: 400, err: "unsupported_grant_type"},
		{name: "a duplicated grant_type is invalid_request",
			req:    request{contentType: formType, authorization: billing, body: cc + "&" + cc},
			status: 400, err: "invalid_request"},
		{name: "a duplicated scope is invalid_request",
			req:    request{contentType: formType, authorization: billing, body: cc + "&scope=read&scope=admin:read"},
			status: 400, err: "invalid_request"},
		{name: "a duplicated JSON key is invalid_request",
			req: request{contentType: "application/json",
				body: `{"grant_type":"client_credentials","client_id":"billing-service","client_id":"x","client_secret":"billing-secret"}`},
			status: 400, err: "invalid_request"},
		{name: "a text/plain body is invalid_request",
			req:    request{contentType: "text/plain", authorization: billing, body: cc},
			status: 400, err: "invalid_request"},
		{name: "a multipart body is invalid_request",
			req:    request{contentType: "multipart/form-data; boundary=x", authorization: billing, body: "--x--"},
			status: 400, err: "invalid_request"},
		{name: "a missing Content-Type is invalid_request",
			req:    request{authorization: billing, body: cc},
			status: 400, err: "invalid_request"},
		{name: "a charset other than UTF-8 is invalid_request",
			req:    request{contentType: formType + "; charset=ISO-8859-1", authorization: billing, body: cc},
			status: 400, err: "invalid_request"},
		{name: "malformed JSON is invalid_request",
			req:    request{contentType: "application/json", authorization: billing, body: `{"grant_type":`},
			status: 400, err: "invalid_request"},
		{name: "a JSON array is invalid_request",
			req:    request{contentType: "application/json", authorization: billing, body: `["client_credentials"]`},
			status: 400, err: "invalid_request"},
		{name: "JSON after the object is invalid_request",
			req:    request{contentType: "application/json", authorization: billing, body: `{"grant_type":"client_credentials"}{}`},
			status: 400, err: "invalid_request"},
		{name: "a JSON number value is invalid_request",
			req:    request{contentType: "application/json", authorization: billing, body: `{"grant_type":"client_credentials","expires_in":5}`},
			status: 400, err: "invalid_request"},
		{name: "a nested JSON object is invalid_request",
			req:    request{contentType: "application/json", authorization: billing, body: `{"grant_type":{"type":"client_credentials"}}`},
			status: 400, err: "invalid_request"},
		{name: "a JSON null is invalid_request",
			req:    request{contentType: "application/json", authorization: billing, body: `{"grant_type":"client_credentials","scope":null}`},
			status: 400, err: "invalid_request"},
		{name: "a body over 64 KiB is invalid_request with 413",
			req:    request{contentType: formType, authorization: billing, body: cc + "&pad=" + strings.Repeat("a", 64<<10)},
			status: 413, err: "invalid_request"},
		{name: "a malformed percent escape is invalid_request",
			req:    request{contentType: formType, authorization: billing, body: cc + "&scope=%zz"},
			status: 400, err: "invalid_request"},
		{name: "a garbage Basic header is invalid_client with a challenge",
			req:    request{contentType: formType, authorization: "Basic !!!not-base64!!!", body: cc},
			status: 401, err: "invalid_client", challenge: true},
		{name: "Basic credentials without a colon are invalid_client with a challenge",
			req:    request{contentType: formType, authorization: "Basic YmlsbGluZy1zZXJ2aWNl", body: cc},
			status: 401, err: "invalid_client", challenge: true},
		{name: "another Authorization scheme is invalid_client with a challenge",
			req:    request{contentType: formType, authorization: "Bearer abc", body: cc},
			status: 401, err: "invalid_client", challenge: true},
		{name: "Basic and body credentials together are invalid_request",
			req:    request{contentType: formType, authorization: billing, body: cc + "&client_id=" + billingID + "&client_secret=" + billingSecret},
			status: 400, err: "invalid_request"},
		{name: "a body client_id that differs from Basic is invalid_request",
			req:    request{contentType: formType, authorization: billing, body: cc + "&client_id=other"},
			status: 400, err: "invalid_request"},
		{name: "no client credentials at all is invalid_client",
			req:    request{contentType: formType, body: cc},
			status: 400, err: "invalid_client"},
		{name: "an unknown client via Basic is invalid_client with 401 and a challenge",
			req:    request{contentType: formType, authorization: basic("nobody", "x"), body: cc},
			status: 401, err: "invalid_client", challenge: true},
		{name: "an unknown client in the body is invalid_client with 400",
			req:    request{contentType: formType, body: cc + "&client_id=nobody&client_secret=x"},
			status: 400, err: "invalid_client"},
		{name: "a wrong secret via Basic is invalid_client with 401 and a challenge",
			req:    request{contentType: formType, authorization: basic(billingID, "wrong"), body: cc},
			status: 401, err: "invalid_client", challenge: true},
		{name: "a wrong secret in JSON is invalid_client with 400",
			req:    request{contentType: "application/json", body: `{"grant_type":"client_credentials","client_id":"billing-service","client_secret":"wrong"}`},
			status: 400, err: "invalid_client"},
		{name: "a confidential client without a secret is invalid_client",
			req:    request{contentType: formType, body: cc + "&client_id=" + billingID},
			status: 400, err: "invalid_client"},
		{name: "a client_secret without client_id is invalid_request",
			req:    request{contentType: formType, body: cc + "&client_secret=" + billingSecret},
			status: 400, err: "invalid_request"},
		{name: "credentials in the query string are ignored",
			req:    request{path: oauth2.TokenPath + "?client_id=" + billingID + "&client_secret=" + billingSecret, contentType: formType, body: cc},
			status: 400, err: "invalid_client"},
		{name: "a client without the grant type is unauthorized_client",
			req:    request{contentType: formType, authorization: basic(noGrantID, commonSecret), body: cc},
			status: 400, err: "unauthorized_client"},
		{name: "a public client may not use client_credentials",
			req:    request{contentType: formType, body: cc + "&client_id=" + publicID},
			status: 400, err: "unauthorized_client"},
		{name: "a public client presenting a secret is invalid_client",
			req:    request{contentType: formType, body: cc + "&client_id=" + publicID + "&client_secret=x"},
			status: 400, err: "invalid_client"},
		{name: "a scope the client may not request is invalid_scope",
			req:    request{contentType: formType, authorization: billing, body: cc + "&scope=read"},
			status: 400, err: "invalid_scope"},
		{name: "an allowed scope that does not exist is invalid_scope",
			req:    request{contentType: formType, authorization: billing, body: cc + "&scope=read:projects+ghost"},
			status: 400, err: "invalid_scope"},
		{name: "a scope restricted to another namespace is invalid_scope",
			req:    request{contentType: formType, authorization: billing, body: cc + "&scope=other-ns-only"},
			status: 400, err: "invalid_scope"},
		{name: "GET on the token endpoint is 405",
			req:    request{method: http.MethodGet},
			status: 405, err: "invalid_request"},
		{name: "PUT on an alias of the token endpoint is 405",
			req:    request{method: http.MethodPut, path: "/oauth/token", contentType: formType, authorization: billing, body: cc},
			status: 405, err: "invalid_request"},
		{name: "POST on the JWKS is 405",
			req:    request{path: oauth2.JWKSPath, contentType: formType, body: cc},
			status: 405, err: "invalid_request"},
		{name: "an unknown path is 404",
			req:    request{path: "/oauth2/nothing", contentType: formType, body: cc},
			status: 404, err: "invalid_request"},
		{name: "an unclean path is 404, not an HTML redirect",
			req:    request{method: http.MethodGet, path: "/oauth2/../.well-known//jwks.json"},
			status: 404, err: "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := do(t, srv, tt.req)
			assert.Equal(t, tt.status, res.status)
			assert.Equal(t, tt.err, res.body["error"])
			assert.NotEmpty(t, res.body["error_description"])
			assert.Len(t, res.body, 2, "only error and error_description")
			assert.Equal(t, "no-store", res.header.Get("Cache-Control"))
			assert.Equal(t, "no-cache", res.header.Get("Pragma"))
			if tt.challenge {
				assert.Equal(t, `Basic realm="latchkey", charset="UTF-8"`, res.header.Get("WWW-Authenticate"))
			} else {
				assert.Empty(t, res.header.Get("WWW-Authenticate"))
			}
			if tt.status == 405 {
				assert.NotEmpty(t, res.header.Get("Allow"))
			}
		})
	}
}

func TestTokenEndpointIssuesTokens(t *testing.T) {
	srv := newTestServer(t)
	jwks := fetchJWKS(t, srv)
	tests := []struct {
		name      string
		req       request
		clientID  string
		alg       jose.SignatureAlgorithm
		aud       any
		scope     string // "" means no scope member and claim
		expiresIn float64
	}{
		{name: "client_secret_basic with form-urlencoded special characters works",
			req:      request{contentType: formType, authorization: basic(specialID, specialSecret), body: "grant_type=client_credentials&scope=read"},
			clientID: specialID, alg: jose.RS256, aud: specialID, scope: "read", expiresIn: 3600},
		{name: "client_secret_post in a form body works",
			req: request{path: "/token", contentType: formType,
				body: "grant_type=client_credentials&client_id=" + billingID + "&client_secret=" + billingSecret + "&scope=admin:read"},
			clientID: billingID, alg: jose.RS256, aud: "https://api.example.com", scope: "admin:read", expiresIn: 3600},
		{name: "client_secret_post in a JSON body works (the AuthMaster shape)",
			req: request{contentType: "application/json; charset=utf-8",
				body: `{"grant_type":"client_credentials","client_id":"billing-service","client_secret":"billing-secret","scope":"read:projects write:projects"}`},
			clientID: billingID, alg: jose.RS256, aud: "https://api.example.com", scope: "read:projects write:projects", expiresIn: 3600},
		{name: "a repeated scope is granted once and a namespace-restricted scope of the client's namespace is allowed",
			req:      request{contentType: formType, authorization: basic(billingID, billingSecret), body: "grant_type=client_credentials&scope=payments-only++payments-only"},
			clientID: billingID, alg: jose.RS256, aud: "https://api.example.com", scope: "payments-only", expiresIn: 3600},
		{name: "no scope gets the allowed scopes marked Default",
			req:      request{contentType: formType, authorization: basic(markedID, commonSecret), body: "grant_type=client_credentials"},
			clientID: markedID, alg: jose.RS256, aud: markedID, scope: "read:projects", expiresIn: 3600},
		{name: "no scope gets the client's DefaultScopes that pass the policy",
			req:      request{contentType: formType, authorization: basic(defaultsID, commonSecret), body: "grant_type=client_credentials"},
			clientID: defaultsID, alg: jose.RS256, aud: defaultsID, scope: "admin:read", expiresIn: 3600},
		{name: "no scope and no defaults grants an empty scope",
			req:      request{contentType: formType, authorization: basic(esID, commonSecret), body: "grant_type=client_credentials"},
			clientID: esID, alg: jose.ES256, aud: esID, expiresIn: 600},
		{name: "an ES256 client gets an ES256 token with its lifetime",
			req:      request{path: "/oauth/token", contentType: formType, authorization: basic(esID, commonSecret), body: "grant_type=client_credentials&scope=read"},
			clientID: esID, alg: jose.ES256, aud: esID, scope: "read", expiresIn: 600},
		{name: "an EdDSA client gets an EdDSA token with several audiences",
			req:      request{contentType: formType, authorization: basic(edID, commonSecret), body: "grant_type=client_credentials&scope=read"},
			clientID: edID, alg: jose.EdDSA, aud: []any{"https://a.example", "https://b.example"}, scope: "read", expiresIn: 3600},
		{name: "a Basic header may come with the same client_id in the body",
			req:      request{contentType: formType, authorization: basic(edID, commonSecret), body: "grant_type=client_credentials&client_id=" + edID + "&unknown=1&unknown=2"},
			clientID: edID, alg: jose.EdDSA, aud: []any{"https://a.example", "https://b.example"}, expiresIn: 3600},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := do(t, srv, tt.req)
			require.Equal(t, http.StatusOK, res.status, "body %v", res.body)
			assert.Equal(t, "no-store", res.header.Get("Cache-Control"))
			assert.Equal(t, "no-cache", res.header.Get("Pragma"))
			assert.Equal(t, "Bearer", res.body["token_type"])
			assert.InDelta(t, tt.expiresIn, res.body["expires_in"], 0)
			assert.NotContains(t, res.body, "refresh_token")
			wantMembers := 3
			if tt.scope != "" {
				assert.Equal(t, tt.scope, res.body["scope"])
				wantMembers++
			}
			assert.Len(t, res.body, wantMembers)

			tok, _ := res.body["access_token"].(string)
			v := verifyToken(t, jwks, tok)
			assert.Equal(t, string(tt.alg), v.header.Algorithm)
			assert.Equal(t, "at+jwt", v.header.ExtraHeaders[jose.HeaderType])
			assert.NotEmpty(t, v.header.KeyID)
			c := v.claims
			assert.Equal(t, testIssuer, c["iss"])
			assert.Equal(t, tt.clientID, c["sub"])
			assert.Equal(t, tt.clientID, c["client_id"])
			assert.Equal(t, tt.aud, c["aud"])
			assert.InDelta(t, testNow.Unix(), c["iat"], 0)
			assert.InDelta(t, float64(testNow.Unix())+tt.expiresIn, c["exp"], 0)
			assert.Len(t, c["jti"], 22, "128 bits in base64url")
			wantClaims := 7
			if tt.scope != "" {
				assert.Equal(t, tt.scope, c["scope"])
				wantClaims++
			}
			assert.Len(t, c, wantClaims, "claims %v", c)
		})
	}
}
