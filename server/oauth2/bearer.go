package oauth2

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/latchkey-dev/latchkey/server/keys"
	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/store"
)

// Paths of the endpoints that take tokens back: userinfo, revocation and introspection.
const (
	UserinfoPath      = "/oauth2/userinfo"
	RevocationPath    = "/oauth2/revoke"
	IntrospectionPath = "/oauth2/introspect"
)

// revocationPathAliases are the revocation paths, with the seeds' /oauth/revoke.
func revocationPathAliases() []string { return []string{RevocationPath, "/oauth/revoke"} }

// maxTokenBytes bounds a presented token; ours are well under 2 KiB.
const maxTokenBytes = 8 << 10

// verifiedAlgorithms is the explicit allow-list of JWS algorithms of presented tokens.
func verifiedAlgorithms() []jose.SignatureAlgorithm {
	return []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA}
}

// errBadToken: the token is not an access token this server issued and still valid
// (malformed, wrong signature, type or issuer, expired).
var errBadToken = errors.New("access token is invalid")

// accessClaims are the claims of an access token (token.AccessTokenClaims), as verified.
type accessClaims struct {
	Issuer    string           `json:"iss"`
	Subject   string           `json:"sub"`
	Audience  jwt.Audience     `json:"aud"`
	Expiry    *jwt.NumericDate `json:"exp"`
	NotBefore *jwt.NumericDate `json:"nbf"`
	IssuedAt  *jwt.NumericDate `json:"iat"`
	ID        string           `json:"jti"`
	ClientID  string           `json:"client_id"`
	Scope     string           `json:"scope"`
	// SessionID is the refresh token family (grant) of a user's token; empty for
	// client_credentials tokens, which act for no user.
	SessionID string `json:"sid"`
}

// forUser reports whether the token acts for a user (a user grant issued it).
func (c *accessClaims) forUser() bool { return c.SessionID != "" }

// accessTokenVerifier checks access tokens this server issued: signature with the keyring's
// published keys, header typ at+jwt, iss, exp, and (active) revocation and the registry.
type accessTokenVerifier struct {
	issuer string
	keys   Keyring
	store  store.Store
	now    func() time.Time
}

// verify checks the token's signature, type and claims; errBadToken (wrapped) when any fails.
// It does not consult the store: see active.
func (v *accessTokenVerifier) verify(tok string) (*accessClaims, error) {
	if len(tok) > maxTokenBytes || strings.Count(tok, ".") != 2 {
		return nil, fmt.Errorf("%w: not a compact JWS", errBadToken)
	}
	parsed, err := jwt.ParseSigned(tok, verifiedAlgorithms())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errBadToken, err)
	}
	h := parsed.Headers[0] // ParseSigned accepts compact serialization only: one signature
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != keys.TypeAccessToken {
		return nil, fmt.Errorf("%w: typ %q", errBadToken, typ)
	}
	published := v.keys.PublicKeys()
	found := published.Key(h.KeyID)
	if len(found) != 1 || found[0].Algorithm != h.Algorithm {
		return nil, fmt.Errorf("%w: unknown key", errBadToken)
	}
	var c accessClaims
	if err := parsed.Claims(found[0].Key, &c); err != nil {
		return nil, fmt.Errorf("%w: %w", errBadToken, err)
	}
	now := v.now()
	switch {
	case c.Issuer != v.issuer:
		return nil, fmt.Errorf("%w: foreign issuer", errBadToken)
	case c.Expiry == nil || !now.Before(c.Expiry.Time()):
		return nil, fmt.Errorf("%w: expired", errBadToken)
	case c.NotBefore != nil && now.Add(keys.ClockSkew).Before(c.NotBefore.Time()),
		c.IssuedAt != nil && now.Add(keys.ClockSkew).Before(c.IssuedAt.Time()):
		return nil, fmt.Errorf("%w: not yet valid", errBadToken)
	case c.ID == "" || c.ClientID == "" || c.Subject == "":
		return nil, fmt.Errorf("%w: missing claims", errBadToken)
	}
	return &c, nil
}

