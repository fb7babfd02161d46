package oauth2

import (
	"errors"
	"time"

	"github.com/latchkey-dev/latchkey/server/keys"
	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/token"
)

// Default token lifetimes, the seeds': access and ID tokens one hour, refresh tokens 30 days,
// authorization codes 10 minutes.
const (
	DefaultAccessTokenLifetime  = token.DefaultAccessTokenLifetime
	DefaultIDTokenLifetime      = token.DefaultIDTokenLifetime
	DefaultRefreshTokenLifetime = 30 * 24 * time.Hour
	DefaultCodeLifetime         = 10 * time.Minute
)

// MaxRefreshTokenLifetime is the longest refresh token lifetime an OAuthClient can set (the
// API's bound, 8760h).
const MaxRefreshTokenLifetime = 8760 * time.Hour

// Lifetimes are the server's token lifetimes, for clients that set none of their own.
type Lifetimes struct {
	AccessToken, RefreshToken, IDToken, Code time.Duration
}

// WithDefaults fills zero lifetimes with the defaults; a negative one is an error.
func (l Lifetimes) WithDefaults() (Lifetimes, error) {
	if l.AccessToken < 0 || l.RefreshToken < 0 || l.IDToken < 0 || l.Code < 0 {
		return l, errors.New("oauth2: token lifetimes must not be negative")
	}
	l.AccessToken = orDefault(l.AccessToken, DefaultAccessTokenLifetime)
	l.RefreshToken = orDefault(l.RefreshToken, DefaultRefreshTokenLifetime)
	l.IDToken = orDefault(l.IDToken, DefaultIDTokenLifetime)
	l.Code = orDefault(l.Code, DefaultCodeLifetime)
	return l, nil
}

// Access is the client's access token lifetime, else the server's.
func (l Lifetimes) Access(c *registry.Client) time.Duration {
	return orDefault(c.AccessTokenLifetime, l.AccessToken)
}

// Refresh is the client's refresh token lifetime, else the server's.
func (l Lifetimes) Refresh(c *registry.Client) time.Duration {
	return orDefault(c.RefreshTokenLifetime, l.RefreshToken)
}

// AuthorizationCode is the client's code lifetime, else the server's.
func (l Lifetimes) AuthorizationCode(c *registry.Client) time.Duration {
	return orDefault(c.CodeLifetime, l.Code)
}

// FamilyRevocationEnd is how long the revocation of a grant (refresh token family) of the
// client must be remembered: until its last refresh token would have expired (refreshExpiry;
// zero for one issued now) and every access token issued from it (at the latest now) would
// have expired too, plus the clock skew verifiers allow.
func (l Lifetimes) FamilyRevocationEnd(c *registry.Client, now, refreshExpiry time.Time) time.Time {
	if refreshExpiry.IsZero() {
		refreshExpiry = now.Add(l.Refresh(c))
	}
	end := now.Add(l.Access(c))
	if refreshExpiry.After(end) {
		end = refreshExpiry
	}
	return end.Add(keys.ClockSkew)
}

// CutoffEnd is how long a grant cutoff (store.Cutoff) must be remembered from now: until
// every refresh token issued before it would have expired, whatever the client's lifetime was
// then (the longest a client can set, or the server's default if longer), plus the clock
// skew verifiers allow.
func (l Lifetimes) CutoffEnd(now time.Time) time.Time {
	return now.Add(max(MaxRefreshTokenLifetime, l.RefreshToken) + keys.ClockSkew)
}

func orDefault[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}
