package registry

import (
	"iter"
	"slices"
	"time"
)

// Subject token sources a ProtectedResource's token exchange policy names (ExchangeRequester).
const (
	// SubjectAccessToken is an access token Latchkey issued.
	SubjectAccessToken = "AccessToken"
	// SubjectIDToken is an ID token Latchkey issued.
	SubjectIDToken = "IDToken"
	// SubjectServiceAccountToken is a projected ServiceAccount token of the local cluster.
	SubjectServiceAccountToken = "ServiceAccountToken"
	// SubjectWorkloadIssuer is a JWT of a WorkloadIssuer.
	SubjectWorkloadIssuer = "WorkloadIssuer"
)

// ProtectedResource is a resource server declared by a ProtectedResource object: the audience
// its tokens carry, the scopes it owns, which clients may get tokens for it and which may
// exchange tokens into it (RFC 8693).
type ProtectedResource struct {
	// Source is the key of the object it came from ("namespace/name").
	Source          string
	Namespace, Name string
	// Created orders resources that claim the same audience: the earliest holds it.
	Created time.Time
	// Audience is the resource's URI, what a token's aud names and a request's resource
	// parameter selects.
	Audience string
	// Scopes the resource owns (Scope names); empty: it does not restrict scopes.
	Scopes []string
	// AllowedClients are the sources ("namespace/name") of the OAuthClients that may request
	// tokens for Audience, resolved from the object's names and label selectors.
	AllowedClients []string
	// ExchangeRequesters may exchange a token into Audience (RFC 8693).
	ExchangeRequesters []ExchangeRequester
	// Metadata completes the resource's RFC 9728 metadata document.
	Metadata ResourceMetadata

	// allowed indexes AllowedClients when there are many (a selector of a large namespace),
	// built by PutProtectedResource; nil: AllowsClient scans the list. A value read from a
	// snapshot is immutable: change a copy's AllowedClients only to Put it.
	allowed map[string]struct{}
}

// indexAllowedAbove is how many allowed clients a resource has before AllowsClient looks them
// up in a map rather than scanning the list.
const indexAllowedAbove = 32

// ResourceMetadata are the optional fields of a resource's RFC 9728 metadata.
type ResourceMetadata struct {
	// Name is resource_name, Documentation resource_documentation ("" when none).
	Name, Documentation string
	// BearerMethods is bearer_methods_supported (nil: ["header"]).
	BearerMethods []string
}

// ExchangeRequester is one client allowed to exchange tokens into a ProtectedResource.
type ExchangeRequester struct {
	// Client is the OAuthClient's source ("namespace/name").
	Client string
	// SubjectTokenSources are the kinds of subject token it may exchange (SubjectAccessToken,
	// SubjectIDToken, SubjectServiceAccountToken, SubjectWorkloadIssuer).
	SubjectTokenSources []string
	// WorkloadIssuers, when SubjectTokenSources holds SubjectWorkloadIssuer, names the
	// WorkloadIssuers whose JWTs it may exchange; empty: any.
	WorkloadIssuers []string
}

func (p *ProtectedResource) claimOrder() (time.Time, string) { return p.Created, p.Source }

// AllowsClient reports whether the client of the source may request tokens for the resource.
func (p *ProtectedResource) AllowsClient(source string) bool {
	if p.allowed != nil {
		_, ok := p.allowed[source]
		return ok
	}
	return slices.Contains(p.AllowedClients, source)
}

// ExchangeRequester returns the exchange policy of the client of the source, if it may
// exchange tokens into the resource.
func (p *ProtectedResource) ExchangeRequester(source string) (ExchangeRequester, bool) {
	for _, r := range p.ExchangeRequesters {
		if r.Client == source {
			return r, true
		}
	}
	return ExchangeRequester{}, false
}

// ProtectedResource returns the resource that holds the audience: of the objects that declare
// it, the one that Precedes (created first, then the smaller source).
func (s *Snapshot) ProtectedResource(audience string) (*ProtectedResource, bool) {
	return s.resourceAud.holder.get(audience)
}

// ProtectedResourceBySource returns the resource of the source key ("namespace/name").
func (s *Snapshot) ProtectedResourceBySource(source string) (*ProtectedResource, bool) {
	return s.resources.get(source)
}

// ProtectedResources returns every resource in the snapshot (by source), in no order.
func (s *Snapshot) ProtectedResources() iter.Seq[*ProtectedResource] {
	return s.resources.values()
}

// PutProtectedResource stores or replaces the resource of p.Source.
func (tx *Txn) PutProtectedResource(p ProtectedResource) {
	tx.DeleteProtectedResource(p.Source)
	p.allowed = nil
	if len(p.AllowedClients) > indexAllowedAbove {
		p.allowed = make(map[string]struct{}, len(p.AllowedClients))
		for _, src := range p.AllowedClients {
			p.allowed[src] = struct{}{}
		}
	}
	v := &p
	tx.resources.set(p.Source, v)
	tx.resourceAud.add(p.Audience, v)
}

// DeleteProtectedResource removes the resource of the source key, if any.
func (tx *Txn) DeleteProtectedResource(source string) {
	if prev, had := tx.s.resources.get(source); had {
		tx.resourceAud.remove(prev.Audience, prev)
		tx.resources.del(source)
	}
}

// PutProtectedResource stores or replaces the resource of p.Source.
func (r *Registry) PutProtectedResource(p ProtectedResource) {
	r.Update(func(tx *Txn) { tx.PutProtectedResource(p) })
}

// DeleteProtectedResource removes the resource of the source key, if any.
func (r *Registry) DeleteProtectedResource(source string) {
	r.Update(func(tx *Txn) { tx.DeleteProtectedResource(source) })
}
