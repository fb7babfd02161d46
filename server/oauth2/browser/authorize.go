package browser

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-logr/logr"

	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/redirecturi"
	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/store"
	"github.com/latchkey-dev/latchkey/server/token"
	"github.com/latchkey-dev/latchkey/server/userauth"
)

// Errors of the authorization endpoint (RFC 6749 4.1.2.1, OpenID Connect Core 3.1.2.6). They
// are sent to the client's redirect URI, so their status is never written. access_denied is
// oauth2.ErrAccessDenied.
var (
	ErrUnsupportedResponseType = oauth2.NewError("unsupported_response_type", http.StatusBadRequest,
		"The authorization server supports response_type code only.")
	ErrLoginRequired = oauth2.NewError("login_required", http.StatusUnauthorized,
		"The user must sign in, but prompt=none was requested.")
	ErrConsentRequired = oauth2.NewError("consent_required", http.StatusForbidden,
		"The user must consent, but prompt=none was requested.")
	ErrRequestNotSupported = oauth2.NewError("request_not_supported", http.StatusBadRequest,
		"The request parameter (request objects) is not supported.")
	ErrRequestURINotSupported = oauth2.NewError("request_uri_not_supported", http.StatusBadRequest,
		"The request_uri parameter is not supported.")
	ErrRegistrationNotSupported = oauth2.NewError("registration_not_supported", http.StatusBadRequest,
		"The registration parameter is not supported.")
	// ErrUnknownClientOrRedirect is shown, never redirected, for an unknown client_id and for a
	// redirect_uri the client has not registered (or has to send), alike.
	ErrUnknownClientOrRedirect = oauth2.NewError("invalid_request", http.StatusBadRequest,
		"The client_id is not a registered client, or the redirect_uri is missing or not registered for it.")
)

// pendingRequest is an authorization request that waits for the login or consent page. The
// store keeps it under the hash of a random ID that the pages carry; nothing of it is taken
// from the browser again.
type pendingRequest struct {
	ClientID string `json:"client_id"`
	// RedirectURI is where the response goes; RedirectURISent says whether the request named
	// it (then the token request must repeat it).
	RedirectURI     string   `json:"redirect_uri"`
	RedirectURISent bool     `json:"redirect_uri_sent,omitempty"`
	Scopes          []string `json:"scopes,omitempty"`
	// Resources are the requested resources (RFC 8707), each one the client may reach.
	Resources           []string `json:"resources,omitempty"`
	State               string   `json:"state,omitempty"`
	Nonce               string   `json:"nonce,omitempty"`
	CodeChallenge       string   `json:"code_challenge,omitempty"`
	CodeChallengeMethod string   `json:"code_challenge_method,omitempty"`
	// DPoPJKT binds the code to a DPoP key (dpop_jkt, RFC 9449 10).
	DPoPJKT string `json:"dpop_jkt,omitempty"`
	// ForceConsent is prompt=consent: the consent page is shown whatever the policy.
	ForceConsent bool   `json:"force_consent,omitempty"`
	LoginHint    string `json:"login_hint,omitempty"`
	// BrowserHash is the hash of the browser's binding cookie; CSRFToken is the forms' token.
	BrowserHash []byte `json:"browser"`
	CSRFToken   string `json:"csrf"`
	// Set once the user has signed in for this request: who (registry.User.Subject), when, and
	// in which session.
	Subject     string `json:"sub,omitempty"`
	AuthTime    int64  `json:"auth_time,omitempty"`
	SessionHash []byte `json:"session,omitempty"`
	// SessionID is the session's OP session ID (sid).
	SessionID string `json:"sid,omitempty"`
	// Account: the login was asked for by the account page, not by a client (no client, no
	// redirect URI); after it the browser goes back to the account page.
	Account bool `json:"account,omitempty"`
	// UserCode, when set, makes this the confirmation of a device authorization (RFC 8628)
	// instead of an authorization request: its user code in display form (XXXX-XXXX; it
	// alone grants nothing, and the record lives for the request lifetime). There is no
	// redirect URI then.
	UserCode string `json:"user_code,omitempty"`
}

// Registry gives the current registry snapshot; *registry.Registry implements it.
type Registry interface {
	Snapshot() *registry.Snapshot
}

