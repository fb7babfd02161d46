package browser

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/go-logr/logr"

	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/store"
)

// DeviceVerification limits the wrong user codes entered on the device verification page
// (RFC 8628 5.1), with the store's throttles: per client address, and across all addresses.
// Reaching a limit blocks for Backoff, doubled per further wrong code, at most MaxBackoff
// (GlobalMaxBackoff for the global count); counts are forgotten Window after the last wrong
// code and its block. A right code does not reset a count: anyone can get valid user codes of
// a public client, and must not be able to wipe out their wrong guesses with them.
type DeviceVerification struct {
	PerAddress       int
	Global           int
	Window           time.Duration
	Backoff          time.Duration
	MaxBackoff       time.Duration
	GlobalMaxBackoff time.Duration
}

// DefaultDeviceVerification: 10 wrong codes per address and 1000 from all addresses per hour
// are free; then blocks from 1 s, up to 15 minutes per address and 1 minute for everyone.
// With 20^8 user codes that last 10 minutes, an attacker that owns many addresses still
// needs about 25 million guesses per live code, against at most about one per second
// globally once past the limit.
func DefaultDeviceVerification() DeviceVerification {
	return DeviceVerification{PerAddress: 10, Global: 1000, Window: time.Hour, Backoff: time.Second,
		MaxBackoff: 15 * time.Minute, GlobalMaxBackoff: time.Minute}
}

func (d DeviceVerification) withDefaults() (DeviceVerification, error) {
	if d.PerAddress < 0 || d.Global < 0 || d.Window < 0 || d.Backoff < 0 || d.MaxBackoff < 0 || d.GlobalMaxBackoff < 0 {
		return d, errors.New("browser: device verification limits must not be negative")
	}
	def := DefaultDeviceVerification()
	or := func(v, dv time.Duration) time.Duration {
		if v == 0 {
			return dv
		}
		return v
	}
	if d.PerAddress == 0 {
		d.PerAddress = def.PerAddress
	}
	if d.Global == 0 {
		d.Global = def.Global
	}
	d.Window, d.Backoff = or(d.Window, def.Window), or(d.Backoff, def.Backoff)
	d.MaxBackoff = max(or(d.MaxBackoff, def.MaxBackoff), d.Backoff)
	d.GlobalMaxBackoff = max(or(d.GlobalMaxBackoff, def.GlobalMaxBackoff), d.Backoff)
	return d, nil
}

// Messages of the verification page.
const (
	msgBadUserCode    = "That code is not valid or has expired. Check the code on your device and try again."
	msgUserCodeLocked = "Too many wrong codes. Wait a few minutes, then try again."
	msgDeviceExpired  = "This device sign-in has expired or was already answered. Start again on your device."
)

// deviceKeys are the throttle counts of wrong user codes from address.
func (a *Flow) deviceKeys(address string) []store.ThrottleKey {
	d := a.device
	return []store.ThrottleKey{
		{Key: store.HashOf("device-user-code\x00address\x00" + oauth2.AddressKey(address)), Limit: d.PerAddress,
			Window: d.Window, Backoff: d.Backoff, MaxBackoff: d.MaxBackoff},
		{Key: store.HashOf("device-user-code\x00global"), Limit: d.Global,
			Window: d.Window, Backoff: d.Backoff, MaxBackoff: d.GlobalMaxBackoff},
	}
}

