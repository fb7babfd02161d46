package browser

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"net/http"
	"strings"

	"github.com/go-logr/logr"

	"github.com/latchkey-dev/latchkey/server/oauth2"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static/latchkey.css
var stylesheet []byte

// Security headers of every HTML page. The pages have no script, image or frame; styles come
// from StylesheetPath only; forms post to the server itself (and, on pages that can end in a
// redirect to the client, to the client's redirect origin: see formActionCSP).
const (
	pageCSP          = "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'"
	contentTypeHTML  = "text/html; charset=utf-8"
	stylesheetMaxAge = "public, max-age=86400"
)

// pages renders the server's HTML pages from the embedded templates.
type pages struct {
	login, consent, failure, device, done *template.Template
	logout, signedOut, account            *template.Template
	cssVersion                            string
}

func newPages() (*pages, error) {
	sum := sha256.Sum256(stylesheet)
	p := &pages{cssVersion: hex.EncodeToString(sum[:6])}
	funcs := template.FuncMap{
		// Pages are served two levels deep (/oauth2/login, /oauth/authorize), so "../oauth2/"
		// reaches the server's root under any path prefix a proxy adds.
		"stylesheet": func() string { return ".." + oauth2.StylesheetPath + "?v=" + p.cssVersion },
	}
	parse := func(name string) (*template.Template, error) {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name)
		if err != nil {
			return nil, fmt.Errorf("browser: page template %s: %w", name, err)
		}
		return t, nil
	}
	var err error
	if p.login, err = parse("login.html"); err != nil {
		return nil, err
	}
	if p.consent, err = parse("consent.html"); err != nil {
		return nil, err
	}
	if p.failure, err = parse("error.html"); err != nil {
		return nil, err
	}
	if p.logout, err = parse("logout.html"); err != nil {
		return nil, err
	}
	if p.signedOut, err = parse("signedout.html"); err != nil {
		return nil, err
	}
	if p.account, err = parse("account.html"); err != nil {
		return nil, err
	}
	if p.device, err = parse("device.html"); err != nil {
		return nil, err
	}
	if p.done, err = parse("done.html"); err != nil {
		return nil, err
	}
	return p, nil
}

// loginPage is the data of the login form.
type loginPage struct {
	Title, Client, RequestID, CSRFToken, Username, Error string
	// Providers are the upstream identity providers offered; Password shows the password form.
	Providers []providerLink
	Password  bool
	// Directories are the LDAP providers the password form offers, and Local whether it
	// offers the User resources too; Provider is the one chosen ("": a User).
	Directories []providerLink
	Local       bool
	Provider    string
}

// providerLink is one upstream identity provider on the login page.
type providerLink struct {
	Name, DisplayName string
	// Kind is "" for OIDC, providerKindGitHub; ID is the link's HTML id.
	Kind, ID string
}

// consentPage is the data of the consent form.
type consentPage struct {
	Title, Client, Username, RequestID, CSRFToken, RedirectHost string
	Scopes                                                      []scopeItem
	// UserCode is the device's user code (XXXX-XXXX) when the page confirms a device
	// authorization (RFC 8628): the page asks the user to compare it with the device's.
	UserCode string
	// Unverified: the client registered itself (registry.Client.Registered), so nobody
	// vouched for its name; the page says so and names where the answer goes.
	Unverified bool
}

// devicePage is the data of the verification page's code form.
type devicePage struct {
	Title, CSRFToken, UserCode, Error string
}

// scopeItem is one requested scope as the consent page lists it.
type scopeItem struct {
	Name, Description string
}

// logoutPage is the data of the logout confirmation form.
type logoutPage struct {
	Title, Username, CSRFToken string
	// Client and ClientID name the client that asked, when known; State and
	// PostLogoutRedirectURI (already checked) are posted back with the form.
	Client, ClientID, State, PostLogoutRedirectURI string
}

// signedOutPage is the data of the page after a logout (or a decision to stay).
type signedOutPage struct {
	Title, Message string
	// ReturnURI, when set, is a link back to the client (named Client).
	ReturnURI, Client string
}

// accountPage is the data of the account page.
type accountPage struct {
	Title, Username, CSRFToken string
	Consents                   []accountConsent
	Sessions                   []accountSession
	Grants                     []accountGrant
}

// accountConsent is a remembered consent on the account page.
type accountConsent struct {
	ClientID, Client, Scopes, When string
}

// accountSession is an OP session on the account page.
type accountSession struct {
	SID, Since, Clients string
	Current             bool
}

// accountGrant is a client's grants (refresh token families) on the account page.
type accountGrant struct {
	Client, Since  string
	Count          int
	CurrentSession bool
}

// errorPage is the data of an error page.
type errorPage struct {
	Title, Message, Detail string
}

// render writes a page with the security headers. formAction lists extra form-action sources
// of the CSP (see formActionCSP).
func (p *pages) render(w http.ResponseWriter, r *http.Request, status int, t *template.Template, data any, formAction string) {
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		logr.FromContextOrDiscard(r.Context()).Error(err, "page failed to render", "path", r.URL.Path)
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString("<!DOCTYPE html><html lang=\"en\"><title>Error</title><p>Something went wrong.</p></html>")
	}
	h := w.Header()
	h.Set("Content-Type", contentTypeHTML)
	setPageSecurityHeaders(h, formAction)
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// setPageSecurityHeaders sets the headers every page and browser redirect carries.
func setPageSecurityHeaders(h http.Header, formAction string) {
	csp := pageCSP
	if formAction != "" {
		csp = strings.Replace(csp, "form-action 'self'", "form-action 'self' "+formAction, 1)
	}
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("Referrer-Policy", "no-referrer")
}

func (p *pages) renderLogin(w http.ResponseWriter, r *http.Request, status int, data loginPage, formAction string) {
	data.Title = "Sign in"
	p.render(w, r, status, p.login, data, formAction)
}

func (p *pages) renderConsent(w http.ResponseWriter, r *http.Request, data consentPage, formAction string) {
	data.Title = "Allow access"
	p.render(w, r, http.StatusOK, p.consent, data, formAction)
}

func (p *pages) renderLogout(w http.ResponseWriter, r *http.Request, data logoutPage, formAction string) {
	data.Title = "Sign out"
	p.render(w, r, http.StatusOK, p.logout, data, formAction)
}

func (p *pages) renderSignedOut(w http.ResponseWriter, r *http.Request, data signedOutPage) {
	p.render(w, r, http.StatusOK, p.signedOut, data, "")
}

func (p *pages) renderAccount(w http.ResponseWriter, r *http.Request, data accountPage) {
	data.Title = "Your account"
	p.render(w, r, http.StatusOK, p.account, data, "")
}

func (p *pages) renderDevice(w http.ResponseWriter, r *http.Request, status int, data devicePage) {
	data.Title = "Connect a device"
	p.render(w, r, status, p.device, data, "")
}

// renderDone shows the end of a flow that goes back to no client (a device's).
func (p *pages) renderDone(w http.ResponseWriter, r *http.Request, data errorPage) {
	p.render(w, r, http.StatusOK, p.done, data, "")
}

func (p *pages) renderError(w http.ResponseWriter, r *http.Request, status int, data errorPage) {
	p.render(w, r, status, p.failure, data, "")
}

// serveStylesheet serves the pages' CSS; the pages link it with a version query, so it may be
// cached.
func (p *pages) serveStylesheet(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/css; charset=utf-8")
	h.Set("Cache-Control", stylesheetMaxAge)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("ETag", `"`+p.cssVersion+`"`)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(stylesheet)
}
