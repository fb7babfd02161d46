package convert

import (
	"cmp"
	"fmt"
	"net"
	"regexp"
	"strings"

	"github.com/go-ldap/ldap/v3"
	corev1 "k8s.io/api/core/v1"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/upstream"
)

// The keys of an LDAPIdentityProvider's bind Secret.
const (
	LDAPBindUsernameKey = "username"
	LDAPBindPasswordKey = "password"
)

// ldapAttributePattern is an LDAP attribute description (RFC 4512: a descriptor or an OID).
var ldapAttributePattern = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9-]*|[0-9]+(\.[0-9]+)+)$`)

// LDAPBindSecretRef returns the namespace and name of an LDAPIdentityProvider's bind Secret.
func LDAPBindSecretRef(p *v1alpha1.LDAPIdentityProvider) (namespace, name string) {
	return p.Spec.Bind.SecretRef.Namespace, p.Spec.Bind.SecretRef.Name
}

// LDAPIdentityProvider converts an LDAPIdentityProvider and its bind Secret (nil when it does
// not exist) into the registry value, with the defaults of what its spec leaves empty. Spec
// problems wrap ErrInvalidSpec; a missing Secret or key wraps ErrSecretNotFound. On an error the
// value has only the name, UID and generation.
func LDAPIdentityProvider(p *v1alpha1.LDAPIdentityProvider, secret *corev1.Secret) (registry.UpstreamLDAP, error) {
	s := &p.Spec
	base := registry.UpstreamLDAP{Name: p.Name, UID: string(p.UID), Generation: p.Generation}
	u := base
	u.DisplayName = cmp.Or(s.DisplayName, p.Name)
	u.Host = s.Host
	u.StartTLS = s.TLS.Mode == v1alpha1.LDAPTLSModeStartTLS
	if s.TLS.CABundle != "" {
		u.CABundle = []byte(s.TLS.CABundle)
	}
	us := &s.UserSearch
	u.UserBase = us.Base
	u.UserFilter = cmp.Or(us.Filter, upstream.DefaultLDAPUserFilter)
	u.UsernameAttribute = cmp.Or(us.UsernameAttribute, upstream.DefaultLDAPUsernameAttribute)
	u.UIDAttribute = cmp.Or(us.UIDAttribute, upstream.DefaultLDAPUIDAttribute)
	u.EmailAttribute = cmp.Or(us.EmailAttribute, upstream.DefaultLDAPEmailAttribute)
	u.NameAttribute = cmp.Or(us.NameAttribute, upstream.DefaultLDAPNameAttribute)
	if g := s.GroupSearch; g != nil {
		u.GroupBase = g.Base
		u.GroupFilter = cmp.Or(g.Filter, upstream.DefaultLDAPGroupFilter)
		u.GroupNameAttribute = cmp.Or(g.NameAttribute, upstream.DefaultLDAPGroupName)
	}
	if problems := validateLDAP(p, &u); len(problems) > 0 {
		return base, fmt.Errorf("%w: %s", ErrInvalidSpec, strings.Join(problems, "; "))
	}
	ns, name := LDAPBindSecretRef(p)
	dn, err := secretValue(secret, ns, name, LDAPBindUsernameKey)
	if err != nil {
		return base, err
	}
	pw, err := secretValue(secret, ns, name, LDAPBindPasswordKey)
	if err != nil {
		return base, err
	}
	u.BindDN, u.BindPassword = string(dn), string(pw)
	return u, nil
}

// validateLDAP checks what the CRD checks (manifests on disk never met it) and what it cannot:
// the filters parse (with a username and a DN put in), the DNs parse, the CA bundle parses.
func validateLDAP(p *v1alpha1.LDAPIdentityProvider, u *registry.UpstreamLDAP) []string {
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	s := &p.Spec
	if p.Name == "" {
		add("metadata.name is required")
	}
	if host, port, err := net.SplitHostPort(s.Host); err != nil || host == "" || port == "" || len(s.Host) > 512 {
		add("host %s must be host:port", quoteShort(s.Host))
	}
	if s.TLS.Mode != "" && s.TLS.Mode != v1alpha1.LDAPTLSModeTLS && s.TLS.Mode != v1alpha1.LDAPTLSModeStartTLS {
		add("tls.mode must be TLS or StartTLS")
	}
	if len(s.TLS.CABundle) > maxCABundleBytes {
		add("tls.caBundle must have at most %d bytes", maxCABundleBytes)
	} else if s.TLS.CABundle != "" {
		if err := checkCABundle([]byte(s.TLS.CABundle)); err != nil {
			add("tls.caBundle %v", err)
		}
	}
	if ref := s.Bind.SecretRef; ref.Namespace == "" || ref.Name == "" {
		add("bind.secretRef needs a namespace and a name")
	}
	checkDN := func(field, dn string) {
		if _, err := ldap.ParseDN(dn); err != nil || dn == "" || len(dn) > 1024 {
			add("%s %s is not a DN", field, quoteShort(dn))
		}
	}
	checkFilter := func(field, filter string) {
		if len(filter) > 1024 || !strings.Contains(filter, "{") {
			add("%s must contain the {} placeholder and have at most 1024 characters", field)
			return
		}
		if _, err := ldap.CompileFilter(upstream.UserFilter(filter, "user", "cn=user,dc=example")); err != nil {
			add("%s %s is not an LDAP filter: %v", field, quoteShort(filter), err)
		}
	}
	checkDN("userSearch.base", u.UserBase)
	if !strings.Contains(u.UserFilter, "{}") {
		add("userSearch.filter must contain the {} placeholder of the username")
	}
	checkFilter("userSearch.filter", u.UserFilter)
	for field, a := range map[string]string{
		"userSearch.usernameAttribute": u.UsernameAttribute, "userSearch.uidAttribute": u.UIDAttribute,
		"userSearch.emailAttribute": u.EmailAttribute, "userSearch.nameAttribute": u.NameAttribute,
	} {
		if !ldapAttributePattern.MatchString(a) || len(a) > 128 {
			add("%s %s is not an attribute name", field, quoteShort(a))
		}
	}
	if s.GroupSearch != nil {
		checkDN("groupSearch.base", u.GroupBase)
		checkFilter("groupSearch.filter", u.GroupFilter)
		if !ldapAttributePattern.MatchString(u.GroupNameAttribute) || len(u.GroupNameAttribute) > 128 {
			add("groupSearch.nameAttribute %s is not an attribute name", quoteShort(u.GroupNameAttribute))
		}
	}
	if len(s.DisplayName) > 64 {
		add("displayName must have at most 64 characters")
	}
	return out
}
