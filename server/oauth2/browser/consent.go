package browser

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/go-logr/logr"

	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/store"
)

// Consent policies of a client (OAuthClient spec.consent); empty means Remember.
const (
	consentAlways = "Always"
	consentSkip   = "Skip"
)

// rememberedConsent is the record of the scopes a user allowed a client.
type rememberedConsent struct {
	Scopes []string `json:"scopes"`
}

// consentKey names the remembered consent of a user (by subject, never by username: a user
// re-created under the same username has not consented to anything) and a client.
func consentKey(subject, clientID string) store.Hash {
	return store.HashOf(fmt.Sprintf("consent\x00sub\x00%d:%s\x00%s", len(subject), subject, clientID))
}

// consentRequired applies the client's consent policy to a signed-in pending request:
// prompt=consent always shows the page; Skip never does; Always always does; Remember (the
// default) does unless the user allowed the client every requested scope before.
func (a *Flow) consentRequired(ctx context.Context, client *registry.Client, p *pendingRequest) (bool, error) {
	if p.ForceConsent {
		return true, nil
	}
	switch client.Consent {
	case consentSkip:
		return false, nil
	case consentAlways:
		return true, nil
	}
	prev, err := a.remembered(ctx, p.Subject, client.ID)
	if err != nil {
		return false, err
	}
	for _, s := range p.Scopes {
		if !slices.Contains(prev, s) {
			return true, nil
		}
	}
	return prev == nil, nil
}

// remembered returns the scopes the user allowed the client, nil when none are remembered.
func (a *Flow) remembered(ctx context.Context, subject, clientID string) ([]string, error) {
	raw, err := a.store.GetRecord(ctx, recordConsent, consentKey(subject, clientID))
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var rc rememberedConsent
	if err := json.Unmarshal(raw, &rc); err != nil {
		return nil, nil //nolint:nilerr // an unreadable record counts as none
	}
	if rc.Scopes == nil {
		rc.Scopes = []string{}
	}
	return rc.Scopes, nil
}

// remember adds the scopes to the user's remembered consent for the client.
func (a *Flow) remember(ctx context.Context, subject, clientID string, scopes []string) error {
	prev, err := a.remembered(ctx, subject, clientID)
	if err != nil {
		return err
	}
	all := slices.Clone(prev)
	for _, s := range scopes {
		if !slices.Contains(all, s) {
			all = append(all, s)
		}
	}
	if all == nil {
		all = []string{}
	}
	raw, err := json.Marshal(rememberedConsent{Scopes: all})
	if err != nil {
		return err
	}
	entry, err := json.Marshal(consentEntry{Scopes: all, At: a.now().Unix()})
	if err != nil {
		return err
	}
	if err := a.store.PutEntry(ctx, listConsents, userKey(subject), clientID, entry, a.consentTTL); err != nil {
		return err
	}
	return a.store.PutRecord(ctx, recordConsent, consentKey(subject, clientID), raw, a.consentTTL)
}

// signedIn checks that the pending request's user signed in and that the browser still has
// that session. When not, it sends the browser to the login page and returns false.
func (a *Flow) signedIn(w http.ResponseWriter, r *http.Request, id string, p *pendingRequest) bool {
	if p.Subject == "" {
		redirectToPage(w, oauth2.LoginPath, id)
		return false
	}
	sess, h, ok, err := a.sessions.current(r.Context(), r)
	if err != nil {
		a.pageStoreError(w, r, err)
		return false
	}
	if !ok || sess.Subject != p.Subject || !sameHash(h, p.SessionHash) {
		redirectToPage(w, oauth2.LoginPath, id)
		return false
	}
	if u, exists := a.registry.Snapshot().UserBySubject(p.Subject); !exists || u.Disabled {
		redirectToPage(w, oauth2.LoginPath, id)
		return false
	}
	return true
}

// serveConsentPage shows the consent form of a signed-in pending request.
func (a *Flow) serveConsentPage(w http.ResponseWriter, r *http.Request) {
	id, p, client, ok := a.pendingFromQuery(w, r)
	if !ok || !a.signedIn(w, r, id, p) {
		return
	}
	snap := a.registry.Snapshot()
	var username string
	if u, exists := snap.UserBySubject(p.Subject); exists {
		username = u.Username
	}
	items := make([]scopeItem, 0, len(p.Scopes))
	for _, name := range p.Scopes {
		items = append(items, scopeItem{Name: name, Description: oauth2.ScopeDescription(snap, name)})
	}
	a.pages.renderConsent(w, r, consentPage{
		Client: clientName(client), Username: username, RequestID: id, CSRFToken: p.CSRFToken,
		RedirectHost: redirectHost(p.RedirectURI), Scopes: items, Unverified: client.Registered, UserCode: p.UserCode,
	}, formActionSource(p.RedirectURI))
}

// handleConsent takes the user's decision: Allow issues the code (and remembers the consent
// under the Remember policy), Deny sends access_denied to the client.
func (a *Flow) handleConsent(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	form, id, p, client, ok := a.pendingFromForm(w, r)
	if !ok || !a.signedIn(w, r, id, p) {
		return
	}
	if p.UserCode != "" {
		a.decideDevice(w, r, form, id, p, client)
		return
	}
	switch form.Get("decision") {
	case "allow":
	case "deny":
		if err := a.store.DeleteRecord(ctx, recordAuthRequest, store.HashOf(id)); err != nil && !errors.Is(err, store.ErrNotFound) {
			a.pageStoreError(w, r, err)
			return
		}
		logr.FromContextOrDiscard(ctx).Info("consent denied", "sub", p.Subject, "client_id", client.ID)
		oauth2.Audit(ctx, oauth2.AuditEvent{Event: oauth2.AuditConsentDenied, ClientID: client.ID, Subject: p.Subject, Scopes: p.Scopes, Outcome: "failure", Reason: "denied"})
		a.redirectError(w, r, p.RedirectURI, p.State, oauth2.ErrAccessDenied)
		return
	default:
		a.pageError(w, r, http.StatusBadRequest, "Choose Allow or Deny.")
		return
	}
	if client.Consent != consentAlways && client.Consent != consentSkip {
		if err := a.remember(ctx, p.Subject, client.ID, p.Scopes); err != nil {
			a.pageStoreError(w, r, err)
			return
		}
	}
	logr.FromContextOrDiscard(ctx).Info("consent given", "sub", p.Subject, "client_id", client.ID, "scopes", p.Scopes)
	oauth2.Audit(ctx, oauth2.AuditEvent{Event: oauth2.AuditConsentGiven, ClientID: client.ID, Subject: p.Subject, Scopes: p.Scopes})
	a.respondWithCode(w, r, client, p, id)
}
