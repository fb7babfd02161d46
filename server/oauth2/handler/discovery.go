package handler

import (
	"slices"

	"bytes"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/latchkey-dev/latchkey/server/assertion"

	"github.com/latchkey-dev/latchkey/server/dpop"
	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/registry"
)

// discovery serves the server metadata (RFC 8414, OpenID Connect Discovery 1.0) and the JWKS.
// What it advertises comes from the route table as mounted: an endpoint is in the metadata iff
// it answers.
type discovery struct {
	base       string // the issuer without a trailing slash, for endpoint URLs
	issuer     string
	registry   Registry
	keys       Keyring
	grantTypes []string
	mounted    func(path string) bool
	// assertionMethods are the client authentication methods by client assertion the server
	// verifies (service_account_token, private_key_jwt), advertised beside the secret ones.
	assertionMethods []string
	// backchannelLogout: logout tokens are sent (OIDC Back-Channel Logout 1.0 2.1).
	backchannelLogout bool
	// requirePAR: every authorization request must be pushed (RFC 9126 5).
	requirePAR bool
	// dpop: the token endpoint and userinfo check DPoP proofs (RFC 9449 5.1).
	dpop bool
}

func newDiscovery(issuer string, reg Registry, kr Keyring, grantTypes, assertionMethods []string, mux *oauth2.Mux) *discovery {
	return &discovery{
		base: strings.TrimSuffix(issuer, "/"), issuer: issuer, registry: reg, keys: kr,
		grantTypes: grantTypes, mounted: mux.Mounted, assertionMethods: assertionMethods,
	}
}

// Mount adds the discovery documents and the JWKS to the mux.
func (d *discovery) Mount(m *oauth2.Mux) {
	m.HandleFunc(oauth2.OpenIDConfigurationPath, http.MethodGet, d.serveOpenIDConfiguration)
	m.HandleFunc(oauth2.AuthorizationServerPath, http.MethodGet, d.serveAuthorizationServer)
	m.HandleFunc(oauth2.JWKSPath, http.MethodGet, d.serveJWKS)
	m.HandleFunc(oauth2.ProtectedResourceMetadataPath, http.MethodGet, d.serveResourceMetadata)
}

// serveResourceMetadata serves the RFC 9728 metadata of the ProtectedResource named by the
// path, when it holds its audience (a resource that lost its audience to an earlier one
// decides nothing and has none): 404 JSON otherwise.
func (d *discovery) serveResourceMetadata(w http.ResponseWriter, r *http.Request) {
	snap := d.registry.Snapshot()
	p, ok := snap.ProtectedResourceBySource(r.PathValue("namespace") + "/" + r.PathValue("name"))
	if ok {
		holder, held := snap.ProtectedResource(p.Audience)
		ok = held && holder == p
	}
	if !ok {
		oauth2.WriteError(w, r, oauth2.ErrInvalidRequest.WithStatus(http.StatusNotFound).WithDescription("No protected resource of this name."))
		return
	}
	body, err := oauth2.ResourceMetadata(p, d.issuer, d.dpopAlgorithms()).Marshal()
	if err != nil {
		oauth2.WriteError(w, r, err)
		return
	}
	oauth2.WritePublicJSON(w, body, oauth2.DiscoveryCacheControl)
}

// dpopAlgorithms are the DPoP proof algorithms the server verifies; nil without DPoP.
func (d *discovery) dpopAlgorithms() []string {
	if !d.dpop {
		return nil
	}
	return dpop.AlgorithmNames()
}

