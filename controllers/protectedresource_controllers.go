package controllers

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
	"github.com/latchkey-dev/latchkey/controllers/convert"
	"github.com/latchkey-dev/latchkey/controllers/feed"
	"github.com/latchkey-dev/latchkey/controllers/policy"
	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/registry"
)

// Field indexes of ProtectedResources.
const (
	// indexResourceClient: ProtectedResource by the sources ("namespace/name") of the
	// OAuthClients it names (convert.ResourceClientSources).
	indexResourceClient = "latchkey.resourceClient"
	// indexResourceSelects: ProtectedResource by "true" when it has an allowedClientSelector.
	indexResourceSelects = "latchkey.resourceSelects"
	// indexResourceAudience: ProtectedResource by spec.audience.
	indexResourceAudience = "latchkey.resourceAudience"
	// indexResourceScope: ProtectedResource by the scope names it owns.
	indexResourceScope = "latchkey.resourceScope"
)

// kindProtectedResource is the kind of the ProtectedResource registry reconciler.
const kindProtectedResource = "ProtectedResource"

// ResourceMetadataSuffix + a ProtectedResource's name is the name of the ConfigMap holding its
// RFC 9728 metadata (key oauth2.ProtectedResourceMetadataKey).
const ResourceMetadataSuffix = "-oauth-protected-resource"

// ProtectedResourceRegistry receives the protected resources to serve.
type ProtectedResourceRegistry interface {
	PutProtectedResource(p registry.ProtectedResource)
	DeleteProtectedResource(source string)
}

// ResourceMetadata renders a ProtectedResource's RFC 9728 metadata document as the server
// serves it (its issuer, its DPoP algorithms).
type ResourceMetadata func(p *registry.ProtectedResource) ([]byte, error)

func resourceIndexes() []fieldIndex {
	pr := func(o client.Object) *v1alpha1.ProtectedResource {
		p, _ := o.(*v1alpha1.ProtectedResource)
		return p
	}
	return []fieldIndex{
		{&v1alpha1.ProtectedResource{}, indexResourceClient, func(o client.Object) []string {
			if p := pr(o); p != nil {
				return convert.ResourceClientSources(p)
			}
			return nil
		}},
		{&v1alpha1.ProtectedResource{}, indexResourceSelects, func(o client.Object) []string {
			if p := pr(o); p != nil && p.Spec.AllowedClientSelector != nil {
				return []string{"true"}
			}
			return nil
		}},
		{&v1alpha1.ProtectedResource{}, indexResourceAudience, func(o client.Object) []string {
			if p := pr(o); p != nil {
				return []string{p.Spec.Audience}
			}
			return nil
		}},
		{&v1alpha1.ProtectedResource{}, indexResourceScope, func(o client.Object) []string {
			if p := pr(o); p != nil {
				return slices.Clone(p.Spec.Scopes)
			}
			return nil
		}},
	}
}

// resourcesForClient maps an OAuthClient to the ProtectedResources that may allow it: those
// that name it, and those of its namespace with a selector (its labels may match it now, or
// did before). Two index lookups, whatever the number of clients.
func resourcesForClient(c client.Reader) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		var named, selecting v1alpha1.ProtectedResourceList
		src := convert.SourceKey(o.GetNamespace(), o.GetName())
		if err := c.List(ctx, &named, client.MatchingFields{indexResourceClient: src}); err != nil {
			log.FromContext(ctx).Error(err, "listing the ProtectedResources of an OAuthClient", "client", src)
			return nil
		}
		if err := c.List(ctx, &selecting, client.InNamespace(o.GetNamespace()), client.MatchingFields{indexResourceSelects: "true"}); err != nil {
			log.FromContext(ctx).Error(err, "listing the ProtectedResources of an OAuthClient", "client", src)
			return nil
		}
		return requestsOf(append(named.Items, selecting.Items...))
	}
}

// resourcesOfPolicy maps an OAuthClientPolicy to the ProtectedResources it applies to: those
// of its namespace, or every one for the default policy.
func resourcesOfPolicy(c client.Reader, def types.NamespacedName) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		var opts []client.ListOption
		if def.Name == "" || client.ObjectKeyFromObject(o) != def {
			opts = append(opts, client.InNamespace(o.GetNamespace()))
		}
		var list v1alpha1.ProtectedResourceList
		if err := c.List(ctx, &list, opts...); err != nil {
			log.FromContext(ctx).Error(err, "listing the ProtectedResources of a policy", "policy", client.ObjectKeyFromObject(o))
			return nil
		}
		return requestsOf(list.Items)
	}
}

