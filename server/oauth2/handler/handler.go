package handler

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/latchkey-dev/latchkey/server/dpop"
	"github.com/latchkey-dev/latchkey/server/keys"
	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/oauth2/bearer"
	"github.com/latchkey-dev/latchkey/server/oauth2/browser"
	"github.com/latchkey-dev/latchkey/server/oauth2/grants"
	"github.com/latchkey-dev/latchkey/server/oauth2/register"
	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/store"
	"github.com/latchkey-dev/latchkey/server/token"
	"github.com/latchkey-dev/latchkey/server/userauth"
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
	// Registrar enables dynamic client registration (RFC 7591, RFC 7592) at
	// oauth2.RegistrationPath; nil disables it: the endpoint answers 404 and the metadata
	// omits it.
	Registrar register.ClientRegistrar
	// RegistrationInitialTokens are the initial access tokens (register.ParseInitialTokens)
	// that authorize a registration, each with its policy.
	RegistrationInitialTokens []register.InitialToken
	// RegistrationOpen also accepts registrations without an initial access token; a Registrar
	// needs RegistrationInitialTokens, RegistrationOpen or both.
	RegistrationOpen bool
	// RegistrationPolicy bounds what registrations may get, and how often per client address
	// (register.Policy); its rate limits count in Store, so they need one.
	RegistrationPolicy register.Policy
	// Store is the leased store (codes, refresh tokens, revocations, sessions, failed-login
	// counters). nil serves client_credentials only: the grants and endpoints that need it are
	// not mounted.
	Store store.Store
	// AccessTokenCacheSize is how many verified access tokens introspection, userinfo and
	// revocation keep (token.CachedVerifier: until exp, while their key is published;
	// revocation is still checked on every call) so that a token presented again costs no
	// signature verification. Zero means token.DefaultCacheSize, negative keeps none; it needs
	// a Store (the endpoints do).
	AccessTokenCacheSize int
	// RefreshTokenLifetime applies to clients without their own; zero means 30 days.
	RefreshTokenLifetime time.Duration
	// RefreshReuseGrace is how long after a rotation the old refresh token, presented again
	// by its client, gets the successor again without revoking its family (a retry); zero
	// means 2 s.
	RefreshReuseGrace time.Duration
	// IDTokenLifetime applies to clients without their own; zero means one hour.
	IDTokenLifetime time.Duration
	// Login configures user authentication (the login page and the password grant) and the
	// browser flow's lifetimes.
	Login LoginConfig
	// Metrics records issued tokens, errors, client authentication failures and request
	// latencies; nil records nothing.
	Metrics oauth2.Metrics
	// Audit records security-relevant events (tokens issued, refresh reuse, revocations,
	// logins, consent, registrations); nil records nothing.
	Audit oauth2.Auditor
	// AccessLog records one line per request (server/accesslog); nil records none.
	AccessLog oauth2.AccessLogger
	// ClientEvents is told of refresh token reuse, code replay and failed client
	// authentications; nil reports nothing.
	ClientEvents oauth2.ClientEvents
	// ClientAssertions verifies the client assertions of the clients that authenticate with
	// one (service_account_token, private_key_jwt); nil: those clients cannot authenticate.
	ClientAssertions oauth2.AssertionVerifier
	// WorkloadTokens verifies ServiceAccount and WorkloadIssuer JWTs presented as the subject
	// or actor tokens of a token exchange (RFC 8693; *workload.Verifier, usually the
	// ClientAssertions one); nil refuses them.
	WorkloadTokens grants.WorkloadTokens
	// CredentialUses hears which credential authenticated a client (the status of its
	// credentials); nil: nobody.
	CredentialUses oauth2.CredentialUses
	// ClientBruteForce is the brute-force policy of client authentication; zero fields take
	// oauth2.DefaultClientBruteForce's. It needs a Store.
	ClientBruteForce oauth2.BruteForcePolicy
	// Device configures the device authorization grant (RFC 8628): its code lifetime, poll
	// interval and the verification page's limits on wrong user codes. It needs a Store.
	Device DeviceConfig
	// ClientRateLimit applies to the token requests of clients without a rateLimit of their
	// own; a zero PerMinute is none. Rate limits need a Store.
	ClientRateLimit registry.RateLimit
	// BackchannelLogout says the server sends OpenID Connect Back-Channel Logout tokens
	// (server/backchannel runs on every replica): with a Store, discovery advertises
	// backchannel_logout_supported and backchannel_logout_session_supported.
	BackchannelLogout bool
	// SessionEnd hears of every OP session that ends (RP-initiated logout, the account page),
	// with the clients that took part, for back-channel logout; nil: nobody.
	SessionEnd browser.SessionEndNotifier
	// RequirePushedAuthorizationRequests refuses every authorization request that does not
	// come through the pushed authorization request endpoint (RFC 9126 5); discovery says so.
	RequirePushedAuthorizationRequests bool
	// DPoP configures proof-of-possession tokens (RFC 9449). It needs a Store (each proof's
	// jti is used up there); without one no proof is accepted.
	DPoP DPoPConfig
	// Upstream configures the sign-in through upstream identity providers: the refresh
	// re-check interval and the key of the upstream tokens kept for it.
	Upstream UpstreamConfig
}

