package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
)

// replicaReport is one live replica's report, read from its Lease.
type replicaReport struct {
	name       string
	watermarks map[string]uint64
	expires    time.Time
	// signingKeys is its AnnotationSigningKeys value.
	signingKeys string
}

// liveReports reads the replica Leases in namespace and keeps those not expired at now, sorted
// by name.
func liveReports(ctx context.Context, c client.Reader, namespace string, now time.Time) ([]replicaReport, error) {
	var leases coordinationv1.LeaseList
	if err := c.List(ctx, &leases, client.InNamespace(namespace), client.HasLabels{LabelReplicaLease}); err != nil {
		return nil, fmt.Errorf("list replica Leases: %w", err)
	}
	var out []replicaReport
	for i := range leases.Items {
		l := &leases.Items[i]
		if l.Spec.RenewTime == nil || l.Spec.LeaseDurationSeconds == nil {
			continue
		}
		expires := l.Spec.RenewTime.Add(time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second)
		if !now.Before(expires) {
			continue
		}
		name := l.Name
		if l.Spec.HolderIdentity != nil {
			name = *l.Spec.HolderIdentity
		}
		r := replicaReport{name: name, expires: expires, watermarks: map[string]uint64{}, signingKeys: l.Annotations[AnnotationSigningKeys]}
		for _, kind := range append(propagatedKinds, kindSecret) {
			r.watermarks[kind] = parseResourceVersion(l.Annotations[watermarkAnnotation(kind)])
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b replicaReport) int { return strings.Compare(a.name, b.name) })
	return out, nil
}

// propagation is how many live replicas serve a version of an object.
type propagation struct {
	served  int
	total   int
	lagging []string // names of the replicas that do not serve it yet
	secrets bool     // the version includes the object's Secrets
}

// propagationTarget is what a replica's watermarks must reach to serve an object's version:
// the resourceVersion of its generation and, when it reads Secrets, the highest of theirs.
type propagationTarget struct {
	resourceVersion uint64
	secrets         uint64 // 0: no Secret
}

// propagationOf counts the reports whose watermarks of kind (and of Secrets) reach target.
func propagationOf(reports []replicaReport, kind string, target propagationTarget) propagation {
	p := propagation{total: len(reports), secrets: target.secrets != 0}
	for _, r := range reports {
		if r.watermarks[kind] >= target.resourceVersion && r.watermarks[kindSecret] >= target.secrets {
			p.served++
		} else {
			p.lagging = append(p.lagging, r.name)
		}
	}
	return p
}

// String is the status.served column: "2/3".
func (p propagation) String() string { return fmt.Sprintf("%d/%d", p.served, p.total) }

// complete reports whether every live replica (at least one) serves the version.
func (p propagation) complete() bool { return p.total > 0 && p.served == p.total }

// condition is the Propagated condition.
func (p propagation) condition(generation int64) metav1.Condition {
	c := metav1.Condition{Type: v1alpha1.ConditionPropagated, ObservedGeneration: generation}
	version := fmt.Sprintf("generation %d", generation)
	if p.secrets {
		version += " and its Secrets' current versions"
	}
	switch {
	case p.total == 0:
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, v1alpha1.ReasonNoReplicas, "no live replica has reported what it serves"
	case p.complete():
		c.Status, c.Reason = metav1.ConditionTrue, v1alpha1.ReasonPropagated
		c.Message = fmt.Sprintf("every live replica (%d) serves %s", p.total, version)
	default:
		c.Status, c.Reason = metav1.ConditionFalse, v1alpha1.ReasonLagging
		c.Message = fmt.Sprintf("%s of %d live replicas serve %s; not yet: %s", p, p.total, version, strings.Join(p.lagging, ", "))
	}
	return c
}

// targets remembers, per object, the resourceVersion at which the leader first saw its current
// generation: replicas serve the generation once their watermark reaches it. The object's own
// resourceVersion would not do: every status write raises it, and the count would chase it.
// A new leader starts from the resourceVersions it first sees (later than the change, never
// earlier: the count is conservative). Secrets have no status, so their target is their
// resourceVersion. since is when the target last changed (the settling delay).
type targets struct {
	mu   sync.Mutex
	seen map[types.UID]target
}

type target struct {
	generation int64
	propagationTarget
	since time.Time
}