// resourcesOfScope maps a Scope to the ProtectedResources that own its scope name.
func resourcesOfScope(c client.Reader) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		s, ok := o.(*v1alpha1.Scope)
		if !ok {
			return nil
		}
		var list v1alpha1.ProtectedResourceList
		if err := c.List(ctx, &list, client.MatchingFields{indexResourceScope: s.Spec.Name}); err != nil {
			log.FromContext(ctx).Error(err, "listing the ProtectedResources of a Scope", "scope", s.Name)
			return nil
		}
		return requestsOf(list.Items)
	}
}

// audiencePeers maps a ProtectedResource to the others that claim its audience: one going
// away, or becoming (in)valid, can hand the audience over.
func audiencePeers(c client.Reader) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		p, ok := o.(*v1alpha1.ProtectedResource)
		if !ok {
			return nil
		}
		var list v1alpha1.ProtectedResourceList
		if err := c.List(ctx, &list, client.MatchingFields{indexResourceAudience: p.Spec.Audience}); err != nil {
			log.FromContext(ctx).Error(err, "listing the ProtectedResources of an audience", "audience", p.Spec.Audience)
			return nil
		}
		list.Items = slices.DeleteFunc(list.Items, func(q v1alpha1.ProtectedResource) bool {
			return q.Namespace == p.Namespace && q.Name == p.Name
		})
		return requestsOf(list.Items)
	}
}

func requestsOf(items []v1alpha1.ProtectedResource) []reconcile.Request {
	reqs := make([]reconcile.Request, 0, len(items))
	for i := range items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&items[i])})
	}
	return reqs
}

// selectedClients returns a convert.ClientSelector over the cache and a function returning
// the first error it met.
func selectedClients(ctx context.Context, c client.Reader) (convert.ClientSelector, func() error) {
	var firstErr error
	return func(namespace string, sel labels.Selector) []string {
		var clients v1alpha1.OAuthClientList
		if err := c.List(ctx, &clients, client.InNamespace(namespace), client.MatchingLabelsSelector{Selector: sel}, client.UnsafeDisableDeepCopy); err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("list OAuthClients of namespace %s: %w", namespace, err)
			}
			return nil
		}
		out := make([]string, 0, len(clients.Items))
		for i := range clients.Items {
			if clients.Items[i].DeletionTimestamp.IsZero() {
				out = append(out, convert.SourceKey(namespace, clients.Items[i].Name))
			}
		}
		return out
	}, func() error { return firstErr }
}

// convertResource converts a ProtectedResource with its selector resolved against the cache.
func convertResource(ctx context.Context, c client.Reader, pr *v1alpha1.ProtectedResource) (registry.ProtectedResource, error, error) {
	selected, failed := selectedClients(ctx, c)
	p, err := convert.ProtectedResource(pr, selected)
	return p, err, failed()
}

// resourceRegistryReconciler keeps one replica's registry in step with the
// ProtectedResources, and their allowed clients with the OAuthClients' labels.
type resourceRegistryReconciler struct {
	cache    client.Reader
	registry ProtectedResourceRegistry
	ready    *Readiness
	policies clientPolicies
}

func (r *resourceRegistryReconciler) setup(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("protectedresource-registry").
		For(&v1alpha1.ProtectedResource{}, builder.WithPredicates(specChanged())).
		// Creations, deletions and label changes of OAuthClients change what a selector selects.
		Watches(&v1alpha1.OAuthClient{}, handler.EnqueueRequestsFromMapFunc(resourcesForClient(r.cache)),
			builder.WithPredicates(predicate.LabelChangedPredicate{})).
		Watches(&v1alpha1.OAuthClientPolicy{}, handler.EnqueueRequestsFromMapFunc(resourcesOfPolicy(r.cache, r.policies.def)),
			builder.WithPredicates(specChanged())).
		WithOptions(everyReplica()).
		Complete(r)
}

func (r *resourceRegistryReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return r.ready.takeIn(ctx, r.cache, kindProtectedResource, req.NamespacedName, &v1alpha1.ProtectedResource{}, nil, func(client.Reader) (ctrl.Result, error) {
		return r.reconcile(ctx, req)
	})
}

