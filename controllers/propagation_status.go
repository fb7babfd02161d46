package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
)

// replicaReport is one live replica's report, read from its Lease.
type replicaReport struct {
	name       string
	watermarks map[string]uint64
	expires    time.Time
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
		r := replicaReport{name: name, expires: expires, watermarks: map[string]uint64{}}
		for _, kind := range propagatedKinds {
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
}

// propagationOf counts the reports whose watermark of kind reaches target.
func propagationOf(reports []replicaReport, kind string, target uint64) propagation {
	p := propagation{total: len(reports)}
	for _, r := range reports {
		if r.watermarks[kind] >= target {
			p.served++
		} else {
			p.lagging = append(p.lagging, r.name)
		}
	}
	return p
}

// String is the status.served column: "2/3".
func (p propagation) String() string { return fmt.Sprintf("%d/%d", p.served, p.total) }

// condition is the Propagated condition.
func (p propagation) condition(generation int64) metav1.Condition {
	c := metav1.Condition{Type: v1alpha1.ConditionPropagated, ObservedGeneration: generation}
	switch {
	case p.total == 0:
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, v1alpha1.ReasonNoReplicas, "no live replica has reported what it serves"
	case p.served == p.total:
		c.Status, c.Reason = metav1.ConditionTrue, v1alpha1.ReasonPropagated
		c.Message = fmt.Sprintf("every live replica (%d) serves generation %d", p.total, generation)
	default:
		c.Status, c.Reason = metav1.ConditionFalse, v1alpha1.ReasonLagging
		c.Message = fmt.Sprintf("%s of %d live replicas serve generation %d; not yet: %s", p, p.total, generation, strings.Join(p.lagging, ", "))
	}
	return c
}

// earliestExpiry is when the first of the reports expires; zero without reports.
func earliestExpiry(reports []replicaReport) time.Time {
	var first time.Time
	for _, r := range reports {
		if first.IsZero() || r.expires.Before(first) {
			first = r.expires
		}
	}
	return first
}

// targets remembers, per object, the resourceVersion at which the leader first saw its current
// generation: replicas serve the generation once their watermark reaches it. The object's own
// resourceVersion would not do: every status write raises it, and the count would chase it.
// A new leader starts from the resourceVersions it first sees (later than the change, never
// earlier: the count is conservative).
type targets struct {
	mu   sync.Mutex
	seen map[types.UID]target
}

type target struct {
	generation      int64
	resourceVersion uint64
}

func (t *targets) of(obj client.Object) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.seen == nil {
		t.seen = map[types.UID]target{}
	}
	cur, ok := t.seen[obj.GetUID()]
	if !ok || cur.generation != obj.GetGeneration() {
		cur = target{generation: obj.GetGeneration(), resourceVersion: parseResourceVersion(obj.GetResourceVersion())}
		t.seen[obj.GetUID()] = cur
	}
	return cur.resourceVersion
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
}

//nolint:forcetypeassert // each kind's functions get only its own objects
var propagatedKindsStatus = []propagatedKind{ //nolint:gochecknoglobals // constant table
	{kindOAuthClient, func() client.Object { return &v1alpha1.OAuthClient{} }, func() client.ObjectList { return &v1alpha1.OAuthClientList{} },
		func(o client.Object) (*string, *[]metav1.Condition) {
			oc := o.(*v1alpha1.OAuthClient)
			return &oc.Status.Served, &oc.Status.Conditions
		}},
	{kindScope, func() client.Object { return &v1alpha1.Scope{} }, func() client.ObjectList { return &v1alpha1.ScopeList{} },
		func(o client.Object) (*string, *[]metav1.Condition) {
			s := o.(*v1alpha1.Scope)
			return &s.Status.Served, &s.Status.Conditions
		}},
	{kindUser, func() client.Object { return &v1alpha1.User{} }, func() client.ObjectList { return &v1alpha1.UserList{} },
		func(o client.Object) (*string, *[]metav1.Condition) {
			u := o.(*v1alpha1.User)
			return &u.Status.Served, &u.Status.Conditions
		}},
	{kindWorkloadIssuer, func() client.Object { return &v1alpha1.WorkloadIssuer{} }, func() client.ObjectList { return &v1alpha1.WorkloadIssuerList{} },
		func(o client.Object) (*string, *[]metav1.Condition) {
			w := o.(*v1alpha1.WorkloadIssuer)
			return &w.Status.Served, &w.Status.Conditions
		}},
}

// propagationReconciler is the leader's, one per kind: it writes status.served and the
// Propagated condition from the replica reports. Only a changed count (or set of lagging
// replicas) is written.
type propagationReconciler struct {
	propagatedKind
	client    client.Client
	namespace string
	now       func() time.Time
	targets   targets
	uids      sync.Map // types.NamespacedName → types.UID, to forget deleted objects
}

func (r *propagationReconciler) setup(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named(strings.ToLower(r.kind)+"-propagation").
		// Every change: a status write of another controller may drop the condition (a merge
		// patch replaces the list), which this one then writes again.
		For(r.newObj()).
		Watches(&coordinationv1.Lease{}, handler.EnqueueRequestsFromMapFunc(r.all),
			builder.WithPredicates(replicaReportChanged(r.namespace))).
		Complete(r)
}

// replicaReportChanged passes the events of replica Leases in namespace that change what they
// report (not the renewals: an expiry is found by the requeue at the earliest one).
func replicaReportChanged(namespace string) predicate.Predicate {
	isReport := func(o client.Object) bool {
		_, ok := o.GetLabels()[LabelReplicaLease]
		return ok && o.GetNamespace() == namespace
	}
	return predicate.Funcs{
		CreateFunc:  func(e event.CreateEvent) bool { return isReport(e.Object) },
		DeleteFunc:  func(e event.DeleteEvent) bool { return isReport(e.Object) },
		GenericFunc: func(e event.GenericEvent) bool { return isReport(e.Object) },
		UpdateFunc: func(e event.UpdateEvent) bool {
			return isReport(e.ObjectNew) && !equality.Semantic.DeepEqual(e.ObjectOld.GetAnnotations(), e.ObjectNew.GetAnnotations())
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

func (r *propagationReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	obj := r.newObj()
	if err := r.client.Get(ctx, req.NamespacedName, obj); err != nil {
		if apierrors.IsNotFound(err) {
			if uid, ok := r.uids.LoadAndDelete(req.NamespacedName); ok {
				r.targets.forget(uid.(types.UID)) //nolint:forcetypeassert // only UIDs are stored
			}
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
	p := propagationOf(reports, r.kind, r.targets.of(obj))
	base, ok := obj.DeepCopyObject().(client.Object)
	if !ok {
		return ctrl.Result{}, fmt.Errorf("%T is not an object", obj)
	}
	served, conds := r.status(obj)
	baseServed, baseConds := r.status(base)
	*served = p.String()
	meta.SetStatusCondition(conds, p.condition(obj.GetGeneration()))
	var res ctrl.Result
	if first := earliestExpiry(reports); !first.IsZero() {
		res.RequeueAfter = first.Sub(now) + 100*time.Millisecond
	}
	if *served == *baseServed && equality.Semantic.DeepEqual(*conds, *baseConds) {
		return res, nil
	}
	// Optimistic lock: the conditions list is replaced whole, so a patch on a stale read
	// would drop another controller's condition.
	if err := r.client.Status().Patch(ctx, obj, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
		if apierrors.IsNotFound(err) {
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("patch status: %w", err)
	}
	return res, nil
}