func (t *targets) of(obj client.Object, secrets uint64, now time.Time) (propagationTarget, time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.seen == nil {
		t.seen = map[types.UID]target{}
	}
	cur, ok := t.seen[obj.GetUID()]
	switch {
	case !ok || cur.generation != obj.GetGeneration():
		cur = target{generation: obj.GetGeneration(), since: now,
			propagationTarget: propagationTarget{resourceVersion: parseResourceVersion(obj.GetResourceVersion()), secrets: secrets}}
	case cur.secrets != secrets:
		cur.secrets, cur.since = secrets, now
	}
	t.seen[obj.GetUID()] = cur
	return cur.propagationTarget, cur.since
}

func (t *targets) forget(uid types.UID) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.seen, uid)
}

// propagatedKind is what the leader's propagation controller needs of a kind.
type propagatedKind struct {
	kind    string
	newObj  func() client.Object
	newList func() client.ObjectList
	// status points into the object's status.served and conditions.
	status func(client.Object) (served *string, conditions *[]metav1.Condition)
	// forSecret maps a Secret to the objects that read it; nil for a kind that reads none.
	forSecret func(client.Reader) handler.MapFunc
}

//nolint:forcetypeassert // each kind's functions get only its own objects
var propagatedKindsStatus = []propagatedKind{ //nolint:gochecknoglobals // constant table
	{kindOAuthClient, func() client.Object { return &v1alpha1.OAuthClient{} }, func() client.ObjectList { return &v1alpha1.OAuthClientList{} },
		func(o client.Object) (*string, *[]metav1.Condition) {
			oc := o.(*v1alpha1.OAuthClient)
			return &oc.Status.Served, &oc.Status.Conditions
		}, clientsForSecret},
	{kindScope, func() client.Object { return &v1alpha1.Scope{} }, func() client.ObjectList { return &v1alpha1.ScopeList{} },
		func(o client.Object) (*string, *[]metav1.Condition) {
			s := o.(*v1alpha1.Scope)
			return &s.Status.Served, &s.Status.Conditions
		}, nil},
	{kindUser, func() client.Object { return &v1alpha1.User{} }, func() client.ObjectList { return &v1alpha1.UserList{} },
		func(o client.Object) (*string, *[]metav1.Condition) {
			u := o.(*v1alpha1.User)
			return &u.Status.Served, &u.Status.Conditions
		}, usersForSecret},
	{kindWorkloadIssuer, func() client.Object { return &v1alpha1.WorkloadIssuer{} }, func() client.ObjectList { return &v1alpha1.WorkloadIssuerList{} },
		func(o client.Object) (*string, *[]metav1.Condition) {
			w := o.(*v1alpha1.WorkloadIssuer)
			return &w.Status.Served, &w.Status.Conditions
		}, issuersForSecret},
	{kindOAuthClientPolicy, func() client.Object { return &v1alpha1.OAuthClientPolicy{} }, func() client.ObjectList { return &v1alpha1.OAuthClientPolicyList{} },
		func(o client.Object) (*string, *[]metav1.Condition) {
			p := o.(*v1alpha1.OAuthClientPolicy)
			return &p.Status.Served, &p.Status.Conditions
		}, nil},
	{kindOIDCIdentityProvider, func() client.Object { return &v1alpha1.OIDCIdentityProvider{} }, func() client.ObjectList { return &v1alpha1.OIDCIdentityProviderList{} },
		func(o client.Object) (*string, *[]metav1.Condition) {
			p := o.(*v1alpha1.OIDCIdentityProvider)
			return &p.Status.Served, &p.Status.Conditions
		}, upstreamsForSecret},
	{kindLDAPIdentityProvider, func() client.Object { return &v1alpha1.LDAPIdentityProvider{} }, func() client.ObjectList { return &v1alpha1.LDAPIdentityProviderList{} },
		func(o client.Object) (*string, *[]metav1.Condition) {
			p := o.(*v1alpha1.LDAPIdentityProvider)
			return &p.Status.Served, &p.Status.Conditions
		}, ldapProvidersForSecret},
	{kindGitHubIdentityProvider, func() client.Object { return &v1alpha1.GitHubIdentityProvider{} }, func() client.ObjectList { return &v1alpha1.GitHubIdentityProviderList{} },
		func(o client.Object) (*string, *[]metav1.Condition) {
			p := o.(*v1alpha1.GitHubIdentityProvider)
			return &p.Status.Served, &p.Status.Conditions
		}, githubsForSecret},
	{kindProtectedResource, func() client.Object { return &v1alpha1.ProtectedResource{} }, func() client.ObjectList { return &v1alpha1.ProtectedResourceList{} },
		func(o client.Object) (*string, *[]metav1.Condition) {
			p := o.(*v1alpha1.ProtectedResource)
			return &p.Status.Served, &p.Status.Conditions
		}, nil},
}

