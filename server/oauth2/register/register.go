package register

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"

	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/store"
)

// ClientMetadata is the RFC 7591 client metadata of a registered client, validated and with
// the defaults applied. response_types is not stored: it is [code] exactly when GrantTypes
// has authorization_code.
type ClientMetadata struct {
	// RedirectURIs are matched exactly.
	RedirectURIs []string
	// PostLogoutRedirectURIs are where RP-initiated logout may send the browser
	// (post_logout_redirect_uris, OpenID Connect RP-Initiated Logout 1.0 3.1), checked as
	// redirect URIs are.
	PostLogoutRedirectURIs []string
	// TokenEndpointAuthMethod is client_secret_basic, client_secret_post or none (a public
	// client, which has no secret).
	TokenEndpointAuthMethod string
	// GrantTypes are some of authorization_code, refresh_token, client_credentials,
	// urn:ietf:params:oauth:grant-type:device_code and
	// urn:ietf:params:oauth:grant-type:token-exchange (confidential clients only).
	GrantTypes []string
	// ClientName is shown on the consent page.
	ClientName string
	// Scopes the client may request.
	Scopes []string
	// BackchannelLogoutURI receives logout tokens (OIDC Back-Channel Logout 2.2, https only
	// when registered dynamically); BackchannelLogoutSessionRequired asks for sid in them.
	BackchannelLogoutURI             string
	BackchannelLogoutSessionRequired bool
	// RequirePushedAuthorizationRequests: the client's authorization requests must be pushed
	// (RFC 9126 6).
	RequirePushedAuthorizationRequests bool
}

// Public reports whether the client authenticates without a secret.
func (m *ClientMetadata) Public() bool { return m.TokenEndpointAuthMethod == oauth2.AuthMethodNone }

// RegisteredClient is what a ClientRegistrar returns about a client.
type RegisteredClient struct {
	ClientID string
	// IssuedAt is when the client ID was issued.
	IssuedAt time.Time
	// ClientSecret is set by Register for a confidential client, and only there: it is handed
	// out once, then only its hash (or the Secret resource) is kept.
	ClientSecret string
	// RegistrationAccessToken is set by Register only; afterwards only its SHA-256 is kept.
	RegistrationAccessToken string
	Metadata                ClientMetadata
}

// String shows no secret.
func (c RegisteredClient) String() string {
	return fmt.Sprintf("RegisteredClient{client_id=%q grant_types=%q}", c.ClientID, c.Metadata.GrantTypes)
}

// GoString is String, for %#v.
func (c RegisteredClient) GoString() string { return c.String() }

// Registrant says how a registration was authorized. Registrars bound each kind on its own
// (separate quotas), so anonymous registrations can never use up what initial access token
// holders may register. Its values are also the value of the Kubernetes registrar's label.
type Registrant string

// The registrants.
const (
	// RegistrantAnonymous: open registration, without an initial access token.
	RegistrantAnonymous Registrant = "anonymous"
	// RegistrantInitialToken: a registration with a valid initial access token.
	RegistrantInitialToken Registrant = "initial-token"
)

// ClientRegistrar creates and manages dynamically registered clients (RFC 7591, RFC 7592).
// The handler validates the metadata and authorizes every call before it makes it. A client
// that Register returned must be served by the Registry promptly (the memory registrar: at
// once; the Kubernetes one: when the informers see the OAuthClient).
type ClientRegistrar interface {
	// Register creates a client with a new client ID, a new registration access token and,
	// unless the metadata says public, a new client secret, and returns all three. by says who
	// registers: a registrar at its bound for that kind returns ErrRegistrationLimit.
	Register(ctx context.Context, m ClientMetadata, by Registrant) (RegisteredClient, error)
	// Get returns a registered client, without secret or token.
	Get(ctx context.Context, clientID string) (RegisteredClient, error)
	// Update replaces the metadata of a registered client; it returns the client as Get does.
	Update(ctx context.Context, clientID string, m ClientMetadata) (RegisteredClient, error)
	// Delete removes a registered client; it stops working.
	Delete(ctx context.Context, clientID string) error
	// CheckRegistrationToken compares, in constant time, the SHA-256 of token with the one
	// kept for the client: nil when they are equal, else ErrRegistrationTokenMismatch.
	CheckRegistrationToken(ctx context.Context, clientID, token string) error
	// Namespace is the namespace registered clients belong to: scopes limited to other
	// namespaces cannot be registered.
	Namespace() string
}

