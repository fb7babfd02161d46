package feed

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
	"github.com/latchkey-dev/latchkey/controllers/convert"
	"github.com/latchkey-dev/latchkey/server/registry"
)

var (
	errSecretMissing = fmt.Errorf("%w: Secret default/billing-oauth does not exist", convert.ErrSecretNotFound)
	errInvalid       = fmt.Errorf("%w: redirectURI \"https://u@x/\" must not contain user information", convert.ErrInvalidSpec)
	errUnclassified  = errors.New("convert: got Secret default/other, want default/billing-oauth")
)

func TestDecisions(t *testing.T) {
	confidential := registry.Client{ID: "billing", Type: registry.Confidential}
	public := registry.Client{ID: "spa", Type: registry.Public}
	alice := registry.User{Username: "alice", PasswordHash: []byte("$2b$...")}
	tests := []struct {
		name       string
		got        Decision
		want       Action
		wantReason string
		wantText   string
	}{
		{"a complete confidential client is served", Client(confidential, nil), Serve, v1alpha1.ReasonReady, `client "billing" is served`},
		{"a public client is served", Client(public, nil), Serve, v1alpha1.ReasonReady, `public client "spa" is served`},
		{"a client whose Secret is missing is served without credentials", Client(confidential, errSecretMissing),
			ServeWithoutCredentials, v1alpha1.ReasonSecretNotFound, `client "billing" is served without a secret and cannot authenticate: secret not found: Secret default/billing-oauth does not exist`},
		{"an invalid client is withdrawn", Client(registry.Client{}, errInvalid), Withdraw, v1alpha1.ReasonInvalidSpec, errInvalid.Error()},
		{"a client with an unclassified error is withdrawn without a reason", Client(confidential, errUnclassified), Withdraw, "", errUnclassified.Error()},
		{"a user with a password is served", User(alice, nil), Serve, v1alpha1.ReasonReady, `user "alice" is served`},
		{"a user without a password is served and says it cannot log in", User(registry.User{Username: "bob"}, nil),
			Serve, v1alpha1.ReasonReady, `user "bob" is served; without a password it cannot log in`},
		{"a user whose Secret is missing is served without credentials", User(registry.User{Username: "alice"}, errSecretMissing),
			ServeWithoutCredentials, v1alpha1.ReasonSecretNotFound, `user "alice" is served without a password and cannot log in: ` + errSecretMissing.Error()},
		{"an invalid user is withdrawn", User(registry.User{}, errInvalid), Withdraw, v1alpha1.ReasonInvalidSpec, errInvalid.Error()},
		{"a scope is served", Scope(registry.Scope{Name: "read:projects"}, nil), Serve, v1alpha1.ReasonReady, `scope "read:projects" is served`},
		{"an invalid scope is withdrawn", Scope(registry.Scope{}, errInvalid), Withdraw, v1alpha1.ReasonInvalidSpec, errInvalid.Error()},
		{"a workload issuer is served", WorkloadIssuer(registry.WorkloadIssuer{Name: "ci", Issuer: "https://ci.example"}, nil),
			Serve, v1alpha1.ReasonReady, `workload issuer "https://ci.example" is served`},
		{"a workload issuer with keys from a Secret says how many", WorkloadIssuer(registry.WorkloadIssuer{Name: "ci", Issuer: "https://ci.example",
			StaticKeys: make([]jose.JSONWebKey, 2)}, nil), Serve, v1alpha1.ReasonReady, `workload issuer "https://ci.example" is served with the 2 keys of its Secret`},
		{"a workload issuer whose key Secret is missing is withdrawn, not served without keys",
			WorkloadIssuer(registry.WorkloadIssuer{Name: "ci"}, errSecretMissing), Withdraw, v1alpha1.ReasonSecretNotFound,
			"WorkloadIssuer ci is not served: its keys are missing: " + errSecretMissing.Error()},
		{"an invalid workload issuer is withdrawn", WorkloadIssuer(registry.WorkloadIssuer{}, errInvalid), Withdraw, v1alpha1.ReasonInvalidSpec, errInvalid.Error()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.got.Action, tt.got.Action.String())
			assert.Equal(t, tt.wantReason, tt.got.Reason)
			assert.Equal(t, tt.wantText, tt.got.Message)
			assert.Equal(t, tt.want != Withdraw, tt.got.Put())
			assert.Equal(t, tt.wantReason != v1alpha1.ReasonReady, tt.got.Warn())
		})
	}
}

