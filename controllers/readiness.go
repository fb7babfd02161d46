package controllers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
)

// Kinds whose registry reconcilers report to Readiness.
const (
	kindOAuthClient    = "OAuthClient"
	kindScope          = "Scope"
	kindUser           = "User"
	kindWorkloadIssuer = "WorkloadIssuer"
	// kindOIDCIdentityProvider: an upstream identity provider users sign in with.
	kindOIDCIdentityProvider = "OIDCIdentityProvider"
	// kindOAuthClientPolicy reports only to the propagation status (not to readiness).
	kindOAuthClientPolicy = "OAuthClientPolicy"
)

// Readiness tells whether this replica's registry is filled: true once every OAuthClient, Scope,
// User, WorkloadIssuer and ProtectedResource that was in the manager's cache when it had synced has been processed at least once by
// its registry reconciler (put, deleted, or refused as invalid; a reconcile that failed on an API
// error and will be retried does not count). Informers being synced is not enough: until the
// reconcilers ran, the registry is empty and a replica would answer invalid_client.
//
// Once true it stays true: it describes the first load, not later changes. Setup feeds it; main.go
// reads it through Check, a healthz.Checker:
//
//	ready := controllers.NewReadiness()
//	err := controllers.Setup(mgr, controllers.Options{..., Readiness: ready})
//	err = mgr.AddReadyzCheck("registry", ready.Check)
type Readiness struct {
	mu        sync.Mutex
	ready     bool                   // latched
	listed    bool                   // the startup listing ran; pending is meaningful
	pending   map[objectKey]struct{} // listed at startup, not processed yet
	processed map[objectKey]struct{} // processed before the listing ran
	// served is, per kind, the generation (and UID) of every object that the registry
	// reconcilers took in, for the replica's propagation report (propagation.go).
	served map[string]map[types.NamespacedName]*servedVersion
	// lags counts the lag computations (servedVersion.seen); takenIn the markServed calls.
	lags, takenIn uint64
	// onProcessed, when set (by Setup, before the manager starts), hears of every processed
	// object's kind: the metrics' time since each informer last synced.
	onProcessed func(kind string)
}

type objectKey struct {
	kind string
	key  types.NamespacedName
}

// NewReadiness returns a Readiness that is not ready until Setup's controllers have run.
func NewReadiness() *Readiness {
	return &Readiness{processed: map[objectKey]struct{}{}, served: map[string]map[types.NamespacedName]*servedVersion{}}
}

// Check is a healthz.Checker (mgr.AddReadyzCheck): nil once the registry is filled.
func (r *Readiness) Check(*http.Request) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.ready:
		return nil
	case !r.listed:
		return errors.New("registry not filled: informer caches not synced yet")
	default:
		return fmt.Errorf("registry not filled: %d resources not processed yet", len(r.pending))
	}
}

// markProcessed records that the registry reconciler of kind processed the object. A nil
// Readiness ignores it.
func (r *Readiness) markProcessed(kind string, key types.NamespacedName) {
	if r == nil {
		return
	}
	if r.onProcessed != nil {
		r.onProcessed(kind)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ready {
		return
	}
	k := objectKey{kind: kind, key: key}
	if !r.listed {
		r.processed[k] = struct{}{}
		return
	}
	delete(r.pending, k)
	r.ready = len(r.pending) == 0
}

// expect records the objects in the synced cache; those processed already do not count.
func (r *Readiness) expect(keys []objectKey) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pending = make(map[objectKey]struct{}, len(keys))
	for _, k := range keys {
		if _, done := r.processed[k]; !done {
			r.pending[k] = struct{}{}
		}
	}
	r.processed = nil
	r.listed = true
	r.ready = len(r.pending) == 0
}

// readinessLister runs on every replica: it waits for the cache to sync, then hands the keys of
// every OAuthClient, Scope, User, WorkloadIssuer and ProtectedResource in it to the Readiness.
type readinessLister struct {
	cache interface {
		client.Reader
		WaitForCacheSync(ctx context.Context) bool
	}
	ready *Readiness
}

var _ manager.LeaderElectionRunnable = (*readinessLister)(nil)

func (l *readinessLister) NeedLeaderElection() bool { return false }

func (l *readinessLister) Start(ctx context.Context) error {
	if !l.cache.WaitForCacheSync(ctx) {
		return nil // stopping
	}
	for {
		keys, err := l.list(ctx)
		if err == nil {
			l.ready.expect(keys)
			return nil
		}
		log.FromContext(ctx).Error(err, "listing resources for readiness; retrying")
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
}

func (l *readinessLister) list(ctx context.Context) ([]objectKey, error) {
	var keys []objectKey
	var clients v1alpha1.OAuthClientList
	if err := l.cache.List(ctx, &clients, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("list OAuthClients: %w", err)
	}
	for i := range clients.Items {
		keys = append(keys, objectKey{kindOAuthClient, client.ObjectKeyFromObject(&clients.Items[i])})
	}
	var scopes v1alpha1.ScopeList
	if err := l.cache.List(ctx, &scopes, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("list Scopes: %w", err)
	}
	for i := range scopes.Items {
		keys = append(keys, objectKey{kindScope, client.ObjectKeyFromObject(&scopes.Items[i])})
	}
	var users v1alpha1.UserList
	if err := l.cache.List(ctx, &users, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("list Users: %w", err)
	}
	for i := range users.Items {
		keys = append(keys, objectKey{kindUser, client.ObjectKeyFromObject(&users.Items[i])})
	}
	var issuers v1alpha1.WorkloadIssuerList
	if err := l.cache.List(ctx, &issuers, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("list WorkloadIssuers: %w", err)
	}
	for i := range issuers.Items {
		keys = append(keys, objectKey{kindWorkloadIssuer, client.ObjectKeyFromObject(&issuers.Items[i])})
	}
	var upstreams v1alpha1.OIDCIdentityProviderList
	if err := l.cache.List(ctx, &upstreams, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("list OIDCIdentityProviders: %w", err)
	}
	for i := range upstreams.Items {
		keys = append(keys, objectKey{kindOIDCIdentityProvider, client.ObjectKeyFromObject(&upstreams.Items[i])})
	}
	var ldaps v1alpha1.LDAPIdentityProviderList
	if err := l.cache.List(ctx, &ldaps, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("list LDAPIdentityProviders: %w", err)
	}
	for i := range ldaps.Items {
		keys = append(keys, objectKey{kindLDAPIdentityProvider, client.ObjectKeyFromObject(&ldaps.Items[i])})
	}
	var githubs v1alpha1.GitHubIdentityProviderList
	if err := l.cache.List(ctx, &githubs, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("list GitHubIdentityProviders: %w", err)
	}
	for i := range githubs.Items {
		keys = append(keys, objectKey{kindGitHubIdentityProvider, client.ObjectKeyFromObject(&githubs.Items[i])})
	}
	var resources v1alpha1.ProtectedResourceList
	if err := l.cache.List(ctx, &resources, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("list ProtectedResources: %w", err)
	}
	for i := range resources.Items {
		keys = append(keys, objectKey{kindProtectedResource, client.ObjectKeyFromObject(&resources.Items[i])})
	}
	return keys, nil
}
