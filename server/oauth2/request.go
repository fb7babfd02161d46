package oauth2

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// TokenRequest is a token endpoint request, parsed once. Parameters sent without a value are
// treated as omitted (RFC 6749 3.1). It holds secrets: never log it.
type TokenRequest struct {
	GrantType string
	// ClientID and ClientSecret come from the Basic header or the body, as AuthMethod says.
	// AuthMethod is empty when the request names no client.
	ClientID     string
	ClientSecret string
	AuthMethod   string
	// ClientAssertion is a JWT-bearer client assertion (RFC 7523 2.2; AuthMethod
	// AuthMethodAssertion): its client_assertion_type was checked while parsing.
	ClientAssertion string
	// CredentialExpiry is when the credential that authenticated the client expires (a client
	// assertion's exp); zero for a secret. Set by ClientAuth.Authenticate.
	CredentialExpiry time.Time
	// Scope is the raw space-separated scope parameter.
	Scope string

	// Parameters of the grants that come later.
	Code         string
	RedirectURI  string
	CodeVerifier string
	RefreshToken string
	Username     string
	Password     string
	// DeviceCode is the device_code grant's (RFC 8628 3.4).
	DeviceCode string
	// Resources are the resource parameters (RFC 8707 2), checked and without repeats; nil
	// when none was sent.
	Resources []string

	// The parameters of a token exchange (RFC 8693 2.1). Audiences are the audience
	// parameters, without repeats (at most MaxResources, each at most MaxResourceLength
	// bytes); nil when none was sent. The grant checks the rest (token_exchange.go).
	SubjectToken       string
	SubjectTokenType   string
	ActorToken         string
	ActorTokenType     string
	RequestedTokenType string
	Audiences          []string

	// Token and TokenTypeHint are the parameters of revocation (RFC 7009) and introspection
	// (RFC 7662) requests, parsed by ParseClientRequest.
	Token         string
	TokenTypeHint string

	// DPoPProof is the request's DPoP header (RFC 9449), never logged; DPoPThumbprint is its
	// key's thumbprint once the token endpoint verified it, "" when the tokens are Bearer.
	DPoPProof      string
	DPoPThumbprint string
}

// String shows no secret, so that printing a request by mistake leaks nothing. Its value
// receiver covers printing values as well as pointers.
func (r TokenRequest) String() string {
	return fmt.Sprintf("TokenRequest{grant_type=%q client_id=%q auth=%s scope=%q resource=%q}",
		r.GrantType, r.ClientID, r.AuthMethod, r.Scope, r.Resources)
}

// GoString is String, for %#v.
func (r TokenRequest) GoString() string { return r.String() }

// BodyFormat is how the body of a request is encoded.
type BodyFormat int

// The body formats of ParseContentType.
const (
	FormBody BodyFormat = iota + 1
	JSONBody
)

// ParseTokenRequest reads and parses a token request. The query string is ignored.
func ParseTokenRequest(r *http.Request, maxBody int64) (*TokenRequest, error) {
	req, err := ParseClientRequest(r, maxBody)
	if err != nil {
		return nil, err
	}
	if req.GrantType == "" {
		return nil, InvalidRequest("The grant_type parameter is missing.")
	}
	return req, nil
}

// ParseClientRequest reads a client-authenticated request of another endpoint (revocation,
// introspection): the same bodies, duplicate and credential rules as a token request, without
// grant_type.
func ParseClientRequest(r *http.Request, maxBody int64) (*TokenRequest, error) {
	format, err := ParseContentType(r.Header.Get("Content-Type"))
	if err != nil {
		return nil, err
	}
	body, err := ReadBody(r, maxBody)
	if err != nil {
		return nil, err
	}
	return parseClientParams(format, r.Header.Values("Authorization"), body)
}

