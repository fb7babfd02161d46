package browser

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/latchkey-dev/latchkey/server/dpop"
	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/store"
)

// Pushed authorization requests (RFC 9126).
const (
	// RequestURIPrefix starts every request_uri the endpoint issues (RFC 9126 2.2).
	RequestURIPrefix = "urn:ietf:params:oauth:request_uri:"
	// DefaultPushedRequestLifetime is how long a request_uri can be used.
	DefaultPushedRequestLifetime = 60 * time.Second
	recordPushed                 = "par"
)

// clientLimiter applies a client's rate limit; grants.RateLimits implements it.
type clientLimiter interface {
	Take(ctx context.Context, c *registry.Client) error
}

// PushedRequests configures the pushed authorization request endpoint (RFC 9126). Without
// ClientAuth the endpoint is not mounted and request_uri stays unsupported.
type PushedRequests struct {
	// ClientAuth authenticates the pushing client like the token endpoint.
	ClientAuth *oauth2.ClientAuth
	// Limits applies the clients' rate limits; nil: none.
	Limits clientLimiter
	// Require refuses every authorization request that does not come through a request_uri
	// (the server-wide require_pushed_authorization_requests).
	Require bool
	// Lifetime is how long a request_uri lasts; zero means 60 s.
	Lifetime time.Duration
	// DPoP checks the DPoP proof a push may carry (RFC 9449 10.1), whose key then binds the
	// code like dpop_jkt; nil: such a push is refused with invalid_dpop_proof.
	DPoP proofVerifier
	// URI is the endpoint's URL as the issuer names it: the htu of those proofs.
	URI string
}

// proofVerifier checks DPoP proofs; *dpop.Verifier implements it.
type proofVerifier interface {
	Verify(ctx context.Context, r dpop.Request) (dpop.Proof, error)
}

var _ proofVerifier = (*dpop.Verifier)(nil)

func (p PushedRequests) enabled() bool { return p.ClientAuth != nil }

// pushedRequest is the stored, validated authorization request of a request_uri. The client
// and its redirect URI are checked again when it is used (the client may have changed).
type pushedRequest struct {
	ClientID            string `json:"client_id"`
	RedirectURI         string `json:"redirect_uri,omitempty"`
	ResponseType        string `json:"response_type"`
	ResponseMode        string `json:"response_mode,omitempty"`
	Scope               string `json:"scope,omitempty"`
	State               string `json:"state,omitempty"`
	Nonce               string `json:"nonce,omitempty"`
	CodeChallenge       string `json:"code_challenge,omitempty"`
	CodeChallengeMethod string `json:"code_challenge_method,omitempty"`
	Prompt              prompt `json:"prompt,omitempty"`
	MaxAge              int64  `json:"max_age"`
	LoginHint           string `json:"login_hint,omitempty"`
	// Resources (RFC 8707), as checked at the push.
	Resources []string `json:"resource,omitempty"`
	// DPoPJKT binds the code to a DPoP key (RFC 9449 10): dpop_jkt, or the key of the push's
	// DPoP proof.
	DPoPJKT string `json:"dpop_jkt,omitempty"`
}

func (p *pushedRequest) authorizeRequest() *AuthorizeRequest {
	return &AuthorizeRequest{
		ClientID: p.ClientID, RedirectURI: p.RedirectURI, ResponseType: p.ResponseType, ResponseMode: p.ResponseMode,
		Scope: p.Scope, State: p.State, Nonce: p.Nonce, CodeChallenge: p.CodeChallenge,
		CodeChallengeMethod: p.CodeChallengeMethod, Prompt: p.Prompt, MaxAge: p.MaxAge, LoginHint: p.LoginHint,
		Resources: p.Resources, DPoPJKT: p.DPoPJKT,
	}
}

func newPushedRequest(r *AuthorizeRequest) *pushedRequest {
	return &pushedRequest{
		ClientID: r.ClientID, RedirectURI: r.RedirectURI, ResponseType: r.ResponseType, ResponseMode: r.ResponseMode,
		Scope: r.Scope, State: r.State, Nonce: r.Nonce, CodeChallenge: r.CodeChallenge,
		CodeChallengeMethod: r.CodeChallengeMethod, Prompt: r.Prompt, MaxAge: r.MaxAge, LoginHint: r.LoginHint,
		Resources: r.Resources, DPoPJKT: r.DPoPJKT,
	}
}