// Store keeps the flow's state: codes, the records of pending requests, sessions and
// remembered consents, the users' lists of sessions, consents and grants (index.go), and the
// revocation of the grants that a logout or a withdrawn consent ends; store.Store implements it.
type Store interface {
	PutCode(ctx context.Context, h store.Hash, c store.Code, ttl time.Duration) error
	DeviceGrantByUserCode(ctx context.Context, uh store.Hash) (store.Hash, store.DeviceGrant, error)
	DecideDeviceGrant(ctx context.Context, uh store.Hash, approve bool, subject string, authTime time.Time) (store.DeviceGrant, error)
	Throttle(ctx context.Context, keys []store.ThrottleKey, outcome store.Outcome) (store.ThrottleResult, error)
	PutRecord(ctx context.Context, kind string, h store.Hash, value []byte, ttl time.Duration) error
	GetRecord(ctx context.Context, kind string, h store.Hash) ([]byte, error)
	DeleteRecord(ctx context.Context, kind string, h store.Hash) error
	TakeRecord(ctx context.Context, kind string, h store.Hash) ([]byte, error)
	PutEntry(ctx context.Context, kind string, h store.Hash, id string, value []byte, ttl time.Duration) error
	ListEntries(ctx context.Context, kind string, h store.Hash) ([]store.Entry, error)
	DeleteEntry(ctx context.Context, kind string, h store.Hash, id string) error
	RevokeFamily(ctx context.Context, familyID string, until time.Time) error
	FamilyRevoked(ctx context.Context, familyID string) (bool, error)
	CutOffGrants(ctx context.Context, c store.Cutoff, until time.Time) error
	TakeRate(ctx context.Context, key store.Hash, perMinute, burst int) (time.Duration, error)
	// Incr counts the requests that end an OP session, so that only the first notifies.
	Incr(ctx context.Context, key store.Hash, window time.Duration) (int64, error)
}

// IDTokenHints verifies the id_token_hint of a logout request; *token.Verifier implements it.
type IDTokenHints interface {
	VerifyIDTokenHint(hint string) (*token.IDTokenHint, error)
}

// SessionEndNotifier hears that an OP session ended (RP-initiated logout, or the user ending it
// on the account page), with the IDs of the clients that took part in it, for back-channel
// logout. Its failures are logged and never change the answer to the user.
type SessionEndNotifier interface {
	SessionEnded(ctx context.Context, sid, subject string, clientIDs []string) error
}

// userAuthenticator checks passwords under the failed-login limits; *userauth.Authenticator
// implements it (the password grant uses the same one).
type userAuthenticator interface {
	Authenticate(ctx context.Context, snap *registry.Snapshot, at userauth.Attempt) (*registry.User, error)
	// AuthenticateWith is Authenticate for a password an identity provider checks (LDAP).
	AuthenticateWith(ctx context.Context, realm string, at userauth.Attempt, check userauth.Checker) (*registry.User, error)
}

var (
	_ Registry          = (*registry.Registry)(nil)
	_ Store             = store.Store(nil)
	_ userAuthenticator = (*userauth.Authenticator)(nil)
	_ IDTokenHints      = (*token.Verifier)(nil)
)

// Defaults of Config.
const (
	DefaultSessionLifetime = 8 * time.Hour
	DefaultConsentLifetime = 90 * 24 * time.Hour
	DefaultRequestLifetime = 10 * time.Minute
)

// Config configures the browser flow.
type Config struct {
	// Issuer is the server's public URL: iss of the authorization responses (RFC 9207), and
	// https makes the cookies Secure with the __Host- prefix.
	Issuer   string
	Registry Registry
	Store    Store
	// Auth checks the passwords typed into the login page.
	Auth userAuthenticator
	// Now is the clock.
	Now func() time.Time
	// MaxBodyBytes bounds the bodies of POSTs.
	MaxBodyBytes int64
	// Lifetimes gives the authorization code lifetime (the client's, else the server's).
	Lifetimes oauth2.Lifetimes
	// SessionLifetime is how long a login session lasts (not extended by use); zero means 8 h.
	SessionLifetime time.Duration
	// ConsentLifetime is how long a remembered consent lasts; zero means 90 days.
	ConsentLifetime time.Duration
	// RequestLifetime is how long a pending authorization request waits for the login and
	// consent pages; zero means 10 minutes.
	RequestLifetime time.Duration
	// Hints verifies the id_token_hint of logout requests; nil: every hint is refused as
	// invalid (logout still works through the confirmation page).
	Hints IDTokenHints
	// SessionEnd hears of every OP session that ends; nil: nobody.
	SessionEnd SessionEndNotifier
	// Device limits wrong user codes on the device verification page; zero fields take
	// DefaultDeviceVerification's.
	Device DeviceVerification
	// PAR configures pushed authorization requests (RFC 9126); its zero value serves none.
	PAR PushedRequests
	// Upstreams signs users in through upstream identity providers (upstream.go); nil: the
	// login page offers none.
	Upstreams IdentityProviders
	// LDAP checks the passwords of the LDAP identity providers (the login form's provider
	// choice); nil: the form offers none.
	LDAP PasswordProviders
	// GitHub signs users in through GitHub providers (github.go); nil: the login page offers
	// none.
	GitHub GitHubSignIn
}