// ParseClientForm parses the client credentials and the token parameters of a read
// form-urlencoded body and the Authorization header values, by the token endpoint's rules
// (the pushed authorization request endpoint reads its body once for them and once for the
// authorization parameters).
func ParseClientForm(authorization []string, body []byte) (*TokenRequest, error) {
	return parseClientParams(FormBody, authorization, body)
}

// parseClientParams parses a read body and the Authorization header values.
func parseClientParams(format BodyFormat, authorization []string, body []byte) (*TokenRequest, error) {
	var p params
	var err error
	switch format {
	case FormBody:
		err = p.parseForm(string(body))
	case JSONBody:
		err = p.parseJSON(body)
	default:
		err = InvalidRequest("Unsupported Content-Type.")
	}
	if err != nil {
		return nil, err
	}
	if err := p.setClientCredentials(authorization); err != nil {
		return nil, err
	}
	return &p.req, nil
}

// ParseContentType accepts form-urlencoded and JSON bodies, with a UTF-8 charset if any.
func ParseContentType(ct string) (BodyFormat, error) {
	switch ct { // the common spellings, without allocating
	case "application/x-www-form-urlencoded":
		return FormBody, nil
	case "application/json":
		return JSONBody, nil
	}
	const unsupported = "The Content-Type must be application/x-www-form-urlencoded or application/json."
	mt, mtParams, err := mime.ParseMediaType(ct)
	if err != nil {
		return 0, InvalidRequest(unsupported)
	}
	if cs, ok := mtParams["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "us-ascii") {
		return 0, InvalidRequest("The charset must be UTF-8.")
	}
	switch mt {
	case "application/x-www-form-urlencoded":
		return FormBody, nil
	case "application/json":
		return JSONBody, nil
	}
	return 0, InvalidRequest(unsupported)
}

// ReadFormBody reads the body of a POST that must be form-encoded (the authorization endpoint,
// the login and consent forms): another Content-Type is invalid_request.
func ReadFormBody(r *http.Request, maxBody int64) ([]byte, error) {
	if format, err := ParseContentType(r.Header.Get("Content-Type")); err != nil || format != FormBody {
		return nil, InvalidRequest("The body must be application/x-www-form-urlencoded.")
	}
	return ReadBody(r, maxBody)
}

// ReadBody reads at most maxBody bytes of the request's body; a longer body is invalid_request
// with status 413.
func ReadBody(r *http.Request, maxBody int64) ([]byte, error) {
	if r.ContentLength > maxBody {
		return nil, bodyTooLarge(maxBody)
	}
	body := r.Body
	if body == nil || body == http.NoBody {
		return nil, nil
	}
	if n := r.ContentLength; n > 0 && n <= exactBodyRead {
		// A short declared length is read into a buffer of that size: most bodies are far
		// shorter than the 512 bytes io.ReadAll starts with. net/http ends the body there; a
		// reader that goes on is refused rather than cut short. A longer one grows with what
		// arrives, so that a client cannot make the server hold maxBody bytes per connection
		// by declaring them and sending nothing.
		data := make([]byte, n)
		if _, err := io.ReadFull(body, data); err != nil {
			return nil, unreadable(err)
		}
		var more [1]byte
		if m, _ := body.Read(more[:]); m > 0 {
			return nil, unreadable(errors.New("the body is longer than its Content-Length"))
		}
		return data, nil
	}
	data, err := io.ReadAll(io.LimitReader(body, maxBody+1))
	if err != nil {
		return nil, unreadable(err)
	}
	if int64(len(data)) > maxBody {
		return nil, bodyTooLarge(maxBody)
	}
	return data, nil
}

// exactBodyRead is the longest declared body ReadBody allocates before it arrives: no more than
// net/http's own buffers of a connection.
const exactBodyRead = 4 << 10

func unreadable(cause error) error {
	return ErrInvalidRequest.WithDescription("The request body could not be read.").WithCause(cause)
}