// pushedResponse is RFC 9126 2.2's response.
type pushedResponse struct {
	RequestURI string `json:"request_uri"`
	ExpiresIn  int64  `json:"expires_in"`
}

// ParsePushedRequest reads a pushed authorization request (RFC 9126 2.1): a form body (only)
// holding the client's credentials by the token endpoint's rules and the authorization
// request's parameters by the authorization endpoint's. A grant_type, a request_uri, a
// parameter included twice or a body over maxBody is invalid_request.
func ParsePushedRequest(r *http.Request, maxBody int64) (*oauth2.TokenRequest, *AuthorizeRequest, error) {
	body, err := oauth2.ReadFormBody(r, maxBody)
	if err != nil {
		return nil, nil, err
	}
	return parsePushedBody(r.Header.Values("Authorization"), body)
}

// parsePushedBody parses a read body of ParsePushedRequest.
func parsePushedBody(authorization []string, body []byte) (*oauth2.TokenRequest, *AuthorizeRequest, error) {
	creds, err := oauth2.ParseClientForm(authorization, body)
	if err != nil {
		return nil, nil, err
	}
	if creds.GrantType != "" {
		return nil, nil, oauth2.InvalidRequest("The pushed authorization request endpoint takes no grant_type.")
	}
	req, err := parseAuthorizeParams(string(body), false)
	if err != nil {
		return nil, nil, err
	}
	switch {
	case req.RequestURI != "":
		return nil, nil, oauth2.InvalidRequest("A pushed authorization request may not hold request_uri.")
	case req.invalid != nil:
		return nil, nil, req.invalid
	case req.ClientID != "" && creds.ClientID != "" && req.ClientID != creds.ClientID:
		return nil, nil, oauth2.InvalidRequest("The client_id parameter does not match the authenticated client.")
	}
	return creds, req, nil
}

// servePushed is the pushed authorization request endpoint (RFC 9126 2): it authenticates
// the client, validates the request as the authorization endpoint would, stores it for the
// request lifetime and answers 201 with its request_uri. Every error is RFC 6749 JSON.
func (a *Flow) servePushed(w http.ResponseWriter, r *http.Request) {
	resp, err := a.push(r)
	if err != nil {
		oauth2.WriteError(w, r, oauth2.FromStore(err))
		return
	}
	oauth2.WriteJSON(w, r, http.StatusCreated, resp)
}

func (a *Flow) push(r *http.Request) (*pushedResponse, error) {
	ctx := r.Context()
	creds, req, err := ParsePushedRequest(r, a.maxBody)
	if err != nil {
		return nil, err
	}
	snap := a.registry.Snapshot()
	client, err := a.par.ClientAuth.Authenticate(ctx, snap, creds)
	if err != nil {
		return nil, err
	}
	if a.par.Limits != nil {
		if err := a.par.Limits.Take(ctx, client); err != nil {
			return nil, err
		}
	}
	req.ClientID = client.ID
	_, redirectURI, err := checkClientRedirect(snap, req)
	if err != nil {
		return nil, err
	}
	valid, err := validateAuthorizeRequest(ctx, snap, client, req, redirectURI)
	if err != nil {
		return nil, err
	}
	// The proof is checked last, so that a refused request does not use up its jti.
	if err := a.bindPushed(ctx, r.Header, client, req); err != nil {
		return nil, err
	}
	id, err := oauth2.NewSecret()
	if err != nil {
		return nil, oauth2.ErrServerError.WithCause(err)
	}
	raw, err := json.Marshal(newPushedRequest(req))
	if err != nil {
		return nil, oauth2.ErrServerError.WithCause(err)
	}
	ttl := cmp.Or(a.par.Lifetime, DefaultPushedRequestLifetime)
	if err := a.store.PutRecord(ctx, recordPushed, store.HashOf(id), raw, ttl); err != nil {
		return nil, err
	}
	oauth2.Audit(ctx, oauth2.AuditEvent{Event: oauth2.AuditAuthorizationRequestPushed, ClientID: client.ID,
		GrantType: oauth2.GrantAuthorizationCode, AuthMethod: oauth2.AuthenticatedMethod(client, creds), Scopes: valid.Scopes,
		TokenRef: oauth2.TokenRef(id)})
	return &pushedResponse{RequestURI: RequestURIPrefix + id, ExpiresIn: int64(ttl / time.Second)}, nil
}

