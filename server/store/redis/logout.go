package redis

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/latchkey-dev/latchkey/server/store"
)

// logoutRecord is a queued delivery's JSON record (field d of its hash).
type logoutRecord struct {
	ClientID  string `json:"c"`
	SessionID string `json:"s,omitempty"`
	Subject   string `json:"u,omitempty"`
}

// logoutKeys are the queue and the deliveries' hash; they share the hash tag {bcl}: one slot,
// also in Cluster.
func (s *Store) logoutKeys() []string {
	return []string{s.prefix + "bcl:{bcl}:queue", s.prefix + "bcl:{bcl}:deliveries"}
}

// EnqueueLogoutDeliveries queues the deliveries in one script; see store.LogoutDeliveries.
func (s *Store) EnqueueLogoutDeliveries(ctx context.Context, ds []store.LogoutDelivery, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(ds) == 0 || ttl <= 0 {
		return nil
	}
	args := make([]any, 0, 1+2*len(ds))
	args = append(args, ceilMS(ttl))
	for _, d := range ds {
		rec, err := json.Marshal(logoutRecord{ClientID: d.ClientID, SessionID: d.SessionID, Subject: d.Subject})
		if err != nil {
			return fmt.Errorf("store/redis: encode logout delivery: %w", err)
		}
		args = append(args, d.ID, rec)
	}
	if err := enqueueLogouts.Run(ctx, s.c, s.logoutKeys(), args...).Err(); err != nil {
		return s.fail(ctx, "enqueue logout deliveries", err)
	}
	return nil
}

// ClaimLogoutDeliveries hands out up to limit due deliveries in one script; see
// store.LogoutDeliveries.
func (s *Store) ClaimLogoutDeliveries(ctx context.Context, limit int, claim time.Duration) ([]store.LogoutDelivery, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	token := rand.Text()
	v, err := claimLogouts.Run(ctx, s.c, s.logoutKeys(), limit, token, max(ceilMS(claim), 1)).StringSlice()
	if err != nil {
		return nil, s.fail(ctx, "claim logout deliveries", err)
	}
	out := make([]store.LogoutDelivery, 0, len(v)/3)
	for i := 0; i+2 < len(v); i += 3 {
		var rec logoutRecord
		if err := json.Unmarshal([]byte(v[i+1]), &rec); err != nil {
			continue // not ours: its lease drops it
		}
		attempts, _ := strconv.Atoi(v[i+2])
		out = append(out, store.LogoutDelivery{
			ID: v[i], ClientID: rec.ClientID, SessionID: rec.SessionID, Subject: rec.Subject,
			Attempts: attempts, Claim: token,
		})
	}
	return out, nil
}

// FinishLogoutDelivery removes a claimed delivery; see store.LogoutDeliveries.
func (s *Store) FinishLogoutDelivery(ctx context.Context, id, claim string) error {
	return s.finishLogout(ctx, id, claim, "0", 0, 0)
}

// RetryLogoutDelivery makes a claimed delivery due again after delay; see
// store.LogoutDeliveries.
func (s *Store) RetryLogoutDelivery(ctx context.Context, id, claim string, attempts int, delay time.Duration) error {
	return s.finishLogout(ctx, id, claim, "1", attempts, max(ceilMS(delay), 0))
}

func (s *Store) finishLogout(ctx context.Context, id, claim, retry string, attempts int, delayMS int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	n, err := finishLogout.Run(ctx, s.c, s.logoutKeys(), id, claim, retry, attempts, delayMS).Int()
	if err != nil {
		return s.fail(ctx, "finish logout delivery", err)
	}
	switch n {
	case 0:
		return store.ErrNotFound
	case 1:
		return store.ErrConflict
	}
	return nil
}
