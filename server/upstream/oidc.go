package upstream

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/latchkey-dev/latchkey/server/registry"
)

// Errors of the upstream flow; match them with errors.Is.
var (
	// ErrUnavailable: the upstream's discovery or token endpoint failed or cannot be reached.
	ErrUnavailable = errors.New("upstream: provider unavailable")
	// ErrIDToken: the upstream's token response has no ID token, or it does not verify (its
	// signature, issuer, audience, expiry or nonce).
	ErrIDToken = errors.New("upstream: ID token not accepted")
)

// Timing of the upstream flow.
const (
	httpTimeout          = 10 * time.Second
	rediscoverAfterError = 10 * time.Second
)

// OIDC is the login flow's side of one upstream OpenID Connect provider value (one generation of
// an OIDCIdentityProvider). It is safe for concurrent use.
type OIDC struct {
	cfg    registry.UpstreamOIDC
	mapper *Mapper
	client *http.Client
	now    func() time.Time

	mu       sync.Mutex
	provider *oidc.Provider
	lastErr  error
	lastTry  time.Time
}

// NewOIDC compiles the provider's mappings and builds its HTTP client (its CA bundle as the only
// roots); discovery waits for the first use.
func NewOIDC(u *registry.UpstreamOIDC, now func() time.Time) (*OIDC, error) {
	if now == nil {
		now = time.Now
	}
	m, err := Compile(u)
	if err != nil {
		return nil, err
	}
	client, err := HTTPClient(u.CABundle)
	if err != nil {
		return nil, err
	}
	return &OIDC{cfg: *u, mapper: m, client: client, now: now}, nil
}

// HTTPClient is the client of an upstream's endpoints: caBundle (PEM) as its only roots, or the
// system's when empty; a 10 s timeout; no redirects followed across schemes by net/http's rules.
func HTTPClient(caBundle []byte) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if len(caBundle) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(caBundle) {
			return nil, fmt.Errorf("%w: caBundle holds no PEM certificate", ErrInvalidMapping)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr, Timeout: httpTimeout}, nil
}

// Config is the provider's value.
func (o *OIDC) Config() *registry.UpstreamOIDC { return &o.cfg }

// Discover fetches the upstream's discovery document once (again after a failure, at most every
// 10 s) and checks that it names the issuer.
func (o *OIDC) Discover(ctx context.Context) (*oidc.Provider, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.provider != nil {
		return o.provider, nil
	}
	if o.lastErr != nil && o.now().Sub(o.lastTry) < rediscoverAfterError {
		return nil, o.lastErr
	}
	o.lastTry = o.now()
	p, err := Discover(ctx, o.client, o.cfg.Issuer)
	if err != nil {
		o.lastErr = err
		return nil, err
	}
	o.provider, o.lastErr = p, nil
	return p, nil
}

// Discover fetches and checks the discovery document of issuer with client (go-oidc: the
// document must name the issuer exactly). Its errors wrap ErrUnavailable.
func Discover(ctx context.Context, client *http.Client, issuer string) (*oidc.Provider, error) {
	ctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, client), httpTimeout)
	defer cancel()
	p, err := oidc.NewProvider(ctx, issuer)
	if err != nil {
		return nil, fmt.Errorf("%w: discovery at %s: %w", ErrUnavailable, issuer, err)
	}
	return p, nil
}

func (o *OIDC) oauth2Config(p *oidc.Provider, redirectURI string) *oauth2.Config {
	ep := p.Endpoint()
	ep.AuthStyle = oauth2.AuthStyleInHeader
	if o.cfg.AssertionFile != "" { // client_id in the form, the assertion added by tokenClient
		ep.AuthStyle = oauth2.AuthStyleInParams
	}
	return &oauth2.Config{
		ClientID: o.cfg.ClientID, ClientSecret: o.cfg.ClientSecret,
		Endpoint: ep, RedirectURL: redirectURI, Scopes: o.cfg.Scopes,
	}
}

// AuthCodeURL is the upstream authorization request: code flow, the provider's scopes and extra
// parameters, state, nonce and the S256 challenge of verifier.
func (o *OIDC) AuthCodeURL(ctx context.Context, redirectURI, state, nonce, verifier string) (string, error) {
	p, err := o.Discover(ctx)
	if err != nil {
		return "", err
	}
	opts := make([]oauth2.AuthCodeOption, 0, len(o.cfg.AuthorizeParameters)+2)
	for k, v := range o.cfg.AuthorizeParameters {
		opts = append(opts, oauth2.SetAuthURLParam(k, v))
	}
	// Ours last: SetAuthURLParam replaces, so nothing from the spec can override them.
	opts = append(opts, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier))
	return o.oauth2Config(p, redirectURI).AuthCodeURL(state, opts...), nil
}

