package register

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/redirecturi"
)

// Bounds of registered metadata: the OAuthClient CRD's, so that what passes here is never
// refused by the API server.
const (
	regMaxRedirectURIs     = 32
	regMaxScopes           = 128
	regMaxScopeLen         = 128
	regMaxClientNameRunes  = 128
	regMaxGrantTypes       = 8
	regMaxResponseTypes    = 8
	regResponseTypeCode    = "code"
	regMaxReportedURIBytes = 100
	// regMaxListLen bounds every array member as sent, before duplicates are removed.
	regMaxListLen = 256
)

// errHTTPSOnly is why a registered back-channel logout URI on http is refused.
var errHTTPSOnly = errors.New("must use https when registered dynamically")

var (
	// regScopeToken is RFC 6749 3.3's scope-token (and the CRD's pattern).
	regScopeToken = regexp.MustCompile(`^[\x21\x23-\x5B\x5D-\x7E]+$`)
)

// registrationRequest is an RFC 7591 registration (or RFC 7592 update) request body as sent,
// before validation. A member that is absent or JSON null is left zero and its has bit unset.
// It may hold a client secret: never log it.
type registrationRequest struct {
	RedirectURIs            []string
	PostLogoutRedirectURIs  []string
	TokenEndpointAuthMethod string
	GrantTypes              []string
	ResponseTypes           []string
	ClientName              string
	Scope                   string
	// BackchannelLogoutURI and BackchannelLogoutSessionRequired are OIDC Back-Channel Logout
	// 1.0's metadata (2.2).
	BackchannelLogoutURI             string
	BackchannelLogoutSessionRequired bool
	// RequirePushedAuthorizationRequests is RFC 9126 6's metadata.
	RequirePushedAuthorizationRequests bool
	// ClientID and ClientSecret are read for RFC 7592 updates; a registration ignores them.
	ClientID     string
	ClientSecret string
	has          uint
}

// Member bits of registrationRequest.has.
const (
	hasGrantTypes = 1 << iota
	hasResponseTypes
)

// String shows no secret.
func (r registrationRequest) String() string {
	return fmt.Sprintf("registrationRequest{client_id=%q grant_types=%q auth=%q}", r.ClientID, r.GrantTypes, r.TokenEndpointAuthMethod)
}

// GoString is String, for %#v.
func (r registrationRequest) GoString() string { return r.String() }

// metadataError is invalid_client_metadata with a description.
func metadataError(format string, args ...any) error {
	return ErrInvalidClientMetadata.WithDescription(fmt.Sprintf(format, args...))
}

// readRegistrationBody checks the Content-Type (application/json, UTF-8) and reads the body.
func readRegistrationBody(r *http.Request, maxBody int64) ([]byte, error) {
	ct := r.Header.Get("Content-Type")
	if ct != "application/json" {
		mt, params, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return nil, oauth2.ErrInvalidRequest.WithStatus(http.StatusUnsupportedMediaType).
				WithDescription("The Content-Type must be application/json.")
		}
		if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "us-ascii") {
			return nil, oauth2.ErrInvalidRequest.WithStatus(http.StatusUnsupportedMediaType).
				WithDescription("The charset must be UTF-8.")
		}
	}
	return oauth2.ReadBody(r, maxBody)
}

// parseRegistrationRequest parses a JSON object of client metadata. Unknown members are
// ignored (RFC 7591 2), any member given twice is refused, known members must have their JSON
// type (null counts as absent). Every error is an *Error: invalid_client_metadata.
func parseRegistrationRequest(body []byte) (*registrationRequest, error) {
	const malformed = "The body is not a well-formed JSON object."
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, metadataError("The body must be a JSON object.")
	}
	var req registrationRequest
	seen := map[string]struct{}{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, metadataError(malformed)
		}
		name, _ := tok.(string) // object keys are always strings
		if _, dup := seen[name]; dup {
			return nil, metadataError("The member %.64q is included more than once.", name)
		}
		seen[name] = struct{}{}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, metadataError(malformed)
		}
		if err := req.set(name, raw); err != nil {
			return nil, err
		}
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, metadataError(malformed)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, metadataError("The body has data after the JSON object.")
	}
	return &req, nil
}

