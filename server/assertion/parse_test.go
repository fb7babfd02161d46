package assertion

import (
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseRefusesWhatIsNotACompactJWSOfClaims(t *testing.T) {
	const okHeader = `{"alg":"ES256","kid":"k"}`
	const okPayload = `{"iss":"a"}`
	for _, tc := range []struct {
		name  string
		token string
		want  error
	}{
		{"an empty string is malformed", "", ErrMalformed},
		{"one part is malformed", "abc", ErrMalformed},
		{"two parts are malformed", "abc.def", ErrMalformed},
		{"four parts are malformed", rawToken(okHeader, okPayload) + ".x", ErrMalformed},
		{"a JWE (five parts) is malformed", "a.b.c.d.e", ErrMalformed},
		{"a token over 16 KiB is malformed", rawToken(okHeader, `{"x":"`+strings.Repeat("a", MaxTokenBytes)+`"}`), ErrMalformed},
		{"a header that is not base64url is malformed", "!!!." + strings.SplitN(rawToken(okHeader, okPayload), ".", 2)[1], ErrMalformed},
		{"a header that is not JSON is malformed", rawToken(`not json`, okPayload), ErrMalformed},
		{"a payload that is not JSON is malformed", rawToken(okHeader, `not json`), ErrMalformed},
		{"a payload that is a JSON array is malformed", rawToken(okHeader, `["iss"]`), ErrMalformed},
		{"a payload that is JSON null is malformed", rawToken(okHeader, `null`), ErrMalformed},
		{"a payload with trailing data is malformed", rawToken(okHeader, `{"iss":"a"}{}`), ErrMalformed},
		{"an empty signature is malformed", strings.TrimSuffix(rawToken(okHeader, okPayload), "c2lnbmF0dXJl"), ErrMalformed},
		{"whitespace around the token is malformed", " " + rawToken(okHeader, okPayload), ErrMalformed},
		{"a JSON-serialized JWS is malformed", `{"payload":"e30","protected":"eyJhbGciOiJFUzI1NiJ9","signature":"c2ln"}`, ErrMalformed},
		{"alg none is refused", rawToken(`{"alg":"none"}`, okPayload), ErrUnsupportedAlgorithm},
		{"alg HS256 is refused", rawToken(`{"alg":"HS256"}`, okPayload), ErrUnsupportedAlgorithm},
		{"alg HS384 is refused", rawToken(`{"alg":"HS384"}`, okPayload), ErrUnsupportedAlgorithm},
		{"alg HS512 is refused", rawToken(`{"alg":"HS512"}`, okPayload), ErrUnsupportedAlgorithm},
		{"an unknown alg is refused", rawToken(`{"alg":"XY999"}`, okPayload), ErrUnsupportedAlgorithm},
		{"a lower-case alg is refused", rawToken(`{"alg":"es256"}`, okPayload), ErrUnsupportedAlgorithm},
		{"a missing alg is refused", rawToken(`{"kid":"k"}`, okPayload), ErrUnsupportedAlgorithm},
		{"a crit header is malformed", rawToken(`{"alg":"ES256","crit":["exp"],"exp":1}`, okPayload), ErrMalformed},
		{"a b64 header is malformed", rawToken(`{"alg":"ES256","b64":false}`, okPayload), ErrMalformed},
		{"a typ that is not a string is malformed", rawToken(`{"alg":"ES256","typ":1}`, okPayload), ErrMalformed},
		{"an iss that is not a string is malformed", rawToken(okHeader, `{"iss":1}`), ErrMalformed},
		{"a sub that is not a string is malformed", rawToken(okHeader, `{"sub":["a"]}`), ErrMalformed},
		{"a jti that is not a string is malformed", rawToken(okHeader, `{"jti":true}`), ErrMalformed},
		{"an aud that is a number is malformed", rawToken(okHeader, `{"aud":1}`), ErrMalformed},
		{"an aud that is null is malformed", rawToken(okHeader, `{"aud":null}`), ErrMalformed},
		{"an aud array holding a number is malformed", rawToken(okHeader, `{"aud":["a",1]}`), ErrMalformed},
		{"an exp that is a string is malformed", rawToken(okHeader, `{"exp":"1760000000"}`), ErrMalformed},
		{"a negative exp is malformed", rawToken(okHeader, `{"exp":-1}`), ErrMalformed},
		{"an exp after year 9999 is malformed", rawToken(okHeader, `{"exp":1e300}`), ErrMalformed},
		{"an exp beyond float64 is malformed", rawToken(okHeader, `{"exp":1e999}`), ErrMalformed},
		{"an nbf that is an object is malformed", rawToken(okHeader, `{"nbf":{}}`), ErrMalformed},
		{"an iat that is null is malformed", rawToken(okHeader, `{"iat":null}`), ErrMalformed},
		{"a kubernetes.io claim that is a string is malformed", rawToken(okHeader, `{"kubernetes.io":"x"}`), ErrMalformed},
		{"a kubernetes.io pod that is a string is malformed", rawToken(okHeader, `{"kubernetes.io":{"pod":"x"}}`), ErrMalformed},
		{"a kubernetes.io serviceaccount name that is a number is malformed", rawToken(okHeader, `{"kubernetes.io":{"serviceaccount":{"name":1}}}`), ErrMalformed},
		{"a kubernetes.io warnafter that is a string is malformed", rawToken(okHeader, `{"kubernetes.io":{"warnafter":"soon"}}`), ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := Parse(tc.token)
			require.ErrorIs(t, err, tc.want)
			assert.Nil(t, tok)
			if len(tc.token) > 8 {
				assert.NotContains(t, err.Error(), tc.token, "an error never contains the token")
			}
		})
	}
}