func (r *resourceRegistryReconciler) reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	logger := log.FromContext(ctx)
	source := convert.SourceKey(req.Namespace, req.Name)
	var pr v1alpha1.ProtectedResource
	if err := r.cache.Get(ctx, req.NamespacedName, &pr); err != nil {
		if apierrors.IsNotFound(err) {
			r.registry.DeleteProtectedResource(source)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	if !pr.DeletionTimestamp.IsZero() {
		r.registry.DeleteProtectedResource(source)
		return ctrl.Result{}, nil
	}
	violations, err := r.policies.resourceViolations(ctx, &pr)
	if err != nil {
		return ctrl.Result{}, err
	}
	if len(violations) > 0 {
		r.registry.DeleteProtectedResource(source)
		logger.Info("not served", "audience", pr.Spec.Audience, "reason", v1alpha1.ReasonPolicyViolation, "message", policy.Message(violations))
		return ctrl.Result{}, nil
	}
	p, err, listErr := convertResource(ctx, r.cache, &pr)
	if listErr != nil {
		return ctrl.Result{}, listErr
	}
	d := feed.ProtectedResource(p, err, nil)
	if d.Put() {
		r.registry.PutProtectedResource(p)
	} else {
		r.registry.DeleteProtectedResource(source)
	}
	logDecision(logger, d, "audience", pr.Spec.Audience)
	return ctrl.Result{}, nil
}

// resourceViolations returns the rules of the applicable policies that pr breaks
// (policy.EvaluateResource: its audience against allowedAudiences).
func (p clientPolicies) resourceViolations(ctx context.Context, pr *v1alpha1.ProtectedResource) ([]policy.Violation, error) {
	ps, err := p.of(ctx, pr.Namespace)
	if err != nil {
		return nil, err
	}
	return policy.EvaluateResource(pr, ps), nil
}

// protectedResourceReconciler is the leader's ProtectedResource controller: it sets Ready
// (Ready, InvalidSpec, PolicyViolation, AudienceConflict), ScopesResolved and
// clientsResolved, emits an Event on each Ready transition, and writes the RFC 9728 metadata
// ConfigMap of a resource that holds its audience.
type protectedResourceReconciler struct {
	client client.Client
	// reader reads ConfigMaps from the API server: the manager caches none (a cluster has many).
	reader   client.Reader
	scheme   *runtime.Scheme
	events   events.EventRecorder
	policies clientPolicies
	// metadata renders the metadata document; nil: no ConfigMap is written.
	metadata ResourceMetadata
}

func (r *protectedResourceReconciler) setup(mgr ctrl.Manager) error {
	b := ctrl.NewControllerManagedBy(mgr).
		Named("protectedresource").
		For(&v1alpha1.ProtectedResource{}, builder.WithPredicates(specChanged())).
		Watches(&v1alpha1.ProtectedResource{}, handler.EnqueueRequestsFromMapFunc(audiencePeers(r.client)),
			builder.WithPredicates(specChanged())).
		Watches(&v1alpha1.OAuthClient{}, handler.EnqueueRequestsFromMapFunc(resourcesForClient(r.client)),
			builder.WithPredicates(predicate.LabelChangedPredicate{})).
		Watches(&v1alpha1.Scope{}, handler.EnqueueRequestsFromMapFunc(resourcesOfScope(r.client)),
			builder.WithPredicates(specChanged())).
		Watches(&v1alpha1.OAuthClientPolicy{}, handler.EnqueueRequestsFromMapFunc(resourcesOfPolicy(r.client, r.policies.def)),
			builder.WithPredicates(specChanged()))
	if r.metadata != nil {
		// Metadata only, of every ConfigMap: a deleted or edited metadata ConfigMap is written again.
		b = b.WatchesMetadata(&corev1.ConfigMap{}, handler.EnqueueRequestForOwner(r.scheme, mgr.GetRESTMapper(),
			&v1alpha1.ProtectedResource{}, handler.OnlyControllerOwner()))
	}
	return b.Complete(retryConflicts(r))
}

func (r *protectedResourceReconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, retErr error) {
	var pr v1alpha1.ProtectedResource
	if err := r.client.Get(ctx, req.NamespacedName, &pr); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !pr.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	base := pr.DeepCopy()
	defer func() {
		var written bool
		written, retErr = patchStatus(ctx, r.client, base, &pr, base.Status, pr.Status, retErr)
		if written {
			recordReadyTransition(r.events, &pr, base.Status.Conditions, pr.Status.Conditions)
		}
	}()
	st := &pr.Status
	violations, err := r.policies.resourceViolations(ctx, &pr)
	if err != nil {
		return ctrl.Result{}, err
	}
	if len(violations) > 0 {
		st.ClientsResolved = 0
		if err := r.removeMetadata(ctx, &pr); err != nil {
			return ctrl.Result{}, err
		}
		setReady(&st.Conditions, &st.ObservedGeneration, pr.Generation, metav1.ConditionFalse, v1alpha1.ReasonPolicyViolation, policy.Message(violations))
		return ctrl.Result{}, nil
	}
	p, convErr, err := convertResource(ctx, r.client, &pr)
	if err != nil {
		return ctrl.Result{}, err
	}
	unknown, existing, err := r.clientsOf(ctx, &pr, p.AllowedClients)
	if err != nil {
		return ctrl.Result{}, err
	}
	d := feed.ProtectedResource(p, convErr, unknown)
	if !d.Put() {
		st.ClientsResolved = 0
		if err := r.removeMetadata(ctx, &pr); err != nil {
			return ctrl.Result{}, err
		}
		setDecision(&st.Conditions, &st.ObservedGeneration, pr.Generation, d)
		return ctrl.Result{}, reconcile.TerminalError(convErr)
	}
	st.ClientsResolved = int32(existing)
	if err := r.scopesResolved(ctx, &pr); err != nil {
		return ctrl.Result{}, err
	}
	holder, err := r.audienceHolder(ctx, &pr)
	if err != nil {
		return ctrl.Result{}, err
	}
	if holder != "" {
		c := feed.AudienceConflict(pr.Spec.Audience, holder)
		if err := r.removeMetadata(ctx, &pr); err != nil {
			return ctrl.Result{}, err
		}
		setReady(&st.Conditions, &st.ObservedGeneration, pr.Generation, metav1.ConditionFalse, c.Reason, c.Message)
		log.FromContext(ctx).Info("audience conflict", "audience", pr.Spec.Audience, "heldBy", holder)
		return ctrl.Result{}, nil
	}
	if err := r.writeMetadata(ctx, &pr, &p); err != nil {
		return ctrl.Result{}, err
	}
	setDecision(&st.Conditions, &st.ObservedGeneration, pr.Generation, d)
	return ctrl.Result{}, nil
}

// clientsOf returns the OAuthClients pr names that do not exist and how many of allowed
// (the resolved sources) exist: the selected ones do (the cache listed them), the named ones
// unless unknown. One cache read per named client, none per selected one.
func (r *protectedResourceReconciler) clientsOf(ctx context.Context, pr *v1alpha1.ProtectedResource, allowed []string) (unknown []string, existing int, _ error) {
	for _, src := range convert.ResourceClientSources(pr) {
		ns, name, _ := strings.Cut(src, "/")
		var oc v1alpha1.OAuthClient
		switch err := r.client.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &oc); {
		case apierrors.IsNotFound(err):
			unknown = append(unknown, src)
		case err != nil:
			return nil, 0, fmt.Errorf("get OAuthClient %s: %w", src, err)
		case !oc.DeletionTimestamp.IsZero():
			unknown = append(unknown, src)
		}
	}
	for _, src := range allowed {
		if _, missing := slices.BinarySearch(unknown, src); !missing { // unknown is sorted
			existing++
		}
	}
	return unknown, existing, nil
}