// DPoPConfig configures DPoP (server/dpop).
type DPoPConfig struct {
	// ProofWindow is how far a proof's iat may be from now, either way (dpop.DefaultWindow).
	ProofWindow time.Duration
	// NonceKey, when set (dpop.NonceKey derives it from a secret every replica shares), makes
	// the server issue nonces in a DPoP-Nonce header and accept proofs carrying them.
	NonceKey []byte
	// NoncePeriod is how often the nonce changes (dpop.DefaultNoncePeriod).
	NoncePeriod time.Duration
	// RequireNonce refuses proofs without a current nonce (use_dpop_nonce); it needs a NonceKey.
	RequireNonce bool
}

// DeviceConfig configures the device authorization grant; zero fields take the defaults of
// grants.DeviceConfig and browser.DeviceVerification.
type DeviceConfig struct {
	// CodeLifetime is how long a device code and its user code last (10 minutes).
	CodeLifetime time.Duration
	// Interval is the poll interval clients are told (5 s).
	Interval time.Duration
	// Verification limits wrong user codes on the verification page, per client address and
	// across all addresses (RFC 8628 5.1).
	Verification browser.DeviceVerification
}

// LoginConfig configures user authentication, one policy for the login page and the password
// grant (server/userauth), and the browser flow. Zero fields take the defaults of userauth and
// browser.
type LoginConfig struct {
	// MaxFailuresPerUser failures for one username from one client address (known user or
	// not) lock that username at that address, with a back-off (userauth.Config); from other
	// addresses the username is only slowed down, never locked.
	MaxFailuresPerUser int
	// MaxFailuresPerAddress failed logins from one client address, any usernames, lock the
	// address alike.
	MaxFailuresPerAddress int
	// FailureWindow is how long failures are remembered after the last one and its lock, and
	// the longest lock.
	FailureWindow time.Duration
	// FailureDelay is added to every failed or locked login attempt; negative means none.
	FailureDelay time.Duration
	// SessionLifetime is how long a login session lasts (not extended by use).
	SessionLifetime time.Duration
	// ConsentLifetime is how long a remembered consent lasts.
	ConsentLifetime time.Duration
	// RequestLifetime is how long a pending authorization request waits for the login and
	// consent pages.
	RequestLifetime time.Duration
	// ClientIPHeader names a header that a trusted reverse proxy sets to the client address,
	// e.g. X-Forwarded-For or X-Real-IP; its last value is used. Empty uses the address of the
	// connection. Set it only behind a proxy that overwrites or appends to the header.
	ClientIPHeader string
}

