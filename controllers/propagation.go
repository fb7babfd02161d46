package controllers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
	"github.com/latchkey-dev/latchkey/controllers/convert"
	"github.com/latchkey-dev/latchkey/server/keys"
)

// Propagation status: every replica reports what its registry serves in one Lease of its own
// (replicaReporter); the leader aggregates the Leases into each resource's status.served and
// Propagated condition (propagation_status.go).
//
// A replica's report is, per kind, a watermark: a resourceVersion W such that every change of
// that kind up to W is taken into its registry. Kubernetes calls resourceVersions opaque; they
// are etcd revisions on every etcd-backed API server, one counter for all resources of a kind's
// storage, so they are compared here as integers. A replica raises its watermark to the highest
// resourceVersion in its cache of the kind when every cached object's generation has been taken
// in by the registry reconciler; otherwise it keeps the previous one. The Lease is written at most
// once a ReportInterval, only when a watermark changed or the renewal is due: O(replicas) API
// writes per burst of changes, whatever the number of objects.

const (
	// LabelReplicaLease marks the Leases that carry replica reports.
	LabelReplicaLease = "oauth.latchkey.dev/replica-lease"
	// annotationWatermarkPrefix + lower-case kind is a watermark annotation of a replica Lease.
	annotationWatermarkPrefix = "propagation.oauth.latchkey.dev/"
	// AnnotationSigningKeys of a replica Lease lists the key each algorithm signs with on that
	// replica: "ES256=<kid>,RS256=<kid>" (empty while it has no key).
	AnnotationSigningKeys = "propagation.oauth.latchkey.dev/signing-keys"
	// replicaLeasePrefix + replica name is the name of a replica's Lease.
	replicaLeasePrefix = "latchkey-replica-"
	// DefaultReplicaLeaseDuration is how long a replica counts as live after its last report.
	DefaultReplicaLeaseDuration = 15 * time.Second
	// DefaultReportInterval is how often a replica may write its report at most.
	DefaultReportInterval = time.Second
)

// propagatedKinds are the kinds whose watermarks a replica reports.
var propagatedKinds = []string{kindOAuthClient, kindScope, kindUser, kindWorkloadIssuer, kindOAuthClientPolicy, kindOIDCIdentityProvider, kindLDAPIdentityProvider, kindGitHubIdentityProvider, kindProtectedResource} //nolint:gochecknoglobals // constant list

// kindSecret's watermark covers the Secrets the registry reads: a replica serves an object's
// current Secret version once this watermark reaches the Secret's resourceVersion.
const kindSecret = "Secret"

// watermarkAnnotation is the annotation of a replica Lease that holds kind's watermark.
func watermarkAnnotation(kind string) string {
	return annotationWatermarkPrefix + strings.ToLower(kind)
}

// DefaultReplicaName is the name a replica reports under: $POD_NAME (the chart sets it from the
// downward API), else the hostname with a random suffix (processes on one host stay apart).
func DefaultReplicaName() string {
	if name := os.Getenv("POD_NAME"); name != "" {
		return name
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "latchkey"
	}
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return strings.ToLower(host) + "-" + hex.EncodeToString(b)
}

// servedVersion is what a registry reconciler took in of an object: its UID and generation,
// and its resourceVersion in the cache then. A change the registry has not taken in came after
// that resourceVersion. For a Secret (which has no generation) generation is the
// resourceVersion it was read at.
type servedVersion struct {
	uid             types.UID
	generation      int64
	resourceVersion uint64
	// seen is the last lag computation that found the object cached (Readiness.lag).
	seen uint64
}

// observe reads an object's UID, generation and resourceVersion before a registry reconcile:
// the reconcile takes in that generation or a later one. The zero value when it cannot be read.
func observe(ctx context.Context, cache client.Reader, key types.NamespacedName, obj client.Object) servedVersion {
	if err := cache.Get(ctx, key, obj); err != nil {
		return servedVersion{}
	}
	return servedVersion{uid: obj.GetUID(), generation: obj.GetGeneration(), resourceVersion: parseResourceVersion(obj.GetResourceVersion())}
}

// secretVersion is the servedVersion of a Secret read from the API server.
func secretVersion(s client.Object) servedVersion {
	rv := parseResourceVersion(s.GetResourceVersion())
	return servedVersion{uid: s.GetUID(), generation: int64(min(rv, math.MaxInt64)), resourceVersion: rv} //nolint:gosec // bounded
}