// active reports whether a verified token is still in force: its jti and its family (sid) are
// not revoked, its client still exists and, for a user's token, the user of its subject exists
// and is not disabled (a user re-created under the same username is another subject). An error means the store could not answer.
func (v *accessTokenVerifier) active(ctx context.Context, snap *registry.Snapshot, c *accessClaims) (bool, error) {
	if _, ok := snap.Client(c.ClientID); !ok {
		return false, nil
	}
	if c.forUser() {
		if u, ok := snap.UserBySubject(c.Subject); !ok || u.Disabled {
			return false, nil
		}
	}
	revoked, err := v.store.TokenRevoked(ctx, c.ID)
	if err != nil || revoked {
		return false, err
	}
	if c.forUser() {
		revoked, err = v.store.FamilyRevoked(ctx, c.SessionID)
		if err != nil || revoked {
			return false, err
		}
	}
	return true, nil
}

// bearerError is an RFC 6750 3.1 error: written with a WWW-Authenticate: Bearer challenge and
// the same code in a JSON body.
type bearerError struct {
	code        string // "" for a request without a token: the challenge then has no error
	description string
	status      int
	scope       string // the scope the resource needs, for insufficient_scope
}

func (e *bearerError) Error() string { return "bearer: " + e.code + ": " + e.description }

func errNoToken() *bearerError {
	return &bearerError{description: "The request has no access token.", status: http.StatusUnauthorized}
}

func errInvalidToken(description string) *bearerError {
	return &bearerError{code: "invalid_token", description: description, status: http.StatusUnauthorized}
}

func errBearerRequest(description string) *bearerError {
	return &bearerError{code: "invalid_request", description: description, status: http.StatusBadRequest}
}

// writeBearerError writes the error; an error that is not a *bearerError goes to writeError.
func writeBearerError(w http.ResponseWriter, r *http.Request, err error) {
	var be *bearerError
	if !errors.As(err, &be) {
		writeError(w, r, err)
		return
	}
	challenge := `Bearer realm="latchkey"`
	if be.code != "" {
		// The descriptions are our constants: no quote or backslash to escape.
		challenge += `, error="` + be.code + `", error_description="` + be.description + `"`
	}
	if be.scope != "" {
		challenge += `, scope="` + be.scope + `"`
	}
	w.Header().Set("WWW-Authenticate", challenge)
	code := be.code
	if code == "" {
		code = "invalid_token"
	}
	writeError(w, r, &Error{code: code, description: be.description, status: be.status})
}

// bearerToken extracts the access token of a resource request (RFC 6750): from the
// Authorization header (2.1), or on POST from an application/x-www-form-urlencoded body's
// access_token (2.2). The query string (2.3) is never read. Using both methods, or either
// twice, is invalid_request.
func bearerToken(r *http.Request, maxBody int64) (string, error) {
	var fromHeader, fromBody string
	switch auth := r.Header.Values("Authorization"); len(auth) {
	case 0:
	case 1:
		tok, err := parseBearerHeader(auth[0])
		if err != nil {
			return "", err
		}
		fromHeader = tok
	default:
		return "", errBearerRequest("The Authorization header is included more than once.")
	}
	if r.Method == http.MethodPost && r.Header.Get("Content-Type") != "" {
		format, err := parseContentType(r.Header.Get("Content-Type"))
		if err != nil || format != formBody {
			if fromHeader != "" {
				return fromHeader, nil // a body of another type is not ours to judge
			}
			return "", errBearerRequest("The access_token parameter needs an application/x-www-form-urlencoded body.")
		}
		body, err := readBody(r.Body, r.ContentLength, maxBody)
		if err != nil {
			return "", err
		}
		fromBody, err = accessTokenParam(string(body))
		if err != nil {
			return "", err
		}
	}
	switch {
	case fromHeader != "" && fromBody != "":
		return "", errBearerRequest("The request uses more than one method to send the access token.")
	case fromHeader != "":
		return fromHeader, nil
	case fromBody != "":
		return fromBody, nil
	}
	return "", errNoToken()
}

// parseBearerHeader returns the token of "Bearer <b64token>". Another scheme counts as no
// token (the challenge then tells the client to use Bearer).
func parseBearerHeader(header string) (string, error) {
	scheme, tok, _ := strings.Cut(header, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", errNoToken()
	}
	tok = strings.TrimLeft(tok, " ")
	if tok == "" || !isB64Token(tok) {
		return "", errBearerRequest("The Bearer credentials are malformed.")
	}
	return tok, nil
}

