package registry

import (
	"crypto/sha256"
	"crypto/subtle"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// ClientType is Confidential or Public.
type ClientType string

// Client types.
const (
	Confidential ClientType = "Confidential"
	Public       ClientType = "Public"
)

// Client is one OAuth client as the server sees it.
type Client struct {
	// Source is the key of the resource it came from ("namespace/name").
	Source    string
	Namespace string
	// Created orders clients that claim the same ID: the earliest wins.
	Created time.Time

	ID          string
	Type        ClientType
	DisplayName string
	// GrantTypes the client may use, e.g. "client_credentials".
	GrantTypes []string
	// RedirectURIs are matched exactly.
	RedirectURIs []string
	// PostLogoutRedirectURIs are where RP-initiated logout may send the browser, matched
	// like RedirectURIs.
	PostLogoutRedirectURIs []string
	// LogoutRevokesRefreshTokens: ending an OP session revokes the refresh token families the
	// client got through it (OAuthClient spec.logout.revokeRefreshTokens).
	LogoutRevokesRefreshTokens bool
	// Scopes the client may request; DefaultScopes are granted when it asks for none.
	Scopes        []string
	DefaultScopes []string
	Audiences     []string
	// AuthMethod is none for a public client; for a confidential one client_secret_basic or
	// client_secret_post when declared (then the only method accepted), "" when not (either).
	AuthMethod string
	// SecretHash is the SHA-256 of the client secret; HasSecret is false while none is known
	// (a confidential client without a secret cannot authenticate).
	SecretHash [sha256.Size]byte
	HasSecret  bool

	// Lifetimes; zero means the server default.
	AccessTokenLifetime  time.Duration
	RefreshTokenLifetime time.Duration
	IDTokenLifetime      time.Duration
	CodeLifetime         time.Duration
	// SigningAlgorithm overrides the server default when set (RS256, ES256, EdDSA).
	SigningAlgorithm string
	// PKCE is RequiredS256, Required or Optional; Consent is Always, Remember or Skip.
	PKCE    string
	Consent string
	// DPoP is DPoPRequired, DPoPOptional or DPoPDisabled (RFC 9449 proof-of-possession; see
	// server/dpop); "" is DPoPOptional.
	DPoP string

	// RateLimit bounds the client's token requests; a zero PerMinute means the server's default.
	RateLimit RateLimit
	// AllowedOrigins are the browser origins (scheme://host[:port], as browsers serialise them)
	// allowed to call the server for this client with CORS; only a Public client's count
	// (Snapshot.AllowsOrigin).
	AllowedOrigins []string
	// Introspection: the client is a declared resource server that may introspect tokens.
	Introspection bool
	// BackchannelLogoutURI receives OpenID Connect Back-Channel Logout tokens when a session
	// the client took part in ends (empty: none are sent); BackchannelLogoutSessionRequired
	// says the client needs the sid claim in them.
	BackchannelLogoutURI             string
	BackchannelLogoutSessionRequired bool
	// RequirePushedAuthorizationRequests: the authorization endpoint takes this client's
	// requests only through a request_uri from the pushed authorization request endpoint
	// (RFC 9126 5).
	RequirePushedAuthorizationRequests bool
	// Registered: the client was created by dynamic registration (RFC 7591), so nobody
	// vouched for its name; the consent page says so.
	Registered bool

	// PreviousSecretHash is the SHA-256 of the client's previous secret, accepted until
	// PreviousSecretUntil (secret rotation with a grace period); a zero time means none.
	PreviousSecretHash  [sha256.Size]byte
	PreviousSecretUntil time.Time

	// Assertion-based authentication (AuthMethod service_account_token or private_key_jwt).
	//
	// ServiceAccount is the name of the ServiceAccount (in Namespace) whose projected tokens
	// authenticate the client; WorkloadIssuer and WorkloadSubject instead bind it to a subject
	// of a WorkloadIssuer (its name). Exactly one of the two is set for service_account_token.
	ServiceAccount  string
	WorkloadIssuer  string
	WorkloadSubject string
	// PublicKeys verify a private_key_jwt client's assertions (inline, from a Secret, or the
	// generated key pair's); JWKSURI serves them instead when set.
	PublicKeys []jose.JSONWebKey
	JWKSURI    string
	// MaxAssertionLifetime bounds exp - iat of the client's assertions; zero means the server
	// default (1 h).
	MaxAssertionLifetime time.Duration
	// AccessTokenOutlivesAssertion lets an access token obtained with an assertion live its full
	// lifetime; by default it expires no later than the assertion.
	AccessTokenOutlivesAssertion bool

	// AllowedIdentityProviders names the upstream identity providers whose users may sign in
	// to the client; empty: every one (AllowsIdentityProvider).
	AllowedIdentityProviders []string
}

// Client authentication methods that use a JWT-bearer client assertion (RFC 7523 2.2).
const (
	AuthMethodServiceAccountToken = "service_account_token"
	AuthMethodPrivateKeyJWT       = "private_key_jwt"
)

// UsesAssertion reports whether the client authenticates with a client assertion.
func (c *Client) UsesAssertion() bool {
	return c.AuthMethod == AuthMethodServiceAccountToken || c.AuthMethod == AuthMethodPrivateKeyJWT
}

// LocalIssuer is the WorkloadSubjectKey issuer of the ServiceAccount tokens of Latchkey's own
// cluster (Client.ServiceAccount).
const LocalIssuer = "kubernetes"

// WorkloadSubjectKey returns the (issuer, subject) pair the client is bound to: a WorkloadIssuer
// name and subject, or LocalIssuer and system:serviceaccount:<namespace>:<name>; ok is false
// for a client bound to none.
func (c *Client) WorkloadSubjectKey() (issuer, subject string, ok bool) {
	switch {
	case c.AuthMethod != AuthMethodServiceAccountToken:
		return "", "", false
	case c.ServiceAccount != "":
		return LocalIssuer, ServiceAccountSubject(c.Namespace, c.ServiceAccount), true
	case c.WorkloadIssuer != "":
		return c.WorkloadIssuer, c.WorkloadSubject, true
	}
	return "", "", false
}

// ServiceAccountSubject is the sub (and TokenReview username) of a ServiceAccount's tokens.
func ServiceAccountSubject(namespace, name string) string {
	return "system:serviceaccount:" + namespace + ":" + name
}

// RateLimit is a token bucket: PerMinute sustained, Burst at once.
type RateLimit struct {
	PerMinute, Burst int
}

// WithDefaultBurst is the limit with its default burst when it has none: a tenth of the rate,
// at least 1.
func (l RateLimit) WithDefaultBurst() RateLimit {
	if l.Burst <= 0 {
		l.Burst = max(l.PerMinute/10, 1)
	}
	return l
}

// HashSecret is the hash the registry keeps of a client secret.
func HashSecret(secret []byte) [sha256.Size]byte { return sha256.Sum256(secret) }

// CheckSecret reports, in constant time, whether secret is the client's secret.
func (c *Client) CheckSecret(secret string) bool {
	h := sha256.Sum256([]byte(secret))
	ok := subtle.ConstantTimeCompare(h[:], c.SecretHash[:]) == 1
	return ok && c.HasSecret
}

// SecretMatch is which of a client's secrets a presented secret is.
type SecretMatch int

// Secret matches.
const (
	NoSecret SecretMatch = iota
	CurrentSecret
	PreviousSecret
)

// MatchSecret reports, in constant time, whether secret is the client's current secret, or its
// previous one while that is accepted at now. Both hashes are always compared.
func (c *Client) MatchSecret(secret string, now time.Time) SecretMatch {
	h := sha256.Sum256([]byte(secret))
	cur := subtle.ConstantTimeCompare(h[:], c.SecretHash[:]) == 1 && c.HasSecret
	prev := subtle.ConstantTimeCompare(h[:], c.PreviousSecretHash[:]) == 1 &&
		!c.PreviousSecretUntil.IsZero() && now.Before(c.PreviousSecretUntil)
	switch {
	case cur:
		return CurrentSecret
	case prev:
		return PreviousSecret
	}
	return NoSecret
}

// AllowsGrant reports whether the client lists the grant type.
func (c *Client) AllowsGrant(grant string) bool { return slices.Contains(c.GrantTypes, grant) }

// AllowsScope reports whether the client may request the scope.
func (c *Client) AllowsScope(scope string) bool { return slices.Contains(c.Scopes, scope) }

// Scope is one OAuth scope.
type Scope struct {
	// Created orders scopes that claim the same name: the earliest wins (see Precedes).
	Created     time.Time
	Name        string
	Description string
	// Claims released by the scope in ID tokens and userinfo.
	Claims []string
	// Default scopes are granted when a client asks for none and is allowed the scope.
	Default bool
	// AllowedNamespaces limits which namespaces' clients may request it; empty means all.
	AllowedNamespaces []string
}

// AllowsNamespace reports whether clients of the namespace may request the scope.
func (s *Scope) AllowsNamespace(ns string) bool {
	return len(s.AllowedNamespaces) == 0 || slices.Contains(s.AllowedNamespaces, ns)
}

// User is a person who can log in.
type User struct {
	// Source is the name of the resource it came from.
	Source string
	// Created orders users that claim the same username: the earliest wins (see Precedes).
	Created time.Time
	// Subject is the user's OIDC sub: stable and never reassigned (the resource's UID), so a
	// user deleted and re-created under the same username is a different subject. Tokens,
	// sessions and consents name the user by Subject; only logins look users up by Username.
	Subject       string
	Username      string
	Email         string
	EmailVerified bool
	DisplayName   string
	Groups        []string
	// PasswordHash is a bcrypt or argon2id (PHC) hash; empty means the user cannot log in.
	PasswordHash []byte
	Disabled     bool
	// IdentityProvider and IdentityProviderUID name the upstream provider that signed an
	// external user in (ExternalUsers), IdentityProviderKind its kind (KindOIDC, KindGitHub,
	// KindLDAP; "" is KindOIDC); all empty for a User resource. UpstreamSubject is the
	// user's stable identifier at the provider (OIDC sub, GitHub user ID, LDAP UID attribute).
	IdentityProvider, IdentityProviderUID, IdentityProviderKind string
	UpstreamSubject                                             string
}

// Kinds of upstream identity provider (User.IdentityProviderKind).
const (
	KindOIDC   = "OIDCIdentityProvider"
	KindGitHub = "GitHubIdentityProvider"
	KindLDAP   = "LDAPIdentityProvider"
)

func (c *Client) claimOrder() (time.Time, string) { return c.Created, c.Source }
func (u *User) claimOrder() (time.Time, string)   { return u.Created, u.Source }

// DPoP policies of a client (Client.DPoP).
const (
	DPoPRequired = "Required"
	DPoPOptional = "Optional"
	DPoPDisabled = "Disabled"
)
