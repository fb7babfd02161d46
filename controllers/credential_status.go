package controllers

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
	"github.com/latchkey-dev/latchkey/server/store"
)

// CredentialUses is where the replicas note when their clients last used their credentials
// (server/credentialuse flushes into it) and the leader takes them from; the leased store
// (store.CredentialUses) implements it.
type CredentialUses interface {
	NoteCredentialUses(ctx context.Context, uses []store.CredentialUse) error
	TakeCredentialUses(ctx context.Context, limit int) ([]store.CredentialUse, error)
}

var _ CredentialUses = store.CredentialUses(nil)

// DefaultCredentialStatusInterval is how often the leader writes the last-used times.
const DefaultCredentialStatusInterval = time.Minute

const (
	// credentialUseBatch is how many uses one take asks for; a round takes at most
	// credentialUseBatches of them (the rest waits for the next round).
	credentialUseBatch   = 500
	credentialUseBatches = 20
	// credentialStatusTimeout bounds one round.
	credentialStatusTimeout = 30 * time.Second
)

// credentialStatusWriter is a leader-only Runnable: every interval it takes the credential uses
// the replicas noted and writes status.credentials.currentLastUsed and previousLastUsed of the
// OAuthClients with spec.secretRotation, to the minute, only when that moves them forward. A
// client ID finds its OAuthClient through the indexClientID field index: the one that is Ready
// with that client ID (the one the registries serve). Uses of other clients are dropped; uses
// whose status could not be written are noted again for the next round.
type credentialStatusWriter struct {
	client   client.Client
	uses     CredentialUses
	interval time.Duration
}

var _ manager.LeaderElectionRunnable = (*credentialStatusWriter)(nil)

// lastUses are a client's latest uses of its current and previous credentials (zero: none).
type lastUses struct{ current, previous time.Time }

// Start writes every interval until ctx ends.
func (w *credentialStatusWriter) Start(ctx context.Context) error {
	t := time.NewTicker(w.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			rctx, cancel := context.WithTimeout(ctx, credentialStatusTimeout)
			w.round(rctx)
			cancel()
		}
	}
}

// NeedLeaderElection is true: the leader writes status.
func (*credentialStatusWriter) NeedLeaderElection() bool { return true }

// round takes the noted uses and writes them.
func (w *credentialStatusWriter) round(ctx context.Context) {
	logger := ctrl.Log.WithName("credential-status")
	latest := map[string]lastUses{}
	for range credentialUseBatches {
		batch, err := w.uses.TakeCredentialUses(ctx, credentialUseBatch)
		if err != nil {
			logger.Error(err, "taking the credential uses from the store")
			break
		}
		for _, u := range batch {
			l := latest[u.ClientID]
			switch {
			case u.Previous && u.At.After(l.previous):
				l.previous = u.At
			case !u.Previous && u.At.After(l.current):
				l.current = u.At
			}
			latest[u.ClientID] = l
		}
		if len(batch) < credentialUseBatch {
			break
		}
	}
	var retry []store.CredentialUse
	for id, l := range latest {
		if err := w.write(ctx, id, l); err != nil {
			logger.Error(err, "writing the last credential uses", "clientID", id)
			if !l.current.IsZero() {
				retry = append(retry, store.CredentialUse{ClientID: id, At: l.current})
			}
			if !l.previous.IsZero() {
				retry = append(retry, store.CredentialUse{ClientID: id, Previous: true, At: l.previous})
			}
		}
	}
	if len(retry) > 0 {
		if err := w.uses.NoteCredentialUses(ctx, retry); err != nil {
			logger.Error(err, "noting the credential uses again for the next round", "clients", len(retry))
		}
	}
}

// write patches the status of the OAuthClient that serves the client ID, when it tracks its
// credentials (spec.secretRotation) and the uses are later than what it says.
func (w *credentialStatusWriter) write(ctx context.Context, id string, l lastUses) error {
	var list v1alpha1.OAuthClientList
	if err := w.client.List(ctx, &list, client.MatchingFields{indexClientID: id}); err != nil {
		return fmt.Errorf("list OAuthClients with client ID %q: %w", id, err)
	}
	var oc *v1alpha1.OAuthClient
	for i := range list.Items {
		p := &list.Items[i]
		if p.DeletionTimestamp.IsZero() && p.Status.ClientID == id && meta.IsStatusConditionTrue(p.Status.Conditions, v1alpha1.ConditionReady) {
			oc = p
			break
		}
	}
	if oc == nil || oc.Spec.SecretRotation == nil {
		return nil
	}
	base := oc.DeepCopy()
	c := oc.Status.Credentials
	if c == nil {
		c = &v1alpha1.CredentialStatus{}
	}
	changed := later(&c.CurrentLastUsed, l.current)
	changed = later(&c.PreviousLastUsed, l.previous) || changed
	if !changed {
		return nil
	}
	oc.Status.Credentials = c
	if err := w.client.Status().Patch(ctx, oc, client.MergeFrom(base)); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("patch status: %w", err)
	}
	return nil
}

// later sets *field to at truncated to the minute when that is later than it; it reports
// whether it did.
func later(field **metav1.Time, at time.Time) bool {
	if at.IsZero() {
		return false
	}
	at = at.UTC().Truncate(time.Minute)
	if *field != nil && !at.After((*field).Time) {
		return false
	}
	*field = &metav1.Time{Time: at}
	return true
}
