package grants

import (
	"context"

	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/store"
)

// Admission is what a request must pass before its grant changes anything: the record of a
// confidential client's successful authentication (the brute-force guard's Success, which a
// block refuses) and, when the client has one, its rate limit (for a public client, only that).
// The token endpoint leaves it to the grants that can put it into their store step
// (store.Admissions: RedeemCodeAdmitted, RotateRefreshAdmitted, TakeCodeAdmitted), so that a
// code exchange or a refresh costs one Redis round trip, authentication included. A grant that
// makes any other store call that changes something first applies it on its own (Admit). The
// endpoint applies what is left pending when the grant returns. A nil *Admission has nothing
// pending.
type Admission struct {
	// deferred is the authentication's record; nil for a public client (nothing to record).
	deferred *oauth2.Deferred
	client   *registry.Client
	rate     *store.RateTake
	limits   RateLimits
	done     bool
}

// pending returns the admission to run in a store step, or nil when none is pending.
func (a *Admission) pending() *store.Admission {
	if a == nil || a.done {
		return nil
	}
	adm := &store.Admission{Rate: a.rate}
	if a.deferred != nil {
		adm.Keys = a.deferred.Keys
	}
	return adm
}

// Admit applies the admission on its own, if it is pending: 429 when a key is blocked or the
// bucket is empty. When the store cannot be reached the request is neither throttled nor
// limited (oauth2.FailOpen).
func (a *Admission) Admit(ctx context.Context) error {
	if a.pending() == nil {
		return nil
	}
	if a.deferred == nil {
		a.done = true
		return a.limits.take(ctx, a.client)
	}
	res, err := a.deferred.Record(ctx, a.rate)
	return a.answer(ctx, res, err)
}

// answer finishes the admission with what its store step found (err: the step failed).
func (a *Admission) answer(ctx context.Context, res store.ThrottleResult, err error) error {
	a.done = true
	if a.deferred != nil {
		if err := a.deferred.Answer(ctx, res, err); err != nil {
			return err
		}
	}
	return a.limits.refused(ctx, a.client, res.RateWait)
}

// admitting is a grant that takes an Admission in its store step.
type admitting interface {
	admits()
}
