package browser

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/go-logr/logr"

	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/store"
)

// The lists (store.Lists) that let a logout and the account page find what a user and an OP
// session have: each entry leased as long as what it names can live, each list bounded by
// store.MaxListEntries.
const (
	// listSessions: per user (userKey), id the OP session ID, value a sessionEntry; leased for
	// the session lifetime.
	listSessions = "op-sessions"
	// listConsents: per user, id the client ID, value a consentEntry; leased for the consent
	// lifetime.
	listConsents = "consents"
	// listGrants: per user, id the refresh token family (grant) ID, value a grantEntry; leased
	// for the client's refresh token lifetime from the code's issuance.
	listGrants = "grants"
	// listSessionGrants: per OP session (sessionKey), id the family ID, value the client ID;
	// leased for what is left of the session. These are the clients that took part in it.
	listSessionGrants = "op-session-grants"
)

// userKey names a user's lists, by subject (never by username).
func userKey(subject string) store.Hash {
	return store.HashOf(fmt.Sprintf("user\x00%d:%s", len(subject), subject))
}

// sessionKey names an OP session's list.
func sessionKey(sid string) store.Hash { return store.HashOf("op-session\x00" + sid) }

// sessionEntry is an OP session in its user's list.
type sessionEntry struct {
	AuthTime int64 `json:"auth_time"`
	// Cookie is the hex of the hash its session record is stored under (never the cookie).
	Cookie string `json:"cookie"`
}

// consentEntry is a remembered consent in its user's list.
type consentEntry struct {
	Scopes []string `json:"scopes"`
	At     int64    `json:"at"`
}

// grantEntry is a grant (refresh token family) in its user's list.
type grantEntry struct {
	ClientID string `json:"client_id"`
	SID      string `json:"sid,omitempty"`
	Created  int64  `json:"created"`
}

// noteGrant lists a new grant of the client: in the user's grants, and (when the request has
// an OP session) in the session's, which records that the client took part in the session.
func (a *Flow) noteGrant(ctx context.Context, client *registry.Client, p *pendingRequest, family string) error {
	raw, err := json.Marshal(grantEntry{ClientID: client.ID, SID: p.SessionID, Created: a.now().Unix()})
	if err != nil {
		return err
	}
	ttl := a.lifetimes.AuthorizationCode(client) + a.lifetimes.Refresh(client)
	if err := a.store.PutEntry(ctx, listGrants, userKey(p.Subject), family, raw, ttl); err != nil {
		return err
	}
	if p.SessionID == "" {
		return nil
	}
	left := a.sessions.remaining(p.AuthTime)
	if left <= 0 {
		return nil
	}
	return a.store.PutEntry(ctx, listSessionGrants, sessionKey(p.SessionID), family, []byte(client.ID), left)
}

// parseHash reads the hex form of a store.Hash.
func parseHash(s string) (store.Hash, bool) {
	var h store.Hash
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(h) {
		return h, false
	}
	copy(h[:], b)
	return h, true
}

// extendSessionGrants leases the grants of an OP session that a login continues for the new
// session lifetime, so that every client that took part stays listed until the session ends.
func (a *Flow) extendSessionGrants(ctx context.Context, sid string) error {
	entries, err := a.store.ListEntries(ctx, listSessionGrants, sessionKey(sid))
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := a.store.PutEntry(ctx, listSessionGrants, sessionKey(sid), e.ID, e.Value, a.sessions.ttl); err != nil {
			return err
		}
	}
	return nil
}

// findSession returns the user's OP session sid from the user's list.
func (a *Flow) findSession(ctx context.Context, subject, sid string) (sessionEntry, bool, error) {
	entries, err := a.store.ListEntries(ctx, listSessions, userKey(subject))
	if err != nil {
		return sessionEntry{}, false, err
	}
	for _, e := range entries {
		var se sessionEntry
		if e.ID == sid && json.Unmarshal(e.Value, &se) == nil {
			return se, true, nil
		}
	}
	return sessionEntry{}, false, nil
}

