package feed

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
	"github.com/latchkey-dev/latchkey/controllers/convert"
	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/registry"
)

// Action is what to do with a converted resource.
type Action int

// Actions.
const (
	// Serve puts the value into the registry.
	Serve Action = iota + 1
	// ServeWithoutCredentials puts the value, which lacks its secret or password hash because
	// the Secret (or its key) is missing: it keeps its client ID or username, cannot
	// authenticate or log in, and starts to once the Secret exists.
	ServeWithoutCredentials
	// Withdraw deletes the source from the registry: the resource cannot be served.
	Withdraw
)

func (a Action) String() string {
	switch a {
	case Serve:
		return "Serve"
	case ServeWithoutCredentials:
		return "ServeWithoutCredentials"
	case Withdraw:
		return "Withdraw"
	}
	return fmt.Sprintf("Action(%d)", int(a))
}

// Decision is what to do with one converted resource and what to report about it.
type Decision struct {
	Action Action
	// Reason is the Ready condition's reason: v1alpha1.ReasonReady, ReasonSecretNotFound or
	// ReasonInvalidSpec; empty for an error convert does not classify (report it as an error).
	Reason string
	// Message says why, for a condition or a log line; it never holds a secret value.
	Message string
}

// Put reports whether the value goes into the registry (Serve or ServeWithoutCredentials).
func (d Decision) Put() bool { return d.Action == Serve || d.Action == ServeWithoutCredentials }

// Warn reports whether the decision is worth a warning: anything but Ready.
func (d Decision) Warn() bool { return d.Reason != v1alpha1.ReasonReady }

// Client decides about the result of convert.Client.
func Client(c registry.Client, err error) Decision {
	switch {
	case err == nil && c.Type == registry.Public:
		return Decision{Serve, v1alpha1.ReasonReady, fmt.Sprintf("public client %q is served", c.ID)}
	case err == nil:
		return Decision{Serve, v1alpha1.ReasonReady, fmt.Sprintf("client %q is served", c.ID)}
	case errors.Is(err, convert.ErrSecretNotFound):
		return Decision{ServeWithoutCredentials, v1alpha1.ReasonSecretNotFound,
			fmt.Sprintf("client %q is served without a secret and cannot authenticate: %v", c.ID, err)}
	}
	return withdraw(err)
}

// User decides about the result of convert.User.
func User(u registry.User, err error) Decision {
	switch {
	case err == nil && len(u.PasswordHash) == 0:
		return Decision{Serve, v1alpha1.ReasonReady, fmt.Sprintf("user %q is served; without a password it cannot log in", u.Username)}
	case err == nil:
		return Decision{Serve, v1alpha1.ReasonReady, fmt.Sprintf("user %q is served", u.Username)}
	case errors.Is(err, convert.ErrSecretNotFound):
		return Decision{ServeWithoutCredentials, v1alpha1.ReasonSecretNotFound,
			fmt.Sprintf("user %q is served without a password and cannot log in: %v", u.Username, err)}
	}
	return withdraw(err)
}

// Scope decides about the result of convert.Scope.
func Scope(sc registry.Scope, err error) Decision {
	if err == nil {
		return Decision{Serve, v1alpha1.ReasonReady, fmt.Sprintf("scope %q is served", sc.Name)}
	}
	return withdraw(err)
}

// WorkloadIssuer decides about the result of convert.WorkloadIssuer. An issuer whose key Secret
// is missing or unusable is withdrawn (SecretNotFound), not served without keys: without its
// static keys the server would look for keys by discovery instead, from wherever the issuer
// URL points.
func WorkloadIssuer(w registry.WorkloadIssuer, err error) Decision {
	switch {
	case err == nil && len(w.StaticKeys) > 0:
		return Decision{Serve, v1alpha1.ReasonReady, fmt.Sprintf("workload issuer %q is served with the %d keys of its Secret", w.Issuer, len(w.StaticKeys))}
	case err == nil:
		return Decision{Serve, v1alpha1.ReasonReady, fmt.Sprintf("workload issuer %q is served", w.Issuer)}
	case errors.Is(err, convert.ErrSecretNotFound):
		return Decision{Withdraw, v1alpha1.ReasonSecretNotFound,
			fmt.Sprintf("WorkloadIssuer %s is not served: its keys are missing: %v", w.Name, err)}
	}
	return withdraw(err)
}