// scopesResolved sets the ScopesResolved condition: every owned scope is built in or defined
// by a Scope that is not being deleted.
func (r *protectedResourceReconciler) scopesResolved(ctx context.Context, pr *v1alpha1.ProtectedResource) error {
	defined := map[string]bool{}
	for _, name := range pr.Spec.Scopes {
		var list v1alpha1.ScopeList
		if err := r.client.List(ctx, &list, client.MatchingFields{indexScopeName: name}); err != nil {
			return fmt.Errorf("list Scopes named %q: %w", name, err)
		}
		defined[name] = slices.ContainsFunc(list.Items, func(s v1alpha1.Scope) bool { return s.DeletionTimestamp.IsZero() })
	}
	res := feed.ResourceScopesResolved(pr.Spec.Scopes, func(name string) bool { return defined[name] })
	status := metav1.ConditionTrue
	if !res.Resolved {
		status = metav1.ConditionFalse
	}
	meta.SetStatusCondition(&pr.Status.Conditions, metav1.Condition{Type: v1alpha1.ConditionScopesResolved, Status: status,
		Reason: res.Reason, Message: res.Message, ObservedGeneration: pr.Generation})
	return nil
}

// audienceHolder returns the source of the ProtectedResource that holds pr's audience instead
// of pr, or "" when pr holds it. The candidates are what the registries hold: valid, not
// being deleted, within their namespace's policies; the earliest created holds
// (registry.Precedes).
func (r *protectedResourceReconciler) audienceHolder(ctx context.Context, pr *v1alpha1.ProtectedResource) (string, error) {
	var peers v1alpha1.ProtectedResourceList
	if err := r.client.List(ctx, &peers, client.MatchingFields{indexResourceAudience: pr.Spec.Audience}); err != nil {
		return "", fmt.Errorf("list ProtectedResources of audience %q: %w", pr.Spec.Audience, err)
	}
	self := convert.SourceKey(pr.Namespace, pr.Name)
	holder, created := self, pr.CreationTimestamp.Time
	for i := range peers.Items {
		q := &peers.Items[i]
		src := convert.SourceKey(q.Namespace, q.Name)
		if src == self || !q.DeletionTimestamp.IsZero() || !registry.Precedes(q.CreationTimestamp.Time, src, created, holder) {
			continue
		}
		if _, err := convert.ProtectedResource(q, nil); err != nil {
			continue
		}
		vs, err := r.policies.resourceViolations(ctx, q)
		if err != nil {
			return "", err
		}
		if len(vs) == 0 {
			holder, created = src, q.CreationTimestamp.Time
		}
	}
	if holder == self {
		return "", nil
	}
	return holder, nil
}

