package metrics

import (
	"context"
	"errors"
	"time"

	"github.com/latchkey-dev/latchkey/server/store"
)

// InstrumentStore returns s counting every operation in latchkey_store_operations_total
// {backend, operation, result}, where result is ok or the sentinel the operation returned
// (not_found, conflict, already_used, reused, revoked, unavailable, error). Unavailable and
// unexpected errors are also counted in latchkey_store_errors_total, and a RotateRefresh or
// ReportRefreshReuse that detects a reuse in latchkey_refresh_token_reuse_detected_total. The
// lookups of known records (KnownCode, KnownRefresh) count in latchkey_store_known_records_total
// {backend, kind, result: hit or miss}. A nil m returns s.
func (m *Metrics) InstrumentStore(s store.Store, backend string) store.Store {
	if m == nil || s == nil {
		return s
	}
	return &instrumented{s: s, m: m, backend: backend}
}

type instrumented struct {
	s       store.Store
	m       *Metrics
	backend string
}

// Result is the result label of a store error.
func Result(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, store.ErrNotFound):
		return "not_found"
	case errors.Is(err, store.ErrConflict):
		return "conflict"
	case errors.Is(err, store.ErrAlreadyUsed):
		return "already_used"
	case errors.Is(err, store.ErrReused):
		return "reused"
	case errors.Is(err, store.ErrRevoked):
		return "revoked"
	case errors.Is(err, store.ErrUnavailable):
		return "unavailable"
	}
	return "error"
}

func (i *instrumented) record(op string, err error) {
	res := Result(err)
	i.m.storeOperations.WithLabelValues(i.backend, op, res).Inc()
	if res == "unavailable" || res == "error" {
		i.m.storeErrors.WithLabelValues(i.backend, op).Inc()
	}
}

func (i *instrumented) PutCode(ctx context.Context, h store.Hash, c store.Code, ttl time.Duration) error {
	err := i.s.PutCode(ctx, h, c, ttl)
	i.record("put_code", err)
	return err
}

func (i *instrumented) TakeCode(ctx context.Context, h store.Hash, clientID string) (store.Code, error) {
	c, err := i.s.TakeCode(ctx, h, clientID)
	i.record("take_code", err)
	return c, err
}

func (i *instrumented) CreateRefresh(ctx context.Context, h store.Hash, rt store.RefreshToken) error {
	err := i.s.CreateRefresh(ctx, h, rt)
	i.record("create_refresh", err)
	return err
}

func (i *instrumented) GetRefresh(ctx context.Context, h store.Hash) (store.RefreshToken, error) {
	rt, err := i.s.GetRefresh(ctx, h)
	i.record("get_refresh", err)
	return rt, err
}

func (i *instrumented) RotateRefresh(ctx context.Context, old, h store.Hash, next store.RefreshToken, grace time.Duration) (store.RefreshToken, error) {
	rt, err := i.s.RotateRefresh(ctx, old, h, next, grace)
	i.record("rotate_refresh", err)
	if errors.Is(err, store.ErrReused) {
		i.m.RefreshReuseDetected()
	}
	return rt, err
}

func (i *instrumented) RedeemCode(ctx context.Context, h store.Hash, clientID string, rh store.Hash, rt store.RefreshToken) (store.Code, error) {
	c, err := i.s.RedeemCode(ctx, h, clientID, rh, rt)
	i.record("redeem_code", err)
	return c, err
}

func (i *instrumented) TakeCodeAdmitted(ctx context.Context, adm store.Admission, h store.Hash, clientID string) (store.ThrottleResult, store.Code, error) {
	res, c, err := i.s.TakeCodeAdmitted(ctx, adm, h, clientID)
	i.record("take_code_admitted", err)
	return res, c, err
}

func (i *instrumented) RedeemCodeAdmitted(ctx context.Context, adm store.Admission, h store.Hash, clientID string, rh store.Hash, rt store.RefreshToken) (store.ThrottleResult, store.Code, error) {
	res, c, err := i.s.RedeemCodeAdmitted(ctx, adm, h, clientID, rh, rt)
	i.record("redeem_code_admitted", err)
	return res, c, err
}

func (i *instrumented) RotateRefreshAdmitted(ctx context.Context, adm store.Admission, old, h store.Hash, next store.RefreshToken, grace time.Duration) (store.ThrottleResult, store.RefreshToken, error) {
	res, rt, err := i.s.RotateRefreshAdmitted(ctx, adm, old, h, next, grace)
	i.record("rotate_refresh_admitted", err)
	if errors.Is(err, store.ErrReused) {
		i.m.RefreshReuseDetected()
	}
	return res, rt, err
}

