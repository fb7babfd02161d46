package registry

import (
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// WorkloadIssuer is an issuer of workload identity tokens whose tokens authenticate the clients
// bound to its subjects (Client.WorkloadIssuer, WorkloadSubject).
type WorkloadIssuer struct {
	// Name is the resource's name, what clients refer to.
	Name string
	// Generation changes whenever the value does, so a verifier can tell when to rebuild
	// what it derived from it (key sources, compiled rules).
	Generation int64
	// Issuer is the exact iss claim.
	Issuer string
	// JWKSURI serves the keys; empty with no StaticKeys: OIDC discovery at Issuer.
	JWKSURI string
	// StaticKeys are the keys of a JWK set from a Secret; when set, nothing is fetched.
	StaticKeys []jose.JSONWebKey
	// CABundle (PEM) are the only roots trusted for discovery and JWKS; empty: the system's.
	CABundle []byte
	// Audiences: a token's aud must contain one.
	Audiences []string
	// AllowedNamespaces whose clients may bind to the issuer; "*" allows all.
	AllowedNamespaces []string
	// ClaimRules are CEL expressions over the claims that must all be true.
	ClaimRules []ClaimRule
	// MaxAssertionLifetime bounds exp - iat; zero means 1 h.
	MaxAssertionLifetime time.Duration
	// RefreshPeriod is how often keys are fetched again; zero means 1 h.
	RefreshPeriod time.Duration
}

// ClaimRule is one CEL claim validation rule.
type ClaimRule struct {
	Expression, Message string
}

// AllowsNamespace reports whether clients of the namespace may bind to the issuer.
func (w *WorkloadIssuer) AllowsNamespace(ns string) bool {
	return slices.Contains(w.AllowedNamespaces, "*") || slices.Contains(w.AllowedNamespaces, ns)
}

// WorkloadIssuer returns the issuer with the name.
func (s *Snapshot) WorkloadIssuer(name string) (*WorkloadIssuer, bool) {
	w, ok := s.issuers[name]
	return w, ok
}

// PutWorkloadIssuer stores or replaces the issuer of w.Name.
func (r *Registry) PutWorkloadIssuer(w WorkloadIssuer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.cur.Load()
	next := *old
	next.issuers = cloneMap(old.issuers)
	next.issuers[w.Name] = &w
	reindexIssuerSubjects(old, &next, w.Name)
	r.cur.Store(&next)
}

// DeleteWorkloadIssuer removes the issuer of the name, if any.
func (r *Registry) DeleteWorkloadIssuer(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.cur.Load()
	if _, ok := old.issuers[name]; !ok {
		return
	}
	next := *old
	next.issuers = cloneMap(old.issuers)
	delete(next.issuers, name)
	reindexIssuerSubjects(old, &next, name)
	r.cur.Store(&next)
}

// subjectPair is a workload identity: an issuer (a WorkloadIssuer name, or LocalIssuer) and
// a subject of it.
type subjectPair struct{ issuer, subject string }

// SubjectHolder returns the client that holds the (issuer, subject) pair: of the clients bound
// to it that may bind (mayBind), the one that Precedes (created first, then the smaller source),
// as for client IDs.
// A client bound to a pair another holds is not authenticated by it (SubjectConflict).
func (s *Snapshot) SubjectHolder(issuer, subject string) (*Client, bool) {
	c, ok := s.subjects[subjectPair{issuer, subject}]
	return c, ok
}

// reindexSubject recomputes the holder of one pair from the clients that may bind to it.
func reindexSubject(s *Snapshot, p subjectPair) {
	delete(s.subjects, p)
	for _, c := range s.clients {
		iss, sub, ok := c.WorkloadSubjectKey()
		if !ok || iss != p.issuer || sub != p.subject || !mayBind(s, c) {
			continue
		}
		if h, has := s.subjects[p]; !has || Wins(c, h) {
			s.subjects[p] = c
		}
	}
}

// mayBind reports whether the client may hold its workload identity: a ServiceAccount's always
// (its subject names the client's own namespace); a WorkloadIssuer subject only while the issuer
// exists and allows the client's namespace, so that a client of a namespace the issuer does not
// allow can never keep the pair from the client that may use it.
func mayBind(s *Snapshot, c *Client) bool {
	if c.WorkloadIssuer == "" {
		return true
	}
	w, ok := s.issuers[c.WorkloadIssuer]
	return ok && w.AllowsNamespace(c.Namespace)
}

// reindexIssuerSubjects recomputes the holders of every pair of the issuer (which namespaces may
// bind to it changed), a scan of the clients.
func reindexIssuerSubjects(old, s *Snapshot, issuer string) {
	pairs := map[subjectPair]bool{}
	for _, c := range s.clients {
		if iss, sub, ok := c.WorkloadSubjectKey(); ok && iss == issuer {
			pairs[subjectPair{iss, sub}] = true
		}
	}
	if len(pairs) == 0 {
		return
	}
	s.subjects = cloneMap(old.subjects)
	for p := range pairs {
		reindexSubject(s, p)
	}
}

// subjectsAfter returns the subject index after a write that replaced prev by next for one
// source (either may be nil): old's index when neither is bound to a pair (most writes).
func subjectsAfter(old, s *Snapshot, prev, next *Client) map[subjectPair]*Client {
	var pairs []subjectPair
	for _, c := range []*Client{prev, next} {
		if c == nil {
			continue
		}
		if iss, sub, ok := c.WorkloadSubjectKey(); ok {
			pairs = append(pairs, subjectPair{iss, sub})
		}
	}
	if len(pairs) == 0 {
		return old.subjects
	}
	s.subjects = cloneMap(old.subjects)
	for _, p := range pairs {
		reindexSubject(s, p)
	}
	return s.subjects
}
