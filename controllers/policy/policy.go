package policy

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
	"github.com/latchkey-dev/latchkey/controllers/convert"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Rules, the policy field each violation names.
const (
	RuleAllowedGrantTypes            = "allowedGrantTypes"
	RuleAllowedScopes                = "allowedScopes"
	RuleAllowedAudiences             = "allowedAudiences"
	RuleRedirectURIHosts             = "redirectURIHosts"
	RuleMaxLifetimes                 = "maxLifetimes"
	RuleAllowPublicClients           = "allowPublicClients"
	RuleAllowPasswordGrant           = "allowPasswordGrant"
	RuleAllowDynamicRegistration     = "allowDynamicRegistration"
	RuleAllowedAuthenticationMethods = "allowedAuthenticationMethods"
)

// Default lifetimes, in seconds, that a client without its own is held to (server/oauth2's
// defaults).
const (
	DefaultAccessTokenSeconds       = 3600
	DefaultRefreshTokenSeconds      = 30 * 24 * 3600
	DefaultIDTokenSeconds           = 3600
	DefaultAuthorizationCodeSeconds = 600
)

// Violation is one rule of one policy that a client breaks.
type Violation struct {
	// Policy is the policy's namespace/name.
	Policy string
	// Rule is the policy's field (one of the Rule constants, maxLifetimes.<kind> for lifetimes).
	Rule string
	// Value is the client's offending value.
	Value string
}

// String is the violation as a condition message or a registration error says it.
func (v Violation) String() string {
	return fmt.Sprintf("OAuthClientPolicy %s: %s does not allow %s", v.Policy, v.Rule, quote(v.Value))
}

