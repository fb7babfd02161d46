package convert

import (
	"fmt"
	"net/url"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/registry"
)

// The CRD's bounds of a ProtectedResource (api/v1alpha1 markers) that manifests on disk never
// met.
const (
	maxResourceScopes     = 64
	maxResourceClients    = 256
	maxResourceRequesters = 256
	maxRequesterIssuers   = 16
	maxResourceNameLength = 256
	maxResourceDocLength  = 2048
	defaultBearerMethod   = "header"
)

// bearerMethods are the RFC 9728 bearer_methods_supported values (RFC 6750 2).
var bearerMethods = []string{"header", "body", "query"} //nolint:gochecknoglobals // constant list

// ClientSelector returns the sources ("namespace/name") of the OAuthClients of the namespace
// whose labels match the selector: what a ProtectedResource's allowedClientSelector resolves
// against (the manager's cache in a cluster, the folder's clients in the embedded mode).
type ClientSelector func(namespace string, selector labels.Selector) []string

// ClientRefSource returns the source key of a client reference; its namespace defaults to
// the referring object's.
func ClientRefSource(namespace string, ref v1alpha1.ClientReference) string {
	if ref.Namespace != "" {
		namespace = ref.Namespace
	}
	return SourceKey(namespace, ref.Name)
}

// ResourceSelector returns the selector of a ProtectedResource's allowedClientSelector; ok is
// false when it has none. An invalid selector is ErrInvalidSpec.
func ResourceSelector(pr *v1alpha1.ProtectedResource) (sel labels.Selector, ok bool, err error) {
	cs := pr.Spec.AllowedClientSelector
	if cs == nil {
		return nil, false, nil
	}
	ls := &metav1.LabelSelector{MatchLabels: cs.MatchLabels}
	for _, r := range cs.MatchExpressions {
		ls.MatchExpressions = append(ls.MatchExpressions, metav1.LabelSelectorRequirement{
			Key: r.Key, Operator: metav1.LabelSelectorOperator(r.Operator), Values: r.Values,
		})
	}
	sel, err = metav1.LabelSelectorAsSelector(ls)
	if err != nil {
		return nil, false, fmt.Errorf("%w: allowedClientSelector: %w", ErrInvalidSpec, err)
	}
	return sel, true, nil
}

// ProtectedResource converts a ProtectedResource into the registry value. Its allowed clients
// are the clients it names (whether they exist or not: one created later under that name is
// allowed) and those selected resolves for its selector in its namespace, sorted and without
// repeats. It checks again what the CRD checks (a manifest on disk met no API server): the
// audience is a resource value the server accepts (oauth2.CheckResource), scope names are
// scope tokens, bounds, subject token sources and bearer methods are known values. Spec
// problems wrap ErrInvalidSpec.
func ProtectedResource(pr *v1alpha1.ProtectedResource, selected ClientSelector) (registry.ProtectedResource, error) {
	if problems := validateProtectedResource(pr); len(problems) > 0 {
		return registry.ProtectedResource{}, fmt.Errorf("%w: %s", ErrInvalidSpec, strings.Join(problems, "; "))
	}
	s := &pr.Spec
	p := registry.ProtectedResource{
		Source: SourceKey(pr.Namespace, pr.Name), Namespace: pr.Namespace, Name: pr.Name,
		Created: pr.CreationTimestamp.Time, Audience: s.Audience, Scopes: slices.Clone(s.Scopes),
	}
	for _, ref := range s.AllowedClients {
		p.AllowedClients = append(p.AllowedClients, ClientRefSource(pr.Namespace, ref))
	}
	sel, ok, err := ResourceSelector(pr)
	if err != nil {
		return registry.ProtectedResource{}, err
	}
	if ok && selected != nil {
		p.AllowedClients = append(p.AllowedClients, selected(pr.Namespace, sel)...)
	}
	slices.Sort(p.AllowedClients)
	p.AllowedClients = slices.Compact(p.AllowedClients)
	if te := s.TokenExchange; te != nil {
		for _, r := range te.AllowedRequesters {
			er := registry.ExchangeRequester{Client: ClientRefSource(pr.Namespace, r.Client),
				WorkloadIssuers: slices.Clone(r.WorkloadIssuers)}
			for _, src := range r.SubjectTokenSources {
				er.SubjectTokenSources = append(er.SubjectTokenSources, string(src))
			}
			p.ExchangeRequesters = append(p.ExchangeRequesters, er)
		}
	}
	if m := s.Metadata; m != nil {
		p.Metadata = registry.ResourceMetadata{Name: m.ResourceName, Documentation: m.ResourceDocumentation,
			BearerMethods: slices.Clone(m.BearerMethodsSupported)}
	}
	if len(p.Metadata.BearerMethods) == 0 {
		p.Metadata.BearerMethods = []string{defaultBearerMethod}
	}
	return p, nil
}

