package oauth2

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

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
	writeTokenResponse(w, resp)
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
	}
	return resp, err
}

// writeTokenResponse writes a successful token response (RFC 6749 5.1), never cached.
func writeTokenResponse(w http.ResponseWriter, resp *TokenResponse) {
	typ := resp.TokenType
	if typ == "" {
		typ = "Bearer"
	}
	b := make([]byte, 0, len(resp.AccessToken)+len(resp.RefreshToken)+len(resp.IDToken)+160)
	b = append(b, `{"access_token":`...)
	b = token.AppendJSONString(b, resp.AccessToken)
	b = append(b, `,"token_type":`...)
	b = token.AppendJSONString(b, typ)
	b = append(b, `,"expires_in":`...)
	b = strconv.AppendInt(b, resp.ExpiresIn, 10)
	if len(resp.Scope) > 0 {
		b = append(b, `,"scope":`...)
		b = token.AppendScope(b, resp.Scope)
	}
	if resp.RefreshToken != "" {
		b = append(b, `,"refresh_token":`...)
		b = token.AppendJSONString(b, resp.RefreshToken)
	}
	if resp.IDToken != "" {
		b = append(b, `,"id_token":`...)
		b = token.AppendJSONString(b, resp.IDToken)
	}
	b = append(b, '}')

	h := w.Header()
	h.Set("Content-Type", contentTypeJSON)
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}