// metadata describes what the server implements now, nothing more. Without a Store there is no
// authorization endpoint, so no authorization_endpoint and no response types.
type metadata struct {
	Issuer                string `json:"issuer"`
	AuthorizationEndpoint string `json:"authorization_endpoint,omitempty"`
	TokenEndpoint         string `json:"token_endpoint"`
	// DeviceAuthorizationEndpoint is RFC 8628 4's.
	DeviceAuthorizationEndpoint string `json:"device_authorization_endpoint,omitempty"`
	// RFC 9126 5.
	PushedAuthorizationRequestEndpoint string   `json:"pushed_authorization_request_endpoint,omitempty"`
	RequirePushedAuthorizationRequests bool     `json:"require_pushed_authorization_requests,omitempty"`
	JWKSURI                            string   `json:"jwks_uri"`
	ScopesSupported                    []string `json:"scopes_supported"`
	ResponseTypesSupported             []string `json:"response_types_supported"`
	ResponseModesSupported             []string `json:"response_modes_supported,omitempty"`
	GrantTypesSupported                []string `json:"grant_types_supported"`
	TokenEndpointAuthMethodsSupported  []string `json:"token_endpoint_auth_methods_supported"`
	// The algorithms of client assertions (private_key_jwt, service_account_token).
	TokenEndpointAuthSigningAlgValuesSupported []string `json:"token_endpoint_auth_signing_alg_values_supported,omitempty"`
	RegistrationEndpoint                       string   `json:"registration_endpoint,omitempty"`
	CodeChallengeMethodsSupported              []string `json:"code_challenge_methods_supported,omitempty"`
	DPoPSigningAlgValuesSupported              []string `json:"dpop_signing_alg_values_supported,omitempty"`
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
	// OpenID Connect Back-Channel Logout 1.0 (OpenID Connect only): logout tokens are sent,
	// with sid.
	BackchannelLogoutSupported        bool `json:"backchannel_logout_supported,omitempty"`
	BackchannelLogoutSessionSupported bool `json:"backchannel_logout_session_supported,omitempty"`
	// OpenID Connect RP-Initiated Logout 1.0.
	EndSessionEndpoint string `json:"end_session_endpoint,omitempty"`
}

// url is the endpoint URL of a mounted path, else "".
func (d *discovery) url(path string) string {
	if !d.mounted(path) {
		return ""
	}
	return d.base + path
}

func (d *discovery) metadata() metadata {
	snap := d.registry.Snapshot()
	scopes := snap.Scopes()
	names := make([]string, 0, len(scopes))
	for _, sc := range scopes {
		names = append(names, sc.Name)
	}
	basicAndPost := []string{oauth2.AuthMethodBasic, oauth2.AuthMethodPost}
	m := metadata{
		Issuer:                            d.issuer,
		TokenEndpoint:                     d.url(oauth2.TokenPath),
		DeviceAuthorizationEndpoint:       d.url(oauth2.DeviceAuthorizationPath),
		JWKSURI:                           d.url(oauth2.JWKSPath),
		ScopesSupported:                   names,
		ResponseTypesSupported:            []string{},
		GrantTypesSupported:               d.grantTypes,
		TokenEndpointAuthMethodsSupported: basicAndPost,
		RegistrationEndpoint:              d.url(oauth2.RegistrationPath),
	}
	if m.AuthorizationEndpoint = d.url(oauth2.AuthorizePath); m.AuthorizationEndpoint != "" {
		m.ResponseTypesSupported = []string{"code"}
		m.ResponseModesSupported = []string{"query"}
		m.CodeChallengeMethodsSupported = []string{oauth2.PKCES256, oauth2.PKCEPlain}
		m.AuthorizationResponseISSParameterSupported = true
	}
	if m.PushedAuthorizationRequestEndpoint = d.url(oauth2.PushedAuthorizationRequestPath); m.PushedAuthorizationRequestEndpoint != "" {
		m.RequirePushedAuthorizationRequests = d.requirePAR
	}
	if m.RevocationEndpoint = d.url(oauth2.RevocationPath); m.RevocationEndpoint != "" {
		m.RevocationEndpointAuthMethodsSupported = []string{oauth2.AuthMethodBasic, oauth2.AuthMethodPost, oauth2.AuthMethodNone}
	}
	if m.IntrospectionEndpoint = d.url(oauth2.IntrospectionPath); m.IntrospectionEndpoint != "" {
		m.IntrospectionEndpointAuthMethodsSupported = basicAndPost
	}
	if d.userEndpoints() {
		// Public clients use the code, password and refresh_token grants by client_id alone;
		// OIDC's built-in scopes and the user claims come with the user endpoints.
		m.TokenEndpointAuthMethodsSupported = []string{oauth2.AuthMethodBasic, oauth2.AuthMethodPost, oauth2.AuthMethodNone}
		m.ScopesSupported = oauth2.ScopesSupported(snap)
	}
	m.DPoPSigningAlgValuesSupported = d.dpopAlgorithms()
	if len(d.assertionMethods) > 0 {
		m.TokenEndpointAuthMethodsSupported = append(m.TokenEndpointAuthMethodsSupported, d.assertionMethods...)
		m.TokenEndpointAuthSigningAlgValuesSupported = assertion.SupportedAlgorithms()
		if m.RevocationEndpoint != "" {
			m.RevocationEndpointAuthMethodsSupported = append(m.RevocationEndpointAuthMethodsSupported, d.assertionMethods...)
		}
		if m.IntrospectionEndpoint != "" {
			m.IntrospectionEndpointAuthMethodsSupported = append(slices.Clone(m.IntrospectionEndpointAuthMethodsSupported), d.assertionMethods...)
		}
	}
	return m
}

