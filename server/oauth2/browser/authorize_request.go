package browser

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/latchkey-dev/latchkey/server/dpop"
	"github.com/latchkey-dev/latchkey/server/oauth2"
)

// AuthorizeRequest is an authorization request (RFC 6749 4.1.1, RFC 7636 4.3, OpenID Connect
// Core 3.1.2.1), parsed once from the query (GET) or the form body (POST). A parameter sent
// without a value counts as omitted; unknown parameters are ignored.
type AuthorizeRequest struct {
	ClientID     string
	RedirectURI  string
	ResponseType string
	ResponseMode string
	// Scope is the raw space-separated scope parameter.
	Scope               string
	State               string
	Nonce               string
	CodeChallenge       string
	CodeChallengeMethod string
	// Prompt holds the prompt values (OIDC Core 3.1.2.1).
	Prompt prompt
	// MaxAge is the max_age parameter in seconds, or -1 when absent.
	MaxAge    int64
	LoginHint string
	// Resources are the resource parameters (RFC 8707), checked and without repeats; nil
	// when none was sent.
	Resources []string
	// DPoPJKT is the dpop_jkt parameter (RFC 9449 10): the JWK SHA-256 thumbprint of the DPoP
	// key the code is bound to; checked for its form.
	DPoPJKT string
	// RequestURI is the request_uri of a pushed authorization request (RFC 9126 4).
	RequestURI string
	// Unsupported OIDC request parameters that were sent: request, registration.
	RequestObject, Registration bool

	// invalid is a malformed parameter other than client_id and redirect_uri. It is answered
	// with a redirect to the client once client_id and redirect_uri have been checked.
	invalid *oauth2.Error
}

// prompt is a set of OIDC prompt values.
type prompt uint8

const (
	promptNone prompt = 1 << iota
	promptLogin
	promptConsent
	promptSelectAccount
)

// Has reports whether the set holds v.
func (p prompt) Has(v prompt) bool { return p&v != 0 }

// Bounds of the values the server stores and sends back.
const (
	maxStateLength     = 2048
	maxNonceLength     = 512
	maxLoginHintLength = 256
	maxParamLength     = 4096
)

// Bits of the parameters, to find parameters included more than once (RFC 6749 3.1).
const (
	apClientID = 1 << iota
	apRedirectURI
	apResponseType
	apResponseMode
	apScope
	apState
	apNonce
	apCodeChallenge
	apCodeChallengeMethod
	apPrompt
	apMaxAge
	apLoginHint
	apDPoPJKT
)

// authorizeParams collects parameters into an AuthorizeRequest.
type authorizeParams struct {
	req    AuthorizeRequest
	maxAge string
	prompt string
	// resources are the distinct raw resource values, at most oauth2.MaxResources+1 of them.
	resources []string
	seen      uint
	// fatal is a problem with client_id or redirect_uri: the request is refused with a page.
	fatal *oauth2.Error
}

// parseAuthorizeRequest parses the parameters of an authorization request, encoded as a query
// string or a form body. The error is a problem with client_id or redirect_uri (missing,
// repeated, malformed): the request cannot be answered with a redirect and is shown to the
// user. Any other malformed parameter is kept in the request, for a redirect once the client
// and its redirect URI have been checked.
func parseAuthorizeRequest(raw string) (*AuthorizeRequest, error) {
	return parseAuthorizeParams(raw, true)
}

// parseAuthorizeParams is parseAuthorizeRequest; needClientID false accepts a request without
// client_id (a pushed request whose client authenticates with the Authorization header).
func parseAuthorizeParams(raw string, needClientID bool) (*AuthorizeRequest, error) {
	p := authorizeParams{req: AuthorizeRequest{MaxAge: -1}}
	for fp := range oauth2.FormParams(raw) {
		if fp.Malformed {
			// The name may be client_id or redirect_uri: refuse without a redirect.
			p.setFatal("The request is not correctly URL-encoded.")
			continue
		}
		p.set(fp.Name, fp.Value)
	}
	if p.fatal == nil && needClientID && p.req.ClientID == "" {
		p.setFatal("The client_id parameter is missing.")
	}
	if p.fatal != nil {
		return nil, p.fatal
	}
	p.finish()
	return &p.req, nil
}

// setFatal records the first problem with client_id or redirect_uri.
func (p *authorizeParams) setFatal(description string) {
	if p.fatal == nil {
		p.fatal = oauth2.ErrInvalidRequest.WithDescription(description)
	}
}

// setInvalid records the first problem with another parameter.
func (p *authorizeParams) setInvalid(description string) {
	if p.req.invalid == nil {
		p.req.invalid = oauth2.ErrInvalidRequest.WithDescription(description)
	}
}

