package manifests

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	goruntime "runtime"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/go-logr/logr"
	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
	"github.com/latchkey-dev/latchkey/controllers/convert"
	"github.com/latchkey-dev/latchkey/controllers/feed"
	"github.com/latchkey-dev/latchkey/controllers/policy"
	"github.com/latchkey-dev/latchkey/server/registry"
)

// Registry is what the loader writes to; *registry.Registry satisfies it. A load publishes its
// writes as one snapshot (Update).
type Registry interface {
	Update(fn func(tx *registry.Txn))
}

// batch records the registry writes of one load, published together at its end.
type batch []func(tx *registry.Txn)

func (b *batch) PutClient(c registry.Client) {
	*b = append(*b, func(tx *registry.Txn) { tx.PutClient(c) })
}
func (b *batch) DeleteClient(source string) {
	*b = append(*b, func(tx *registry.Txn) { tx.DeleteClient(source) })
}
func (b *batch) PutScope(source string, s registry.Scope) {
	*b = append(*b, func(tx *registry.Txn) { tx.PutScope(source, s) })
}
func (b *batch) DeleteScope(source string) {
	*b = append(*b, func(tx *registry.Txn) { tx.DeleteScope(source) })
}
func (b *batch) PutUser(u registry.User) { *b = append(*b, func(tx *registry.Txn) { tx.PutUser(u) }) }
func (b *batch) DeleteUser(source string) {
	*b = append(*b, func(tx *registry.Txn) { tx.DeleteUser(source) })
}
func (b *batch) PutProtectedResource(p registry.ProtectedResource) {
	*b = append(*b, func(tx *registry.Txn) { tx.PutProtectedResource(p) })
}
func (b *batch) DeleteProtectedResource(source string) {
	*b = append(*b, func(tx *registry.Txn) { tx.DeleteProtectedResource(source) })
}
func (b *batch) PutWorkloadIssuer(w registry.WorkloadIssuer) {
	*b = append(*b, func(tx *registry.Txn) { tx.PutWorkloadIssuer(w) })
}
func (b *batch) DeleteWorkloadIssuer(name string) {
	*b = append(*b, func(tx *registry.Txn) { tx.DeleteWorkloadIssuer(name) })
}
func (b *batch) PutUpstreamOIDC(u registry.UpstreamOIDC) {
	*b = append(*b, func(tx *registry.Txn) { tx.PutUpstreamOIDC(u) })
}
func (b *batch) DeleteUpstreamOIDC(name string) {
	*b = append(*b, func(tx *registry.Txn) { tx.DeleteUpstreamOIDC(name) })
}
func (b *batch) PutUpstreamGitHub(u registry.UpstreamGitHub) {
	*b = append(*b, func(tx *registry.Txn) { tx.PutUpstreamGitHub(u) })
}
func (b *batch) DeleteUpstreamGitHub(name string) {
	*b = append(*b, func(tx *registry.Txn) { tx.DeleteUpstreamGitHub(name) })
}

// publish applies the writes to the registry as one snapshot.
func (b batch) publish(reg Registry) {
	reg.Update(func(tx *registry.Txn) {
		for _, w := range b {
			w(tx)
		}
	})
}

// DemoCredentialsAnnotation marks a sample Secret whose client secret is demo data, published with
// the samples; only for such Secrets may the server print a ready-to-run curl line.
const DemoCredentialsAnnotation = "oauth.latchkey.dev/demo-credentials"

// Objects is one parse of a folder.
type Objects struct {
	Clients []*v1alpha1.OAuthClient
	Scopes  []*v1alpha1.Scope
	Users   []*v1alpha1.User
	Issuers []*v1alpha1.WorkloadIssuer
	// Upstreams are the OIDCIdentityProviders.
	Upstreams []*v1alpha1.OIDCIdentityProvider
	// LDAPs are the LDAPIdentityProviders.
	LDAPs []*v1alpha1.LDAPIdentityProvider
	// GitHubs are the GitHubIdentityProviders.
	GitHubs []*v1alpha1.GitHubIdentityProvider
	// Policies are the OAuthClientPolicies; a client must satisfy those of its namespace.
	Policies []*v1alpha1.OAuthClientPolicy
	// Resources are the ProtectedResources.
	Resources []*v1alpha1.ProtectedResource
	Secrets   map[string]*corev1.Secret // by namespace/name

	files map[metav1.Object]string // the file each object was read from
}

// File returns the path of the file obj was read from ("" if unknown).
func (o *Objects) File(obj metav1.Object) string { return o.files[obj] }

// Warner receives the loader's warnings: what is not served, served without its credentials,
// or claims a name another resource holds. *zap.SugaredLogger implements it (main.go wires the
// server's zap logger, so they print at warn level); logr has no warning level.
type Warner interface {
	Warnw(msg string, keysAndValues ...any)
}

// logrWarner is the Warner of a loader given none: Info lines with level=warn on the context's
// logr logger.
type logrWarner struct{ log logr.Logger }

func (w logrWarner) Warnw(msg string, keysAndValues ...any) {
	w.log.Info(msg, append([]any{"level", "warn"}, keysAndValues...)...)
}