func bodyTooLarge(maxBody int64) error {
	return ErrInvalidRequest.WithStatus(http.StatusRequestEntityTooLarge).
		WithDescription(fmt.Sprintf("The request body exceeds %d bytes.", maxBody))
}

// InvalidRequest is invalid_request with a description.
func InvalidRequest(description string) error {
	return ErrInvalidRequest.WithDescription(description)
}

// badBasic is invalid_client for unusable Basic credentials.
func badBasic(description string) error {
	return ErrInvalidClient.WithBasicChallenge().WithDescription(description)
}

// Parameter bits, to find parameters included more than once (RFC 6749 3.1).
const (
	pGrantType = 1 << iota
	pClientID
	pClientSecret
	pScope
	pCode
	pRedirectURI
	pCodeVerifier
	pRefreshToken
	pUsername
	pPassword
	pToken
	pTokenTypeHint
	pClientAssertion
	pClientAssertionType
	pDeviceCode
	pSubjectToken
	pSubjectTokenType
	pActorToken
	pActorTokenType
	pRequestedTokenType
)

// params collects parameters into a TokenRequest.
type params struct {
	req           TokenRequest
	seen          uint
	assertionType string
}

// field returns where a known parameter goes; unknown parameters are ignored (RFC 6749 3.2).
func (p *params) field(name string) (*string, uint) {
	switch name {
	case "grant_type":
		return &p.req.GrantType, pGrantType
	case "client_id":
		return &p.req.ClientID, pClientID
	case "client_secret":
		return &p.req.ClientSecret, pClientSecret
	case "scope":
		return &p.req.Scope, pScope
	case "code":
		return &p.req.Code, pCode
	case "redirect_uri":
		return &p.req.RedirectURI, pRedirectURI
	case "code_verifier":
		return &p.req.CodeVerifier, pCodeVerifier
	case "refresh_token":
		return &p.req.RefreshToken, pRefreshToken
	case "username":
		return &p.req.Username, pUsername
	case "password":
		return &p.req.Password, pPassword
	case "token":
		return &p.req.Token, pToken
	case "token_type_hint":
		return &p.req.TokenTypeHint, pTokenTypeHint
	case "client_assertion":
		return &p.req.ClientAssertion, pClientAssertion
	case "client_assertion_type":
		return &p.assertionType, pClientAssertionType
	case "device_code":
		return &p.req.DeviceCode, pDeviceCode
	case "subject_token":
		return &p.req.SubjectToken, pSubjectToken
	case "subject_token_type":
		return &p.req.SubjectTokenType, pSubjectTokenType
	case "actor_token":
		return &p.req.ActorToken, pActorToken
	case "actor_token_type":
		return &p.req.ActorTokenType, pActorTokenType
	case "requested_token_type":
		return &p.req.RequestedTokenType, pRequestedTokenType
	}
	return nil, 0
}

// set stores one parameter. An empty value counts as omitted.
func (p *params) set(name, value string) error {
	dst, bit := p.field(name)
	switch {
	case name == "resource" && value != "":
		var err error
		p.req.Resources, err = addResource(p.req.Resources, value)
		return err
	case name == "audience" && value != "":
		var err error
		p.req.Audiences, err = addAudience(p.req.Audiences, value)
		return err
	}
	if dst == nil || value == "" {
		return nil
	}
	if p.seen&bit != 0 {
		return InvalidRequest(fmt.Sprintf("The %s parameter is included more than once.", name))
	}
	p.seen |= bit
	*dst = value
	return nil
}

// parseForm parses an application/x-www-form-urlencoded body.
func (p *params) parseForm(body string) error {
	for fp := range FormParams(body) {
		if fp.Malformed {
			return InvalidRequest("The form body is malformed.")
		}
		if err := p.set(fp.Name, fp.Value); err != nil {
			return err
		}
	}
	return nil
}

