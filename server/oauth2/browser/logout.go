package browser

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/go-logr/logr"

	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/redirecturi"
	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/store"
	"github.com/latchkey-dev/latchkey/server/token"
)

// Errors of the logout endpoint. They are shown, never redirected.
var (
	// ErrInvalidIDTokenHint: the id_token_hint is not an ID token this server signed.
	ErrInvalidIDTokenHint = oauth2.ErrInvalidRequest.WithDescription("The id_token_hint is not an ID token issued by this server.")
	// ErrLogoutClientMismatch: client_id is not the audience of the id_token_hint.
	ErrLogoutClientMismatch = oauth2.ErrInvalidRequest.WithDescription("The client_id is not the client the id_token_hint was issued to.")
	// ErrUnknownClientOrLogoutRedirect is the same answer for an unknown client and a
	// post_logout_redirect_uri the client has not registered (or without a client to check it
	// against), so the page does not tell which client IDs exist.
	ErrUnknownClientOrLogoutRedirect = oauth2.ErrInvalidRequest.WithDescription(
		"The client_id is not a registered client, or the post_logout_redirect_uri is not registered for it (an id_token_hint or client_id must name the client).")
)

// Decisions of the logout confirmation form.
const (
	decisionLogout = "logout"
	decisionStay   = "stay"
)

// logoutTarget is what a logout request names: the verified hint (if any), the client (if
// known) and, when it was sent and is registered, where to send the browser afterwards.
type logoutTarget struct {
	hint     *token.IDTokenHint
	client   *registry.Client
	redirect string
	state    string
}

// clientID is the ID of the target's client, "" when none.
func (t *logoutTarget) clientID() string {
	if t.client == nil {
		return ""
	}
	return t.client.ID
}

// serveLogout is the end_session_endpoint (OpenID Connect RP-Initiated Logout 1.0), GET and
// POST. With a valid id_token_hint the user is signed out of the session the hint names (when
// the hint's client took part in it) and sent to the post_logout_redirect_uri with state;
// without one, or when the browser is signed in to another session, the user confirms first.
// The confirmation form posts back here with decision and the session's CSRF token.
func (a *Flow) serveLogout(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if !a.admitPage(w, r, "logout") {
		return
	}
	raw, err := a.rawParams(r)
	if err != nil {
		a.logoutErrorPage(w, r, err)
		return
	}
	req, err := parseLogoutRequest(raw)
	if err != nil {
		a.logoutErrorPage(w, r, err)
		return
	}
	if r.Method == http.MethodPost && req.Decision != "" {
		a.handleLogoutConfirmation(w, r, req)
		return
	}
	target, err := a.logoutTarget(req)
	if err != nil {
		a.logoutErrorPage(w, r, err)
		return
	}
	sess, sessHash, signedIn, err := a.sessions.current(ctx, r)
	if err != nil {
		a.pageStoreError(w, r, err)
		return
	}
	h := target.hint
	if h == nil {
		if signedIn {
			a.renderLogoutConfirmation(w, r, sess, target)
			return
		}
		a.signedOut(w, r, target, false)
		return
	}
	if h.SessionID == "" {
		// A hint without sid (issued before sessions had IDs): the browser's session, when it
		// is the hint's user's.
		if signedIn && sess.Subject == h.Subject {
			if !a.logoutBrowserSession(w, r, sess, sessHash, target) {
				return
			}
			signedIn = false
		}
	} else {
		ended, err := a.endHintedSession(w, r, h, target, sess, signedIn)
		if err != nil {
			a.pageStoreError(w, r, err)
			return
		}
		if ended && signedIn && sess.SID == h.SessionID {
			signedIn = false
		}
	}
	if signedIn {
		// The browser is signed in to another session (another user's, or a newer one): the
		// user decides about that one.
		a.renderLogoutConfirmation(w, r, sess, target)
		return
	}
	a.signedOut(w, r, target, true)
}

// endHintedSession ends the OP session a hint names, when it is the hint's user's and the
// hint's client took part in it: a client can end the sessions it was signed in through, and no
// other. The browser need not send the session's cookie (a cross-site POST does not). It reports
// whether a session ended.
func (a *Flow) endHintedSession(w http.ResponseWriter, r *http.Request, h *token.IDTokenHint, target *logoutTarget, sess loginSession, signedIn bool) (bool, error) {
	ctx := r.Context()
	if _, found, err := a.findSession(ctx, h.Subject, h.SessionID); err != nil || !found {
		return false, err
	}
	grants, err := a.sessionClients(ctx, h.SessionID)
	if err != nil {
		return false, err
	}
	tookPart := false
	for _, c := range grants {
		tookPart = tookPart || c == h.ClientID
	}
	if !tookPart {
		logr.FromContextOrDiscard(ctx).Info("logout refused: the hint's client did not take part in the session", "client_id", h.ClientID, "sub", h.Subject)
		return false, nil
	}
	if _, err := a.endSession(ctx, endedSession{Subject: h.Subject, SID: h.SessionID, Reason: reasonRPInitiated, ClientID: target.clientID()}); err != nil {
		return false, err
	}
	if signedIn && sess.SID == h.SessionID {
		a.clearSessionCookie(w)
	}
	return true, nil
}