// isB64Token reports whether s matches RFC 6750's b64token: 1*( ALPHA / DIGIT / "-" / "." /
// "_" / "~" / "+" / "/" ) *"=".
func isB64Token(s string) bool {
	s = strings.TrimRight(s, "=")
	if s == "" {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if !isBase64URL(c) && c != '.' && c != '~' && c != '+' && c != '/' {
			return false
		}
	}
	return true
}

// accessTokenParam returns the access_token parameter of a form body; included twice is
// invalid_request, other parameters are ignored.
func accessTokenParam(body string) (string, error) {
	var tok string
	for body != "" {
		var pair string
		pair, body, _ = strings.Cut(body, "&")
		rawName, rawValue, _ := strings.Cut(pair, "=")
		name, err := url.QueryUnescape(rawName)
		if err != nil {
			return "", errBearerRequest("The form body is malformed.")
		}
		if name != "access_token" {
			continue
		}
		value, err := url.QueryUnescape(rawValue)
		if err != nil {
			return "", errBearerRequest("The form body is malformed.")
		}
		if value == "" {
			continue
		}
		if tok != "" {
			return "", errBearerRequest("The access_token parameter is included more than once.")
		}
		tok = value
	}
	return tok, nil
}

// tokenEndpoints are the endpoints of issued tokens: userinfo, revocation, introspection.
type tokenEndpoints struct {
	registry Registry
	verifier *accessTokenVerifier
	tokens   *tokenService
	maxBody  int64
}

func newTokenEndpoints(cfg Config, tokens *tokenService) *tokenEndpoints {
	return &tokenEndpoints{
		registry: cfg.Registry, tokens: tokens, maxBody: cfg.MaxBodyBytes,
		verifier: &accessTokenVerifier{issuer: cfg.Issuer, keys: cfg.Keys, store: cfg.Store, now: cfg.Now},
	}
}

// mount adds the endpoints to the mux of routes.
func (e *tokenEndpoints) mount(mux *http.ServeMux) {
	mux.HandleFunc("GET "+UserinfoPath, e.serveUserinfo) // GET patterns match HEAD too
	mux.HandleFunc("POST "+UserinfoPath, e.serveUserinfo)
	mux.Handle(UserinfoPath, methodNotAllowed("GET, HEAD, POST"))
	for _, p := range revocationPathAliases() {
		mux.HandleFunc("POST "+p, e.serveRevoke)
		mux.Handle(p, methodNotAllowed(allowPost))
	}
	mux.HandleFunc("POST "+IntrospectionPath, e.serveIntrospect)
	mux.Handle(IntrospectionPath, methodNotAllowed(allowPost))
}

// clientRequest parses and authenticates a revocation or introspection request.
func (e *tokenEndpoints) clientRequest(r *http.Request) (*TokenRequest, *registry.Client, *registry.Snapshot, error) {
	req, err := parseEndpointRequest(r, e.maxBody)
	if err != nil {
		return nil, nil, nil, err
	}
	snap := e.registry.Snapshot()
	client, err := authenticateClient(snap, req)
	if err != nil {
		metricsOf(r.Context()).m.ClientAuthFailure(authMethodLabel(req.AuthMethod))
		return nil, nil, nil, err
	}
	if req.Token == "" {
		return nil, nil, nil, invalidRequest("The token parameter is missing.")
	}
	return req, client, snap, nil
}

// writeNoStoreJSON writes v, marshalled by encoding/json, as a 200 answer that must not be
// cached; a HEAD request gets the headers only. A value that cannot be marshalled (never one
// of this package's response types) is a server_error.
func writeNoStoreJSON(w http.ResponseWriter, r *http.Request, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		writeError(w, r, ErrServerError.WithCause(err))
		return
	}
	if r.Method == http.MethodHead {
		body = nil
	}
	h := w.Header()
	h.Set("Content-Type", contentTypeJSON)
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body) //nolint:gosec // JSON from encoding/json, served as application/json
}
