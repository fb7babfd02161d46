package manifests

import (
	"reflect"

	"k8s.io/apimachinery/pkg/types"

	"github.com/latchkey-dev/latchkey/controllers/convert"
	"github.com/latchkey-dev/latchkey/controllers/feed"
	"github.com/latchkey-dev/latchkey/server/registry"
)

// EmbeddedLDAPUIDPrefix makes the UID of an LDAPIdentityProvider read from a file without
// metadata.uid: "embedded:ldap:" + its name (not EmbeddedUIDPrefix's, so an OIDC and an LDAP
// provider of the same name never share a UID, nor their users' subjects).
const EmbeddedLDAPUIDPrefix = EmbeddedUIDPrefix + "ldap:"

// applyLDAPs puts the LDAPIdentityProviders the feed policy serves (only with their bind
// Secret in the folder) and deletes those no longer served.
func (l *Loader) applyLDAPs(r reporter, objs *Objects, b *batch) {
	items := make([]item, 0, len(objs.LDAPs))
	for _, p := range objs.LDAPs {
		if p.UID == "" {
			p.UID = types.UID(EmbeddedLDAPUIDPrefix + p.Name)
		}
		ns, name := convert.LDAPBindSecretRef(p)
		u, err := convert.LDAPIdentityProvider(p, objs.Secrets[ns+"/"+name])
		items = append(items, item{source: p.Name, name: p.Name, obj: p, decision: feed.LDAPIdentityProvider(u, err),
			put: func() { l.putLDAP(b, u) }, keysAndValues: []any{"host", p.Spec.Host}})
	}
	served, _ := r.feed("LDAPIdentityProvider", "identityProvider", items, l.ldaps, func(name string) {
		delete(l.ldapValues, name)
		b.DeleteUpstreamLDAP(name)
	}, nil)
	l.ldaps = sourcesOf(served)
}

// putLDAP puts u unless the same value is served; each value put gets the next generation.
func (l *Loader) putLDAP(b *batch, u registry.UpstreamLDAP) {
	if prev, ok := l.ldapValues[u.Name]; ok {
		u.Generation = prev.Generation
		if reflect.DeepEqual(prev, u) {
			return
		}
	}
	l.ldapGeneration++
	u.Generation = l.ldapGeneration
	l.ldapValues[u.Name] = u
	b.PutUpstreamLDAP(u)
}

func (b *batch) PutUpstreamLDAP(u registry.UpstreamLDAP) {
	*b = append(*b, func(tx *registry.Txn) { tx.PutUpstreamLDAP(u) })
}

func (b *batch) DeleteUpstreamLDAP(name string) {
	*b = append(*b, func(tx *registry.Txn) { tx.DeleteUpstreamLDAP(name) })
}
