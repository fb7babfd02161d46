package grants

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/token"
	"github.com/latchkey-dev/latchkey/server/tracing"
	"github.com/latchkey-dev/latchkey/server/workload"
)

// Token types of RFC 8693 3 that a token exchange takes (subject_token_type,
// actor_token_type) and issues (issued_token_type).
const (
	TokenTypeAccessToken = "urn:ietf:params:oauth:token-type:access_token"
	TokenTypeIDToken     = "urn:ietf:params:oauth:token-type:id_token"
	TokenTypeJWT         = "urn:ietf:params:oauth:token-type:jwt"
)

// MaxActorDepth bounds the act chain of an exchanged token (RFC 8693 4.1): a longer one is
// invalid_grant, so that repeated exchanges cannot grow tokens without end.
const MaxActorDepth = 8

// exchangeRequest is what a token exchange request says beyond the shared parameters (RFC
// 8693 2.1), checked by parseExchange.
type exchangeRequest struct {
	subject, subjectType string
	// actor and actorType are both empty, or both set.
	actor, actorType string
}

// parseExchange checks the token exchange parameters of a parsed token request: subject_token
// and a supported subject_token_type are required; actor_token and actor_token_type come
// together or not at all, the type supported; requested_token_type, when sent, must be
// access_token (the only type issued). Every refusal is invalid_request (RFC 8693 2.2.2).
func parseExchange(req *oauth2.TokenRequest) (exchangeRequest, error) {
	x := exchangeRequest{
		subject: req.SubjectToken, subjectType: req.SubjectTokenType,
		actor: req.ActorToken, actorType: req.ActorTokenType,
	}
	switch {
	case x.subject == "":
		return x, oauth2.InvalidRequest("The subject_token parameter is missing.")
	case x.subjectType == "":
		return x, oauth2.InvalidRequest("The subject_token_type parameter is missing.")
	case !exchangeable(x.subjectType):
		return x, oauth2.InvalidRequest(fmt.Sprintf("The subject_token_type %.128q is not supported; use %s, %s or %s.",
			x.subjectType, TokenTypeAccessToken, TokenTypeIDToken, TokenTypeJWT))
	case x.actor != "" && x.actorType == "":
		return x, oauth2.InvalidRequest("The actor_token parameter requires actor_token_type.")
	case x.actor == "" && x.actorType != "":
		return x, oauth2.InvalidRequest("The actor_token_type parameter requires actor_token.")
	case x.actor != "" && !exchangeable(x.actorType):
		return x, oauth2.InvalidRequest(fmt.Sprintf("The actor_token_type %.128q is not supported; use %s, %s or %s.",
			x.actorType, TokenTypeAccessToken, TokenTypeIDToken, TokenTypeJWT))
	case req.RequestedTokenType != "" && req.RequestedTokenType != TokenTypeAccessToken:
		return x, oauth2.InvalidRequest(fmt.Sprintf("The requested_token_type %.128q is not supported; only %s is issued.",
			req.RequestedTokenType, TokenTypeAccessToken))
	case len(x.subject) > token.MaxTokenBytes || len(x.actor) > token.MaxTokenBytes:
		return x, oauth2.InvalidRequest(fmt.Sprintf("A subject or actor token is longer than %d bytes.", token.MaxTokenBytes))
	}
	return x, nil
}

// exchangeable reports whether tokens of the type can be a subject or actor token.
func exchangeable(typ string) bool {
	return typ == TokenTypeAccessToken || typ == TokenTypeIDToken || typ == TokenTypeJWT
}

// accessTokenVerifier checks the access tokens this server issued; *token.Verifier and
// *token.CachedVerifier implement it.
type accessTokenVerifier interface {
	Verify(tok string) (*token.AccessTokenClaims, error)
}

// idTokenVerifier checks the ID tokens this server issued; *token.Verifier implements it.
type idTokenVerifier interface {
	VerifyIDToken(tok string) (*token.IDToken, error)
}

// WorkloadTokens verifies ServiceAccount and WorkloadIssuer JWTs as subject and actor tokens;
// *workload.Verifier implements it.
type WorkloadTokens interface {
	VerifySubjectToken(ctx context.Context, snap *registry.Snapshot, namespace, raw string, allow workload.SubjectPolicy) (workload.SubjectToken, error)
}

var (
	_ accessTokenVerifier = (*token.Verifier)(nil)
	_ accessTokenVerifier = (*token.CachedVerifier)(nil)
	_ idTokenVerifier     = (*token.Verifier)(nil)
	_ WorkloadTokens      = (*workload.Verifier)(nil)
)

