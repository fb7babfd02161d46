package controllers

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
	"github.com/latchkey-dev/latchkey/controllers/convert"
	"github.com/latchkey-dev/latchkey/controllers/feed"
	"github.com/latchkey-dev/latchkey/server/assertion"
	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/workload"
)

// issuerRetryPeriod is how soon the leader checks a failing WorkloadIssuer's keys again (at most
// its refresh period).
const issuerRetryPeriod = time.Minute

// issuerRegistryReconciler keeps one replica's registry in step with the WorkloadIssuers.
type issuerRegistryReconciler struct {
	cache    client.Reader // the manager's cache (WorkloadIssuers)
	secrets  client.Reader // the API reader (Secrets)
	registry WorkloadIssuerRegistry
	ready    *Readiness

	mu   sync.Mutex
	last map[string]registry.WorkloadIssuer // what was put, by name
}

func (r *issuerRegistryReconciler) setup(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("workloadissuer-registry").
		For(&v1alpha1.WorkloadIssuer{}, builder.WithPredicates(specChanged())).
		WatchesMetadata(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(issuersForSecret(r.cache))).
		WithOptions(everyReplica()).
		Complete(r)
}

func (r *issuerRegistryReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return r.ready.takeIn(ctx, r.cache, kindWorkloadIssuer, req.NamespacedName, &v1alpha1.WorkloadIssuer{}, r.secrets, func(secrets client.Reader) (ctrl.Result, error) {
		return r.reconcile(ctx, req, secrets)
	})
}