// Flow serves the authorization endpoint and the login and consent pages.
type Flow struct {
	issuer                 string
	registry               Registry
	store                  Store
	auth                   userAuthenticator
	now                    func() time.Time
	maxBody                int64
	lifetimes              oauth2.Lifetimes
	pages                  *pages
	cookies                cookieNames
	sessions               *sessions
	consentTTL, requestTTL time.Duration
	cop                    *http.CrossOriginProtection
	hints                  IDTokenHints
	sessionEnd             SessionEndNotifier
	device                 DeviceVerification
	par                    PushedRequests
	upstreams              IdentityProviders
	ldap                   PasswordProviders
	github                 GitHubSignIn
}

// New checks the config and returns the flow.
func New(cfg Config) (*Flow, error) {
	if cfg.Registry == nil || cfg.Store == nil || cfg.Auth == nil || cfg.Now == nil {
		return nil, errors.New("browser: Registry, Store, Auth and Now are required")
	}
	if cfg.SessionLifetime < 0 || cfg.ConsentLifetime < 0 || cfg.RequestLifetime < 0 {
		return nil, errors.New("browser: lifetimes must not be negative")
	}
	pg, err := newPages()
	if err != nil {
		return nil, err
	}
	device, err := cfg.Device.withDefaults()
	if err != nil {
		return nil, err
	}
	cookies := newCookieNames(strings.HasPrefix(cfg.Issuer, "https://"))
	return &Flow{
		issuer: cfg.Issuer, registry: cfg.Registry, store: cfg.Store, auth: cfg.Auth, now: cfg.Now,
		maxBody: cfg.MaxBodyBytes, lifetimes: cfg.Lifetimes, pages: pg, cookies: cookies,
		sessions:   &sessions{records: cfg.Store, cookies: cookies, ttl: cmp.Or(cfg.SessionLifetime, DefaultSessionLifetime), now: cfg.Now},
		consentTTL: cmp.Or(cfg.ConsentLifetime, DefaultConsentLifetime),
		requestTTL: cmp.Or(cfg.RequestLifetime, DefaultRequestLifetime),
		cop:        newCrossOriginProtection(pg),
		hints:      cfg.Hints,
		sessionEnd: cfg.SessionEnd,
		device:     device,
		par:        cfg.PAR,
		upstreams:  cfg.Upstreams,
		ldap:       cfg.LDAP,
		github:     cfg.GitHub,
	}, nil
}

// Mount adds the authorization endpoint and the pages to the mux.
func (a *Flow) Mount(m *oauth2.Mux) {
	m.HandleFunc(oauth2.AuthorizePath, http.MethodGet, a.serveAuthorize)
	m.HandleFunc(oauth2.AuthorizePath, http.MethodPost, a.serveAuthorize) // OpenID Connect Core 3.1.2.1
	m.HandleFunc(oauth2.LoginPath, http.MethodGet, a.serveLoginPage)
	m.Handle(oauth2.LoginPath, http.MethodPost, a.cop.Handler(http.HandlerFunc(a.handleLogin)))
	m.HandleFunc(oauth2.ConsentPath, http.MethodGet, a.serveConsentPage)
	m.Handle(oauth2.ConsentPath, http.MethodPost, a.cop.Handler(http.HandlerFunc(a.handleConsent)))
	m.HandleFunc(oauth2.StylesheetPath, http.MethodGet, a.pages.serveStylesheet)
	// RP-initiated logout is a cross-site navigation (GET, or a form POST from the client), so
	// the cross-origin check applies to its confirmation form only (serveLogout).
	m.HandleFunc(oauth2.LogoutPath, http.MethodGet, a.serveLogout)
	m.HandleFunc(oauth2.LogoutPath, http.MethodPost, a.serveLogout)
	m.HandleFunc(oauth2.AccountPath, http.MethodGet, a.serveAccount)
	m.Handle(oauth2.AccountPath, http.MethodPost, a.cop.Handler(http.HandlerFunc(a.handleAccount)))
	if a.par.enabled() {
		m.HandleFunc(oauth2.PushedAuthorizationRequestPath, http.MethodPost, a.servePushed)
	}
	m.HandleFunc(oauth2.UpstreamStartPath, http.MethodGet, a.serveUpstreamStart)
	m.HandleFunc(oauth2.UpstreamCallbackPath, http.MethodGet, a.serveUpstreamCallback)
	m.HandleFunc(oauth2.DevicePath, http.MethodGet, a.serveDevicePage)
	m.Handle(oauth2.DevicePath, http.MethodPost, a.cop.Handler(http.HandlerFunc(a.handleDevice)))
}

