package convert

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
	"github.com/latchkey-dev/latchkey/server/assertion"
	"github.com/latchkey-dev/latchkey/server/registry"
)

// Defaults of a WorkloadIssuer.
const (
	// DefaultIssuerRefreshPeriod is how often an issuer's keys are fetched again when its spec
	// says nothing.
	DefaultIssuerRefreshPeriod = assertion.DefaultRefreshPeriod
)

// The CRD's bounds of a WorkloadIssuer (api/v1alpha1 markers) that manifests on disk never met.
const (
	minIssuerURLLength        = 9
	maxIssuerURLLength        = 2048
	maxCABundleBytes          = 65536
	maxIssuerAudiences        = 8
	maxIssuerAudienceLength   = 512
	maxIssuerNamespaces       = 256
	maxNamespaceLength        = 63
	maxSecretNameLength       = 253
	minIssuerRefreshPeriod    = time.Minute
	maxIssuerRefreshPeriod    = 24 * time.Hour
	caBundleCertificateType   = "CERTIFICATE"
	workloadSubjectKeyJoinSep = "/"
)

var issuerURLPattern = regexp.MustCompile(`^https://[^/?#@\s]+(/[^?#\s]*)?$`)

// IssuerKeySecretRef returns the Secret and key holding a WorkloadIssuer's JWK set
// (spec.jwksSecretRef; the key defaults to jwks.json); ok is false when the issuer has none.
func IssuerKeySecretRef(wi *v1alpha1.WorkloadIssuer) (namespace, name, key string, ok bool) {
	ref := wi.Spec.JWKSSecretRef
	if ref == nil {
		return "", "", "", false
	}
	key = ref.Key
	if key == "" {
		key = JWKSKey
	}
	return ref.Namespace, ref.Name, key, true
}

// IssuerRefreshPeriod returns spec.refreshPeriod, or DefaultIssuerRefreshPeriod.
func IssuerRefreshPeriod(wi *v1alpha1.WorkloadIssuer) time.Duration {
	if d := wi.Spec.RefreshPeriod; d != nil && d.Duration > 0 {
		return d.Duration
	}
	return DefaultIssuerRefreshPeriod
}

// WorkloadIssuer converts a WorkloadIssuer and the Secret of its jwksSecretRef (nil when it has
// none or it does not exist) into the registry value. It checks again what the CRD checks and
// what CEL cannot: the claim rules compile, the CA bundle holds only PEM certificates that
// parse. Spec problems wrap ErrInvalidSpec. A key Secret (or its key) that is missing, or whose
// value is not a JWK set of public keys, wraps ErrSecretNotFound; the value returned then has
// only the name and generation, so that it can never be served with keys from elsewhere
// (discovery) by mistake.
func WorkloadIssuer(wi *v1alpha1.WorkloadIssuer, keySecret *corev1.Secret) (registry.WorkloadIssuer, error) {
	rules, problems := validateWorkloadIssuer(wi)
	if len(problems) > 0 {
		return registry.WorkloadIssuer{}, fmt.Errorf("%w: %s", ErrInvalidSpec, strings.Join(problems, "; "))
	}
	s := &wi.Spec
	w := registry.WorkloadIssuer{
		Name:              wi.Name,
		Generation:        wi.Generation,
		Issuer:            s.Issuer,
		JWKSURI:           s.JWKSURI,
		Audiences:         slices.Clone(s.Audiences),
		AllowedNamespaces: slices.Clone(s.AllowedNamespaces),
		ClaimRules:        rules,
		RefreshPeriod:     IssuerRefreshPeriod(wi),
	}
	if s.CABundle != "" {
		w.CABundle = []byte(s.CABundle)
	}
	if d := s.MaxAssertionLifetime; d != nil {
		w.MaxAssertionLifetime = d.Duration
	}
	ns, name, key, ok := IssuerKeySecretRef(wi)
	if !ok {
		return w, nil
	}
	unusable := registry.WorkloadIssuer{Name: wi.Name, Generation: wi.Generation}
	value, err := secretValue(keySecret, ns, name, key)
	if err != nil {
		return unusable, err
	}
	keys, err := assertion.ParseJWKS(value)
	if err != nil {
		return unusable, fmt.Errorf("%w: Secret %s/%s key %q does not hold a JWK set of public keys: %v",
			ErrSecretNotFound, ns, name, key, err) //nolint:errorlint // one sentinel: the Secret is unusable
	}
	w.StaticKeys = keys
	return w, nil
}

