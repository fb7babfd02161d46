package backchannel

import (
	"crypto/rand"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/latchkey-dev/latchkey/server/registry"
)

// Header type, event and lifetime of a logout token (OIDC Back-Channel Logout 1.0 2.4).
const (
	TokenType           = "logout+jwt"
	LogoutEvent         = "http://schemas.openid.net/event/backchannel-logout"
	LogoutTokenLifetime = 2 * time.Minute
)

// Claims are a logout token's claims.
type Claims struct {
	Issuer    string              `json:"iss"`
	Audience  string              `json:"aud"`
	IssuedAt  int64               `json:"iat"`
	Expiry    int64               `json:"exp"`
	ID        string              `json:"jti"`
	Subject   string              `json:"sub,omitempty"`
	SessionID string              `json:"sid,omitempty"`
	Events    map[string]struct{} `json:"events"`
}

// token signs the logout token for client c of the session sid of subject.
func (s *Sender) token(c *registry.Client, sid, subject string) (string, error) {
	alg := c.SigningAlgorithm
	if alg == "" {
		alg = s.cfg.DefaultAlgorithm
	}
	signer, err := s.cfg.Keys.Signer(alg)
	if err != nil {
		return "", err
	}
	js, err := signer.JOSESigner(TokenType)
	if err != nil {
		return "", fmt.Errorf("backchannel: signer: %w", err)
	}
	now := s.cfg.Now()
	claims := Claims{
		Issuer: s.cfg.Issuer, Audience: c.ID, IssuedAt: now.Unix(),
		Expiry: now.Add(LogoutTokenLifetime).Unix(), ID: rand.Text(),
		Subject: subject, SessionID: sid, Events: map[string]struct{}{LogoutEvent: {}},
	}
	return jwt.Signed(js).Claims(claims).Serialize()
}
