package token

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/latchkey-dev/latchkey/server/keys"
	"github.com/latchkey-dev/latchkey/server/registry"
)

// DefaultIDTokenLifetime is the ID token lifetime when neither the client nor the Config sets
// one.
const DefaultIDTokenLifetime = time.Hour

// Claims is a set of user claims a grant releases (in ID tokens and at userinfo).
type Claims uint8

// The user claims Latchkey can release.
const (
	ClaimName Claims = 1 << iota
	ClaimPreferredUsername
	ClaimEmail
	ClaimEmailVerified
	ClaimGroups
)

// claimNames maps the claim names of Scope resources to Claims, in the order they are written.
var claimNames = [...]struct { //nolint:gochecknoglobals // a constant table
	name  string
	claim Claims
}{
	{"name", ClaimName},
	{"preferred_username", ClaimPreferredUsername},
	{"email", ClaimEmail},
	{"email_verified", ClaimEmailVerified},
	{"groups", ClaimGroups},
}

// ClaimByName returns the Claims value of a claim name, or 0 for a claim Latchkey has no data
// for (address, phone_number, ...).
func ClaimByName(name string) Claims {
	for _, c := range claimNames {
		if c.name == name {
			return c.claim
		}
	}
	return 0
}

// ClaimNames returns the names of every claim Latchkey can release, in a fixed order.
func ClaimNames() []string {
	out := make([]string, 0, len(claimNames))
	for _, c := range claimNames {
		out = append(out, c.name)
	}
	return out
}

// IDTokenRequest says whom an ID token is for.
type IDTokenRequest struct {
	// Client is the relying party: aud, lifetime and algorithm.
	Client *registry.Client
	// User is the subject; its Subject (never its username) is sub.
	User *registry.User
	// AuthTime is when the user authenticated (auth_time).
	AuthTime time.Time
	// Nonce is echoed when not empty.
	Nonce string
	// AccessToken, when not empty, is hashed into at_hash.
	AccessToken string
	// Release is the set of user claims the granted scopes release.
	Release Claims
	// SessionID is the sid claim, the OP session the user signed in with; omitted when empty.
	SessionID string
	// Lifetime overrides the default when the client has no IDTokenLifetime; zero means one
	// hour.
	Lifetime time.Duration
}

// IssueIDToken signs an OpenID Connect ID token (OIDC Core 2) with header typ "JWT" and the
// client's algorithm: iss, sub, aud (the client ID), exp, iat, auth_time, nonce (when given),
// at_hash (when an access token is given), sid (when the user signed in with an OP session) and
// the released user claims.
func (i *Issuer) IssueIDToken(req IDTokenRequest) (string, error) {
	c, u := req.Client, req.User
	if c == nil || u == nil {
		return "", errors.New("token: ID token needs a client and a user")
	}
	if u.Subject == "" {
		return "", errors.New("token: ID token needs a user with a subject")
	}
	alg := i.algorithm(c)
	signer, err := i.keys.Signer(alg)
	if err != nil {
		return "", err
	}
	lifetime := c.IDTokenLifetime
	if lifetime <= 0 {
		lifetime = req.Lifetime
	}
	if lifetime <= 0 {
		lifetime = DefaultIDTokenLifetime
	}
	iat := i.now().Unix()
	exp := iat + max(int64(lifetime/time.Second), 1)

	claims := idTokenClaims{
		Issuer: i.issuer, Subject: u.Subject, Audience: c.ID, Expiry: exp, IssuedAt: iat,
		Nonce: req.Nonce, SessionID: req.SessionID, UserClaims: NewUserClaims(u, req.Release),
	}
	if !req.AuthTime.IsZero() {
		claims.AuthTime = req.AuthTime.Unix()
	}
	if req.AccessToken != "" {
		claims.AccessTokenHash, err = AccessTokenHash(signer.Algorithm, req.AccessToken)
		if err != nil {
			return "", err
		}
	}
	return sign(signer, keys.TypeJWT, &claims)
}

// idTokenClaims are the claims of an ID token, as encoding/json writes them.
type idTokenClaims struct {
	Issuer          string `json:"iss"`
	Subject         string `json:"sub"`
	Audience        string `json:"aud"`
	Expiry          int64  `json:"exp"`
	IssuedAt        int64  `json:"iat"`
	AuthTime        int64  `json:"auth_time,omitempty"`
	Nonce           string `json:"nonce,omitempty"`
	AccessTokenHash string `json:"at_hash,omitempty"`
	SessionID       string `json:"sid,omitempty"`
	UserClaims
}

// AccessTokenHash is the at_hash of an access token (OIDC Core 3.1.3.6): the base64url of the
// left half of the hash of its ASCII octets, with the hash of the JWS algorithm: SHA-256 for
// RS256 and ES256, SHA-512 for EdDSA (Ed25519 signs with SHA-512; go-oidc and other verifiers
// use SHA-512 for EdDSA).
func AccessTokenHash(alg, accessToken string) (string, error) {
	switch alg {
	case keys.RS256, keys.ES256:
		sum := sha256.Sum256([]byte(accessToken))
		return base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2]), nil
	case keys.EdDSA:
		sum := sha512.Sum512([]byte(accessToken))
		return base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2]), nil
	}
	return "", fmt.Errorf("token: no at_hash for algorithm %q", alg)
}
