package convert

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/upstream"
)

// DefaultUpstreamScopes are the scopes requested from an upstream OIDC provider whose spec lists
// none.
var DefaultUpstreamScopes = []string{"openid", "email", "profile"}

// DefaultUpstreamClientSecretKey is the Secret key of an upstream client secret whose secretRef
// names none.
const DefaultUpstreamClientSecretKey = "client-secret"

// reservedAuthorizeParameters are set by the upstream flow itself (the CRD refuses them too).
var reservedAuthorizeParameters = []string{
	"response_type", "client_id", "redirect_uri", "scope", "state", "nonce",
	"code_challenge", "code_challenge_method", "request", "request_uri",
}

var upstreamIssuerPattern = regexp.MustCompile(`^(https://[^/?#@\s]+|http://(localhost|127\.0\.0\.1|\[::1\])(:[0-9]+)?)(/[^?#\s]*)?$`)

// UpstreamClientSecretRef returns the Secret and key of an OIDCIdentityProvider's client secret;
// ok is false when it has none (workloadIdentity).
func UpstreamClientSecretRef(p *v1alpha1.OIDCIdentityProvider) (namespace, name, key string, ok bool) {
	ref := p.Spec.Client.SecretRef
	if ref == nil {
		return "", "", "", false
	}
	key = ref.Key
	if key == "" {
		key = DefaultUpstreamClientSecretKey
	}
	return ref.Namespace, ref.Name, key, true
}

// DefaultUpstreamTokenPath is the token file of a workloadIdentity that names none (where the
// chart's upstream.workloadIdentityToken values mount it).
const DefaultUpstreamTokenPath = "/var/run/secrets/tokens/latchkey-upstream"

// UpstreamTokenPath is the token file of an upstream workload identity.
func UpstreamTokenPath(w *v1alpha1.UpstreamWorkloadIdentity) string {
	if w.TokenPath == "" {
		return DefaultUpstreamTokenPath
	}
	return w.TokenPath
}

// OIDCIdentityProvider converts an OIDCIdentityProvider and its client Secret (nil when it does
// not exist) into the registry value. Spec problems (including CEL that does not compile) wrap
// ErrInvalidSpec; a missing Secret or key wraps ErrSecretNotFound (spec.client.workloadIdentity
// needs no Secret: the server reads its token file at each use). On an error the value has only
// the name, UID and generation.
func OIDCIdentityProvider(p *v1alpha1.OIDCIdentityProvider, secret *corev1.Secret) (registry.UpstreamOIDC, error) {
	s := &p.Spec
	base := registry.UpstreamOIDC{Name: p.Name, UID: string(p.UID), Generation: p.Generation}
	u := base
	u.DisplayName = s.DisplayName
	if u.DisplayName == "" {
		u.DisplayName = p.Name
	}
	u.Issuer, u.ClientID = s.Issuer, s.Client.ClientID
	if s.CABundle != "" {
		u.CABundle = []byte(s.CABundle)
	}
	u.Scopes = slices.Clone(s.Scopes)
	if len(u.Scopes) == 0 {
		u.Scopes = slices.Clone(DefaultUpstreamScopes)
	}
	if !slices.Contains(u.Scopes, "openid") {
		u.Scopes = append([]string{"openid"}, u.Scopes...)
	}
	u.AuthorizeParameters = maps.Clone(s.AdditionalAuthorizeParameters)
	if c := s.Claims; c != nil {
		u.Claims = registry.ClaimMappings{Username: c.Username, Groups: c.Groups, Email: c.Email, EmailVerified: c.EmailVerified, Name: c.Name}
	}
	for _, r := range s.ClaimValidationRules {
		u.ClaimRules = append(u.ClaimRules, registry.ClaimRule{Expression: r.Expression, Message: r.Message})
	}
	u.AllowPolicy = s.AllowPolicy
	if problems := validateUpstreamOIDC(p, &u); len(problems) > 0 {
		return base, fmt.Errorf("%w: %s", ErrInvalidSpec, strings.Join(problems, "; "))
	}
	if w := s.Client.WorkloadIdentity; w != nil {
		u.AssertionFile = UpstreamTokenPath(w)
		return u, nil
	}
	ns, name, key, _ := UpstreamClientSecretRef(p)
	value, err := secretValue(secret, ns, name, key)
	if err != nil {
		return base, err
	}
	u.ClientSecret = string(value)
	return u, nil
}

// validateUpstreamOIDC checks what the CRD checks (manifests on disk never met it) and what it
// cannot: the CA bundle parses and the CEL compiles.
func validateUpstreamOIDC(p *v1alpha1.OIDCIdentityProvider, u *registry.UpstreamOIDC) []string {
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	s := &p.Spec
	if p.Name == "" {
		add("metadata.name is required")
	}
	if len(s.Issuer) > maxIssuerURLLength || !upstreamIssuerPattern.MatchString(s.Issuer) {
		add("issuer %s must be https (http only on a loopback host: localhost, 127.0.0.1, [::1]), without query, fragment or user information", quoteShort(s.Issuer))
	}
	if s.Client.ClientID == "" || len(s.Client.ClientID) > 512 {
		add("client.clientID must have 1 to 512 characters")
	}
	if (s.Client.SecretRef == nil) == (s.Client.WorkloadIdentity == nil) {
		add("client: set exactly one of secretRef and workloadIdentity")
	}
	if w := s.Client.WorkloadIdentity; w != nil && (len(w.TokenPath) > 1024 || (w.TokenPath != "" && !strings.HasPrefix(w.TokenPath, "/"))) {
		add("client.workloadIdentity.tokenPath must be an absolute path of at most 1024 characters")
	}
	if ref := s.Client.SecretRef; ref != nil && (ref.Namespace == "" || ref.Name == "") {
		add("client.secretRef needs a namespace and a name")
	}
	if len(s.CABundle) > maxCABundleBytes {
		add("caBundle must have at most %d bytes", maxCABundleBytes)
	} else if s.CABundle != "" {
		if err := checkCABundle([]byte(s.CABundle)); err != nil {
			add("caBundle %v", err)
		}
	}
	for k := range s.AdditionalAuthorizeParameters {
		if slices.Contains(reservedAuthorizeParameters, k) {
			add("additionalAuthorizeParameters cannot set %s", k)
		}
	}
	if len(s.DisplayName) > 64 {
		add("displayName must have at most 64 characters")
	}
	if _, err := upstream.Compile(u); err != nil {
		add("%s", strings.TrimPrefix(err.Error(), upstream.ErrInvalidMapping.Error()+": "))
	}
	return out
}