// markServed records that the registry took in v of the object (nothing for a deleted one).
func (r *Readiness) markServed(kind string, key types.NamespacedName, v servedVersion) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.served[kind]
	if v.uid == "" {
		delete(m, key)
		return
	}
	if m == nil {
		m = map[types.NamespacedName]*servedVersion{}
		r.served[kind] = m
	}
	if cur, ok := m[key]; ok {
		v.seen = cur.seen
	}
	m[key] = &v
	r.takenIn++
}

// takenInCount counts what the registry reconcilers took in so far (a report is computed again
// only after it changed, or at a renewal).
func (r *Readiness) takenInCount() uint64 {
	if r == nil {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.takenIn
}

// takeIn runs one registry reconcile of the object at key of kind (obj is scratch space of its
// type): it gives reconcile a Secret reader that records what it reads and, when reconcile
// succeeds, records the object as processed and the versions of it and of those Secrets as
// served (the replica's propagation report). A nil Readiness only runs reconcile.
func (r *Readiness) takeIn(ctx context.Context, cache client.Reader, kind string, key types.NamespacedName, obj client.Object,
	secrets client.Reader, reconcile func(secrets client.Reader) (ctrl.Result, error),
) (ctrl.Result, error) {
	if r == nil {
		return reconcile(secrets)
	}
	seen := observe(ctx, cache, key, obj)
	reads := &secretReads{Reader: secrets}
	res, err := reconcile(reads)
	if err != nil {
		return res, err
	}
	r.markProcessed(kind, key)
	r.markServed(kind, key, seen)
	for _, s := range reads.read {
		r.markServed(kindSecret, s.key, s.version)
	}
	return res, nil
}

// secretReads is a Secret reader that remembers the version of every Secret it read.
type secretReads struct {
	client.Reader
	mu   sync.Mutex
	read []secretRead
}

type secretRead struct {
	key     types.NamespacedName
	version servedVersion
}

func (s *secretReads) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if err := s.Reader.Get(ctx, key, obj, opts...); err != nil {
		return err //nolint:wrapcheck // a reader's error as it is
	}
	if _, ok := obj.(*corev1.Secret); ok {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.read = append(s.read, secretRead{key: key, version: secretVersion(obj)})
	}
	return nil
}

// cachedVersion is what the cache holds of an object.
type cachedVersion struct {
	key             types.NamespacedName
	uid             types.UID
	generation      int64
	resourceVersion uint64
	// secrets are the Secrets the object's registry reconcile reads (secretsOf).
	secrets []types.NamespacedName
}

// lagReport is what a replica's registry has not taken in of a kind's cached objects.
type lagReport struct {
	// highest is the highest resourceVersion among the cached objects.
	highest uint64
	// pending are the cached objects whose current generation is not taken in, each with the
	// resourceVersion at which the registry last took it in (0: never).
	pending []pendingObject
}

type pendingObject struct {
	key     types.NamespacedName
	takenIn uint64
}

// lag compares the cached objects of kind with what the registry took in. It forgets the
// objects no longer cached.
func (r *Readiness) lag(kind string, cached []cachedVersion) lagReport {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lags++
	var rep lagReport
	served := r.served[kind]
	for _, c := range cached {
		rep.highest = max(rep.highest, c.resourceVersion)
		v := served[c.key]
		if v != nil {
			v.seen = r.lags
			if v.uid == c.uid && v.generation >= c.generation {
				continue
			}
			// Taken in before (maybe another object under the same name, deleted since):
			// whatever it is now came later.
			rep.pending = append(rep.pending, pendingObject{key: c.key, takenIn: v.resourceVersion})
			continue
		}
		rep.pending = append(rep.pending, pendingObject{key: c.key})
	}
	for key, v := range served {
		if v.seen != r.lags {
			delete(served, key)
		}
	}
	return rep
}

