package register

import (
	"context"
	"fmt"
	"time"

	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/store"
)

// DefaultRateLimitWindow is the window of RateLimit when its Window is zero.
const DefaultRateLimitWindow = time.Hour

// RateLimit bounds the registrations (POST /oauth2/register) of one client address
// (oauth2.ClientAddress; an IPv6 address by its /64) in fixed windows, counted in the leased
// store so the bound holds across replicas.
type RateLimit struct {
	// Anonymous is how many anonymous registrations an address may make per Window; zero
	// means no limit.
	Anonymous int
	// InitialToken is how many registrations with an initial access token (any of them) an
	// address may make per Window; zero means no limit.
	InitialToken int
	// Window is the length of a window; zero means DefaultRateLimitWindow.
	Window time.Duration
}

// limit is the bound of the registrant's kind; zero means none.
func (l *RateLimit) limit(by Registrant) int {
	if by == RegistrantAnonymous {
		return l.Anonymous
	}
	return l.InitialToken
}

// checkRate counts an authorized registration attempt of the request's client address and
// refuses it past the registrant's limit. Every attempt counts, valid or not, so the limit also
// slows probing (of client names, say). The windows are aligned to the clock (multiples of
// Window since the Unix epoch) so every replica counts under the same key, and Retry-After is
// the time left in the current one. An IPv6 address counts by its /64 (oauth2.AddressKey), so a
// host cannot start afresh from each address of its allocation.
func (e *Endpoint) checkRate(ctx context.Context, by Registrant) error {
	limit := e.rate.limit(by)
	if limit == 0 {
		return nil
	}
	window := e.rate.Window
	now := e.now()
	start := now.Truncate(window)
	addr := oauth2.AddressKey(oauth2.ClientAddress(ctx))
	key := store.HashOf(fmt.Sprintf("registrations\x00%s\x00%d:%s\x00%d", by, len(addr), addr, start.Unix()))
	n, err := e.counters.Incr(ctx, key, window)
	if err != nil {
		return oauth2.FromStore(err)
	}
	if n <= int64(limit) {
		return nil
	}
	oauth2.RecordRateLimited(ctx, oauth2.RateLimitRegistration)
	oauth2.Audit(ctx, oauth2.AuditEvent{Event: oauth2.AuditRateLimited, Outcome: "failure",
		Reason: fmt.Sprintf("registration (%s): more than %d in the window", by, limit)})
	return oauth2.ErrTooManyRequests.WithDescription("Too many client registrations from this address; retry later.").
		WithRetryAfter(start.Add(window).Sub(now))
}