// validateProtectedResource returns what the CRD's schema would refuse of a ProtectedResource.
func validateProtectedResource(pr *v1alpha1.ProtectedResource) []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	s := &pr.Spec
	if s.Audience == "" {
		add("audience is required")
	} else if err := oauth2.CheckResource(s.Audience); err != nil {
		add("audience %s: must be an absolute URI without a fragment, at most %d bytes", quoteShort(s.Audience), oauth2.MaxResourceLength)
	}
	if len(s.Scopes) > maxResourceScopes {
		add("at most %d scopes", maxResourceScopes)
	}
	for _, sc := range s.Scopes {
		if !validScopeName(sc) {
			add("scope %s is not a scope token of at most 128 characters", quoteShort(sc))
		}
	}
	if len(s.AllowedClients) > maxResourceClients {
		add("at most %d allowedClients", maxResourceClients)
	}
	for _, ref := range s.AllowedClients {
		problems = append(problems, checkClientRef("allowedClients", ref)...)
	}
	if te := s.TokenExchange; te != nil {
		if len(te.AllowedRequesters) > maxResourceRequesters {
			add("at most %d tokenExchange.allowedRequesters", maxResourceRequesters)
		}
		for _, r := range te.AllowedRequesters {
			problems = append(problems, checkClientRef("tokenExchange.allowedRequesters.client", r.Client)...)
			if len(r.SubjectTokenSources) == 0 {
				add("tokenExchange.allowedRequesters of %s: subjectTokenSources needs at least one", r.Client.Name)
			}
			for _, src := range r.SubjectTokenSources {
				switch src {
				case v1alpha1.SubjectTokenAccessToken, v1alpha1.SubjectTokenIDToken,
					v1alpha1.SubjectTokenServiceAccountToken, v1alpha1.SubjectTokenWorkloadIssuer:
				default:
					add("subjectTokenSources: unknown source %s", quoteShort(string(src)))
				}
			}
			if len(r.WorkloadIssuers) > maxRequesterIssuers {
				add("at most %d workloadIssuers", maxRequesterIssuers)
			}
			if len(r.WorkloadIssuers) > 0 && !slices.Contains(r.SubjectTokenSources, v1alpha1.SubjectTokenWorkloadIssuer) {
				add("workloadIssuers needs WorkloadIssuer among subjectTokenSources")
			}
		}
	}
	if m := s.Metadata; m != nil {
		if len(m.ResourceName) > maxResourceNameLength {
			add("metadata.resourceName is longer than %d bytes", maxResourceNameLength)
		}
		if d := m.ResourceDocumentation; d != "" {
			u, err := url.Parse(d)
			if err != nil || u.Scheme != "https" || u.Host == "" || u.Fragment != "" || len(d) > maxResourceDocLength {
				add("metadata.resourceDocumentation %s: must be an https URL without a fragment", quoteShort(d))
			}
		}
		for _, b := range m.BearerMethodsSupported {
			if !slices.Contains(bearerMethods, b) {
				add("metadata.bearerMethodsSupported: unknown method %s (header, body, query)", quoteShort(b))
			}
		}
	}
	return problems
}

// checkClientRef returns what is wrong with a client reference of the field: the name must be
// an object name (DNS subdomain), the namespace, when set, a namespace name (DNS label).
func checkClientRef(field string, ref v1alpha1.ClientReference) []string {
	var problems []string
	if errs := validation.IsDNS1123Subdomain(ref.Name); len(errs) > 0 {
		problems = append(problems, fmt.Sprintf("%s: name %s: %s", field, quoteShort(ref.Name), strings.Join(errs, ", ")))
	}
	if ref.Namespace != "" {
		if errs := validation.IsDNS1123Label(ref.Namespace); len(errs) > 0 {
			problems = append(problems, fmt.Sprintf("%s: namespace %s: %s", field, quoteShort(ref.Namespace), strings.Join(errs, ", ")))
		}
	}
	return problems
}

// ResourceClientSources returns the sources of the OAuthClients a ProtectedResource names
// (allowedClients and token exchange requesters), sorted, without repeats: what its status
// checks the existence of.
func ResourceClientSources(pr *v1alpha1.ProtectedResource) []string {
	var out []string
	for _, ref := range pr.Spec.AllowedClients {
		out = append(out, ClientRefSource(pr.Namespace, ref))
	}
	if te := pr.Spec.TokenExchange; te != nil {
		for _, r := range te.AllowedRequesters {
			out = append(out, ClientRefSource(pr.Namespace, r.Client))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