// field returns where a known parameter goes; unknown parameters are ignored.
func (p *authorizeParams) field(name string) (*string, uint) {
	switch name {
	case "client_id":
		return &p.req.ClientID, apClientID
	case "redirect_uri":
		return &p.req.RedirectURI, apRedirectURI
	case "response_type":
		return &p.req.ResponseType, apResponseType
	case "response_mode":
		return &p.req.ResponseMode, apResponseMode
	case "scope":
		return &p.req.Scope, apScope
	case "state":
		return &p.req.State, apState
	case "nonce":
		return &p.req.Nonce, apNonce
	case "code_challenge":
		return &p.req.CodeChallenge, apCodeChallenge
	case "code_challenge_method":
		return &p.req.CodeChallengeMethod, apCodeChallengeMethod
	case "prompt":
		return &p.prompt, apPrompt
	case "max_age":
		return &p.maxAge, apMaxAge
	case "login_hint":
		return &p.req.LoginHint, apLoginHint
	case "dpop_jkt":
		return &p.req.DPoPJKT, apDPoPJKT
	}
	return nil, 0
}

// set stores one parameter.
func (p *authorizeParams) set(name, value string) {
	switch name { // presence is what matters for these
	case "request":
		p.req.RequestObject = p.req.RequestObject || value != ""
		return
	case "request_uri":
		if value == "" {
			return
		}
		if p.req.RequestURI != "" {
			p.setFatal("The request_uri parameter is included more than once.")
			return
		}
		if len(value) > maxParamLength {
			p.setFatal("The request_uri parameter is too long.")
			return
		}
		p.req.RequestURI = value
		return
	case "registration":
		p.req.Registration = p.req.Registration || value != ""
		return
	case "resource": // repeatable (RFC 8707 2); finish checks the values
		// Distinct values only, one past the bound at most (ParseResources refuses that many).
		if value != "" && len(p.resources) <= oauth2.MaxResources && !slices.Contains(p.resources, value) {
			p.resources = append(p.resources, value)
		}
		return
	}
	dst, bit := p.field(name)
	if dst == nil || value == "" {
		return
	}
	if p.seen&bit != 0 {
		description := fmt.Sprintf("The %s parameter is included more than once.", name)
		if bit == apClientID || bit == apRedirectURI {
			p.setFatal(description)
		} else {
			p.setInvalid(description)
		}
		return
	}
	p.seen |= bit
	if len(value) > maxParamLength {
		if bit == apClientID || bit == apRedirectURI {
			p.setFatal(fmt.Sprintf("The %s parameter is too long.", name))
		} else {
			p.setInvalid(fmt.Sprintf("The %s parameter is too long.", name))
		}
		return
	}
	*dst = value
}

// finish checks the values that have a syntax of their own.
func (p *authorizeParams) finish() {
	r := &p.req
	switch {
	case len(r.State) > maxStateLength:
		r.State = "" // too long to send back
		p.setInvalid(fmt.Sprintf("The state parameter is longer than %d bytes.", maxStateLength))
	case len(r.Nonce) > maxNonceLength:
		p.setInvalid(fmt.Sprintf("The nonce parameter is longer than %d bytes.", maxNonceLength))
	case len(r.LoginHint) > maxLoginHintLength:
		r.LoginHint = ""
	}
	if p.maxAge != "" {
		n, err := strconv.ParseInt(p.maxAge, 10, 64)
		if err != nil || n < 0 || strings.Trim(p.maxAge, "0123456789") != "" {
			p.setInvalid("The max_age parameter must be a non-negative integer.")
		} else {
			r.MaxAge = n
		}
	}
	if r.DPoPJKT != "" && !dpop.ValidThumbprint(r.DPoPJKT) {
		p.setInvalid("The dpop_jkt parameter must be a base64url JWK SHA-256 thumbprint (RFC 7638).")
	}
	resources, err := oauth2.ParseResources(p.resources)
	var oe *oauth2.Error
	switch {
	case err == nil:
		r.Resources = resources
	case r.invalid == nil && errors.As(err, &oe):
		r.invalid = oe
	case r.invalid == nil:
		p.setInvalid("The resource parameter is invalid.")
	}
	if p.prompt != "" {
		pr, err := parsePrompt(p.prompt)
		if err != nil {
			p.setInvalid(err.Error())
		}
		r.Prompt = pr
	}
}

// promptError is a description of a malformed prompt parameter.
type promptError string

func (e promptError) Error() string { return string(e) }

// parsePrompt parses the space-delimited prompt values; none may not be combined.
func parsePrompt(s string) (prompt, error) {
	var out prompt
	for v := range strings.SplitSeq(s, " ") {
		switch v {
		case "":
		case "none":
			out |= promptNone
		case "login":
			out |= promptLogin
		case "consent":
			out |= promptConsent
		case "select_account":
			out |= promptSelectAccount
		default:
			return 0, promptError(fmt.Sprintf("The prompt value %.32q is not supported.", v))
		}
	}
	if out.Has(promptNone) && out != promptNone {
		return 0, promptError("The prompt value none may not be combined with other values.")
	}
	return out, nil
}