// set stores one member; unknown members are ignored.
func (r *registrationRequest) set(name string, raw json.RawMessage) error {
	var (
		str     *string
		list    *[]string
		boolean *bool
		bit     uint
	)
	switch name {
	case "redirect_uris":
		list = &r.RedirectURIs
	case "post_logout_redirect_uris":
		list = &r.PostLogoutRedirectURIs
	case "token_endpoint_auth_method":
		str = &r.TokenEndpointAuthMethod
	case "grant_types":
		list, bit = &r.GrantTypes, hasGrantTypes
	case "response_types":
		list, bit = &r.ResponseTypes, hasResponseTypes
	case "client_name":
		str = &r.ClientName
	case "scope":
		str = &r.Scope
	case "client_id":
		str = &r.ClientID
	case "client_secret":
		str = &r.ClientSecret
	case "backchannel_logout_uri":
		str = &r.BackchannelLogoutURI
	case "backchannel_logout_session_required":
		boolean = &r.BackchannelLogoutSessionRequired
	case "require_pushed_authorization_requests":
		boolean = &r.RequirePushedAuthorizationRequests
	default:
		return nil
	}
	if bytes.Equal(raw, []byte("null")) {
		return nil
	}
	if boolean != nil {
		if err := json.Unmarshal(raw, boolean); err != nil {
			return metadataError("The value of %s must be true or false.", name)
		}
		return nil
	}
	if str != nil {
		if err := json.Unmarshal(raw, str); err != nil {
			return metadataError("The value of %s must be a string.", name)
		}
		return nil
	}
	var values []string
	if err := json.Unmarshal(raw, &values); err != nil || slices.Contains(values, "") {
		return metadataError("The value of %s must be an array of non-empty strings.", name)
	}
	if len(values) > regMaxListLen {
		return metadataError("The %s array has more than %d elements.", name, regMaxListLen)
	}
	*list = values
	r.has |= bit
	return nil
}