// serveAuthorize is the authorization endpoint (RFC 6749 4.1.1).
func (a *Flow) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	raw, err := a.rawParams(r)
	if err != nil {
		a.requestErrorPage(w, r, err)
		return
	}
	req, err := parseAuthorizeRequest(raw)
	if err != nil {
		a.requestErrorPage(w, r, err)
		return
	}
	pushed := req.RequestURI != "" && a.par.enabled()
	if pushed {
		if req, err = a.takePushed(ctx, req); err != nil {
			a.requestErrorPage(w, r, err)
			return
		}
	}
	snap := a.registry.Snapshot()
	client, redirectURI, err := checkClientRedirect(snap, req)
	if err != nil {
		a.requestErrorPage(w, r, err)
		return
	}
	if !pushed && a.pushedRequired(client) {
		a.redirectError(w, r, redirectURI, req.State, errPushedRequired)
		return
	}
	p, err := validateAuthorizeRequest(ctx, snap, client, req, redirectURI)
	if err != nil {
		a.redirectError(w, r, redirectURI, req.State, err)
		return
	}

	sess, sessHash, ok, err := a.sessions.current(ctx, r)
	if err != nil {
		a.redirectError(w, r, redirectURI, req.State, oauth2.FromStore(err))
		return
	}
	if ok {
		if u, exists := snap.UserBySubject(sess.Subject); !exists || u.Disabled {
			ok = false
		}
	}
	if !ok || a.loginRequired(req, sess) {
		if req.Prompt.Has(promptNone) {
			a.redirectError(w, r, redirectURI, req.State, ErrLoginRequired)
			return
		}
		a.showPage(w, r, p, oauth2.LoginPath)
		return
	}
	p.Subject, p.AuthTime, p.SessionHash, p.SessionID = sess.Subject, sess.AuthTime, sessHash[:], sess.SID
	need, err := a.consentRequired(ctx, client, p)
	if err != nil {
		a.redirectError(w, r, redirectURI, req.State, oauth2.FromStore(err))
		return
	}
	if need {
		if req.Prompt.Has(promptNone) {
			a.redirectError(w, r, redirectURI, req.State, ErrConsentRequired)
			return
		}
		a.showPage(w, r, p, oauth2.ConsentPath)
		return
	}
	a.respondWithCode(w, r, client, p, "")
}

// loginRequired applies prompt=login (and select_account, which shows the login page: there
// is no account chooser) and max_age to a valid session.
func (a *Flow) loginRequired(req *AuthorizeRequest, sess loginSession) bool {
	if req.Prompt.Has(promptLogin) || req.Prompt.Has(promptSelectAccount) {
		return true
	}
	if req.MaxAge < 0 {
		return false
	}
	return req.MaxAge == 0 || a.now().Unix()-sess.AuthTime > req.MaxAge
}

// rawParams returns the parameters of the request: the query of a GET, the form body of a POST.
func (a *Flow) rawParams(r *http.Request) (string, error) {
	if r.Method != http.MethodPost {
		return r.URL.RawQuery, nil
	}
	body, err := oauth2.ReadFormBody(r, a.maxBody)
	if err != nil {
		return "", err
	}
	return string(body), nil
}

