package oauth2

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/latchkey-dev/latchkey/server/keys"
	"github.com/latchkey-dev/latchkey/server/token"
)

// tokenEndpoint is the dispatcher of the token endpoint: it runs the steps every grant shares
// and hands the rest to the grant named by grant_type.
type tokenEndpoint struct {
	registry Registry
	grants   map[string]Grant
	maxBody  int64
}

func (t *tokenEndpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req, err := parseTokenRequest(r, t.maxBody)
	if err != nil {
		writeError(w, r, err)
		return
	}
	resp, err := t.exchange(r.Context(), req)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeTokenResponse(w, r, resp)
}

// exchange authenticates the client, applies the grant and scope policy and runs the grant.
func (t *tokenEndpoint) exchange(ctx context.Context, req *TokenRequest) (*TokenResponse, error) {
	grant, ok := t.grants[req.GrantType]
	if !ok {
		return nil, ErrUnsupportedGrantType
	}
	snap := t.registry.Snapshot()
	client, err := authenticateClient(snap, req)
	if err != nil {
		metricsOf(ctx).m.ClientAuthFailure(authMethodLabel(req.AuthMethod))
		return nil, err
	}
	if err := checkGrantAllowed(client, grant); err != nil {
		return nil, err
	}
	scopes, err := resolveScopes(ctx, snap, client, req.Scope)
	if err != nil {
		return nil, err
	}
	resp, err := grant.Exchange(ctx, &GrantRequest{TokenRequest: req, Client: client, Snapshot: snap, Scopes: scopes})
	switch {
	case err == nil && resp == nil:
		err = ErrServerError.WithCause(fmt.Errorf("grant %s returned no response", grant.Type()))
	case errors.Is(err, keys.ErrNoKey):
		// Keys arrive moments after start (or while the key Secret is repaired); a retry will
		// work, so this is temporarily_unavailable rather than server_error.
		err = ErrTemporarilyUnavailable.WithCause(err)
	case err == nil:
		// Labels of a registered client only: the client authenticated above.
		metricsOf(ctx).m.TokenIssued(grant.Type(), client.ID, client.Namespace)
		ev := AuditEvent{
			Event: AuditTokenIssued, ClientID: client.ID, GrantType: grant.Type(), Username: req.Username,
			Scopes: resp.Scope, TokenRef: TokenRef(resp.AccessToken),
		}
		if grant.Type() == grantRefreshToken {
			ev.Event = AuditRefreshRotated
		}
		audit(ctx, ev)
	case grant.Type() == grantPassword && errors.Is(err, ErrInvalidGrant):
		audit(ctx, AuditEvent{
			Event: AuditLoginFailed, ClientID: client.ID, GrantType: grant.Type(), Username: req.Username,
			Outcome: "failure", Reason: errorReason(err),
		})
	}
	return resp, err
}

// tokenResponseBody is the JSON of a successful token response (RFC 6749 5.1).
type tokenResponseBody struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	Scope        string `json:"scope,omitempty"`
	RefreshToken string `json:"refresh_token,omitempty"`
	IDToken      string `json:"id_token,omitempty"`
}

// writeTokenResponse writes a successful token response (RFC 6749 5.1), never cached.
func writeTokenResponse(w http.ResponseWriter, r *http.Request, resp *TokenResponse) {
	typ := resp.TokenType
	if typ == "" {
		typ = "Bearer"
	}
	writeNoStoreJSON(w, r, &tokenResponseBody{
		AccessToken: resp.AccessToken, TokenType: typ, ExpiresIn: resp.ExpiresIn,
		Scope: token.JoinScope(resp.Scope), RefreshToken: resp.RefreshToken, IDToken: resp.IDToken,
	})
}
