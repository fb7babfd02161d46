package registry

import (
	"iter"
	"slices"
	"strings"
	"time"
)

// Snapshot is an immutable view of the registry. Never modify one or anything it returns.
type Snapshot struct {
	clients   cowMap[string, *Client] // by source
	byID      claimIndex[string, *Client]
	scopes    cowMap[string, *scopeEntry] // by source
	scopeName claimIndex[string, *scopeEntry]
	users     cowMap[string, *User] // by source
	userName  claimIndex[string, *User]
	userSub   claimIndex[string, *User]
	// origins counts, per CORS origin, the winning Public clients (byID) that list it: an
	// origin is allowed while its count is positive (AllowsOrigin).
	origins cowMap[string, int]
	// subjects indexes the clients bound to each workload identity; the holder is the first
	// of them that may bind (SubjectHolder).
	subjects claimIndex[subjectPair, *Client]
	issuers  cowMap[string, *WorkloadIssuer] // by name
	// upstreams are the upstream OIDC identity providers by name.
	upstreams cowMap[string, *UpstreamOIDC]
	// ldaps are the LDAP identity providers by name.
	ldaps cowMap[string, *UpstreamLDAP]
	// github are the GitHub identity providers by name.
	github cowMap[string, *UpstreamGitHub]
	// external finds the users of upstream identity providers (SetExternalUsers); nil: none.
	external ExternalUsers
	// resources are the ProtectedResources by source; resourceAud by the audience they claim.
	resources   cowMap[string, *ProtectedResource]
	resourceAud claimIndex[string, *ProtectedResource]
	// names indexes clients by nameKey of their display name and client ID
	// (WithClientNameIndex); empty and unused when nameKey is nil.
	names   claimIndex[string, *Client]
	nameKey func(string) string
}

// scopeEntry is a Scope with the source it came from (a Scope value does not hold it).
type scopeEntry struct {
	source string
	scope  Scope
}

func (e *scopeEntry) claimOrder() (time.Time, string) { return e.scope.Created, e.source }

// Counts returns the number of clients (by client ID), scopes (by name) and users (by
// username) in the snapshot.
func (s *Snapshot) Counts() (clients, scopes, users int) {
	return s.byID.holder.len(), s.scopeName.holder.len(), s.userName.holder.len()
}

// Client returns the client with the client ID.
func (s *Snapshot) Client(id string) (*Client, bool) { return s.byID.holder.get(id) }

// Clients returns every client the snapshot serves (the winner of each client ID), in no
// particular order.
func (s *Snapshot) Clients() iter.Seq[*Client] { return s.byID.holder.values() }

// Scope returns the scope with the name.
func (s *Snapshot) Scope(name string) (*Scope, bool) {
	e, ok := s.scopeName.holder.get(name)
	if !ok {
		return nil, false
	}
	return &e.scope, true
}

// User returns the user with the username.
func (s *Snapshot) User(username string) (*User, bool) { return s.userName.holder.get(username) }

// UserBySubject returns the user with the subject (the sub of its tokens, sessions and
// consents). An empty subject is never found.
func (s *Snapshot) UserBySubject(sub string) (*User, bool) {
	if sub == "" {
		return nil, false
	}
	if u, ok := s.userSub.holder.get(sub); ok {
		return u, true
	}
	if s.external != nil && IsExternalSubject(sub) {
		u, ok := s.external.ExternalUser(sub)
		if !ok {
			return nil, false
		}
		// Only while its provider is served, the same resource (UID): deleting a provider
		// cuts its users off (no token, refresh or userinfo), even with records left.
		if !s.servesProvider(u.IdentityProviderKind, u.IdentityProvider, u.IdentityProviderUID) {
			return nil, false
		}
		return u, true
	}
	return nil, false
}

// servesProvider reports whether the snapshot serves the upstream identity provider of the
// kind and name, the same resource (UID).
func (s *Snapshot) servesProvider(kind, name, uid string) bool {
	switch kind {
	case "", KindOIDC:
		p, ok := s.upstreams.get(name)
		return ok && p.UID == uid
	case KindLDAP:
		p, ok := s.ldaps.get(name)
		return ok && p.UID == uid
	case KindGitHub:
		p, ok := s.github.get(name)
		return ok && p.UID == uid
	default:
		return false
	}
}

// AllowsOrigin reports whether a Public client served in the snapshot lists the origin in its
// AllowedOrigins: one map lookup, compared byte for byte (the Origin header as sent).
func (s *Snapshot) AllowsOrigin(origin string) bool { _, ok := s.origins.get(origin); return ok }

// Scopes returns every scope, sorted by name.
func (s *Snapshot) Scopes() []*Scope {
	out := make([]*Scope, 0, s.scopeName.holder.len())
	for e := range s.scopeName.holder.values() {
		out = append(out, &e.scope)
	}
	slices.SortFunc(out, func(a, b *Scope) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// WorkloadIssuer returns the issuer with the name.
func (s *Snapshot) WorkloadIssuer(name string) (*WorkloadIssuer, bool) { return s.issuers.get(name) }

// WorkloadIssuers returns every issuer in the snapshot, in no order.
func (s *Snapshot) WorkloadIssuers() iter.Seq[*WorkloadIssuer] { return s.issuers.values() }

// SubjectHolder returns the client that holds the (issuer, subject) pair: of the clients bound
// to it that may bind (mayBind), the one that Precedes (created first, then the smaller source),
// as for client IDs.
// A client bound to a pair another holds is not authenticated by it (SubjectConflict).
func (s *Snapshot) SubjectHolder(issuer, subject string) (*Client, bool) {
	h, others, ok := s.subjects.claims(subjectPair{issuer, subject})
	if !ok {
		return nil, false
	}
	if mayBind(s, h) { // the first claimant overall: the first that may bind
		return h, true
	}
	var best *Client
	for _, c := range others {
		if mayBind(s, c) && (best == nil || Wins(c, best)) {
			best = c
		}
	}
	return best, best != nil
}

// mayBind reports whether the client may hold its workload identity: a ServiceAccount's always
// (its subject names the client's own namespace); a WorkloadIssuer subject only while the issuer
// exists and allows the client's namespace, so that a client of a namespace the issuer does not
// allow can never keep the pair from the client that may use it.
func mayBind(s *Snapshot, c *Client) bool {
	if c.WorkloadIssuer == "" {
		return true
	}
	w, ok := s.issuers.get(c.WorkloadIssuer)
	return ok && w.AllowsNamespace(c.Namespace)
}

// subjectPair is a workload identity: an issuer (a WorkloadIssuer name, or LocalIssuer) and
// a subject of it.
type subjectPair struct{ issuer, subject string }

// Wins reports whether a should serve a client ID that b claims too: the earlier creation time,
// then the smaller source key (Precedes).
func Wins(a, b *Client) bool { return Precedes(a.Created, a.Source, b.Created, b.Source) }

// Precedes is the one rule that decides every name two sources claim (a client ID, a username, a
// scope name): a, created at aCreated from source aSource, wins over b when it was created
// earlier, or at the same time from the smaller source key. The leader's status controllers use
// it too, so the resource marked Ready is the one every replica serves.
func Precedes(aCreated time.Time, aSource string, bCreated time.Time, bSource string) bool {
	if !aCreated.Equal(bCreated) {
		return aCreated.Before(bCreated)
	}
	return aSource < bSource
}