// sources is a set of source keys.
type sources map[string]struct{}

// sourcesOf returns the keys of served, packed (see packed).
func sourcesOf(served map[string]metav1.Object) sources {
	out := make(sources, len(served))
	for _, src := range packed(slices.Collect(maps.Keys(served))) {
		out[src] = struct{}{}
	}
	return out
}

// packed returns copies of the strings that share one allocation: what the loader keeps between
// loads for a million sources is then one object for the garbage collector to mark, not a
// million scattered ones (each cycle marks them all, and the request path pays for it).
func packed(ss []string) []string {
	var b strings.Builder
	n := 0
	for _, s := range ss {
		n += len(s)
	}
	b.Grow(n)
	for _, s := range ss {
		b.WriteString(s)
	}
	all := b.String()
	out := make([]string, len(ss))
	at := 0
	for i, s := range ss {
		out[i] = all[at : at+len(s)]
		at += len(s)
	}
	return out
}

// DemoClient is a client_credentials client whose secret is marked as demo data.
type DemoClient struct {
	ClientID, ClientSecret string
}

// Loader keeps a registry equal to a folder of manifests.
type Loader struct {
	dir     string
	reg     Registry
	warn    Warner // nil: logrWarner on the context's logger
	decoder runtime.Decoder

	// files holds the last contents of each file that parsed: the contents, not the objects
	// (several times larger), parsed again when the file fails to parse.
	files   map[string][]byte
	clients sources // sources currently put
	scopes  sources
	users   sources
	issuers sources
	// upstreams are the OIDCIdentityProviders put, by name (upstreamValues) and their values
	// numbered like issuerValues.
	upstreams          sources
	upstreamValues     map[string]registry.UpstreamOIDC
	upstreamGeneration int64
	// ldaps are the LDAPIdentityProviders put, by name (ldapValues), numbered the same way.
	ldaps          sources
	ldapValues     map[string]registry.UpstreamLDAP
	ldapGeneration int64
	// githubs are the GitHubIdentityProviders put, by name (githubValues), numbered with
	// upstreamGeneration.
	githubs      sources
	githubValues map[string]registry.UpstreamGitHub
	// resources are the ProtectedResources currently put.
	resources sources
	demo      *DemoClient

	// issuerValues are the WorkloadIssuers put, by name; a value is put again only when it
	// changed, with the next issuerGeneration (files have no metadata.generation).
	issuerValues     map[string]registry.WorkloadIssuer
	issuerGeneration int64

	// created is the creation time given to each source ("Kind source key") when the loader
	// first saw it; lastCreated is the latest time given, so every new one is later.
	created     map[string]time.Time
	lastCreated time.Time

	// rotations is the secret rotation state of each client with spec.secretRotation, by
	// source: what the leader keeps in a Secret in a cluster, here in memory only.
	rotations map[string]convert.RotationState
	now       func() time.Time

	// policies are the OAuthClientPolicies of the last load, for AdmitRegistration (read by
	// the registration handler while Watch reloads).
	policies atomic.Pointer[policySet]
	// defaultPolicy is the source key (namespace/name) of the policy that applies to every
	// namespace; "" when none.
	defaultPolicy string
}

// SetDefaultPolicy names the OAuthClientPolicy of the folder that applies to the clients of
// every namespace, besides their namespace's own (latchkey serve --default-client-policy). Call
// it before Load.
func (l *Loader) SetDefaultPolicy(namespace, name string) { l.defaultPolicy = namespace + "/" + name }

// policySet is the OAuthClientPolicies of one load.
type policySet struct {
	byNamespace map[string][]v1alpha1.OAuthClientPolicy
	def         *v1alpha1.OAuthClientPolicy // the default policy, when named and in the folder
}

// of returns the policies that apply to the clients of the namespace.
func (s *policySet) of(namespace string) []v1alpha1.OAuthClientPolicy {
	ps := s.byNamespace[namespace]
	if s.def != nil && s.def.Namespace != namespace {
		ps = append(slices.Clip(ps), *s.def)
	}
	return ps
}

// New returns a loader of dir into reg that reports problems to warn (nil: as Info lines with
// level=warn on the logr logger of the context passed to Load and Watch).
func New(dir string, reg Registry, warn Warner) (*Loader, error) {
	s := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(s); err != nil {
		return nil, err
	}
	if err := corev1.AddToScheme(s); err != nil {
		return nil, err
	}
	return &Loader{
		dir: dir, reg: reg, warn: warn,
		decoder: serializer.NewCodecFactory(s, serializer.EnableStrict).UniversalDeserializer(),
		clients: sources{}, scopes: sources{}, users: sources{}, issuers: sources{}, issuerValues: map[string]registry.WorkloadIssuer{},
		upstreams: sources{}, resources: sources{}, upstreamValues: map[string]registry.UpstreamOIDC{},
		ldaps: sources{}, ldapValues: map[string]registry.UpstreamLDAP{},
		githubs: sources{}, githubValues: map[string]registry.UpstreamGitHub{},
		created: map[string]time.Time{}, rotations: map[string]convert.RotationState{}, now: time.Now,
	}, nil
}

