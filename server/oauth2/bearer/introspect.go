package bearer

import (
	"context"
	"errors"
	"net/http"

	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/store"
	"github.com/latchkey-dev/latchkey/server/token"
)

// introspection is the JSON of an introspection answer (RFC 7662 2.2). The zero value is the
// whole answer for a token that is not active: {"active":false}.
type introspection struct {
	Active    bool           `json:"active"`
	TokenType string         `json:"token_type,omitempty"`
	Scope     string         `json:"scope,omitempty"`
	ClientID  string         `json:"client_id,omitempty"`
	Username  string         `json:"username,omitempty"`
	Expiry    int64          `json:"exp,omitempty"`
	IssuedAt  int64          `json:"iat,omitempty"`
	Subject   string         `json:"sub,omitempty"`
	Audience  token.Audience `json:"aud,omitempty"`
	Issuer    string         `json:"iss,omitempty"`
	ID        string         `json:"jti,omitempty"`
	SessionID string         `json:"sid,omitempty"`
	FamilyID  string         `json:"latchkey_family,omitempty"`
	// Confirmation is the DPoP key a bound token needs (RFC 9449 6.2).
	Confirmation *token.Confirmation `json:"cnf,omitempty"`
	// Actor is the act claim of a token a token exchange issued (RFC 8693 4.1).
	Actor *token.Actor `json:"act,omitempty"`
}

// inactive is the answer for a token that is not active.
func inactive() *introspection { return &introspection{} }

// serveIntrospect is token introspection (RFC 7662). Only declared resource servers may
// introspect (RFC 7662 4: the endpoint hands out who a token belongs to): a public client is
// invalid_client (its "authentication" proves nothing), a confidential client without
// introspection (OAuthClient spec.introspection) is 403 unauthorized_client. A resource server
// may introspect any access token; a refresh token only its own, else it is reported inactive.
// Expired, revoked, malformed and foreign tokens, tokens of a deleted client or of a missing or
// disabled user are {"active":false}.
func (e *Endpoints) serveIntrospect(w http.ResponseWriter, r *http.Request) {
	req, client, snap, err := e.clientRequest(r)
	switch {
	case err != nil:
	case oauth2.IsPublic(client):
		err = oauth2.ClientAuthFailed(req, "A public client may not introspect tokens.")
	case !client.Introspection:
		err = oauth2.ErrUnauthorizedClient.WithStatus(http.StatusForbidden).
			WithDescription("The client is not a declared resource server (OAuthClient spec.introspection), so it may not introspect tokens.")
	}
	if err != nil {
		oauth2.WriteError(w, r, err)
		return
	}
	body, err := e.introspect(r.Context(), snap, client, req.Token)
	if err != nil {
		oauth2.WriteError(w, r, oauth2.FromStore(err))
		return
	}
	oauth2.WriteJSON(w, r, http.StatusOK, body)
}

// introspect returns the answer for the token; an error means the store failed.
func (e *Endpoints) introspect(ctx context.Context, snap *registry.Snapshot, client *registry.Client, tok string) (*introspection, error) {
	if token.IsRefreshToken(tok) {
		return e.introspectRefresh(ctx, snap, client, tok)
	}
	c, err := e.verifier.Verify(tok)
	if err != nil {
		return inactive(), nil //nolint:nilerr // an invalid token is inactive, not a failure
	}
	active, err := e.active(ctx, snap, c)
	if err != nil || !active {
		return inactive(), err
	}
	ans := &introspection{
		Active: true, TokenType: "Bearer", Scope: c.Scope, ClientID: c.ClientID,
		Expiry: c.Expiry, IssuedAt: c.IssuedAt, Subject: c.Subject,
		Audience: c.Audience, Issuer: c.Issuer, ID: c.ID, Actor: c.Actor,
	}
	if jkt := c.DPoPThumbprint(); jkt != "" {
		ans.TokenType, ans.Confirmation = "DPoP", &token.Confirmation{JKT: jkt}
	}
	if u, ok := snap.UserBySubject(c.Subject); ok && c.ForUser() {
		ans.Username = u.Username
	}
	if c.ForUser() {
		ans.SessionID, ans.FamilyID = c.SessionID, c.Family()
	}
	return ans, nil
}

// introspectRefresh answers for a refresh token: active only for its own client, while it is
// the family's current token and its user can still log in.
func (e *Endpoints) introspectRefresh(ctx context.Context, snap *registry.Snapshot, client *registry.Client, tok string) (*introspection, error) {
	rec, err := e.store.GetRefresh(ctx, store.HashOf(tok))
	switch {
	case errors.Is(err, store.ErrUnavailable):
		return nil, err
	case err != nil, rec.ClientID != client.ID:
		return inactive(), nil //nolint:nilerr // unknown, expired, rotated or revoked: inactive
	}
	u, ok := snap.UserBySubject(rec.Subject)
	if !ok || u.Disabled {
		return inactive(), nil
	}
	return &introspection{
		Active: true, TokenType: "refresh_token", Scope: token.JoinScope(rec.Scopes),
		ClientID: rec.ClientID, Username: u.Username, Expiry: rec.ExpiresAt.Unix(),
		IssuedAt: rec.IssuedAt.Unix(), Subject: rec.Subject, Issuer: e.verifier.Issuer(),
		SessionID: rec.SessionID, FamilyID: rec.FamilyID,
	}, nil
}