// checkClientRedirect finds the client and the redirect URI to answer. Its errors are shown to
// the user and never redirected (RFC 6749 4.1.2.1): the redirect URI must be one of the client's
// registered URIs (byte for byte, or on a loopback host with any port, RFC 8252 7.3,
// redirecturi.Registered); it may be omitted when the client has exactly one, except in an
// OpenID Connect request, which must send it.
//
// An unknown client, a redirect URI the client has not registered and a missing one the client
// needs all get the same page (ErrUnknownClientOrRedirect), so the page does not tell which
// client IDs exist.
//
// The URI returned is absolute and has no fragment: every registered URI passed
// redirecturi.Check (controllers/convert and registration apply it before a client reaches the
// registry), and one matched on a loopback host differs from a registered one only in its port.
func checkClientRedirect(snap *registry.Snapshot, req *AuthorizeRequest) (*registry.Client, string, error) {
	if req.RedirectURI == "" && oauth2.HasScope(req.Scope, oauth2.ScopeOpenID) {
		return nil, "", oauth2.ErrInvalidRequest.WithDescription("An OpenID Connect request must include redirect_uri.")
	}
	client, ok := snap.Client(req.ClientID)
	if !ok {
		return nil, "", ErrUnknownClientOrRedirect
	}
	redirectURI := req.RedirectURI
	switch {
	case redirectURI != "":
		if redirectURI, ok = redirecturi.Registered(client.RedirectURIs, redirectURI); !ok {
			return nil, "", ErrUnknownClientOrRedirect
		}
	case len(client.RedirectURIs) == 1:
		redirectURI = client.RedirectURIs[0]
	default:
		return nil, "", ErrUnknownClientOrRedirect
	}
	return client, redirectURI, nil
}

// validateAuthorizeRequest checks everything but the client and the redirect URI; its errors
// are redirected to the client.
func validateAuthorizeRequest(ctx context.Context, snap *registry.Snapshot, client *registry.Client, req *AuthorizeRequest, redirectURI string) (*pendingRequest, error) {
	switch {
	case req.invalid != nil:
		return nil, req.invalid
	case req.RequestObject:
		return nil, ErrRequestNotSupported
	case req.RequestURI != "":
		return nil, ErrRequestURINotSupported
	case req.Registration:
		return nil, ErrRegistrationNotSupported
	}
	switch req.ResponseType {
	case "code":
	case "":
		return nil, oauth2.InvalidRequest("The response_type parameter is missing.")
	default:
		return nil, ErrUnsupportedResponseType
	}
	if req.ResponseMode != "" && req.ResponseMode != "query" {
		return nil, oauth2.InvalidRequest("The response_mode must be query.")
	}
	if !client.AllowsGrant(oauth2.GrantAuthorizationCode) {
		return nil, oauth2.ErrUnauthorizedClient.WithDescription("The client is not allowed the authorization_code grant.")
	}
	scopes, err := oauth2.ResolveScopes(ctx, snap, client, req.Scope)
	if err != nil {
		return nil, err
	}
	method, err := oauth2.CheckCodeChallenge(client, req.CodeChallenge, req.CodeChallengeMethod)
	if err != nil {
		return nil, err
	}
	resources, scopes, err := oauth2.Target(snap, client, req.Resources, scopes)
	if err != nil {
		return nil, err
	}
	if req.DPoPJKT != "" && client.DPoP == registry.DPoPDisabled {
		// The token endpoint ignores this client's proofs, so a bound code could never be used.
		return nil, oauth2.InvalidRequest("The client does not use DPoP (spec.dpop Disabled), so dpop_jkt is not allowed.")
	}
	return &pendingRequest{
		ClientID: client.ID, RedirectURI: redirectURI, RedirectURISent: req.RedirectURI != "",
		Scopes: scopes, Resources: resources, DPoPJKT: req.DPoPJKT, State: req.State, Nonce: req.Nonce,
		CodeChallenge: req.CodeChallenge, CodeChallengeMethod: method,
		ForceConsent: req.Prompt.Has(promptConsent), LoginHint: req.LoginHint,
	}, nil
}

// showPage stores the pending request under a new ID, binds it to the browser and sends the
// browser to the login or consent page.
func (a *Flow) showPage(w http.ResponseWriter, r *http.Request, p *pendingRequest, page string) {
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
		a.redirectError(w, r, p.RedirectURI, p.State, oauth2.ErrServerError.WithCause(err))
		return
	}
	if err := a.savePending(r.Context(), id, p); err != nil {
		a.redirectError(w, r, p.RedirectURI, p.State, oauth2.FromStore(err))
		return
	}
	redirectToPage(w, page, id)
}

