package grants

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/store"
	"github.com/latchkey-dev/latchkey/server/token"
	"github.com/latchkey-dev/latchkey/server/tracing"
)

// Registry gives the current registry snapshot; *registry.Registry implements it.
type Registry interface {
	Snapshot() *registry.Snapshot
}

var _ Registry = (*registry.Registry)(nil)

// Endpoint is the token endpoint: the dispatcher that runs the steps every grant shares and
// hands the rest to the grant named by grant_type.
type Endpoint struct {
	registry Registry
	auth     *oauth2.ClientAuth
	limits   RateLimits
	grants   map[string]Grant
	maxBody  int64
}

// rateTaker takes a request from a shared token bucket; store.Store implements it.
type rateTaker interface {
	TakeRate(ctx context.Context, key store.Hash, perMinute, burst int) (time.Duration, error)
}

// RateLimits applies the clients' rate limits (OAuthClient spec.rateLimit) to token requests,
// across every replica (the buckets live in the leased store).
type RateLimits struct {
	// Buckets keeps the buckets; nil applies no limit.
	Buckets rateTaker
	// Default applies to clients without a limit of their own; a zero PerMinute is none.
	Default registry.RateLimit
}

// NewEndpoint returns the token endpoint of the grants, authenticating clients with auth and
// applying limits; maxBody bounds request bodies.
func NewEndpoint(reg Registry, auth *oauth2.ClientAuth, limits RateLimits, maxBody int64, grants ...Grant) *Endpoint {
	e := &Endpoint{registry: reg, auth: auth, limits: limits, grants: map[string]Grant{}, maxBody: maxBody}
	for _, g := range grants {
		e.grants[g.Type()] = g
	}
	return e
}

// Mount adds the token endpoint to the mux.
func (e *Endpoint) Mount(m *oauth2.Mux) { m.Handle(oauth2.TokenPath, http.MethodPost, e) }

// GrantTypes lists the grant types served, sorted (discovery's grant_types_supported).
func (e *Endpoint) GrantTypes() []string {
	out := make([]string, 0, len(e.grants))
	for t := range e.grants {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

func (e *Endpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req, err := oauth2.ParseTokenRequest(r, e.maxBody)
	if err != nil {
		oauth2.WriteError(w, r, err)
		return
	}
	resp, err := e.exchange(r.Context(), req)
	if err != nil {
		oauth2.WriteError(w, r, err)
		return
	}
	typ := resp.TokenType
	if typ == "" {
		typ = "Bearer"
	}
	oauth2.WriteJSON(w, r, http.StatusOK, &responseBody{
		AccessToken: resp.AccessToken, TokenType: typ, ExpiresIn: resp.ExpiresIn,
		Scope: token.JoinScope(resp.Scope), RefreshToken: resp.RefreshToken, IDToken: resp.IDToken,
	})
}

// exchange authenticates the client, applies the grant and scope policy and runs the grant.
// It runs in a span "grant <type>" when the request is traced.
func (e *Endpoint) exchange(ctx context.Context, req *oauth2.TokenRequest) (_ *Response, err error) {
	grant, ok := e.grants[req.GrantType]
	if !ok {
		return nil, oauth2.ErrUnsupportedGrantType
	}
	ctx, span := tracing.Start(ctx, spanGrant)
	defer func() { tracing.End(span, err) }()
	if span.IsRecording() {
		span.SetName(spanGrant + " " + grant.Type())
		span.SetAttributes(tracing.GrantType.String(grant.Type()))
	}
	snap := e.registry.Snapshot()
	client, err := e.auth.Authenticate(ctx, snap, req)
	if err != nil {
		return nil, err
	}
	if span.IsRecording() {
		span.SetAttributes(tracing.ClientID.String(client.ID))
	}
	if grant.ConfidentialOnly() && oauth2.IsPublic(client) {
		return nil, oauth2.ErrUnauthorizedClient.WithDescription("A public client may not use this grant type.")
	}
	if !client.AllowsGrant(grant.Type()) {
		return nil, oauth2.ErrUnauthorizedClient.WithDescription("The client is not allowed this grant type.")
	}
	if err := e.limits.take(ctx, client); err != nil {
		return nil, err
	}
	scopes, err := oauth2.ResolveScopes(ctx, snap, client, req.Scope)
	if err != nil {
		return nil, err
	}
	resp, err := grant.Exchange(ctx, &Request{TokenRequest: req, Client: client, Snapshot: snap, Scopes: scopes})
	if err != nil {
		return nil, oauth2.FromStore(err)
	}
	if resp == nil {
		return nil, oauth2.ErrServerError.WithCause(fmt.Errorf("grant %s returned no response", grant.Type()))
	}
	// Labels of a registered client only: the client authenticated above.
	oauth2.RecordTokenIssued(ctx, grant.Type(), client.ID, client.Namespace)
	if oauth2.Auditing(ctx) {
		oauth2.Audit(ctx, oauth2.AuditEvent{
			Event: grant.IssuedEvent(), ClientID: client.ID, GrantType: grant.Type(), Username: req.Username,
			AuthMethod: oauth2.AuthenticatedMethod(client, req),
			Scopes:     resp.Scope, TokenRef: oauth2.TokenRef(resp.AccessToken),
		})
	}
	return resp, nil
}

// take takes one token request of the client from its bucket: 429 with Retry-After when it
// is empty. A confidential client has one bucket across all its callers; a public client has
// one per client address, since anyone may name its (public) client ID and must not spend the
// limit of all its users. When the store cannot be reached the request is not limited
// (oauth2.FailOpen): a rate limit must not turn an outage of Redis into one of the token
// endpoint.
func (l RateLimits) take(ctx context.Context, c *registry.Client) error {
	limit := c.RateLimit
	if limit.PerMinute <= 0 {
		limit = l.Default
	}
	if l.Buckets == nil || limit.PerMinute <= 0 {
		return nil
	}
	limit = limit.WithDefaultBurst()
	key := "client-rate\x00" + c.ID
	if oauth2.IsPublic(c) {
		key += "\x00" + oauth2.AddressKey(oauth2.ClientAddress(ctx))
	}
	wait, err := l.Buckets.TakeRate(ctx, store.HashOf(key), limit.PerMinute, limit.Burst)
	if err != nil {
		return oauth2.FailOpen(ctx, err, "rate limit unavailable; the request is not limited", "client_id", c.ID)
	}
	if wait <= 0 {
		return nil
	}
	oauth2.RecordRateLimited(ctx, oauth2.RateLimitClient)
	oauth2.Audit(ctx, oauth2.AuditEvent{Event: oauth2.AuditRateLimited, ClientID: c.ID, Outcome: "failure",
		Reason: fmt.Sprintf("client rate limit: %d per minute, burst %d", limit.PerMinute, limit.Burst)})
	return oauth2.ErrTooManyRequests.WithDescription("The client's rate limit is spent; retry after the Retry-After delay.").
		WithRetryAfter(wait)
}

// responseBody is the JSON of a successful token response (RFC 6749 5.1).
type responseBody struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	Scope        string `json:"scope,omitempty"`
	RefreshToken string `json:"refresh_token,omitempty"`
	IDToken      string `json:"id_token,omitempty"`
}

// Span names of the token endpoint (see server/tracing).
const (
	spanGrant           = "grant"
	spanSignAccessToken = "sign access_token"
	spanSignIDToken     = "sign id_token"
)
