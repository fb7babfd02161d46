package browser

import (
	"net/url"

	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/token"
)

// LogoutRequest is an RP-initiated logout request (OpenID Connect RP-Initiated Logout 1.0 2),
// parsed once from the query (GET) or the form body (POST); the confirmation form posts the
// same parameters with its CSRF token and the user's decision. A parameter sent without a value
// counts as omitted; unknown parameters are ignored.
type LogoutRequest struct {
	IDTokenHint           string
	ClientID              string
	PostLogoutRedirectURI string
	State                 string
	// UILocales is read and not used: the pages are in English only.
	UILocales string
	// CSRFToken and Decision come from the confirmation form: Decision is "logout" or "stay".
	CSRFToken string
	Decision  string
}

// Bounds of the logout request's parameters.
const (
	maxUILocalesLength = 256
	maxDecisionLength  = 16
)

// parseLogoutRequest parses the raw query or form body of a logout request. A parameter given
// twice, a value over its bound or a malformed encoding is invalid_request.
func parseLogoutRequest(raw string) (*LogoutRequest, error) {
	if len(raw) > 2*token.MaxTokenBytes+4*maxParamLength {
		return nil, oauth2.InvalidRequest("The logout request is too large.")
	}
	values, err := url.ParseQuery(raw)
	if err != nil {
		return nil, oauth2.InvalidRequest("The logout request is not correctly encoded.")
	}
	var req LogoutRequest
	fields := []struct {
		name  string
		into  *string
		limit int
	}{
		{"id_token_hint", &req.IDTokenHint, token.MaxTokenBytes},
		{"client_id", &req.ClientID, maxParamLength},
		{"post_logout_redirect_uri", &req.PostLogoutRedirectURI, maxParamLength},
		{"state", &req.State, maxStateLength},
		{"ui_locales", &req.UILocales, maxUILocalesLength},
		{"csrf_token", &req.CSRFToken, maxParamLength},
		{"decision", &req.Decision, maxDecisionLength},
	}
	for _, f := range fields {
		vs := values[f.name]
		switch {
		case len(vs) > 1:
			return nil, oauth2.InvalidRequest("The " + f.name + " parameter is included more than once.")
		case len(vs) == 1 && len(vs[0]) > f.limit:
			return nil, oauth2.InvalidRequest("The " + f.name + " parameter is too long.")
		case len(vs) == 1:
			*f.into = vs[0]
		}
	}
	return &req, nil
}
