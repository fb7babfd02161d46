package harness

import (
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The form actions of the login and consent pages, relative to the page (a base path of the
// issuer is kept).
const (
	LoginAction   = "../oauth2/login"
	ConsentAction = "../oauth2/consent"
)

// browserTimeout bounds one navigation, redirects included.
const browserTimeout = 30 * time.Second

// Browser is an HTTP client that acts as a user's browser for the login and consent pages: it
// keeps cookies, follows redirects within the servers it was given and stops at a redirect
// elsewhere (the client's redirect URI). Every method fails the test on a transport error.
type Browser struct {
	// Client is the browser's HTTP client, with its cookie jar (Client.Jar).
	Client *http.Client
	// Origin, when set (scheme://host[:port]), is sent as the Origin header of every POST, and
	// its host as the Host: what a browser sends to replicas behind a load balancer at that
	// address. Unset, POSTs carry neither (as curl sends).
	Origin string

	t testing.TB
}

// NewBrowser returns a browser with an empty cookie jar over base's transport (nil: the default
// transport; an httptest TLS server's client for HTTPS) that follows redirects only to the
// hosts of servers (base URLs such as an issuer or each replica).
func NewBrowser(t testing.TB, base *http.Client, servers ...string) *Browser {
	t.Helper()
	require.NotEmpty(t, servers, "the browser needs the server's URL")
	hosts := make([]string, 0, len(servers))
	for _, s := range servers {
		u, err := url.Parse(s)
		require.NoError(t, err)
		require.NotEmpty(t, u.Host, "a server URL with a host: %q", s)
		hosts = append(hosts, u.Host)
	}
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	c := &http.Client{
		Jar:     jar,
		Timeout: browserTimeout,
		CheckRedirect: func(req *http.Request, _ []*http.Request) error {
			if !slices.Contains(hosts, req.URL.Host) {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}
	if base != nil {
		c.Transport = base.Transport
	}
	return &Browser{Client: c, t: t}
}

// Page is what the browser got at the end of a navigation.
type Page struct {
	Status int
	Header http.Header
	Body   string
	// URL is the URL of the final request (after the redirects followed).
	URL *url.URL
	// Location is the redirect out of the servers (to the client), if the navigation ended in one.
	Location *url.URL
}

// IsLogin reports whether the page holds the login form.
func (p Page) IsLogin() bool { return strings.Contains(p.Body, `action="`+LoginAction+`"`) }

// IsConsent reports whether the page holds the consent form.
func (p Page) IsConsent() bool { return strings.Contains(p.Body, `action="`+ConsentAction+`"`) }

// Hidden returns the hidden inputs of the page's form, HTML-unescaped.
func (p Page) Hidden() url.Values {
	hidden := regexp.MustCompile(`<input type="hidden" name="([a-z_]+)" value="([^"]*)">`)
	v := url.Values{}
	for _, m := range hidden.FindAllStringSubmatch(p.Body, -1) {
		v.Set(m[1], html.UnescapeString(m[2]))
	}
	return v
}

// Callback is the authorization response that a redirect to the client carries.
type Callback struct {
	// URI is the redirect URI the response went to: the redirect's scheme, host and path.
	URI                                       string
	Code, State, Iss, Error, ErrorDescription string
	Query                                     url.Values
}

// Callback returns the authorization response of the page, which must be a redirect to the
// client.
func (p Page) Callback(t testing.TB) Callback {
	t.Helper()
	require.NotNil(t, p.Location, "a redirect to the client: %d %s", p.Status, p.Body)
	q := p.Location.Query()
	return Callback{
		URI:  (&url.URL{Scheme: p.Location.Scheme, Host: p.Location.Host, Path: p.Location.Path}).String(),
		Code: q.Get("code"), State: q.Get("state"), Iss: q.Get("iss"),
		Error: q.Get("error"), ErrorDescription: q.Get("error_description"), Query: q,
	}
}

// Get navigates to rawURL.
func (b *Browser) Get(rawURL string) Page {
	b.t.Helper()
	req, err := http.NewRequestWithContext(b.t.Context(), http.MethodGet, rawURL, nil)
	require.NoError(b.t, err)
	return b.do(req)
}

// Post posts the form to rawURL, with the Origin (and Host) of the browser when set and then the
// headers, given as name, value pairs ("Host" sets the request's host).
func (b *Browser) Post(rawURL string, form url.Values, headers ...string) Page {
	b.t.Helper()
	req, err := http.NewRequestWithContext(b.t.Context(), http.MethodPost, rawURL, strings.NewReader(form.Encode()))
	require.NoError(b.t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if b.Origin != "" {
		origin, err := url.Parse(b.Origin)
		require.NoError(b.t, err)
		req.Host = origin.Host
		req.Header.Set("Origin", b.Origin)
	}
	require.Zero(b.t, len(headers)%2, "headers are name, value pairs: %q", headers)
	for i := 0; i+1 < len(headers); i += 2 {
		if http.CanonicalHeaderKey(headers[i]) == "Host" {
			req.Host = headers[i+1]
			continue
		}
		req.Header.Set(headers[i], headers[i+1])
	}
	return b.do(req)
}

// Submit posts form to action, resolved against the page's URL as a browser resolves a form's
// action (so it goes to the server, or the replica, that served the page).
func (b *Browser) Submit(p Page, action string, form url.Values) Page {
	b.t.Helper()
	require.NotNil(b.t, p.URL, "a page the browser got")
	target, err := p.URL.Parse(action)
	require.NoError(b.t, err)
	return b.Post(target.String(), form)
}

// Login fills in the page's login form (which must be one, with its request ID and CSRF token)
// and submits it.
func (b *Browser) Login(p Page, username, password string) Page {
	b.t.Helper()
	require.True(b.t, p.IsLogin(), "a login page: %d %s", p.Status, p.Body)
	form := p.Hidden()
	require.NotEmpty(b.t, form.Get("request_id"), "the login form's request_id")
	require.NotEmpty(b.t, form.Get("csrf_token"), "the login form's csrf_token")
	form.Set("username", username)
	form.Set("password", password)
	return b.Submit(p, LoginAction, form)
}

// Decide submits the page's consent form (which must be one) with decision "allow" or "deny".
func (b *Browser) Decide(p Page, decision string) Page {
	b.t.Helper()
	require.True(b.t, p.IsConsent(), "a consent page: %d %s", p.Status, p.Body)
	form := p.Hidden()
	form.Set("decision", decision)
	return b.Submit(p, ConsentAction, form)
}

func (b *Browser) do(req *http.Request) Page {
	b.t.Helper()
	resp, err := b.Client.Do(req)
	require.NoError(b.t, err)
	defer resp.Body.Close() //nolint:errcheck // read fully below
	raw, err := io.ReadAll(resp.Body)
	require.NoError(b.t, err)
	p := Page{Status: resp.StatusCode, Header: resp.Header, Body: string(raw), URL: resp.Request.URL}
	if loc := resp.Header.Get("Location"); loc != "" && resp.StatusCode/100 == 3 {
		p.Location, err = resp.Request.URL.Parse(loc)
		require.NoError(b.t, err)
	}
	return p
}