// Exchange redeems the upstream's code, verifies its ID token (signature, issuer, audience,
// expiry, nonce), adds the userinfo endpoint's claims the ID token lacks, and maps them.
func (o *OIDC) Exchange(ctx context.Context, redirectURI, code, verifier, nonce string) (Identity, error) {
	p, err := o.Discover(ctx)
	if err != nil {
		return Identity{}, err
	}
	ctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, o.tokenClient(p.Endpoint().TokenURL)), httpTimeout)
	defer cancel()
	tok, err := o.oauth2Config(p, redirectURI).Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		return Identity{}, tokenEndpointError(err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return Identity{}, fmt.Errorf("%w: the token response has no id_token", ErrIDToken)
	}
	idt, err := p.VerifierContext(ctx, &oidc.Config{ClientID: o.cfg.ClientID, Now: o.now}).Verify(ctx, raw)
	if err != nil {
		return Identity{}, fmt.Errorf("%w: %w", ErrIDToken, err)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		return Identity{}, fmt.Errorf("%w: nonce does not match", ErrIDToken)
	}
	claims := map[string]any{}
	if err := idt.Claims(&claims); err != nil {
		return Identity{}, fmt.Errorf("%w: claims: %w", ErrIDToken, err)
	}
	if p.UserInfoEndpoint() != "" {
		if ui, err := p.UserInfo(ctx, oauth2.StaticTokenSource(tok)); err == nil && ui.Subject == idt.Subject {
			extra := map[string]any{}
			if ui.Claims(&extra) == nil {
				for k, v := range extra {
					if _, ok := claims[k]; !ok {
						claims[k] = v
					}
				}
			}
		}
	}
	id, err := o.mapper.Map(o.cfg.Name, o.cfg.UID, claims)
	if err != nil {
		return Identity{}, err
	}
	id.Token = tok
	return id, nil
}

// tokenEndpointError classifies a failed token request: Latchkey's credentials unreadable or
// refused (ErrClientCredentials), else ErrUnavailable. It never holds the upstream's body.
func tokenEndpointError(err error) error {
	var re *oauth2.RetrieveError
	switch {
	case errors.Is(err, ErrClientCredentials):
		return err
	case errors.As(err, &re) && re.ErrorCode == "invalid_client":
		return fmt.Errorf("%w: token endpoint answered invalid_client", ErrClientCredentials)
	case re != nil && re.ErrorCode != "":
		return fmt.Errorf("%w: token endpoint answered %s", ErrUnavailable, re.ErrorCode)
	case re != nil && re.Response != nil: // never the body: it is the upstream's, whatever it holds
		return fmt.Errorf("%w: token endpoint answered HTTP %d", ErrUnavailable, re.Response.StatusCode)
	}
	return fmt.Errorf("%w: token endpoint: %w", ErrUnavailable, err)
}

// Set keeps one OIDC per provider value, built again when the provider's UID, generation or
// client secret or token file changes. It is safe for concurrent use.
type Set struct {
	now func() time.Time
	mu  sync.Mutex
	m   map[string]*OIDC
}

// NewSet returns an empty set; now is the clock of ID token expiry (nil: time.Now).
func NewSet(now func() time.Time) *Set { return &Set{now: now, m: map[string]*OIDC{}} }

// Get returns the OIDC of the provider value u.
func (s *Set) Get(u *registry.UpstreamOIDC) (*OIDC, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if o, ok := s.m[u.Name]; ok && o.cfg.UID == u.UID && o.cfg.Generation == u.Generation && o.cfg.ClientSecret == u.ClientSecret && o.cfg.AssertionFile == u.AssertionFile {
		return o, nil
	}
	o, err := NewOIDC(u, s.now)
	if err != nil {
		return nil, err
	}
	s.m[u.Name] = o
	return o, nil
}

// Providers is the login flow's side of the upstream OIDC providers (the browser flow's
// IdentityProviders): one OIDC per provider value, and the identities they sign in.
type Providers struct {
	set    *Set
	github GitHubSet
	ids    *Identities
}

// NewProviders returns the providers' login side, remembering identities in ids.
func NewProviders(ids *Identities, now func() time.Time) *Providers {
	return &Providers{set: NewSet(now), ids: ids}
}

// Start returns the upstream authorization request's URL.
func (p *Providers) Start(ctx context.Context, u *registry.UpstreamOIDC, redirectURI, state, nonce, verifier string) (string, error) {
	o, err := p.set.Get(u)
	if err != nil {
		return "", err
	}
	return o.AuthCodeURL(ctx, redirectURI, state, nonce, verifier)
}

// Finish redeems the upstream's code, maps the user and remembers them for the token endpoints.
func (p *Providers) Finish(ctx context.Context, u *registry.UpstreamOIDC, redirectURI, code, verifier, nonce string) (*registry.User, error) {
	o, err := p.set.Get(u)
	if err != nil {
		return nil, err
	}
	id, err := o.Exchange(ctx, redirectURI, code, verifier, nonce)
	if err != nil {
		return nil, err
	}
	return p.ids.Remember(ctx, id)
}
