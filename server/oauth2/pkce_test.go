package oauth2

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/latchkey-dev/latchkey/server/registry"
)

// The example of RFC 7636 Appendix B.
const (
	rfcVerifier  = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	rfcChallenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
)

func TestVerifyCodeChallenge(t *testing.T) {
	tests := []struct {
		name                        string
		challenge, method, verifier string
		want                        bool
	}{
		{"the RFC 7636 example matches", rfcChallenge, PKCES256, rfcVerifier, true},
		{"a plain verifier matches itself", rfcVerifier, PKCEPlain, rfcVerifier, true},
		{"another verifier does not match", rfcChallenge, PKCES256, strings.Repeat("a", 43), false},
		{"the challenge as its own verifier does not match", rfcChallenge, PKCES256, rfcChallenge, false},
		{"a 42-character verifier is refused", rfcVerifier[:42], PKCEPlain, rfcVerifier[:42], false},
		{"a 129-character verifier is refused", strings.Repeat("a", 129), PKCEPlain, strings.Repeat("a", 129), false},
		{"a 128-character verifier is accepted", strings.Repeat("a", 128), PKCEPlain, strings.Repeat("a", 128), true},
		{"reserved characters are refused", strings.Repeat("a", 42) + "+", PKCEPlain, strings.Repeat("a", 42) + "+", false},
		{"an unknown method never matches", rfcVerifier, "S512", rfcVerifier, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, VerifyCodeChallenge(tt.challenge, tt.method, tt.verifier))
		})
	}
}

func TestCheckCodeChallengeAppliesThePolicy(t *testing.T) {
	public := func(policy string) *registry.Client { return &registry.Client{Type: registry.Public, PKCE: policy} }
	confidential := func(policy string) *registry.Client {
		return &registry.Client{Type: registry.Confidential, AuthMethod: AuthMethodBasic, PKCE: policy}
	}
	plain := strings.Repeat("p", 43)
	tests := []struct {
		name              string
		client            *registry.Client
		challenge, method string
		wantMethod        string
		wantErr           bool
	}{
		{"S256 is accepted by default", confidential(""), rfcChallenge, PKCES256, PKCES256, false},
		{"no challenge is refused by default", confidential(""), "", "", "", true},
		{"plain is refused by default", confidential(""), plain, PKCEPlain, "", true},
		{"plain is refused under RequiredS256", confidential("RequiredS256"), plain, PKCEPlain, "", true},
		{"a challenge without a method is plain", confidential("Required"), plain, "", PKCEPlain, false},
		{"plain is accepted under Required", public("Required"), plain, PKCEPlain, PKCEPlain, false},
		{"no challenge is refused under Required", confidential("Required"), "", "", "", true},
		{"a confidential client under Optional may omit PKCE", confidential("Optional"), "", "", "", false},
		{"a public client under Optional may not omit PKCE", public("Optional"), "", "", "", true},
		{"a public client by auth method may not omit PKCE", &registry.Client{AuthMethod: AuthMethodNone, PKCE: "Optional"}, "", "", "", true},
		{"a challenge sent under Optional is checked", confidential("Optional"), "short", PKCES256, "", true},
		{"an S256 challenge of the wrong length is refused", confidential(""), rfcChallenge + "A", PKCES256, "", true},
		{"an unknown method is refused", confidential(""), rfcChallenge, "s256", "", true},
		{"a method without a challenge is refused", confidential("Optional"), "", PKCES256, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method, err := CheckCodeChallenge(tt.client, tt.challenge, tt.method)
			if tt.wantErr {
				assert.ErrorIs(t, err, ErrInvalidRequest)
				return
			}
			assert.NoError(t, err)
			assert.Equal(t, tt.wantMethod, method)
		})
	}
}