// Demo returns the first client_credentials client whose Secret is marked as demo data, if any.
func (l *Loader) Demo() *DemoClient { return l.demo }

// Load reads the folder once and makes the registry equal to it, publishing the whole load as
// one registry snapshot. When ctx ends first it returns ctx's error having published nothing;
// the loader is then to be dropped (the server is stopping).
func (l *Loader) Load(ctx context.Context) error {
	logr.FromContextOrDiscard(ctx).Info("loading manifests", "dir", l.dir)
	objs, err := l.Parse(ctx)
	if err != nil {
		return err
	}
	var b batch
	if err := l.apply(ctx, objs, &b); err != nil {
		return err
	}
	b.publish(l.reg)
	return nil
}

// Parse reads every manifest of the folder, files in parallel (one per CPU). On the first parse a
// file that does not parse is an error (naming the file and line). Later, a file that fails to
// parse contributes what it held at its last good parse (nothing, if it never parsed), with a
// warning, so a half-saved edit does not drop clients. It stops with ctx's error when ctx ends.
func (l *Loader) Parse(ctx context.Context) (*Objects, error) {
	first := l.files == nil
	var paths []string
	err := filepath.WalkDir(l.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && isManifest(path) {
			paths = append(paths, path)
		}
		return ctx.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("manifests in %s: %w", l.dir, err)
	}
	slices.Sort(paths) // files in path order (WalkDir's differs around sub-folders)
	parsed := make([]*Objects, len(paths))
	contents := make([][]byte, len(paths))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(goruntime.GOMAXPROCS(0))
	for i, path := range paths {
		g.Go(func() error {
			fo, data, ferr := l.parseFile(gctx, path)
			if ferr != nil {
				if gctx.Err() != nil {
					return gctx.Err()
				}
				if first {
					return ferr
				}
				l.unparsed(ctx, path, ferr)
				if data = l.files[path]; data == nil {
					return nil // it never parsed
				}
				if fo, ferr = l.parseBytes(gctx, path, data); ferr != nil {
					return gctx.Err() // it parsed before: only an ended context fails it
				}
			}
			parsed[i], contents[i] = fo, data
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("manifests in %s: %w", l.dir, err)
	}
	files := make(map[string][]byte, len(paths))
	objs := newObjects()
	for i, p := range paths {
		fo := parsed[i]
		if fo == nil {
			continue
		}
		files[p] = contents[i]
		objs.Clients = append(objs.Clients, fo.Clients...)
		objs.Scopes = append(objs.Scopes, fo.Scopes...)
		objs.Users = append(objs.Users, fo.Users...)
		objs.Issuers = append(objs.Issuers, fo.Issuers...)
		objs.Upstreams = append(objs.Upstreams, fo.Upstreams...)
		objs.LDAPs = append(objs.LDAPs, fo.LDAPs...)
		objs.GitHubs = append(objs.GitHubs, fo.GitHubs...)
		objs.Policies = append(objs.Policies, fo.Policies...)
		objs.Resources = append(objs.Resources, fo.Resources...)
		maps.Copy(objs.Secrets, fo.Secrets)
		for obj := range fo.files {
			objs.files[obj] = p
		}
	}
	l.files = files
	return objs, nil
}

func newObjects() *Objects {
	return &Objects{Secrets: map[string]*corev1.Secret{}, files: map[metav1.Object]string{}}
}

func isManifest(path string) bool {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".yaml", ".yml", ".json":
		return !strings.HasPrefix(filepath.Base(path), ".")
	}
	return false
}

// parseFile reads one file whole (there is no size limit) and decodes its documents; it returns
// them and the contents.
func (l *Loader) parseFile(ctx context.Context, path string) (*Objects, []byte, error) {
	data, err := os.ReadFile(path) //nolint:gosec // the operator names the folder
	if err != nil {
		return nil, nil, err
	}
	objs, err := l.parseBytes(ctx, path, data)
	return objs, data, err
}

// parseBytes decodes the documents of the file path that holds data.
func (l *Loader) parseBytes(ctx context.Context, path string, data []byte) (*Objects, error) {
	objs := newObjects()
	if err := l.parse(ctx, bytes.NewReader(data), objs); err != nil {
		return nil, atLine(path, data, err)
	}
	for obj := range objs.files {
		objs.files[obj] = path
	}
	return objs, nil
}

// parse decodes every document of one file; it stops with ctx's error when ctx ends.
func (l *Loader) parse(ctx context.Context, r io.Reader, objs *Objects) error {
	reader := utilyaml.NewYAMLReader(bufio.NewReaderSize(r, 64<<10))
	for i := 0; ; i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return &docError{index: i, err: err}
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		if err := l.decodeDoc(doc, objs); err != nil {
			return &docError{index: i, err: err}
		}
	}
}

