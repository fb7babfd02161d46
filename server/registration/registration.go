package registration

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"slices"
	"strings"
	"time"

	"github.com/latchkey-dev/latchkey/server/oauth2/register"
	"github.com/latchkey-dev/latchkey/server/redirecturi"
	"github.com/latchkey-dev/latchkey/server/registry"
)

// IDPrefix starts every dynamically registered client ID.
const IDPrefix = "dyn-"

// idRandomChars is how many random base32 characters follow IDPrefix.
const idRandomChars = 10

// secretBytes is the entropy of client secrets and registration access tokens.
const secretBytes = 32

// Defaults the controllers give an OAuthClient for what registration cannot set.
const (
	defaultPKCE    = "RequiredS256"
	defaultConsent = "Remember"
)

// NewClientID returns a new random client ID: IDPrefix and 10 characters of [a-z2-7].
func NewClientID() string {
	return IDPrefix + strings.ToLower(rand.Text()[:idRandomChars])
}

// NewSecret returns 32 random bytes in unpadded base64url: a client secret or a registration
// access token.
func NewSecret() string {
	b := make([]byte, secretBytes)
	_, _ = rand.Read(b) // never fails (crypto/rand crashes the program instead)
	return base64.RawURLEncoding.EncodeToString(b)
}

// HashToken is the hash kept of a registration access token (or client secret).
func HashToken(token string) [sha256.Size]byte { return sha256.Sum256([]byte(token)) }

// TokenMatches reports, in constant time, whether token hashes to hash.
func TokenMatches(hash [sha256.Size]byte, token string) bool {
	h := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(h[:], hash[:]) == 1
}

// RegistryClient converts registered metadata into the registry's value, with the
// controllers' defaults for the rest: Registered (the consent page marks the client
// unverified), never Introspection. secretHash is nil for a public client.
func RegistryClient(source, namespace, id string, created time.Time, m *register.ClientMetadata, secretHash *[sha256.Size]byte) registry.Client {
	c := registry.Client{
		Source:                 source,
		Namespace:              namespace,
		Created:                created,
		ID:                     id,
		Type:                   registry.Confidential,
		DisplayName:            m.ClientName,
		GrantTypes:             slices.Clone(m.GrantTypes),
		RedirectURIs:           slices.Clone(m.RedirectURIs),
		PostLogoutRedirectURIs: slices.Clone(m.PostLogoutRedirectURIs),
		Scopes:                 slices.Clone(m.Scopes),
		Audiences:              []string{id},
		AuthMethod:             m.TokenEndpointAuthMethod,
		PKCE:                   defaultPKCE,
		Consent:                defaultConsent,
		Registered:             true, // as controllers/convert sets it from the OAuthClient's label

		BackchannelLogoutURI:               m.BackchannelLogoutURI,
		BackchannelLogoutSessionRequired:   m.BackchannelLogoutSessionRequired,
		RequirePushedAuthorizationRequests: m.RequirePushedAuthorizationRequests,
	}
	if m.Public() {
		c.Type = registry.Public
		c.AllowedOrigins = redirecturi.Origins(m.RedirectURIs) // convert.AllowedOrigins' default
		return c
	}
	if secretHash != nil {
		c.SecretHash, c.HasSecret = *secretHash, true
	}
	return c
}

// CloneMetadata returns a copy of m sharing no slice with it.
func CloneMetadata(m register.ClientMetadata) register.ClientMetadata {
	m.RedirectURIs = slices.Clone(m.RedirectURIs)
	m.PostLogoutRedirectURIs = slices.Clone(m.PostLogoutRedirectURIs)
	m.GrantTypes = slices.Clone(m.GrantTypes)
	m.Scopes = slices.Clone(m.Scopes)
	return m
}