func (i *instrumented) known(kind string, ok bool) {
	result := "miss"
	if ok {
		result = "hit"
	}
	i.m.knownRecords.WithLabelValues(i.backend, kind, result).Inc()
}

func (i *instrumented) KnownCode(h store.Hash) (store.Code, bool) {
	c, ok := i.s.KnownCode(h)
	i.known("code", ok)
	return c, ok
}

func (i *instrumented) KnownRefresh(h store.Hash) (store.RefreshToken, bool) {
	rt, ok := i.s.KnownRefresh(h)
	i.known("refresh_token", ok)
	return rt, ok
}

func (i *instrumented) ReportRefreshReuse(ctx context.Context, h store.Hash, grace time.Duration) error {
	err := i.s.ReportRefreshReuse(ctx, h, grace)
	i.record("report_refresh_reuse", err)
	if errors.Is(err, store.ErrReused) {
		i.m.RefreshReuseDetected()
	}
	return err
}

func (i *instrumented) RevokeFamily(ctx context.Context, familyID string, until time.Time) error {
	err := i.s.RevokeFamily(ctx, familyID, until)
	i.record("revoke_family", err)
	return err
}

func (i *instrumented) FamilyRevoked(ctx context.Context, familyID string) (bool, error) {
	ok, err := i.s.FamilyRevoked(ctx, familyID)
	i.record("family_revoked", err)
	return ok, err
}

func (i *instrumented) RevokeToken(ctx context.Context, jti string, until time.Time) error {
	err := i.s.RevokeToken(ctx, jti, until)
	i.record("revoke_token", err)
	return err
}

func (i *instrumented) TokenRevoked(ctx context.Context, jti string) (bool, error) {
	ok, err := i.s.TokenRevoked(ctx, jti)
	i.record("token_revoked", err)
	return ok, err
}

func (i *instrumented) PutRecord(ctx context.Context, kind string, h store.Hash, value []byte, ttl time.Duration) error {
	err := i.s.PutRecord(ctx, kind, h, value, ttl)
	i.record("put_record", err)
	return err
}

func (i *instrumented) GetRecord(ctx context.Context, kind string, h store.Hash) ([]byte, error) {
	v, err := i.s.GetRecord(ctx, kind, h)
	i.record("get_record", err)
	return v, err
}

func (i *instrumented) DeleteRecord(ctx context.Context, kind string, h store.Hash) error {
	err := i.s.DeleteRecord(ctx, kind, h)
	i.record("delete_record", err)
	return err
}

func (i *instrumented) Incr(ctx context.Context, key store.Hash, window time.Duration) (int64, error) {
	n, err := i.s.Incr(ctx, key, window)
	i.record("incr", err)
	return n, err
}

func (i *instrumented) Reset(ctx context.Context, key store.Hash) error {
	err := i.s.Reset(ctx, key)
	i.record("reset", err)
	return err
}

func (i *instrumented) Throttle(ctx context.Context, keys []store.ThrottleKey, outcome store.Outcome) (store.ThrottleResult, error) {
	res, err := i.s.Throttle(ctx, keys, outcome)
	i.record("throttle", err)
	return res, err
}

func (i *instrumented) ThrottleRate(ctx context.Context, keys []store.ThrottleKey, outcome store.Outcome, rate store.RateTake) (store.ThrottleResult, error) {
	res, err := i.s.ThrottleRate(ctx, keys, outcome, rate)
	i.record("throttle_rate", err)
	return res, err
}

func (i *instrumented) TakeRate(ctx context.Context, key store.Hash, perMinute, burst int) (time.Duration, error) {
	wait, err := i.s.TakeRate(ctx, key, perMinute, burst)
	i.record("take_rate", err)
	return wait, err
}

func (i *instrumented) NoteCredentialUses(ctx context.Context, uses []store.CredentialUse) error {
	err := i.s.NoteCredentialUses(ctx, uses)
	i.record("note_credential_uses", err)
	return err
}

func (i *instrumented) TakeCredentialUses(ctx context.Context, limit int) ([]store.CredentialUse, error) {
	uses, err := i.s.TakeCredentialUses(ctx, limit)
	i.record("take_credential_uses", err)
	return uses, err
}

func (i *instrumented) Ping(ctx context.Context) error {
	err := i.s.Ping(ctx)
	i.record("ping", err)
	return err
}
