package oauth2

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/store"
	"github.com/latchkey-dev/latchkey/server/token"
)

// Defaults of the user token lifetimes.
const (
	DefaultRefreshTokenLifetime = 30 * 24 * time.Hour
	DefaultRefreshReuseGrace    = 2 * time.Second
	DefaultIDTokenLifetime      = time.Hour
)

// Built-in OIDC scopes (OIDC Core 5.4 and 11): accepted when the client lists them, with or
// without a Scope resource.
const (
	scopeOpenID        = "openid"
	scopeProfile       = "profile"
	scopeEmail         = "email"
	scopeAddress       = "address"
	scopePhone         = "phone"
	scopeOfflineAccess = "offline_access"
	scopeGroups        = "groups"
)

// isBuiltinScope reports whether the scope is one of OIDC's standard scopes.
func isBuiltinScope(name string) bool {
	switch name {
	case scopeOpenID, scopeProfile, scopeEmail, scopeAddress, scopePhone, scopeOfflineAccess:
		return true
	}
	return false
}

// builtinScopes lists OIDC's standard scopes in the order discovery shows them.
func builtinScopes() []string {
	return []string{scopeOpenID, scopeProfile, scopeEmail, scopeAddress, scopePhone, scopeOfflineAccess}
}

// userGrant is what a grant that acts for a user hands to issueForUser.
type userGrant struct {
	Client   *registry.Client
	User     *registry.User // the resource owner
	Scopes   []string       // granted scopes (already checked)
	AuthTime time.Time      // when the user authenticated
	Nonce    string         // OIDC nonce from the authorization request, "" if none
	FamilyID string         // refresh token family / grant ID; "" = start a new one
}

// userTokenIssuer signs access and ID tokens; *token.Issuer implements it.
type userTokenIssuer interface {
	IssueAccessToken(req token.AccessTokenRequest) (token.AccessToken, error)
	IssueIDToken(req token.IDTokenRequest) (string, error)
}

var _ userTokenIssuer = (*token.Issuer)(nil)

// tokenService issues access, refresh and ID tokens for users; built once in NewHandler.
type tokenService struct {
	issuer          userTokenIssuer
	store           store.Store
	registry        Registry
	now             func() time.Time
	accessLifetime  time.Duration // the default, for how long revocations are remembered
	refreshLifetime time.Duration
	reuseGrace      time.Duration
	idTokenLifetime time.Duration
	reuse           ReuseReporter
}

func newTokenService(cfg Config, issuer userTokenIssuer) *tokenService {
	return &tokenService{
		issuer: issuer, store: cfg.Store, registry: cfg.Registry, now: cfg.Now,
		accessLifetime:  cmp.Or(cfg.AccessTokenLifetime, token.DefaultAccessTokenLifetime),
		refreshLifetime: cfg.RefreshTokenLifetime, reuseGrace: cfg.RefreshReuseGrace,
		idTokenLifetime: cfg.IDTokenLifetime, reuse: cfg.ReuseReporter,
	}
}

// issueForUser issues the tokens of a user grant: an access token (sid = the family ID), an
// ID token when openid is granted, and the first refresh token of the family when the client
// may use the refresh_token grant (see refreshAllowed). FamilyID "" starts a new family.
func (s *tokenService) issueForUser(ctx context.Context, g userGrant) (*TokenResponse, error) {
	return s.issue(ctx, g, nil)
}

// rotation is the refresh token a refresh_token grant presented; issue rotates it instead of
// starting a family.
type rotation struct {
	old store.Hash
	// familyScopes are the scopes of the new refresh token: the family's, which the
	// grant's (maybe narrowed) Scopes do not change.
	familyScopes []string
}

