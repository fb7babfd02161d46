package grants

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/latchkey-dev/latchkey/server/dpop"
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
	dpop     DPoP
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

// WithDPoP lets the endpoint bind tokens to DPoP keys (RFC 9449) and returns it.
func (e *Endpoint) WithDPoP(d DPoP) *Endpoint {
	e.dpop = d
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
	if n := e.dpop.nonce(); n != "" {
		w.Header().Set(dpop.NonceHeader, n)
	}
	req, err := oauth2.ParseTokenRequest(r, e.maxBody)
	if err != nil {
		oauth2.WriteError(w, r, err)
		return
	}
	if req.DPoPProof, _, err = dpop.FromHeader(r.Header); err != nil {
		oauth2.WriteError(w, r, oauth2.ErrInvalidDPoPProof.WithCause(err))
		return
	}
	resp, err := e.exchange(r.Context(), req)
	if err != nil {
		oauth2.WriteError(w, r, err)
		return
	}
	typ := resp.TokenType
	switch {
	case req.DPoPThumbprint != "":
		typ = TokenTypeDPoP
	case typ == "":
		typ = "Bearer"
	}
	oauth2.WriteJSON(w, r, http.StatusOK, &responseBody{
		AccessToken: resp.AccessToken, TokenType: typ, ExpiresIn: resp.ExpiresIn,
		Scope: token.JoinScope(resp.Scope), RefreshToken: resp.RefreshToken, IDToken: resp.IDToken,
		IssuedTokenType: resp.IssuedTokenType,
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
	_, admits := grant.(admitting)
	// The client's rate limit is taken in the store step that records its authentication
	// (one round trip for both), when the request gets past the checks below; for a grant that
	// admits, that record is deferred to the grant's own store step.
	client, auth, err := e.auth.AuthenticateWith(ctx, snap, req, oauth2.AuthOptions{Defer: admits,
		Rate: func(c *registry.Client) (store.RateTake, bool) {
			if allowed(grant, c) != nil {
				return store.RateTake{}, false
			}
			return e.limits.bucket(ctx, c)
		}})
	if err != nil {
		return nil, err
	}
	if span.IsRecording() {
		span.SetAttributes(tracing.ClientID.String(client.ID))
	}
	adm := e.admission(ctx, grant, admits, client, auth.Deferred)
	// An error before the store step still records the authentication first (a blocked
	// client is answered 429 whatever else is wrong).
	fail := func(err error) error {
		if aerr := adm.Admit(ctx); aerr != nil {
			return aerr
		}
		return err
	}
	if err := allowed(grant, client); err != nil {
		return nil, fail(err)
	}
	switch {
	case adm != nil:
	case auth.Rated.Taken:
		err = e.limits.refused(ctx, client, auth.Rated.Wait)
	default:
		err = e.limits.take(ctx, client)
	}
	if err != nil {
		return nil, err
	}
	if err := e.dpop.bind(ctx, client, req); err != nil {
		return nil, fail(err)
	}
	scopes, err := oauth2.ResolveScopes(ctx, snap, client, req.Scope)
	if err != nil {
		return nil, fail(err)
	}
	var resources []string
	if _, ok := grant.(audienceTarget); ok {
		targets, terr := oauth2.ExchangeTargets(req.Resources, req.Audiences)
		if terr != nil {
			return nil, fail(terr)
		}
		resources, scopes, err = oauth2.ExchangeTarget(snap, client, targets, scopes)
	} else {
		resources, scopes, err = oauth2.Target(snap, client, req.Resources, scopes)
	}
	if err != nil {
		return nil, fail(err)
	}
	resp, err := grant.Exchange(ctx, &Request{TokenRequest: req, Client: client, Snapshot: snap, Scopes: scopes, Resources: resources, Admission: adm})
	if aerr := adm.Admit(ctx); aerr != nil {
		return nil, aerr // the grant left it pending: nothing was stored
	}
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
			Scopes:     resp.Scope, TokenRef: issuedRef(resp),
			Subject: resp.Subject, Actor: resp.Actor, Targets: resp.Targets, SubjectSource: resp.SubjectSource,
		})
	}
	return resp, nil
}

