package token

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/latchkey-dev/latchkey/server/keys"
	"github.com/latchkey-dev/latchkey/server/registry"
)

// DefaultAccessTokenLifetime is the access token lifetime when neither the client nor the
// Config sets one.
const DefaultAccessTokenLifetime = time.Hour

// Keys hands out the current signer of an algorithm; *keys.Keyring implements it.
type Keys interface {
	Signer(alg string) (*keys.Signer, error)
}

var _ Keys = (*keys.Keyring)(nil)

// Config configures an Issuer.
type Config struct {
	// Issuer is the iss claim, the server's public URL.
	Issuer string
	// DefaultAlgorithm signs for clients without a SigningAlgorithm; empty means RS256.
	DefaultAlgorithm string
	// AccessTokenLifetime is used for clients without one; zero means one hour.
	AccessTokenLifetime time.Duration
	Keys                Keys
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Issuer issues signed tokens. It is safe for concurrent use.
type Issuer struct {
	issuer   string
	alg      string
	lifetime time.Duration
	keys     Keys
	now      func() time.Time
}

// NewIssuer checks the config and returns an Issuer.
func NewIssuer(cfg Config) (*Issuer, error) {
	if cfg.Issuer == "" {
		return nil, errors.New("token: Issuer is required")
	}
	if cfg.Keys == nil {
		return nil, errors.New("token: Keys is required")
	}
	if cfg.DefaultAlgorithm == "" {
		cfg.DefaultAlgorithm = keys.RS256
	}
	if !slices.Contains(keys.SupportedAlgorithms(), cfg.DefaultAlgorithm) {
		return nil, fmt.Errorf("token: unsupported default algorithm %q", cfg.DefaultAlgorithm)
	}
	if cfg.AccessTokenLifetime < 0 {
		return nil, errors.New("token: AccessTokenLifetime must not be negative")
	}
	if cfg.AccessTokenLifetime == 0 {
		cfg.AccessTokenLifetime = DefaultAccessTokenLifetime
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Issuer{
		issuer: cfg.Issuer, alg: cfg.DefaultAlgorithm, lifetime: cfg.AccessTokenLifetime,
		keys: cfg.Keys, now: cfg.Now,
	}, nil
}

// AccessTokenRequest says whom an access token is for.
type AccessTokenRequest struct {
	// Client is the authenticated client; it supplies client_id, aud, lifetime and algorithm.
	Client *registry.Client
	// Subject is the sub claim: the client ID for client_credentials, the user's
	// registry.User.Subject (never the username) for user grants.
	Subject string
	// Scopes are the granted scopes.
	Scopes []string
	// Audiences, when set, are the aud claim: the resources the request selected (RFC 8707),
	// already checked against the client's. Empty: the client's audiences.
	Audiences []string
	// FamilyID is the latchkey_family claim: the refresh token family (grant) the token was
	// issued from, so revoking the family revokes the token. Empty for client_credentials.
	FamilyID string
	// SessionID is the sid claim: the OP session the grant was started in; empty when none.
	SessionID string
	// NotAfter, when set, bounds the token's expiry (the client assertion that authenticated
	// the request expires then); the lifetime stays at least a second.
	NotAfter time.Time
	// DPoPThumbprint binds the token to a DPoP key (cnf.jkt); "" issues a Bearer token.
	DPoPThumbprint string
	// Actor is the act claim (RFC 8693 4.1) of a token exchange; nil writes none.
	Actor *Actor
}

// AccessToken is an issued access token.
type AccessToken struct {
	// Token is the compact JWS. Never log it.
	Token string
	// ID is the jti claim.
	ID        string
	IssuedAt  time.Time
	ExpiresAt time.Time
	// ExpiresIn is the lifetime in seconds, for the token response's expires_in.
	ExpiresIn int64
	Algorithm string
	KeyID     string
}

// IssueAccessToken signs an access token for the request.
func (i *Issuer) IssueAccessToken(req AccessTokenRequest) (AccessToken, error) {
	c := req.Client
	if c == nil {
		return AccessToken{}, errors.New("token: no client")
	}
	signer, err := i.keys.Signer(i.algorithm(c))
	if err != nil {
		return AccessToken{}, err
	}
	jti, err := newTokenID()
	if err != nil {
		return AccessToken{}, err
	}
	iat := i.now().Unix()
	lifetime := i.lifetimeSeconds(c)
	if !req.NotAfter.IsZero() {
		lifetime = max(min(lifetime, req.NotAfter.Unix()-iat), 1)
	}
	claims := AccessTokenClaims{
		Issuer: i.issuer, Subject: req.Subject, Audience: c.Audiences,
		Expiry: iat + lifetime, IssuedAt: iat, ID: jti, ClientID: c.ID,
		Scope: JoinScope(req.Scopes), FamilyID: req.FamilyID, SessionID: req.SessionID, Actor: req.Actor,
	}
	if len(req.Audiences) > 0 {
		claims.Audience = req.Audiences
	}
	if len(claims.Audience) == 0 {
		claims.Audience = Audience{c.ID}
	}
	if req.DPoPThumbprint != "" {
		claims.Confirmation = &Confirmation{JKT: req.DPoPThumbprint}
	}
	tok, err := sign(signer, keys.TypeAccessToken, &claims)
	if err != nil {
		return AccessToken{}, err
	}
	return AccessToken{
		Token: tok, ID: jti, IssuedAt: time.Unix(iat, 0), ExpiresAt: time.Unix(claims.Expiry, 0),
		ExpiresIn: lifetime, Algorithm: signer.Algorithm, KeyID: signer.KeyID,
	}, nil
}

// sign marshals the claims with encoding/json and signs them with the JWS header type typ.
func sign(signer *keys.Signer, typ string, claims any) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("token: marshal claims: %w", err)
	}
	return signer.Sign(typ, payload)
}

func (i *Issuer) algorithm(c *registry.Client) string {
	if c.SigningAlgorithm != "" {
		return c.SigningAlgorithm
	}
	return i.alg
}

// lifetimeSeconds is the client's access token lifetime, else the default, in whole seconds
// and at least one.
func (i *Issuer) lifetimeSeconds(c *registry.Client) int64 {
	d := c.AccessTokenLifetime
	if d <= 0 {
		d = i.lifetime
	}
	return max(int64(d/time.Second), 1)
}

// newTokenID returns 128 random bits, base64url-encoded without padding.
func newTokenID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("token: random jti: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}
