package oauth2

// Grant types (RFC 6749; the grant_type values and the OAuthClient spec.grantTypes names).
const (
	GrantAuthorizationCode = "authorization_code"
	GrantClientCredentials = "client_credentials"
	GrantRefreshToken      = "refresh_token"
	GrantPassword          = "password"
)