// parseJSON parses a JSON object body whose values are all strings.
func (p *params) parseJSON(body []byte) error {
	const malformed = "The JSON body is malformed."
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return InvalidRequest("The JSON body must be an object.")
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return InvalidRequest(malformed)
		}
		name, _ := tok.(string) // object keys are always strings
		tok, err = dec.Token()
		if err != nil {
			return InvalidRequest(malformed)
		}
		value, ok := tok.(string)
		if !ok {
			return InvalidRequest(fmt.Sprintf("The value of %.64q must be a string.", name))
		}
		if err := p.set(name, value); err != nil {
			return err
		}
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return InvalidRequest(malformed)
	}
	if _, err := dec.Token(); err != io.EOF {
		return InvalidRequest("The JSON body has data after the object.")
	}
	return nil
}

// setClientCredentials takes the client credentials from the Basic header, else from the body.
func (p *params) setClientCredentials(authorization []string) error {
	if p.req.ClientAssertion != "" || p.assertionType != "" {
		return p.setClientAssertion(authorization)
	}
	switch len(authorization) {
	case 0:
		if p.req.ClientID != "" {
			p.req.AuthMethod = AuthMethodPost
			if p.req.ClientSecret == "" {
				p.req.AuthMethod = AuthMethodNone
			}
		} else if p.req.ClientSecret != "" {
			return InvalidRequest("The client_secret parameter requires client_id.")
		}
		return nil
	case 1:
	default:
		return InvalidRequest("The Authorization header is included more than once.")
	}
	id, secret, err := parseBasic(authorization[0])
	if err != nil {
		return err
	}
	if p.req.ClientSecret != "" {
		return InvalidRequest("The client used more than one authentication method.")
	}
	if p.req.ClientID != "" && p.req.ClientID != id {
		return InvalidRequest("The client_id parameter does not match the Authorization header.")
	}
	p.req.ClientID, p.req.ClientSecret, p.req.AuthMethod = id, secret, AuthMethodBasic
	return nil
}

// setClientAssertion checks a JWT-bearer client assertion (RFC 7521 4.2, RFC 7523 2.2): both
// parameters, the one assertion type, and no other credentials beside it. client_id is optional
// (ClientAuth reads it from the assertion's sub when absent).
func (p *params) setClientAssertion(authorization []string) error {
	switch {
	case p.req.ClientAssertion == "":
		return InvalidRequest("The client_assertion_type parameter requires client_assertion.")
	case p.assertionType == "":
		return InvalidRequest("The client_assertion parameter requires client_assertion_type.")
	case p.assertionType != ClientAssertionTypeJWTBearer:
		return ErrInvalidClient.WithDescription("The client_assertion_type must be " + ClientAssertionTypeJWTBearer + ".")
	case p.req.ClientSecret != "" || len(authorization) > 0:
		return InvalidRequest("The client used more than one authentication method.")
	}
	p.req.AuthMethod = AuthMethodAssertion
	return nil
}

// parseBasic decodes client_secret_basic credentials: base64 of id ":" secret, each
// form-urlencoded first (RFC 6749 2.3.1).
func parseBasic(header string) (id, secret string, err error) {
	scheme, encoded, _ := strings.Cut(header, " ")
	if !strings.EqualFold(scheme, "Basic") {
		return "", "", badBasic("The Authorization header must use the Basic scheme.")
	}
	decoded, err := base64.StdEncoding.DecodeString(strings.TrimSpace(encoded))
	if err != nil {
		return "", "", badBasic("The Basic credentials are not valid base64.")
	}
	rawID, rawSecret, ok := strings.Cut(string(decoded), ":")
	if !ok {
		return "", "", badBasic("The Basic credentials have no colon.")
	}
	id, err1 := url.QueryUnescape(rawID)
	secret, err2 := url.QueryUnescape(rawSecret)
	if err1 != nil || err2 != nil {
		return "", "", badBasic("The Basic credentials are not form-urlencoded.")
	}
	if id == "" {
		return "", "", badBasic("The Basic credentials have no client ID.")
	}
	return id, secret, nil
}
