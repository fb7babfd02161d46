package oauth2

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"

	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/store"
)

// Paths of the browser endpoints.
const (
	AuthorizePath = "/oauth2/authorize"
	LoginPath     = "/oauth2/login"
	ConsentPath   = "/oauth2/consent"
)

// authorizePathAliases are the authorization endpoint paths of the seed documents.
func authorizePathAliases() []string { return []string{AuthorizePath, "/oauth/authorize"} }

// The grant type the authorization endpoint starts.
const grantAuthorizationCode = "authorization_code"

// DefaultCodeLifetime applies to clients without a CodeLifetime.
const DefaultCodeLifetime = 10 * time.Minute

// Errors of the authorization endpoint (RFC 6749 4.1.2.1, OpenID Connect Core 3.1.2.6). They
// are sent to the client's redirect URI, so their status is never written.
var (
	ErrUnsupportedResponseType = &Error{code: "unsupported_response_type", status: http.StatusBadRequest,
		description: "The authorization server supports response_type code only."}
	ErrAccessDenied = &Error{code: "access_denied", status: http.StatusForbidden,
		description: "The user denied the request."}
	ErrLoginRequired = &Error{code: "login_required", status: http.StatusUnauthorized,
		description: "The user must sign in, but prompt=none was requested."}
	ErrConsentRequired = &Error{code: "consent_required", status: http.StatusForbidden,
		description: "The user must consent, but prompt=none was requested."}
	ErrRequestNotSupported = &Error{code: "request_not_supported", status: http.StatusBadRequest,
		description: "The request parameter (request objects) is not supported."}
	ErrRequestURINotSupported = &Error{code: "request_uri_not_supported", status: http.StatusBadRequest,
		description: "The request_uri parameter is not supported."}
	ErrRegistrationNotSupported = &Error{code: "registration_not_supported", status: http.StatusBadRequest,
		description: "The registration parameter is not supported."}
)

// pendingRequest is an authorization request that waits for the login or consent page. The
// store keeps it under the hash of a random ID that the pages carry; nothing of it is taken
// from the browser again.
type pendingRequest struct {
	ClientID string `json:"client_id"`
	// RedirectURI is where the response goes; RedirectURISent says whether the request named
	// it (then the token request must repeat it).
	RedirectURI         string   `json:"redirect_uri"`
	RedirectURISent     bool     `json:"redirect_uri_sent,omitempty"`
	Scopes              []string `json:"scopes,omitempty"`
	State               string   `json:"state,omitempty"`
	Nonce               string   `json:"nonce,omitempty"`
	CodeChallenge       string   `json:"code_challenge,omitempty"`
	CodeChallengeMethod string   `json:"code_challenge_method,omitempty"`
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
}

// authorizer serves the authorization endpoint and the login and consent pages.
type authorizer struct {
	issuer   string
	registry Registry
	store    store.Store
	now      func() time.Time
	maxBody  int64
	pages    *pages
	cookies  cookieNames
	sessions *sessions
	login    LoginConfig
	cop      *http.CrossOriginProtection
	// hashing bounds the password checks running at once.
	hashing chan struct{}
}

func newAuthorizer(cfg Config) (*authorizer, error) {
	if cfg.Store == nil {
		return nil, errors.New("oauth2: the authorization endpoint needs a Store")
	}
	pg, err := newPages()
	if err != nil {
		return nil, err
	}
	login, err := cfg.Login.withDefaults()
	if err != nil {
		return nil, err
	}
	cookies := newCookieNames(strings.HasPrefix(cfg.Issuer, "https://"))
	return &authorizer{
		issuer: cfg.Issuer, registry: cfg.Registry, store: cfg.Store, now: cfg.Now,
		maxBody: cfg.MaxBodyBytes, pages: pg, cookies: cookies,
		sessions: &sessions{records: cfg.Store, cookies: cookies, ttl: login.SessionLifetime},
		login:    login, cop: newCrossOriginProtection(pg),
		hashing: make(chan struct{}, max(runtime.GOMAXPROCS(0), 1)),
	}, nil
}

