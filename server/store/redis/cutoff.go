package redis

import (
	"context"
	"errors"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/latchkey-dev/latchkey/server/store"
)

// cutKey holds a grant cutoff (store.Cutoff.Key): its At in ms, in its own slot.
func (s *Store) cutKey(h store.Hash) string { return s.prefix + "cut:{" + h.String() + "}" }

// startMS is a family's start in ms, rounded down (a cutoff At is rounded up, so a family
// started in the cutoff's millisecond is ended); a zero time is 0.
func startMS(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// CutOffGrants records the cutoff; see store.GrantCutoffs. The rotation scripts read it (a
// declared key) in the step that rotates, in indexed mode; in Cluster, where it lives in
// another slot than the family, the rotation reads it in a round trip before its script.
func (s *Store) CutOffGrants(ctx context.Context, c store.Cutoff, until time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := cutOff.Run(ctx, s.c, []string{s.cutKey(c.Key())}, ms(c.At), ms(until)).Err(); err != nil {
		return s.fail(ctx, "cut off grants", err)
	}
	return nil
}

// latestCutoff reads the cutoffs of a family of the client, subject and session: the latest
// At in ms, or "" when there is none. Its GETs are one pipeline (each key in its own slot).
func (s *Store) latestCutoff(ctx context.Context, clientID, subject, sessionID string) (string, error) {
	keys, n := store.CutoffKeys(clientID, subject, sessionID)
	cmds := make([]*goredis.StringCmd, n)
	_, err := s.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, k := range keys[:n] {
			cmds[i] = p.Get(ctx, s.cutKey(k))
		}
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		return "", s.fail(ctx, "read grant cutoffs", err)
	}
	latest := int64(-1)
	for _, c := range cmds {
		if at, err := c.Int64(); err == nil && at > latest {
			latest = at
		}
	}
	if latest < 0 {
		return "", nil
	}
	return strconv.FormatInt(latest, 10), nil
}

// successorCutOff is the ReportRefreshReuse answer for a token rotated within grace whose
// kept successor is still active (rec, of family f): ErrRevoked, the family revoked, when a
// cutoff ends the family, so that no successor is handed back; nil otherwise. It costs the
// rare retry at another replica one more round trip (the cutoffs are read after the reuse
// script, as in Cluster).
func (s *Store) successorCutOff(ctx context.Context, d, family string) error {
	rec, err := decodeRefresh(d, family)
	if err != nil {
		return err
	}
	cut, err := s.latestCutoff(ctx, rec.ClientID, rec.Subject, rec.SessionID)
	if err != nil || cut == "" {
		return err
	}
	start, err := s.c.HGet(ctx, s.famKey(tag(family)), "s").Int64()
	if err != nil && !errors.Is(err, goredis.Nil) {
		return s.fail(ctx, "read family start", err)
	}
	if at, _ := strconv.ParseInt(cut, 10, 64); start > at {
		return nil
	}
	if err := s.RevokeFamily(ctx, family, rec.ExpiresAt); err != nil {
		return err
	}
	return store.ErrRevoked
}