// New checks the config and returns the handler of every endpoint the config enables.
func New(cfg Config) (http.Handler, error) {
	cfg, lifetimes, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	issuer, err := token.NewIssuer(token.Config{
		Issuer: cfg.Issuer, DefaultAlgorithm: cfg.DefaultAlgorithm,
		AccessTokenLifetime: cfg.AccessTokenLifetime, Keys: cfg.Keys, Now: cfg.Now,
	})
	if err != nil {
		return nil, fmt.Errorf("handler: %w", err)
	}
	mux := oauth2.NewMux()
	mux.AllowOrigins(func(origin string) bool { return cfg.Registry.Snapshot().AllowsOrigin(origin) })
	var guard *oauth2.Guard
	if cfg.Store != nil {
		guard = oauth2.NewGuard(cfg.Store, "client", cfg.ClientBruteForce)
	}
	clientAuth := oauth2.NewClientAuth(oauth2.ClientAuthConfig{Guard: guard, Events: cfg.ClientEvents, Assertions: cfg.ClientAssertions, Uses: cfg.CredentialUses, Now: cfg.Now})
	proofs, err := dpopVerifier(cfg)
	if err != nil {
		return nil, err
	}
	all := []grants.Grant{grants.NewClientCredentials(issuer)}
	limits := grants.RateLimits{Default: cfg.ClientRateLimit}
	if cfg.Store != nil {
		limits.Buckets = cfg.Store
	}
	if st := cfg.Store; st != nil {
		auth, err := userauth.New(userauth.Config{
			MaxFailuresPerUser: cfg.Login.MaxFailuresPerUser, MaxFailuresPerAddress: cfg.Login.MaxFailuresPerAddress,
			FailureWindow: cfg.Login.FailureWindow, FailureDelay: cfg.Login.FailureDelay,
		}, st)
		if err != nil {
			return nil, err
		}
		upstreams, ldapLogin, recheck := upstreamLogin(cfg, st, lifetimes)
		tokens := grants.NewTokenSet(issuer, st, lifetimes, cfg.Now)
		refresh := grants.NewRefreshToken(st, tokens, cfg.RefreshReuseGrace, cfg.ClientEvents)
		if recheck != nil {
			refresh = refresh.WithUpstreamRecheck(recheck, st)
		}
		all = append(all,
			grants.NewPassword(auth, tokens, cfg.Now),
			refresh,
			grants.NewAuthorizationCode(st, tokens, lifetimes, cfg.Now, cfg.ClientEvents),
			grants.NewDeviceCode(st, tokens))
		par := browser.PushedRequests{ClientAuth: clientAuth, Limits: limits, Require: cfg.RequirePushedAuthorizationRequests,
			URI: cfg.Issuer + oauth2.PushedAuthorizationRequestPath}
		if proofs != nil {
			par.DPoP = proofs
		}
		flow, err := browser.New(browser.Config{
			Issuer: cfg.Issuer, Registry: cfg.Registry, Store: st, Auth: auth, Now: cfg.Now,
			MaxBodyBytes: cfg.MaxBodyBytes, Lifetimes: lifetimes, SessionLifetime: cfg.Login.SessionLifetime,
			ConsentLifetime: cfg.Login.ConsentLifetime, RequestLifetime: cfg.Login.RequestLifetime,
			Hints: token.NewVerifier(cfg.Issuer, cfg.Keys, cfg.Now), SessionEnd: cfg.SessionEnd,
			Device:    cfg.Device.Verification,
			PAR:       par,
			Upstreams: upstreamsOrNil(upstreams), GitHub: githubOrNil(upstreams),
			LDAP: ldapLogin,
		})
		if err != nil {
			return nil, err
		}
		flow.Mount(mux)
		verifier, err := accessTokenVerifier(cfg)
		if err != nil {
			return nil, err
		}
		exchangeMetrics, _ := cfg.Metrics.(grants.ExchangeMetrics) // *metrics.Metrics is one
		all = append(all, grants.NewTokenExchange(grants.TokenExchangeConfig{
			Issuer: cfg.Issuer, Signer: issuer, AccessTokens: verifier, IDTokens: token.NewVerifier(cfg.Issuer, cfg.Keys, cfg.Now),
			Revocations: st, Workloads: cfg.WorkloadTokens, Metrics: exchangeMetrics, Now: cfg.Now,
		}))
		bc := bearer.Config{
			Registry: cfg.Registry, ClientAuth: clientAuth, Store: st, Verifier: verifier,
			Lifetimes: lifetimes, Now: cfg.Now, MaxBodyBytes: cfg.MaxBodyBytes,
			UserinfoURI: cfg.Issuer + oauth2.UserinfoPath,
		}
		if proofs != nil {
			bc.DPoP = proofs
		}
		bearer.New(bc).Mount(mux)
	}
	endpoint := grants.NewEndpoint(cfg.Registry, clientAuth, limits, cfg.MaxBodyBytes, all...)
	if proofs != nil {
		endpoint.WithDPoP(grants.DPoP{
			Verifier: proofs, TokenURI: cfg.Issuer + oauth2.TokenPath, RequireNonce: cfg.DPoP.RequireNonce,
		})
	}
	endpoint.Mount(mux)
	if cfg.Store != nil {
		grants.NewDeviceAuthorization(cfg.Registry, clientAuth, limits, cfg.Store, grants.DeviceConfig{
			Issuer: cfg.Issuer, CodeLifetime: cfg.Device.CodeLifetime, Interval: cfg.Device.Interval,
		}, cfg.MaxBodyBytes, cfg.Now).Mount(mux)
	}
	if cfg.Registrar != nil {
		reg, err := register.New(register.Config{
			Registrar: cfg.Registrar, Registry: cfg.Registry, Issuer: cfg.Issuer,
			InitialTokens: cfg.RegistrationInitialTokens, Open: cfg.RegistrationOpen, MaxBodyBytes: cfg.MaxBodyBytes,
			Policy: cfg.RegistrationPolicy, Counters: cfg.Store, Throttles: cfg.Store, Now: cfg.Now,
		})
		if err != nil {
			return nil, err
		}
		reg.Mount(mux)
	}
	d := newDiscovery(cfg.Issuer, cfg.Registry, cfg.Keys, endpoint.GrantTypes(), assertionMethods(cfg), mux)
	d.backchannelLogout = cfg.BackchannelLogout && cfg.Store != nil
	d.requirePAR = cfg.RequirePushedAuthorizationRequests
	d.dpop = proofs != nil
	d.Mount(mux)
	in := oauth2.Instrumentation{Metrics: cfg.Metrics, Auditor: cfg.Audit, AccessLog: cfg.AccessLog, ClientIPHeader: cfg.Login.ClientIPHeader}
	return withHSTS(cfg.Issuer, in.Wrap(oauth2.RecoverPanics(mux.Handler()))), nil
}

