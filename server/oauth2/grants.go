package oauth2

// Grant types (RFC 6749; the grant_type values and the OAuthClient spec.grantTypes names).
const (
	GrantAuthorizationCode = "authorization_code"
	GrantClientCredentials = "client_credentials"
	GrantRefreshToken      = "refresh_token"
	GrantPassword          = "password"
	// GrantDeviceCode is RFC 8628's device authorization grant.
	GrantDeviceCode = "urn:ietf:params:oauth:grant-type:device_code"
	// GrantTokenExchange is RFC 8693's token exchange.
	GrantTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
)
