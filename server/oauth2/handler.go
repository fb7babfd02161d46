package oauth2

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"runtime"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-logr/logr"

	"github.com/latchkey-dev/latchkey/server/keys"
	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/store"
	"github.com/latchkey-dev/latchkey/server/token"
)

// DefaultMaxBodyBytes bounds a request body when Config.MaxBodyBytes is zero.
const DefaultMaxBodyBytes = 64 << 10

// Registry gives the current registry snapshot; *registry.Registry implements it.
type Registry interface {
	Snapshot() *registry.Snapshot
}

// Keyring signs with and publishes the signing keys; *keys.Keyring implements it.
type Keyring interface {
	Signer(alg string) (*keys.Signer, error)
	JWKS() []byte
	Algorithms() []string
	// PublicKeys verifies the tokens this server signed (userinfo, introspection, revocation).
	PublicKeys() jose.JSONWebKeySet
}

var (
	_ Registry = (*registry.Registry)(nil)
	_ Keyring  = (*keys.Keyring)(nil)
)

// Config configures the OAuth 2.0 handler.
type Config struct {
	// Issuer is the public URL of the server, e.g. http://127.0.0.1:8080: the iss claim and
	// the base of the endpoint URLs in the metadata.
	Issuer string
	// DefaultAlgorithm signs tokens of clients without a SigningAlgorithm: "RS256" (when empty),
	// "ES256" or "EdDSA".
	DefaultAlgorithm string
	// AccessTokenLifetime applies to clients without their own; zero means one hour.
	AccessTokenLifetime time.Duration
	Registry            Registry
	Keys                Keyring
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// MaxBodyBytes bounds request bodies; zero means 64 KiB.
	MaxBodyBytes int64
	// Registrar enables dynamic client registration (RFC 7591, RFC 7592) at RegistrationPath;
	// nil disables it: the endpoint answers 404 and the metadata omits it.
	Registrar ClientRegistrar
	// RegistrationInitialTokens are the hashes (HashInitialToken, ParseInitialTokens) of the
	// initial access tokens that authorize a registration (RFC 7591 3).
	RegistrationInitialTokens []InitialTokenHash
	// RegistrationOpen also accepts registrations without an initial access token. Such
	// anonymous registrations cannot request client_credentials. Off by default; a Registrar
	// needs RegistrationInitialTokens, RegistrationOpen or both.
	RegistrationOpen bool
	// Store is the leased store (refresh tokens, revocations, failed-login counters). nil
	// serves client_credentials only: the grants and endpoints that need it are not mounted.
	Store store.Store
	// RefreshTokenLifetime applies to clients without their own; zero means 30 days.
	RefreshTokenLifetime time.Duration
	// RefreshReuseGrace is how long after a rotation the old refresh token is answered
	// invalid_grant without revoking its family (a concurrent retry); zero means 2 s.
	RefreshReuseGrace time.Duration
	// IDTokenLifetime applies to clients without their own; zero means one hour.
	IDTokenLifetime time.Duration
	// Login configures the login and consent pages of the authorization endpoint, which is
	// mounted when Store is set: failed-login limits, session, consent and request lifetimes.
	Login LoginConfig
	// Metrics records issued tokens, errors, client authentication failures and request
	// latencies; nil records nothing.
	Metrics Metrics
	// Audit records security-relevant events (tokens issued, refresh reuse, revocations,
	// logins, consent, registrations); nil records nothing.
	Audit Auditor
	// ReuseReporter is told of refresh token reuse; nil reports nothing.
	ReuseReporter ReuseReporter
}

// Paths of the endpoints.
const (
	TokenPath               = "/oauth2/token"
	OpenIDConfigurationPath = "/.well-known/openid-configuration"
	AuthorizationServerPath = "/.well-known/oauth-authorization-server"
	JWKSPath                = "/.well-known/jwks.json"
)

// Response headers. Key rotation must publish a key longer than jwksCacheControl's max-age
// before it signs with it.
const (
	contentTypeJSON       = "application/json;charset=UTF-8"
	discoveryCacheControl = "public, max-age=300"
	jwksCacheControl      = "public, max-age=300"
	allowPost             = "POST"
	allowGetHead          = "GET, HEAD"
)

// tokenPathAliases are the token endpoint paths of the seed documents.
func tokenPathAliases() []string { return []string{TokenPath, "/token", "/oauth/token"} }