// deviceFormToken is the CSRF token of the code form: derived from the browser's binding
// cookie (HttpOnly, so another site can neither read it nor the token), as no pending request
// exists yet to hold a random one.
func deviceFormToken(browser string) string {
	sum := sha256.Sum256([]byte("device-form\x00" + browser))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// serveDevicePage shows the code form; ?user_code= (verification_uri_complete) fills it in,
// and the user still submits it, so that a link alone starts nothing.
func (a *Flow) serveDevicePage(w http.ResponseWriter, r *http.Request) {
	browser, err := browserID(w, r, a.cookies)
	if err != nil {
		a.pageStoreError(w, r, err)
		return
	}
	page := devicePage{CSRFToken: deviceFormToken(browser)}
	if code, ok := oauth2.NormalizeUserCode(r.URL.Query().Get("user_code")); ok {
		page.UserCode = oauth2.DisplayUserCode(code)
	}
	a.pages.renderDevice(w, r, http.StatusOK, page)
}

// handleDevice takes an entered user code: a wrong one is counted against the address and
// globally; a right one starts the confirmation of its device authorization, through the
// login page when the browser has no session.
func (a *Flow) handleDevice(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	form, ok := a.deviceForm(w, r)
	if !ok {
		return
	}
	page := devicePage{CSRFToken: form.Get("csrf_token")}
	if input := form.Get("user_code"); len(input) <= 64 {
		page.UserCode = input
	}
	keys := a.deviceKeys(oauth2.ClientAddress(ctx))
	res, err := a.store.Throttle(ctx, keys, store.Check)
	if err != nil {
		a.pageStoreError(w, r, err)
		return
	}
	if res.RetryAfter > 0 {
		a.deviceLocked(w, r, page, res.RetryAfter)
		return
	}
	code, wellFormed := oauth2.NormalizeUserCode(form.Get("user_code"))
	if !wellFormed { // it can match nothing: a typo, not counted
		page.Error = msgBadUserCode
		a.pages.renderDevice(w, r, http.StatusBadRequest, page)
		return
	}
	_, grant, err := a.store.DeviceGrantByUserCode(ctx, oauth2.UserCodeHash(code))
	switch {
	case errors.Is(err, store.ErrNotFound):
		res, err := a.store.Throttle(ctx, keys, store.Failure)
		if err != nil {
			a.pageStoreError(w, r, err)
			return
		}
		logr.FromContextOrDiscard(ctx).V(1).Info("wrong user code entered", "address_failures", res.Failures[0])
		if res.RetryAfter > 0 {
			a.deviceLocked(w, r, page, res.RetryAfter)
			return
		}
		page.Error = msgBadUserCode
		a.pages.renderDevice(w, r, http.StatusBadRequest, page)
		return
	case err != nil:
		a.pageStoreError(w, r, err)
		return
	}
	snap := a.registry.Snapshot()
	if _, ok := snap.Client(grant.ClientID); !ok {
		a.pageError(w, r, http.StatusBadRequest, msgDeviceExpired)
		return
	}
	a.startDeviceConfirmation(w, r, snap, &pendingRequest{
		ClientID: grant.ClientID, Scopes: grant.Scopes, ForceConsent: true, UserCode: oauth2.DisplayUserCode(code),
	})
}

// deviceForm reads the code form and checks its CSRF token against the browser's cookie. On
// failure it has written the answer.
func (a *Flow) deviceForm(w http.ResponseWriter, r *http.Request) (url.Values, bool) {
	body, err := oauth2.ReadFormBody(r, a.maxBody)
	var form url.Values
	if err == nil {
		form, err = url.ParseQuery(string(body))
	}
	if err != nil {
		a.pageError(w, r, http.StatusBadRequest, "The form could not be read. Go back and enter the code again.")
		return nil, false
	}
	browser := cookieValue(r, a.cookies.browser)
	want := deviceFormToken(browser)
	if browser == "" || subtle.ConstantTimeCompare([]byte(form.Get("csrf_token")), []byte(want)) != 1 {
		logr.FromContextOrDiscard(r.Context()).Info("form refused: CSRF token or browser binding mismatch", "path", r.URL.Path)
		a.pageError(w, r, http.StatusForbidden, msgBlocked)
		return nil, false
	}
	return form, true
}

// deviceLocked answers an entry refused by the limits on wrong codes: 429 with Retry-After.
func (a *Flow) deviceLocked(w http.ResponseWriter, r *http.Request, page devicePage, retryAfter time.Duration) {
	oauth2.RecordRateLimited(r.Context(), oauth2.RateLimitDeviceUserCode)
	w.Header().Set("Retry-After", oauth2.RetryAfterSeconds(retryAfter))
	page.Error = msgUserCodeLocked
	a.pages.renderDevice(w, r, http.StatusTooManyRequests, page)
}

// startDeviceConfirmation stores the confirmation as a pending request bound to the browser
// and sends the browser to the consent page, or to the login page first when it has no
// session of an active user.
func (a *Flow) startDeviceConfirmation(w http.ResponseWriter, r *http.Request, snap *registry.Snapshot, p *pendingRequest) {
	ctx := r.Context()
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
	if err != nil {
		a.pageStoreError(w, r, err)
		return
	}
	next := oauth2.LoginPath
	sess, sessHash, ok, err := a.sessions.current(ctx, r)
	if err != nil {
		a.pageStoreError(w, r, err)
		return
	}
	if u, exists := snap.UserBySubject(sess.Subject); ok && exists && !u.Disabled {
		p.Subject, p.AuthTime, p.SessionHash = sess.Subject, sess.AuthTime, sessHash[:]
		next = oauth2.ConsentPath
	}
	if err := a.savePending(ctx, id, p); err != nil {
		a.pageStoreError(w, r, err)
		return
	}
	redirectToPage(w, next, id)
}

// decideDevice takes the user's answer on a device's confirmation page: the device
// authorization is approved for the signed-in user, or denied; either way its user code stops
// working, and the page says so (there is no client to redirect to).
func (a *Flow) decideDevice(w http.ResponseWriter, r *http.Request, form url.Values, id string, p *pendingRequest, client *registry.Client) {
	ctx := r.Context()
	var approve bool
	switch form.Get("decision") {
	case "allow":
		approve = true
	case "deny":
	default:
		a.pageError(w, r, http.StatusBadRequest, "Choose Allow or Deny.")
		return
	}
	code, _ := oauth2.NormalizeUserCode(p.UserCode)
	_, err := a.store.DecideDeviceGrant(ctx, oauth2.UserCodeHash(code), approve, p.Subject, time.Unix(p.AuthTime, 0))
	if derr := a.store.DeleteRecord(ctx, recordAuthRequest, store.HashOf(id)); derr != nil && !errors.Is(derr, store.ErrNotFound) && err == nil {
		err = derr
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		a.pageError(w, r, http.StatusBadRequest, msgDeviceExpired)
		return
	case err != nil:
		a.pageStoreError(w, r, err)
		return
	}
	log := logr.FromContextOrDiscard(ctx)
	if !approve {
		log.Info("device authorization denied", "sub", p.Subject, "client_id", client.ID)
		oauth2.Audit(ctx, oauth2.AuditEvent{Event: oauth2.AuditDeviceDenied, ClientID: client.ID, Subject: p.Subject,
			GrantType: oauth2.GrantDeviceCode, Scopes: p.Scopes, Outcome: "failure", Reason: "denied"})
		a.pages.renderDone(w, r, errorPage{Title: "Access denied",
			Message: "The device was not given access to your account. You can close this window."})
		return
	}
	log.Info("device authorization approved", "sub", p.Subject, "client_id", client.ID, "scopes", p.Scopes)
	oauth2.Audit(ctx, oauth2.AuditEvent{Event: oauth2.AuditDeviceApproved, ClientID: client.ID, Subject: p.Subject,
		GrantType: oauth2.GrantDeviceCode, Scopes: p.Scopes})
	a.pages.renderDone(w, r, errorPage{Title: "Device connected",
		Message: "You can close this window and return to your device."})
}
