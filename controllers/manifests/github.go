package manifests

import (
	"reflect"

	"k8s.io/apimachinery/pkg/types"

	"github.com/latchkey-dev/latchkey/controllers/convert"
	"github.com/latchkey-dev/latchkey/controllers/feed"
	"github.com/latchkey-dev/latchkey/server/registry"
)

// applyGitHubs puts the GitHubIdentityProviders the feed policy serves (only with their OAuth
// App's Secret in the folder) and deletes those no longer served. A provider without
// metadata.uid gets EmbeddedUIDPrefix + its name, as OIDCIdentityProviders do.
func (l *Loader) applyGitHubs(r reporter, objs *Objects, b *batch) {
	items := make([]item, 0, len(objs.GitHubs))
	for _, p := range objs.GitHubs {
		if p.UID == "" {
			p.UID = types.UID(EmbeddedUIDPrefix + p.Name)
		}
		ref := p.Spec.Client.SecretRef
		secret := objs.Secrets[ref.Namespace+"/"+ref.Name]
		u, err := convert.GitHubIdentityProvider(p, secret)
		items = append(items, item{source: p.Name, name: p.Name, obj: p, decision: feed.GitHubIdentityProvider(u, err),
			put: func() { l.putGitHub(b, u) }, keysAndValues: []any{"host", p.Spec.Host}})
	}
	served, _ := r.feed("GitHubIdentityProvider", "identityProvider", items, l.githubs, func(name string) {
		delete(l.githubValues, name)
		b.DeleteUpstreamGitHub(name)
	}, nil)
	l.githubs = sourcesOf(served)
}

// putGitHub puts u unless the same value is served, with the next generation otherwise.
func (l *Loader) putGitHub(b *batch, u registry.UpstreamGitHub) {
	if prev, ok := l.githubValues[u.Name]; ok {
		u.Generation = prev.Generation
		if reflect.DeepEqual(prev, u) {
			return
		}
	}
	l.upstreamGeneration++
	u.Generation = l.upstreamGeneration
	l.githubValues[u.Name] = u
	b.PutUpstreamGitHub(u)
}
