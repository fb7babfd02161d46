package manifests

import (
	"reflect"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/latchkey-dev/latchkey/controllers/convert"
	"github.com/latchkey-dev/latchkey/controllers/feed"
	"github.com/latchkey-dev/latchkey/server/registry"
)

// EmbeddedUIDPrefix makes the UID of an OIDCIdentityProvider read from a file without
// metadata.uid: "embedded:" + its name. Its users' subjects derive from it (upstream.Subject),
// so they stay the same across restarts; set metadata.uid in the file to keep a cluster's.
const EmbeddedUIDPrefix = "embedded:"

// applyUpstreams puts the OIDCIdentityProviders the feed policy serves (only with their client
// Secret in the folder) and deletes those no longer served.
func (l *Loader) applyUpstreams(r reporter, objs *Objects, b *batch) {
	items := make([]item, 0, len(objs.Upstreams))
	for _, p := range objs.Upstreams {
		if p.UID == "" {
			p.UID = types.UID(EmbeddedUIDPrefix + p.Name)
		}
		var secret *corev1.Secret
		if ns, name, _, ok := convert.UpstreamClientSecretRef(p); ok {
			secret = objs.Secrets[ns+"/"+name]
		}
		u, err := convert.OIDCIdentityProvider(p, secret)
		items = append(items, item{source: p.Name, name: p.Name, obj: p, decision: feed.OIDCIdentityProvider(u, err),
			put: func() { l.putUpstream(b, u) }, keysAndValues: []any{"issuer", p.Spec.Issuer}})
	}
	served, _ := r.feed("OIDCIdentityProvider", "identityProvider", items, l.upstreams, func(name string) {
		delete(l.upstreamValues, name)
		b.DeleteUpstreamOIDC(name)
	}, nil)
	l.upstreams = sourcesOf(served)
}

// putUpstream puts u unless the same value is served; each value put gets the next generation
// (files have no metadata.generation), so the server rebuilds the provider only when it changed.
func (l *Loader) putUpstream(b *batch, u registry.UpstreamOIDC) {
	if prev, ok := l.upstreamValues[u.Name]; ok {
		u.Generation = prev.Generation
		if reflect.DeepEqual(prev, u) {
			return
		}
	}
	l.upstreamGeneration++
	u.Generation = l.upstreamGeneration
	l.upstreamValues[u.Name] = u
	b.PutUpstreamOIDC(u)
}
