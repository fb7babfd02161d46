package token

import (
	"encoding/json"
	"errors"
	"strings"

	"github.com/latchkey-dev/latchkey/server/registry"
)

// Audience is the aud claim: one value is written as a JSON string, several as an array
// (RFC 7519 4.1.3 allows both). Use it with omitempty to leave out an empty audience.
type Audience []string

// MarshalJSON writes a single audience as a string and several as an array.
func (a Audience) MarshalJSON() ([]byte, error) {
	if len(a) == 1 {
		return json.Marshal(a[0])
	}
	return json.Marshal([]string(a))
}

// UnmarshalJSON reads a string or an array of strings.
func (a *Audience) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*a = Audience{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return errors.New("token: aud must be a string or an array of strings")
	}
	*a = many
	return nil
}

// JoinScope is the form of the scope claim and of the scope member of a token response:
// scope names separated by single spaces.
func JoinScope(scopes []string) string { return strings.Join(scopes, " ") }

// AccessTokenClaims are the claims of an RFC 9068 access token, as IssueAccessToken writes
// them with encoding/json and as Verifier.Verify reads them back.
type AccessTokenClaims struct {
	Issuer   string   `json:"iss"`
	Subject  string   `json:"sub"`
	Audience Audience `json:"aud,omitempty"`
	// Expiry, IssuedAt and NotBefore are Unix times in seconds; nbf is never written (iat
	// carries the same time) but is honoured when a token has it.
	Expiry    int64  `json:"exp"`
	IssuedAt  int64  `json:"iat"`
	NotBefore int64  `json:"nbf,omitempty"`
	ID        string `json:"jti"`
	ClientID  string `json:"client_id"`
	// Scope is the granted scopes, space-separated (JoinScope); omitted when empty.
	Scope string `json:"scope,omitempty"`
	// FamilyID is the private claim latchkey_family, the grant (refresh token family) the
	// token belongs to; omitted when empty. A token without one acts for no user
	// (client_credentials).
	FamilyID string `json:"latchkey_family,omitempty"`
	// SessionID is the sid claim, the OP (browser login) session the grant was started in;
	// omitted when the grant has none (password grant, client_credentials).
	SessionID string `json:"sid,omitempty"`
	// Confirmation is the cnf claim (RFC 7800): the DPoP key the token is bound to (RFC 9449
	// 6.1); nil for a Bearer token.
	Confirmation *Confirmation `json:"cnf,omitempty"`
	// Actor is the act claim of a token issued by a token exchange (RFC 8693 4.1): the party
	// acting for the subject, nesting the prior actors; nil when none acts.
	Actor *Actor `json:"act,omitempty"`
	// MayAct is the may_act claim (RFC 8693 4.4): who may act for the subject. Latchkey never
	// writes it; it is read so that an exchange honours it.
	MayAct *Actor `json:"may_act,omitempty"`
}

// Actor is an act or may_act claim (RFC 8693 4.1, 4.4): sub (and iss when the actor is of
// another issuer), and in an act claim the prior actor.
type Actor struct {
	Subject string `json:"sub"`
	Issuer  string `json:"iss,omitempty"`
	Actor   *Actor `json:"act,omitempty"`
}

// Depth is how many actors the chain holds (0 for nil).
func (a *Actor) Depth() int {
	n := 0
	for ; a != nil; a = a.Actor {
		n++
	}
	return n
}

// Confirmation is a cnf claim with the JWK SHA-256 thumbprint of a DPoP key.
type Confirmation struct {
	JKT string `json:"jkt"`
}

// DPoPThumbprint is the thumbprint of the key the token is bound to, "" for a Bearer token.
func (c *AccessTokenClaims) DPoPThumbprint() string {
	if c.Confirmation == nil {
		return ""
	}
	return c.Confirmation.JKT
}

// Family returns the grant (refresh token family) the token belongs to, "" for a token that
// acts for no user. A token issued before latchkey_family existed carried the family in sid;
// it is read from there while such tokens live (no token has a sid without a family since).
func (c *AccessTokenClaims) Family() string {
	if c.FamilyID == "" {
		return c.SessionID
	}
	return c.FamilyID
}

// ForUser reports whether the token acts for a user (a user grant issued it).
func (c *AccessTokenClaims) ForUser() bool { return c.Family() != "" }

// UserClaims are the user claims a grant releases, as written into ID tokens and userinfo
// answers (embed it beside sub). Build it with NewUserClaims.
type UserClaims struct {
	Name              string    `json:"name,omitempty"`
	PreferredUsername *string   `json:"preferred_username,omitempty"`
	Email             string    `json:"email,omitempty"`
	EmailVerified     *bool     `json:"email_verified,omitempty"`
	Groups            *[]string `json:"groups,omitempty"`
}

// NewUserClaims returns the released claims of the user. Empty strings (a user without a
// display name or email) are omitted; email_verified is written only with email; groups is
// written even when empty. A nil user releases nothing.
func NewUserClaims(u *registry.User, release Claims) UserClaims {
	var c UserClaims
	if u == nil {
		return c
	}
	if release&ClaimName != 0 {
		c.Name = u.DisplayName
	}
	if release&ClaimPreferredUsername != 0 {
		c.PreferredUsername = &u.Username
	}
	if release&ClaimEmail != 0 && u.Email != "" {
		c.Email = u.Email
		if release&ClaimEmailVerified != 0 {
			c.EmailVerified = &u.EmailVerified
		}
	}
	if release&ClaimGroups != 0 {
		groups := u.Groups
		if groups == nil {
			groups = []string{}
		}
		c.Groups = &groups
	}
	return c
}
