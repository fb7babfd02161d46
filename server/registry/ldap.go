package registry

import (
	"cmp"
	"slices"
)

// UpstreamLDAP is an LDAP directory users sign in to with their password (an
// LDAPIdentityProvider resource), as the login flow (server/upstream) uses it.
type UpstreamLDAP struct {
	// Name is the resource's name: what OAuthClient allowedIdentityProviders and the login
	// form's provider choice name.
	Name string
	// UID is the resource's UID: with the user's UID attribute it makes the local subject.
	UID string
	// Generation changes whenever the value does.
	Generation int64
	// DisplayName labels the provider in the login form; never empty (the name by default).
	DisplayName string
	// Host is host:port.
	Host string
	// StartTLS: plain LDAP upgraded with StartTLS; false: LDAPS (TLS from the first byte).
	StartTLS bool
	// CABundle (PEM) are the only roots trusted for the server's certificate; empty: the
	// system's.
	CABundle []byte
	// BindDN and BindPassword are the service account's credentials.
	BindDN, BindPassword string
	// UserBase and UserFilter find a user's entry ({} is the escaped username).
	UserBase, UserFilter string
	// The attributes of the user's entry that give the username, the stable UID, the email
	// and the display name.
	UsernameAttribute, UIDAttribute, EmailAttribute, NameAttribute string
	// GroupBase and GroupFilter find a user's groups ({dn} is the escaped user DN, {} the
	// escaped username); an empty GroupBase: no groups. GroupNameAttribute names a group.
	GroupBase, GroupFilter, GroupNameAttribute string
}

// UpstreamLDAP returns the LDAP provider of the name.
func (s *Snapshot) UpstreamLDAP(name string) (*UpstreamLDAP, bool) { return s.ldaps.get(name) }

// UpstreamLDAPCount is the number of LDAP providers.
func (s *Snapshot) UpstreamLDAPCount() int { return s.ldaps.len() }

// UpstreamLDAPs returns the LDAP providers sorted by display name, then name.
func (s *Snapshot) UpstreamLDAPs() []*UpstreamLDAP {
	out := make([]*UpstreamLDAP, 0, s.ldaps.len())
	for u := range s.ldaps.values() {
		out = append(out, u)
	}
	slices.SortFunc(out, func(a, b *UpstreamLDAP) int {
		return cmp.Or(cmp.Compare(a.DisplayName, b.DisplayName), cmp.Compare(a.Name, b.Name))
	})
	return out
}

// PutUpstreamLDAP stores or replaces the provider of u.Name.
func (r *Registry) PutUpstreamLDAP(u UpstreamLDAP) { r.Update(func(tx *Txn) { tx.PutUpstreamLDAP(u) }) }

// DeleteUpstreamLDAP removes the provider of the name, if any.
func (r *Registry) DeleteUpstreamLDAP(name string) {
	r.Update(func(tx *Txn) { tx.DeleteUpstreamLDAP(name) })
}

// PutUpstreamLDAP stores or replaces the provider of u.Name.
func (tx *Txn) PutUpstreamLDAP(u UpstreamLDAP) { tx.ldaps.set(u.Name, &u) }

// DeleteUpstreamLDAP removes the provider of the name, if any.
func (tx *Txn) DeleteUpstreamLDAP(name string) { tx.ldaps.del(name) }