func (l *Loader) decodeDoc(doc []byte, objs *Objects) error {
	if !json.Valid(doc) {
		// YAML: converted once, strictly (a duplicate field is an error), here. The strict
		// decoder would convert it twice (once leniently, once to catch duplicates).
		var err error
		if doc, err = yaml.YAMLToJSONStrict(doc); err != nil {
			return err
		}
	}
	obj, _, err := l.decoder.Decode(doc, nil, nil)
	if runtime.IsNotRegisteredError(err) || runtime.IsMissingKind(err) || runtime.IsMissingVersion(err) {
		return nil // another kind of document: skipped
	}
	if err != nil {
		return err
	}
	if objs.files == nil {
		objs.files = map[metav1.Object]string{}
	}
	switch o := obj.(type) {
	case *v1alpha1.OAuthClient:
		if o.Namespace == "" {
			o.Namespace = corev1.NamespaceDefault
		}
		objs.Clients = append(objs.Clients, o)
		objs.files[o] = ""
	case *v1alpha1.Scope:
		objs.Scopes = append(objs.Scopes, o)
		objs.files[o] = ""
	case *v1alpha1.User:
		objs.Users = append(objs.Users, o)
		objs.files[o] = ""
	case *v1alpha1.WorkloadIssuer:
		objs.Issuers = append(objs.Issuers, o)
		objs.files[o] = ""
	case *v1alpha1.OIDCIdentityProvider:
		objs.Upstreams = append(objs.Upstreams, o)
		objs.files[o] = ""
	case *v1alpha1.LDAPIdentityProvider:
		objs.LDAPs = append(objs.LDAPs, o)
	case *v1alpha1.GitHubIdentityProvider:
		objs.GitHubs = append(objs.GitHubs, o)
		objs.files[o] = ""
	case *v1alpha1.OAuthClientPolicy:
		if o.Namespace == "" {
			o.Namespace = corev1.NamespaceDefault
		}
		objs.Policies = append(objs.Policies, o)
		objs.files[o] = ""
	case *v1alpha1.ProtectedResource:
		if o.Namespace == "" {
			o.Namespace = corev1.NamespaceDefault
		}
		objs.Resources = append(objs.Resources, o)
		objs.files[o] = ""
	case *corev1.Secret:
		if o.Namespace == "" {
			o.Namespace = corev1.NamespaceDefault
		}
		// stringData is read where values are read (convert.SecretData), as for Secrets from a
		// cluster.
		objs.Secrets[o.Namespace+"/"+o.Name] = o
	}
	return nil
}

// apply records in b the writes that make the registry equal to objs: puts everything the feed
// policy serves, deletes what went away or is withdrawn, and reports every problem and contested
// name to the Warner. It stops with ctx's error when ctx ends.
func (l *Loader) apply(ctx context.Context, objs *Objects, b *batch) error {
	log := logr.FromContextOrDiscard(ctx)
	r := reporter{warn: l.warn, log: log, objs: objs}
	if r.warn == nil {
		r.warn = logrWarner{log: log}
	}
	l.stamp(objs)

	issuers := make([]item, 0, len(objs.Issuers))
	for _, wi := range objs.Issuers {
		var secret *corev1.Secret
		if ns, name, _, ok := convert.IssuerKeySecretRef(wi); ok {
			secret = objs.Secrets[ns+"/"+name]
		}
		w, err := convert.WorkloadIssuer(wi, secret)
		issuers = append(issuers, item{source: wi.Name, name: wi.Name, obj: wi, decision: feed.WorkloadIssuer(w, err),
			put: func() { l.putIssuer(b, w) }, keysAndValues: []any{"issuer", wi.Spec.Issuer}})
	}
	servedIssuers, _ := r.feed("WorkloadIssuer", "workloadIssuer", issuers, l.issuers, func(name string) { l.deleteIssuer(b, name) }, nil)
	l.issuers = sourcesOf(servedIssuers)
	l.applyUpstreams(r, objs, b)
	l.applyLDAPs(r, objs, b)
	l.applyGitHubs(r, objs, b)

	policies := r.policies(objs.Policies, l.defaultPolicy)
	l.policies.Store(policies)
	clients := make([]item, 0, len(objs.Clients))
	converted := make(map[metav1.Object]registry.Client, len(objs.Clients))
	withSecret := map[metav1.Object]*corev1.Secret{} // the clients served with their secret
	now := l.now()
	rotations := map[string]convert.RotationState{}
	for _, oc := range objs.Clients {
		if err := ctx.Err(); err != nil {
			return err
		}
		name, _ := convert.SecretRef(oc)
		secret := objs.Secrets[oc.Namespace+"/"+name]
		in := convert.ClientInputs{Secret: secret, Now: now, Rotation: l.rotation(oc, secret, now, rotations)}
		if keys, _, ok := convert.KeySecretRef(oc); ok {
			in.Keys = objs.Secrets[oc.Namespace+"/"+keys]
		}
		c, err := convert.ClientWith(oc, in)
		d := withoutGeneratedKeys(oc, feed.Client(c, err))
		if vs := policy.Evaluate(oc, policies.of(oc.Namespace)); d.Put() && len(vs) > 0 {
			d = feed.Decision{Action: feed.Withdraw, Reason: v1alpha1.ReasonPolicyViolation, Message: policy.Message(vs)}
		}
		if d.Action == feed.Serve {
			withSecret[oc] = secret
		}
		converted[oc] = c
		clients = append(clients, item{source: convert.SourceKey(oc.Namespace, oc.Name), name: c.ID, obj: oc, decision: d,
			put: func() { b.PutClient(c) }, keysAndValues: []any{"clientID", convert.ClientID(oc)}})
	}
	l.rotations = rotations // forgets the clients that are gone or stopped rotating
	servedClients, holders := r.feed("OAuthClient", "clientID", clients, l.clients, b.DeleteClient, feed.ClientIDConflict)
	l.clients = sourcesOf(servedClients)
	r.workloadIdentities(servedClients, converted, objs.Issuers)
	l.demo = nil
	for _, oc := range objs.Clients { // the first demo client that holds its ID, in file order
		src := convert.SourceKey(oc.Namespace, oc.Name)
		if secret, ok := withSecret[oc]; ok && servedClients[src] == metav1.Object(oc) && holders[src] {
			if l.demo = demoClient(oc, secret); l.demo != nil {
				break
			}
		}
	}

	scopes := make([]item, 0, len(objs.Scopes))
	for _, s := range objs.Scopes {
		src, sc, err := convert.Scope(s)
		scopes = append(scopes, item{source: src, name: sc.Name, obj: s, decision: feed.Scope(sc, err),
			put: func() { b.PutScope(src, sc) }, keysAndValues: []any{"scope", s.Spec.Name}})
	}
	servedScopes, _ := r.feed("Scope", "scope", scopes, l.scopes, b.DeleteScope, feed.ScopeNameConflict)
	l.scopes = sourcesOf(servedScopes)
	r.unknownScopes(servedClients, servedScopes)

	users := make([]item, 0, len(objs.Users))
	for _, u := range objs.Users {
		var secret *corev1.Secret
		if ns, name, _, ok := convert.PasswordSecretRef(u); ok {
			secret = objs.Secrets[ns+"/"+name]
		}
		ru, err := convert.User(u, secret)
		users = append(users, item{source: u.Name, name: ru.Username, obj: u, decision: feed.User(ru, err),
			put: func() { b.PutUser(ru) }, keysAndValues: []any{"username", u.Spec.Username}})
	}
	servedUsers, _ := r.feed("User", "username", users, l.users, b.DeleteUser, feed.UsernameConflict)
	l.users = sourcesOf(servedUsers)

	l.resources = sourcesOf(r.protectedResources(objs, policies, servedScopes, l.resources, b))

	log.Info("manifests loaded", "dir", l.dir, "clients", len(l.clients), "scopes", len(l.scopes), "users", len(l.users),
		"workloadIssuers", len(l.issuers), "protectedResources", len(l.resources))
	return nil
}

