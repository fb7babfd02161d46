package registry_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/server/registry"
)

// externalUsers is a fixed set of upstream users by subject.
type externalUsers map[string]*registry.User

func (e externalUsers) ExternalUser(sub string) (*registry.User, bool) { u, ok := e[sub]; return u, ok }

func TestLDAPUsersAreServedOnlyWhileTheirProviderIs(t *testing.T) {
	sub := registry.ExternalSubjectPrefix + "ldap-user"
	r := registry.New()
	r.SetExternalUsers(externalUsers{sub: {Subject: sub, Username: "alice", IdentityProvider: "corp",
		IdentityProviderUID: "uid-1", IdentityProviderKind: registry.KindLDAP}})

	_, ok := r.Snapshot().UserBySubject(sub)
	assert.False(t, ok, "no provider yet")

	r.PutUpstreamLDAP(registry.UpstreamLDAP{Name: "corp", UID: "uid-1", DisplayName: "Corp"})
	u, ok := r.Snapshot().UserBySubject(sub)
	require.True(t, ok, "served by its provider")
	assert.Equal(t, "alice", u.Username)
	p, ok := r.Snapshot().UpstreamLDAP("corp")
	require.True(t, ok)
	assert.Equal(t, "Corp", p.DisplayName)

	r.PutUpstreamOIDC(registry.UpstreamOIDC{Name: "corp", UID: "uid-1"})
	r.DeleteUpstreamLDAP("corp")
	_, ok = r.Snapshot().UserBySubject(sub)
	assert.False(t, ok, "an OIDC provider of the same name and UID does not serve an LDAP user")

	r.PutUpstreamLDAP(registry.UpstreamLDAP{Name: "corp", UID: "uid-2"})
	_, ok = r.Snapshot().UserBySubject(sub)
	assert.False(t, ok, "a provider re-created under the same name (new UID) does not inherit its users")
}

func TestLDAPProvidersAreListedByDisplayNameThenName(t *testing.T) {
	r := registry.New()
	r.PutUpstreamLDAP(registry.UpstreamLDAP{Name: "b", DisplayName: "Same"})
	r.PutUpstreamLDAP(registry.UpstreamLDAP{Name: "a", DisplayName: "Same"})
	r.PutUpstreamLDAP(registry.UpstreamLDAP{Name: "c", DisplayName: "Alpha"})
	var names []string
	for _, u := range r.Snapshot().UpstreamLDAPs() {
		names = append(names, u.Name)
	}
	assert.Equal(t, []string{"c", "a", "b"}, names)
}
