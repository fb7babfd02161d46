package browser

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"

	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/store"
)

// Actions of the account page's forms.
const (
	actionWithdraw   = "withdraw"
	actionEndSession = "end_session"
)

// accountSession returns the browser's session when the account page may be shown for it: a
// session of an existing, enabled user, with an OP session ID and a CSRF token (a session
// from before those existed signs in again). Otherwise it sends the browser to the login page
// (ok false).
func (a *Flow) accountSession(w http.ResponseWriter, r *http.Request) (loginSession, store.Hash, *registry.User, bool) {
	sess, h, ok, err := a.sessions.current(r.Context(), r)
	if err != nil {
		a.pageStoreError(w, r, err)
		return sess, h, nil, false
	}
	var u *registry.User
	if ok {
		u, ok = a.registry.Snapshot().UserBySubject(sess.Subject)
		ok = ok && !u.Disabled && sess.SID != "" && sess.CSRF != ""
	}
	if !ok {
		a.accountLogin(w, r)
		return sess, h, nil, false
	}
	return sess, h, u, true
}

// accountLogin sends the browser to the login page with a pending request of the account page.
func (a *Flow) accountLogin(w http.ResponseWriter, r *http.Request) {
	p := &pendingRequest{Account: true}
	browser, err := browserID(w, r, a.cookies)
	if err == nil {
		h := store.HashOf(browser)
		p.BrowserHash = h[:]
		p.CSRFToken, err = oauth2.NewSecret()
	}
	var id string
	if err == nil {
		id, err = oauth2.NewSecret()
	}
	if err == nil {
		err = a.savePending(r.Context(), id, p)
	}
	if err != nil {
		a.pageStoreError(w, r, err)
		return
	}
	redirectToPage(w, oauth2.LoginPath, id)
}

// serveAccount shows the account page: the remembered consents, the OP sessions and the grants
// of the signed-in user.
func (a *Flow) serveAccount(w http.ResponseWriter, r *http.Request) {
	sess, _, user, ok := a.accountSession(w, r)
	if !ok {
		return
	}
	data, err := a.accountData(r, sess, user)
	if err != nil {
		a.pageStoreError(w, r, err)
		return
	}
	a.pages.renderAccount(w, r, data)
}

// accountData gathers what the account page lists.
func (a *Flow) accountData(r *http.Request, sess loginSession, user *registry.User) (accountPage, error) {
	ctx := r.Context()
	snap := a.registry.Snapshot()
	name := func(clientID string) string {
		if c, ok := snap.Client(clientID); ok {
			return clientName(c)
		}
		return clientID
	}
	data := accountPage{Username: user.Username, CSRFToken: sess.CSRF}
	consents, err := a.store.ListEntries(ctx, listConsents, userKey(sess.Subject))
	if err != nil {
		return data, err
	}
	for _, e := range consents {
		var ce consentEntry
		if json.Unmarshal(e.Value, &ce) != nil {
			continue
		}
		data.Consents = append(data.Consents, accountConsent{
			ClientID: e.ID, Client: name(e.ID), Scopes: strings.Join(ce.Scopes, " "), When: formatTime(ce.At),
		})
	}
	sessions, err := a.store.ListEntries(ctx, listSessions, userKey(sess.Subject))
	if err != nil {
		return data, err
	}
	for _, e := range sessions {
		var se sessionEntry
		if json.Unmarshal(e.Value, &se) != nil {
			continue
		}
		grants, err := a.sessionClients(ctx, e.ID)
		if err != nil {
			return data, err
		}
		var clients []string
		for _, c := range grants {
			if n := name(c); !slices.Contains(clients, n) {
				clients = append(clients, n)
			}
		}
		slices.Sort(clients)
		data.Sessions = append(data.Sessions, accountSession{
			SID: e.ID, Since: formatTime(se.AuthTime), Current: e.ID == sess.SID, Clients: strings.Join(clients, ", "),
		})
	}
	grants, err := a.userGrants(ctx, sess.Subject)
	if err != nil {
		return data, err
	}
	data.Grants = groupGrants(grants, sess.SID, name)
	return data, nil
}