// protectedResources records in b the ProtectedResources the feed policy serves (and the
// deletion of those no longer served, of before) and reports them as a cluster's leader does:
// InvalidSpec and PolicyViolation (not served), AudienceConflict (served; the earlier holds
// the audience), OAuthClients named that the folder does not hold, and owned scopes that no
// served Scope defines. A selector is evaluated against every OAuthClient of the folder in
// the resource's namespace (served or not, as a cluster's cache holds them all).
func (r reporter) protectedResources(objs *Objects, policies *policySet, scopes map[string]metav1.Object,
	before sources, b *batch) map[string]metav1.Object {
	byNamespace := map[string][]*v1alpha1.OAuthClient{}
	exists := map[string]bool{}
	clients := objs.Clients
	if len(objs.Resources) == 0 {
		clients = nil // a folder of many clients and no resources pays nothing here
	}
	for _, oc := range clients {
		byNamespace[oc.Namespace] = append(byNamespace[oc.Namespace], oc)
		exists[convert.SourceKey(oc.Namespace, oc.Name)] = true
	}
	selected := func(namespace string, sel labels.Selector) []string {
		var out []string
		for _, oc := range byNamespace[namespace] {
			if sel.Matches(labels.Set(oc.Labels)) {
				out = append(out, convert.SourceKey(oc.Namespace, oc.Name))
			}
		}
		return out
	}
	defined := make(map[string]bool, len(scopes))
	for _, o := range scopes {
		if s, ok := o.(*v1alpha1.Scope); ok {
			defined[s.Spec.Name] = true
		}
	}
	items := make([]item, 0, len(objs.Resources))
	for _, pr := range objs.Resources {
		p, err := convert.ProtectedResource(pr, selected)
		var unknown []string
		for _, src := range convert.ResourceClientSources(pr) {
			if !exists[src] {
				unknown = append(unknown, src)
			}
		}
		d := feed.ProtectedResource(p, err, unknown)
		if vs := policy.EvaluateResource(pr, policies.of(pr.Namespace)); d.Put() && len(vs) > 0 {
			d = feed.Decision{Action: feed.Withdraw, Reason: v1alpha1.ReasonPolicyViolation, Message: policy.Message(vs)}
		}
		if d.Put() && len(unknown) > 0 {
			r.warn.Warnw("manifest resource names OAuthClients the folder does not hold; they are allowed should they appear",
				"kind", "ProtectedResource", "resource", p.Source, "file", r.objs.File(pr), "clients", unknown)
		}
		items = append(items, item{source: p.Source, name: pr.Spec.Audience, obj: pr, decision: d,
			put: func() { b.PutProtectedResource(p) }, keysAndValues: []any{"audience", pr.Spec.Audience}})
	}
	served, _ := r.feed("ProtectedResource", "audience", items, before, b.DeleteProtectedResource, feed.AudienceConflict)
	for _, src := range slices.Sorted(maps.Keys(served)) {
		pr, ok := served[src].(*v1alpha1.ProtectedResource)
		if !ok {
			continue
		}
		if res := feed.ResourceScopesResolved(pr.Spec.Scopes, func(name string) bool { return defined[name] }); !res.Resolved {
			r.warn.Warnw("manifest resource owns unknown scopes", "kind", "ProtectedResource", "resource", src,
				"file", r.objs.File(pr), "reason", res.Reason, "message", res.Message)
		}
	}
	return served
}