// propagationSettle is how long after a change the leader waits for every replica before it
// writes a partial count: a change that reaches every replica within it gets one status write
// (n/n), not one per replica (1/n, 2/n, ...).
const propagationSettle = 2 * time.Second

// propagationReconciler is the leader's, one per kind: it writes status.served and the
// Propagated condition from the replica reports. Only a changed count (or set of lagging
// replicas) is written.
type propagationReconciler struct {
	propagatedKind
	client    client.Client
	namespace string
	now       func() time.Time
	// expiries tells when the set of live replicas changed without a Lease event (one expired).
	expiries <-chan event.GenericEvent
	targets  targets
	uids     sync.Map // types.NamespacedName → types.UID, to forget deleted objects
	// incomplete holds the objects (types.NamespacedName) whose last count was not every
	// live replica: those a rising watermark may change (reportEvents).
	incomplete sync.Map
}

func (r *propagationReconciler) setup(mgr ctrl.Manager) error {
	b := ctrl.NewControllerManagedBy(mgr).
		Named(strings.ToLower(r.kind)+"-propagation").
		// Every change: a status write of another controller may drop the condition (a merge
		// patch replaces the list), which this one then writes again.
		For(r.newObj()).
		Watches(&coordinationv1.Lease{}, r.reportEvents(), builder.WithPredicates(replicaReportChanged(r.namespace)))
	if r.expiries != nil {
		b = b.WatchesRawSource(source.Channel(r.expiries, handler.EnqueueRequestsFromMapFunc(r.all)))
	}
	if r.forSecret != nil {
		b = b.WatchesMetadata(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.forSecret(r.client)))
	}
	return b.Complete(retryConflicts(r))
}

// reportEvents enqueues, for a replica report's event, the objects whose count it may change:
// every object when a replica came or went (its Lease created or deleted) or a watermark went
// down (a replica started again under its name); when watermarks only rose, the objects whose
// last count was incomplete, since a complete count stays complete while watermarks rise. A
// replica taking in a burst of changes then costs the leader work for the objects still
// lagging, not for all of them on each report.
func (r *propagationReconciler) reportEvents() handler.EventHandler {
	all := func(ctx context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
		for _, req := range r.all(ctx, nil) {
			q.Add(req)
		}
	}
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, _ event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			all(ctx, q)
		},
		DeleteFunc: func(ctx context.Context, _ event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			all(ctx, q)
		},
		GenericFunc: func(ctx context.Context, _ event.GenericEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			all(ctx, q)
		},
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			if watermarkFell(e.ObjectOld, e.ObjectNew) {
				all(ctx, q)
				return
			}
			r.incomplete.Range(func(key, _ any) bool {
				q.Add(reconcile.Request{NamespacedName: key.(types.NamespacedName)}) //nolint:forcetypeassert // only keys are stored
				return true
			})
		},
	}
}

// watermarkFell reports whether a watermark of the report cur is lower than in old.
func watermarkFell(old, cur client.Object) bool {
	for _, kind := range append(propagatedKinds, kindSecret) {
		a := watermarkAnnotation(kind)
		if parseResourceVersion(cur.GetAnnotations()[a]) < parseResourceVersion(old.GetAnnotations()[a]) {
			return true
		}
	}
	return false
}

// replicaReportChanged passes the events of replica Leases in namespace that change what they
// report (not the renewals: an expiry is told by liveReplicaWatch).
func replicaReportChanged(namespace string) predicate.Predicate {
	return replicaLeaseChanged(namespace, func(old, cur client.Object) bool {
		return !equality.Semantic.DeepEqual(old.GetAnnotations(), cur.GetAnnotations())
	})
}

// replicaLeaseChanged passes the creations and deletions of replica Leases in namespace, and the
// updates that changed says matter.
func replicaLeaseChanged(namespace string, changed func(old, cur client.Object) bool) predicate.Predicate {
	isReport := func(o client.Object) bool {
		_, ok := o.GetLabels()[LabelReplicaLease]
		return ok && o.GetNamespace() == namespace
	}
	return predicate.Funcs{
		CreateFunc:  func(e event.CreateEvent) bool { return isReport(e.Object) },
		DeleteFunc:  func(e event.DeleteEvent) bool { return isReport(e.Object) },
		GenericFunc: func(e event.GenericEvent) bool { return isReport(e.Object) },
		UpdateFunc: func(e event.UpdateEvent) bool {
			return isReport(e.ObjectNew) && changed(e.ObjectOld, e.ObjectNew)
		},
	}
}