func TestContests(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		claims []Claim
		want   []Contest
	}{
		{"names claimed once are not contested", []Claim{{"a", "ns/x", t0}, {"b", "ns/y", t0}}, nil},
		{"the earlier claim holds although its source sorts later",
			[]Claim{{"demo", "default/aaa", t0.Add(time.Second)}, {"demo", "default/zzz", t0}},
			[]Contest{{"demo", Claim{"demo", "default/zzz", t0}, []Claim{{"demo", "default/aaa", t0.Add(time.Second)}}}}},
		{"at the same time the smaller source holds",
			[]Claim{{"demo", "default/b", t0}, {"demo", "default/a", t0}},
			[]Contest{{"demo", Claim{"demo", "default/a", t0}, []Claim{{"demo", "default/b", t0}}}}},
		{"the others are in the order they would take over, contests by name",
			[]Claim{{"z", "s/3", t0.Add(3)}, {"z", "s/1", t0.Add(1)}, {"z", "s/2", t0.Add(2)}, {"a", "s/5", t0}, {"a", "s/4", t0}},
			[]Contest{
				{"a", Claim{"a", "s/4", t0}, []Claim{{"a", "s/5", t0}}},
				{"z", Claim{"z", "s/1", t0.Add(1)}, []Claim{{"z", "s/2", t0.Add(2)}, {"z", "s/3", t0.Add(3)}}},
			}},
		{"one source claiming a name twice is no contest", []Claim{{"a", "s/1", t0}, {"a", "s/1", t0}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Contests(tt.claims)
			require.Equal(t, tt.want, got)
			for _, c := range got {
				h := c.Holder
				for _, o := range c.Others {
					assert.True(t, registry.Precedes(h.Created, h.Source, o.Created, o.Source), "the holder is what the registry serves")
				}
			}
		})
	}
}

func TestConflictReports(t *testing.T) {
	tests := []struct {
		name       string
		got        Conflict
		wantReason string
		wantText   string
	}{
		{"a client ID conflict names the ID and the holder", ClientIDConflict("demo-service", "default/demo-service"),
			v1alpha1.ReasonClientIDConflict, `client ID "demo-service" is already used by OAuthClient default/demo-service, created earlier`},
		{"a username conflict names the username and the holder", UsernameConflict("alice", "alice"),
			v1alpha1.ReasonUsernameConflict, `username "alice" is already used by User alice, created earlier`},
		{"a scope name conflict names the scope and the holder", ScopeNameConflict("read:projects", "read-projects"),
			v1alpha1.ReasonScopeNameConflict, `scope name "read:projects" is already defined by Scope read-projects, created earlier`},
		{"a subject conflict names the issuer, the subject and the holder", SubjectConflict("ci", "repo:example/app", "default/app"),
			v1alpha1.ReasonSubjectConflict, `subject "repo:example/app" of WorkloadIssuer ci is already bound to OAuthClient default/app, created earlier; this client cannot authenticate with its tokens`},
		{"a ServiceAccount conflict names the ServiceAccount", SubjectConflict(registry.LocalIssuer, "system:serviceaccount:payments:api", "payments/api"),
			v1alpha1.ReasonSubjectConflict, `ServiceAccount payments/api is already bound to OAuthClient payments/api, created earlier; this client cannot authenticate with its tokens`},
		{"a subject conflict cuts a long subject", SubjectConflict("ci", strings.Repeat("s", 1024), "default/app"),
			v1alpha1.ReasonSubjectConflict, `subject "` + strings.Repeat("s", 256) + `"... of WorkloadIssuer ci is already bound to OAuthClient default/app, created earlier; this client cannot authenticate with its tokens`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.wantReason, tt.got.Reason)
			assert.Equal(t, tt.wantText, tt.got.Message)
		})
	}
}