// register adds the browser endpoints to the mux.
func (a *authorizer) register(mux *http.ServeMux) {
	for _, p := range authorizePathAliases() {
		mux.HandleFunc("GET "+p, a.serveAuthorize)
		mux.HandleFunc("POST "+p, a.serveAuthorize) // OpenID Connect Core 3.1.2.1
		mux.Handle(p, methodNotAllowed("GET, HEAD, POST"))
	}
	mux.HandleFunc("GET "+LoginPath, a.serveLoginPage)
	mux.Handle("POST "+LoginPath, a.cop.Handler(http.HandlerFunc(a.handleLogin)))
	mux.Handle(LoginPath, methodNotAllowed("GET, HEAD, POST"))
	mux.HandleFunc("GET "+ConsentPath, a.serveConsentPage)
	mux.Handle("POST "+ConsentPath, a.cop.Handler(http.HandlerFunc(a.handleConsent)))
	mux.Handle(ConsentPath, methodNotAllowed("GET, HEAD, POST"))
	mux.HandleFunc("GET "+StylesheetPath, a.pages.serveStylesheet)
	mux.Handle(StylesheetPath, methodNotAllowed(allowGetHead))
}

// serveAuthorize is the authorization endpoint (RFC 6749 4.1.1).
func (a *authorizer) serveAuthorize(w http.ResponseWriter, r *http.Request) {
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
	snap := a.registry.Snapshot()
	client, redirectURI, err := checkClientRedirect(snap, req)
	if err != nil {
		a.requestErrorPage(w, r, err)
		return
	}
	p, err := validateAuthorizeRequest(ctx, snap, client, req, redirectURI)
	if err != nil {
		a.redirectError(w, r, redirectURI, req.State, err)
		return
	}

	sess, sessHash, ok, err := a.sessions.current(ctx, r)
	if err != nil {
		a.redirectError(w, r, redirectURI, req.State, storeFailure(err))
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
		a.showPage(w, r, p, LoginPath)
		return
	}
	p.Subject, p.AuthTime, p.SessionHash = sess.Subject, sess.AuthTime, sessHash[:]
	need, err := a.consentRequired(ctx, client, p)
	if err != nil {
		a.redirectError(w, r, redirectURI, req.State, storeFailure(err))
		return
	}
	if need {
		if req.Prompt.Has(promptNone) {
			a.redirectError(w, r, redirectURI, req.State, ErrConsentRequired)
			return
		}
		a.showPage(w, r, p, ConsentPath)
		return
	}
	a.respondWithCode(w, r, client, p, "")
}

// loginRequired applies prompt=login (and select_account, which shows the login page: there
// is no account chooser) and max_age to a valid session.
func (a *authorizer) loginRequired(req *AuthorizeRequest, sess loginSession) bool {
	if req.Prompt.Has(promptLogin) || req.Prompt.Has(promptSelectAccount) {
		return true
	}
	if req.MaxAge < 0 {
		return false
	}
	return req.MaxAge == 0 || a.now().Unix()-sess.AuthTime > req.MaxAge
}

// rawParams returns the parameters of the request: the query of a GET, the form body of a POST.
func (a *authorizer) rawParams(r *http.Request) (string, error) {
	if r.Method != http.MethodPost {
		return r.URL.RawQuery, nil
	}
	format, err := parseContentType(r.Header.Get("Content-Type"))
	if err != nil || format != formBody {
		return "", invalidRequest("A POST to the authorization endpoint must be form-encoded.")
	}
	body, err := readBody(r.Body, r.ContentLength, a.maxBody)
	if err != nil {
		return "", err
	}
	return string(body), nil
}

// checkClientRedirect finds the client and the redirect URI to answer. Its errors are shown to
// the user and never redirected (RFC 6749 4.1.2.1): the redirect URI must equal one of the
// client's registered URIs exactly; it may be omitted when the client has exactly one, except
// in an OpenID Connect request, which must send it.
func checkClientRedirect(snap *registry.Snapshot, req *AuthorizeRequest) (*registry.Client, string, error) {
	client, ok := snap.Client(req.ClientID)
	if !ok {
		return nil, "", ErrInvalidRequest.WithDescription("The client_id is not a registered client.")
	}
	redirectURI := req.RedirectURI
	switch {
	case redirectURI != "":
		if !slices.Contains(client.RedirectURIs, redirectURI) {
			return nil, "", ErrInvalidRequest.WithDescription("The redirect_uri is not registered for the client.")
		}
	case hasScope(req.Scope, scopeOpenID):
		return nil, "", ErrInvalidRequest.WithDescription("An OpenID Connect request must include redirect_uri.")
	case len(client.RedirectURIs) == 1:
		redirectURI = client.RedirectURIs[0]
	default:
		return nil, "", ErrInvalidRequest.WithDescription("The redirect_uri parameter is missing.")
	}
	if u, err := url.Parse(redirectURI); err != nil || u.Scheme == "" || u.Fragment != "" {
		return nil, "", ErrInvalidRequest.WithDescription("The client's redirect URI is not usable.")
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
	case req.RequestURI:
		return nil, ErrRequestURINotSupported
	case req.Registration:
		return nil, ErrRegistrationNotSupported
	}
	switch req.ResponseType {
	case "code":
	case "":
		return nil, invalidRequest("The response_type parameter is missing.")
	default:
		return nil, ErrUnsupportedResponseType
	}
	if req.ResponseMode != "" && req.ResponseMode != "query" {
		return nil, invalidRequest("The response_mode must be query.")
	}
	if !client.AllowsGrant(grantAuthorizationCode) {
		return nil, ErrUnauthorizedClient.WithDescription("The client is not allowed the authorization_code grant.")
	}
	scopes, err := resolveScopes(ctx, snap, client, req.Scope)
	if err != nil {
		return nil, err
	}
	method, err := checkCodeChallenge(client, req.CodeChallenge, req.CodeChallengeMethod)
	if err != nil {
		return nil, err
	}
	return &pendingRequest{
		ClientID: client.ID, RedirectURI: redirectURI, RedirectURISent: req.RedirectURI != "",
		Scopes: scopes, State: req.State, Nonce: req.Nonce,
		CodeChallenge: req.CodeChallenge, CodeChallengeMethod: method,
		ForceConsent: req.Prompt.Has(promptConsent), LoginHint: req.LoginHint,
	}, nil
}

