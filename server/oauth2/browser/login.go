package browser

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"slices"

	"github.com/go-logr/logr"

	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/store"
	"github.com/latchkey-dev/latchkey/server/userauth"
)

// Messages of the login page. They never say whether the username exists.
const (
	msgMissingCredentials = "Enter your username and password."
	msgBadCredentials     = "Incorrect username or password."
	msgLocked             = "Too many failed sign-in attempts. Wait a few minutes, then try again."
)

// Bounds of the login form's fields.
const (
	maxUsernameLength = 256
	maxPasswordLength = 1024
)

// serveLoginPage shows the login form of a pending request.
func (a *Flow) serveLoginPage(w http.ResponseWriter, r *http.Request) {
	id, p, client, ok := a.pendingFromQuery(w, r)
	if !ok {
		return
	}
	page := a.loginPage(id, p, client)
	page.Username = p.LoginHint
	if !page.Password && len(page.Providers) == 1 { // one way to sign in: go straight there
		a.startProvider(w, r, id, p, client, page.Providers[0].Kind, page.Providers[0].Name)
		return
	}
	a.pages.renderLogin(w, r, http.StatusOK, page, formActionSource(p.RedirectURI))
}

// loginPage is the login page of a pending request: the upstream providers the client allows
// (as links that start their sign-in) and the password form when any User exists, or when
// there is no other way to sign in.
func (a *Flow) loginPage(id string, p *pendingRequest, client *registry.Client) loginPage {
	page := loginPage{Client: clientName(client), RequestID: id, CSRFToken: p.CSRFToken}
	snap := a.registry.Snapshot()
	allowed := client
	if p.Account {
		allowed = nil // the account page: any provider
	}
	if a.upstreams != nil {
		for _, u := range upstreamChoices(snap, allowed) {
			page.Providers = append(page.Providers, providerLink{Name: u.Name, DisplayName: u.DisplayName, ID: "idp-" + u.Name})
		}
	}
	if a.ldap != nil {
		for _, u := range ldapChoices(snap, allowed) {
			page.Directories = append(page.Directories, providerLink{Name: u.Name, DisplayName: u.DisplayName})
		}
	}
	if a.github != nil {
		for _, u := range githubChoices(snap, allowed) {
			page.Providers = append(page.Providers, githubLink(u))
		}
	}
	slices.SortStableFunc(page.Providers, func(x, y providerLink) int { return cmp.Compare(x.DisplayName, y.DisplayName) })
	_, _, users := snap.Counts()
	page.Local = users > 0 || (len(page.Providers) == 0 && len(page.Directories) == 0)
	page.Password = page.Local || len(page.Directories) > 0
	return page
}

// continuedSession returns the OP session ID a login continues: the browser's session's, when
// the same user signs in again (prompt=login, max_age); a session of another user ends
// (reason replaced_by_login) and the login starts a new one ("").
func (a *Flow) continuedSession(ctx context.Context, r *http.Request, subject string) (string, error) {
	old, oldHash, ok, err := a.sessions.current(ctx, r)
	if err != nil || !ok {
		return "", err
	}
	if old.Subject == subject && old.SID != "" {
		return old.SID, nil
	}
	_, err = a.endSession(ctx, endedSession{Subject: old.Subject, SID: old.SID, Cookie: oldHash, Reason: reasonReplaced})
	return "", err
}

// handleLogin checks the password, starts a session and continues the pending request: to the
// consent page, or straight back to the client when no consent is needed.
func (a *Flow) handleLogin(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	form, id, p, client, ok := a.pendingFromForm(w, r)
	if !ok {
		return
	}
	username, pw, provider := form.Get("username"), form.Get("password"), form.Get("provider")
	page := a.loginPage(id, p, client)
	page.Username, page.Provider = username, provider
	formAction := formActionSource(p.RedirectURI)
	if username == "" || pw == "" || len(username) > maxUsernameLength || len(pw) > maxPasswordLength {
		page.Error = msgMissingCredentials
		if len(username) > maxUsernameLength {
			page.Username = ""
		}
		a.pages.renderLogin(w, r, http.StatusBadRequest, page, formAction)
		return
	}
	at := userauth.Attempt{Username: username, Password: pw, Address: oauth2.ClientAddress(ctx), ClientID: client.ID}
	var (
		user *registry.User
		err  error
	)
	if provider == "" {
		user, err = a.auth.Authenticate(ctx, a.registry.Snapshot(), at)
	} else {
		user, err = a.authenticateLDAP(ctx, p, client, provider, at)
	}
	var locked *userauth.LockedError
	switch {
	case errors.As(err, &locked):
		page.Error = msgLocked
		w.Header().Set("Retry-After", oauth2.RetryAfterSeconds(locked.RetryAfter))
		a.pages.renderLogin(w, r, http.StatusTooManyRequests, page, formAction)
		return
	case errors.Is(err, userauth.ErrBadCredentials):
		page.Error = msgBadCredentials
		a.pages.renderLogin(w, r, http.StatusBadRequest, page, formAction)
		return
	case err != nil && directoryError(err):
		a.pageLDAPError(w, r, client, provider, err)
		return
	case err != nil:
		a.pageStoreError(w, r, err)
		return
	}
	a.completeLogin(w, r, id, p, client, user)
}

// completeLogin follows a successful sign-in (a password, or an upstream provider's): it
// starts a session and continues the pending request, to the consent page, or straight back to
// the client when no consent is needed.
func (a *Flow) completeLogin(w http.ResponseWriter, r *http.Request, id string, p *pendingRequest, client *registry.Client, user *registry.User) {
	ctx := r.Context()
	logr.FromContextOrDiscard(ctx).Info("login succeeded", "user", user.Username, "client_id", client.ID, "source", user.Source)
	oauth2.Audit(ctx, oauth2.AuditEvent{Event: oauth2.AuditLoginSucceeded, ClientID: client.ID, Username: user.Username, Subject: user.Subject})

	now := a.now().Unix()
	sid, err := a.continuedSession(ctx, r, user.Subject)
	if err != nil {
		a.pageStoreError(w, r, err)
		return
	}
	sess, sessHash, err := a.sessions.start(ctx, w, r, loginSession{Subject: user.Subject, AuthTime: now, SID: sid})
	if err == nil && sid != "" {
		err = a.extendSessionGrants(ctx, sid)
	}
	if err != nil {
		a.pageStoreError(w, r, err)
		return
	}
	if p.Account {
		if err := a.store.DeleteRecord(ctx, recordAuthRequest, store.HashOf(id)); err != nil && !errors.Is(err, store.ErrNotFound) {
			a.pageStoreError(w, r, err)
			return
		}
		a.redirect(w, ".."+oauth2.AccountPath)
		return
	}
	p.Subject, p.AuthTime, p.SessionHash, p.SessionID = user.Subject, now, sessHash[:], sess.SID
	need, err := a.consentRequired(ctx, client, p)
	if err != nil {
		a.pageStoreError(w, r, err)
		return
	}
	if need || p.UserCode != "" { // a device's confirmation always shows the page; it has no redirect URI
		if err := a.savePending(ctx, id, p); err != nil {
			a.pageStoreError(w, r, err)
			return
		}
		redirectToPage(w, oauth2.ConsentPath, id)
		return
	}
	a.respondWithCode(w, r, client, p, id)
}