// policies groups the OAuthClientPolicies by namespace, picks the default policy (source key
// def; the first definition, as for every resource defined twice) and warns about those
// policy.Check refuses: they apply as far as they can be read.
func (r reporter) policies(ps []*v1alpha1.OAuthClientPolicy, def string) *policySet {
	out := &policySet{byNamespace: map[string][]v1alpha1.OAuthClientPolicy{}}
	for _, p := range ps {
		src := convert.SourceKey(p.Namespace, p.Name)
		if err := policy.Check(p); err != nil {
			r.warn.Warnw("manifest policy invalid", "kind", "OAuthClientPolicy", "resource", src,
				"file", r.objs.File(p), "reason", v1alpha1.ReasonInvalidSpec, "message", err.Error())
		}
		out.byNamespace[p.Namespace] = append(out.byNamespace[p.Namespace], *p)
		if src == def && out.def == nil {
			out.def = p
		}
	}
	return out
}

// unknownScopes reports each served client that lists scopes neither built in nor defined by a
// served Scope (feed.ScopesResolved, the ScopesResolved condition of a cluster): it is served
// without them.
func (r reporter) unknownScopes(clients, scopes map[string]metav1.Object) {
	defined := make(map[string][]*v1alpha1.Scope, len(scopes))
	for _, o := range scopes {
		if s, ok := o.(*v1alpha1.Scope); ok {
			defined[s.Spec.Name] = append(defined[s.Spec.Name], s)
		}
	}
	for _, src := range slices.Sorted(maps.Keys(clients)) {
		oc, ok := clients[src].(*v1alpha1.OAuthClient)
		if !ok {
			continue
		}
		lookup := func(name string) feed.ScopeLookup {
			var l feed.ScopeLookup
			for _, s := range defined[name] {
				l = max(l, feed.LookupScope(s.Spec.AllowedNamespaces, oc.Namespace))
			}
			return l
		}
		if res := feed.ScopesResolved(oc.Spec.Scopes, lookup); !res.Resolved {
			r.warn.Warnw("manifest client lists unknown or disallowed scopes; it is served without them",
				"kind", "OAuthClient", "resource", src, "file", r.objs.File(oc), "clientID", convert.ClientID(oc),
				"reason", res.Reason, "message", res.Message)
		}
	}
}

// withoutGeneratedKeys adds to the decision about a keyPolicy Generate client served without
// its keys what to do about it here: nothing generates key pairs without a cluster.
func withoutGeneratedKeys(oc *v1alpha1.OAuthClient, d feed.Decision) feed.Decision {
	name, key, ok := convert.KeySecretRef(oc)
	if d.Action != feed.ServeWithoutCredentials || !ok || oc.Spec.KeyPolicy != v1alpha1.KeyPolicyGenerate {
		return d
	}
	d.Message += fmt.Sprintf("; keyPolicy Generate generates no key pair without a cluster: add a Secret %s/%s "+
		"holding the client's public keys (a JWK set) under %q to the folder and give the workload their private key "+
		"(a key Secret generated in a cluster can be copied as it is)", oc.Namespace, name, key)
	return d
}

// rotation advances the rotation state of a client with spec.secretRotation by the leader's
// rule (convert.RotationState.Next) and returns it in the shape of the state Secret the
// conversion reads, so a secret changed between loads keeps working for the grace period as in
// a cluster. next collects the states of this load: a source defined twice advances once.
func (l *Loader) rotation(oc *v1alpha1.OAuthClient, secret *corev1.Secret, now time.Time, next map[string]convert.RotationState) *corev1.Secret {
	if oc.Spec.SecretRotation == nil || !convert.UsesClientSecret(oc) {
		return nil
	}
	src := convert.SourceKey(oc.Namespace, oc.Name)
	st, ok := next[src]
	if !ok {
		hash, hasHash := convert.ClientSecretHash(oc, secret)
		st, _ = l.rotations[src].Next(hash, hasHash, now, convert.GracePeriod(oc))
		next[src] = st
	}
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: oc.Namespace, Name: convert.RotationSecretName(oc)},
		Data:       st.Data(),
	}
}

// item is one converted object of the folder, decided by the feed policy.
type item struct {
	source        string // registry source key
	name          string // the client ID, scope name or username it claims (when served)
	obj           metav1.Object
	decision      feed.Decision
	put           func() // writes the value into the registry
	keysAndValues []any  // identify it in reports
}

