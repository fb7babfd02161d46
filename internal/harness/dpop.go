package harness

import (
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/json"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// DPoPProof signs an ES256 DPoP proof (RFC 9449) with key, its public key in the jwk header,
// for method at htu issued at iat, with a random jti; the claims in extra are added (or replace
// the defaults).
func DPoPProof(key *ecdsa.PrivateKey, method, htu string, iat time.Time, extra map[string]any) (string, error) {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{}).WithType("dpop+jwt").WithHeader("jwk", jose.JSONWebKey{Key: key.Public()}))
	if err != nil {
		return "", err
	}
	c := map[string]any{"jti": rand.Text(), "htm": method, "htu": htu, "iat": iat.Unix()}
	for n, v := range extra {
		c[n] = v
	}
	body, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	jws, err := signer.Sign(body)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}