func withdraw(err error) Decision {
	if errors.Is(err, convert.ErrInvalidSpec) {
		return Decision{Withdraw, v1alpha1.ReasonInvalidSpec, err.Error()}
	}
	return Decision{Withdraw, "", err.Error()}
}

// Claim is one source's claim on a name: a client ID, a username or a scope name.
type Claim struct {
	Name    string
	Source  string // the registry source key
	Created time.Time
}

// Holds reports whether a holds the name against b: registry.Precedes.
func Holds(a, b Claim) bool { return registry.Precedes(a.Created, a.Source, b.Created, b.Source) }

// Contest is a name that more than one source claims.
type Contest struct {
	Name   string
	Holder Claim   // the claim that is served
	Others []Claim // in the order they would take over
}

// Contests returns the contested names among claims, by name. Claims of one source on one name
// count once.
func Contests(claims []Claim) []Contest {
	byName := map[string][]Claim{}
	for _, c := range claims {
		if !slices.ContainsFunc(byName[c.Name], func(o Claim) bool { return o.Source == c.Source }) {
			byName[c.Name] = append(byName[c.Name], c)
		}
	}
	var out []Contest
	for name, cs := range byName {
		if len(cs) < 2 {
			continue
		}
		slices.SortFunc(cs, func(a, b Claim) int {
			if Holds(a, b) {
				return -1
			}
			return 1
		})
		out = append(out, Contest{Name: name, Holder: cs[0], Others: cs[1:]})
	}
	slices.SortFunc(out, func(a, b Contest) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Conflict is the report about a source whose name another source holds, or (Binding) that
// cannot use its workload identity.
type Conflict struct {
	// Reason is v1alpha1.ReasonClientIDConflict, ReasonUsernameConflict, ReasonScopeNameConflict,
	// ReasonSubjectConflict, ReasonIssuerNotFound or ReasonNamespaceNotAllowed.
	Reason  string
	Message string
}

// ClientIDConflict reports an OAuthClient whose client ID the OAuthClient holder (its source
// key) holds.
func ClientIDConflict(id, holder string) Conflict {
	return Conflict{v1alpha1.ReasonClientIDConflict, fmt.Sprintf("client ID %q is already used by OAuthClient %s, created earlier", id, holder)}
}

// UsernameConflict reports a User whose username the User holder holds.
func UsernameConflict(username, holder string) Conflict {
	return Conflict{v1alpha1.ReasonUsernameConflict, fmt.Sprintf("username %q is already used by User %s, created earlier", username, holder)}
}

// ScopeNameConflict reports a Scope whose scope name the Scope holder holds.
func ScopeNameConflict(name, holder string) Conflict {
	return Conflict{v1alpha1.ReasonScopeNameConflict, fmt.Sprintf("scope name %q is already defined by Scope %s, created earlier", name, holder)}
}

// SubjectConflict reports an OAuthClient bound to the workload identity (issuer, subject) that
// the OAuthClient holder (its source key) holds: registry.Snapshot.SubjectHolder's rule. The
// client keeps its client ID but never authenticates by that identity.
func SubjectConflict(issuer, subject, holder string) Conflict {
	if issuer == registry.LocalIssuer {
		return Conflict{v1alpha1.ReasonSubjectConflict, fmt.Sprintf(
			"ServiceAccount %s is already bound to OAuthClient %s, created earlier; this client cannot authenticate with its tokens",
			strings.Replace(strings.TrimPrefix(subject, serviceAccountSubjectPrefix), ":", "/", 1), holder)}
	}
	return Conflict{v1alpha1.ReasonSubjectConflict, fmt.Sprintf(
		"subject %s of WorkloadIssuer %s is already bound to OAuthClient %s, created earlier; this client cannot authenticate with its tokens",
		quote(subject), issuer, holder)}
}

// serviceAccountSubjectPrefix starts registry.ServiceAccountSubject.
const serviceAccountSubjectPrefix = "system:serviceaccount:"

// Binding reports what keeps an OAuthClient of the namespace, bound to a subject of the
// WorkloadIssuer named issuer, from authenticating by it, as the server refuses it: the issuer
// does not exist (exists false: IssuerNotFound), or does not list the namespace in
// allowedNamespaces (NamespaceNotAllowed). ok is false when neither holds.
func Binding(namespace, issuer string, exists bool, allowedNamespaces []string) (c Conflict, ok bool) {
	switch {
	case !exists:
		return Conflict{v1alpha1.ReasonIssuerNotFound, fmt.Sprintf(
			"WorkloadIssuer %s does not exist; the client cannot authenticate until it does", issuer)}, true
	case !(&registry.WorkloadIssuer{AllowedNamespaces: allowedNamespaces}).AllowsNamespace(namespace):
		return Conflict{v1alpha1.ReasonNamespaceNotAllowed, fmt.Sprintf(
			"WorkloadIssuer %s does not allow clients of namespace %s (spec.allowedNamespaces); the client cannot authenticate", issuer, namespace)}, true
	}
	return Conflict{}, false
}

// maxQuoted bounds a subject quoted in a message (subjects have up to 1024 bytes).
const maxQuoted = 256

// quote quotes s, cut to maxQuoted bytes with "..." after the quote when longer.
func quote(s string) string {
	if len(s) <= maxQuoted {
		return strconv.Quote(s)
	}
	return strconv.Quote(s[:maxQuoted]) + "..."
}

// ScopesResolution is the ScopesResolved condition of an OAuthClient. It does not gate Ready:
// a client listing unknown scopes is served without them, and the server refuses requests for
// them with invalid_scope.
type ScopesResolution struct {
	// Resolved is true when every listed scope exists and allows the client's namespace.
	Resolved bool
	// Reason is v1alpha1.ReasonResolved, v1alpha1.ReasonUnknownScope or
	// v1alpha1.ReasonScopeNotAllowed (only when no scope is unknown).
	Reason  string
	Message string
	// Unknown are the listed scopes that do not exist, in spec order.
	Unknown []string
	// NotAllowed are the listed scopes whose Scope does not allow the client's namespace.
	NotAllowed []string
}

// ScopeLookup is what a scope name is for a client.
type ScopeLookup int

// Scope lookups.
const (
	// ScopeUndefined: no Scope defines it.
	ScopeUndefined ScopeLookup = iota
	// ScopeNotAllowed: a Scope defines it; its allowedNamespaces leave the client's out.
	ScopeNotAllowed
	// ScopeAllowed: a Scope defines it and allows the client's namespace (the greatest: with
	// several Scopes of one name, the max of their lookups counts).
	ScopeAllowed
)

// LookupScope is what a Scope with allowedNamespaces is for a client of namespace.
func LookupScope(allowedNamespaces []string, namespace string) ScopeLookup {
	if len(allowedNamespaces) == 0 || slices.Contains(allowedNamespaces, namespace) {
		return ScopeAllowed
	}
	return ScopeNotAllowed
}

// ScopesResolved decides the condition for the listed scopes (spec.scopes): a scope resolves when
// it is a built-in OIDC scope (oauth2.IsBuiltinScope) or lookup reports it ScopeAllowed.
func ScopesResolved(listed []string, lookup func(name string) ScopeLookup) ScopesResolution {
	var unknown, notAllowed []string
	for _, name := range listed {
		if oauth2.IsBuiltinScope(name) {
			continue
		}
		switch lookup(name) {
		case ScopeAllowed:
		case ScopeNotAllowed:
			notAllowed = append(notAllowed, name)
		default:
			unknown = append(unknown, name)
		}
	}
	if len(unknown) == 0 && len(notAllowed) == 0 {
		return ScopesResolution{Resolved: true, Reason: v1alpha1.ReasonResolved,
			Message: "every scope the client lists is a built-in OIDC scope or defined by a Scope that allows its namespace"}
	}
	res := ScopesResolution{Reason: v1alpha1.ReasonUnknownScope, Unknown: unknown, NotAllowed: notAllowed}
	var parts []string
	if len(unknown) > 0 {
		parts = append(parts, fmt.Sprintf("unknown scopes %s: neither built-in OIDC scopes nor defined by a Scope", quoteAll(unknown)))
	} else {
		res.Reason = v1alpha1.ReasonScopeNotAllowed
	}
	if len(notAllowed) > 0 {
		parts = append(parts, fmt.Sprintf("scopes %s: their Scope's allowedNamespaces leave this namespace out", quoteAll(notAllowed)))
	}
	res.Message = strings.Join(parts, "; ") + "; the client is served without them and requests for them are refused with invalid_scope"
	return res
}

// quoteAll quotes each name and joins them with commas.
func quoteAll(names []string) string {
	quoted := make([]string, len(names))
	for i, s := range names {
		quoted[i] = strconv.Quote(s)
	}
	return strings.Join(quoted, ", ")
}
