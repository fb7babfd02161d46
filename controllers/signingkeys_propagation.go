package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/latchkey-dev/latchkey/server/keys"
)

// Annotations the leader writes on the key Secret from the replica reports.
const (
	// AnnotationSigningKeysServed is how many live replicas sign with the keys the Secret says
	// sign now, for every algorithm, of how many: "3/3".
	AnnotationSigningKeysServed = "propagation.oauth.latchkey.dev/served"
	// AnnotationReplicaSigningKeys is, as JSON, the key each live replica signs with per
	// algorithm: {"current":"ES256=<kid>,...","replicas":{"<replica>":"ES256=<kid>,..."}}.
	AnnotationReplicaSigningKeys = AnnotationSigningKeys
)

// signingKeySummary is the AnnotationReplicaSigningKeys value.
type signingKeySummary struct {
	// Current is what the key Secret says each algorithm signs with now.
	Current string `json:"current"`
	// Replicas is what each live replica reports it signs with.
	Replicas map[string]string `json:"replicas"`
}

// signingKeyPropagation is the leader's: it writes on the key Secret which key each live
// replica signs with and how many sign with the current ones (after a rotation or a
// retirement: whether every replica has moved to the new key). It writes only when that
// changed; replicas' reports come from their Leases (replicaReporter).
type signingKeyPropagation struct {
	client     client.Client // writes; the Lease cache
	reader     client.Reader // the API reader (the Secret's data)
	secret     types.NamespacedName
	namespace  string // of the replica Leases
	algorithms []string
	now        func() time.Time
	expiries   <-chan event.GenericEvent // liveReplicaWatch
}

func (r *signingKeyPropagation) setup(mgr ctrl.Manager) error {
	only := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request {
		return []reconcile.Request{{NamespacedName: r.secret}}
	})
	b := ctrl.NewControllerManagedBy(mgr).
		Named("signingkeys-propagation").
		WatchesMetadata(&corev1.Secret{}, &handler.EnqueueRequestForObject{}, builder.WithPredicates(isObject(r.secret))).
		Watches(&coordinationv1.Lease{}, only, builder.WithPredicates(replicaLeaseChanged(r.namespace, func(old, cur client.Object) bool {
			return old.GetAnnotations()[AnnotationSigningKeys] != cur.GetAnnotations()[AnnotationSigningKeys]
		})))
	if r.expiries != nil {
		b = b.WatchesRawSource(source.Channel(r.expiries, only))
	}
	return b.Complete(r)
}

func (r *signingKeyPropagation) Reconcile(ctx context.Context, _ ctrl.Request) (ctrl.Result, error) {
	s, err := getSecret(ctx, r.reader, r.secret.Namespace, r.secret.Name)
	if err != nil || s == nil {
		return ctrl.Result{}, err // the key ensurer creates it; its creation brings us back
	}
	data, ok := s.Data[KeySetKey]
	if !ok {
		return ctrl.Result{}, nil
	}
	ring := keys.NewKeyring()
	if err := ring.LoadBytes(data); err != nil {
		log.FromContext(ctx).V(1).Info("key Secret unreadable; no signing-key summary", "error", err.Error())
		return ctrl.Result{}, nil // the key ensurer reports it
	}
	current := signingKeyIDs(ring, r.algorithms)()
	reports, err := liveReports(ctx, r.client, r.namespace, r.now())
	if err != nil {
		return ctrl.Result{}, err
	}
	summary := signingKeySummary{Current: current, Replicas: make(map[string]string, len(reports))}
	signing := 0
	for _, rep := range reports {
		summary.Replicas[rep.name] = rep.signingKeys
		if rep.signingKeys == current {
			signing++
		}
	}
	value, err := json.Marshal(summary)
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("encode signing-key summary: %w", err)
	}
	want := map[string]string{
		AnnotationSigningKeysServed:  fmt.Sprintf("%d/%d", signing, len(reports)),
		AnnotationReplicaSigningKeys: string(value),
	}
	have := map[string]string{}
	for k := range want {
		if v, ok := s.Annotations[k]; ok {
			have[k] = v
		}
	}
	if maps.Equal(want, have) {
		return ctrl.Result{}, nil
	}
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	maps.Copy(s.Annotations, want)
	// An update of what was read: a key change written since wins, and this runs again.
	if err := r.client.Update(ctx, s); err != nil {
		if apierrors.IsConflict(err) {
			return ctrl.Result{RequeueAfter: conflictRequeue}, nil
		}
		return ctrl.Result{}, client.IgnoreNotFound(fmt.Errorf("annotate key Secret: %w", err))
	}
	return ctrl.Result{}, nil
}