// bindPushed applies the DPoP proof of a push (RFC 9449 10.1): a valid proof binds the code to
// its key, as dpop_jkt does; when dpop_jkt is sent too, both must name the same key. A Disabled
// client's header is ignored, as at the token endpoint. Nonces are not required here (the
// token request needs the proof that counts); a proof that carries one is checked.
func (a *Flow) bindPushed(ctx context.Context, h http.Header, client *registry.Client, req *AuthorizeRequest) error {
	proof, ok, err := dpop.FromHeader(h)
	switch {
	case err != nil:
		return oauth2.ErrInvalidDPoPProof.WithCause(err)
	case !ok || client.DPoP == registry.DPoPDisabled:
		return nil
	case a.par.DPoP == nil:
		return oauth2.ErrInvalidDPoPProof.WithDescription("DPoP is not available on this server.")
	}
	p, err := a.par.DPoP.Verify(ctx, dpop.Request{Proof: proof, Method: http.MethodPost, URI: a.par.URI})
	switch {
	case errors.Is(err, dpop.ErrUseNonce):
		return oauth2.ErrUseDPoPNonce.WithCause(err)
	case errors.Is(err, dpop.ErrInvalidProof):
		return oauth2.ErrInvalidDPoPProof.WithCause(err)
	case err != nil:
		return oauth2.FromStore(err)
	}
	if req.DPoPJKT != "" && req.DPoPJKT != p.Thumbprint {
		return oauth2.ErrInvalidDPoPProof.WithDescription("The dpop_jkt parameter does not name the key of the DPoP proof.")
	}
	req.DPoPJKT = p.Thumbprint
	return nil
}

// errPushedUnusable is shown for a request_uri that is unknown, expired, used, malformed or
// pushed by another client, alike.
var errPushedUnusable = oauth2.ErrInvalidRequest.WithDescription(
	"The request_uri is unknown, expired or already used, or was pushed by another client.")

// takePushed replaces an authorization request that names a request_uri by the pushed request
// (RFC 9126 4): the other parameters but client_id are ignored. The pushing client must be
// the client_id of the request; the request_uri is used once. Its errors are shown, never
// redirected.
func (a *Flow) takePushed(ctx context.Context, req *AuthorizeRequest) (*AuthorizeRequest, error) {
	id, ok := strings.CutPrefix(req.RequestURI, RequestURIPrefix)
	if !ok || !oauth2.WellFormedSecret(id) {
		return nil, errPushedUnusable
	}
	h := store.HashOf(id)
	// Read before taking, so that another client cannot use up a request_uri it learnt.
	raw, err := a.store.GetRecord(ctx, recordPushed, h)
	if err == nil {
		var p pushedRequest
		if json.Unmarshal(raw, &p) != nil || p.ClientID != req.ClientID {
			return nil, errPushedUnusable
		}
		raw, err = a.store.TakeRecord(ctx, recordPushed, h)
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, errPushedUnusable
	}
	if err != nil {
		return nil, oauth2.FromStore(err)
	}
	var p pushedRequest
	if json.Unmarshal(raw, &p) != nil || p.ClientID != req.ClientID {
		return nil, errPushedUnusable
	}
	return p.authorizeRequest(), nil
}

// errPushedRequired refuses an authorization request without request_uri when pushed
// requests are required (RFC 9126 5, 6).
var errPushedRequired = oauth2.ErrInvalidRequest.WithDescription(
	"This client must push its authorization requests (RFC 9126) and send the request_uri.")

// pushedRequired reports whether client must use a request_uri.
func (a *Flow) pushedRequired(client *registry.Client) bool {
	return a.par.enabled() && (a.par.Require || client.RequirePushedAuthorizationRequests)
}