// Errors of a ClientRegistrar. Each may be wrapped. A registrar may also return an
// *oauth2.Error (ErrInvalidClientMetadata, ErrInvalidRedirectURI) to refuse metadata, answered
// as it is, and its context's error (context.Canceled, context.DeadlineExceeded) when the
// request ended. ErrRegistrarUnavailable and the context's errors are answered
// temporarily_unavailable (503), anything else server_error.
var (
	// ErrClientNotFound: no registered client has the client ID (clients that were not
	// registered dynamically are not found either).
	ErrClientNotFound = errors.New("register: registered client not found")
	// ErrRegistrationTokenMismatch: the registration access token is not the client's.
	ErrRegistrationTokenMismatch = errors.New("register: wrong registration access token")
	// ErrRegistrationLimit: the registrar holds as many clients of the registrant's kind as it
	// may.
	ErrRegistrationLimit = errors.New("register: registration limit reached")
	// ErrRegistrarUnavailable: the registrar's backend cannot answer now (in a cluster, the API
	// server throttles, is overloaded or timed out); a retry may work.
	ErrRegistrarUnavailable = errors.New("register: registrar temporarily unavailable")
)

// RFC 7591 3.2.2 errors.
var (
	ErrInvalidRedirectURI = oauth2.NewError("invalid_redirect_uri", http.StatusBadRequest,
		"The value of one or more redirection URIs is invalid.")
	ErrInvalidClientMetadata = oauth2.NewError("invalid_client_metadata", http.StatusBadRequest,
		"The value of one of the client metadata fields is invalid.")
)

// Registry gives the current registry snapshot; *registry.Registry implements it.
type Registry interface {
	Snapshot() *registry.Snapshot
}

var _ Registry = (*registry.Registry)(nil)

// Config configures the registration endpoint.
type Config struct {
	// Registrar stores the registered clients.
	Registrar ClientRegistrar
	Registry  Registry
	// Issuer is the server's public URL, the base of registration_client_uri.
	Issuer string
	// InitialTokens are the initial access tokens (ParseInitialTokens) that authorize a
	// registration (RFC 7591 3), each with its policy.
	InitialTokens []InitialToken
	// Open also accepts registrations without an initial access token. Such anonymous
	// registrations cannot request client_credentials. InitialTokens, Open or both are needed.
	Open bool
	// Policy bounds what registrations may get, and how often.
	Policy Policy
	// Counters count registrations per client address (the leased store); required when
	// Policy.RateLimit sets a limit.
	Counters store.Counters
	// Throttles count the failed presentations of initial access tokens and of registration
	// access tokens per client address (brute-force protection: an oauth2.Guard with
	// oauth2.DefaultClientBruteForce's policy); nil: presentations are not throttled.
	Throttles store.Throttles
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// MaxBodyBytes bounds request bodies.
	MaxBodyBytes int64
}

// Endpoint serves RFC 7591 registration and RFC 7592 client configuration.
type Endpoint struct {
	registrar ClientRegistrar
	registry  Registry
	base      string // the issuer without a trailing slash
	initial   []InitialToken
	open      bool
	allowed   []string // Policy.AllowedScopes with its default
	rate      RateLimit
	counters  store.Counters
	guard     *oauth2.Guard // nil: presentations of tokens are not throttled
	now       func() time.Time
	maxBody   int64
}