// Audit reasons of a session's end.
const (
	reasonRPInitiated = "rp_initiated_logout"
	reasonAccountPage = "account_page"
	reasonReplaced    = "replaced_by_login"
)

// logoutBrowserSession ends the browser's own session and clears its cookie. On failure it has
// written the answer and returns false.
func (a *Flow) logoutBrowserSession(w http.ResponseWriter, r *http.Request, sess loginSession, sessHash store.Hash, target *logoutTarget) bool {
	if _, err := a.endSession(r.Context(), endedSession{
		Subject: sess.Subject, SID: sess.SID, Cookie: sessHash, Reason: reasonRPInitiated, ClientID: target.clientID(),
	}); err != nil {
		a.pageStoreError(w, r, err)
		return false
	}
	a.clearSessionCookie(w)
	return true
}

func (a *Flow) clearSessionCookie(w http.ResponseWriter) {
	http.SetCookie(w, a.cookies.cookie(a.cookies.session, "", -1))
}

// logoutTarget verifies the hint and finds the client and the post-logout redirect URI, which
// must be one the client registered (matched like redirect URIs).
func (a *Flow) logoutTarget(req *LogoutRequest) (*logoutTarget, error) {
	t := &logoutTarget{}
	clientID := req.ClientID
	if req.IDTokenHint != "" {
		if a.hints == nil {
			return nil, ErrInvalidIDTokenHint
		}
		h, err := a.hints.VerifyIDTokenHint(req.IDTokenHint)
		if err != nil {
			return nil, ErrInvalidIDTokenHint.WithCause(err)
		}
		if clientID != "" && clientID != h.ClientID {
			return nil, ErrLogoutClientMismatch
		}
		t.hint, clientID = h, h.ClientID
	}
	// An unknown client (or a hint's deleted one) is no client: refused only with a redirect
	// URI to check, with the same answer as an unregistered one, so that the endpoint does not
	// tell which client IDs exist.
	if clientID != "" {
		if c, ok := a.registry.Snapshot().Client(clientID); ok {
			t.client = c
		}
	}
	if req.PostLogoutRedirectURI != "" {
		if t.client == nil {
			return nil, ErrUnknownClientOrLogoutRedirect
		}
		u, ok := redirecturi.Registered(t.client.PostLogoutRedirectURIs, req.PostLogoutRedirectURI)
		if !ok {
			return nil, ErrUnknownClientOrLogoutRedirect
		}
		t.redirect, t.state = u, req.State
	}
	return t, nil
}

// renderLogoutConfirmation asks the signed-in user to confirm the sign-out.
func (a *Flow) renderLogoutConfirmation(w http.ResponseWriter, r *http.Request, sess loginSession, t *logoutTarget) {
	if sess.CSRF == "" {
		// A session from before sessions had CSRF tokens cannot post the form: end it here.
		a.clearSessionCookie(w)
		a.signedOut(w, r, t, false)
		return
	}
	var username string
	if u, ok := a.registry.Snapshot().UserBySubject(sess.Subject); ok {
		username = u.Username
	}
	data := logoutPage{Username: username, CSRFToken: sess.CSRF, State: t.state, PostLogoutRedirectURI: t.redirect}
	if t.client != nil {
		data.Client, data.ClientID = clientName(t.client), t.client.ID
	}
	a.pages.renderLogout(w, r, data, formActionSource(t.redirect))
}

