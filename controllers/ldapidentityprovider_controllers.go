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

// +kubebuilder:rbac:groups=oauth.latchkey.dev,resources=ldapidentityproviders,verbs=get;list;watch
// +kubebuilder:rbac:groups=oauth.latchkey.dev,resources=ldapidentityproviders/status,verbs=get;update;patch

// kindLDAPIdentityProvider: an LDAP directory users sign in to with their password.
const kindLDAPIdentityProvider = "LDAPIdentityProvider"

// LDAPRegistry receives the LDAP identity providers users sign in with.
type LDAPRegistry interface {
	PutUpstreamLDAP(u registry.UpstreamLDAP)
	DeleteUpstreamLDAP(name string)
}

// Periods of the leader's connection probes of an LDAPIdentityProvider.
const (
	ldapProbePeriod = 10 * time.Minute
	ldapRetryPeriod = time.Minute
)

// convertLDAP reads the provider's bind Secret and converts it; err is only a failure to read
// the Secret (retried).
func convertLDAP(ctx context.Context, secrets client.Reader, p *v1alpha1.LDAPIdentityProvider) (registry.UpstreamLDAP, feed.Decision, error) {
	var secret *corev1.Secret
	if ns, name := convert.LDAPBindSecretRef(p); ns != "" && name != "" {
		var err error
		if secret, err = getSecret(ctx, secrets, ns, name); err != nil {
			return registry.UpstreamLDAP{}, feed.Decision{}, err
		}
	}
	u, err := convert.LDAPIdentityProvider(p, secret)
	return u, feed.LDAPIdentityProvider(u, err), nil
}

// ldapProvidersForSecret maps a Secret to the LDAPIdentityProviders whose bind Secret it is.
func ldapProvidersForSecret(c client.Reader) handler.MapFunc {
	return func(ctx context.Context, secret client.Object) []reconcile.Request {
		var list v1alpha1.LDAPIdentityProviderList
		if err := c.List(ctx, &list); err != nil {
			log.FromContext(ctx).Error(err, "listing LDAPIdentityProviders of a Secret", "secret", client.ObjectKeyFromObject(secret))
			return nil
		}
		var reqs []reconcile.Request
		for i := range list.Items {
			if ns, name := convert.LDAPBindSecretRef(&list.Items[i]); ns == secret.GetNamespace() && name == secret.GetName() {
				reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
			}
		}
		return reqs
	}
}

// ldapReconciler is the leader's LDAPIdentityProvider controller: it dials the directory as
// the server does (TLS or StartTLS with the CA bundle) and binds as the service account, and
// writes ConnectionProbe, BindSucceeded and Ready (both, the bind Secret, and a valid spec),
// with Events on Ready changes; probed again every 10 minutes, every minute while failing.
type ldapReconciler struct {
	client  client.Client
	secrets client.Reader
	events  events.EventRecorder
	// probe connects and binds; default upstream.LDAP.Probe.
	probe func(ctx context.Context, u *registry.UpstreamLDAP) error
}

func (r *ldapReconciler) setup(mgr ctrl.Manager) error {
	if r.probe == nil {
		r.probe = probeLDAP
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("ldapidentityprovider").
		For(&v1alpha1.LDAPIdentityProvider{}, builder.WithPredicates(specChanged())).
		WatchesMetadata(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(ldapProvidersForSecret(r.client))).
		Complete(retryConflicts(r))
}

func probeLDAP(ctx context.Context, u *registry.UpstreamLDAP) error {
	l, err := upstream.NewLDAP(u)
	if err != nil {
		return err
	}
	return l.Probe(ctx)
}

func (r *ldapReconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, retErr error) {
	var p v1alpha1.LDAPIdentityProvider
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

func (r *ldapReconciler) reconcile(ctx context.Context, p *v1alpha1.LDAPIdentityProvider) (ctrl.Result, error) {
	st := &p.Status
	set := func(typ string, status metav1.ConditionStatus, reason, msg string) {
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: typ, Status: status, Reason: reason, Message: msg, ObservedGeneration: p.Generation})
	}
	u, d, err := convertLDAP(ctx, r.secrets, p)
	if err != nil {
		return ctrl.Result{}, err
	}
	switch d.Reason {
	case v1alpha1.ReasonInvalidSpec:
		setDecision(&st.Conditions, &st.ObservedGeneration, p.Generation, d)
		meta.RemoveStatusCondition(&st.Conditions, v1alpha1.ConditionConnectionProbe)
		meta.RemoveStatusCondition(&st.Conditions, v1alpha1.ConditionBindSucceeded)
		return ctrl.Result{}, reconcile.TerminalError(errors.New(d.Message))
	case v1alpha1.ReasonSecretNotFound:
		set(v1alpha1.ConditionBindSucceeded, metav1.ConditionFalse, v1alpha1.ReasonSecretNotFound, d.Message)
		// The connection needs no credentials: probe it all the same.
		tls := p.Spec.TLS
		u = registry.UpstreamLDAP{Name: p.Name, Host: p.Spec.Host, StartTLS: tls.Mode == v1alpha1.LDAPTLSModeStartTLS, CABundle: []byte(tls.CABundle)}
	case v1alpha1.ReasonReady:
	default:
		return ctrl.Result{}, errors.New(d.Message)
	}
	perr := r.probe(ctx, &u)
	if perr != nil && ctx.Err() != nil {
		return ctrl.Result{}, ctx.Err()
	}
	result := ctrl.Result{RequeueAfter: ldapProbePeriod}
	if perr != nil {
		result.RequeueAfter = ldapRetryPeriod
		log.FromContext(ctx).Info("LDAP identity provider probe failed", "identityProvider", p.Name, "error", perr.Error())
	}
	connected := perr == nil || errors.Is(perr, upstream.ErrServiceBind)
	if connected {
		set(v1alpha1.ConditionConnectionProbe, metav1.ConditionTrue, v1alpha1.ReasonConnected, fmt.Sprintf("connected to %s and verified its certificate", p.Spec.Host))
	} else {
		set(v1alpha1.ConditionConnectionProbe, metav1.ConditionFalse, v1alpha1.ReasonConnectionFailed, perr.Error())
	}
	switch {
	case d.Reason != v1alpha1.ReasonReady:
		setDecision(&st.Conditions, &st.ObservedGeneration, p.Generation, d)
	case !connected:
		set(v1alpha1.ConditionBindSucceeded, metav1.ConditionUnknown, v1alpha1.ReasonConnectionFailed, "not tried: the connection failed")
		setReady(&st.Conditions, &st.ObservedGeneration, p.Generation, metav1.ConditionFalse, v1alpha1.ReasonConnectionFailed,
			fmt.Sprintf("identity provider %q is served, but its directory cannot be reached, so sign-ins fail: %v", u.Name, perr))
	case perr != nil:
		set(v1alpha1.ConditionBindSucceeded, metav1.ConditionFalse, v1alpha1.ReasonBindFailed, perr.Error())
		setReady(&st.Conditions, &st.ObservedGeneration, p.Generation, metav1.ConditionFalse, v1alpha1.ReasonBindFailed,
			fmt.Sprintf("identity provider %q is served, but the directory refuses its service bind, so sign-ins fail: %v", u.Name, perr))
	default:
		set(v1alpha1.ConditionBindSucceeded, metav1.ConditionTrue, v1alpha1.ReasonBound, "the service account's bind succeeded")
		setDecision(&st.Conditions, &st.ObservedGeneration, p.Generation, d)
	}
	return result, nil
}