// userEndpoints reports whether the endpoints of user tokens are mounted (the server has a
// store): the authorization endpoint, userinfo, revocation and introspection.
func (d *discovery) userEndpoints() bool {
	return d.mounted(oauth2.AuthorizePath) || d.mounted(oauth2.UserinfoPath)
}

func (d *discovery) serveAuthorizationServer(w http.ResponseWriter, r *http.Request) {
	d.writeJSON(w, r, d.metadata())
}

func (d *discovery) serveOpenIDConfiguration(w http.ResponseWriter, r *http.Request) {
	m := d.metadata()
	m.SubjectTypesSupported = []string{"public"}
	m.IDTokenSigningAlgValuesSupported = d.keys.Algorithms()
	if m.UserinfoEndpoint = d.url(oauth2.UserinfoPath); m.UserinfoEndpoint != "" {
		m.ClaimsSupported = oauth2.ClaimsSupported()
	}
	if d.backchannelLogout && d.userEndpoints() {
		m.BackchannelLogoutSupported, m.BackchannelLogoutSessionSupported = true, true
	}
	m.EndSessionEndpoint = d.url(oauth2.LogoutPath)
	d.writeJSON(w, r, m)
}

func (d *discovery) serveJWKS(w http.ResponseWriter, _ *http.Request) {
	oauth2.WritePublicJSON(w, d.keys.JWKS(), oauth2.JWKSCacheControl)
}

func (d *discovery) writeJSON(w http.ResponseWriter, r *http.Request, m metadata) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		oauth2.WriteError(w, r, err)
		return
	}
	oauth2.WritePublicJSON(w, buf.Bytes(), oauth2.DiscoveryCacheControl)
}

// ResourceMetadata returns what renders a ProtectedResource's RFC 9728 metadata exactly as a
// handler of cfg serves it at oauth2.ProtectedResourceMetadataPath (its issuer, and its DPoP
// algorithms when it verifies proofs: with a Store): for the ConfigMap a cluster's leader
// writes for the resource server.
func ResourceMetadata(cfg Config) func(p *registry.ProtectedResource) ([]byte, error) {
	d := &discovery{issuer: cfg.Issuer, dpop: cfg.Store != nil}
	return func(p *registry.ProtectedResource) ([]byte, error) {
		return oauth2.ResourceMetadata(p, d.issuer, d.dpopAlgorithms()).Marshal()
	}
}
