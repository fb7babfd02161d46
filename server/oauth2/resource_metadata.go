package oauth2

import (
	"bytes"
	"encoding/json"
	"slices"

	"github.com/latchkey-dev/latchkey/server/registry"
)

// ProtectedResourceMetadataPath is where the authorization server serves the RFC 9728
// metadata of each ProtectedResource, by its namespace and name.
const ProtectedResourceMetadataPath = "/.well-known/oauth-protected-resource/{namespace}/{name}"

// ProtectedResourceMetadataKey is the key of the metadata document in the ConfigMap the
// leader writes for each ProtectedResource, for the resource server to serve at its own
// /.well-known/oauth-protected-resource (RFC 9728 3).
const ProtectedResourceMetadataKey = "oauth-protected-resource.json"

// ProtectedResourceMetadata is RFC 9728 2's document of a protected resource.
type ProtectedResourceMetadata struct {
	Resource                      string   `json:"resource"`
	AuthorizationServers          []string `json:"authorization_servers"`
	ScopesSupported               []string `json:"scopes_supported,omitempty"`
	BearerMethodsSupported        []string `json:"bearer_methods_supported"`
	DPoPSigningAlgValuesSupported []string `json:"dpop_signing_alg_values_supported,omitempty"`
	ResourceName                  string   `json:"resource_name,omitempty"`
	ResourceDocumentation         string   `json:"resource_documentation,omitempty"`
}

// ResourceMetadata is the RFC 9728 metadata of the resource: its audience as resource, this
// server (issuer) as its only authorization server, the scopes it owns, the bearer methods
// it declares (default header) and, when the server verifies DPoP proofs, dpopAlgorithms.
func ResourceMetadata(p *registry.ProtectedResource, issuer string, dpopAlgorithms []string) ProtectedResourceMetadata {
	m := ProtectedResourceMetadata{
		Resource: p.Audience, AuthorizationServers: []string{issuer},
		ScopesSupported: slices.Clone(p.Scopes), BearerMethodsSupported: slices.Clone(p.Metadata.BearerMethods),
		DPoPSigningAlgValuesSupported: slices.Clone(dpopAlgorithms),
		ResourceName:                  p.Metadata.Name, ResourceDocumentation: p.Metadata.Documentation,
	}
	if len(m.BearerMethodsSupported) == 0 {
		m.BearerMethodsSupported = []string{"header"}
	}
	return m
}

// Marshal encodes the document as JSON (URLs unescaped), with a final newline.
func (m ProtectedResourceMetadata) Marshal() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
