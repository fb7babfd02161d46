package bearer

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/go-logr/logr"

	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/store"
	"github.com/latchkey-dev/latchkey/server/token"
)

// serveRevoke is token revocation (RFC 7009) at /oauth2/revoke and /oauth/revoke. The client
// authenticates as at the token endpoint (a public client by client_id alone) and sends token
// and optionally token_type_hint; the shape of the token decides what it is, so the hint is
// not needed and any value is accepted.
//
//   - A refresh token of the client revokes its whole family (the grant): every refresh token
//     of it and, through the sid claim, every access token issued from it. A rotated (old)
//     refresh token revokes nothing: the store keeps no owner for it to check.
//   - An access token of the client is revoked by its jti until it expires.
//   - Another client's token, an unknown, expired or malformed token: 200 and nothing changes
//     (RFC 7009 2.1: the client cannot tell).
//
// The answer is 200 with an empty body; a store that cannot be reached is 503
// temporarily_unavailable (RFC 7009 2.2.1), so the client can retry.
func (e *Endpoints) serveRevoke(w http.ResponseWriter, r *http.Request) {
	req, client, _, err := e.clientRequest(r)
	if err != nil {
		oauth2.WriteError(w, r, err)
		return
	}
	if err := e.revoke(r.Context(), client, req.Token); err != nil {
		oauth2.WriteError(w, r, oauth2.FromStore(err))
		return
	}
	oauth2.WriteEmpty(w, http.StatusOK)
}

// revoke revokes the token if it is the client's; an error means the store failed.
func (e *Endpoints) revoke(ctx context.Context, client *registry.Client, tok string) error {
	log := logr.FromContextOrDiscard(ctx)
	st := e.store
	if token.IsRefreshToken(tok) {
		rec, err := st.GetRefresh(ctx, store.HashOf(tok))
		switch {
		case err == nil:
		case errors.Is(err, store.ErrUnavailable):
			return err
		default: // unknown, expired, rotated, already revoked
			return nil
		}
		if rec.ClientID != client.ID {
			log.V(1).Info("revocation of another client's refresh token ignored", "client_id", client.ID)
			return nil
		}
		if err := st.RevokeFamily(ctx, rec.FamilyID, e.lifetimes.FamilyRevocationEnd(client, e.now(), rec.ExpiresAt)); err != nil {
			return err
		}
		oauth2.Audit(ctx, oauth2.AuditEvent{Event: oauth2.AuditTokenRevoked, ClientID: client.ID, Subject: rec.Subject,
			TokenRef: oauth2.TokenRef(tok), Reason: "refresh token family"})
		return nil
	}
	c, err := e.verifier.Verify(tok)
	if err != nil {
		return nil //nolint:nilerr // not ours, malformed or expired: nothing to revoke (RFC 7009 2.2)
	}
	if c.ClientID != client.ID {
		log.V(1).Info("revocation of another client's access token ignored", "client_id", client.ID)
		return nil
	}
	if err := st.RevokeToken(ctx, c.ID, time.Unix(c.Expiry, 0)); err != nil {
		return err
	}
	oauth2.Audit(ctx, oauth2.AuditEvent{Event: oauth2.AuditTokenRevoked, ClientID: client.ID, Subject: c.Subject,
		TokenRef: oauth2.AccessTokenRef(c.ID), Reason: "access token"})
	return nil
}
