package bearer

import (
	"context"
	"net/http"
	"time"

	"github.com/latchkey-dev/latchkey/server/dpop"
	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/store"
	"github.com/latchkey-dev/latchkey/server/token"
)

// Registry gives the current registry snapshot; *registry.Registry implements it.
type Registry interface {
	Snapshot() *registry.Snapshot
}

// Store is what the endpoints read and write of the leased store; store.Store implements it.
type Store interface {
	GetRefresh(ctx context.Context, h store.Hash) (store.RefreshToken, error)
	RevokeFamily(ctx context.Context, familyID string, until time.Time) error
	FamilyRevoked(ctx context.Context, familyID string) (bool, error)
	RevokeToken(ctx context.Context, jti string, until time.Time) error
	TokenRevoked(ctx context.Context, jti string) (bool, error)
}

// Verifier checks the access tokens this server issued; *token.Verifier implements it.
type Verifier interface {
	Verify(tok string) (*token.AccessTokenClaims, error)
	Issuer() string
}

var (
	_ Registry = (*registry.Registry)(nil)
	_ Store    = store.Store(nil)
	_ Verifier = (*token.Verifier)(nil)
	_ Verifier = (*token.CachedVerifier)(nil)
)

// Config configures the endpoints.
type Config struct {
	Registry Registry
	// ClientAuth authenticates the clients of revocation and introspection.
	ClientAuth *oauth2.ClientAuth
	Store      Store
	Verifier   Verifier
	// Lifetimes are the server's token lifetimes: how long a revocation is remembered.
	Lifetimes oauth2.Lifetimes
	// Now is the clock.
	Now func() time.Time
	// MaxBodyBytes bounds request bodies.
	MaxBodyBytes int64
	// DPoP checks the proofs of DPoP-bound tokens at userinfo; nil refuses the DPoP scheme
	// (and so every bound token).
	DPoP ProofVerifier
	// UserinfoURI is the userinfo endpoint's URL as the issuer names it (the proofs' htu).
	UserinfoURI string
}

// ProofVerifier checks DPoP proofs; *dpop.Verifier implements it.
type ProofVerifier interface {
	Verify(ctx context.Context, r dpop.Request) (dpop.Proof, error)
}

var _ ProofVerifier = (*dpop.Verifier)(nil)

// Endpoints are the endpoints that take issued tokens back: userinfo, revocation and
// introspection.
type Endpoints struct {
	registry  Registry
	auth      *oauth2.ClientAuth
	store     Store
	verifier  Verifier
	lifetimes oauth2.Lifetimes
	now       func() time.Time
	maxBody   int64
	dpop      ProofVerifier
	userinfo  string
}

// New returns the endpoints of cfg.
func New(cfg Config) *Endpoints {
	return &Endpoints{
		registry: cfg.Registry, auth: cfg.ClientAuth, store: cfg.Store, verifier: cfg.Verifier, lifetimes: cfg.Lifetimes,
		now: cfg.Now, maxBody: cfg.MaxBodyBytes, dpop: cfg.DPoP, userinfo: cfg.UserinfoURI,
	}
}

// Mount adds the endpoints to the mux.
func (e *Endpoints) Mount(m *oauth2.Mux) {
	m.HandleFunc(oauth2.UserinfoPath, http.MethodGet, e.serveUserinfo) // GET answers HEAD too
	m.HandleFunc(oauth2.UserinfoPath, http.MethodPost, e.serveUserinfo)
	m.HandleFunc(oauth2.RevocationPath, http.MethodPost, e.serveRevoke)
	m.HandleFunc(oauth2.IntrospectionPath, http.MethodPost, e.serveIntrospect)
}

// active reports whether a verified token is still in force (oauth2.AccessTokenActive).
func (e *Endpoints) active(ctx context.Context, snap *registry.Snapshot, c *token.AccessTokenClaims) (bool, error) {
	return oauth2.AccessTokenActive(ctx, snap, e.store, c)
}

// clientRequest parses and authenticates a revocation or introspection request.
func (e *Endpoints) clientRequest(r *http.Request) (*oauth2.TokenRequest, *registry.Client, *registry.Snapshot, error) {
	req, err := oauth2.ParseClientRequest(r, e.maxBody)
	if err != nil {
		return nil, nil, nil, err
	}
	snap := e.registry.Snapshot()
	client, err := e.auth.Authenticate(r.Context(), snap, req)
	if err != nil {
		return nil, nil, nil, err
	}
	if req.Token == "" {
		return nil, nil, nil, oauth2.InvalidRequest("The token parameter is missing.")
	}
	return req, client, snap, nil
}

// accessToken extracts the access token of a resource request (RFC 6750): from the
// Authorization header (2.1), or on POST from an application/x-www-form-urlencoded body's
// access_token (2.2). The query string (2.3) is never read. Using both methods, or either
// twice, is invalid_request; a request without a token (or with another scheme, which the
// challenge then tells to use Bearer) gives "" and no error.
func accessToken(r *http.Request, maxBody int64) (string, error) {
	var fromHeader, fromBody string
	switch auth := r.Header.Values("Authorization"); len(auth) {
	case 0:
	case 1:
		tok, isBearer := oauth2.BearerCredentials(auth[0])
		switch {
		case !isBearer:
			return "", nil
		case tok == "":
			return "", oauth2.InvalidRequest("The Bearer credentials are malformed.")
		}
		fromHeader = tok
	default:
		return "", oauth2.InvalidRequest("The Authorization header is included more than once.")
	}
	if r.Method == http.MethodPost && r.Header.Get("Content-Type") != "" {
		format, err := oauth2.ParseContentType(r.Header.Get("Content-Type"))
		if err != nil || format != oauth2.FormBody {
			if fromHeader != "" {
				return fromHeader, nil // a body of another type is not ours to judge
			}
			return "", oauth2.InvalidRequest("The access_token parameter needs an application/x-www-form-urlencoded body.")
		}
		body, err := oauth2.ReadBody(r, maxBody)
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
		return "", oauth2.InvalidRequest("The request uses more than one method to send the access token.")
	case fromHeader != "":
		return fromHeader, nil
	}
	return fromBody, nil
}

// accessTokenParam returns the access_token parameter of a form body; included twice is
// invalid_request, other parameters are ignored.
func accessTokenParam(body string) (string, error) {
	var tok string
	for fp := range oauth2.FormParams(body) {
		switch {
		case fp.Malformed:
			return "", oauth2.InvalidRequest("The form body is malformed.")
		case fp.Name != "access_token" || fp.Value == "":
		case tok != "":
			return "", oauth2.InvalidRequest("The access_token parameter is included more than once.")
		default:
			tok = fp.Value
		}
	}
	return tok, nil
}
