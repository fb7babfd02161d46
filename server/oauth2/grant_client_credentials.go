package oauth2

import (
	"context"

	"github.com/latchkey-dev/latchkey/server/token"
)

// accessTokenIssuer signs access tokens; *token.Issuer implements it.
type accessTokenIssuer interface {
	IssueAccessToken(req token.AccessTokenRequest) (token.AccessToken, error)
}

var _ accessTokenIssuer = (*token.Issuer)(nil)

// clientCredentialsGrant is RFC 6749 4.4: a confidential client gets an access token for
// itself. No refresh token is issued (4.4.3).
type clientCredentialsGrant struct {
	tokens accessTokenIssuer
}

var _ Grant = clientCredentialsGrant{}

func (clientCredentialsGrant) Type() string           { return "client_credentials" }
func (clientCredentialsGrant) ConfidentialOnly() bool { return true }

func (g clientCredentialsGrant) Exchange(_ context.Context, req *GrantRequest) (*TokenResponse, error) {
	at, err := g.tokens.IssueAccessToken(token.AccessTokenRequest{
		Client: req.Client, Subject: req.Client.ID, Scopes: req.Scopes,
	})
	if err != nil {
		return nil, ErrServerError.WithCause(err)
	}
	return &TokenResponse{AccessToken: at.Token, ExpiresIn: at.ExpiresIn, Scope: req.Scopes}, nil
}