// feed applies the decisions of one kind's items: reports them, puts what is served (the first
// definition of a source, in file order), deletes the sources of before that are no longer
// served, and reports every contested name. It returns the served objects by source and which
// of them hold their names.
func (r reporter) feed(kind, nameKey string, items []item, before sources, del func(source string),
	conflict func(name, holder string) feed.Conflict) (served map[string]metav1.Object, holders map[string]bool) {
	served = make(map[string]metav1.Object, len(items))
	defined := make(map[string]bool, len(items))
	var claims []feed.Claim
	for _, it := range items {
		if defined[it.source] {
			r.warn.Warnw("manifest defines a resource again; the first definition is used",
				"kind", kind, "resource", it.source, "file", r.objs.File(it.obj))
			continue
		}
		defined[it.source] = true
		r.decision(it.decision, kind, it.source, it.obj, it.keysAndValues...)
		if !it.decision.Put() {
			continue
		}
		it.put()
		served[it.source] = it.obj
		claims = append(claims, feed.Claim{Name: it.name, Source: it.source, Created: it.obj.GetCreationTimestamp().Time})
	}
	for src := range before {
		if _, ok := served[src]; !ok {
			del(src)
		}
	}
	holders = make(map[string]bool, len(claims))
	for _, c := range claims {
		holders[c.Source] = true
	}
	for _, ct := range feed.Contests(claims) {
		if conflict == nil {
			break // names that cannot be contested (a WorkloadIssuer's is its source)
		}
		for _, o := range ct.Others {
			holders[o.Source] = false
			cf := conflict(ct.Name, ct.Holder.Source)
			r.warn.Warnw("manifest claims a name another resource holds; the earlier one is served",
				"kind", kind, nameKey, ct.Name, "reason", cf.Reason, "message", cf.Message,
				"resource", o.Source, "file", r.objs.File(served[o.Source]),
				"servedResource", ct.Holder.Source, "servedFile", r.objs.File(served[ct.Holder.Source]))
		}
	}
	return served, holders
}

// putIssuer puts w unless the same value is served: a new value makes the server build the
// issuer's key set again and fetch its keys anew. Each value put gets the next generation.
func (l *Loader) putIssuer(b *batch, w registry.WorkloadIssuer) {
	if prev, ok := l.issuerValues[w.Name]; ok {
		w.Generation = prev.Generation
		if reflect.DeepEqual(prev, w) {
			return
		}
	}
	l.issuerGeneration++
	w.Generation = l.issuerGeneration
	l.issuerValues[w.Name] = w
	b.PutWorkloadIssuer(w)
}

func (l *Loader) deleteIssuer(b *batch, name string) {
	delete(l.issuerValues, name)
	b.DeleteWorkloadIssuer(name)
}

// stamp gives every object the creation time of its source: the time the loader first saw it.
// New sources get strictly increasing times in the order of objs (files in path order, documents
// in file order), later than any given before, so one added later never precedes one already
// served; times of sources no longer in the folder are forgotten. A creationTimestamp written in
// a file is ignored, as the API server ignores it.
func (l *Loader) stamp(objs *Objects) {
	now := time.Now().Round(0) // wall clock only
	next := make(map[string]time.Time, len(l.created))
	at := func(key string) metav1.Time {
		t, ok := l.created[key]
		if !ok {
			if t, ok = next[key]; !ok {
				t = now
				if !t.After(l.lastCreated) {
					t = l.lastCreated.Add(time.Nanosecond)
				}
				l.lastCreated = t
			}
		}
		next[key] = t
		return metav1.NewTime(t)
	}
	for _, oc := range objs.Clients {
		oc.CreationTimestamp = at("OAuthClient " + convert.SourceKey(oc.Namespace, oc.Name))
	}
	for _, s := range objs.Scopes {
		s.CreationTimestamp = at("Scope " + s.Name)
	}
	for _, u := range objs.Users {
		u.CreationTimestamp = at("User " + u.Name)
	}
	for _, wi := range objs.Issuers {
		wi.CreationTimestamp = at("WorkloadIssuer " + wi.Name)
	}
	for _, pr := range objs.Resources {
		pr.CreationTimestamp = at("ProtectedResource " + convert.SourceKey(pr.Namespace, pr.Name))
	}
	keys := packed(slices.Collect(maps.Keys(next)))
	l.created = make(map[string]time.Time, len(keys))
	for _, k := range keys {
		l.created[k] = next[k]
	}
}