// hasScope reports whether the space-separated scope list holds name.
func hasScope(scope, name string) bool {
	for s := range strings.SplitSeq(scope, " ") {
		if s == name {
			return true
		}
	}
	return false
}

// showPage stores the pending request under a new ID, binds it to the browser and sends the
// browser to the login or consent page.
func (a *authorizer) showPage(w http.ResponseWriter, r *http.Request, p *pendingRequest, page string) {
	browser, err := browserID(w, r, a.cookies)
	if err == nil {
		h := store.HashOf(browser)
		p.BrowserHash = h[:]
		p.CSRFToken, err = newSecret()
	}
	var id string
	if err == nil {
		id, err = newSecret()
	}
	if err != nil {
		a.redirectError(w, r, p.RedirectURI, p.State, ErrServerError.WithCause(err))
		return
	}
	if err := a.savePending(r.Context(), id, p); err != nil {
		a.redirectError(w, r, p.RedirectURI, p.State, storeFailure(err))
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
func (a *authorizer) savePending(ctx context.Context, id string, p *pendingRequest) error {
	raw, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return a.store.PutRecord(ctx, recordAuthRequest, store.HashOf(id), raw, a.login.RequestLifetime)
}

// loadPending returns the pending request of an ID; ok is false when there is none (unknown,
// expired, used, or a malformed ID).
func (a *authorizer) loadPending(ctx context.Context, id string) (*pendingRequest, bool, error) {
	if !wellFormedSecret(id) {
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
func (a *authorizer) respondWithCode(w http.ResponseWriter, r *http.Request, client *registry.Client, p *pendingRequest, pendingID string) {
	ctx := r.Context()
	if pendingID != "" {
		if err := a.store.DeleteRecord(ctx, recordAuthRequest, store.HashOf(pendingID)); err != nil && !errors.Is(err, store.ErrNotFound) {
			a.redirectError(w, r, p.RedirectURI, p.State, storeFailure(err))
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
func (a *authorizer) issueCode(ctx context.Context, client *registry.Client, p *pendingRequest) (string, error) {
	code, err := newSecret()
	if err != nil {
		return "", ErrServerError.WithCause(err)
	}
	family, err := newFamilyID()
	if err != nil {
		return "", ErrServerError.WithCause(err)
	}
	rec := store.Code{
		ClientID: client.ID, Subject: p.Subject, Scopes: p.Scopes, Nonce: p.Nonce,
		CodeChallenge: p.CodeChallenge, CodeChallengeMethod: p.CodeChallengeMethod,
		AuthTime: time.Unix(p.AuthTime, 0), FamilyID: family,
	}
	if p.RedirectURISent {
		rec.RedirectURI = p.RedirectURI
	}
	if err := a.store.PutCode(ctx, store.HashOf(code), rec, codeTTL(client)); err != nil {
		return "", storeFailure(err)
	}
	return code, nil
}

// redirectError sends an error to the client's redirect URI with the state and the issuer.
func (a *authorizer) redirectError(w http.ResponseWriter, r *http.Request, redirectURI, state string, err error) {
	var oe *Error
	if !errors.As(err, &oe) {
		oe = ErrServerError.WithCause(err)
	}
	log := logr.FromContextOrDiscard(r.Context())
	if oe.status >= http.StatusInternalServerError {
		log.Error(oe.cause, "authorization request failed", "error", oe.code)
	} else {
		log.V(1).Info("authorization request refused", "error", oe.code, "description", oe.description)
	}
	a.redirect(w, responseURI(redirectURI, "error", oe.code, state, a.issuer, "error_description", oe.description))
}

// redirect answers 303 See Other (RFC 9700 4.12: never 307, which would repost the form).
func (a *authorizer) redirect(w http.ResponseWriter, location string) {
	h := w.Header()
	setPageSecurityHeaders(h, "")
	h.Set("Location", location)
	w.WriteHeader(http.StatusSeeOther)
}

// responseURI adds the response parameters to the query of the redirect URI, keeping the query
// it has (RFC 6749 3.1.2): key and value, then state (when set) and iss (RFC 9207), then any
// extra key/value pairs.
func responseURI(redirectURI, key, value, state, issuer string, extra ...string) string {
	base, _, _ := strings.Cut(redirectURI, "#")
	var b strings.Builder
	b.Grow(len(base) + len(value) + len(state) + len(issuer) + 64)
	b.WriteString(base)
	switch {
	case !strings.Contains(base, "?"):
		b.WriteByte('?')
	case strings.HasSuffix(base, "?"), strings.HasSuffix(base, "&"):
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
func (a *authorizer) requestErrorPage(w http.ResponseWriter, r *http.Request, err error) {
	var oe *Error
	if !errors.As(err, &oe) {
		oe = ErrInvalidRequest
	}
	logr.FromContextOrDiscard(r.Context()).V(1).Info("authorization request shown as an error page",
		"error", oe.code, "description", oe.description)
	status := oe.status
	if status < http.StatusBadRequest || status >= http.StatusInternalServerError {
		status = http.StatusBadRequest
	}
	a.pages.renderError(w, r, status, errorPage{
		Title:   "Sign-in request rejected",
		Message: "The application sent an invalid sign-in request, so you cannot continue. Go back to the application and try again, or contact its developer.",
		Detail:  oe.description,
	})
}

// storeFailure maps a store error of the browser flow.
func storeFailure(err error) error {
	if errors.Is(err, store.ErrUnavailable) {
		return ErrTemporarilyUnavailable.WithCause(err)
	}
	return ErrServerError.WithCause(err)
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
func (a *authorizer) pageError(w http.ResponseWriter, r *http.Request, status int, message string) {
	title := "Something went wrong"
	switch status {
	case http.StatusBadRequest:
		title = "Sign-in request expired"
	case http.StatusForbidden:
		title = "Request blocked"
	case http.StatusServiceUnavailable:
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

// pageStoreError shows a store failure on a page.
func (a *authorizer) pageStoreError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, store.ErrUnavailable) {
		logr.FromContextOrDiscard(r.Context()).Error(err, "store unavailable", "path", r.URL.Path)
		a.pageError(w, r, http.StatusServiceUnavailable, msgBusy)
		return
	}
	logr.FromContextOrDiscard(r.Context()).Error(err, "store failed", "path", r.URL.Path)
	a.pageError(w, r, http.StatusInternalServerError, "The sign-in service failed. Try again later.")
}

// pendingFromForm loads the pending request a login or consent POST names, checks its CSRF
// token and browser binding, and finds its client. On failure it has written the answer.
func (a *authorizer) pendingFromForm(w http.ResponseWriter, r *http.Request) (form url.Values, id string, p *pendingRequest, client *registry.Client, ok bool) {
	format, err := parseContentType(r.Header.Get("Content-Type"))
	if err != nil || format != formBody {
		a.pageError(w, r, http.StatusBadRequest, msgExpired)
		return nil, "", nil, nil, false
	}
	body, err := readBody(r.Body, r.ContentLength, a.maxBody)
	if err != nil {
		a.pageError(w, r, http.StatusRequestEntityTooLarge, "The form is too large.")
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
	client, found = a.registry.Snapshot().Client(p.ClientID)
	if !found {
		a.pageError(w, r, http.StatusBadRequest, msgExpired)
		return nil, "", nil, nil, false
	}
	return form, id, p, client, true
}

// pendingFromQuery loads the pending request a login or consent page names and checks the
// browser binding. On failure it has written the answer.
func (a *authorizer) pendingFromQuery(w http.ResponseWriter, r *http.Request) (id string, p *pendingRequest, client *registry.Client, ok bool) {
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
	client, found = a.registry.Snapshot().Client(p.ClientID)
	if !found {
		a.pageError(w, r, http.StatusBadRequest, msgExpired)
		return "", nil, nil, false
	}
	return id, p, client, true
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
