package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
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
	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/upstream"
)

// +kubebuilder:rbac:groups=oauth.latchkey.dev,resources=oidcidentityproviders,verbs=get;list;watch
// +kubebuilder:rbac:groups=oauth.latchkey.dev,resources=oidcidentityproviders/status,verbs=get;update;patch

// UpstreamRegistry receives the upstream identity providers users sign in with.
type UpstreamRegistry interface {
	PutUpstreamOIDC(u registry.UpstreamOIDC)
	DeleteUpstreamOIDC(name string)
}

// Periods of the leader's discovery checks of an OIDCIdentityProvider.
const (
	upstreamRecheckPeriod = 10 * time.Minute
	upstreamRetryPeriod   = time.Minute
)

// convertUpstream reads the provider's client Secret and converts it; err is only a failure to
// read the Secret (retried).
func convertUpstream(ctx context.Context, secrets client.Reader, p *v1alpha1.OIDCIdentityProvider) (registry.UpstreamOIDC, feed.Decision, error) {
	var secret *corev1.Secret
	if ns, name, _, ok := convert.UpstreamClientSecretRef(p); ok {
		var err error
		if secret, err = getSecret(ctx, secrets, ns, name); err != nil {
			return registry.UpstreamOIDC{}, feed.Decision{}, err
		}
	}
	u, err := convert.OIDCIdentityProvider(p, secret)
	return u, feed.OIDCIdentityProvider(u, err), nil
}

// upstreamsForSecret maps a Secret to the OIDCIdentityProviders whose client secret it holds
// (providers are few: a list, not an index).
func upstreamsForSecret(c client.Reader) handler.MapFunc {
	return func(ctx context.Context, secret client.Object) []reconcile.Request {
		var list v1alpha1.OIDCIdentityProviderList
		if err := c.List(ctx, &list); err != nil {
			log.FromContext(ctx).Error(err, "listing OIDCIdentityProviders of a Secret", "secret", client.ObjectKeyFromObject(secret))
			return nil
		}
		var reqs []reconcile.Request
		for i := range list.Items {
			if ns, name, _, ok := convert.UpstreamClientSecretRef(&list.Items[i]); ok && ns == secret.GetNamespace() && name == secret.GetName() {
				reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
			}
		}
		return reqs
	}
}

// upstreamReconciler is the leader's OIDCIdentityProvider controller: it writes
// ClientCredentialsValid (the client Secret and key exist, or a workload identity token file is
// named), DiscoverySucceeded (the discovery document, fetched as the server fetches it, names the
// issuer; checked again every 10 minutes, every minute while failing) and Ready (both, and a
// valid spec), with Events on Ready changes.
type upstreamReconciler struct {
	client  client.Client
	secrets client.Reader
	events  events.EventRecorder
	// discover fetches the discovery document; default upstream.Discover with the provider's
	// CA bundle.
	discover func(ctx context.Context, u *registry.UpstreamOIDC) error
}

func (r *upstreamReconciler) setup(mgr ctrl.Manager) error {
	if r.discover == nil {
		r.discover = discoverUpstream
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("oidcidentityprovider").
		For(&v1alpha1.OIDCIdentityProvider{}, builder.WithPredicates(specChanged())).
		WatchesMetadata(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(upstreamsForSecret(r.client))).
		Complete(retryConflicts(r))
}

func discoverUpstream(ctx context.Context, u *registry.UpstreamOIDC) error {
	c, err := upstream.HTTPClient(u.CABundle)
	if err != nil {
		return err
	}
	_, err = upstream.Discover(ctx, c, u.Issuer)
	return err
}

func (r *upstreamReconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, retErr error) {
	var p v1alpha1.OIDCIdentityProvider
	if err := r.client.Get(ctx, req.NamespacedName, &p); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !p.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	base := p.DeepCopy()
	defer func() {
		var written bool
		written, retErr = patchStatus(ctx, r.client, base, &p, base.Status, p.Status, retErr)
		if written {
			recordReadyTransition(r.events, &p, base.Status.Conditions, p.Status.Conditions)
		}
	}()
	return r.reconcile(ctx, &p)
}

func (r *upstreamReconciler) reconcile(ctx context.Context, p *v1alpha1.OIDCIdentityProvider) (ctrl.Result, error) {
	st := &p.Status
	set := func(typ string, status metav1.ConditionStatus, reason, msg string) {
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: typ, Status: status, Reason: reason, Message: msg, ObservedGeneration: p.Generation})
	}
	u, d, err := convertUpstream(ctx, r.secrets, p)
	if err != nil {
		return ctrl.Result{}, err
	}
	switch d.Reason {
	case v1alpha1.ReasonInvalidSpec:
		setDecision(&st.Conditions, &st.ObservedGeneration, p.Generation, d)
		meta.RemoveStatusCondition(&st.Conditions, v1alpha1.ConditionDiscoverySucceeded)
		meta.RemoveStatusCondition(&st.Conditions, v1alpha1.ConditionClientCredentialsValid)
		return ctrl.Result{}, reconcile.TerminalError(errors.New(d.Message))
	case v1alpha1.ReasonSecretNotFound:
		set(v1alpha1.ConditionClientCredentialsValid, metav1.ConditionFalse, d.Reason, d.Message)
	case v1alpha1.ReasonReady:
		if u.AssertionFile != "" {
			// The server reads the file at each use, maybe in another pod: its errors show there.
			set(v1alpha1.ConditionClientCredentialsValid, metav1.ConditionTrue, v1alpha1.ReasonWorkloadIdentity,
				fmt.Sprintf("the server authenticates with the token file %s (RFC 7523 client assertion); it reads the file at each use", u.AssertionFile))
			break
		}
		set(v1alpha1.ConditionClientCredentialsValid, metav1.ConditionTrue, v1alpha1.ReasonCredentialsFound, "the client secret exists")
	default:
		return ctrl.Result{}, errors.New(d.Message)
	}
	// Discovery needs only the issuer and CA bundle: check it even without credentials.
	issuer := p.Spec.Issuer
	derr := r.discover(ctx, &registry.UpstreamOIDC{Issuer: issuer, CABundle: []byte(p.Spec.CABundle)})
	if derr != nil && ctx.Err() != nil {
		return ctrl.Result{}, ctx.Err()
	}
	result := ctrl.Result{RequeueAfter: upstreamRecheckPeriod}
	if derr != nil {
		set(v1alpha1.ConditionDiscoverySucceeded, metav1.ConditionFalse, v1alpha1.ReasonDiscoveryFailed, derr.Error())
		log.FromContext(ctx).Info("identity provider discovery failed", "identityProvider", p.Name, "error", derr.Error())
		result.RequeueAfter = upstreamRetryPeriod
	} else {
		set(v1alpha1.ConditionDiscoverySucceeded, metav1.ConditionTrue, v1alpha1.ReasonDiscovered, fmt.Sprintf("discovery at %s names the issuer", issuer))
	}
	switch {
	case d.Reason != v1alpha1.ReasonReady:
		setDecision(&st.Conditions, &st.ObservedGeneration, p.Generation, d)
	case derr != nil:
		setReady(&st.Conditions, &st.ObservedGeneration, p.Generation, metav1.ConditionFalse, v1alpha1.ReasonDiscoveryFailed,
			fmt.Sprintf("identity provider %q is served, but its discovery fails, so sign-ins fail: %v", u.Name, derr))
	default:
		setDecision(&st.Conditions, &st.ObservedGeneration, p.Generation, d)
	}
	return result, nil
}