// NewHandler checks the config and returns the handler of the token and discovery endpoints.
func NewHandler(cfg Config) (http.Handler, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	issuer, err := token.NewIssuer(token.Config{
		Issuer: cfg.Issuer, DefaultAlgorithm: cfg.DefaultAlgorithm,
		AccessTokenLifetime: cfg.AccessTokenLifetime, Keys: cfg.Keys, Now: cfg.Now,
	})
	if err != nil {
		return nil, fmt.Errorf("oauth2: %w", err)
	}
	tokens := newTokenService(cfg, issuer)
	grants := []Grant{clientCredentialsGrant{tokens: issuer}}
	if cfg.Store != nil {
		grants = append(grants, newPasswordGrant(tokens, runtime.GOMAXPROCS(0)), refreshTokenGrant{tokens: tokens})
		grants = append(grants, authorizationCodeGrant{tokens: tokens})
	}
	te := &tokenEndpoint{registry: cfg.Registry, grants: map[string]Grant{}, maxBody: cfg.MaxBodyBytes}
	for _, g := range grants {
		te.grants[g.Type()] = g
	}
	d := &discovery{
		base: strings.TrimSuffix(cfg.Issuer, "/"), issuer: cfg.Issuer,
		registry: cfg.Registry, keys: cfg.Keys, grantTypes: grantTypes(grants),
	}

	mux := routes(te, d)
	if cfg.Store != nil {
		az, err := newAuthorizer(cfg)
		if err != nil {
			return nil, err
		}
		az.register(mux)
		d.authorizationEndpoint = d.base + AuthorizePath
	}
	if cfg.Store != nil {
		newTokenEndpoints(cfg, tokens).mount(mux)
		d.tokenEndpoints = true
	}
	if cfg.Registrar != nil {
		newRegistrationEndpoint(cfg).mount(mux)
		d.registrationEndpoint = d.base + RegistrationPath
	}
	return instrumentMetrics(cfg.Metrics, instrumentAudit(cfg.Audit, recoverPanics(cleanPathsOnly(mux)))), nil
}

// routes maps the endpoints; every other method or path gets a JSON error.
func routes(token http.Handler, d *discovery) *http.ServeMux {
	mux := http.NewServeMux()
	for _, p := range tokenPathAliases() {
		mux.Handle("POST "+p, token)
		mux.Handle(p, methodNotAllowed(allowPost))
	}
	for p, h := range map[string]http.HandlerFunc{
		OpenIDConfigurationPath: d.serveOpenIDConfiguration,
		AuthorizationServerPath: d.serveAuthorizationServer,
		JWKSPath:                d.serveJWKS,
	} {
		mux.Handle("GET "+p, h) // GET patterns match HEAD too
		mux.Handle(p, methodNotAllowed(allowGetHead))
	}
	mux.HandleFunc("/", notFound)
	return mux
}

// withDefaults fills in defaults and checks the config.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.Registry == nil || cfg.Keys == nil {
		return cfg, errors.New("oauth2: Registry and Keys are required")
	}
	u, err := url.Parse(cfg.Issuer)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" ||
		u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return cfg, fmt.Errorf("oauth2: issuer %q must be an http(s) URL without query or fragment", cfg.Issuer)
	}
	if cfg.DefaultAlgorithm == "" {
		cfg.DefaultAlgorithm = keys.RS256
	}
	if cfg.MaxBodyBytes < 0 {
		return cfg, errors.New("oauth2: MaxBodyBytes must not be negative")
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if err := cfg.checkRegistration(); err != nil {
		return cfg, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Metrics == nil {
		cfg.Metrics = noMetrics{}
	}
	if cfg.ReuseReporter == nil {
		cfg.ReuseReporter = noReuseReporter{}
	}
	if cfg.RefreshTokenLifetime < 0 || cfg.RefreshReuseGrace < 0 || cfg.IDTokenLifetime < 0 {
		return cfg, errors.New("oauth2: token lifetimes and the reuse grace must not be negative")
	}
	if cfg.RefreshTokenLifetime == 0 {
		cfg.RefreshTokenLifetime = DefaultRefreshTokenLifetime
	}
	if cfg.RefreshReuseGrace == 0 {
		cfg.RefreshReuseGrace = DefaultRefreshReuseGrace
	}
	if cfg.IDTokenLifetime == 0 {
		cfg.IDTokenLifetime = DefaultIDTokenLifetime
	}
	return cfg, nil
}

func grantTypes(grants []Grant) []string {
	out := make([]string, 0, len(grants))
	for _, g := range grants {
		out = append(out, g.Type())
	}
	slices.Sort(out)
	return out
}

// methodNotAllowed answers 405 with a JSON error and the Allow header.
func methodNotAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeError(w, r, ErrInvalidRequest.WithStatus(http.StatusMethodNotAllowed).
			WithDescription(fmt.Sprintf("The endpoint accepts %s only.", allow)))
	}
}

// notFound answers 404 with a JSON error.
func notFound(w http.ResponseWriter, r *http.Request) {
	writeError(w, r, ErrInvalidRequest.WithStatus(http.StatusNotFound).WithDescription("No endpoint at this path."))
}

// cleanPathsOnly answers 404 for paths the mux would redirect (with an HTML body) to a
// cleaned path, such as //token or /a/../token.
func cleanPathsOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if p == "" || p[0] != '/' || path.Clean(p) != p {
			notFound(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// recoverPanics turns a panic into server_error. There should be none; this is the backstop
// that keeps the client from getting a dropped connection or HTML.
func recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler { //nolint:errorlint // the sentinel itself is the panic value
				panic(v)
			}
			logr.FromContextOrDiscard(r.Context()).Error(fmt.Errorf("panic: %v", v), "handler panicked", "path", r.URL.Path)
			writeError(w, r, ErrServerError)
		}()
		next.ServeHTTP(w, r)
	})
}
