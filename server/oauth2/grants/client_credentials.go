package grants

import (
	"context"

	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/token"
	"github.com/latchkey-dev/latchkey/server/tracing"
)

// accessTokenSigner signs access tokens; *token.Issuer implements it.
type accessTokenSigner interface {
	IssueAccessToken(req token.AccessTokenRequest) (token.AccessToken, error)
}

// ClientCredentials is RFC 6749 4.4: a confidential client gets an access token for itself.
// No refresh token is issued (4.4.3).
type ClientCredentials struct {
	signer accessTokenSigner
}

var _ Grant = ClientCredentials{}

// NewClientCredentials returns the grant, signing with signer.
func NewClientCredentials(signer accessTokenSigner) ClientCredentials {
	return ClientCredentials{signer: signer}
}

// Type is client_credentials.
func (ClientCredentials) Type() string { return oauth2.GrantClientCredentials }

// ConfidentialOnly is true: a public client cannot authenticate, so it has no credentials.
func (ClientCredentials) ConfidentialOnly() bool { return true }

// IssuedEvent is token_issued.
func (ClientCredentials) IssuedEvent() string { return oauth2.AuditTokenIssued }

// Exchange signs an access token whose subject is the client.
func (g ClientCredentials) Exchange(ctx context.Context, req *Request) (*Response, error) {
	_, span := tracing.Start(ctx, spanSignAccessToken)
	at, err := g.signer.IssueAccessToken(token.AccessTokenRequest{
		Client: req.Client, Subject: req.Client.ID, Scopes: req.Scopes, Audiences: req.Resources, NotAfter: req.AccessNotAfter(),
		DPoPThumbprint: req.DPoPThumbprint,
	})
	tracing.End(span, err)
	if err != nil {
		return nil, err
	}
	return &Response{AccessToken: at.Token, AccessTokenID: at.ID, ExpiresIn: at.ExpiresIn, Scope: req.Scopes}, nil
}
