package metrics

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/latchkey-dev/latchkey/server/store"
	"github.com/latchkey-dev/latchkey/server/tracing"
)

// InstrumentStore returns s counting every operation in latchkey_store_operations_total
// {backend, operation, result}, where result is ok or the sentinel the operation returned
// (not_found, conflict, already_used, reused, revoked, unavailable, error; successor for a
// conflict that answers a kept successor, store.SuccessorError). Unavailable and
// unexpected errors are also counted in latchkey_store_errors_total, and a RotateRefresh or
// ReportRefreshReuse that detects a reuse in latchkey_refresh_token_reuse_detected_total. The
// lookups of known records (KnownCode, KnownRefresh) count in latchkey_store_known_records_total
// {backend, record: code or refresh_token, result: hit or miss}. A nil m returns s.
// When the request is traced, each operation is a span "store <operation>" (server/tracing) with
// its result; only unavailable and unexpected errors mark it failed.
//
// The failure series (latchkey_store_errors_total of every operation, and the unavailable and
// error results of latchkey_store_operations_total) and the known record lookups start at zero,
// so that a healthy server shows zeros rather than no data.
func (m *Metrics) InstrumentStore(s store.Store, backend string) store.Store {
	if m == nil || s == nil {
		return s
	}
	for _, op := range storeOperations() {
		m.storeErrors.WithLabelValues(backend, op)
		for _, res := range []string{"unavailable", "error"} {
			m.storeOperations.WithLabelValues(backend, op, res)
		}
	}
	for _, record := range []string{"code", "refresh_token"} {
		for _, res := range []string{"hit", "miss"} {
			m.knownRecords.WithLabelValues(backend, record, res)
		}
	}
	return &instrumented{s: s, m: m, backend: backend}
}