// parseResourceVersion reads a resourceVersion as an etcd revision; 0 when it is not one.
func parseResourceVersion(rv string) uint64 {
	n, err := strconv.ParseUint(rv, 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// watermarks computes a replica's report from its cache and what its registry took in.
//
// A kind's watermark W promises that every change of the kind up to W is taken in. With nothing
// pending it is the highest cached resourceVersion. While objects are pending it still rises,
// to the lowest bound below which each pending object's change cannot lie, so constant churn
// does not stall it. Two bounds are known of a pending object: the resourceVersion at which the
// registry last took it in (the change came later), and, when it was first seen pending, the
// highest resourceVersion cached at the computation before (it was absent or taken in then,
// and an informer delivers a kind's changes in order, so the change came later than all of
// them).
type watermarks struct {
	cache   client.Reader
	ready   *Readiness
	metrics PropagationMetrics // optional
	last    map[string]uint64
	// previous is each kind's highest cached resourceVersion at the previous computation.
	previous map[string]uint64
	// noticed is, per kind, each pending object's previous when it was first seen pending.
	noticed map[string]map[types.NamespacedName]uint64
}

// PropagationMetrics records, per kind, how many cached objects this replica's registry has not
// taken in the current generation of, and the watermark it reports; *metrics.Metrics implements
// it.
type PropagationMetrics interface {
	RegistryLag(kind string, pending int, watermark uint64)
}

func (w *watermarks) compute(ctx context.Context) (map[string]uint64, error) {
	if w.last == nil {
		w.last, w.previous, w.noticed = map[string]uint64{}, map[string]uint64{}, map[string]map[types.NamespacedName]uint64{}
	}
	var referenced []types.NamespacedName
	for _, kind := range propagatedKinds {
		cached, err := listCached(ctx, w.cache, kind)
		if err != nil {
			return nil, err
		}
		for _, c := range cached {
			referenced = append(referenced, c.secrets...)
		}
		w.advance(kind, cached)
	}
	secrets, err := listCachedSecrets(ctx, w.cache, referenced)
	if err != nil {
		return nil, err
	}
	w.advance(kindSecret, secrets)
	return maps.Clone(w.last), nil
}

// advance raises kind's watermark as far as what the registry took in allows.
func (w *watermarks) advance(kind string, cached []cachedVersion) {
	rep := w.ready.lag(kind, cached)
	bound := rep.highest
	noticed := make(map[types.NamespacedName]uint64, len(rep.pending))
	for _, p := range rep.pending {
		first, ok := w.noticed[kind][p.key]
		if !ok {
			first = w.previous[kind]
		}
		noticed[p.key] = first
		bound = min(bound, max(first, p.takenIn))
	}
	w.noticed[kind] = noticed
	w.previous[kind] = rep.highest
	w.last[kind] = max(w.last[kind], bound)
	if w.metrics != nil {
		w.metrics.RegistryLag(kind, len(rep.pending), w.last[kind])
	}
}

// secretsOf returns the Secrets an object's registry reconcile reads.
func secretsOf(obj client.Object) []types.NamespacedName {
	switch o := obj.(type) {
	case *v1alpha1.OAuthClient:
		names := convert.SecretNames(o)
		out := make([]types.NamespacedName, 0, len(names))
		for _, name := range names {
			out = append(out, types.NamespacedName{Namespace: o.Namespace, Name: name})
		}
		return out
	case *v1alpha1.User:
		if ns, name, _, ok := convert.PasswordSecretRef(o); ok && ns != "" && name != "" {
			return []types.NamespacedName{{Namespace: ns, Name: name}}
		}
	case *v1alpha1.WorkloadIssuer:
		if ref := o.Spec.JWKSSecretRef; ref != nil && ref.Namespace != "" && ref.Name != "" {
			return []types.NamespacedName{{Namespace: ref.Namespace, Name: ref.Name}}
		}
	case *v1alpha1.OIDCIdentityProvider:
		if ns, name, _, ok := convert.UpstreamClientSecretRef(o); ok && ns != "" && name != "" {
			return []types.NamespacedName{{Namespace: ns, Name: name}}
		}
	case *v1alpha1.LDAPIdentityProvider:
		if ns, name := convert.LDAPBindSecretRef(o); ns != "" && name != "" {
			return []types.NamespacedName{{Namespace: ns, Name: name}}
		}
	case *v1alpha1.GitHubIdentityProvider:
		if ref := o.Spec.Client.SecretRef; ref.Namespace != "" && ref.Name != "" {
			return []types.NamespacedName{{Namespace: ref.Namespace, Name: ref.Name}}
		}
	}
	return nil
}

// newObjectList returns an empty list of a propagated kind.
func newObjectList(kind string) (client.ObjectList, error) {
	switch kind {
	case kindOAuthClient:
		return &v1alpha1.OAuthClientList{}, nil
	case kindScope:
		return &v1alpha1.ScopeList{}, nil
	case kindUser:
		return &v1alpha1.UserList{}, nil
	case kindWorkloadIssuer:
		return &v1alpha1.WorkloadIssuerList{}, nil
	case kindOAuthClientPolicy:
		return &v1alpha1.OAuthClientPolicyList{}, nil
	case kindOIDCIdentityProvider:
		return &v1alpha1.OIDCIdentityProviderList{}, nil
	case kindLDAPIdentityProvider:
		return &v1alpha1.LDAPIdentityProviderList{}, nil
	case kindGitHubIdentityProvider:
		return &v1alpha1.GitHubIdentityProviderList{}, nil
	case kindProtectedResource:
		return &v1alpha1.ProtectedResourceList{}, nil
	default:
		return nil, fmt.Errorf("unknown kind %q", kind)
	}
}

// listCached lists the cached objects of kind.
func listCached(ctx context.Context, c client.Reader, kind string) ([]cachedVersion, error) {
	list, err := newObjectList(kind)
	if err != nil {
		return nil, err
	}
	if err := c.List(ctx, list, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("list %ss: %w", kind, err)
	}
	var out []cachedVersion
	err = meta.EachListItem(list, func(o runtime.Object) error {
		obj, ok := o.(client.Object)
		if !ok {
			return fmt.Errorf("%T is not an object", o)
		}
		out = append(out, cachedVersion{
			key: client.ObjectKeyFromObject(obj), uid: obj.GetUID(), generation: obj.GetGeneration(),
			resourceVersion: parseResourceVersion(obj.GetResourceVersion()), secrets: secretsOf(obj),
		})
		return nil
	})
	return out, err
}

// listCachedSecrets returns the cached Secrets (metadata) among referenced.
func listCachedSecrets(ctx context.Context, c client.Reader, referenced []types.NamespacedName) ([]cachedVersion, error) {
	if len(referenced) == 0 {
		return nil, nil
	}
	want := make(map[types.NamespacedName]struct{}, len(referenced))
	for _, key := range referenced {
		want[key] = struct{}{}
	}
	list := &metav1.PartialObjectMetadataList{}
	list.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("SecretList"))
	if err := c.List(ctx, list, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("list Secrets: %w", err)
	}
	var out []cachedVersion
	for i := range list.Items {
		s := &list.Items[i]
		key := client.ObjectKeyFromObject(s)
		if _, ok := want[key]; !ok {
			continue
		}
		v := secretVersion(s)
		out = append(out, cachedVersion{key: key, uid: v.uid, generation: v.generation, resourceVersion: v.resourceVersion})
	}
	return out, nil
}

// replicaReporter runs on every replica: it writes the replica's Lease, with its watermarks,
// when they changed (at most once an interval) and when the renewal is due (a third of the lease
// duration).
type replicaReporter struct {
	client client.Client // writes
	reader client.Reader // the API reader: the own Lease
	cache  interface {
		client.Reader
		WaitForCacheSync(ctx context.Context) bool
	}
	marks    watermarks
	signers  func() string // the AnnotationSigningKeys value; nil: none reported
	lease    types.NamespacedName
	name     string
	duration time.Duration
	interval time.Duration
	now      func() time.Time

	current      *coordinationv1.Lease // as last written; nil: read it first
	lastRenew    time.Time
	lastReported map[string]uint64
	lastSigners  string
	lastTakenIn  uint64 // Readiness.takenInCount at the last computation
	// notBefore: the next computation waits until then (the last marks are written
	// meanwhile), so that the passes over the cache take at most 1/computeShare of the time.
	notBefore time.Time
}

// computeShare: a replica spends at most 1/computeShare of its (wall) time computing
// watermarks. A pass costs a few microseconds per cached object, plus the garbage of listing
// the cache; with 100k objects taking changes in (a start-up), one a second would take most of
// a core.
const computeShare = 20

var _ manager.LeaderElectionRunnable = (*replicaReporter)(nil)

func (r *replicaReporter) NeedLeaderElection() bool { return false }

func (r *replicaReporter) Start(ctx context.Context) error {
	if !r.cache.WaitForCacheSync(ctx) {
		return nil
	}
	logger := log.FromContext(ctx).WithValues("lease", r.lease.String())
	tick := time.NewTicker(r.interval)
	defer tick.Stop()
	for {
		if err := r.report(ctx); err != nil {
			logger.Error(err, "writing the replica report; retrying")
		}
		select {
		case <-ctx.Done():
			r.withdraw(logger)
			return nil
		case <-tick.C:
		}
	}
}

// withdraw deletes the replica's Lease when it stops: it drops out of the served counts at
// once rather than when its lease expires.
func (r *replicaReporter) withdraw(logger logr.Logger) {
	if r.current == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := r.client.Delete(ctx, r.current, client.Preconditions{UID: &r.current.UID})
	if err != nil && !apierrors.IsNotFound(err) {
		logger.Error(err, "deleting the replica report; it expires instead")
	}
}

// report writes the Lease when the watermarks or the signers changed or the renewal is due.
// The watermarks are computed again (a pass over the cache) only when the registry took
// something in since the last computation, or for the renewal (status writes alone raise no
// target past them in the meantime), and then only when the computation budget allows
// (computeShare); otherwise the last ones are written again: a watermark is a lower bound, so a
// stale one is late, never wrong.
func (r *replicaReporter) report(ctx context.Context) error {
	var signers string
	if r.signers != nil {
		signers = r.signers()
	}
	now := r.now()
	renew := r.current == nil || now.Sub(r.lastRenew) >= r.duration/3
	takenIn := r.marks.ready.takenInCount()
	due := !now.Before(r.notBefore)
	marks := r.lastReported
	if r.lastReported == nil || (due && (renew || takenIn != r.lastTakenIn)) {
		started := time.Now()
		var err error
		if marks, err = r.marks.compute(ctx); err != nil {
			return err
		}
		r.notBefore = now.Add(time.Since(started) * (computeShare - 1))
		r.lastTakenIn = takenIn
	}
	if !renew && maps.Equal(marks, r.lastReported) && signers == r.lastSigners {
		return nil
	}
	if err := r.write(ctx, marks, signers, now); err != nil {
		r.current = nil // read it again: someone else may have written it
		return err
	}
	r.lastReported, r.lastSigners, r.lastRenew = marks, signers, now
	return nil
}

// signingKeyIDs gives the AnnotationSigningKeys value of a keyring that tells its signers
// (*keys.Keyring does); nil for one that does not.
func signingKeyIDs(k KeyLoader, algorithms []string) func() string {
	signers, ok := k.(interface {
		Signer(alg string) (*keys.Signer, error)
	})
	if !ok {
		return nil
	}
	algs := slices.Sorted(slices.Values(algorithms))
	return func() string {
		var ids []string
		for _, alg := range algs {
			if sg, err := signers.Signer(alg); err == nil {
				ids = append(ids, alg+"="+sg.KeyID)
			}
		}
		return strings.Join(ids, ",")
	}
}

func (r *replicaReporter) write(ctx context.Context, marks map[string]uint64, signers string, now time.Time) error {
	if r.current == nil {
		var l coordinationv1.Lease
		err := r.reader.Get(ctx, r.lease, &l)
		switch {
		case apierrors.IsNotFound(err):
			l = coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: r.lease.Namespace, Name: r.lease.Name}}
			r.fill(&l, marks, signers, now)
			if err := r.client.Create(ctx, &l); err != nil {
				return fmt.Errorf("create Lease: %w", err)
			}
			r.current = &l
			return nil
		case err != nil:
			return fmt.Errorf("get Lease: %w", err)
		}
		r.current = &l
	}
	l := r.current.DeepCopy()
	r.fill(l, marks, signers, now)
	if err := r.client.Update(ctx, l); err != nil {
		return fmt.Errorf("update Lease: %w", err)
	}
	r.current = l
	return nil
}

// fill sets the Lease's holder, timings, label, watermark and signing key annotations.
func (r *replicaReporter) fill(l *coordinationv1.Lease, marks map[string]uint64, signers string, now time.Time) {
	if l.Labels == nil {
		l.Labels = map[string]string{}
	}
	l.Labels[LabelReplicaLease] = "true"
	if l.Annotations == nil {
		l.Annotations = map[string]string{}
	}
	for kind, w := range marks {
		l.Annotations[watermarkAnnotation(kind)] = strconv.FormatUint(w, 10)
	}
	if r.signers != nil {
		l.Annotations[AnnotationSigningKeys] = signers
	}
	l.Spec.HolderIdentity = ptr.To(r.name)
	l.Spec.LeaseDurationSeconds = ptr.To(int32(max(1, r.duration.Round(time.Second)/time.Second)))
	renew := metav1.NewMicroTime(now)
	l.Spec.RenewTime = &renew
	if l.Spec.AcquireTime == nil {
		l.Spec.AcquireTime = &renew
	}
}