// TokenExchangeConfig is what the token exchange grant uses.
type TokenExchangeConfig struct {
	// Issuer is this server's issuer (the iss of its tokens).
	Issuer string
	Signer accessTokenSigner
	// AccessTokens and IDTokens verify subject and actor tokens this server issued.
	AccessTokens accessTokenVerifier
	IDTokens     idTokenVerifier
	// Revocations tells revoked access tokens and grants (the store).
	Revocations oauth2.Revocations
	// Workloads verifies ServiceAccount and WorkloadIssuer tokens; nil refuses them.
	Workloads WorkloadTokens
	// Metrics counts exchanges by subject source; nil counts none.
	Metrics ExchangeMetrics
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// ExchangeMetrics counts token exchanges; *metrics.Metrics implements it.
type ExchangeMetrics interface {
	TokenExchanged(subjectSource string)
}

// TokenExchange is RFC 8693's token exchange: a confidential client trades a subject token
// (and optionally an actor token) for an access token for a ProtectedResource that lets it.
// See the package documentation for the rules.
type TokenExchange struct {
	cfg TokenExchangeConfig
}

var (
	_ Grant          = TokenExchange{}
	_ audienceTarget = TokenExchange{}
)

// NewTokenExchange returns the grant.
func NewTokenExchange(cfg TokenExchangeConfig) TokenExchange {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return TokenExchange{cfg: cfg}
}

// Type is urn:ietf:params:oauth:grant-type:token-exchange.
func (TokenExchange) Type() string { return oauth2.GrantTokenExchange }

// ConfidentialOnly is true: a token is exchanged by a service that authenticates.
func (TokenExchange) ConfidentialOnly() bool { return true }

// IssuedEvent is token_exchanged.
func (TokenExchange) IssuedEvent() string { return oauth2.AuditTokenExchanged }

// takesAudience: the audience parameters name targets, like resource.
func (TokenExchange) takesAudience() {}

// party is a verified subject or actor token.
type party struct {
	// source is registry.SubjectAccessToken, SubjectIDToken, SubjectServiceAccountToken or
	// SubjectWorkloadIssuer.
	source          string
	issuer, subject string
	expiry          time.Time
	// scopes are an access token's; hasScopes is false for the other sources, which carry none.
	scopes    []string
	hasScopes bool
	// family and session are an access token's latchkey_family and sid.
	family, session string
	actor, mayAct   *token.Actor
	// jkt is the DPoP key an access token is bound to.
	jkt string
}

// Exchange verifies the subject (and actor) token against the targets' policies and issues
// the access token.
func (g TokenExchange) Exchange(ctx context.Context, req *Request) (*Response, error) {
	x, err := parseExchange(req.TokenRequest)
	if err != nil {
		return nil, err
	}
	policies, err := exchangePolicies(req)
	if err != nil {
		return nil, err
	}
	subject, err := g.verify(ctx, req, x.subject, x.subjectType, policies.allow)
	if err != nil {
		return nil, err
	}
	var actor *party
	if x.actor != "" {
		if actor, err = g.verify(ctx, req, x.actor, x.actorType, anySource); err != nil {
			return nil, err
		}
	}
	act, err := g.actorClaim(req, subject, actor)
	if err != nil {
		return nil, err
	}
	for _, p := range []*party{subject, actor} {
		if p != nil && p.jkt != "" && p.jkt != req.DPoPThumbprint {
			return nil, oauth2.ErrInvalidGrant.WithDescription(
				"The subject or actor token is bound to a DPoP key: the request needs a DPoP proof of that key.")
		}
	}
	scopes, err := exchangeScopes(req, subject)
	if err != nil {
		return nil, err
	}
	notAfter := req.AccessNotAfter()
	for _, p := range []*party{subject, actor} {
		if p == nil {
			continue
		}
		if !p.expiry.After(g.cfg.Now()) {
			// A workload token within its issuer's clock skew leeway: it would outlive it.
			return nil, invalidToken
		}
		if notAfter.IsZero() || p.expiry.Before(notAfter) {
			notAfter = p.expiry
		}
	}
	_, span := tracing.Start(ctx, spanSignAccessToken)
	at, err := g.cfg.Signer.IssueAccessToken(token.AccessTokenRequest{
		Client: req.Client, Subject: subject.subject, Scopes: scopes, Audiences: req.Resources, NotAfter: notAfter,
		FamilyID: subject.family, SessionID: subject.session, DPoPThumbprint: req.DPoPThumbprint, Actor: act,
	})
	tracing.End(span, err)
	if err != nil {
		return nil, err
	}
	resp := &Response{
		AccessToken: at.Token, AccessTokenID: at.ID, ExpiresIn: at.ExpiresIn, Scope: scopes, IssuedTokenType: TokenTypeAccessToken,
		Subject: subject.subject, Targets: req.Resources, SubjectSource: subject.source,
	}
	if act != nil {
		resp.Actor = act.Subject
	}
	if g.cfg.Metrics != nil {
		g.cfg.Metrics.TokenExchanged(subject.source)
	}
	return resp, nil
}

// targetPolicies are the ProtectedResources of a request's targets and the requester's
// exchange policy of each.
type targetPolicies struct {
	resources  []*registry.ProtectedResource
	requesters []registry.ExchangeRequester
}

// exchangePolicies finds the ProtectedResource of every target and the requester's exchange
// policy there: no target, a target that is no ProtectedResource's audience, or one that does
// not list the requester, is invalid_target (the same description for the last two, so that a
// client cannot probe for resources it may not use).
func exchangePolicies(req *Request) (targetPolicies, error) {
	if len(req.Resources) == 0 {
		return targetPolicies{}, oauth2.ErrInvalidTarget.WithDescription(
			"A token exchange needs a target: a resource or audience parameter.")
	}
	var tp targetPolicies
	for _, t := range req.Resources {
		pr, ok := req.Snapshot.ProtectedResource(t)
		var er registry.ExchangeRequester
		if ok {
			er, ok = pr.ExchangeRequester(req.Client.Source)
		}
		if !ok {
			return targetPolicies{}, oauth2.ErrInvalidTarget.WithDescription(
				fmt.Sprintf("The client may not exchange tokens for %.128q.", t))
		}
		tp.resources = append(tp.resources, pr)
		tp.requesters = append(tp.requesters, er)
	}
	return tp, nil
}

// allow is the subject token policy of every target (workload.SubjectPolicy): each must list
// the source and, for a WorkloadIssuer's token, the issuer (or name none).
func (tp targetPolicies) allow(source, issuer string) error {
	for i, er := range tp.requesters {
		ok := slices.Contains(er.SubjectTokenSources, source)
		if ok && source == registry.SubjectWorkloadIssuer && len(er.WorkloadIssuers) > 0 {
			ok = slices.Contains(er.WorkloadIssuers, issuer)
		}
		if !ok {
			return oauth2.ErrInvalidTarget.WithDescription(fmt.Sprintf(
				"The client may not exchange a subject token of source %s for %.128q.", source, tp.resources[i].Audience))
		}
	}
	return nil
}

// anySource lets an actor token be of any source the server verifies.
func anySource(string, string) error { return nil }

// invalidToken is the invalid_grant of a subject or actor token that is not valid.
var invalidToken = oauth2.ErrInvalidGrant.WithDescription("The subject or actor token is invalid, expired or revoked.")

// verify checks a subject or actor token of the type, asking allow before it is verified.
func (g TokenExchange) verify(ctx context.Context, req *Request, raw, typ string, allow workload.SubjectPolicy) (*party, error) {
	switch typ {
	case TokenTypeAccessToken:
		if err := allow(registry.SubjectAccessToken, ""); err != nil {
			return nil, err
		}
		c, err := g.cfg.AccessTokens.Verify(raw)
		if err != nil {
			return nil, invalidToken.WithCause(err)
		}
		active, err := oauth2.AccessTokenActive(ctx, req.Snapshot, g.cfg.Revocations, c)
		switch {
		case err != nil:
			return nil, err
		case !active:
			return nil, invalidToken
		}
		return &party{
			source: registry.SubjectAccessToken, issuer: g.cfg.Issuer, subject: c.Subject,
			expiry: time.Unix(c.Expiry, 0), scopes: strings.Fields(c.Scope), hasScopes: true,
			family: c.Family(), session: c.SessionID, actor: c.Actor, mayAct: c.MayAct, jkt: c.DPoPThumbprint(),
		}, nil
	case TokenTypeIDToken:
		if err := allow(registry.SubjectIDToken, ""); err != nil {
			return nil, err
		}
		c, err := g.cfg.IDTokens.VerifyIDToken(raw)
		if err != nil {
			return nil, invalidToken.WithCause(err)
		}
		if c.ClientID != req.Client.ID {
			return nil, oauth2.ErrInvalidGrant.WithDescription("An ID token can only be exchanged by the client it was issued to.")
		}
		if u, ok := req.Snapshot.UserBySubject(c.Subject); !ok || u.Disabled {
			return nil, invalidToken
		}
		// No sid: an access token with a sid and no latchkey_family would be read as one of
		// a family named by the sid (token.AccessTokenClaims.Family).
		return &party{
			source: registry.SubjectIDToken, issuer: g.cfg.Issuer, subject: c.Subject, expiry: c.Expiry,
			actor: c.Actor, mayAct: c.MayAct,
		}, nil
	}
	if g.cfg.Workloads == nil {
		return nil, oauth2.ErrInvalidGrant.WithDescription("This server does not verify workload tokens.")
	}
	w, err := g.cfg.Workloads.VerifySubjectToken(ctx, req.Snapshot, req.Client.Namespace, raw, allow)
	if err != nil {
		return nil, err
	}
	p := &party{source: w.Source, issuer: w.Issuer, subject: w.Subject, expiry: w.Expiry}
	if p.actor, err = actorOf(w.Claims["act"]); err == nil {
		p.mayAct, err = actorOf(w.Claims["may_act"])
	}
	if err != nil {
		return nil, oauth2.ErrInvalidGrant.WithDescription("The act or may_act claim of the token is malformed.")
	}
	return p, nil
}

// actorOf reads an act or may_act claim of a workload token (a JSON object with sub); nil
// when absent.
func actorOf(claim any) (*token.Actor, error) {
	if claim == nil {
		return nil, nil
	}
	b, err := json.Marshal(claim)
	if err != nil {
		return nil, err
	}
	var a token.Actor
	if err := json.Unmarshal(b, &a); err != nil {
		return nil, err
	}
	if a.Subject == "" {
		return nil, fmt.Errorf("no sub")
	}
	return &a, nil
}

// actorClaim checks the subject token's may_act against the actor (the actor token's sub and
// iss, else the requesting client) and returns the act claim of the new token: the actor with
// the subject token's act nested in it (RFC 8693 4.1), or without an actor token the subject
// token's act unchanged (the chain is kept, never dropped).
func (g TokenExchange) actorClaim(req *Request, subject, actor *party) (*token.Actor, error) {
	sub, iss := req.Client.ID, g.cfg.Issuer
	if actor != nil {
		sub, iss = actor.subject, actor.issuer
	}
	if m := subject.mayAct; m != nil && (m.Subject != sub || (m.Issuer != "" && m.Issuer != iss)) {
		return nil, oauth2.ErrInvalidGrant.WithDescription("The subject token's may_act claim does not name this actor.")
	}
	act := subject.actor
	if actor != nil {
		act = &token.Actor{Subject: actor.subject, Actor: subject.actor}
		if actor.issuer != g.cfg.Issuer {
			act.Issuer = actor.issuer
		}
	}
	if act.Depth() > MaxActorDepth {
		return nil, oauth2.ErrInvalidGrant.WithDescription(fmt.Sprintf("The act chain would be longer than %d actors.", MaxActorDepth))
	}
	return act, nil
}

// exchangeScopes applies the down-scoping rule. A scope parameter was checked against the
// requester's scope policy and narrowed to what the targets own (oauth2.Target) by the
// endpoint; each scope left must be the subject access token's, else invalid_scope. Without a
// scope parameter they are the subject access token's scopes (the other sources carry none:
// the requester's defaults), narrowed to those the requester may have and the targets own
// (oauth2.ResourceScopes). Never wider than any of them.
func exchangeScopes(req *Request, subject *party) ([]string, error) {
	if strings.Trim(req.Scope, " ") != "" {
		for _, s := range req.Scopes {
			if subject.hasScopes && !slices.Contains(subject.scopes, s) {
				return nil, oauth2.ErrInvalidScope.WithDescription(fmt.Sprintf("Scope %.64q is not granted to the subject token.", s))
			}
		}
		return req.Scopes, nil
	}
	if !subject.hasScopes {
		return req.Scopes, nil
	}
	out := make([]string, 0, len(subject.scopes))
	for _, s := range subject.scopes {
		if oauth2.CheckScope(req.Snapshot, req.Client, s) == nil {
			out = append(out, s)
		}
	}
	return oauth2.ResourceScopes(req.Snapshot, req.Resources, out), nil
}