// sessionClients returns the grants issued through an OP session: family ID to client ID.
func (a *Flow) sessionClients(ctx context.Context, sid string) (map[string]string, error) {
	entries, err := a.store.ListEntries(ctx, listSessionGrants, sessionKey(sid))
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(entries))
	for _, e := range entries {
		out[e.ID] = string(e.Value)
	}
	return out, nil
}

// endedSession says which session ends, why and who asked.
type endedSession struct {
	Subject, SID string
	// Cookie is the hash the session record is stored under; the zero Hash when unknown (it is
	// then read from the user's list).
	Cookie store.Hash
	// Reason is the audit reason: rp_initiated_logout or account_page.
	Reason string
	// ClientID is the client that asked (RP-initiated logout), "" for the user.
	ClientID string
}

// endSession ends an OP session: its record and its entry in the user's list are deleted, the
// grants of the clients that revoke refresh tokens at logout (spec.logout.revokeRefreshTokens)
// are revoked, the end is audited, and the SessionEndNotifier hears of it with every client
// that took part. It returns those clients' IDs.
func (a *Flow) endSession(ctx context.Context, e endedSession) ([]string, error) {
	if e.Cookie == (store.Hash{}) && e.SID != "" {
		se, ok, err := a.findSession(ctx, e.Subject, e.SID)
		if err != nil {
			return nil, err
		}
		if h, valid := parseHash(se.Cookie); ok && valid {
			e.Cookie = h
		}
	}
	if e.Cookie != (store.Hash{}) {
		if err := a.sessions.drop(ctx, e.Cookie); err != nil {
			return nil, err
		}
	}
	if e.SID == "" {
		a.auditSessionEnded(ctx, e, nil)
		return nil, nil
	}
	if err := a.store.DeleteEntry(ctx, listSessions, userKey(e.Subject), e.SID); err != nil {
		return nil, err
	}
	grants, err := a.sessionClients(ctx, e.SID)
	if err != nil {
		return nil, err
	}
	snap := a.registry.Snapshot()
	var clientIDs []string
	for _, clientID := range grants {
		if !slices.Contains(clientIDs, clientID) {
			clientIDs = append(clientIDs, clientID)
		}
	}
	slices.Sort(clientIDs)
	now := a.now()
	for _, clientID := range clientIDs {
		// The cutoff ends every family of the client started in the session, listed or not
		// (store.MaxListEntries may have pushed some out), at its next refresh.
		if c, ok := snap.Client(clientID); ok && c.LogoutRevokesRefreshTokens {
			cut := store.Cutoff{ClientID: clientID, SessionID: e.SID, At: now}
			if err := a.store.CutOffGrants(ctx, cut, a.lifetimes.CutoffEnd(now)); err != nil {
				return nil, err
			}
		}
	}
	for family, clientID := range grants {
		if c, ok := snap.Client(clientID); ok && c.LogoutRevokesRefreshTokens {
			if err := a.revokeGrant(ctx, e.Subject, family, c); err != nil {
				return nil, err
			}
		}
	}
	// Requests that end one session at the same time (a client's back end and the browser, at
	// two replicas, say) all get here: the first audits it and tells the clients, once.
	n, err := a.store.Incr(ctx, sessionEndKey(e.SID), sessionEndMemory)
	if err != nil {
		return nil, err
	}
	if n > 1 {
		return clientIDs, nil
	}
	a.auditSessionEnded(ctx, e, clientIDs)
	a.notifySessionEnded(ctx, e, clientIDs)
	return clientIDs, nil
}

// sessionEndMemory is how long the end of an OP session is remembered (sessionEndKey): far
// longer than the requests that can race to end it.
const sessionEndMemory = 10 * time.Minute

// sessionEndKey names the counter of the requests that ended an OP session.
func sessionEndKey(sid string) store.Hash { return store.HashOf("op-session-end\x00" + sid) }