// validate checks the request against what a registered client may be and returns the
// metadata to store, with RFC 7591's defaults applied: grant_types [authorization_code],
// token_endpoint_auth_method client_secret_basic; response_types, when sent, must be [code]
// with authorization_code and [] without it. Lists are deduplicated, keeping the first occurrence. Scope existence is
// checked by the caller, which has the registry.
func (r *registrationRequest) validate() (ClientMetadata, error) {
	m := ClientMetadata{
		TokenEndpointAuthMethod: r.TokenEndpointAuthMethod,
		ClientName:              r.ClientName,
	}
	switch m.TokenEndpointAuthMethod {
	case "":
		m.TokenEndpointAuthMethod = oauth2.AuthMethodBasic
	case oauth2.AuthMethodBasic, oauth2.AuthMethodPost, oauth2.AuthMethodNone:
	default:
		return m, metadataError("The token_endpoint_auth_method %.64q is not supported; use client_secret_basic, client_secret_post or none.",
			m.TokenEndpointAuthMethod)
	}

	m.GrantTypes = []string{oauth2.GrantAuthorizationCode}
	if r.has&hasGrantTypes != 0 {
		m.GrantTypes = regDedupe(r.GrantTypes)
	}
	if len(m.GrantTypes) == 0 {
		return m, metadataError("The grant_types must name at least one grant type.")
	}
	if len(m.GrantTypes) > regMaxGrantTypes {
		return m, metadataError("The grant_types name more than %d grant types.", regMaxGrantTypes)
	}
	for _, g := range m.GrantTypes {
		switch g {
		case oauth2.GrantAuthorizationCode, oauth2.GrantRefreshToken, oauth2.GrantClientCredentials, oauth2.GrantDeviceCode,
			oauth2.GrantTokenExchange:
		case oauth2.GrantPassword:
			return m, metadataError("The password grant cannot be registered dynamically; an administrator can allow it on the OAuthClient.")
		default:
			return m, metadataError("The grant type %.64q is not supported; use authorization_code, refresh_token, client_credentials, %s or %s.",
				g, oauth2.GrantDeviceCode, oauth2.GrantTokenExchange)
		}
	}
	code := slices.Contains(m.GrantTypes, oauth2.GrantAuthorizationCode)
	if m.TokenEndpointAuthMethod == oauth2.AuthMethodNone && slices.Contains(m.GrantTypes, oauth2.GrantClientCredentials) {
		return m, metadataError("A public client (token_endpoint_auth_method none) cannot use client_credentials.")
	}
	if m.TokenEndpointAuthMethod == oauth2.AuthMethodNone && slices.Contains(m.GrantTypes, oauth2.GrantTokenExchange) {
		return m, metadataError("A public client (token_endpoint_auth_method none) cannot use token exchange.")
	}

	// response_types is not stored (it follows from grant_types), only checked.
	if r.has&hasResponseTypes != 0 {
		rts := regDedupe(r.ResponseTypes)
		if len(rts) > regMaxResponseTypes {
			return m, metadataError("The response_types name more than %d response types.", regMaxResponseTypes)
		}
		for _, rt := range rts {
			if rt != regResponseTypeCode {
				return m, metadataError("The response type %.64q is not supported; only code is.", rt)
			}
		}
		if (len(rts) > 0) != code {
			return m, metadataError("The response type code goes with the grant type authorization_code, and only with it (RFC 7591 2.1).")
		}
	}

	m.RedirectURIs = regDedupe(r.RedirectURIs)
	if len(m.RedirectURIs) > regMaxRedirectURIs {
		return m, ErrInvalidRedirectURI.WithDescription(fmt.Sprintf("At most %d redirect URIs can be registered.", regMaxRedirectURIs))
	}
	for _, u := range m.RedirectURIs {
		if err := redirecturi.Check(u); err != nil {
			if len(u) > regMaxReportedURIBytes {
				u = u[:regMaxReportedURIBytes] + "..."
			}
			return m, ErrInvalidRedirectURI.WithDescription(fmt.Sprintf("The redirect URI %q %s.", u, err))
		}
	}
	if code && len(m.RedirectURIs) == 0 {
		return m, ErrInvalidRedirectURI.WithDescription("The authorization_code grant needs at least one redirect URI.")
	}
	m.PostLogoutRedirectURIs = regDedupe(r.PostLogoutRedirectURIs)
	if len(m.PostLogoutRedirectURIs) > regMaxRedirectURIs {
		return m, metadataError("At most %d post-logout redirect URIs can be registered.", regMaxRedirectURIs)
	}
	for _, u := range m.PostLogoutRedirectURIs {
		if err := redirecturi.Check(u); err != nil {
			if len(u) > regMaxReportedURIBytes {
				u = u[:regMaxReportedURIBytes] + "..."
			}
			return m, metadataError("The post-logout redirect URI %q %s.", u, err)
		}
	}

	if u := r.BackchannelLogoutURI; u != "" {
		// https only: the server itself sends requests there, and http on a loopback host
		// would reach the server's own ports. An administrator can declare such a URI on
		// the OAuthClient (for development).
		err := redirecturi.CheckLogoutURI(u)
		if err == nil && !strings.HasPrefix(u, "https://") {
			err = errHTTPSOnly
		}
		if err != nil {
			if len(u) > regMaxReportedURIBytes {
				u = u[:regMaxReportedURIBytes] + "..."
			}
			return m, metadataError("The backchannel_logout_uri %q %s.", u, err)
		}
		m.BackchannelLogoutURI = u
	}
	m.BackchannelLogoutSessionRequired = r.BackchannelLogoutSessionRequired
	m.RequirePushedAuthorizationRequests = r.RequirePushedAuthorizationRequests

	if n := utf8.RuneCountInString(m.ClientName); n > regMaxClientNameRunes {
		return m, metadataError("The client_name is longer than %d characters.", regMaxClientNameRunes)
	}
	if strings.IndexFunc(m.ClientName, hiddenInName) >= 0 {
		return m, metadataError("The client_name must not contain control, format (bidirectional or zero-width), private-use or other invisible characters (variation selectors, fillers, blanks), or line separators.")
	}
	m.ClientName = strings.TrimSpace(m.ClientName)

	for name := range strings.SplitSeq(r.Scope, " ") { // space-separated (RFC 7591 2)
		if name == "" || slices.Contains(m.Scopes, name) {
			continue
		}
		if len(name) > regMaxScopeLen || !regScopeToken.MatchString(name) {
			return m, metadataError("The scope %.64q is not a valid scope token.", name)
		}
		if len(m.Scopes) == regMaxScopes {
			return m, metadataError("The scope names more than %d scopes.", regMaxScopes)
		}
		m.Scopes = append(m.Scopes, name)
	}
	return m, nil
}

// regDedupe returns the values without repeats, in their first order.
func regDedupe(values []string) []string {
	if len(values) == 0 {
		return nil
	}
	out := make([]string, 0, len(values))
	for _, v := range values {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}
