package oauth2

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
)

// discovery serves the server metadata (RFC 8414, OpenID Connect Discovery 1.0) and the JWKS.
type discovery struct {
	base       string // the issuer without a trailing slash, for endpoint URLs
	issuer     string
	registry   Registry
	keys       Keyring
	grantTypes []string
	// registrationEndpoint is the RFC 7591 endpoint's URL; empty when registration is off.
	registrationEndpoint string
	// authorizationEndpoint is the authorization endpoint's URL; empty when it is not mounted.
	authorizationEndpoint string
	// tokenEndpoints: userinfo, revocation and introspection are mounted (with a Store), and
	// OIDC's built-in scopes and the user claims are advertised.
	tokenEndpoints bool
}

// metadata describes what the server implements now, nothing more. Without a Store there is no
// authorization endpoint, so no authorization_endpoint and no response types.
type metadata struct {
	Issuer                            string   `json:"issuer"`
	AuthorizationEndpoint             string   `json:"authorization_endpoint,omitempty"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	JWKSURI                           string   `json:"jwks_uri"`
	ScopesSupported                   []string `json:"scopes_supported"`
	ResponseTypesSupported            []string `json:"response_types_supported"`
	ResponseModesSupported            []string `json:"response_modes_supported,omitempty"`
	GrantTypesSupported               []string `json:"grant_types_supported"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
	RegistrationEndpoint              string   `json:"registration_endpoint,omitempty"`
	CodeChallengeMethodsSupported     []string `json:"code_challenge_methods_supported,omitempty"`
	// RFC 9207: authorization responses carry iss.
	AuthorizationResponseISSParameterSupported bool `json:"authorization_response_iss_parameter_supported,omitempty"`
	// RFC 7009 and RFC 7662.
	RevocationEndpoint                        string   `json:"revocation_endpoint,omitempty"`
	RevocationEndpointAuthMethodsSupported    []string `json:"revocation_endpoint_auth_methods_supported,omitempty"`
	IntrospectionEndpoint                     string   `json:"introspection_endpoint,omitempty"`
	IntrospectionEndpointAuthMethodsSupported []string `json:"introspection_endpoint_auth_methods_supported,omitempty"`
	// OpenID Connect only.
	UserinfoEndpoint                 string   `json:"userinfo_endpoint,omitempty"`
	SubjectTypesSupported            []string `json:"subject_types_supported,omitempty"`
	IDTokenSigningAlgValuesSupported []string `json:"id_token_signing_alg_values_supported,omitempty"`
	ClaimsSupported                  []string `json:"claims_supported,omitempty"`
}

func (d *discovery) metadata() metadata {
	scopes := d.registry.Snapshot().Scopes()
	names := make([]string, 0, len(scopes))
	for _, sc := range scopes {
		names = append(names, sc.Name)
	}
	m := metadata{
		Issuer:                            d.issuer,
		TokenEndpoint:                     d.base + TokenPath,
		JWKSURI:                           d.base + JWKSPath,
		ScopesSupported:                   names,
		ResponseTypesSupported:            []string{},
		GrantTypesSupported:               d.grantTypes,
		TokenEndpointAuthMethodsSupported: []string{AuthMethodBasic, AuthMethodPost},
		RegistrationEndpoint:              d.registrationEndpoint,
	}
	if d.tokenEndpoints {
		m.ScopesSupported = withBuiltinScopes(names)
		m.RevocationEndpoint = d.base + RevocationPath
		m.RevocationEndpointAuthMethodsSupported = []string{AuthMethodBasic, AuthMethodPost, AuthMethodNone}
		m.IntrospectionEndpoint = d.base + IntrospectionPath
		m.IntrospectionEndpointAuthMethodsSupported = []string{AuthMethodBasic, AuthMethodPost}
	}
	if d.authorizationEndpoint != "" {
		m.AuthorizationEndpoint = d.authorizationEndpoint
		m.ResponseTypesSupported = []string{"code"}
		m.ResponseModesSupported = []string{"query"}
		m.CodeChallengeMethodsSupported = []string{pkceS256, pkcePlain}
		m.AuthorizationResponseISSParameterSupported = true
		m.TokenEndpointAuthMethodsSupported = append(m.TokenEndpointAuthMethodsSupported, AuthMethodNone)
	}
	if d.tokenEndpoints && !slices.Contains(m.TokenEndpointAuthMethodsSupported, AuthMethodNone) {
		// Public clients use the password and refresh_token grants by client_id alone.
		m.TokenEndpointAuthMethodsSupported = append(m.TokenEndpointAuthMethodsSupported, AuthMethodNone)
	}
	return m
}

func (d *discovery) serveAuthorizationServer(w http.ResponseWriter, r *http.Request) {
	d.writeJSON(w, r, d.metadata())
}

func (d *discovery) serveOpenIDConfiguration(w http.ResponseWriter, r *http.Request) {
	m := d.metadata()
	m.SubjectTypesSupported = []string{"public"}
	m.IDTokenSigningAlgValuesSupported = d.keys.Algorithms()
	if d.tokenEndpoints {
		m.UserinfoEndpoint = d.base + UserinfoPath
		m.ClaimsSupported = oidcClaimsSupported()
	}
	d.writeJSON(w, r, m)
}

func (d *discovery) serveJWKS(w http.ResponseWriter, _ *http.Request) {
	writePublicJSON(w, d.keys.JWKS(), jwksCacheControl)
}

func (d *discovery) writeJSON(w http.ResponseWriter, r *http.Request, m metadata) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		writeError(w, r, err)
		return
	}
	writePublicJSON(w, buf.Bytes(), discoveryCacheControl)
}

// writePublicJSON writes a cacheable JSON document.
func writePublicJSON(w http.ResponseWriter, body []byte, cacheControl string) {
	h := w.Header()
	h.Set("Content-Type", contentTypeJSON)
	h.Set("Cache-Control", cacheControl)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}
