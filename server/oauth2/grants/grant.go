package grants

import (
	"context"
	"time"

	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/registry"
)

// Grant is one grant type of the token endpoint. The dispatcher has parsed the request,
// authenticated the client, checked that the client may use the grant and applied the scope
// policy before it calls Exchange, so a grant cannot skip those steps; after a successful
// Exchange it counts and audits the token response under the grant's IssuedEvent.
type Grant interface {
	// Type is the grant_type value, e.g. "client_credentials".
	Type() string
	// ConfidentialOnly reports whether public clients (auth method none) are refused with
	// unauthorized_client.
	ConfidentialOnly() bool
	// IssuedEvent is the audit event of a successful exchange (oauth2.AuditTokenIssued,
	// oauth2.AuditRefreshRotated).
	IssuedEvent() string
	// Exchange issues the tokens. Errors should be *oauth2.Error values; anything else is
	// answered with server_error.
	Exchange(ctx context.Context, req *Request) (*Response, error)
}

// Request is what a grant works from.
type Request struct {
	*oauth2.TokenRequest
	// Client is authenticated and allowed the grant.
	Client *registry.Client
	// Snapshot is the registry view the whole request uses.
	Snapshot *registry.Snapshot
	// Scopes passed the scope policy: the requested scopes, or the client's defaults when it
	// requested none. Grants that carry scopes of their own (authorization_code, refresh_token)
	// check them against these rules with the same policy.
	Scopes []string
	// Resources are the requested resources (RFC 8707; for a token exchange, with its
	// audience parameters), each one the client may reach; nil when none was requested.
	Resources []string
	// Admission, when not nil, is the client's authentication record (and rate limit) left
	// for the grant's store step; see Admission.
	Admission *Admission
}

// AccessNotAfter is when the request's access token must expire at the latest: when the client
// assertion that authenticated it does, unless the client lets its tokens outlive assertions;
// zero for no bound.
func (r *Request) AccessNotAfter() time.Time {
	if r.Client == nil || r.Client.AccessTokenOutlivesAssertion || r.TokenRequest == nil {
		return time.Time{}
	}
	return r.CredentialExpiry
}

// Response is a successful token response (RFC 6749 5.1).
type Response struct {
	AccessToken string
	// AccessTokenID is the access token's jti: its audit reference (oauth2.AccessTokenRef),
	// the same as when it is revoked.
	AccessTokenID string
	// TokenType is "Bearer" when empty.
	TokenType string
	ExpiresIn int64
	// Scope is omitted when empty.
	Scope        []string
	RefreshToken string
	IDToken      string
	// IssuedTokenType is the issued_token_type of a token exchange (RFC 8693 2.2.1); omitted
	// when empty.
	IssuedTokenType string
	// Subject, Actor, Targets and SubjectSource go into the audit event of a token exchange
	// (oauth2.AuditEvent), never into the response.
	Subject, Actor string
	Targets        []string
	SubjectSource  string
}

// audienceTarget is a grant whose audience parameters name targets like resource (RFC 8693
// 2.1): the endpoint checks both against the client's resources before the grant runs.
type audienceTarget interface {
	takesAudience()
}