// reconcile puts or withdraws the issuer, reading its key Secret with secrets.
func (r *issuerRegistryReconciler) reconcile(ctx context.Context, req ctrl.Request, secrets client.Reader) (ctrl.Result, error) {
	logger := log.FromContext(ctx)
	var wi v1alpha1.WorkloadIssuer
	if err := r.cache.Get(ctx, req.NamespacedName, &wi); err != nil {
		if apierrors.IsNotFound(err) {
			r.delete(req.Name)
			logger.V(1).Info("workload issuer removed from registry")
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	if !wi.DeletionTimestamp.IsZero() {
		r.delete(req.Name)
		return ctrl.Result{}, nil
	}
	secret, err := issuerSecret(ctx, secrets, &wi)
	if err != nil {
		return ctrl.Result{}, err
	}
	w, err := convert.WorkloadIssuer(&wi, secret)
	err = explainUnwatchedIssuer(r.secrets, &wi, err)
	d := feed.WorkloadIssuer(w, err)
	if d.Put() {
		r.put(w)
	} else {
		r.delete(req.Name)
	}
	logDecision(logger, d, "workloadIssuer", wi.Name)
	return ctrl.Result{}, nil
}

// put puts w unless the registry holds the same value: a new value makes every verifier build
// the issuer's key set again and fetch its keys anew.
func (r *issuerRegistryReconciler) put(w registry.WorkloadIssuer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if prev, ok := r.last[w.Name]; ok && reflect.DeepEqual(prev, w) {
		return
	}
	if r.last == nil {
		r.last = map[string]registry.WorkloadIssuer{}
	}
	r.last[w.Name] = w
	r.registry.PutWorkloadIssuer(w)
}

func (r *issuerRegistryReconciler) delete(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.last, name)
	r.registry.DeleteWorkloadIssuer(name)
}

// issuerSecret reads the WorkloadIssuer's key Secret; nil when it has none or it does not exist.
func issuerSecret(ctx context.Context, r client.Reader, wi *v1alpha1.WorkloadIssuer) (*corev1.Secret, error) {
	ns, name, _, ok := convert.IssuerKeySecretRef(wi)
	if !ok || ns == "" || name == "" {
		return nil, nil
	}
	return getSecret(ctx, r, ns, name)
}

// issuersForSecret maps a Secret to the WorkloadIssuers whose keys it holds.
func issuersForSecret(c client.Reader) handler.MapFunc {
	return func(ctx context.Context, secret client.Object) []reconcile.Request {
		var list v1alpha1.WorkloadIssuerList
		if err := c.List(ctx, &list, client.MatchingFields{
			indexIssuerSecret: convert.SourceKey(secret.GetNamespace(), secret.GetName()),
		}); err != nil {
			log.FromContext(ctx).Error(err, "listing WorkloadIssuers of a Secret", "secret", client.ObjectKeyFromObject(secret))
			return nil
		}
		reqs := make([]reconcile.Request, 0, len(list.Items))
		for i := range list.Items {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
		}
		return reqs
	}
}

// issuerReconciler is the leader's WorkloadIssuer controller: it checks that the issuer's keys
// can be had, as the server gets them (workload.IssuerKeySet), and writes Ready, jwksURI,
// keyCount and lastRefreshTime. It keeps one key set per issuer, built again when what it is
// fetched from changes, and fetches on the issuer's refresh period (issuerRetryPeriod while
// failing), never more often.
type issuerReconciler struct {
	client  client.Client
	secrets client.Reader
	events  events.EventRecorder
	now     func() time.Time

	mu     sync.Mutex
	checks map[string]*issuerCheck // by name
}

// issuerCheck is the leader's key set of one issuer.
type issuerCheck struct {
	source  keySource
	remote  *assertion.Remote
	checked time.Time // of the last fetch the leader forced; zero: none yet
}

// keySource is what a Remote is built from: a change of any of it builds a new one.
type keySource struct {
	issuer, jwksURI, caBundle string
	period                    time.Duration
}

func newIssuerReconciler(c client.Client, secrets client.Reader, rec events.EventRecorder, now func() time.Time) *issuerReconciler {
	if now == nil {
		now = time.Now
	}
	return &issuerReconciler{client: c, secrets: secrets, events: rec, now: now, checks: map[string]*issuerCheck{}}
}

func (r *issuerReconciler) setup(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("workloadissuer").
		For(&v1alpha1.WorkloadIssuer{}, builder.WithPredicates(specChanged())).
		WatchesMetadata(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(issuersForSecret(r.client))).
		Complete(retryConflicts(r))
}

func (r *issuerReconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, retErr error) {
	var wi v1alpha1.WorkloadIssuer
	if err := r.client.Get(ctx, req.NamespacedName, &wi); err != nil {
		if apierrors.IsNotFound(err) {
			r.forget(req.Name)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !wi.DeletionTimestamp.IsZero() {
		r.forget(req.Name)
		return ctrl.Result{}, nil
	}
	base := wi.DeepCopy()
	defer func() {
		var written bool
		written, retErr = patchStatus(ctx, r.client, base, &wi, base.Status, wi.Status, retErr)
		if written {
			recordReadyTransition(r.events, &wi, base.Status.Conditions, wi.Status.Conditions)
		}
	}()
	return r.reconcile(ctx, &wi)
}

func (r *issuerReconciler) reconcile(ctx context.Context, wi *v1alpha1.WorkloadIssuer) (ctrl.Result, error) {
	st := &wi.Status
	secret, err := issuerSecret(ctx, r.secrets, wi)
	if err != nil {
		return ctrl.Result{}, err
	}
	w, err := convert.WorkloadIssuer(wi, secret)
	err = explainUnwatchedIssuer(r.secrets, wi, err)
	d := feed.WorkloadIssuer(w, err)
	switch {
	case d.Reason == "":
		return ctrl.Result{}, err
	case !d.Put():
		r.forget(wi.Name)
		st.JWKSURI, st.KeyCount, st.LastRefreshTime = "", 0, nil
		setDecision(&st.Conditions, &st.ObservedGeneration, wi.Generation, d)
		if d.Reason == v1alpha1.ReasonInvalidSpec {
			return ctrl.Result{}, reconcile.TerminalError(err)
		}
		return ctrl.Result{}, nil // the Secret watch brings it back
	}
	if len(w.StaticKeys) > 0 {
		r.forget(wi.Name)
		st.JWKSURI, st.KeyCount, st.LastRefreshTime = "", int32(len(w.StaticKeys)), nil
		setDecision(&st.Conditions, &st.ObservedGeneration, wi.Generation, d)
		return ctrl.Result{}, nil
	}
	check, err := r.check(w)
	if err != nil { // convert refused what the key set refuses: not expected
		st.JWKSURI, st.KeyCount, st.LastRefreshTime = "", 0, nil
		setReady(&st.Conditions, &st.ObservedGeneration, wi.Generation, metav1.ConditionFalse, v1alpha1.ReasonInvalidSpec, err.Error())
		return ctrl.Result{}, reconcile.TerminalError(err)
	}
	return r.refresh(ctx, wi, w, check)
}

// refresh fetches the issuer's keys when the last fetch the leader forced is older than the
// refresh period (issuerRetryPeriod after a failure), and reports the key set's state.
func (r *issuerReconciler) refresh(ctx context.Context, wi *v1alpha1.WorkloadIssuer, w registry.WorkloadIssuer, check *issuerCheck) (ctrl.Result, error) {
	st := &wi.Status
	period := w.RefreshPeriod
	now := r.now()
	failing := check.remote.Status().LastError != nil
	interval := period
	if failing {
		interval = min(issuerRetryPeriod, period)
	}
	r.mu.Lock()
	checked := check.checked
	r.mu.Unlock()
	if checked.IsZero() || now.Sub(checked) >= interval {
		if err := check.remote.Refresh(ctx); err != nil && ctx.Err() != nil {
			return ctrl.Result{}, ctx.Err() // leaving: not the issuer's failure
		}
		checked = now
		r.mu.Lock()
		check.checked = now
		r.mu.Unlock()
	}
	rs := check.remote.Status()
	st.JWKSURI, st.KeyCount, st.LastRefreshTime = rs.JWKSURI, int32(rs.KeyCount), nil
	if !rs.LastRefresh.IsZero() {
		t := metav1.NewTime(rs.LastRefresh)
		st.LastRefreshTime = &t
	}
	logger := log.FromContext(ctx)
	if rs.LastError != nil {
		reason := v1alpha1.ReasonKeysUnavailable
		if errors.Is(rs.LastError, assertion.ErrDiscovery) {
			reason = v1alpha1.ReasonDiscoveryFailed
		}
		msg := rs.LastError.Error() + "; no keys are held, so its clients cannot authenticate"
		if rs.KeyCount > 0 {
			msg = fmt.Sprintf("%s; the %d keys fetched at %s stay in use", rs.LastError.Error(), rs.KeyCount, rs.LastRefresh.UTC().Format(time.RFC3339))
		}
		setReady(&st.Conditions, &st.ObservedGeneration, wi.Generation, metav1.ConditionFalse, reason, msg)
		logger.Info("workload issuer keys unavailable", "reason", reason, "error", rs.LastError.Error())
		return ctrl.Result{RequeueAfter: until(checked, min(issuerRetryPeriod, period), r.now())}, nil
	}
	setReady(&st.Conditions, &st.ObservedGeneration, wi.Generation, metav1.ConditionTrue, v1alpha1.ReasonReady,
		fmt.Sprintf("workload issuer %q is served: %d keys from %s", w.Issuer, rs.KeyCount, rs.JWKSURI))
	return ctrl.Result{RequeueAfter: until(checked, period, r.now())}, nil
}

// until is how long from now until d after from, at least a second.
func until(from time.Time, d time.Duration, now time.Time) time.Duration {
	return max(from.Add(d).Sub(now), time.Second)
}

// check returns the leader's key set of the issuer, built anew (workload.IssuerKeySet, as the
// server builds it) when what it is fetched from changed.
func (r *issuerReconciler) check(w registry.WorkloadIssuer) (*issuerCheck, error) {
	src := keySource{issuer: w.Issuer, jwksURI: w.JWKSURI, caBundle: string(w.CABundle), period: w.RefreshPeriod}
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.checks[w.Name]; ok && c.source == src {
		return c, nil
	}
	ks, err := workload.IssuerKeySet(&w, nil, r.now)
	if err != nil {
		return nil, err
	}
	remote, ok := ks.(*assertion.Remote)
	if !ok {
		return nil, fmt.Errorf("workload issuer %s: keys of type %T, not fetched", w.Name, ks)
	}
	c := &issuerCheck{source: src, remote: remote}
	r.checks[w.Name] = c
	return c, nil
}

func (r *issuerReconciler) forget(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.checks, name)
}