func TestBinding(t *testing.T) {
	tests := []struct {
		name       string
		namespace  string
		exists     bool
		allowed    []string
		wantReason string // "": no problem
		wantText   string
	}{
		{"a missing issuer is IssuerNotFound", "payments", false, nil, v1alpha1.ReasonIssuerNotFound,
			"WorkloadIssuer ci does not exist; the client cannot authenticate until it does"},
		{"a namespace the issuer does not list is NamespaceNotAllowed", "payments", true, []string{"billing"}, v1alpha1.ReasonNamespaceNotAllowed,
			"WorkloadIssuer ci does not allow clients of namespace payments (spec.allowedNamespaces); the client cannot authenticate"},
		{"a listed namespace is allowed", "payments", true, []string{"billing", "payments"}, "", ""},
		{"a star allows every namespace", "payments", true, []string{"*"}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, ok := Binding(tt.namespace, "ci", tt.exists, tt.allowed)
			assert.Equal(t, tt.wantReason != "", ok)
			assert.Equal(t, tt.wantReason, c.Reason)
			assert.Equal(t, tt.wantText, c.Message)
		})
	}
}

func TestScopesResolved(t *testing.T) {
	defined := func(name string) ScopeLookup {
		switch name {
		case "read:projects":
			return ScopeAllowed
		case "billing:admin":
			return ScopeNotAllowed
		}
		return ScopeUndefined
	}
	tests := []struct {
		name     string
		listed   []string
		resolved bool
		reason   string
		unknown  []string
		message  string
	}{
		{"no scopes are resolved", nil, true, v1alpha1.ReasonResolved, nil,
			"every scope the client lists is a built-in OIDC scope or defined by a Scope that allows its namespace"},
		{"a scope whose Scope leaves the namespace out is not resolved", []string{"read:projects", "billing:admin"},
			false, v1alpha1.ReasonScopeNotAllowed, nil,
			`scopes "billing:admin": their Scope's allowedNamespaces leave this namespace out; the client is served without them`},
		{"unknown scopes come first in the reason, both are named", []string{"billing:admin", "nope"},
			false, v1alpha1.ReasonUnknownScope, []string{"nope"},
			`unknown scopes "nope": neither built-in OIDC scopes nor defined by a Scope; scopes "billing:admin": their Scope's`},
		{"built-in OIDC scopes are resolved without a Scope", []string{"openid", "profile", "email", "address", "phone", "offline_access"},
			true, v1alpha1.ReasonResolved, nil, "every scope"},
		{"a scope a Scope defines is resolved", []string{"openid", "read:projects"}, true, v1alpha1.ReasonResolved, nil, "every scope"},
		{"groups is not built in", []string{"groups"}, false, v1alpha1.ReasonUnknownScope, []string{"groups"}, `unknown scopes "groups"`},
		{"the unknown scopes are named in spec order", []string{"write:b", "read:projects", "openid", "admin:a"},
			false, v1alpha1.ReasonUnknownScope, []string{"write:b", "admin:a"},
			`unknown scopes "write:b", "admin:a": neither built-in OIDC scopes nor defined by a Scope; ` +
				"the client is served without them and requests for them are refused with invalid_scope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := ScopesResolved(tt.listed, defined)
			assert.Equal(t, tt.resolved, res.Resolved)
			assert.Equal(t, tt.reason, res.Reason)
			assert.Equal(t, tt.unknown, res.Unknown)
			assert.Contains(t, res.Message, tt.message)
		})
	}
}
