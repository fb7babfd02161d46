package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/latchkey-dev/latchkey/internal/harness"
)

// The soak's clients and user (manifests.go writes them).
const (
	serviceID     = "soak-service"
	serviceSecret = "soak-service-secret"
	spaID         = "soak-spa"
	redirectURI   = "http://localhost:3000/callback"
	username      = "soak"
	password      = "soak-password"
)

// soak holds what the operations share.
type soak struct {
	issuer string
	bal    *balancer
	api    *http.Client
	rec    *recorder
	chains *chains
	tokens *ring
	flows  atomic.Int64
}

var tags = regexp.MustCompile(`<[^>]*>`) //nolint:gochecknoglobals // a compiled constant

// reply is a request's answer.
type reply struct {
	status int
	body   []byte
	err    error
	t0     time.Time
	a      attempt
}

func (r reply) field(name string) string {
	var m map[string]any
	if json.Unmarshal(r.body, &m) != nil {
		return ""
	}
	s, _ := m[name].(string)
	return s
}

// post sends a form to the issuer's path; a confidential request (basic) authenticates as the
// service client, a public one names the SPA in client_id. retry lets the balancer resend it
// to another replica after a transport error.
func (s *soak) post(ctx context.Context, path string, form url.Values, basic, retry bool) reply {
	if !basic {
		form.Set("client_id", spaID)
	}
	r := reply{t0: time.Now()}
	ctx = withAttempt(ctx, &r.a)
	if !retry {
		ctx = noRetry(ctx)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.issuer+path, strings.NewReader(form.Encode()))
	if err != nil {
		r.err = err
		return r
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic {
		req.SetBasicAuth(serviceID, serviceSecret)
	}
	resp, err := s.api.Do(req)
	if err != nil {
		r.err = err
		return r
	}
	defer resp.Body.Close() //nolint:errcheck // read fully below
	r.status = resp.StatusCode
	r.body, r.err = io.ReadAll(resp.Body)
	return r
}

func (s *soak) note(ep string, r reply, want func(int) bool) outcome {
	return s.rec.record(ep, r.t0, r.status, r.err, &r.a, want, truncate(string(r.body)))
}

// truncate shortens an answer for a failure note; of an HTML page it keeps the text of <main>.
func truncate(s string) string {
	if i := strings.Index(s, "<main"); i >= 0 {
		s = tags.ReplaceAllString(s[i:], " ")
		s = strings.Join(strings.Fields(s), " ")
	}
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}

// clientCredentials gets an access token for the service client; "" when it failed.
func (s *soak) clientCredentials(ctx context.Context) string {
	r := s.post(ctx, "/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"read:projects"}}, true, true)
	if s.note(epClientCredentials, r, nil) != ok {
		return ""
	}
	tok := r.field("access_token")
	if tok == "" {
		s.rec.fail(epClientCredentials, "no access_token in a 200")
	}
	return tok
}

// introspect asks whether tok is active; ok is false when there was no usable answer.
func (s *soak) introspect(ctx context.Context, tok string) (active, answered bool) {
	r := s.post(ctx, "/oauth2/introspect", url.Values{"token": {tok}}, true, true)
	if s.note(epIntrospect, r, nil) != ok {
		return false, false
	}
	var m struct {
		Active *bool `json:"active"`
	}
	if json.Unmarshal(r.body, &m) != nil || m.Active == nil {
		s.rec.fail(epIntrospect, "no active member in a 200")
		return false, false
	}
	return *m.Active, true
}

// opClientCredentials gets a token and keeps it for introspection.
func (s *soak) opClientCredentials(ctx context.Context) {
	if tok := s.clientCredentials(ctx); tok != "" {
		s.tokens.put(tok)
	}
}

// opIntrospect introspects a recent, unrevoked token, which must be active.
func (s *soak) opIntrospect(ctx context.Context) {
	tok := s.tokens.get()
	if tok == "" {
		s.opClientCredentials(ctx)
		return
	}
	if active, answered := s.introspect(ctx, tok); answered && !active {
		s.rec.fail(epIntrospect, "an unrevoked, unexpired token was reported inactive")
	}
}

// opRevokeAccess revokes a fresh access token and checks introspection then says inactive.
func (s *soak) opRevokeAccess(ctx context.Context) {
	tok := s.clientCredentials(ctx)
	if tok == "" {
		return
	}
	r := s.post(ctx, "/oauth2/revoke", url.Values{"token": {tok}, "token_type_hint": {"access_token"}}, true, true)
	if s.note(epRevoke, r, nil) != ok {
		return
	}
	if active, answered := s.introspect(ctx, tok); answered && active {
		s.rec.fail(epIntrospect, "a revoked token was reported active")
	}
}

// reasonLostAnswer is why a refresh token presented again after a transport error is refused.
const reasonLostAnswer = "rotated by a request whose answer the kill lost"

// refreshRetryFor bounds how long a refresh answered 503 (Redis restarting) is retried.
const refreshRetryFor = 20 * time.Second

// opRefresh rotates one chain's refresh token. A 503 (the store refused: no rotation) is
// retried with the same token; a transport error too, once, on another replica: when the lost
// request had rotated, the retry is refused and the chain counts as cut by the kill (its last
// acknowledged token was legitimately used up by a request whose answer was lost).
func (s *soak) opRefresh(ctx context.Context) {
	c := s.chains.take()
	if c == nil {
		s.opClientCredentials(ctx)
		return
	}
	defer c.mu.Unlock()
	s.rotate(ctx, c)
}

func (s *soak) rotate(ctx context.Context, c *chain) {
	deadline := time.Now().Add(refreshRetryFor)
	transportRetried := false
	for {
		r := s.post(ctx, "/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {c.token}}, false, false)
		var res outcome
		if transportRetried {
			// The lost request may have rotated: then the token is refused, and that is the kill's.
			res = s.rec.recordWhy(epRefresh, r.t0, r.status, r.err, &r.a, func(st int) bool { return is2xx(st) || st == http.StatusBadRequest },
				reasonLostAnswer, truncate(string(r.body)))
		} else {
			res = s.note(epRefresh, r, nil)
		}
		switch {
		case res == ok:
			if rt := r.field("refresh_token"); rt != "" {
				c.token = rt
				c.rotations++
				return
			}
			s.rec.fail(epRefresh, "no refresh_token in a 200")
			c.state = chainLost
			return
		case ctx.Err() != nil:
			return
		case res == deliberately && r.err != nil && !transportRetried:
			transportRetried = true // the answer was lost to the kill: present the token again
			continue
		case res == deliberately && r.err != nil, res == deliberately && transportRetried && r.status == http.StatusBadRequest:
			c.state = chainCut
			return
		case res == deliberately && time.Now().Before(deadline):
			time.Sleep(250 * time.Millisecond)
			continue
		default:
			c.state = chainLost
			return
		}
	}
}

// opRevokeChain revokes a chain's refresh token and checks it is refused afterwards; a new
// chain from a code flow takes its place.
func (s *soak) opRevokeChain(ctx context.Context) {
	c := s.chains.take()
	if c == nil {
		return
	}
	defer c.mu.Unlock()
	r := s.post(ctx, "/oauth2/revoke", url.Values{"token": {c.token}, "token_type_hint": {"refresh_token"}}, false, true)
	if s.note(epRevoke, r, nil) != ok {
		return
	}
	c.state = chainRevoked
	r = s.post(ctx, "/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {c.token}}, false, false)
	s.note(epRefresh, r, func(st int) bool { return st == http.StatusBadRequest })
	s.opCodeFlow(ctx)
}

// opCodeFlow runs the authorization code flow with PKCE through the login and consent pages,
// as a new browser (its own cookie jar), exchanges the code and keeps the refresh token as a
// new chain (revoking it when the pool is full).
func (s *soak) opCodeFlow(ctx context.Context) {
	rt := s.codeFlow(ctx)
	if rt == "" {
		return
	}
	if s.chains.add(rt) {
		return
	}
	r := s.post(ctx, "/oauth2/revoke", url.Values{"token": {rt}, "token_type_hint": {"refresh_token"}}, false, true)
	s.note(epRevoke, r, nil)
}

// codeFlow returns the refresh token of a completed flow, "" when a step failed (recorded).
func (s *soak) codeFlow(ctx context.Context) string {
	jar, err := cookiejar.New(nil)
	if err != nil {
		s.rec.fail(epAuthorize, err.Error())
		return ""
	}
	b := &browser{s: s, c: &http.Client{Jar: jar, Transport: s.bal, Timeout: 30 * time.Second,
		CheckRedirect: func(req *http.Request, _ []*http.Request) error {
			if req.URL.Host != b0(s.issuer) {
				return http.ErrUseLastResponse
			}
			return nil
		}}}
	verifier := rand.Text() + rand.Text()
	sum := sha256.Sum256([]byte(verifier))
	state := rand.Text()
	q := url.Values{"response_type": {"code"}, "client_id": {spaID}, "redirect_uri": {redirectURI},
		"scope": {"openid profile read:projects"}, "state": {state},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
	if s.flows.Add(1)%2 == 0 {
		q.Set("prompt", "consent") // every other flow goes through the consent page
	}
	p, good := b.get(ctx, epAuthorize, s.issuer+"/oauth2/authorize?"+q.Encode())
	if !good {
		return ""
	}
	if !p.IsLogin() {
		s.rec.fail(epAuthorize, fmt.Sprintf("no login page: %d %v %s", p.Status, p.Location, truncate(p.Body)))
		return ""
	}
	form := p.Hidden()
	form.Set("username", username)
	form.Set("password", password)
	if p, good = b.submit(ctx, epLogin, p, harness.LoginAction, form); !good {
		return ""
	}
	if p.IsConsent() {
		form = p.Hidden()
		form.Set("decision", "allow")
		if p, good = b.submit(ctx, epConsent, p, harness.ConsentAction, form); !good {
			return ""
		}
	}
	if p.Location == nil || p.Location.Query().Get("code") == "" || p.Location.Query().Get("state") != state {
		s.rec.fail(epConsent, fmt.Sprintf("no code in the redirect to the client: %d %s", p.Status, truncate(p.Body)))
		return ""
	}
	r := s.post(ctx, "/oauth2/token", url.Values{"grant_type": {"authorization_code"}, "code": {p.Location.Query().Get("code")},
		"redirect_uri": {redirectURI}, "code_verifier": {verifier}}, false, false)
	if s.note(epCode, r, nil) != ok {
		return ""
	}
	rt := r.field("refresh_token")
	if rt == "" {
		s.rec.fail(epCode, "no refresh_token in a 200")
	}
	return rt
}

// b0 is the host of a URL.
func b0(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Host
}

// browser drives the login and consent pages for one flow.
type browser struct {
	s *soak
	c *http.Client
}

func (b *browser) get(ctx context.Context, ep, target string) (harness.Page, bool) {
	return b.do(ctx, ep, http.MethodGet, target, nil)
}

// submit posts form to action, resolved against the page's URL as a browser does.
func (b *browser) submit(ctx context.Context, ep string, p harness.Page, action string, form url.Values) (harness.Page, bool) {
	target, err := p.URL.Parse(action)
	if err != nil {
		b.s.rec.fail(ep, err.Error())
		return harness.Page{}, false
	}
	return b.do(ctx, ep, http.MethodPost, target.String(), form)
}

// do makes one navigation (redirects within the issuer followed) and records it; a page is good
// when it is a 200 or a redirect out to the client. A login or consent POST is not resent to
// another replica after a transport error.
func (b *browser) do(ctx context.Context, ep, method, target string, form url.Values) (harness.Page, bool) {
	var a attempt
	t0 := time.Now()
	ctx = withAttempt(ctx, &a)
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
		ctx = noRetry(ctx)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		b.s.rec.fail(ep, err.Error())
		return harness.Page{}, false
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", b.s.issuer)
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.s.rec.record(ep, t0, 0, err, &a, nil, "")
		return harness.Page{}, false
	}
	defer resp.Body.Close() //nolint:errcheck // read fully below
	raw, err := io.ReadAll(resp.Body)
	p := harness.Page{Status: resp.StatusCode, Header: resp.Header, Body: string(raw), URL: resp.Request.URL}
	if loc := resp.Header.Get("Location"); loc != "" && resp.StatusCode/100 == 3 {
		p.Location, _ = resp.Request.URL.Parse(loc)
	}
	status := resp.StatusCode
	if p.Location != nil {
		// An error redirect to the client is the flow's refusal: temporarily_unavailable is
		// what a 503 is to an API client.
		switch p.Location.Query().Get("error") {
		case "":
		case "temporarily_unavailable":
			status = http.StatusServiceUnavailable
		default:
			status = http.StatusBadRequest
		}
	}
	good := func(st int) bool { return st == http.StatusOK || (st/100 == 3 && p.Location != nil) }
	if b.s.rec.record(ep, t0, status, err, &a, good, truncate(p.Body)) != ok || !good(status) {
		return p, false
	}
	return p, err == nil
}

// chain is one refresh token chain: the last refresh token whose rotation was acknowledged.
type chain struct {
	mu        sync.Mutex
	token     string
	rotations int
	state     chainState
}

type chainState int

const (
	chainLive chainState = iota
	// chainCut: a rotation's answer was lost to the replica kill (not a loss of an
	// acknowledged token).
	chainCut
	// chainRevoked: revoked on purpose.
	chainRevoked
	// chainLost: an acknowledged token was refused: the failure the soak looks for.
	chainLost
)

// chains is the pool of refresh token chains, at most max live ones.
type chains struct {
	mu  sync.Mutex
	all []*chain
	max int
}

// add starts a chain with rt; false when the pool is full.
func (p *chains) add(rt string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	live := 0
	for _, c := range p.all {
		if c.state == chainLive {
			live++
		}
	}
	if live >= p.max {
		return false
	}
	p.all = append(p.all, &chain{token: rt})
	return true
}

// take locks and returns a random live chain that nobody holds, nil when there is none.
func (p *chains) take() *chain {
	p.mu.Lock()
	all := p.all
	p.mu.Unlock()
	if len(all) == 0 {
		return nil
	}
	start := mrand.IntN(len(all)) //nolint:gosec // load spreading, not security
	for i := range all {
		c := all[(start+i)%len(all)]
		if c.mu.TryLock() {
			if c.state == chainLive {
				return c
			}
			c.mu.Unlock()
		}
	}
	return nil
}

// snapshot returns every chain.
func (p *chains) snapshot() []*chain {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*chain(nil), p.all...)
}

// ring keeps the latest access tokens for introspection.
type ring struct {
	mu   sync.Mutex
	toks []string
	next int
}

func (r *ring) put(tok string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.toks) < cap(r.toks) {
		r.toks = append(r.toks, tok)
		return
	}
	r.toks[r.next] = tok
	r.next = (r.next + 1) % len(r.toks)
}

func (r *ring) get() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.toks) == 0 {
		return ""
	}
	return r.toks[mrand.IntN(len(r.toks))] //nolint:gosec // load spreading
}