// groupGrants makes one line per client of the user's grants: how many, since when, and
// whether one was issued through the browser's session; ordered by client name.
func groupGrants(grants map[string]grantEntry, sid string, name func(clientID string) string) []accountGrant {
	type group struct {
		first   int64
		count   int
		current bool
	}
	byClient := map[string]*group{}
	for _, g := range grants {
		gr := byClient[g.ClientID]
		if gr == nil {
			gr = &group{first: g.Created}
			byClient[g.ClientID] = gr
		}
		gr.count++
		gr.first = min(gr.first, g.Created)
		gr.current = gr.current || (g.SID != "" && g.SID == sid)
	}
	out := make([]accountGrant, 0, len(byClient))
	for clientID, gr := range byClient {
		out = append(out, accountGrant{Client: name(clientID), Since: formatTime(gr.first), Count: gr.count, CurrentSession: gr.current})
	}
	slices.SortFunc(out, func(x, y accountGrant) int { return strings.Compare(x.Client, y.Client) })
	return out
}

// formatTime is how the account page writes a time.
func formatTime(unix int64) string { return time.Unix(unix, 0).UTC().Format("2006-01-02 15:04 UTC") }

// handleAccount takes the account page's forms: withdraw a consent, end a session.
func (a *Flow) handleAccount(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if !a.admitPage(w, r, "account") {
		return
	}
	body, err := oauth2.ReadFormBody(r, a.maxBody)
	var form url.Values
	if err == nil {
		form, err = url.ParseQuery(string(body))
	}
	if err != nil {
		a.pageError(w, r, http.StatusBadRequest, "The form could not be read.")
		return
	}
	sess, sessHash, _, ok := a.accountSession(w, r)
	if !ok {
		return
	}
	if subtle.ConstantTimeCompare([]byte(form.Get("csrf_token")), []byte(sess.CSRF)) != 1 {
		logr.FromContextOrDiscard(ctx).Info("form refused: CSRF token mismatch", "path", r.URL.Path)
		a.pageError(w, r, http.StatusForbidden, msgAccountBlocked)
		return
	}
	switch form.Get("action") {
	case actionWithdraw:
		clientID := form.Get("client_id")
		if clientID == "" || len(clientID) > maxParamLength {
			a.pageError(w, r, http.StatusBadRequest, "Choose an application.")
			return
		}
		if err := a.withdrawConsent(ctx, sess.Subject, clientID); err != nil {
			a.pageStoreError(w, r, err)
			return
		}
	case actionEndSession:
		sid := form.Get("sid")
		se, found, err := a.findSession(ctx, sess.Subject, sid)
		if err != nil {
			a.pageStoreError(w, r, err)
			return
		}
		if !found {
			a.pageError(w, r, http.StatusBadRequest, "That session has already ended.")
			return
		}
		ended := endedSession{Subject: sess.Subject, SID: sid, Reason: reasonAccountPage}
		if sid == sess.SID {
			ended.Cookie = sessHash
		} else if err := ended.setCookie(se); err != nil {
			a.pageError(w, r, http.StatusBadRequest, "That session has already ended.")
			return
		}
		if _, err := a.endSession(ctx, ended); err != nil {
			a.pageStoreError(w, r, err)
			return
		}
		if sid == sess.SID {
			a.clearSessionCookie(w)
			a.pages.renderSignedOut(w, r, signedOutPage{Title: "You are signed out", Message: "You ended this session, so you have been signed out."})
			return
		}
	default:
		a.pageError(w, r, http.StatusBadRequest, "Choose what to do.")
		return
	}
	a.redirect(w, ".."+oauth2.AccountPath)
}

// setCookie sets the hash of the session record from the session's entry in the user's list.
func (e *endedSession) setCookie(se sessionEntry) error {
	h, ok := parseHash(se.Cookie)
	if !ok {
		return errors.New("browser: bad session entry")
	}
	e.Cookie = h
	return nil
}

// Messages of the account page.
const msgAccountBlocked = "This form could not be verified, so it was not accepted. Reload your account page and try again."