// storeOperations are the operation label values: one per method of store.Store.
func storeOperations() []string {
	return []string{
		"put_code", "take_code", "create_refresh", "get_refresh", "rotate_refresh", "report_refresh_reuse",
		"revoke_family", "family_revoked", "cut_off_grants", "revoke_token", "token_revoked", "put_record", "get_record",
		"delete_record", "take_record", "incr", "reset", "throttle", "take_rate", "note_credential_uses",
		"take_credential_uses", "ping", "redeem_code", "take_code_admitted", "redeem_code_admitted",
		"rotate_refresh_admitted", "throttle_rate", "enqueue_logout_deliveries",
		"claim_logout_deliveries", "finish_logout_delivery", "retry_logout_delivery",
		"put_entry", "list_entries", "delete_entry",
		"put_device_grant", "device_grant_by_user_code", "decide_device_grant", "poll_device_grant",
	}
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
	case errors.As(err, new(*store.SuccessorError)):
		return "successor"
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

// start starts the span "store <op>" when the request is traced (see server/tracing).
func (i *instrumented) start(ctx context.Context, op string) (context.Context, trace.Span) {
	if !tracing.Recording(ctx) {
		return ctx, trace.SpanFromContext(ctx)
	}
	ctx, span := tracing.Start(ctx, "store "+op)
	span.SetAttributes(tracing.StoreOperation.String(op), backendKey.String(i.backend))
	return ctx, span
}

// backendKey is the span attribute of the store backend.
const backendKey = attribute.Key("latchkey.store.backend")

func (i *instrumented) record(span trace.Span, op string, err error) {
	res := Result(err)
	i.m.storeOperations.WithLabelValues(i.backend, op, res).Inc()
	failed := res == "unavailable" || res == "error"
	if failed {
		i.m.storeErrors.WithLabelValues(i.backend, op).Inc()
	}
	if span.IsRecording() {
		span.SetAttributes(tracing.StoreResult.String(res))
		if !failed {
			err = nil // not_found, conflict, reused ...: answers, not failures of the store
		}
		tracing.End(span, err)
	}
}

func (i *instrumented) PutCode(ctx context.Context, h store.Hash, c store.Code, ttl time.Duration) error {
	ctx, span := i.start(ctx, "put_code")
	err := i.s.PutCode(ctx, h, c, ttl)
	i.record(span, "put_code", err)
	return err
}

func (i *instrumented) TakeCode(ctx context.Context, h store.Hash, clientID string) (store.Code, error) {
	ctx, span := i.start(ctx, "take_code")
	c, err := i.s.TakeCode(ctx, h, clientID)
	i.record(span, "take_code", err)
	return c, err
}

func (i *instrumented) CreateRefresh(ctx context.Context, h store.Hash, rt store.RefreshToken) error {
	ctx, span := i.start(ctx, "create_refresh")
	err := i.s.CreateRefresh(ctx, h, rt)
	i.record(span, "create_refresh", err)
	return err
}

func (i *instrumented) GetRefresh(ctx context.Context, h store.Hash) (store.RefreshToken, error) {
	ctx, span := i.start(ctx, "get_refresh")
	rt, err := i.s.GetRefresh(ctx, h)
	i.record(span, "get_refresh", err)
	return rt, err
}

func (i *instrumented) RotateRefresh(ctx context.Context, old, h store.Hash, next store.RefreshToken, sealed []byte, grace time.Duration) (store.RefreshToken, error) {
	ctx, span := i.start(ctx, "rotate_refresh")
	rt, err := i.s.RotateRefresh(ctx, old, h, next, sealed, grace)
	i.record(span, "rotate_refresh", err)
	if errors.Is(err, store.ErrReused) {
		i.m.RefreshReuseDetected()
	}
	return rt, err
}

func (i *instrumented) RedeemCode(ctx context.Context, h store.Hash, clientID string, rh store.Hash, rt store.RefreshToken) (store.Code, error) {
	ctx, span := i.start(ctx, "redeem_code")
	c, err := i.s.RedeemCode(ctx, h, clientID, rh, rt)
	i.record(span, "redeem_code", err)
	return c, err
}

func (i *instrumented) TakeCodeAdmitted(ctx context.Context, adm store.Admission, h store.Hash, clientID string) (store.ThrottleResult, store.Code, error) {
	ctx, span := i.start(ctx, "take_code_admitted")
	res, c, err := i.s.TakeCodeAdmitted(ctx, adm, h, clientID)
	i.record(span, "take_code_admitted", err)
	return res, c, err
}

func (i *instrumented) RedeemCodeAdmitted(ctx context.Context, adm store.Admission, h store.Hash, clientID string, rh store.Hash, rt store.RefreshToken) (store.ThrottleResult, store.Code, error) {
	ctx, span := i.start(ctx, "redeem_code_admitted")
	res, c, err := i.s.RedeemCodeAdmitted(ctx, adm, h, clientID, rh, rt)
	i.record(span, "redeem_code_admitted", err)
	return res, c, err
}

func (i *instrumented) RotateRefreshAdmitted(ctx context.Context, adm store.Admission, old, h store.Hash, next store.RefreshToken, sealed []byte, grace time.Duration) (store.ThrottleResult, store.RefreshToken, error) {
	ctx, span := i.start(ctx, "rotate_refresh_admitted")
	res, rt, err := i.s.RotateRefreshAdmitted(ctx, adm, old, h, next, sealed, grace)
	i.record(span, "rotate_refresh_admitted", err)
	if errors.Is(err, store.ErrReused) {
		i.m.RefreshReuseDetected()
	}
	return res, rt, err
}

func (i *instrumented) known(record string, ok bool) {
	result := "miss"
	if ok {
		result = "hit"
	}
	i.m.knownRecords.WithLabelValues(i.backend, record, result).Inc()
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
	ctx, span := i.start(ctx, "report_refresh_reuse")
	err := i.s.ReportRefreshReuse(ctx, h, grace)
	i.record(span, "report_refresh_reuse", err)
	if errors.Is(err, store.ErrReused) {
		i.m.RefreshReuseDetected()
	}
	return err
}

func (i *instrumented) RevokeFamily(ctx context.Context, familyID string, until time.Time) error {
	ctx, span := i.start(ctx, "revoke_family")
	err := i.s.RevokeFamily(ctx, familyID, until)
	i.record(span, "revoke_family", err)
	return err
}

func (i *instrumented) CutOffGrants(ctx context.Context, c store.Cutoff, until time.Time) error {
	ctx, span := i.start(ctx, "cut_off_grants")
	err := i.s.CutOffGrants(ctx, c, until)
	i.record(span, "cut_off_grants", err)
	return err
}

func (i *instrumented) FamilyRevoked(ctx context.Context, familyID string) (bool, error) {
	ctx, span := i.start(ctx, "family_revoked")
	ok, err := i.s.FamilyRevoked(ctx, familyID)
	i.record(span, "family_revoked", err)
	return ok, err
}

func (i *instrumented) RevokeToken(ctx context.Context, jti string, until time.Time) error {
	ctx, span := i.start(ctx, "revoke_token")
	err := i.s.RevokeToken(ctx, jti, until)
	i.record(span, "revoke_token", err)
	return err
}

func (i *instrumented) TokenRevoked(ctx context.Context, jti string) (bool, error) {
	ctx, span := i.start(ctx, "token_revoked")
	ok, err := i.s.TokenRevoked(ctx, jti)
	i.record(span, "token_revoked", err)
	return ok, err
}

func (i *instrumented) PutRecord(ctx context.Context, kind string, h store.Hash, value []byte, ttl time.Duration) error {
	ctx, span := i.start(ctx, "put_record")
	err := i.s.PutRecord(ctx, kind, h, value, ttl)
	i.record(span, "put_record", err)
	return err
}

func (i *instrumented) GetRecord(ctx context.Context, kind string, h store.Hash) ([]byte, error) {
	ctx, span := i.start(ctx, "get_record")
	v, err := i.s.GetRecord(ctx, kind, h)
	i.record(span, "get_record", err)
	return v, err
}

func (i *instrumented) PutEntry(ctx context.Context, kind string, h store.Hash, id string, value []byte, ttl time.Duration) error {
	ctx, span := i.start(ctx, "put_entry")
	err := i.s.PutEntry(ctx, kind, h, id, value, ttl)
	i.record(span, "put_entry", err)
	return err
}

func (i *instrumented) ListEntries(ctx context.Context, kind string, h store.Hash) ([]store.Entry, error) {
	ctx, span := i.start(ctx, "list_entries")
	v, err := i.s.ListEntries(ctx, kind, h)
	i.record(span, "list_entries", err)
	return v, err
}

func (i *instrumented) DeleteEntry(ctx context.Context, kind string, h store.Hash, id string) error {
	ctx, span := i.start(ctx, "delete_entry")
	err := i.s.DeleteEntry(ctx, kind, h, id)
	i.record(span, "delete_entry", err)
	return err
}

func (i *instrumented) DeleteRecord(ctx context.Context, kind string, h store.Hash) error {
	ctx, span := i.start(ctx, "delete_record")
	err := i.s.DeleteRecord(ctx, kind, h)
	i.record(span, "delete_record", err)
	return err
}

func (i *instrumented) TakeRecord(ctx context.Context, kind string, h store.Hash) ([]byte, error) {
	ctx, span := i.start(ctx, "take_record")
	b, err := i.s.TakeRecord(ctx, kind, h)
	i.record(span, "take_record", err)
	return b, err
}

func (i *instrumented) Incr(ctx context.Context, key store.Hash, window time.Duration) (int64, error) {
	ctx, span := i.start(ctx, "incr")
	n, err := i.s.Incr(ctx, key, window)
	i.record(span, "incr", err)
	return n, err
}

func (i *instrumented) Reset(ctx context.Context, key store.Hash) error {
	ctx, span := i.start(ctx, "reset")
	err := i.s.Reset(ctx, key)
	i.record(span, "reset", err)
	return err
}

func (i *instrumented) Throttle(ctx context.Context, keys []store.ThrottleKey, outcome store.Outcome) (store.ThrottleResult, error) {
	ctx, span := i.start(ctx, "throttle")
	res, err := i.s.Throttle(ctx, keys, outcome)
	i.record(span, "throttle", err)
	return res, err
}

func (i *instrumented) ThrottleRate(ctx context.Context, keys []store.ThrottleKey, outcome store.Outcome, rate store.RateTake) (store.ThrottleResult, error) {
	ctx, span := i.start(ctx, "throttle_rate")
	res, err := i.s.ThrottleRate(ctx, keys, outcome, rate)
	i.record(span, "throttle_rate", err)
	return res, err
}

func (i *instrumented) TakeRate(ctx context.Context, key store.Hash, perMinute, burst int) (time.Duration, error) {
	ctx, span := i.start(ctx, "take_rate")
	wait, err := i.s.TakeRate(ctx, key, perMinute, burst)
	i.record(span, "take_rate", err)
	return wait, err
}

func (i *instrumented) NoteCredentialUses(ctx context.Context, uses []store.CredentialUse) error {
	ctx, span := i.start(ctx, "note_credential_uses")
	err := i.s.NoteCredentialUses(ctx, uses)
	i.record(span, "note_credential_uses", err)
	return err
}

func (i *instrumented) TakeCredentialUses(ctx context.Context, limit int) ([]store.CredentialUse, error) {
	ctx, span := i.start(ctx, "take_credential_uses")
	uses, err := i.s.TakeCredentialUses(ctx, limit)
	i.record(span, "take_credential_uses", err)
	return uses, err
}

func (i *instrumented) EnqueueLogoutDeliveries(ctx context.Context, ds []store.LogoutDelivery, ttl time.Duration) error {
	ctx, span := i.start(ctx, "enqueue_logout_deliveries")
	err := i.s.EnqueueLogoutDeliveries(ctx, ds, ttl)
	i.record(span, "enqueue_logout_deliveries", err)
	return err
}

func (i *instrumented) ClaimLogoutDeliveries(ctx context.Context, limit int, claim time.Duration) ([]store.LogoutDelivery, error) {
	ctx, span := i.start(ctx, "claim_logout_deliveries")
	ds, err := i.s.ClaimLogoutDeliveries(ctx, limit, claim)
	i.record(span, "claim_logout_deliveries", err)
	return ds, err
}

func (i *instrumented) FinishLogoutDelivery(ctx context.Context, id, claim string) error {
	ctx, span := i.start(ctx, "finish_logout_delivery")
	err := i.s.FinishLogoutDelivery(ctx, id, claim)
	i.record(span, "finish_logout_delivery", err)
	return err
}

func (i *instrumented) RetryLogoutDelivery(ctx context.Context, id, claim string, attempts int, delay time.Duration) error {
	ctx, span := i.start(ctx, "retry_logout_delivery")
	err := i.s.RetryLogoutDelivery(ctx, id, claim, attempts, delay)
	i.record(span, "retry_logout_delivery", err)
	return err
}

func (i *instrumented) Ping(ctx context.Context) error {
	ctx, span := i.start(ctx, "ping")
	err := i.s.Ping(ctx)
	i.record(span, "ping", err)
	return err
}

func (i *instrumented) PutDeviceGrant(ctx context.Context, h store.Hash, g store.DeviceGrant) error {
	ctx, span := i.start(ctx, "put_device_grant")
	err := i.s.PutDeviceGrant(ctx, h, g)
	i.record(span, "put_device_grant", err)
	return err
}

func (i *instrumented) DeviceGrantByUserCode(ctx context.Context, uh store.Hash) (store.Hash, store.DeviceGrant, error) {
	ctx, span := i.start(ctx, "device_grant_by_user_code")
	h, g, err := i.s.DeviceGrantByUserCode(ctx, uh)
	i.record(span, "device_grant_by_user_code", err)
	return h, g, err
}

func (i *instrumented) DecideDeviceGrant(ctx context.Context, uh store.Hash, approve bool, subject string, authTime time.Time) (store.DeviceGrant, error) {
	ctx, span := i.start(ctx, "decide_device_grant")
	g, err := i.s.DecideDeviceGrant(ctx, uh, approve, subject, authTime)
	i.record(span, "decide_device_grant", err)
	return g, err
}

func (i *instrumented) PollDeviceGrant(ctx context.Context, h store.Hash, clientID string, slowDown time.Duration) (store.DevicePoll, error) {
	ctx, span := i.start(ctx, "poll_device_grant")
	p, err := i.s.PollDeviceGrant(ctx, h, clientID, slowDown)
	i.record(span, "poll_device_grant", err)
	return p, err
}
