package browser

import (
	"errors"
	"net/http"

	"github.com/go-logr/logr"

	"github.com/latchkey-dev/latchkey/server/oauth2"
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
	a.pages.renderLogin(w, r, http.StatusOK, loginPage{
		Client: clientName(client), RequestID: id, CSRFToken: p.CSRFToken, Username: p.LoginHint,
	}, formActionSource(p.RedirectURI))
}

// handleLogin checks the password, starts a session and continues the pending request: to the
// consent page, or straight back to the client when no consent is needed.
func (a *Flow) handleLogin(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	form, id, p, client, ok := a.pendingFromForm(w, r)
	if !ok {
		return
	}
	username, pw := form.Get("username"), form.Get("password")
	page := loginPage{Client: clientName(client), RequestID: id, CSRFToken: p.CSRFToken, Username: username}
	formAction := formActionSource(p.RedirectURI)
	if username == "" || pw == "" || len(username) > maxUsernameLength || len(pw) > maxPasswordLength {
		page.Error = msgMissingCredentials
		if len(username) > maxUsernameLength {
			page.Username = ""
		}
		a.pages.renderLogin(w, r, http.StatusBadRequest, page, formAction)
		return
	}
	user, err := a.auth.Authenticate(ctx, a.registry.Snapshot(), userauth.Attempt{
		Username: username, Password: pw, Address: oauth2.ClientAddress(ctx), ClientID: client.ID,
	})
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
	case err != nil:
		a.pageStoreError(w, r, err)
		return
	}
	logr.FromContextOrDiscard(ctx).Info("login succeeded", "user", username, "client_id", client.ID)
	oauth2.Audit(ctx, oauth2.AuditEvent{Event: oauth2.AuditLoginSucceeded, ClientID: client.ID, Username: username, Subject: user.Subject})

	now := a.now().Unix()
	sessHash, err := a.sessions.start(ctx, w, r, loginSession{Subject: user.Subject, AuthTime: now})
	if err != nil {
		a.pageStoreError(w, r, err)
		return
	}
	p.Subject, p.AuthTime, p.SessionHash = user.Subject, now, sessHash[:]
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