// withDefaults fills in defaults and checks the config.
func (cfg Config) withDefaults() (Config, oauth2.Lifetimes, error) {
	if cfg.Registry == nil || cfg.Keys == nil {
		return cfg, oauth2.Lifetimes{}, errors.New("handler: Registry and Keys are required")
	}
	u, err := url.Parse(cfg.Issuer)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" ||
		u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return cfg, oauth2.Lifetimes{}, fmt.Errorf("handler: issuer %q must be an http(s) URL without query or fragment", cfg.Issuer)
	}
	if cfg.DefaultAlgorithm == "" {
		cfg.DefaultAlgorithm = keys.RS256
	}
	if cfg.MaxBodyBytes < 0 {
		return cfg, oauth2.Lifetimes{}, errors.New("handler: MaxBodyBytes must not be negative")
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.Registrar == nil && (len(cfg.RegistrationInitialTokens) > 0 || cfg.RegistrationOpen) {
		return cfg, oauth2.Lifetimes{}, errors.New("handler: RegistrationInitialTokens and RegistrationOpen need a Registrar")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ClientEvents == nil {
		cfg.ClientEvents = oauth2.NoClientEvents{}
	}
	if cfg.ClientBruteForce, err = cfg.ClientBruteForce.WithDefaults(oauth2.DefaultClientBruteForce()); err != nil {
		return cfg, oauth2.Lifetimes{}, err
	}
	if cfg.ClientRateLimit.PerMinute < 0 || cfg.ClientRateLimit.Burst < 0 {
		return cfg, oauth2.Lifetimes{}, errors.New("handler: the client rate limit must not be negative")
	}
	if cfg.ClientRateLimit.PerMinute > 0 {
		cfg.ClientRateLimit = cfg.ClientRateLimit.WithDefaultBurst()
	}
	if cfg.Device.CodeLifetime < 0 || cfg.Device.Interval < 0 {
		return cfg, oauth2.Lifetimes{}, errors.New("handler: the device code lifetime and interval must not be negative")
	}
	if cfg.RefreshReuseGrace < 0 {
		return cfg, oauth2.Lifetimes{}, errors.New("handler: the refresh reuse grace must not be negative")
	}
	if cfg.RefreshReuseGrace == 0 {
		cfg.RefreshReuseGrace = grants.DefaultRefreshReuseGrace
	}
	lifetimes, err := oauth2.Lifetimes{
		AccessToken: cfg.AccessTokenLifetime, RefreshToken: cfg.RefreshTokenLifetime, IDToken: cfg.IDTokenLifetime,
	}.WithDefaults()
	if err != nil {
		return cfg, lifetimes, err
	}
	return cfg, lifetimes, nil
}

// accessTokenVerifier verifies the access tokens presented to the bearer endpoints: with a
// cache of cfg.AccessTokenCacheSize verified tokens, or none.
func accessTokenVerifier(cfg Config) (bearer.Verifier, error) {
	v := token.NewVerifier(cfg.Issuer, cfg.Keys, cfg.Now)
	if cfg.AccessTokenCacheSize < 0 {
		return v, nil
	}
	cacheMetrics, _ := cfg.Metrics.(token.CacheMetrics) // *metrics.Metrics is one
	cached, err := token.NewCachedVerifier(v, cmp.Or(cfg.AccessTokenCacheSize, token.DefaultCacheSize), cacheMetrics)
	if err != nil {
		return nil, fmt.Errorf("handler: %w", err)
	}
	return cached, nil
}

// dpopVerifier returns the DPoP proof verifier of the config: nil without a Store (a jti must
// be used up across replicas).
func dpopVerifier(cfg Config) (*dpop.Verifier, error) {
	if cfg.DPoP.RequireNonce && len(cfg.DPoP.NonceKey) == 0 {
		return nil, errors.New("handler: DPoP RequireNonce needs a NonceKey")
	}
	if cfg.Store == nil {
		return nil, nil
	}
	var nonces *dpop.Nonces
	if len(cfg.DPoP.NonceKey) > 0 {
		var err error
		if nonces, err = dpop.NewNonces(cfg.DPoP.NonceKey, cfg.DPoP.NoncePeriod); err != nil {
			return nil, fmt.Errorf("handler: %w", err)
		}
	}
	return dpop.NewVerifier(dpop.Config{Replay: cfg.Store, Window: cfg.DPoP.ProofWindow, Nonces: nonces, Now: cfg.Now})
}

// assertionMethods are the client assertion methods the configuration verifies: none without a
// verifier; private_key_jwt only with a store, where each assertion's jti is used up.
func assertionMethods(cfg Config) []string {
	if cfg.ClientAssertions == nil {
		return nil
	}
	if cfg.Store == nil {
		return []string{oauth2.AuthMethodServiceAccountToken}
	}
	return []string{oauth2.AuthMethodServiceAccountToken, oauth2.AuthMethodPrivateKeyJWT}
}