// removeMetadata deletes the metadata ConfigMap of a resource that is not served or does not
// hold its audience (its document would name an audience it does not decide), when the
// resource controls it.
func (r *protectedResourceReconciler) removeMetadata(ctx context.Context, pr *v1alpha1.ProtectedResource) error {
	pr.Status.MetadataConfigMap = ""
	if r.metadata == nil {
		return nil
	}
	name := pr.Name + ResourceMetadataSuffix
	var cm corev1.ConfigMap
	switch err := r.reader.Get(ctx, types.NamespacedName{Namespace: pr.Namespace, Name: name}, &cm); {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("get ConfigMap %s: %w", name, err)
	case !metav1.IsControlledBy(&cm, pr):
		return nil
	}
	if err := r.client.Delete(ctx, &cm, client.Preconditions{UID: &cm.UID}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete ConfigMap %s: %w", name, err)
	}
	return nil
}

// writeMetadata creates or updates the ConfigMap <name>-oauth-protected-resource holding the
// resource's RFC 9728 metadata, controlled by the resource (deleted with it). A ConfigMap of
// that name the resource does not control is left alone (never adopted) and reported.
func (r *protectedResourceReconciler) writeMetadata(ctx context.Context, pr *v1alpha1.ProtectedResource, p *registry.ProtectedResource) error {
	if r.metadata == nil {
		return nil
	}
	doc, err := r.metadata(p)
	if err != nil {
		return fmt.Errorf("render the metadata of ProtectedResource %s: %w", p.Source, err)
	}
	name := pr.Name + ResourceMetadataSuffix
	data := map[string]string{oauth2.ProtectedResourceMetadataKey: string(doc)}
	var cm corev1.ConfigMap
	switch err := r.reader.Get(ctx, types.NamespacedName{Namespace: pr.Namespace, Name: name}, &cm); {
	case apierrors.IsNotFound(err):
		cm = corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: pr.Namespace, Name: name}, Data: data}
		if err := controllerutil.SetControllerReference(pr, &cm, r.scheme); err != nil {
			return err
		}
		if err := r.client.Create(ctx, &cm); err != nil {
			return fmt.Errorf("create ConfigMap %s: %w", name, err)
		}
	case err != nil:
		return fmt.Errorf("get ConfigMap %s: %w", name, err)
	case !metav1.IsControlledBy(&cm, pr):
		pr.Status.MetadataConfigMap = ""
		r.events.Eventf(pr, nil, corev1.EventTypeWarning, "ConfigMapConflict", "WriteMetadata",
			"ConfigMap %s exists and is not controlled by this resource; the metadata is not written", name)
		return nil
	case !maps.Equal(cm.Data, data) || len(cm.BinaryData) > 0:
		cm.Data, cm.BinaryData = data, nil
		if err := r.client.Update(ctx, &cm); err != nil {
			return fmt.Errorf("update ConfigMap %s: %w", name, err)
		}
	}
	pr.Status.MetadataConfigMap = cm.Name
	return nil
}