// admission returns what the request must pass before the grant changes anything, when the
// grant admits (nil when nothing is pending): the deferred record of the client's
// authentication and, for a request the client may make, its rate limit.
func (e *Endpoint) admission(ctx context.Context, grant Grant, admits bool, client *registry.Client, deferred *oauth2.Deferred) *Admission {
	if !admits {
		return nil
	}
	adm := &Admission{deferred: deferred, client: client, limits: e.limits}
	if allowed(grant, client) == nil {
		if b, ok := e.limits.bucket(ctx, client); ok {
			adm.rate = &b
		}
	}
	if adm.deferred == nil && adm.rate == nil {
		return nil
	}
	return adm
}

// allowed checks that the client may use the grant: unauthorized_client otherwise.
func allowed(grant Grant, c *registry.Client) error {
	if grant.ConfidentialOnly() && oauth2.IsPublic(c) {
		return oauth2.ErrUnauthorizedClient.WithDescription("A public client may not use this grant type.")
	}
	if !c.AllowsGrant(grant.Type()) {
		return oauth2.ErrUnauthorizedClient.WithDescription("The client is not allowed this grant type.")
	}
	return nil
}

// bucket names the bucket of the client's token requests, when it has a limit. A
// confidential client has one bucket across all its callers; a public client has one per
// client address, since anyone may name its (public) client ID and must not spend the limit of
// all its users.
func (l RateLimits) bucket(ctx context.Context, c *registry.Client) (store.RateTake, bool) {
	limit := c.RateLimit
	if limit.PerMinute <= 0 {
		limit = l.Default
	}
	if l.Buckets == nil || limit.PerMinute <= 0 {
		return store.RateTake{}, false
	}
	limit = limit.WithDefaultBurst()
	key := "client-rate\x00" + c.ID
	if oauth2.IsPublic(c) {
		key += "\x00" + oauth2.AddressKey(oauth2.ClientAddress(ctx))
	}
	return store.RateTake{Key: store.HashOf(key), PerMinute: limit.PerMinute, Burst: limit.Burst}, true
}

// take takes one token request of the client from its bucket: 429 with Retry-After when it
// is empty. When the store cannot be reached the request is not limited (oauth2.FailOpen): a
// rate limit must not turn an outage of Redis into one of the token endpoint.
func (l RateLimits) take(ctx context.Context, c *registry.Client) error {
	b, ok := l.bucket(ctx, c)
	if !ok {
		return nil
	}
	wait, err := l.Buckets.TakeRate(ctx, b.Key, b.PerMinute, b.Burst)
	if err != nil {
		return oauth2.FailOpen(ctx, err, "rate limit unavailable; the request is not limited", "client_id", c.ID)
	}
	return l.refused(ctx, c, wait)
}

// Take is take for the other endpoints that apply the clients' rate limits (pushed
// authorization requests).
func (l RateLimits) Take(ctx context.Context, c *registry.Client) error { return l.take(ctx, c) }

// refused answers a request its bucket refused (wait > 0) with 429 and Retry-After.
func (l RateLimits) refused(ctx context.Context, c *registry.Client, wait time.Duration) error {
	if wait <= 0 {
		return nil
	}
	limit := c.RateLimit
	if limit.PerMinute <= 0 {
		limit = l.Default
	}
	limit = limit.WithDefaultBurst()
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
	// IssuedTokenType is RFC 8693 2.2.1's, in token exchange responses only.
	IssuedTokenType string `json:"issued_token_type,omitempty"`
}

// TokenTypeDPoP is the token_type of a token bound to a DPoP key (RFC 9449 5).
const TokenTypeDPoP = "DPoP"

// Span names of the token endpoint (see server/tracing).
const (
	spanGrant           = "grant"
	spanSignAccessToken = "sign access_token"
	spanSignIDToken     = "sign id_token"
)

// issuedRef is the audit reference of an issued access token: its jti, as when it is revoked,
// so that the two lines match; a hash prefix of the token for a grant that does not say it.
func issuedRef(resp *Response) string {
	if resp.AccessTokenID != "" {
		return oauth2.AccessTokenRef(resp.AccessTokenID)
	}
	return oauth2.TokenRef(resp.AccessToken)
}