// validateWorkloadIssuer returns the issuer's claim rules and what is wrong with its spec.
func validateWorkloadIssuer(wi *v1alpha1.WorkloadIssuer) ([]registry.ClaimRule, []string) {
	var p []string
	add := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }
	s := &wi.Spec
	if wi.Name == "" {
		add("metadata.name is required")
	}
	if len(s.Issuer) < minIssuerURLLength || len(s.Issuer) > maxIssuerURLLength || !issuerURLPattern.MatchString(s.Issuer) {
		add("issuer %s must be an https URL without query, fragment or user information, of at most %d bytes",
			quoteShort(s.Issuer), maxIssuerURLLength)
	}
	if s.JWKSURI != "" && (len(s.JWKSURI) > maxIssuerURLLength || !jwksURIPattern.MatchString(s.JWKSURI)) {
		add("jwksURI %s must be an https URL", quoteShort(s.JWKSURI))
	}
	if s.JWKSURI != "" && s.JWKSSecretRef != nil {
		add("keys come from one place: jwksURI, jwksSecretRef, or (neither) the issuer's OIDC discovery")
	}
	if ref := s.JWKSSecretRef; ref != nil {
		if ref.Namespace == "" || len(ref.Namespace) > maxNamespaceLength || ref.Name == "" || len(ref.Name) > maxSecretNameLength ||
			len(ref.Key) > maxSecretNameLength {
			add("jwksSecretRef needs a namespace (at most %d characters) and a name (at most %d)", maxNamespaceLength, maxSecretNameLength)
		}
	}
	if len(s.CABundle) > maxCABundleBytes {
		add("caBundle must have at most %d bytes", maxCABundleBytes)
	} else if s.CABundle != "" {
		if err := checkCABundle([]byte(s.CABundle)); err != nil {
			add("caBundle %v", err)
		}
	}
	p = append(p, checkList("audiences", s.Audiences, maxIssuerAudiences, maxIssuerAudienceLength)...)
	p = append(p, checkList("allowedNamespaces", s.AllowedNamespaces, maxIssuerNamespaces, maxNamespaceLength)...)
	if d := s.MaxAssertionLifetime; d != nil && (d.Duration <= 0 || d.Duration > maxAssertionLifetimeLimit) {
		add("maxAssertionLifetime must be more than 0s and at most 24h")
	}
	if d := s.RefreshPeriod; d != nil && (d.Duration < minIssuerRefreshPeriod || d.Duration > maxIssuerRefreshPeriod) {
		add("refreshPeriod must be between 1m and 24h")
	}
	rules := make([]registry.ClaimRule, 0, len(s.ClaimValidationRules))
	compile := make([]assertion.ClaimRule, 0, len(s.ClaimValidationRules))
	for _, r := range s.ClaimValidationRules {
		rules = append(rules, registry.ClaimRule{Expression: r.Expression, Message: r.Message})
		compile = append(compile, assertion.ClaimRule{Expression: r.Expression, Message: r.Message})
	}
	if _, err := assertion.CompileClaimRules(compile); err != nil {
		add("claimValidationRules: %s", strings.TrimPrefix(err.Error(), assertion.ErrInvalidRule.Error()+": "))
	}
	return rules, p
}

// checkList checks a list the CRD declares as a set of 1 to maxItems non-empty strings of at most
// maxLength bytes.
func checkList(field string, items []string, maxItems, maxLength int) []string {
	var p []string
	if len(items) == 0 || len(items) > maxItems {
		p = append(p, fmt.Sprintf("%s must list 1 to %d entries", field, maxItems))
	}
	for i, v := range items {
		switch {
		case v == "" || len(v) > maxLength:
			p = append(p, fmt.Sprintf("%s[%d] must have 1 to %d characters", field, i, maxLength))
		case slices.Contains(items[:i], v):
			p = append(p, fmt.Sprintf("%s lists %s twice", field, quoteShort(v)))
		}
	}
	return p
}

// checkCABundle checks that a CA bundle holds at least one PEM certificate and only PEM blocks of
// certificates that parse (text around the blocks, such as the comments of system bundles, is
// ignored, as TLS clients ignore it).
func checkCABundle(data []byte) error {
	n := 0
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if b.Type != caBundleCertificateType {
			return fmt.Errorf("holds a PEM block of type %s; only CERTIFICATE blocks belong in a CA bundle", quoteShort(b.Type))
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			return fmt.Errorf("certificate %d does not parse: %w", n, err)
		}
		n++
	}
	if n == 0 {
		return errors.New("holds no PEM certificate")
	}
	return nil
}

// WorkloadSubjectKey returns the workload identity (issuer, subject) an OAuthClient binds to,
// as registry.Client.WorkloadSubjectKey gives it for the client's registry value: the
// WorkloadIssuer's name and spec.workloadIdentity.subject, or registry.LocalIssuer and the
// subject of spec.serviceAccount's tokens; ok is false for a client bound to none.
func WorkloadSubjectKey(oc *v1alpha1.OAuthClient) (issuer, subject string, ok bool) {
	s := &oc.Spec
	switch {
	case s.TokenEndpointAuthMethod != v1alpha1.AuthMethodServiceAccountToken || ClientType(oc) != v1alpha1.ClientTypeConfidential:
		return "", "", false
	case s.ServiceAccount != nil:
		return registry.LocalIssuer, registry.ServiceAccountSubject(oc.Namespace, s.ServiceAccount.Name), true
	case s.WorkloadIdentity != nil:
		return s.WorkloadIdentity.IssuerRef.Name, s.WorkloadIdentity.Subject, true
	}
	return "", "", false
}

// WorkloadSubjectIndexKey is one string for a workload identity (issuer, subject), for a field
// index: issuer names (resource names) never contain "/".
func WorkloadSubjectIndexKey(issuer, subject string) string {
	return issuer + workloadSubjectKeyJoinSep + subject
}

// AllowsNamespace reports whether a WorkloadIssuer lets OAuthClients of the namespace bind to it
// (spec.allowedNamespaces; "*" allows all): registry.WorkloadIssuer.AllowsNamespace's rule.
func AllowsNamespace(wi *v1alpha1.WorkloadIssuer, namespace string) bool {
	return (&registry.WorkloadIssuer{AllowedNamespaces: wi.Spec.AllowedNamespaces}).AllowsNamespace(namespace)
}
