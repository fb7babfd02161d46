package memory

import (
	"context"
	"time"

	"github.com/latchkey-dev/latchkey/server/store"
)

// admit applies the admission: ThrottleRate with a Success, or Throttle without a rate.
func (s *Store) admit(ctx context.Context, adm store.Admission) (store.ThrottleResult, error) {
	if adm.Rate != nil {
		return s.ThrottleRate(ctx, adm.Keys, store.Success, *adm.Rate)
	}
	return s.Throttle(ctx, adm.Keys, store.Success)
}

// TakeCodeAdmitted is TakeCode after the admission; see RedeemCodeAdmitted.
func (s *Store) TakeCodeAdmitted(ctx context.Context, adm store.Admission, h store.Hash, clientID string) (store.ThrottleResult, store.Code, error) {
	res, err := s.admit(ctx, adm)
	if err != nil || res.Refused() {
		return res, store.Code{}, err
	}
	c, err := s.TakeCode(ctx, h, clientID)
	return res, c, err
}

// RedeemCodeAdmitted is RedeemCode after the admission; see store.Admissions. The memory
// store applies them one after the other, each atomic: nothing else can make an admitted
// request's operation fail that could not have made it fail just after.
func (s *Store) RedeemCodeAdmitted(ctx context.Context, adm store.Admission, h store.Hash, clientID string, rh store.Hash, rt store.RefreshToken) (store.ThrottleResult, store.Code, error) {
	res, err := s.admit(ctx, adm)
	if err != nil || res.Refused() {
		return res, store.Code{}, err
	}
	c, err := s.RedeemCode(ctx, h, clientID, rh, rt)
	return res, c, err
}

// RotateRefreshAdmitted is RotateRefresh after the admission; see RedeemCodeAdmitted.
func (s *Store) RotateRefreshAdmitted(ctx context.Context, adm store.Admission, old, h store.Hash, next store.RefreshToken, sealed []byte, grace time.Duration) (store.ThrottleResult, store.RefreshToken, error) {
	res, err := s.admit(ctx, adm)
	if err != nil || res.Refused() {
		return res, store.RefreshToken{}, err
	}
	rt, err := s.RotateRefresh(ctx, old, h, next, sealed, grace)
	return res, rt, err
}