// all enqueues every object of the kind.
func (r *propagationReconciler) all(ctx context.Context, _ client.Object) []reconcile.Request {
	list := r.newList()
	if err := r.client.List(ctx, list, client.UnsafeDisableDeepCopy); err != nil {
		return nil
	}
	var reqs []reconcile.Request
	_ = meta.EachListItem(list, func(o runtime.Object) error {
		if obj, ok := o.(client.Object); ok {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(obj)})
		}
		return nil
	})
	return reqs
}

// secretsTarget is the highest resourceVersion among the cached Secrets obj reads; 0 for none.
func (r *propagationReconciler) secretsTarget(ctx context.Context, obj client.Object) (uint64, error) {
	var highest uint64
	for _, key := range secretsOf(obj) {
		s := &metav1.PartialObjectMetadata{}
		s.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
		if err := r.client.Get(ctx, key, s); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return 0, fmt.Errorf("get Secret %s: %w", key, err)
		}
		highest = max(highest, parseResourceVersion(s.ResourceVersion))
	}
	return highest, nil
}

func (r *propagationReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	obj := r.newObj()
	if err := r.client.Get(ctx, req.NamespacedName, obj); err != nil {
		if apierrors.IsNotFound(err) {
			if uid, ok := r.uids.LoadAndDelete(req.NamespacedName); ok {
				r.targets.forget(uid.(types.UID)) //nolint:forcetypeassert // only UIDs are stored
			}
			r.incomplete.Delete(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !obj.GetDeletionTimestamp().IsZero() {
		return ctrl.Result{}, nil
	}
	r.uids.Store(req.NamespacedName, obj.GetUID())
	now := r.now()
	reports, err := liveReports(ctx, r.client, r.namespace, now)
	if err != nil {
		return ctrl.Result{}, err
	}
	secrets, err := r.secretsTarget(ctx, obj)
	if err != nil {
		return ctrl.Result{}, err
	}
	target, since := r.targets.of(obj, secrets, now)
	p := propagationOf(reports, r.kind, target)
	if p.complete() {
		r.incomplete.Delete(req.NamespacedName)
	} else {
		r.incomplete.Store(req.NamespacedName, struct{}{})
	}
	if wait := since.Add(propagationSettle).Sub(now); !p.complete() && wait > 0 {
		return ctrl.Result{RequeueAfter: wait}, nil // settling: the replicas are probably taking it in
	}
	base, ok := obj.DeepCopyObject().(client.Object)
	if !ok {
		return ctrl.Result{}, fmt.Errorf("%T is not an object", obj)
	}
	served, conds := r.status(obj)
	baseServed, baseConds := r.status(base)
	*served = p.String()
	meta.SetStatusCondition(conds, p.condition(obj.GetGeneration()))
	if *served == *baseServed && equality.Semantic.DeepEqual(*conds, *baseConds) {
		return ctrl.Result{}, nil
	}
	// Optimistic lock: the conditions list is replaced whole, so a patch on a stale read
	// would drop another controller's condition.
	if err := r.client.Status().Patch(ctx, obj, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
		if apierrors.IsNotFound(err) {
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("patch status: %w", err)
	}
	return ctrl.Result{}, nil
}

// liveReplicaWatch runs on the leader: it reads the replica Leases every interval and, when the
// set of live replicas changed (a Lease expired: no event tells that), tells every subscriber.
// One timer for all objects of all kinds, however many.
type liveReplicaWatch struct {
	cache     client.Reader
	namespace string
	interval  time.Duration
	now       func() time.Time
	subs      []chan event.GenericEvent
}

var _ manager.LeaderElectionRunnable = (*liveReplicaWatch)(nil)

func (w *liveReplicaWatch) NeedLeaderElection() bool { return true }

// subscribe returns a channel that hears of each change of the live replicas (at most one
// pending event: the subscriber re-reads everything anyway). Call before Start.
func (w *liveReplicaWatch) subscribe() <-chan event.GenericEvent {
	ch := make(chan event.GenericEvent, 1)
	w.subs = append(w.subs, ch)
	return ch
}

func (w *liveReplicaWatch) Start(ctx context.Context) error {
	tick := time.NewTicker(w.interval)
	defer tick.Stop()
	var last []string
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		reports, err := liveReports(ctx, w.cache, w.namespace, w.now())
		if err != nil {
			continue // the cache is not ready yet or the context ended
		}
		names := make([]string, 0, len(reports))
		for _, r := range reports {
			names = append(names, r.name)
		}
		if slices.Equal(names, last) {
			continue
		}
		last = names
		lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: w.namespace}}
		for _, ch := range w.subs {
			select {
			case ch <- event.GenericEvent{Object: lease}:
			default: // one is pending already
			}
		}
	}
}
