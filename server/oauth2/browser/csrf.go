package browser

import (
	"crypto/subtle"
	"net/http"

	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/store"
)

// CSRF protection of the login and consent forms has three layers:
//
//  1. http.CrossOriginProtection refuses a POST that the browser marks as cross-site
//     (Sec-Fetch-Site) or whose Origin is not the server's.
//  2. A synchronizer token: each pending authorization request gets a random CSRF token, kept
//     server-side in the request's record; the form carries it and a POST must present it.
//  3. Browser binding: the pending request also records the hash of the browser's
//     latchkey-csrf cookie (HttpOnly, SameSite=Lax), and a POST must come with that cookie. A
//     request that someone else started (and whose form token they know) cannot be completed
//     from the victim's browser, which stops login CSRF.
//
// Every failure is a 403 HTML page.

// browserID returns the value of the browser's binding cookie, setting a new cookie when the
// browser has none (or a malformed one).
func browserID(w http.ResponseWriter, r *http.Request, cookies cookieNames) (string, error) {
	if id := cookieValue(r, cookies.browser); id != "" {
		return id, nil
	}
	id, err := oauth2.NewSecret()
	if err != nil {
		return "", err
	}
	http.SetCookie(w, cookies.cookie(cookies.browser, id, 0))
	return id, nil
}

// checkCSRF reports, in constant time, whether the POST carries the pending request's CSRF
// token and comes from the browser that started the request.
func checkCSRF(r *http.Request, p *pendingRequest, cookies cookieNames, formToken string) bool {
	browser := cookieValue(r, cookies.browser)
	if browser == "" || !oauth2.WellFormedSecret(formToken) {
		return false
	}
	okBrowser := sameHash(store.HashOf(browser), p.BrowserHash)
	okToken := subtle.ConstantTimeCompare([]byte(formToken), []byte(p.CSRFToken)) == 1
	return okBrowser && okToken
}

// sameHash reports, in constant time, whether b holds the hash h.
func sameHash(h store.Hash, b []byte) bool { return subtle.ConstantTimeCompare(h[:], b) == 1 }

// newCrossOriginProtection refuses cross-origin POSTs with the 403 page.
func newCrossOriginProtection(pg *pages) *http.CrossOriginProtection {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pg.renderError(w, r, http.StatusForbidden, errorPage{
			Title:   "Request blocked",
			Message: "This form was submitted from another site, so it was not accepted. Go back to the application and start signing in again.",
		})
	}))
	return cop
}