// handleLogoutConfirmation takes the user's decision on the confirmation page.
func (a *Flow) handleLogoutConfirmation(w http.ResponseWriter, r *http.Request, req *LogoutRequest) {
	if err := a.cop.Check(r); err != nil {
		a.pageError(w, r, http.StatusForbidden, msgLogoutBlocked)
		return
	}
	sess, sessHash, signedIn, err := a.sessions.current(r.Context(), r)
	if err != nil {
		a.pageStoreError(w, r, err)
		return
	}
	req.IDTokenHint = "" // the form carries none; the user's confirmation stands for it
	target, err := a.logoutTarget(req)
	if err != nil {
		a.logoutErrorPage(w, r, err)
		return
	}
	if !signedIn {
		a.signedOut(w, r, target, false)
		return
	}
	if sess.CSRF == "" || subtle.ConstantTimeCompare([]byte(req.CSRFToken), []byte(sess.CSRF)) != 1 {
		logr.FromContextOrDiscard(r.Context()).Info("form refused: CSRF token mismatch", "path", r.URL.Path)
		a.pageError(w, r, http.StatusForbidden, msgLogoutBlocked)
		return
	}
	switch req.Decision {
	case decisionLogout:
		if a.logoutBrowserSession(w, r, sess, sessHash, target) {
			a.signedOut(w, r, target, true)
		}
	case decisionStay:
		a.pages.renderSignedOut(w, r, signedOutPage{Title: "You are still signed in", Message: "You chose to stay signed in."})
	default:
		a.pageError(w, r, http.StatusBadRequest, "Choose Sign out or Stay signed in.")
	}
}

// signedOut ends a logout: a 303 to the post-logout redirect URI with state when redirect is
// allowed and there is one, else the signed-out page (with a link back to the client when
// there is a redirect URI).
func (a *Flow) signedOut(w http.ResponseWriter, r *http.Request, t *logoutTarget, redirect bool) {
	if redirect && t.redirect != "" {
		loc := t.redirect
		if t.state != "" {
			loc = appendQuery(loc, "state", t.state)
		}
		a.redirect(w, loc)
		return
	}
	data := signedOutPage{Title: "You are signed out", Message: "You have been signed out."}
	if t.redirect != "" {
		data.ReturnURI = t.redirect
		if t.client != nil {
			data.Client = clientName(t.client)
		}
	}
	a.pages.renderSignedOut(w, r, data)
}

// appendQuery adds key=value to the query of a URI (which has no fragment).
func appendQuery(uri, key, value string) string {
	sep := "&"
	switch {
	case !strings.Contains(uri, "?"):
		sep = "?"
	case strings.HasSuffix(uri, "?"), strings.HasSuffix(uri, "&"):
		sep = ""
	}
	return uri + sep + key + "=" + url.QueryEscape(value)
}

// Per client address, the logout endpoint and the account page's forms each take at most
// pageRatePerMinute requests a minute after a burst of pageRateBurst (store.TakeRate, shared by
// every replica): far above what a person does, and a bound on what a script can make the
// server verify, list and revoke.
const (
	pageRatePerMinute = 60
	pageRateBurst     = 60
)

// admitPage applies the per-address rate limit of a page (logout, account); when it refuses,
// it has answered 429 with Retry-After.
func (a *Flow) admitPage(w http.ResponseWriter, r *http.Request, page string) bool {
	ctx := r.Context()
	addr := oauth2.ClientAddress(ctx)
	wait, err := a.store.TakeRate(ctx, store.HashOf("page-rate\x00"+page+"\x00"+addr), pageRatePerMinute, pageRateBurst)
	if err != nil {
		a.pageStoreError(w, r, err)
		return false
	}
	if wait <= 0 {
		return true
	}
	logr.FromContextOrDiscard(ctx).Info("page rate limit reached", "page", page, "client_addr", addr)
	oauth2.Audit(ctx, oauth2.AuditEvent{Event: oauth2.AuditRateLimited, Outcome: "failure", Reason: page})
	w.Header().Set("Retry-After", oauth2.RetryAfterSeconds(wait))
	a.pageError(w, r, http.StatusTooManyRequests, "Too many requests from your network. Wait a minute, then try again.")
	return false
}

// Messages of the logout pages.
const msgLogoutBlocked = "This form could not be verified, so it was not accepted. You have not been signed out."

// logoutErrorPage shows a logout request that cannot be answered (never a redirect).
func (a *Flow) logoutErrorPage(w http.ResponseWriter, r *http.Request, err error) {
	var oe *oauth2.Error
	if !errors.As(err, &oe) {
		oe = oauth2.ErrInvalidRequest
	}
	logr.FromContextOrDiscard(r.Context()).V(1).Info("logout request refused", "error", oe.Code(), "description", oe.Description(), "reason", errors.Unwrap(err))
	a.pages.renderError(w, r, http.StatusBadRequest, errorPage{
		Title:   "Sign-out request rejected",
		Message: "The application sent an invalid sign-out request, so you have not been signed out. Go back to the application and try again, or contact its developer.",
		Detail:  oe.Description(),
	})
}
