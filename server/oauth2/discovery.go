package oauth2

import (
	"bytes"
	"encoding/json"
	"net/http"
)

// discovery serves the server metadata (RFC 8414, OpenID Connect Discovery 1.0) and the JWKS.
type discovery struct {
	base       string // the issuer without a trailing slash, for endpoint URLs
	issuer     string
	registry   Registry
	keys       Keyring
	grantTypes []string
}

// metadata describes what the server implements now, nothing more. It has no
// authorization_endpoint and no response types, since there is no authorization endpoint yet.
type metadata struct {
	Issuer                            string   `json:"issuer"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	JWKSURI                           string   `json:"jwks_uri"`
	ScopesSupported                   []string `json:"scopes_supported"`
	ResponseTypesSupported            []string `json:"response_types_supported"`
	GrantTypesSupported               []string `json:"grant_types_supported"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
	// OpenID Connect only.
	SubjectTypesSupported            []string `json:"subject_types_supported,omitempty"`
	IDTokenSigningAlgValuesSupported []string `json:"id_token_signing_alg_values_supported,omitempty"`
}

func (d *discovery) metadata() metadata {
	scopes := d.registry.Snapshot().Scopes()
	names := make([]string, 0, len(scopes))
	for _, sc := range scopes {
		names = append(names, sc.Name)
	}
	return metadata{
		Issuer:                            d.issuer,
		TokenEndpoint:                     d.base + TokenPath,
		JWKSURI:                           d.base + JWKSPath,
		ScopesSupported:                   names,
		ResponseTypesSupported:            []string{},
		GrantTypesSupported:               d.grantTypes,
		TokenEndpointAuthMethodsSupported: []string{AuthMethodBasic, AuthMethodPost},
	}
}

func (d *discovery) serveAuthorizationServer(w http.ResponseWriter, r *http.Request) {
	d.writeJSON(w, r, d.metadata())
}

func (d *discovery) serveOpenIDConfiguration(w http.ResponseWriter, r *http.Request) {
	m := d.metadata()
	m.SubjectTypesSupported = []string{"public"}
	m.IDTokenSigningAlgValuesSupported = d.keys.Algorithms()
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
