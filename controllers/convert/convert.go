package convert

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
	"github.com/latchkey-dev/latchkey/server/password"
	"github.com/latchkey-dev/latchkey/server/redirecturi"
	"github.com/latchkey-dev/latchkey/server/registry"
)

// Errors wrapped by Client and User.
var (
	// ErrInvalidSpec: the resource cannot be served as written; its author must change it.
	ErrInvalidSpec = errors.New("invalid spec")
	// ErrSecretNotFound: the referenced Secret, or its key, does not exist (yet) or is empty.
	ErrSecretNotFound = errors.New("secret not found")
)

// Defaults of the Secret references.
const (
	// ClientSecretSuffix is appended to the OAuthClient's name to name its default Secret.
	ClientSecretSuffix = "-oauth-client"
	// ClientSecretKey is the default key of the client secret inside the Secret.
	ClientSecretKey = "client-secret"
	// PasswordKey is the default key of the password hash inside a User's Secret.
	PasswordKey = "hash"
)

var (
	clientIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:@-]*$`)
	scopePattern    = regexp.MustCompile(`^[\x21\x23-\x5B\x5D-\x7E]+$`)
)

// maxScopeNameLength is the CRD's bound on scope names.
const maxScopeNameLength = 128

// SourceKey is the registry source key of a namespaced resource: "namespace/name".
func SourceKey(namespace, name string) string { return namespace + "/" + name }

// ClientID returns the client ID of the OAuthClient: spec.clientID or <name>.<namespace>.
func ClientID(oc *v1alpha1.OAuthClient) string {
	if oc.Spec.ClientID != "" {
		return oc.Spec.ClientID
	}
	return oc.Name + "." + oc.Namespace
}

// ClientType returns spec.type with its default, Confidential.
func ClientType(oc *v1alpha1.OAuthClient) v1alpha1.ClientType {
	if oc.Spec.Type == "" {
		return v1alpha1.ClientTypeConfidential
	}
	return oc.Spec.Type
}

// SecretPolicy returns spec.secretPolicy with its default, Generate.
func SecretPolicy(oc *v1alpha1.OAuthClient) v1alpha1.SecretPolicy {
	if oc.Spec.SecretPolicy == "" {
		return v1alpha1.SecretPolicyGenerate
	}
	return oc.Spec.SecretPolicy
}

// SecretRef returns the Secret (in the client's namespace) and key holding the client secret:
// spec.secretRef, defaulting to <name>-oauth-client and client-secret.
func SecretRef(oc *v1alpha1.OAuthClient) (name, key string) {
	name, key = oc.Name+ClientSecretSuffix, ClientSecretKey
	if ref := oc.Spec.SecretRef; ref != nil {
		if ref.Name != "" {
			name = ref.Name
		}
		if ref.Key != "" {
			key = ref.Key
		}
	}
	return name, key
}

// Client converts an OAuthClient and its client secret's Secret (nil when it does not exist)
// into the registry value: ClientWith with only that Secret.
func Client(oc *v1alpha1.OAuthClient, secret *corev1.Secret) (registry.Client, error) {
	return ClientWith(oc, ClientInputs{Secret: secret})
}

// ClientInputs are the Secrets an OAuthClient's conversion reads, each nil when it does not
// exist (or the client has none), and the time that decides which rotated credentials are
// still accepted.
type ClientInputs struct {
	// Secret holds the client secret (SecretRef).
	Secret *corev1.Secret
	// Rotation is the client's rotation state (RotationSecretName), read when
	// spec.secretRotation is set.
	Rotation *corev1.Secret
	// Keys holds a private_key_jwt client's JWK set (KeySecretRef): jwksSecretRef or the
	// generated key pair.
	Keys *corev1.Secret
	// Now is the current time; zero means time.Now().
	Now time.Time
}

// ClientWith converts an OAuthClient and the Secrets it reads into the registry value. A Public
// client ignores the Secrets. For a Confidential client whose Secret or key (client secret, or
// private_key_jwt key set) is missing, it returns the complete client without credentials and
// an error wrapping ErrSecretNotFound. Spec problems return an error wrapping ErrInvalidSpec
// and no client.
func ClientWith(oc *v1alpha1.OAuthClient, in ClientInputs) (registry.Client, error) {
	if in.Now.IsZero() {
		in.Now = time.Now()
	}
	if problems := validateClient(oc); len(problems) > 0 {
		return registry.Client{}, fmt.Errorf("%w: %s", ErrInvalidSpec, strings.Join(problems, "; "))
	}
	id := ClientID(oc)
	typ := ClientType(oc)
	c := registry.Client{
		Source:                     SourceKey(oc.Namespace, oc.Name),
		Namespace:                  oc.Namespace,
		Created:                    oc.CreationTimestamp.Time,
		ID:                         id,
		Type:                       registry.ClientType(typ),
		DisplayName:                oc.Spec.DisplayName,
		RedirectURIs:               slices.Clone(oc.Spec.RedirectURIs),
		PostLogoutRedirectURIs:     slices.Clone(oc.Spec.PostLogoutRedirectURIs),
		LogoutRevokesRefreshTokens: oc.Spec.Logout != nil && oc.Spec.Logout.RevokeRefreshTokens,
		Scopes:                     slices.Clone(oc.Spec.Scopes),
		DefaultScopes:              slices.Clone(oc.Spec.DefaultScopes),
		Audiences:                  slices.Clone(oc.Spec.Audiences),
		AuthMethod:                 string(oc.Spec.TokenEndpointAuthMethod),
		PKCE:                       string(oc.Spec.PKCE),
		DPoP:                       string(oc.Spec.DPoP),
		Consent:                    string(oc.Spec.Consent),
		Introspection:              oc.Spec.Introspection,
		Registered:                 oc.Labels[v1alpha1.LabelRegistered] == "true",

		BackchannelLogoutURI:               oc.Spec.BackchannelLogoutURI,
		BackchannelLogoutSessionRequired:   oc.Spec.BackchannelLogoutSessionRequired,
		RequirePushedAuthorizationRequests: oc.Spec.RequirePushedAuthorizationRequests,
		AllowedIdentityProviders:           slices.Clone(oc.Spec.AllowedIdentityProviders),
	}
	if rl := oc.Spec.RateLimit; rl != nil {
		c.RateLimit = registry.RateLimit{PerMinute: int(rl.RequestsPerMinute), Burst: int(rl.Burst)}.WithDefaultBurst()
	}
	for _, g := range oc.Spec.GrantTypes {
		c.GrantTypes = append(c.GrantTypes, string(g))
	}
	if len(c.Audiences) == 0 {
		c.Audiences = []string{id}
	}
	if c.PKCE == "" {
		c.PKCE = string(v1alpha1.PKCERequiredS256)
	}
	if c.Consent == "" {
		c.Consent = string(v1alpha1.ConsentRemember)
	}
	if c.DPoP == "" {
		c.DPoP = string(v1alpha1.DPoPOptional)
	}
	c.SigningAlgorithm = string(oc.Spec.SigningAlgorithm)
	if l := oc.Spec.Lifetimes; l != nil {
		// validateClient refused the values that do not parse or are out of range.
		c.AccessTokenLifetime, _ = Lifetime(l.AccessToken)
		c.RefreshTokenLifetime, _ = Lifetime(l.RefreshToken)
		c.IDTokenLifetime, _ = Lifetime(l.IDToken)
		c.CodeLifetime, _ = Lifetime(l.AuthorizationCode)
	}
	if typ == v1alpha1.ClientTypePublic {
		c.AuthMethod = string(v1alpha1.AuthMethodNone)
		c.AllowedOrigins = AllowedOrigins(oc)
		return c, nil
	}
	switch v1alpha1.TokenEndpointAuthMethod(c.AuthMethod) {
	case v1alpha1.AuthMethodServiceAccountToken, v1alpha1.AuthMethodPrivateKeyJWT:
		return assertionClient(oc, c, in)
	}
	name, key := SecretRef(oc)
	value, err := secretValue(in.Secret, oc.Namespace, name, key)
	if err != nil {
		return c, err
	}
	c.SecretHash = registry.HashSecret(value)
	c.HasSecret = true
	applyRotation(oc, &c, in)
	return c, nil
}

// Lifetime is a spec.lifetimes value: an integer is seconds, a string a duration (time.ParseDuration:
// 90m, 1h30m); absent is 0, the server default. A string without a unit ("3600") is refused.
func Lifetime(v *intstr.IntOrString) (time.Duration, error) {
	if v == nil {
		return 0, nil
	}
	if v.Type == intstr.Int {
		return time.Duration(v.IntVal) * time.Second, nil
	}
	d, err := time.ParseDuration(v.StrVal)
	if err != nil {
		return 0, fmt.Errorf("%q is neither integer seconds nor a duration such as 30m or 1h", v.StrVal)
	}
	return d, nil
}

// AllowedOrigins returns the CORS origins of a Public client: spec.allowedOrigins, else the
// origins of its https and http redirect URIs (redirecturi.Origins); each as browsers send it in
// the Origin header (redirecturi.Origin), without repeats. An entry that is not an http(s)
// origin is left out (validateClient refuses it in spec.allowedOrigins).
func AllowedOrigins(oc *v1alpha1.OAuthClient) []string {
	if len(oc.Spec.AllowedOrigins) == 0 {
		return redirecturi.Origins(oc.Spec.RedirectURIs)
	}
	var out []string
	for _, c := range oc.Spec.AllowedOrigins {
		if o, ok := redirecturi.Origin(c); ok && !slices.Contains(out, o) {
			out = append(out, o)
		}
	}
	return out
}

// secretValue returns the non-empty value of key in secret, which must be namespace/name.
func secretValue(secret *corev1.Secret, namespace, name, key string) ([]byte, error) {
	if secret == nil {
		return nil, fmt.Errorf("%w: Secret %s/%s does not exist", ErrSecretNotFound, namespace, name)
	}
	if secret.Name != name || (secret.Namespace != "" && namespace != "" && secret.Namespace != namespace) {
		return nil, fmt.Errorf("convert: got Secret %s/%s, want %s/%s", secret.Namespace, secret.Name, namespace, name)
	}
	value, ok := SecretData(secret, key)
	if !ok || len(value) == 0 {
		return nil, fmt.Errorf("%w: Secret %s/%s has no value under key %q", ErrSecretNotFound, namespace, name, key)
	}
	return value, nil
}

// SecretData returns the value of key in the Secret: data first, then stringData (which only
// manifests on disk carry; the API server merges it into data). It is the one place that reads
// stringData, so a nil data map is fine. The returned slice must not be modified.
func SecretData(secret *corev1.Secret, key string) ([]byte, bool) {
	if secret == nil {
		return nil, false
	}
	if v, ok := secret.Data[key]; ok {
		return v, true
	}
	if v, ok := secret.StringData[key]; ok {
		return []byte(v), true
	}
	return nil, false
}

// validateClient returns what is wrong with the spec, checking again what the CRD's schema and
// CEL rules check (manifests on disk never met them) plus the rules CEL cannot express.
func validateClient(oc *v1alpha1.OAuthClient) []string {
	var p []string
	add := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }
	s := &oc.Spec
	if oc.Name == "" || oc.Namespace == "" {
		add("metadata.name and metadata.namespace are required")
	}
	if id := ClientID(oc); len(id) > 253 || !clientIDPattern.MatchString(id) {
		add("clientID %q must match %s and have at most 253 characters", id, clientIDPattern)
	}
	typ := ClientType(oc)
	switch typ {
	case v1alpha1.ClientTypeConfidential, v1alpha1.ClientTypePublic:
	default:
		add("type %q must be Confidential or Public", s.Type)
	}
	if len(s.GrantTypes) == 0 {
		add("grantTypes must name at least one grant type")
	}
	for _, g := range s.GrantTypes {
		switch g {
		case v1alpha1.GrantTypeAuthorizationCode, v1alpha1.GrantTypeClientCredentials,
			v1alpha1.GrantTypeRefreshToken, v1alpha1.GrantTypePassword, v1alpha1.GrantTypeDeviceCode,
			v1alpha1.GrantTypeTokenExchange:
		default:
			add("grant type %q is not supported", g)
		}
	}
	if typ == v1alpha1.ClientTypePublic && slices.Contains(s.GrantTypes, v1alpha1.GrantTypeClientCredentials) {
		add("a Public client must not use client_credentials")
	}
	if typ == v1alpha1.ClientTypePublic && slices.Contains(s.GrantTypes, v1alpha1.GrantTypeTokenExchange) {
		add("a Public client must not use token exchange")
	}
	switch m := s.TokenEndpointAuthMethod; {
	case m == "":
	case m != v1alpha1.AuthMethodClientSecretBasic && m != v1alpha1.AuthMethodClientSecretPost && m != v1alpha1.AuthMethodNone &&
		m != v1alpha1.AuthMethodServiceAccountToken && m != v1alpha1.AuthMethodPrivateKeyJWT:
		add("tokenEndpointAuthMethod %q is not supported", m)
	case typ == v1alpha1.ClientTypePublic && m != v1alpha1.AuthMethodNone:
		add("a Public client authenticates with tokenEndpointAuthMethod none")
	case typ == v1alpha1.ClientTypeConfidential && m == v1alpha1.AuthMethodNone:
		add("a Confidential client must authenticate; tokenEndpointAuthMethod none is for Public clients")
	}
	switch SecretPolicy(oc) {
	case v1alpha1.SecretPolicyGenerate:
	case v1alpha1.SecretPolicyExternal:
		if s.SecretRef == nil {
			add("secretPolicy External needs secretRef")
		}
	default:
		add("secretPolicy %q must be Generate or External", s.SecretPolicy)
	}
	if typ == v1alpha1.ClientTypePublic && s.SecretRef != nil {
		add("a Public client has no secret; remove secretRef")
	}
	if s.SecretRef != nil && SecretPolicy(oc) == v1alpha1.SecretPolicyGenerate {
		if _, key := SecretRef(oc); key == GeneratedClientIDKey || key == GeneratedTokenURLKey {
			add("secretRef.key %q is used by the generated Secret for another value", key)
		}
	}
	if slices.Contains(s.GrantTypes, v1alpha1.GrantTypeAuthorizationCode) && len(s.RedirectURIs) == 0 {
		add("authorization_code needs at least one redirectURI")
	}
	for _, u := range s.RedirectURIs {
		if err := redirecturi.Check(u); err != nil {
			add("redirectURI %s %s", quoteShort(u), err)
		}
	}
	for _, u := range s.PostLogoutRedirectURIs {
		if err := redirecturi.Check(u); err != nil {
			add("postLogoutRedirectURI %s %s", quoteShort(u), err)
		}
	}
	if u := s.BackchannelLogoutURI; u != "" {
		if err := redirecturi.CheckLogoutURI(u); err != nil {
			add("backchannelLogoutURI %s %s", quoteShort(u), err)
		}
	}
	if len(s.AllowedOrigins) > 0 && typ != v1alpha1.ClientTypePublic {
		add("allowedOrigins (CORS) is for Public clients")
	}
	if len(s.AllowedOrigins) > maxAllowedOrigins {
		add("allowedOrigins may list at most %d origins", maxAllowedOrigins)
	}
	for _, o := range s.AllowedOrigins {
		if _, ok := redirecturi.Origin(o); !ok || len(o) > maxOriginLength {
			add("allowedOrigin %s is not an http(s) origin (scheme://host[:port]) as browsers send it, of at most %d bytes",
				quoteShort(o), maxOriginLength)
		}
	}
	if s.Introspection && typ == v1alpha1.ClientTypePublic {
		add("a Public client cannot introspect tokens; introspection is for resource servers that authenticate")
	}
	p = append(p, validateAssertionAuth(oc)...)
	if rl := s.RateLimit; rl != nil {
		if rl.RequestsPerMinute < 1 || rl.RequestsPerMinute > maxRequestsPerMinute {
			add("rateLimit.requestsPerMinute must be between 1 and %d", maxRequestsPerMinute)
		}
		if rl.Burst < 0 || rl.Burst > maxBurst {
			add("rateLimit.burst must be between 1 and %d (0 or unset: a tenth of the rate)", maxBurst)
		}
	}
	for _, sc := range s.Scopes {
		if !validScopeName(sc) {
			add("scope %q is not a valid scope token", sc)
		}
	}
	for _, sc := range s.DefaultScopes {
		if !slices.Contains(s.Scopes, sc) {
			add("defaultScope %q is not in scopes", sc)
		}
	}
	switch s.SigningAlgorithm {
	case "", v1alpha1.SigningRS256, v1alpha1.SigningES256, v1alpha1.SigningEdDSA:
	default:
		add("signingAlgorithm %q is not supported", s.SigningAlgorithm)
	}
	switch s.PKCE {
	case "", v1alpha1.PKCERequiredS256, v1alpha1.PKCERequired, v1alpha1.PKCEOptional:
	default:
		add("pkce %q is not supported", s.PKCE)
	}
	switch s.DPoP {
	case "", v1alpha1.DPoPRequired, v1alpha1.DPoPOptional, v1alpha1.DPoPDisabled:
	default:
		add("dpop %q is not supported", s.DPoP)
	}
	switch s.Consent {
	case "", v1alpha1.ConsentAlways, v1alpha1.ConsentRemember, v1alpha1.ConsentSkip:
	default:
		add("consent %q is not supported", s.Consent)
	}
	if l := s.Lifetimes; l != nil {
		for _, lt := range []struct {
			name  string
			v     *intstr.IntOrString
			limit time.Duration
		}{
			{"accessToken", l.AccessToken, 24 * time.Hour},
			{"refreshToken", l.RefreshToken, 365 * 24 * time.Hour},
			{"idToken", l.IDToken, 24 * time.Hour},
			{"authorizationCode", l.AuthorizationCode, time.Hour},
		} {
			d, err := Lifetime(lt.v)
			switch {
			case err != nil:
				add("lifetimes.%s: %v", lt.name, err)
			case d == 0 && (lt.v == nil || lt.v.Type == intstr.Int):
				// Absent, or 0 (the server default: files written before the CRD's minimum of 1).
			case d < time.Second || d > lt.limit:
				add("lifetimes.%s must be integer seconds from 1 to %d or a duration from 1s to %s", lt.name, int64(lt.limit/time.Second), lt.limit)
			}
		}
	}
	return p
}

// The CRD's bounds (api/v1alpha1 markers) that manifests on disk never met.
const (
	maxAllowedOrigins    = 16
	maxOriginLength      = 512
	maxRequestsPerMinute = 6000000
	maxBurst             = 1000000
)

// Keys of a Secret the controller generates for a client (the client secret's key is the
// secretRef key, client-secret by default).
const (
	GeneratedClientIDKey = "client-id"
	GeneratedTokenURLKey = "token-url"
)

// maxQuotedBytes bounds how much of a value a message quotes: a condition message has at most
// 32768 characters, and an OAuthClient may hold 32 redirect URIs of 2048 bytes.
const maxQuotedBytes = 256

// quoteShort quotes v, cut to maxQuotedBytes with "..." after the quote when longer.
func quoteShort(v string) string {
	if len(v) <= maxQuotedBytes {
		return fmt.Sprintf("%q", v)
	}
	return fmt.Sprintf("%q...", v[:maxQuotedBytes])
}

// validScopeName reports whether name is an RFC 6749 scope token of at most 128 characters, the
// pattern and bound the CRD puts on Scope and OAuthClient scope names.
func validScopeName(name string) bool {
	return len(name) <= maxScopeNameLength && scopePattern.MatchString(name)
}

// Scope converts a Scope into its registry source key (the resource name) and value. A name that
// is not a valid scope token wraps ErrInvalidSpec; the source key is returned even then, so the
// caller can remove what it served before.
func Scope(s *v1alpha1.Scope) (source string, sc registry.Scope, err error) {
	if !validScopeName(s.Spec.Name) {
		return s.Name, registry.Scope{}, fmt.Errorf("%w: name %q must match %s and have 1 to %d characters",
			ErrInvalidSpec, s.Spec.Name, scopePattern, maxScopeNameLength)
	}
	return s.Name, registry.Scope{
		Created:           s.CreationTimestamp.Time,
		Name:              s.Spec.Name,
		Description:       s.Spec.Description,
		Claims:            slices.Clone(s.Spec.Claims),
		Default:           s.Spec.Default,
		AllowedNamespaces: slices.Clone(s.Spec.AllowedNamespaces),
	}, nil
}

// PasswordSecretRef returns the Secret holding the User's password hash and its key (default
// hash); ok is false when the User has no password.
func PasswordSecretRef(u *v1alpha1.User) (namespace, name, key string, ok bool) {
	ref := u.Spec.PasswordSecretRef
	if ref == nil {
		return "", "", "", false
	}
	key = ref.Key
	if key == "" {
		key = PasswordKey
	}
	return ref.Namespace, ref.Name, key, true
}

// User converts a User and its password Secret (nil when it does not exist) into the registry
// value. A User without passwordSecretRef cannot log in but is served (e.g. for userinfo). When
// the Secret or key is missing it returns the user without a password hash and an error wrapping
// ErrSecretNotFound; a value that is not a bcrypt or argon2id hash is ErrInvalidSpec.
func User(u *v1alpha1.User, secret *corev1.Secret) (registry.User, error) {
	if u.Spec.Username == "" || len(u.Spec.Username) > 128 {
		return registry.User{}, fmt.Errorf("%w: username must have 1 to 128 characters", ErrInvalidSpec)
	}
	ru := registry.User{
		Source:        u.Name,
		Created:       u.CreationTimestamp.Time,
		Subject:       UserSubject(u),
		Username:      u.Spec.Username,
		Email:         u.Spec.Email,
		EmailVerified: u.Spec.EmailVerified,
		DisplayName:   u.Spec.DisplayName,
		Groups:        slices.Clone(u.Spec.Groups),
		Disabled:      u.Spec.Disabled,
	}
	ns, name, key, ok := PasswordSecretRef(u)
	if !ok {
		return ru, nil
	}
	if ns == "" || name == "" {
		return registry.User{}, fmt.Errorf("%w: passwordSecretRef needs namespace and name", ErrInvalidSpec)
	}
	value, err := secretValue(secret, ns, name, key)
	if err != nil {
		return ru, err
	}
	hash := bytes.TrimSpace(value)
	if err := CheckPasswordHash(hash); err != nil {
		return registry.User{}, fmt.Errorf("%w: Secret %s/%s key %q: %w", ErrInvalidSpec, ns, name, key, err)
	}
	ru.PasswordHash = bytes.Clone(hash)
	return ru, nil
}

// UserSubject is the OIDC subject of a User: its metadata.uid, which the API server assigns anew
// on every creation, so a User deleted and re-created with the same username is a different
// subject. Without a uid (the manifest loader's files) it is derived from the resource name:
// the SHA-256 of "latchkey-user:" + name, formatted like a UUID.
func UserSubject(u *v1alpha1.User) string {
	if u.UID != "" {
		return string(u.UID)
	}
	sum := sha256.Sum256([]byte("latchkey-user:" + u.Name))
	h := hex.EncodeToString(sum[:16])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// The errors of CheckPasswordHash: fixed texts, so no part of the value can leak through them.
var (
	errNotAHash      = errors.New("not a bcrypt or argon2id hash (plaintext passwords are refused)")
	errMalformedHash = errors.New("malformed bcrypt or argon2id (v=19 PHC) hash")
	errHashTooCostly = fmt.Errorf("hash parameters exceed the limits (bcrypt cost <= %d; argon2id m <= %d KiB, t <= %d, p <= %d)",
		password.MaxBcryptCost, password.MaxArgon2Memory, password.MaxArgon2Time, password.MaxArgon2Threads)
)

// CheckPasswordHash reports whether hash is a bcrypt ($2a$, $2b$, $2y$) or argon2id PHC hash
// that the server can verify: the rule is server/password's, so a User is never Ready with a hash
// its logins would refuse. Its error never contains the value; User wraps it in ErrInvalidSpec.
func CheckPasswordHash(hash []byte) error {
	switch err := password.Check(hash); {
	case err == nil:
		return nil
	case errors.Is(err, password.ErrLimits):
		return errHashTooCostly
	case errors.Is(err, password.ErrMalformed):
		return errMalformedHash
	default:
		return errNotAHash
	}
}
