package convert

import (
	"encoding/json"
	"fmt"
	"regexp"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
	"github.com/latchkey-dev/latchkey/server/assertion"
	"github.com/latchkey-dev/latchkey/server/registry"
)

// Defaults of the key Secret of a private_key_jwt client.
const (
	// KeySecretSuffix is appended to the OAuthClient's name to name the Secret of its generated
	// key pair (keyPolicy Generate without jwksSecretRef).
	KeySecretSuffix = "-oauth-client-key"
	// JWKSKey is the default key of the JWK set inside a key Secret (jwksSecretRef, generated).
	JWKSKey = "jwks.json"
)

// Bounds of the assertion methods' settings (the CRD's, for manifests on disk).
const (
	// DefaultMaxAssertionLifetime is the longest a client assertion may live (exp - iat) when
	// the client says nothing.
	DefaultMaxAssertionLifetime = time.Hour
	maxAssertionLifetimeLimit   = 24 * time.Hour
	maxGracePeriod              = 30 * 24 * time.Hour
	maxWorkloadSubjectLength    = 1024
	maxInlineKeys               = 16
)

var (
	serviceAccountName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	jwksURIPattern     = regexp.MustCompile(`^https://[^/?#@\s]+(/[^#\s]*)?$`)
)

// KeySecretRef returns the Secret (in the client's namespace) and key holding a private_key_jwt
// client's JWK set: spec.jwksSecretRef, else for keyPolicy Generate <name>-oauth-client-key;
// the key defaults to jwks.json. ok is false when the client reads no key Secret.
func KeySecretRef(oc *v1alpha1.OAuthClient) (name, key string, ok bool) {
	if oc.Spec.TokenEndpointAuthMethod != v1alpha1.AuthMethodPrivateKeyJWT {
		return "", "", false
	}
	name, key = oc.Name+KeySecretSuffix, JWKSKey
	if ref := oc.Spec.JWKSSecretRef; ref != nil {
		name = ref.Name
		if ref.Key != "" {
			key = ref.Key
		}
		return name, key, true
	}
	return name, key, oc.Spec.KeyPolicy == v1alpha1.KeyPolicyGenerate
}

// UsesClientSecret reports whether a client authenticates with a client secret (a Confidential
// client of a client_secret method, or of none declared).
func UsesClientSecret(oc *v1alpha1.OAuthClient) bool {
	if ClientType(oc) != v1alpha1.ClientTypeConfidential {
		return false
	}
	switch oc.Spec.TokenEndpointAuthMethod {
	case v1alpha1.AuthMethodServiceAccountToken, v1alpha1.AuthMethodPrivateKeyJWT:
		return false
	}
	return true
}

// SecretNames returns the Secrets (in the client's namespace) the client reads: its client
// secret's, its rotation state's and its key set's, as it uses them.
func SecretNames(oc *v1alpha1.OAuthClient) []string {
	var out []string
	if UsesClientSecret(oc) {
		name, _ := SecretRef(oc)
		out = append(out, name)
	}
	if oc.Spec.SecretRotation != nil {
		out = append(out, RotationSecretName(oc))
	}
	if name, _, ok := KeySecretRef(oc); ok {
		out = append(out, name)
	}
	return out
}

// MaxAssertionLifetime returns spec.maxAssertionLifetime, or the default of one hour.
func MaxAssertionLifetime(oc *v1alpha1.OAuthClient) time.Duration {
	if d := oc.Spec.MaxAssertionLifetime; d != nil && d.Duration > 0 {
		return d.Duration
	}
	return DefaultMaxAssertionLifetime
}

// GracePeriod returns spec.secretRotation.gracePeriod; zero when absent.
func GracePeriod(oc *v1alpha1.OAuthClient) time.Duration {
	if r := oc.Spec.SecretRotation; r != nil && r.GracePeriod != nil {
		return r.GracePeriod.Duration
	}
	return 0
}