// workloadIdentities reports the served clients that cannot authenticate by their workload
// identity, as the cluster's leader does in their Ready condition: IssuerNotFound (no
// WorkloadIssuer of that name in the folder), NamespaceNotAllowed, and SubjectConflict (of the
// served clients bound to one (issuer, subject) pair or ServiceAccount, registry.Precedes
// chooses the holder, as the registry does).
func (r reporter) workloadIdentities(served map[string]metav1.Object, converted map[metav1.Object]registry.Client, issuers []*v1alpha1.WorkloadIssuer) {
	byName := make(map[string]*v1alpha1.WorkloadIssuer, len(issuers))
	for _, wi := range issuers {
		if _, ok := byName[wi.Name]; !ok { // the first definition is used
			byName[wi.Name] = wi
		}
	}
	var claims []feed.Claim
	pairs := map[string][2]string{} // claim name -> (issuer, subject)
	for _, src := range slices.Sorted(maps.Keys(served)) {
		obj := served[src]
		c := converted[obj]
		iss, sub, ok := c.WorkloadSubjectKey()
		if !ok {
			continue
		}
		if c.WorkloadIssuer != "" {
			wi, exists := byName[iss]
			var allowed []string
			if exists {
				allowed = wi.Spec.AllowedNamespaces
			}
			if cf, bad := feed.Binding(c.Namespace, iss, exists, allowed); bad {
				r.warn.Warnw("manifest client cannot use its workload identity",
					"kind", "OAuthClient", "resource", src, "file", r.objs.File(obj), "clientID", c.ID,
					"reason", cf.Reason, "message", cf.Message)
				continue // it holds no pair (registry's mayBind)
			}
		}
		key := convert.WorkloadSubjectIndexKey(iss, sub)
		pairs[key] = [2]string{iss, sub}
		claims = append(claims, feed.Claim{Name: key, Source: src, Created: obj.GetCreationTimestamp().Time})
	}
	for _, ct := range feed.Contests(claims) {
		pair := pairs[ct.Name]
		cf := feed.SubjectConflict(pair[0], pair[1], ct.Holder.Source)
		for _, o := range ct.Others {
			r.warn.Warnw("manifest claims a workload identity another client holds; the earlier one authenticates by it",
				"kind", "OAuthClient", "reason", cf.Reason, "message", cf.Message,
				"resource", o.Source, "file", r.objs.File(served[o.Source]),
				"servedResource", ct.Holder.Source, "servedFile", r.objs.File(served[ct.Holder.Source]))
		}
	}
}

// reporter reports one load's problems: warnings through the Warner, errors convert does not
// classify through logr.
type reporter struct {
	warn Warner
	log  logr.Logger
	objs *Objects
}

// decision reports d about the resource kind/source from obj's file, unless it is Ready.
func (r reporter) decision(d feed.Decision, kind, source string, obj metav1.Object, keysAndValues ...any) {
	if !d.Warn() {
		return
	}
	keysAndValues = append([]any{"kind", kind, "resource", source, "file", r.objs.File(obj)}, keysAndValues...)
	switch {
	case d.Reason == "":
		r.warn.Warnw("manifest not served", append(keysAndValues, "message", d.Message)...)
	case d.Action == feed.Withdraw:
		r.warn.Warnw("manifest not served", append(keysAndValues, "reason", d.Reason, "message", d.Message)...)
	default:
		r.warn.Warnw("manifest served without its credentials", append(keysAndValues, "reason", d.Reason, "message", d.Message)...)
	}
}

// demoClient returns the demo credentials of a client served with secret, if it is a
// client_credentials client and the Secret is marked as demo data.
func demoClient(oc *v1alpha1.OAuthClient, secret *corev1.Secret) *DemoClient {
	if secret == nil || secret.Annotations[DemoCredentialsAnnotation] != "true" ||
		!slices.Contains(oc.Spec.GrantTypes, v1alpha1.GrantTypeClientCredentials) {
		return nil
	}
	_, key := convert.SecretRef(oc)
	value, _ := convert.SecretData(secret, key)
	return &DemoClient{ClientID: convert.ClientID(oc), ClientSecret: string(value)}
}

// maxDebounces bounds the wait of a reload: at most maxDebounces×debounce after the first change.
const maxDebounces = 10

// Watch reloads the folder whenever something in it changes, until ctx ends. Changes within
// debounce of each other are applied as one reload, but a folder that never stays quiet (a tool
// rewriting a file in a loop) is still reloaded maxDebounces×debounce after the first change.
func (l *Loader) Watch(ctx context.Context, debounce time.Duration) error {
	log := logr.FromContextOrDiscard(ctx)
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch %s: %w", l.dir, err)
	}
	defer w.Close() //nolint:errcheck // nothing to do about it at shutdown
	if err := addDirs(w, l.dir); err != nil {
		return err
	}
	timer := time.NewTimer(debounce)
	timer.Stop()
	defer timer.Stop()
	var deadline time.Time // of the pending reload; zero: none pending
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if ev.Has(fsnotify.Create) {
				if fi, err := os.Stat(ev.Name); err == nil && fi.IsDir() {
					_ = addDirs(w, ev.Name) //nolint:errcheck // best effort: reported on the next reload
				}
			}
			now := time.Now()
			if deadline.IsZero() {
				deadline = now.Add(maxDebounces * debounce)
			}
			timer.Reset(min(debounce, deadline.Sub(now)))
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			log.Error(err, "watching manifests")
		case <-timer.C:
			deadline = time.Time{}
			if err := l.Load(ctx); err != nil {
				log.Error(err, "reloading manifests")
			}
		}
	}
}

func addDirs(w *fsnotify.Watcher, root string) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if err := w.Add(path); err != nil {
				return fmt.Errorf("watch %s: %w", path, err)
			}
		}
		return nil
	})
}