func TestParseRefusesHMACEvenWhenSignedWithAKey(t *testing.T) {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte(strings.Repeat("k", 32))}, nil)
	require.NoError(t, err)
	jws, err := signer.Sign([]byte(`{"iss":"a"}`))
	require.NoError(t, err)
	s, err := jws.CompactSerialize()
	require.NoError(t, err)
	_, err = Parse(s)
	require.ErrorIs(t, err, ErrUnsupportedAlgorithm)
	assert.Contains(t, err.Error(), `"HS256"`)
}

func TestParseExposesHeaderAndUnverifiedClaims(t *testing.T) {
	k := newTestKey(t, ES256, "kid-1")
	t.Run("a Kubernetes ServiceAccount token reads back every claim", func(t *testing.T) {
		claims := withClaims(func(c map[string]any) {
			c["kubernetes.io"] = map[string]any{
				"namespace":      "ns",
				"serviceaccount": map[string]any{"name": "sa", "uid": "sa-uid"},
				"pod":            map[string]any{"name": "pod", "uid": "pod-uid"},
				"node":           map[string]any{"name": "node", "uid": "node-uid"},
				"warnafter":      testNow().Add(time.Hour).Unix(),
			}
		})
		tok, err := Parse(k.sign(t, claims, nil))
		require.NoError(t, err)
		assert.Equal(t, Header{Algorithm: ES256, KeyID: "kid-1", Type: "JWT"}, tok.Header())
		c := tok.UnverifiedClaims()
		assert.Equal(t, testIssuer, c.Issuer)
		assert.Equal(t, "system:serviceaccount:ns:sa", c.Subject)
		assert.Equal(t, []string{testAudience}, c.Audience)
		assert.Equal(t, testNow().Add(5*time.Minute), c.Expiry)
		assert.Equal(t, testNow(), c.IssuedAt)
		assert.Equal(t, testNow(), c.NotBefore)
		assert.Equal(t, "jti-1", c.ID)
		assert.Equal(t, &KubernetesClaims{
			Namespace:      "ns",
			ServiceAccount: Ref{Name: "sa", UID: "sa-uid"},
			Pod:            &Ref{Name: "pod", UID: "pod-uid"},
			Node:           &Ref{Name: "node", UID: "node-uid"},
			WarnAfter:      testNow().Add(time.Hour),
		}, c.Kubernetes)
		assert.Equal(t, testNow().Unix(), c.Raw["iat"], "integers are int64 in the raw claims")
	})
	t.Run("a string aud is one audience and absent claims are zero", func(t *testing.T) {
		tok, err := Parse(k.sign(t, map[string]any{"aud": "a", "x": 1.5}, nil))
		require.NoError(t, err)
		c := tok.UnverifiedClaims()
		assert.Equal(t, []string{"a"}, c.Audience)
		assert.True(t, c.Expiry.IsZero())
		assert.True(t, c.IssuedAt.IsZero())
		assert.True(t, c.NotBefore.IsZero())
		assert.Nil(t, c.Kubernetes)
		assert.InDelta(t, 1.5, c.Raw["x"], 0)
	})
	t.Run("a fractional exp is cut to whole seconds", func(t *testing.T) {
		tok, err := Parse(k.sign(t, map[string]any{"exp": 1760000000.75}, nil))
		require.NoError(t, err)
		assert.Equal(t, time.Unix(1760000000, 0), tok.UnverifiedClaims().Expiry)
	})
	t.Run("an exp of zero is present, not absent", func(t *testing.T) {
		tok, err := Parse(k.sign(t, map[string]any{"exp": 0}, nil))
		require.NoError(t, err)
		assert.False(t, tok.UnverifiedClaims().Expiry.IsZero())
	})
	for _, alg := range SupportedAlgorithms() {
		t.Run("a token signed with "+alg+" parses", func(t *testing.T) {
			tok, err := Parse(newTestKey(t, alg, "").sign(t, validClaims(), nil))
			require.NoError(t, err)
			assert.Equal(t, alg, tok.Header().Algorithm)
			assert.Empty(t, tok.Header().KeyID)
		})
	}
}
