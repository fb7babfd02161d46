package oauth2

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/store"
	"github.com/latchkey-dev/latchkey/server/token"
)

// inactive is the whole answer for a token that is not active (RFC 7662 2.2).
const inactive = `{"active":false}`

// serveIntrospect is token introspection (RFC 7662). Only confidential clients may introspect
// (a public client is invalid_client: its "authentication" proves nothing, and RFC 7662 2.1
// requires authorization against token scanning). Any confidential client may introspect any
// access token, as a resource server does; a refresh token only by the client it was issued
// to, else it is reported inactive. Expired, revoked, malformed and foreign tokens, tokens of
// a deleted client or of a missing or disabled user are {"active":false}.
func (e *tokenEndpoints) serveIntrospect(w http.ResponseWriter, r *http.Request) {
	req, client, snap, err := e.clientRequest(r)
	if err == nil && isPublic(client) {
		err = clientAuthFailed(req, "A public client may not introspect tokens.")
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	body, err := e.introspect(r.Context(), snap, client, req.Token)
	if err != nil {
		writeError(w, r, storeUnavailable(err))
		return
	}
	writeNoStoreJSON(w, body)
}

// introspect returns the JSON answer for the token; an error means the store failed.
func (e *tokenEndpoints) introspect(ctx context.Context, snap *registry.Snapshot, client *registry.Client, tok string) ([]byte, error) {
	if wellFormedRefreshToken(tok) {
		return e.introspectRefresh(ctx, snap, client, tok)
	}
	c, err := e.verifier.verify(tok)
	if err != nil {
		return []byte(inactive), nil //nolint:nilerr // an invalid token is inactive, not a failure
	}
	active, err := e.verifier.active(ctx, snap, c)
	if err != nil || !active {
		return []byte(inactive), err
	}
	b := make([]byte, 0, 384)
	b = append(b, `{"active":true,"token_type":"Bearer"`...)
	if c.Scope != "" {
		b = append(b, `,"scope":`...)
		b = token.AppendJSONString(b, c.Scope)
	}
	b = append(b, `,"client_id":`...)
	b = token.AppendJSONString(b, c.ClientID)
	if u, ok := snap.UserBySubject(c.Subject); ok && c.forUser() {
		b = append(b, `,"username":`...)
		b = token.AppendJSONString(b, u.Username)
	}
	b = appendTimes(b, c.Expiry.Time().Unix(), c.IssuedAt.Time().Unix())
	b = append(b, `,"sub":`...)
	b = token.AppendJSONString(b, c.Subject)
	b = appendAud(b, c.Audience)
	b = append(b, `,"iss":`...)
	b = token.AppendJSONString(b, c.Issuer)
	b = append(b, `,"jti":`...)
	b = token.AppendJSONString(b, c.ID)
	if c.forUser() {
		b = append(b, `,"sid":`...)
		b = token.AppendJSONString(b, c.SessionID)
	}
	return append(b, '}'), nil
}

// introspectRefresh answers for a refresh token: active only for its own client, while it is
// the family's current token and its user can still log in.
func (e *tokenEndpoints) introspectRefresh(ctx context.Context, snap *registry.Snapshot, client *registry.Client, tok string) ([]byte, error) {
	rec, err := e.tokens.store.GetRefresh(ctx, store.HashOf(tok))
	switch {
	case errors.Is(err, store.ErrUnavailable):
		return nil, err
	case err != nil, rec.ClientID != client.ID:
		return []byte(inactive), nil //nolint:nilerr // unknown, expired, rotated or revoked: inactive
	}
	u, ok := snap.UserBySubject(rec.Subject)
	if !ok || u.Disabled {
		return []byte(inactive), nil
	}
	b := make([]byte, 0, 256)
	b = append(b, `{"active":true,"token_type":"refresh_token"`...)
	if len(rec.Scopes) > 0 {
		b = append(b, `,"scope":`...)
		b = token.AppendScope(b, rec.Scopes)
	}
	b = append(b, `,"client_id":`...)
	b = token.AppendJSONString(b, rec.ClientID)
	b = append(b, `,"username":`...)
	b = token.AppendJSONString(b, u.Username)
	b = appendTimes(b, rec.ExpiresAt.Unix(), rec.IssuedAt.Unix())
	b = append(b, `,"sub":`...)
	b = token.AppendJSONString(b, rec.Subject)
	b = append(b, `,"iss":`...)
	b = token.AppendJSONString(b, e.verifier.issuer)
	b = append(b, `,"sid":`...)
	b = token.AppendJSONString(b, rec.FamilyID)
	return append(b, '}'), nil
}

func appendTimes(b []byte, exp, iat int64) []byte {
	b = append(b, `,"exp":`...)
	b = strconv.AppendInt(b, exp, 10)
	b = append(b, `,"iat":`...)
	return strconv.AppendInt(b, iat, 10)
}

// appendAud writes aud as the token has it: one value as a string, several as an array.
func appendAud(b []byte, aud []string) []byte {
	switch len(aud) {
	case 0:
		return b
	case 1:
		b = append(b, `,"aud":`...)
		return token.AppendJSONString(b, aud[0])
	}
	b = append(b, `,"aud":[`...)
	for i, a := range aud {
		if i > 0 {
			b = append(b, ',')
		}
		b = token.AppendJSONString(b, a)
	}
	return append(b, ']')
}