// New checks the config and returns the endpoint.
func New(cfg Config) (*Endpoint, error) {
	if cfg.Registrar == nil || cfg.Registry == nil {
		return nil, errors.New("register: Registrar and Registry are required")
	}
	if len(cfg.InitialTokens) == 0 && !cfg.Open {
		return nil, errors.New("register: a Registrar needs InitialTokens, Open, or both")
	}
	allowed := cfg.Policy.allowedScopes()
	for _, s := range allowed {
		if len(s) > regMaxScopeLen || !regScopeToken.MatchString(s) {
			return nil, fmt.Errorf("register: allowed scope %q is not a scope token (RFC 6749 3.3)", s)
		}
	}
	rate := cfg.Policy.RateLimit
	if rate.Anonymous < 0 || rate.InitialToken < 0 || rate.Window < 0 {
		return nil, errors.New("register: rate limits and their window must not be negative")
	}
	if (rate.Anonymous > 0 || rate.InitialToken > 0) && cfg.Counters == nil {
		return nil, errors.New("register: a rate limit needs Counters (the leased store)")
	}
	if rate.Window == 0 {
		rate.Window = DefaultRateLimitWindow
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	var guard *oauth2.Guard
	if cfg.Throttles != nil {
		guard = oauth2.NewGuard(cfg.Throttles, guardKind, oauth2.DefaultClientBruteForce())
	}
	return &Endpoint{
		registrar: cfg.Registrar, registry: cfg.Registry, base: strings.TrimSuffix(cfg.Issuer, "/"),
		initial: slices.Clone(cfg.InitialTokens), open: cfg.Open, allowed: allowed, maxBody: cfg.MaxBodyBytes,
		rate: rate, counters: cfg.Counters, guard: guard, now: cfg.Now,
	}, nil
}

// Mount adds the endpoints to the mux: POST /oauth2/register, and GET, PUT, DELETE
// /oauth2/register/{client_id}.
func (e *Endpoint) Mount(m *oauth2.Mux) {
	m.HandleFunc(oauth2.RegistrationPath, http.MethodPost, e.register)
	m.HandleFunc(oauth2.RegisteredClientPath, http.MethodGet, e.read) // GET answers HEAD too
	m.HandleFunc(oauth2.RegisteredClientPath, http.MethodPut, e.update)
	m.HandleFunc(oauth2.RegisteredClientPath, http.MethodDelete, e.remove)
}

// register is POST /oauth2/register (RFC 7591 3).
func (e *Endpoint) register(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	token, ok := e.authorizeRegistration(w, r)
	if !ok {
		return
	}
	anonymous, by := token == nil, RegistrantInitialToken
	if anonymous {
		by = RegistrantAnonymous
	}
	if err := e.checkRate(ctx, by); err != nil {
		e.fail(w, r, err)
		return
	}
	m, _, err := e.readMetadata(r)
	if err == nil {
		err = e.checkRegistrationPolicy(&m, token)
	}
	if err == nil {
		err = e.checkClientName(m.ClientName, "")
	}
	if err == nil {
		err = e.checkScopes(m.Scopes)
	}
	if err != nil {
		e.fail(w, r, err)
		return
	}
	rc, err := e.registrar.Register(ctx, m, by)
	if err == nil && (rc.ClientID == "" || rc.RegistrationAccessToken == "" || (!rc.Metadata.Public() && rc.ClientSecret == "")) {
		err = errors.New("registrar returned a client without its credentials")
	}
	if err != nil {
		e.fail(w, r, err)
		return
	}
	logr.FromContextOrDiscard(ctx).Info("client registered", "client_id", rc.ClientID, "anonymous", anonymous,
		"grant_types", rc.Metadata.GrantTypes)
	oauth2.Audit(ctx, oauth2.AuditEvent{Event: oauth2.AuditClientRegistered, ClientID: rc.ClientID, Scopes: rc.Metadata.Scopes})
	e.writeClient(w, r, http.StatusCreated, rc, rc.RegistrationAccessToken)
}

// read is GET /oauth2/register/{client_id} (RFC 7592 2.1).
func (e *Endpoint) read(w http.ResponseWriter, r *http.Request) {
	id, token, ok := e.authorizeClient(w, r)
	if !ok {
		return
	}
	rc, err := e.registrar.Get(r.Context(), id)
	if err != nil {
		e.fail(w, r, err)
		return
	}
	e.writeClient(w, r, http.StatusOK, rc, token)
}

// update is PUT /oauth2/register/{client_id} (RFC 7592 2.2): the body replaces the metadata;
// omitted members get their defaults again.
func (e *Endpoint) update(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id, token, ok := e.authorizeClient(w, r)
	if !ok {
		return
	}
	m, req, err := e.readMetadata(r)
	if err != nil {
		e.fail(w, r, err)
		return
	}
	if req.ClientID == "" {
		e.fail(w, r, metadataError("An update must include the client_id (RFC 7592 2.2)."))
		return
	}
	if req.ClientID != id {
		e.fail(w, r, metadataError("The client_id does not match the client configuration endpoint."))
		return
	}
	cur, err := e.registrar.Get(ctx, id)
	if err != nil {
		e.fail(w, r, err)
		return
	}
	if err := e.checkUpdate(id, &cur.Metadata, &m, req.ClientSecret); err != nil {
		e.fail(w, r, err)
		return
	}
	if err := e.checkScopes(m.Scopes); err != nil {
		e.fail(w, r, err)
		return
	}
	rc, err := e.registrar.Update(ctx, id, m)
	if err != nil {
		e.fail(w, r, err)
		return
	}
	logr.FromContextOrDiscard(ctx).Info("registered client updated", "client_id", id, "grant_types", rc.Metadata.GrantTypes)
	oauth2.Audit(ctx, oauth2.AuditEvent{Event: oauth2.AuditClientUpdated, ClientID: id})
	e.writeClient(w, r, http.StatusOK, rc, token)
}

// checkUpdate applies the rules of an update beyond those of a registration.
func (e *Endpoint) checkUpdate(id string, cur, next *ClientMetadata, secret string) error {
	if cur.Public() != next.Public() {
		return metadataError("The token_endpoint_auth_method cannot change between none and a method with a secret; register a new client.")
	}
	if err := e.checkUpdatePolicy(cur, next); err != nil {
		return err
	}
	if err := e.checkClientName(next.ClientName, id); err != nil {
		return err
	}
	if secret == "" {
		return nil
	}
	// RFC 7592 2.2: a client_secret included must be the current one. The registry is what
	// authenticates the client, so it is the reference; a client it does not serve yet is not
	// checked.
	if c, ok := e.registry.Snapshot().Client(id); ok && (oauth2.IsPublic(c) || !c.CheckSecret(secret)) {
		return metadataError("The client_secret is not the client's current secret.")
	}
	return nil
}

// remove is DELETE /oauth2/register/{client_id} (RFC 7592 2.3).
func (e *Endpoint) remove(w http.ResponseWriter, r *http.Request) {
	id, _, ok := e.authorizeClient(w, r)
	if !ok {
		return
	}
	if err := e.registrar.Delete(r.Context(), id); err != nil {
		e.fail(w, r, err)
		return
	}
	logr.FromContextOrDiscard(r.Context()).Info("registered client deleted", "client_id", id)
	oauth2.Audit(r.Context(), oauth2.AuditEvent{Event: oauth2.AuditClientDeleted, ClientID: id})
	oauth2.WriteEmpty(w, http.StatusNoContent)
}

// readMetadata reads, parses and validates a request body. The caller applies the policy,
// then checks that the scopes exist (checkScopes).
func (e *Endpoint) readMetadata(r *http.Request) (ClientMetadata, *registrationRequest, error) {
	body, err := readRegistrationBody(r, e.maxBody)
	if err != nil {
		return ClientMetadata{}, nil, err
	}
	req, err := parseRegistrationRequest(body)
	if err != nil {
		return ClientMetadata{}, nil, err
	}
	m, err := req.validate()
	if err != nil {
		return ClientMetadata{}, nil, err
	}
	return m, req, nil
}

// checkScopes requires every scope to exist, as a Scope available to the registrar's namespace
// or as an OpenID Connect standard scope.
func (e *Endpoint) checkScopes(scopes []string) error {
	snap := e.registry.Snapshot()
	ns := e.registrar.Namespace()
	for _, name := range scopes {
		sc, ok := snap.Scope(name)
		switch {
		case ok && !sc.AllowsNamespace(ns):
			return metadataError("The scope %.64q is not available to registered clients.", name)
		case !ok && !oauth2.IsBuiltinScope(name):
			return metadataError("The scope %.64q does not exist.", name)
		}
	}
	return nil
}

// authorizeRegistration checks the initial access token (RFC 7591 3) and returns it, with its
// policy; nil means an anonymous registration. Without an Authorization header, open
// registration proceeds anonymously; a token that is sent must be valid even then.
func (e *Endpoint) authorizeRegistration(w http.ResponseWriter, r *http.Request) (token *InitialToken, ok bool) {
	bearer, present, err := registrationBearer(r)
	switch {
	case err != nil:
		oauth2.WriteError(w, r, err)
		return nil, false
	case !present && e.open:
		return nil, true
	case !present:
		refuseBearer(w, r, true, "Registration needs an initial access token.")
		return nil, false
	}
	token = matchInitialToken(e.initial, bearer)
	failed := token == nil || bearer == "" // "" is a malformed header
	// Matching is cheap, so the outcome is recorded at once; a blocked address is refused
	// whatever the token.
	v, err := e.guard.Record(r.Context(), initialTokenIdentity, oauth2.ClientAddress(r.Context()), failed)
	if e.refusedByGuard(w, r, "initial access token", v, err) {
		return nil, false
	}
	if failed {
		refuseBearer(w, r, false, "The initial access token is invalid.")
		return nil, false
	}
	return token, true
}

// authorizeClient checks the registration access token of the client in the path.
func (e *Endpoint) authorizeClient(w http.ResponseWriter, r *http.Request) (id, token string, ok bool) {
	id = r.PathValue("client_id")
	token, present, err := registrationBearer(r)
	switch {
	case err != nil:
		oauth2.WriteError(w, r, err)
		return "", "", false
	case !present:
		refuseBearer(w, r, true, "The request needs the client's registration access token.")
		return "", "", false
	}
	// A blocked address is refused before the registrar is asked (in a cluster, a read from
	// the API server), whatever the token.
	ctx, addr, identity := r.Context(), oauth2.ClientAddress(r.Context()), registrationTokenIdentity(id)
	v, err := e.guard.Check(ctx, identity, addr)
	if e.refusedByGuard(w, r, "registration access token", v, err) {
		return "", "", false
	}
	if token == "" || id == "" || len(id) > 253 {
		err = ErrRegistrationTokenMismatch
	} else {
		err = e.registrar.CheckRegistrationToken(ctx, id, token)
	}
	refused := errors.Is(err, ErrClientNotFound) || errors.Is(err, ErrRegistrationTokenMismatch)
	if err == nil || refused { // another error (the registrar unavailable) says nothing of the token
		v, gerr := e.guard.Record(ctx, identity, addr, refused)
		if e.refusedByGuard(w, r, "registration access token", v, gerr) {
			return "", "", false
		}
	}
	if err != nil {
		e.fail(w, r, err)
		return "", "", false
	}
	return id, token, true
}

// guardKind separates the brute-force counts of registration from those of other attempts
// (client authentication, user login).
const guardKind = "registration"

// initialTokenIdentity is the identity the guard counts initial access token failures under:
// one for every token, since a guess is not of any one of them.
const initialTokenIdentity = "initial-access-token"

// registrationTokenIdentity is the identity the guard counts the registration access token
// failures of a client ID under; the prefix keeps it apart from initialTokenIdentity.
func registrationTokenIdentity(clientID string) string { return "client:" + clientID }

// refusedByGuard answers the request and returns true when the brute-force guard refuses it:
// 429 with Retry-After (audited as rate_limited) when the guard blocks the identity for the
// address or the address, 503 when the request ended while the store was asked. When the store cannot be reached otherwise, the
// presentation is not throttled (logged at info level, as for client authentication), so an
// outage of Redis does not stop registration.
func (e *Endpoint) refusedByGuard(w http.ResponseWriter, r *http.Request, what string, v oauth2.Verdict, err error) bool {
	ctx := r.Context()
	switch {
	case err != nil && ctx.Err() != nil:
		oauth2.WriteError(w, r, oauth2.FromStore(ctx.Err()))
		return true
	case err != nil:
		logr.FromContextOrDiscard(ctx).Info("brute-force protection unavailable; the attempt is not throttled",
			"credential", what, "error", err.Error())
		return false
	case v.RetryAfter > 0:
		oauth2.RecordRateLimited(ctx, oauth2.RateLimitRegistration)
		oauth2.Audit(ctx, oauth2.AuditEvent{Event: oauth2.AuditRateLimited, Outcome: "failure",
			Reason: what + ": too many failures"})
		oauth2.WriteError(w, r, oauth2.ErrTooManyRequests.WithRetryAfter(v.RetryAfter))
		return true
	}
	return false
}

// registrationBearer returns the bearer token of the Authorization header; present is false
// without the header. With another scheme or a malformed token, token is "" and present true.
func registrationBearer(r *http.Request) (token string, present bool, err error) {
	values := r.Header.Values("Authorization")
	switch len(values) {
	case 0:
		return "", false, nil
	case 1:
	default:
		return "", true, oauth2.InvalidRequest("The Authorization header is included more than once.")
	}
	token, _ = oauth2.BearerCredentials(values[0])
	return token, true, nil
}

// refuseBearer answers 401 invalid_token with a Bearer challenge (RFC 6750 3); a request that
// sent no token gets a challenge without an error code (3.1).
func refuseBearer(w http.ResponseWriter, r *http.Request, missing bool, description string) {
	oauth2.WriteBearerError(w, r, oauth2.ErrInvalidToken.WithDescription(description), oauth2.Challenge{NoToken: missing})
}

// fail writes the error of a registration request. A client that does not exist is answered
// like a wrong token, as RFC 7592 3 asks, so client IDs cannot be probed. A registrar that cannot
// answer now, and a request that ended while it waited, are temporarily_unavailable (503).
func (e *Endpoint) fail(w http.ResponseWriter, r *http.Request, err error) {
	var oe *oauth2.Error
	switch {
	case errors.Is(err, ErrClientNotFound), errors.Is(err, ErrRegistrationTokenMismatch):
		refuseBearer(w, r, false, "The registration access token is invalid, or the client does not exist.")
	case errors.Is(err, ErrRegistrationLimit):
		oauth2.WriteError(w, r, oauth2.ErrAccessDenied.WithDescription("No more clients can be registered.").WithCause(err))
	case errors.As(err, &oe):
		oauth2.WriteError(w, r, oe)
	case errors.Is(err, ErrRegistrarUnavailable):
		oauth2.WriteError(w, r, oauth2.ErrTemporarilyUnavailable.WithCause(err))
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		oauth2.WriteError(w, r, oauth2.FromStore(err))
	default:
		oauth2.WriteError(w, r, oauth2.ErrServerError.WithCause(err))
	}
}

// clientInformation is the RFC 7591 3.2.1 / RFC 7592 3 client information response.
type clientInformation struct {
	ClientID                string   `json:"client_id"`
	ClientSecret            string   `json:"client_secret,omitempty"`
	ClientIDIssuedAt        int64    `json:"client_id_issued_at,omitempty"`
	ClientSecretExpiresAt   *int64   `json:"client_secret_expires_at,omitempty"`
	RegistrationAccessToken string   `json:"registration_access_token"`
	RegistrationClientURI   string   `json:"registration_client_uri"`
	RedirectURIs            []string `json:"redirect_uris,omitempty"`
	PostLogoutRedirectURIs  []string `json:"post_logout_redirect_uris,omitempty"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	ClientName              string   `json:"client_name,omitempty"`
	Scope                   string   `json:"scope,omitempty"`
	// OIDC Back-Channel Logout 1.0 2.2.
	BackchannelLogoutURI             string `json:"backchannel_logout_uri,omitempty"`
	BackchannelLogoutSessionRequired bool   `json:"backchannel_logout_session_required,omitempty"`
	// RFC 9126 6.
	RequirePushedAuthorizationRequests bool `json:"require_pushed_authorization_requests,omitempty"`
}

// writeClient writes the client information, never cached. token is the registration access
// token: new after Register, else the one the request was authorized with.
func (e *Endpoint) writeClient(w http.ResponseWriter, r *http.Request, status int, rc RegisteredClient, token string) {
	m := &rc.Metadata
	info := clientInformation{
		ClientID:                rc.ClientID,
		ClientSecret:            rc.ClientSecret,
		RegistrationAccessToken: token,
		RegistrationClientURI:   e.base + oauth2.RegistrationPath + "/" + url.PathEscape(rc.ClientID),
		RedirectURIs:            m.RedirectURIs,
		PostLogoutRedirectURIs:  m.PostLogoutRedirectURIs,
		TokenEndpointAuthMethod: m.TokenEndpointAuthMethod,
		GrantTypes:              m.GrantTypes,
		ResponseTypes:           []string{},
		ClientName:              m.ClientName,
		Scope:                   strings.Join(m.Scopes, " "),

		BackchannelLogoutURI:               m.BackchannelLogoutURI,
		BackchannelLogoutSessionRequired:   m.BackchannelLogoutSessionRequired,
		RequirePushedAuthorizationRequests: m.RequirePushedAuthorizationRequests,
	}
	if info.GrantTypes == nil {
		info.GrantTypes = []string{}
	}
	if slices.Contains(m.GrantTypes, oauth2.GrantAuthorizationCode) {
		info.ResponseTypes = []string{regResponseTypeCode}
	}
	if !rc.IssuedAt.IsZero() {
		info.ClientIDIssuedAt = rc.IssuedAt.Unix()
	}
	if !m.Public() {
		never := int64(0) // the secret does not expire (RFC 7591 3.2.1)
		info.ClientSecretExpiresAt = &never
	}
	oauth2.WriteJSON(w, r, status, &info)
}