// validateAssertionAuth checks again what the CRD's rules check of the assertion methods and
// the secret rotation (manifests on disk never met them).
func validateAssertionAuth(oc *v1alpha1.OAuthClient) []string {
	var p []string
	add := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }
	s := &oc.Spec
	m := s.TokenEndpointAuthMethod
	assertionMethod := m == v1alpha1.AuthMethodServiceAccountToken || m == v1alpha1.AuthMethodPrivateKeyJWT
	if m == v1alpha1.AuthMethodServiceAccountToken && (s.ServiceAccount == nil) == (s.WorkloadIdentity == nil) {
		add("tokenEndpointAuthMethod service_account_token needs exactly one of serviceAccount and workloadIdentity")
	}
	if (s.ServiceAccount != nil || s.WorkloadIdentity != nil) && m != v1alpha1.AuthMethodServiceAccountToken {
		add("serviceAccount and workloadIdentity need tokenEndpointAuthMethod service_account_token")
	}
	if assertionMethod && (s.SecretRef != nil || s.SecretPolicy != "") {
		add("a client that authenticates with an assertion (service_account_token, private_key_jwt) has no client secret: remove secretRef and secretPolicy")
	}
	if sa := s.ServiceAccount; sa != nil && (len(sa.Name) > 253 || !serviceAccountName.MatchString(sa.Name)) {
		add("serviceAccount.name %s is not a ServiceAccount name", quoteShort(sa.Name))
	}
	if w := s.WorkloadIdentity; w != nil {
		if w.IssuerRef.Name == "" || len(w.IssuerRef.Name) > 253 {
			add("workloadIdentity.issuerRef.name must have 1 to 253 characters")
		}
		if w.Subject == "" || len(w.Subject) > maxWorkloadSubjectLength {
			add("workloadIdentity.subject must have 1 to %d characters", maxWorkloadSubjectLength)
		}
	}
	keySources := 0
	for _, has := range []bool{s.JWKS != nil, s.JWKSURI != "", s.JWKSSecretRef != nil || s.KeyPolicy == v1alpha1.KeyPolicyGenerate} {
		if has {
			keySources++
		}
	}
	if m == v1alpha1.AuthMethodPrivateKeyJWT && keySources != 1 {
		add("tokenEndpointAuthMethod private_key_jwt needs exactly one source of public keys: jwks, jwksURI, jwksSecretRef, or keyPolicy Generate")
	}
	if (keySources > 0 || s.KeyPolicy != "") && m != v1alpha1.AuthMethodPrivateKeyJWT {
		add("jwks, jwksURI, jwksSecretRef and keyPolicy need tokenEndpointAuthMethod private_key_jwt")
	}
	switch s.KeyPolicy {
	case "", v1alpha1.KeyPolicyGenerate, v1alpha1.KeyPolicyExternal:
	default:
		add("keyPolicy %q must be Generate or External", s.KeyPolicy)
	}
	if s.JWKSURI != "" && (len(s.JWKSURI) > 2048 || !jwksURIPattern.MatchString(s.JWKSURI)) {
		add("jwksURI %s must be an https URL", quoteShort(s.JWKSURI))
	}
	if s.JWKS != nil {
		if _, err := inlineKeys(s.JWKS); err != nil {
			add("jwks: %v", err)
		}
	}
	if d := s.MaxAssertionLifetime; d != nil {
		if !assertionMethod {
			add("maxAssertionLifetime is for the assertion methods (service_account_token, private_key_jwt)")
		}
		if d.Duration <= 0 || d.Duration > maxAssertionLifetimeLimit {
			add("maxAssertionLifetime must be more than 0s and at most 24h")
		}
	}
	if r := s.SecretRotation; r != nil {
		if assertionMethod && (m != v1alpha1.AuthMethodPrivateKeyJWT || s.KeyPolicy != v1alpha1.KeyPolicyGenerate) {
			add("secretRotation is for client secrets and keyPolicy Generate key pairs")
		}
		if g := r.GracePeriod; g != nil && (g.Duration < 0 || g.Duration > maxGracePeriod) {
			add("secretRotation.gracePeriod must be between 0s and 720h")
		}
	}
	return p
}

// assertionClient completes a client that authenticates with a client assertion.
func assertionClient(oc *v1alpha1.OAuthClient, c registry.Client, in ClientInputs) (registry.Client, error) {
	c.MaxAssertionLifetime = MaxAssertionLifetime(oc)
	if l := oc.Spec.Lifetimes; l != nil {
		c.AccessTokenOutlivesAssertion = l.AccessTokenOutlivesAssertion
	}
	s := &oc.Spec
	switch {
	case s.ServiceAccount != nil:
		c.ServiceAccount = s.ServiceAccount.Name
		return c, nil
	case s.WorkloadIdentity != nil:
		c.WorkloadIssuer, c.WorkloadSubject = s.WorkloadIdentity.IssuerRef.Name, s.WorkloadIdentity.Subject
		return c, nil
	case s.JWKSURI != "":
		c.JWKSURI = s.JWKSURI
		return c, nil
	case s.JWKS != nil:
		keys, err := inlineKeys(s.JWKS)
		if err != nil { // validateClient refused it already
			return registry.Client{}, fmt.Errorf("%w: jwks: %w", ErrInvalidSpec, err)
		}
		c.PublicKeys = keys
		return c, nil
	}
	name, key, _ := KeySecretRef(oc)
	value, err := secretValue(in.Keys, oc.Namespace, name, key)
	if err != nil {
		return c, err
	}
	keys, err := assertion.ParseJWKS(value)
	if err != nil {
		return c, fmt.Errorf("%w: Secret %s/%s key %q does not hold a JWK set of public keys: %w",
			ErrSecretNotFound, oc.Namespace, name, key, err)
	}
	c.PublicKeys = applyKeyRotation(oc, keys, in)
	return c, nil
}

// inlineKeys converts spec.jwks into the keys it declares: public RSA, EC or OKP keys only.
func inlineKeys(set *v1alpha1.JSONWebKeySet) ([]jose.JSONWebKey, error) {
	if len(set.Keys) == 0 || len(set.Keys) > maxInlineKeys {
		return nil, fmt.Errorf("must hold 1 to %d keys", maxInlineKeys)
	}
	data, err := json.Marshal(set)
	if err != nil {
		return nil, err
	}
	return assertion.ParseJWKS(data)
}