// Message joins violations into one message, at most maxListed of them.
func Message(vs []Violation) string {
	var b strings.Builder
	for i, v := range vs {
		if i == maxListed {
			fmt.Fprintf(&b, "; and %d more", len(vs)-i)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(v.String())
	}
	return b.String()
}

// maxListed bounds the violations a message lists.
const maxListed = 5

// ErrInvalidPolicy wraps what Check finds wrong with a policy.
var ErrInvalidPolicy = errors.New("invalid OAuthClientPolicy")

// Check reports what is wrong with a policy that the CRD's schema would refuse (for manifests on
// disk, which no API server validated): patterns with a * anywhere but where allowed, unknown
// grant types or authentication methods, lifetimes out of range.
func Check(p *v1alpha1.OAuthClientPolicy) error {
	var errs []error
	for _, s := range p.Spec.AllowedScopes {
		if s == "" || strings.Contains(strings.TrimSuffix(s, "*"), "*") {
			errs = append(errs, fmt.Errorf("allowedScopes: %s: a * may only end a pattern", quote(s)))
		}
	}
	for _, a := range p.Spec.AllowedAudiences {
		if a == "" || strings.Contains(strings.TrimSuffix(a, "*"), "*") {
			errs = append(errs, fmt.Errorf("allowedAudiences: %s: a * may only end a pattern", quote(a)))
		}
	}
	for _, h := range p.Spec.RedirectURIHosts {
		if rest := strings.TrimPrefix(h, "*."); rest == "" || strings.ContainsAny(rest, "*/?#@ ") {
			errs = append(errs, fmt.Errorf("redirectURIHosts: %s: a host name, or *. and a domain", quote(h)))
		}
	}
	known := []v1alpha1.GrantType{v1alpha1.GrantTypeAuthorizationCode, v1alpha1.GrantTypeClientCredentials,
		v1alpha1.GrantTypeRefreshToken, v1alpha1.GrantTypePassword, v1alpha1.GrantTypeDeviceCode, v1alpha1.GrantTypeTokenExchange}
	for _, g := range p.Spec.AllowedGrantTypes {
		if !slices.Contains(known, g) {
			errs = append(errs, fmt.Errorf("allowedGrantTypes: unknown grant type %s", quote(string(g))))
		}
	}
	for _, m := range p.Spec.AllowedAuthenticationMethods {
		if !slices.Contains([]v1alpha1.AuthenticationMethodClass{v1alpha1.AuthClassSecret,
			v1alpha1.AuthClassServiceAccountToken, v1alpha1.AuthClassPrivateKeyJWT}, m) {
			errs = append(errs, fmt.Errorf("allowedAuthenticationMethods: unknown method %s", quote(string(m))))
		}
	}
	if l := p.Spec.MaxLifetimes; l != nil {
		for _, b := range []*int32{l.AccessToken, l.RefreshToken, l.IDToken, l.AuthorizationCode} {
			if b != nil && *b < 1 {
				errs = append(errs, errors.New("maxLifetimes: bounds must be at least 1 second"))
				break
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w %s/%s: %w", ErrInvalidPolicy, p.Namespace, p.Name, err)
	}
	return nil
}

// Evaluate returns the rules of the policies that the client breaks, in the policies' order and
// each policy's field order; none when it satisfies them all. Every policy applies (the caller
// chooses them: those of the client's namespace, and the default policy). A policy that Check
// refuses still applies as far as it can be read (a bad pattern matches nothing), so a typo never
// opens what the rest of the policy closes.
func Evaluate(oc *v1alpha1.OAuthClient, policies []v1alpha1.OAuthClientPolicy) []Violation {
	var out []Violation
	for i := range policies {
		out = append(out, evaluate(oc, &policies[i])...)
	}
	return out
}

func evaluate(oc *v1alpha1.OAuthClient, p *v1alpha1.OAuthClientPolicy) []Violation {
	name := p.Namespace + "/" + p.Name
	var out []Violation
	add := func(rule, value string) { out = append(out, Violation{Policy: name, Rule: rule, Value: value}) }
	s, ps := &oc.Spec, &p.Spec
	if ps.AllowedGrantTypes != nil {
		for _, g := range s.GrantTypes {
			if !slices.Contains(ps.AllowedGrantTypes, g) {
				add(RuleAllowedGrantTypes, string(g))
			}
		}
	}
	if ps.AllowedScopes != nil {
		for _, sc := range s.Scopes {
			if !matchesAny(ps.AllowedScopes, sc) {
				add(RuleAllowedScopes, sc)
			}
		}
	}
	if ps.AllowedAudiences != nil {
		for _, a := range s.Audiences {
			if !matchesAny(ps.AllowedAudiences, a) {
				add(RuleAllowedAudiences, a)
			}
		}
	}
	if ps.RedirectURIHosts != nil {
		for _, u := range slices.Concat(s.RedirectURIs, s.PostLogoutRedirectURIs) {
			if !hostAllowed(ps.RedirectURIHosts, u) {
				add(RuleRedirectURIHosts, u)
			}
		}
		// The server POSTs logout tokens to it: its host is bounded like a redirect URI's.
		if u := s.BackchannelLogoutURI; u != "" && !hostAllowed(ps.RedirectURIHosts, u) {
			add(RuleRedirectURIHosts, u)
		}
	}
	if l := ps.MaxLifetimes; l != nil {
		var have v1alpha1.TokenLifetimes
		if s.Lifetimes != nil {
			have = *s.Lifetimes
		}
		for _, b := range []struct {
			kind string
			max  *int32
			have *intstr.IntOrString
			dflt int32
		}{
			{"accessToken", l.AccessToken, have.AccessToken, DefaultAccessTokenSeconds},
			{"refreshToken", l.RefreshToken, have.RefreshToken, DefaultRefreshTokenSeconds},
			{"idToken", l.IDToken, have.IDToken, DefaultIDTokenSeconds},
			{"authorizationCode", l.AuthorizationCode, have.AuthorizationCode, DefaultAuthorizationCodeSeconds},
		} {
			// Seconds, as the admission policy counts them; one that does not parse is the
			// conversion's to refuse (InvalidSpec), the default here.
			d, err := convert.Lifetime(b.have)
			v := int64(d / time.Second)
			if err != nil || v == 0 {
				v = int64(b.dflt)
			}
			if b.max != nil && v > int64(*b.max) {
				add(RuleMaxLifetimes+"."+b.kind, strconv.FormatInt(v, 10)+"s")
			}
		}
	}
	public := convert.ClientType(oc) == v1alpha1.ClientTypePublic
	if ps.AllowPublicClients != nil && !*ps.AllowPublicClients && public {
		add(RuleAllowPublicClients, string(v1alpha1.ClientTypePublic))
	}
	if ps.AllowPasswordGrant != nil && !*ps.AllowPasswordGrant && slices.Contains(s.GrantTypes, v1alpha1.GrantTypePassword) {
		add(RuleAllowPasswordGrant, string(v1alpha1.GrantTypePassword))
	}
	if ps.AllowDynamicRegistration != nil && !*ps.AllowDynamicRegistration && oc.Labels[v1alpha1.LabelRegistered] == "true" {
		add(RuleAllowDynamicRegistration, v1alpha1.LabelRegistered+"=true")
	}
	if ps.AllowedAuthenticationMethods != nil && !public {
		if class := AuthClass(oc); !slices.Contains(ps.AllowedAuthenticationMethods, class) {
			add(RuleAllowedAuthenticationMethods, string(class))
		}
	}
	return out
}

// EvaluateResource returns the rules of the policies that a ProtectedResource breaks: its
// audience must match a policy's allowedAudiences, as an OAuthClient's audiences must (a
// namespace held to some audiences can neither give its clients other ones nor declare a
// resource that lets clients reach them). The other rules concern clients only.
func EvaluateResource(pr *v1alpha1.ProtectedResource, policies []v1alpha1.OAuthClientPolicy) []Violation {
	var out []Violation
	for i := range policies {
		p := &policies[i]
		if p.Spec.AllowedAudiences != nil && !matchesAny(p.Spec.AllowedAudiences, pr.Spec.Audience) {
			out = append(out, Violation{Policy: p.Namespace + "/" + p.Name, Rule: RuleAllowedAudiences, Value: pr.Spec.Audience})
		}
	}
	return out
}

// AuthClass is how a Confidential client authenticates, as a policy names it.
func AuthClass(oc *v1alpha1.OAuthClient) v1alpha1.AuthenticationMethodClass {
	switch oc.Spec.TokenEndpointAuthMethod {
	case v1alpha1.AuthMethodServiceAccountToken:
		return v1alpha1.AuthClassServiceAccountToken
	case v1alpha1.AuthMethodPrivateKeyJWT:
		return v1alpha1.AuthClassPrivateKeyJWT
	}
	return v1alpha1.AuthClassSecret
}

// matchesAny reports whether v equals a pattern or starts with a pattern's prefix before its
// final *.
func matchesAny(patterns []string, v string) bool {
	return slices.ContainsFunc(patterns, func(p string) bool {
		if prefix, ok := strings.CutSuffix(p, "*"); ok {
			return strings.HasPrefix(v, prefix)
		}
		return p == v
	})
}

// hostAllowed reports whether the redirect URI's host (its scheme when it has no host, a
// private-use scheme) matches a host pattern: equal ignoring case, or *.domain and the host ends
// in .domain. A URI that does not parse matches nothing.
func hostAllowed(patterns []string, uri string) bool {
	u, err := url.Parse(uri)
	if err != nil {
		return false
	}
	host := strings.ToLower(u.Hostname())
	if host == "" {
		host = strings.ToLower(u.Scheme)
	}
	if host == "" {
		return false
	}
	return slices.ContainsFunc(patterns, func(p string) bool {
		p = strings.ToLower(p)
		if domain, ok := strings.CutPrefix(p, "*."); ok {
			return strings.HasSuffix(host, "."+domain)
		}
		return p == host
	})
}

// maxQuoted bounds a value quoted in a message.
const maxQuoted = 256

func quote(s string) string {
	if len(s) <= maxQuoted {
		return strconv.Quote(s)
	}
	return strconv.Quote(s[:maxQuoted]) + "..."
}