// issue issues the tokens; with rot it rotates rot.old to the new refresh token (which is
// then always issued). When the rotation fails, it fails with the store's error and what it
// signed is discarded.
func (s *tokenService) issue(ctx context.Context, g userGrant, rot *rotation) (*TokenResponse, error) {
	if g.Client == nil || g.User == nil {
		return nil, ErrServerError.WithCause(errors.New("user grant without client or user"))
	}
	if g.User.Subject == "" {
		return nil, ErrServerError.WithCause(errors.New("user without a subject"))
	}
	if g.FamilyID == "" {
		id, err := newFamilyID()
		if err != nil {
			return nil, ErrServerError.WithCause(err)
		}
		g.FamilyID = id
	}
	resp := &TokenResponse{Scope: g.Scopes}

	// Sign first, store last: a signing failure (no key yet: 503, retry) must not use up a
	// rotation, or the client's retry with the same refresh token would count as reuse and
	// revoke the family. A lost rotation discards what was signed.
	at, err := s.issuer.IssueAccessToken(token.AccessTokenRequest{
		Client: g.Client, Subject: g.User.Subject, Scopes: g.Scopes, SessionID: g.FamilyID,
	})
	if err != nil {
		return nil, signError(err)
	}
	resp.AccessToken, resp.ExpiresIn = at.Token, at.ExpiresIn

	if slices.Contains(g.Scopes, scopeOpenID) {
		snap := s.registry.Snapshot()
		resp.IDToken, err = s.issuer.IssueIDToken(token.IDTokenRequest{
			Client: g.Client, User: g.User, AuthTime: g.AuthTime, Nonce: g.Nonce,
			AccessToken: at.Token, Release: releasedClaims(snap, g.Scopes), Lifetime: s.idTokenLifetime,
		})
		if err != nil {
			return nil, signError(err)
		}
	}

	if rot != nil || refreshAllowed(g.Client) {
		if s.store == nil {
			return nil, ErrServerError.WithCause(errors.New("no store for refresh tokens"))
		}
		rt, rec, err := s.newRefreshToken(g)
		if err != nil {
			return nil, ErrServerError.WithCause(err)
		}
		if rot != nil {
			rec.Scopes = slices.Clone(rot.familyScopes)
			_, err = s.store.RotateRefresh(ctx, rot.old, store.HashOf(rt), rec, s.reuseGrace)
		} else {
			err = s.store.CreateRefresh(ctx, store.HashOf(rt), rec)
		}
		if err != nil {
			return nil, storeError(err)
		}
		resp.RefreshToken = rt
	}
	return resp, nil
}

// refreshAllowed is the refresh token rule: a user grant issues a refresh token iff the
// client lists the refresh_token grant type. offline_access is accepted but not required.
func refreshAllowed(c *registry.Client) bool { return c.AllowsGrant(grantRefreshToken) }

// grantRefreshToken is the refresh_token grant type.
const grantRefreshToken = "refresh_token"

// newRefreshToken returns a refresh token of the grant's family and its record.
func (s *tokenService) newRefreshToken(g userGrant) (string, store.RefreshToken, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", store.RefreshToken{}, fmt.Errorf("random refresh token: %w", err)
	}
	tok := g.FamilyID + "." + base64.RawURLEncoding.EncodeToString(b[:])
	now := s.now()
	lifetime := g.Client.RefreshTokenLifetime
	if lifetime <= 0 {
		lifetime = s.refreshLifetime
	}
	return tok, store.RefreshToken{
		FamilyID: g.FamilyID, ClientID: g.Client.ID, Subject: g.User.Subject,
		Scopes: slices.Clone(g.Scopes), AuthTime: g.AuthTime, IssuedAt: now, ExpiresAt: now.Add(lifetime),
	}, nil
}

// newFamilyID returns a new refresh token family (grant) ID: 16 random bytes, base64url
// without padding (22 characters).
func newFamilyID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random family ID: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// releasedClaims returns the user claims the scopes release. A Scope resource with a Claims
// list releases exactly those claims; otherwise the built-ins apply: profile releases name and
// preferred_username, email releases email and email_verified, groups releases groups.
func releasedClaims(snap *registry.Snapshot, scopes []string) token.Claims {
	var out token.Claims
	for _, name := range scopes {
		if sc, ok := snap.Scope(name); ok && len(sc.Claims) > 0 {
			for _, c := range sc.Claims {
				out |= token.ClaimByName(c)
			}
			continue
		}
		switch name {
		case scopeProfile:
			out |= token.ClaimName | token.ClaimPreferredUsername
		case scopeEmail:
			out |= token.ClaimEmail | token.ClaimEmailVerified
		case scopeGroups:
			out |= token.ClaimGroups
		}
	}
	return out
}

// storeError maps a store error of a token issuance to an OAuth error.
func storeError(err error) error {
	switch {
	case errors.Is(err, store.ErrUnavailable):
		return ErrTemporarilyUnavailable.WithCause(err)
	case errors.Is(err, store.ErrReused), errors.Is(err, store.ErrConflict),
		errors.Is(err, store.ErrRevoked), errors.Is(err, store.ErrNotFound):
		return ErrInvalidGrant.WithDescription("The refresh token is invalid, expired or revoked.").WithCause(err)
	}
	return ErrServerError.WithCause(err)
}

// signError maps a signing error: a missing key is passed on for the dispatcher to answer
// temporarily_unavailable.
func signError(err error) error {
	var oe *Error
	if errors.As(err, &oe) {
		return err
	}
	return ErrServerError.WithCause(err)
}

// withBuiltinScopes returns the registry's scope names (sorted) merged with OIDC's built-in
// scopes, sorted, without duplicates.
func withBuiltinScopes(names []string) []string {
	out := append(slices.Clone(names), builtinScopes()...)
	slices.Sort(out)
	return slices.Compact(out)
}

// oidcClaimsSupported lists the claims of ID tokens and userinfo, for discovery.
func oidcClaimsSupported() []string {
	return append([]string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "at_hash"}, token.ClaimNames()...)
}