// redirectToPage sends the browser to a page of a pending request, with a reference relative to
// the current page so that it works under any path prefix.
func redirectToPage(w http.ResponseWriter, page, id string) {
	h := w.Header()
	setPageSecurityHeaders(h, "")
	h.Set("Location", ".."+page+"?request_id="+id)
	w.WriteHeader(http.StatusSeeOther)
}

// savePending stores the pending request for the request lifetime.
func (a *Flow) savePending(ctx context.Context, id string, p *pendingRequest) error {
	raw, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return a.store.PutRecord(ctx, recordAuthRequest, store.HashOf(id), raw, a.requestTTL)
}

// loadPending returns the pending request of an ID; ok is false when there is none (unknown,
// expired, used, or a malformed ID).
func (a *Flow) loadPending(ctx context.Context, id string) (*pendingRequest, bool, error) {
	if !oauth2.WellFormedSecret(id) {
		return nil, false, nil
	}
	raw, err := a.store.GetRecord(ctx, recordAuthRequest, store.HashOf(id))
	if errors.Is(err, store.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	var p pendingRequest
	if json.Unmarshal(raw, &p) != nil {
		return nil, false, nil //nolint:nilerr // an unreadable record is no request
	}
	return &p, true, nil
}

// respondWithCode issues an authorization code and redirects to the client with it, ending
// the pending request of pendingID (if any).
func (a *Flow) respondWithCode(w http.ResponseWriter, r *http.Request, client *registry.Client, p *pendingRequest, pendingID string) {
	ctx := r.Context()
	if pendingID != "" {
		if err := a.store.DeleteRecord(ctx, recordAuthRequest, store.HashOf(pendingID)); err != nil && !errors.Is(err, store.ErrNotFound) {
			a.redirectError(w, r, p.RedirectURI, p.State, oauth2.FromStore(err))
			return
		}
	}
	code, err := a.issueCode(ctx, client, p)
	if err != nil {
		a.redirectError(w, r, p.RedirectURI, p.State, err)
		return
	}
	logr.FromContextOrDiscard(ctx).V(1).Info("authorization code issued", "client_id", client.ID, "sub", p.Subject)
	a.redirect(w, responseURI(p.RedirectURI, "code", code, p.State, a.issuer))
}

// issueCode stores a new authorization code for the pending request.
func (a *Flow) issueCode(ctx context.Context, client *registry.Client, p *pendingRequest) (string, error) {
	code, err := oauth2.NewSecret()
	if err != nil {
		return "", oauth2.ErrServerError.WithCause(err)
	}
	family, err := token.NewFamilyID()
	if err != nil {
		return "", oauth2.ErrServerError.WithCause(err)
	}
	rec := store.Code{
		ClientID: client.ID, Subject: p.Subject, Scopes: p.Scopes, Nonce: p.Nonce,
		CodeChallenge: p.CodeChallenge, CodeChallengeMethod: p.CodeChallengeMethod,
		AuthTime: time.Unix(p.AuthTime, 0), FamilyID: family, SessionID: p.SessionID,
		Resources: p.Resources, DPoPThumbprint: p.DPoPJKT,
	}
	if p.RedirectURISent {
		rec.RedirectURI = p.RedirectURI
	}
	// The grant is listed before the code exists: a grant that cannot be listed could not be
	// revoked by a logout or a withdrawn consent.
	if err := a.noteGrant(ctx, client, p, family); err != nil {
		return "", oauth2.FromStore(err)
	}
	if err := a.store.PutCode(ctx, store.HashOf(code), rec, a.lifetimes.AuthorizationCode(client)); err != nil {
		return "", oauth2.FromStore(err)
	}
	return code, nil
}

// redirectError sends an error to the client's redirect URI with the state and the issuer.
func (a *Flow) redirectError(w http.ResponseWriter, r *http.Request, redirectURI, state string, err error) {
	var oe *oauth2.Error
	if !errors.As(oauth2.FromStore(err), &oe) {
		oe = oauth2.ErrServerError
	}
	log := logr.FromContextOrDiscard(r.Context())
	if oe.StatusCode() >= http.StatusInternalServerError {
		log.Error(err, "authorization request failed", "error", oe.Code())
	} else {
		log.V(1).Info("authorization request refused", "error", oe.Code(), "description", oe.Description())
	}
	a.redirect(w, responseURI(redirectURI, "error", oe.Code(), state, a.issuer, "error_description", oe.Description()))
}

// redirect answers 303 See Other (RFC 9700 4.12: never 307, which would repost the form).
func (a *Flow) redirect(w http.ResponseWriter, location string) {
	h := w.Header()
	setPageSecurityHeaders(h, "")
	h.Set("Location", location)
	w.WriteHeader(http.StatusSeeOther)
}

// responseURI adds the response parameters to the query of the redirect URI, keeping the query
// it has (RFC 6749 3.1.2): key and value, then any extra key/value pairs, then state (when set)
// and iss (RFC 9207). redirectURI is one checkClientRedirect returned, so it has no fragment to
// keep after the query.
func responseURI(redirectURI, key, value, state, issuer string, extra ...string) string {
	var b strings.Builder
	b.Grow(len(redirectURI) + len(value) + len(state) + len(issuer) + 64)
	b.WriteString(redirectURI)
	switch {
	case !strings.Contains(redirectURI, "?"):
		b.WriteByte('?')
	case strings.HasSuffix(redirectURI, "?"), strings.HasSuffix(redirectURI, "&"):
	default:
		b.WriteByte('&')
	}
	add := func(k, v string) {
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(v))
	}
	add(key, value)
	for i := 0; i+1 < len(extra); i += 2 {
		b.WriteByte('&')
		add(extra[i], extra[i+1])
	}
	if state != "" {
		b.WriteByte('&')
		add("state", state)
	}
	b.WriteByte('&')
	add("iss", issuer)
	return b.String()
}