// revokeGrant revokes a grant (its refresh tokens and access tokens) for as long as any of its
// tokens could live, and drops it from the user's list.
func (a *Flow) revokeGrant(ctx context.Context, subject, family string, c *registry.Client) error {
	until := a.now().Add(a.lifetimes.Refresh(c) + a.lifetimes.AuthorizationCode(c))
	if err := a.store.RevokeFamily(ctx, family, until); err != nil {
		return err
	}
	return a.store.DeleteEntry(ctx, listGrants, userKey(subject), family)
}

func (a *Flow) auditSessionEnded(ctx context.Context, e endedSession, clientIDs []string) {
	logr.FromContextOrDiscard(ctx).Info("session ended", "sub", e.Subject, "sid", e.SID, "reason", e.Reason,
		"client_id", e.ClientID, "clients", clientIDs)
	oauth2.Audit(ctx, oauth2.AuditEvent{Event: oauth2.AuditSessionEnded, Subject: e.Subject, ClientID: e.ClientID, Reason: e.Reason})
}

// notifyTimeout bounds the SessionEndNotifier's call: the user's answer waits for it.
const notifyTimeout = 5 * time.Second

// notifySessionEnded tells the SessionEndNotifier; its failure is logged and changes nothing.
func (a *Flow) notifySessionEnded(ctx context.Context, e endedSession, clientIDs []string) {
	if a.sessionEnd == nil {
		return
	}
	nctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), notifyTimeout)
	defer cancel()
	if err := a.sessionEnd.SessionEnded(nctx, e.SID, e.Subject, clientIDs); err != nil {
		logr.FromContextOrDiscard(ctx).Error(err, "session end notification failed", "sub", e.Subject, "sid", e.SID, "clients", clientIDs)
	}
}

// userGrants returns the user's grants that are not revoked: family ID to entry.
func (a *Flow) userGrants(ctx context.Context, subject string) (map[string]grantEntry, error) {
	entries, err := a.store.ListEntries(ctx, listGrants, userKey(subject))
	if err != nil {
		return nil, err
	}
	out := make(map[string]grantEntry, len(entries))
	for _, e := range entries {
		var g grantEntry
		if json.Unmarshal(e.Value, &g) != nil {
			continue
		}
		revoked, err := a.store.FamilyRevoked(ctx, e.ID)
		if err != nil {
			return nil, err
		}
		if !revoked {
			out[e.ID] = g
		}
	}
	return out, nil
}

// withdrawConsent forgets the user's consent to the client and revokes the client's grants for
// the user.
func (a *Flow) withdrawConsent(ctx context.Context, subject, clientID string) error {
	if err := a.store.DeleteRecord(ctx, recordConsent, consentKey(subject, clientID)); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if err := a.store.DeleteEntry(ctx, listConsents, userKey(subject), clientID); err != nil {
		return err
	}
	grants, err := a.userGrants(ctx, subject)
	if err != nil {
		return err
	}
	c, ok := a.registry.Snapshot().Client(clientID)
	if !ok {
		c = &registry.Client{ID: clientID} // deleted since: its grants still go, for the longest default lifetime
	}
	// The cutoff ends every family of the client for the user at its next refresh, also those
	// no longer listed (their list entry's lease ended while they kept rotating) and the
	// password grant's (never listed); the listed ones are revoked at once below, which also
	// ends their access tokens.
	now := a.now()
	if err := a.store.CutOffGrants(ctx, store.Cutoff{ClientID: clientID, Subject: subject, At: now}, a.lifetimes.CutoffEnd(now)); err != nil {
		return err
	}
	for family, g := range grants {
		if g.ClientID == clientID {
			if err := a.revokeGrant(ctx, subject, family, c); err != nil {
				return err
			}
		}
	}
	logr.FromContextOrDiscard(ctx).Info("consent withdrawn", "sub", subject, "client_id", clientID)
	oauth2.Audit(ctx, oauth2.AuditEvent{Event: oauth2.AuditConsentWithdrawn, Subject: subject, ClientID: clientID})
	return nil
}
