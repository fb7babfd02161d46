package register

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/latchkey-dev/latchkey/server/oauth2"
)

// minInitialTokenLen is the shortest initial access token ParseInitialTokens accepts.
const minInitialTokenLen = 16

// AnyScope as the whole scopes= list of an initial access token lets its registrations request
// every scope available to the registrar's namespace.
const AnyScope = "*"

// InitialTokenHash is the SHA-256 of an initial access token.
type InitialTokenHash [sha256.Size]byte

// HashInitialToken is the hash an InitialToken holds of an initial access token.
func HashInitialToken(token string) InitialTokenHash { return sha256.Sum256([]byte(token)) }

// InitialToken is an initial access token (its hash) and the registration policy of the
// registrations made with it.
type InitialToken struct {
	Hash InitialTokenHash
	// Scopes the token's registrations may request. nil: the AllowedScopes of the Policy, as
	// for anonymous registrations; empty: none. AnyScope (the only element): every scope
	// available to the registrar's namespace.
	Scopes []string
	// GrantTypes the token's registrations may use; nil: every grant type registration
	// allows.
	GrantTypes []string
}

// allowsAnyScope reports whether the token's scopes= list is AnyScope.
func (t *InitialToken) allowsAnyScope() bool {
	return len(t.Scopes) == 1 && t.Scopes[0] == AnyScope
}

// registrableGrants are the grant types registration allows (validate): what grants= may list.
var registrableGrants = []string{oauth2.GrantAuthorizationCode, oauth2.GrantRefreshToken, oauth2.GrantClientCredentials, oauth2.GrantDeviceCode,
	oauth2.GrantTokenExchange}

// ParseInitialTokens reads the initial access token file: one token a line, optionally
// followed by its policy as white-space separated NAME=VALUE attributes, then optionally a
// comment, from a white-space separated word that starts with # to the end of the line (a #
// inside a word is not one):
//
//	# comment
//	TOKEN
//	TOKEN scopes=read:projects,openid grants=client_credentials  # CI pipelines
//	TOKEN scopes=*
//
// Each token must be an RFC 6750 b64token of at least 16 characters, listed once; there must be
// at least one. scopes= lists the scopes (RFC 6749 scope tokens, comma-separated) registrations
// with the token may request: empty means none, * means every scope available to the
// registrar's namespace, and without it the Policy's AllowedScopes apply. grants= lists the
// grant types they may use (authorization_code, refresh_token, client_credentials,
// urn:ietf:params:oauth:grant-type:device_code, urn:ietf:params:oauth:grant-type:token-exchange);
// without it any. An attribute given twice or unknown (a misspelt one must never widen a policy) is an
// error. Errors never contain a token or a value.
func ParseInitialTokens(data []byte) ([]InitialToken, error) {
	var out []InitialToken
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for n := 1; sc.Scan(); n++ {
		fields := strings.Fields(sc.Text())
		if i := slices.IndexFunc(fields, func(f string) bool { return strings.HasPrefix(f, "#") }); i >= 0 {
			fields = fields[:i]
		}
		if len(fields) == 0 {
			continue
		}
		tok, err := parseInitialTokenLine(fields)
		if err != nil {
			return nil, fmt.Errorf("register: initial access token on line %d: %w", n, err)
		}
		if slices.ContainsFunc(out, func(o InitialToken) bool { return subtle.ConstantTimeCompare(o.Hash[:], tok.Hash[:]) == 1 }) {
			return nil, fmt.Errorf("register: initial access token on line %d: listed before", n)
		}
		out = append(out, tok)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("register: read initial access tokens: %w", err)
	}
	if len(out) == 0 {
		return nil, errors.New("register: no initial access token found")
	}
	return out, nil
}

// parseInitialTokenLine parses the fields of one line: the token, then its attributes.
func parseInitialTokenLine(fields []string) (InitialToken, error) {
	token := fields[0]
	if len(token) < minInitialTokenLen || !oauth2.IsB64Token(token) {
		return InitialToken{}, fmt.Errorf("want at least %d characters of A-Z a-z 0-9 - . _ ~ + / (then =)", minInitialTokenLen)
	}
	t := InitialToken{Hash: HashInitialToken(token)}
	seen := map[string]bool{}
	for _, attr := range fields[1:] {
		name, value, ok := strings.Cut(attr, "=")
		switch {
		case !ok:
			return InitialToken{}, errors.New("after the token, want scopes=LIST or grants=LIST (white space separates attributes)")
		case name != "scopes" && name != "grants":
			return InitialToken{}, errors.New("unknown attribute; want scopes=LIST or grants=LIST")
		case seen[name]:
			return InitialToken{}, fmt.Errorf("%s= is given twice", name)
		}
		seen[name] = true
		var err error
		if name == "scopes" {
			t.Scopes, err = parseTokenScopes(value)
		} else {
			t.GrantTypes, err = parseTokenGrants(value)
		}
		if err != nil {
			return InitialToken{}, err
		}
	}
	return t, nil
}

// parseTokenScopes parses the value of scopes=: empty (none), * or scope tokens.
func parseTokenScopes(value string) ([]string, error) {
	if value == AnyScope {
		return []string{AnyScope}, nil
	}
	out := []string{} // not nil: an empty list allows no scope
	if value == "" {
		return out, nil
	}
	for s := range strings.SplitSeq(value, ",") {
		if len(s) > regMaxScopeLen || !regScopeToken.MatchString(s) || s == AnyScope {
			return nil, errors.New("scopes= lists something that is not a scope token (RFC 6749 3.3, comma-separated, or * alone)")
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	if len(out) > regMaxScopes {
		return nil, fmt.Errorf("scopes= lists more than %d scopes", regMaxScopes)
	}
	return out, nil
}

// parseTokenGrants parses the value of grants=: registrable grant types.
func parseTokenGrants(value string) ([]string, error) {
	var out []string
	for g := range strings.SplitSeq(value, ",") {
		if !slices.Contains(registrableGrants, g) {
			return nil, errors.New("grants= must list some of authorization_code, refresh_token, client_credentials, urn:ietf:params:oauth:grant-type:device_code and urn:ietf:params:oauth:grant-type:token-exchange, comma-separated")
		}
		if !slices.Contains(out, g) {
			out = append(out, g)
		}
	}
	return out, nil
}

// matchInitialToken returns the configured token whose hash is the token's, comparing with
// every one in constant time so the time taken does not tell which matched, or nil.
func matchInitialToken(tokens []InitialToken, token string) *InitialToken {
	h := HashInitialToken(token)
	match := -1
	for i := range tokens {
		eq := subtle.ConstantTimeCompare(h[:], tokens[i].Hash[:])
		match = subtle.ConstantTimeSelect(eq, i, match)
	}
	if match < 0 {
		return nil
	}
	return &tokens[match]
}