// requestErrorPage shows a request that cannot be answered with a redirect: an unknown client
// or a redirect URI that is not registered. The browser stays here (RFC 6749 4.1.2.1).
func (a *Flow) requestErrorPage(w http.ResponseWriter, r *http.Request, err error) {
	var oe *oauth2.Error
	if !errors.As(err, &oe) {
		oe = oauth2.ErrInvalidRequest
	}
	logr.FromContextOrDiscard(r.Context()).V(1).Info("authorization request shown as an error page",
		"error", oe.Code(), "description", oe.Description())
	status := oe.StatusCode()
	if status < http.StatusBadRequest || status >= http.StatusInternalServerError {
		status = http.StatusBadRequest
	}
	a.pages.renderError(w, r, status, errorPage{
		Title:   "Sign-in request rejected",
		Message: "The application sent an invalid sign-in request, so you cannot continue. Go back to the application and try again, or contact its developer.",
		Detail:  oe.Description(),
	})
}

// formActionSource is the CSP source of the redirect URI's origin, added to form-action on the
// login and consent pages: Chromium applies form-action to the redirects that follow a form
// submission, so the 303 to the client would be blocked without it. A host that a CSP source
// cannot express (an IPv6 literal) falls back to its scheme.
func formActionSource(redirectURI string) string {
	u, err := url.Parse(redirectURI)
	if err != nil || u.Scheme == "" {
		return ""
	}
	scheme := strings.ToLower(u.Scheme)
	for i := range len(scheme) {
		c := scheme[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '+' && c != '-' && c != '.' {
			return ""
		}
	}
	if (scheme == "http" || scheme == "https") && u.Host != "" && cspHost(u.Host) {
		return scheme + "://" + strings.ToLower(u.Host)
	}
	return scheme + ":"
}

// cspHost reports whether host[:port] is a valid CSP host-source.
func cspHost(hostport string) bool {
	host, port, hasPort := strings.Cut(hostport, ":")
	if host == "" || (hasPort && (port == "" || strings.Trim(port, "0123456789") != "")) {
		return false
	}
	for i := range len(host) {
		c := host[i]
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

// pageError shows an error page for a problem with a pending request.
func (a *Flow) pageError(w http.ResponseWriter, r *http.Request, status int, message string) {
	title := "Something went wrong"
	switch status {
	case http.StatusBadRequest:
		title = "Sign-in request expired"
	case http.StatusForbidden:
		title = "Request blocked"
	case http.StatusServiceUnavailable, http.StatusTooManyRequests:
		title = "Try again in a moment"
	}
	a.pages.renderError(w, r, status, errorPage{Title: title, Message: message})
}

// Messages of the error pages.
const (
	msgExpired = "This sign-in request has expired or was already used. Go back to the application and start again."
	msgBlocked = "This form could not be verified, so it was not accepted. Go back to the application and start signing in again."
	msgBusy    = "The sign-in service is temporarily unavailable. Try again in a moment."
)

// pageStoreError shows a failure of the store (or of another backend) on a page: the error
// oauth2.FromStore maps it to decides between "try again in a moment" and a failure.
func (a *Flow) pageStoreError(w http.ResponseWriter, r *http.Request, err error) {
	logr.FromContextOrDiscard(r.Context()).Error(err, "sign-in failed", "path", r.URL.Path)
	if errors.Is(oauth2.FromStore(err), oauth2.ErrTemporarilyUnavailable) {
		a.pageError(w, r, http.StatusServiceUnavailable, msgBusy)
		return
	}
	a.pageError(w, r, http.StatusInternalServerError, "The sign-in service failed. Try again later.")
}

// pendingFromForm loads the pending request a login or consent POST names, checks its CSRF
// token and browser binding, and finds its client. On failure it has written the answer.
func (a *Flow) pendingFromForm(w http.ResponseWriter, r *http.Request) (form url.Values, id string, p *pendingRequest, client *registry.Client, ok bool) {
	body, err := oauth2.ReadFormBody(r, a.maxBody)
	var oe *oauth2.Error
	switch {
	case errors.As(err, &oe) && oe.StatusCode() == http.StatusRequestEntityTooLarge:
		a.pageError(w, r, http.StatusRequestEntityTooLarge, "The form is too large.")
		return nil, "", nil, nil, false
	case err != nil:
		a.pageError(w, r, http.StatusBadRequest, msgExpired)
		return nil, "", nil, nil, false
	}
	form, err = url.ParseQuery(string(body))
	if err != nil {
		a.pageError(w, r, http.StatusBadRequest, msgExpired)
		return nil, "", nil, nil, false
	}
	id = form.Get("request_id")
	p, found, err := a.loadPending(r.Context(), id)
	if err != nil {
		a.pageStoreError(w, r, err)
		return nil, "", nil, nil, false
	}
	if !found {
		a.pageError(w, r, http.StatusBadRequest, msgExpired)
		return nil, "", nil, nil, false
	}
	if !checkCSRF(r, p, a.cookies, form.Get("csrf_token")) {
		logr.FromContextOrDiscard(r.Context()).Info("form refused: CSRF token or browser binding mismatch", "path", r.URL.Path)
		a.pageError(w, r, http.StatusForbidden, msgBlocked)
		return nil, "", nil, nil, false
	}
	client, found = a.pendingClient(p)
	if !found {
		a.pageError(w, r, http.StatusBadRequest, msgExpired)
		return nil, "", nil, nil, false
	}
	return form, id, p, client, true
}

// pendingFromQuery loads the pending request a login or consent page names and checks the
// browser binding. On failure it has written the answer.
func (a *Flow) pendingFromQuery(w http.ResponseWriter, r *http.Request) (id string, p *pendingRequest, client *registry.Client, ok bool) {
	id = r.URL.Query().Get("request_id")
	p, found, err := a.loadPending(r.Context(), id)
	if err != nil {
		a.pageStoreError(w, r, err)
		return "", nil, nil, false
	}
	if !found {
		a.pageError(w, r, http.StatusBadRequest, msgExpired)
		return "", nil, nil, false
	}
	browser := cookieValue(r, a.cookies.browser)
	if browser == "" || !sameHash(store.HashOf(browser), p.BrowserHash) {
		a.pageError(w, r, http.StatusForbidden,
			"This sign-in request was started in another browser. Go back to the application and start again here.")
		return "", nil, nil, false
	}
	client, found = a.pendingClient(p)
	if !found {
		a.pageError(w, r, http.StatusBadRequest, msgExpired)
		return "", nil, nil, false
	}
	return id, p, client, true
}

// pendingClient returns the client of a pending request; for the account page's, a client
// without ID that the login page names "your account".
func (a *Flow) pendingClient(p *pendingRequest) (*registry.Client, bool) {
	if p.Account {
		return &registry.Client{DisplayName: "your account"}, true
	}
	return a.registry.Snapshot().Client(p.ClientID)
}

// clientName is how the pages name a client.
func clientName(c *registry.Client) string {
	if c.DisplayName != "" {
		return c.DisplayName
	}
	return c.ID
}

// redirectHost is the host (or scheme, for a native app) the response goes to, for the pages.
func redirectHost(redirectURI string) string {
	u, err := url.Parse(redirectURI)
	if err != nil {
		return redirectURI
	}
	if u.Host != "" {
		return u.Host
	}
	return fmt.Sprintf("%s:", u.Scheme)
}
