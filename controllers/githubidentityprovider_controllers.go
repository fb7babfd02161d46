package controllers

import (
	"context"
	"errors"
	"fmt"
	"net/http"

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

// +kubebuilder:rbac:groups=oauth.latchkey.dev,resources=githubidentityproviders,verbs=get;list;watch
// +kubebuilder:rbac:groups=oauth.latchkey.dev,resources=githubidentityproviders/status,verbs=get;update;patch

// kindGitHubIdentityProvider: GitHub as an identity provider users sign in with.
const kindGitHubIdentityProvider = "GitHubIdentityProvider"

// GitHubRegistry receives the GitHub identity providers users sign in with.
type GitHubRegistry interface {
	PutUpstreamGitHub(u registry.UpstreamGitHub)
	DeleteUpstreamGitHub(name string)
}

// convertGitHub reads the provider's OAuth App Secret and converts it; err is only a failure to
// read the Secret (retried).
func convertGitHub(ctx context.Context, secrets client.Reader, p *v1alpha1.GitHubIdentityProvider) (registry.UpstreamGitHub, feed.Decision, error) {
	var secret *corev1.Secret
	if ref := p.Spec.Client.SecretRef; ref.Namespace != "" && ref.Name != "" {
		var err error
		if secret, err = getSecret(ctx, secrets, ref.Namespace, ref.Name); err != nil {
			return registry.UpstreamGitHub{}, feed.Decision{}, err
		}
	}
	u, err := convert.GitHubIdentityProvider(p, secret)
	return u, feed.GitHubIdentityProvider(u, err), nil
}

// githubsForSecret maps a Secret to the GitHubIdentityProviders whose OAuth App it holds.
func githubsForSecret(c client.Reader) handler.MapFunc {
	return func(ctx context.Context, secret client.Object) []reconcile.Request {
		var list v1alpha1.GitHubIdentityProviderList
		if err := c.List(ctx, &list); err != nil {
			log.FromContext(ctx).Error(err, "listing GitHubIdentityProviders of a Secret", "secret", client.ObjectKeyFromObject(secret))
			return nil
		}
		var reqs []reconcile.Request
		for i := range list.Items {
			if ref := list.Items[i].Spec.Client.SecretRef; ref.Namespace == secret.GetNamespace() && ref.Name == secret.GetName() {
				reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
			}
		}
		return reqs
	}
}

// githubReconciler is the leader's GitHubIdentityProvider controller: it writes
// ClientCredentialsValid (the OAuth App Secret and its clientID and clientSecret keys exist),
// HostReachable (the host's REST API answers GET /meta with the provider's CA bundle; checked
// again every 10 minutes, every minute while failing) and Ready, with Events on Ready changes.
type githubReconciler struct {
	client  client.Client
	secrets client.Reader
	events  events.EventRecorder
	// probe asks the host's API; default probeGitHub.
	probe func(ctx context.Context, u *registry.UpstreamGitHub) error
}

func (r *githubReconciler) setup(mgr ctrl.Manager) error {
	if r.probe == nil {
		r.probe = probeGitHub
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("githubidentityprovider").
		For(&v1alpha1.GitHubIdentityProvider{}, builder.WithPredicates(specChanged())).
		WatchesMetadata(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(githubsForSecret(r.client))).
		Complete(retryConflicts(r))
}

// probeGitHub asks GET <api>/meta (it needs no credentials, on github.com and Enterprise alike).
func probeGitHub(ctx context.Context, u *registry.UpstreamGitHub) error {
	c, err := upstream.HTTPClient(u.CABundle)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.APIURL+"/meta", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/vnd.github+json")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s/meta answered HTTP %d", u.APIURL, resp.StatusCode)
	}
	return nil
}

func (r *githubReconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, retErr error) {
	var p v1alpha1.GitHubIdentityProvider
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

func (r *githubReconciler) reconcile(ctx context.Context, p *v1alpha1.GitHubIdentityProvider) (ctrl.Result, error) {
	st := &p.Status
	set := func(typ string, status metav1.ConditionStatus, reason, msg string) {
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: typ, Status: status, Reason: reason, Message: msg, ObservedGeneration: p.Generation})
	}
	u, d, err := convertGitHub(ctx, r.secrets, p)
	if err != nil {
		return ctrl.Result{}, err
	}
	switch d.Reason {
	case v1alpha1.ReasonInvalidSpec:
		setDecision(&st.Conditions, &st.ObservedGeneration, p.Generation, d)
		meta.RemoveStatusCondition(&st.Conditions, v1alpha1.ConditionHostReachable)
		meta.RemoveStatusCondition(&st.Conditions, v1alpha1.ConditionClientCredentialsValid)
		return ctrl.Result{}, reconcile.TerminalError(errors.New(d.Message))
	case v1alpha1.ReasonSecretNotFound:
		set(v1alpha1.ConditionClientCredentialsValid, metav1.ConditionFalse, d.Reason, d.Message)
	case v1alpha1.ReasonReady:
		set(v1alpha1.ConditionClientCredentialsValid, metav1.ConditionTrue, v1alpha1.ReasonCredentialsFound, "the OAuth App's clientID and clientSecret exist")
	default:
		return ctrl.Result{}, errors.New(d.Message)
	}
	probe := registry.UpstreamGitHub{CABundle: []byte(p.Spec.CABundle)}
	probe.WebURL, probe.APIURL = convert.GitHubURLs(p.Spec.Host)
	perr := r.probe(ctx, &probe)
	if perr != nil && ctx.Err() != nil {
		return ctrl.Result{}, ctx.Err()
	}
	result := ctrl.Result{RequeueAfter: upstreamRecheckPeriod}
	if perr != nil {
		set(v1alpha1.ConditionHostReachable, metav1.ConditionFalse, v1alpha1.ReasonHostUnreachable, perr.Error())
		log.FromContext(ctx).Info("GitHub host unreachable", "identityProvider", p.Name, "error", perr.Error())
		result.RequeueAfter = upstreamRetryPeriod
	} else {
		set(v1alpha1.ConditionHostReachable, metav1.ConditionTrue, v1alpha1.ReasonHostReachable, fmt.Sprintf("%s answers", probe.APIURL))
	}
	switch {
	case d.Reason != v1alpha1.ReasonReady:
		setDecision(&st.Conditions, &st.ObservedGeneration, p.Generation, d)
	case perr != nil:
		setReady(&st.Conditions, &st.ObservedGeneration, p.Generation, metav1.ConditionFalse, v1alpha1.ReasonHostUnreachable,
			fmt.Sprintf("identity provider %q is served, but its host does not answer, so sign-ins fail: %v", u.Name, perr))
	default:
		setDecision(&st.Conditions, &st.ObservedGeneration, p.Generation, d)
	}
	return result, nil
}
