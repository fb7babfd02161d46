package assertion

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestVerifyAppliesEveryPolicyRule(t *testing.T) {
	k := newTestKey(t, ES256, "kid-1")
	keys := staticKeys(t, k)
	policy := func(edit func(*Policy)) Policy {
		p := testPolicy()
		if edit != nil {
			edit(&p)
		}
		return p
	}
	later := func(d time.Duration) func() time.Time { return func() time.Time { return testNow().Add(d) } }
	for _, tc := range []struct {
		name   string
		claims map[string]any
		policy Policy
		want   error
	}{
		{"a token meeting the policy is accepted", validClaims(), policy(nil), nil},

		{"another issuer is refused", withClaims(func(c map[string]any) { c["iss"] = "https://other.example" }), policy(nil), ErrIssuer},
		{"an issuer differing by a trailing slash is refused", withClaims(func(c map[string]any) { c["iss"] = testIssuer + "/" }), policy(nil), ErrIssuer},
		{"no issuer is refused", withClaims(func(c map[string]any) { delete(c, "iss") }), policy(nil), ErrIssuer},

		{"an aud string equal to an accepted audience is accepted", withClaims(func(c map[string]any) { c["aud"] = testAudience }), policy(nil), nil},
		{"an aud array holding an accepted audience among others is accepted",
			withClaims(func(c map[string]any) { c["aud"] = []string{"https://kubernetes.default.svc", testAudience} }), policy(nil), nil},
		{"an aud holding no accepted audience is refused", withClaims(func(c map[string]any) { c["aud"] = "https://other.example" }), policy(nil), ErrAudience},
		{"no aud is refused", withClaims(func(c map[string]any) { delete(c, "aud") }), policy(nil), ErrAudience},
		{"an empty aud array is refused", withClaims(func(c map[string]any) { c["aud"] = []string{} }), policy(nil), ErrAudience},
		{"with ExactAudience, one accepted audience is accepted", validClaims(), policy(func(p *Policy) { p.ExactAudience = true }), nil},
		{"with ExactAudience, the API server's audience beside ours is refused",
			withClaims(func(c map[string]any) { c["aud"] = []string{"https://kubernetes.default.svc", testAudience} }),
			policy(func(p *Policy) { p.ExactAudience = true }), ErrAudience},
		{"with ExactAudience, our audience twice is refused",
			withClaims(func(c map[string]any) { c["aud"] = []string{testAudience, testAudience} }),
			policy(func(p *Policy) { p.ExactAudience = true }), ErrAudience},
		{"with ExactAudience, no aud is refused", withClaims(func(c map[string]any) { delete(c, "aud") }),
			policy(func(p *Policy) { p.ExactAudience = true }), ErrAudience},

		{"the required subject is accepted", validClaims(), policy(func(p *Policy) { p.Subject = "system:serviceaccount:ns:sa" }), nil},
		{"another subject is refused", validClaims(), policy(func(p *Policy) { p.Subject = "system:serviceaccount:ns:other" }), ErrSubject},
		{"no subject is refused when one is required", withClaims(func(c map[string]any) { delete(c, "sub") }),
			policy(func(p *Policy) { p.Subject = "client" }), ErrSubject},

		{"no exp is refused", withClaims(func(c map[string]any) { delete(c, "exp") }), policy(nil), ErrExpired},
		{"a past exp is refused", validClaims(), policy(func(p *Policy) { p.Now = later(6 * time.Minute) }), ErrExpired},
		{"an exp within the default leeway is accepted", validClaims(), policy(func(p *Policy) { p.Now = later(5*time.Minute + 29*time.Second) }), nil},
		{"an exp at the end of the default leeway is refused", validClaims(), policy(func(p *Policy) { p.Now = later(5*time.Minute + 30*time.Second) }), ErrExpired},
		{"an exp within a negative (no) leeway is refused", validClaims(),
			policy(func(p *Policy) { p.Now = later(5 * time.Minute); p.Leeway = -1 }), ErrExpired},
		{"an exp within a custom leeway is accepted", validClaims(),
			policy(func(p *Policy) { p.Now = later(6 * time.Minute); p.Leeway = 2 * time.Minute }), nil},

		{"an nbf in the future beyond the leeway is refused", validClaims(), policy(func(p *Policy) { p.Now = later(-time.Minute) }), ErrNotYetValid},
		{"an nbf in the future within the leeway is accepted", validClaims(), policy(func(p *Policy) { p.Now = later(-20 * time.Second) }), nil},
		{"an iat in the future beyond the leeway is refused",
			withClaims(func(c map[string]any) { delete(c, "nbf"); c["iat"] = testNow().Add(time.Minute).Unix() }), policy(nil), ErrNotYetValid},

		{"a lifetime within MaxLifetime is accepted", validClaims(), policy(func(p *Policy) { p.MaxLifetime = 5 * time.Minute }), nil},
		{"a lifetime over MaxLifetime is refused", validClaims(), policy(func(p *Policy) { p.MaxLifetime = 4 * time.Minute }), ErrLifetime},
		{"no iat is refused under MaxLifetime", withClaims(func(c map[string]any) { delete(c, "iat") }),
			policy(func(p *Policy) { p.MaxLifetime = time.Hour }), ErrLifetime},
		{"no iat is accepted without MaxLifetime", withClaims(func(c map[string]any) { delete(c, "iat") }), policy(nil), nil},

		{"a jti is accepted when required", validClaims(), policy(func(p *Policy) { p.RequireJTI = true }), nil},
		{"no jti is refused when required", withClaims(func(c map[string]any) { delete(c, "jti") }), policy(func(p *Policy) { p.RequireJTI = true }), ErrClaims},
		{"an empty jti is refused when required", withClaims(func(c map[string]any) { c["jti"] = "" }), policy(func(p *Policy) { p.RequireJTI = true }), ErrClaims},
		{"no jti is accepted when not required", withClaims(func(c map[string]any) { delete(c, "jti") }), policy(nil), nil},

		{"an extended ServiceAccount token is refused when asked",
			withClaims(func(c map[string]any) {
				c["kubernetes.io"] = map[string]any{"namespace": "ns", "warnafter": testNow().Unix()}
			}),
			policy(func(p *Policy) { p.RefuseExtendedKubernetesTokens = true }), ErrLifetime},
		{"an extended ServiceAccount token is accepted when not asked",
			withClaims(func(c map[string]any) {
				c["kubernetes.io"] = map[string]any{"namespace": "ns", "warnafter": testNow().Unix()}
			}),
			policy(nil), nil},
		{"a ServiceAccount token without warnafter is accepted when extended ones are refused",
			withClaims(func(c map[string]any) { c["kubernetes.io"] = map[string]any{"namespace": "ns"} }),
			policy(func(p *Policy) { p.RefuseExtendedKubernetesTokens = true }), nil},

		{"no issuer in the policy is a policy error", validClaims(), policy(func(p *Policy) { p.Issuer = "" }), ErrPolicy},
		{"no audience in the policy is a policy error", validClaims(), policy(func(p *Policy) { p.Audiences = nil }), ErrPolicy},
		{"an empty audience in the policy is a policy error", validClaims(), policy(func(p *Policy) { p.Audiences = []string{""} }), ErrPolicy},
		{"a leeway over MaxLeeway is a policy error", validClaims(), policy(func(p *Policy) { p.Leeway = time.Hour }), ErrPolicy},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := k.sign(t, tc.claims, nil)
			tok, err := Parse(s)
			require.NoError(t, err)
			got, err := Verify(context.Background(), tok, keys, tc.policy)
			if tc.want != nil {
				require.ErrorIs(t, err, tc.want)
				assert.Nil(t, got)
				assert.NotContains(t, err.Error(), s)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.claims["iss"], got.Issuer)
			assert.Equal(t, tok.UnverifiedClaims().Expiry, got.Expiry)
		})
	}
}

func TestVerifyReturnsTheClaims(t *testing.T) {
	k := newTestKey(t, EdDSA, "k")
	claims := withClaims(func(c map[string]any) {
		c["kubernetes.io"] = map[string]any{"namespace": "ns", "serviceaccount": map[string]any{"name": "sa", "uid": "u"}}
	})
	tok, err := Parse(k.sign(t, claims, nil))
	require.NoError(t, err)
	got, err := Verify(context.Background(), tok, staticKeys(t, k), testPolicy())
	require.NoError(t, err)
	assert.Equal(t, &Claims{
		Issuer: testIssuer, Subject: "system:serviceaccount:ns:sa", Audience: []string{testAudience},
		Expiry: testNow().Add(5 * time.Minute), IssuedAt: testNow(), NotBefore: testNow(), ID: "jti-1",
		Kubernetes: &KubernetesClaims{Namespace: "ns", ServiceAccount: Ref{Name: "sa", UID: "u"}},
		Raw:        tok.UnverifiedClaims().Raw,
	}, got)
}

func TestVerifyBoundsEchoedClaims(t *testing.T) {
	k := newTestKey(t, ES256, "k")
	long := strings.Repeat("é", 200)
	tok, err := Parse(k.sign(t, withClaims(func(c map[string]any) { c["iss"] = long }), nil))
	require.NoError(t, err)
	_, err = Verify(context.Background(), tok, staticKeys(t, k), testPolicy())
	require.ErrorIs(t, err, ErrIssuer)
	assert.Less(t, len(err.Error()), 150, "an echoed claim is cut to 64 bytes")
	assert.Contains(t, err.Error(), "...")
}

func TestVerifyChoosesKeys(t *testing.T) {
	es1 := newTestKey(t, ES256, "es-1")
	es2 := newTestKey(t, ES256, "es-2")
	rs := newTestKey(t, RS256, "rs")
	ed := newTestKey(t, EdDSA, "ed")
	es384 := newTestKey(t, ES384, "es384")
	noKID := func(k testKey) testKey { k.public.KeyID = ""; return k }
	withAlg := func(k testKey, alg string) testKey { k.public.Algorithm = alg; return k }
	withUse := func(k testKey, use string) testKey { k.public.Use = use; return k }
	withKID := func(k testKey, kid string) testKey { k.public.KeyID = kid; return k }
	signingAs := func(k testKey, alg string) testKey { k.alg = alg; return k }

	for _, tc := range []struct {
		name   string
		signer testKey
		keys   []testKey
		want   error
	}{
		{"the key named by kid verifies", es2, []testKey{es1, es2, rs, ed}, nil},
		{"an unknown kid finds no key", withKID(es1, "nope"), []testKey{es1, es2}, ErrNoKey},
		{"a known kid with another key's signature is refused", withKID(es2, "es-1"), []testKey{es1}, ErrSignature},
		{"without kid every key that fits is tried", noKID(es2), []testKey{es1, rs, ed, es2}, nil},
		{"without kid and no key of the right type, no key is found", noKID(ed), []testKey{es1, rs}, ErrNoKey},
		{"without kid a signature by none of the keys is refused", noKID(newTestKey(t, ES256, "")), []testKey{es1, es2}, ErrSignature},
		{"a key whose kid names no key of the token's alg is not used", withKID(rs, "es-1"), []testKey{es1}, ErrNoKey},
		{"a key whose alg differs from the header's is not used", es1, []testKey{withAlg(es1, ES384)}, ErrNoKey},
		{"a key without alg fits", es1, []testKey{withAlg(es1, "")}, nil},
		{"a key for encryption is not used", es1, []testKey{withUse(es1, "enc")}, ErrNoKey},
		{"a key without use fits", es1, []testKey{withUse(es1, "")}, nil},
		{"a P-384 key does not verify ES256", withKID(es1, "es384"), []testKey{withAlg(es384, "")}, ErrNoKey},
		{"an RSA key verifies RS256", rs, []testKey{rs}, nil},
		{"an RSA key verifies PS256", signingAs(rs, PS256), []testKey{withAlg(rs, "")}, nil},
		{"an RSA key verifies RS512", signingAs(rs, RS512), []testKey{withAlg(rs, "")}, nil},
		{"an RSA key marked RS256 does not verify PS256", signingAs(rs, PS256), []testKey{rs}, ErrNoKey},
		{"an EC key does not verify EdDSA", signingAs(withKID(ed, "es-1"), EdDSA), []testKey{withAlg(es1, "")}, ErrNoKey},
		{"an Ed25519 key verifies EdDSA", ed, []testKey{ed}, nil},
		{"an empty key set finds no key", es1, nil, ErrNoKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := Parse(tc.signer.sign(t, validClaims(), nil))
			require.NoError(t, err)
			_, err = Verify(context.Background(), tok, staticKeys(t, tc.keys...), testPolicy())
			if tc.want == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tc.want)
		})
	}
}

// keySetFunc is a KeySet of a function.
type keySetFunc func(ctx context.Context, kid string) ([]jose.JSONWebKey, error)

func (f keySetFunc) Keys(ctx context.Context, kid string) ([]jose.JSONWebKey, error) {
	return f(ctx, kid)
}

func TestVerifyDefendsAgainstKeySets(t *testing.T) {
	k := newTestKey(t, ES256, "k")
	tok, err := Parse(k.sign(t, validClaims(), nil))
	require.NoError(t, err)
	ctx := context.Background()
	t.Run("a key set error becomes ErrKeysUnavailable without its detail", func(t *testing.T) {
		_, err := Verify(ctx, tok, keySetFunc(func(context.Context, string) ([]jose.JSONWebKey, error) {
			return nil, errors.New("dial tcp 10.0.0.1:443: connection refused")
		}), testPolicy())
		require.ErrorIs(t, err, ErrKeysUnavailable)
		assert.NotContains(t, err.Error(), "10.0.0.1")
	})
	t.Run("keys of another kid than asked are not used", func(t *testing.T) {
		_, err := Verify(ctx, tok, keySetFunc(func(context.Context, string) ([]jose.JSONWebKey, error) {
			pub := k.public
			pub.KeyID = "other"
			return []jose.JSONWebKey{pub}, nil
		}), testPolicy())
		require.ErrorIs(t, err, ErrNoKey)
	})
	t.Run("a private or symmetric key from a key set is not used", func(t *testing.T) {
		_, err := Verify(ctx, tok, keySetFunc(func(context.Context, string) ([]jose.JSONWebKey, error) {
			return []jose.JSONWebKey{{Key: k.private, KeyID: "k"}, {Key: []byte("secret"), KeyID: "k"}}, nil
		}), testPolicy())
		require.ErrorIs(t, err, ErrNoKey)
	})
	t.Run("a nil key set finds no key", func(t *testing.T) {
		_, err := Verify(ctx, tok, nil, testPolicy())
		require.ErrorIs(t, err, ErrNoKey)
	})
	t.Run("a nil token is malformed", func(t *testing.T) {
		_, err := Verify(ctx, nil, staticKeys(t, k), testPolicy())
		require.ErrorIs(t, err, ErrMalformed)
	})
	t.Run("a token the claims refuse costs no key lookup", func(t *testing.T) {
		p := testPolicy()
		p.Issuer = "https://other.example"
		_, err := Verify(ctx, tok, keySetFunc(func(context.Context, string) ([]jose.JSONWebKey, error) {
			t.Fatal("keys looked up")
			return nil, nil
		}), p)
		require.ErrorIs(t, err, ErrIssuer)
	})
}

func TestVerifyAppliesClaimRulesAfterTheSignature(t *testing.T) {
	k := newTestKey(t, ES256, "k")
	rules, err := CompileClaimRules([]ClaimRule{{Expression: `claims.sub.startsWith("system:serviceaccount:ns:")`, Message: "wrong namespace"}})
	require.NoError(t, err)
	p := testPolicy()
	p.Rules = rules
	tok, err := Parse(k.sign(t, validClaims(), nil))
	require.NoError(t, err)
	_, err = Verify(context.Background(), tok, staticKeys(t, k), p)
	require.NoError(t, err)

	tok, err = Parse(k.sign(t, withClaims(func(c map[string]any) { c["sub"] = "system:serviceaccount:other:sa" }), nil))
	require.NoError(t, err)
	_, err = Verify(context.Background(), tok, staticKeys(t, k), p)
	require.ErrorIs(t, err, ErrClaims)
	assert.Contains(t, err.Error(), "wrong namespace")

	forged := newTestKey(t, ES256, "k")
	tok, err = Parse(forged.sign(t, withClaims(func(c map[string]any) { c["sub"] = "system:serviceaccount:other:sa" }), nil))
	require.NoError(t, err)
	_, err = Verify(context.Background(), tok, staticKeys(t, k), p)
	require.ErrorIs(t, err, ErrSignature, "the signature is checked before the rules")
}

func BenchmarkVerify(b *testing.B) {
	for _, alg := range []string{ES256, RS256} {
		b.Run(alg, func(b *testing.B) {
			k := newTestKey(b, alg, "k")
			keys := staticKeys(b, newTestKey(b, alg, "other"), k)
			s := k.sign(b, validClaims(), nil)
			p := testPolicy()
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				tok, err := Parse(s)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := Verify(ctx, tok, keys, p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestCheckClaimsAppliesThePolicyButNotTheSignature(t *testing.T) {
	other := newTestKey(t, ES256, "k2") // in no key set
	tests := []struct {
		name   string
		claims map[string]any
		want   error
	}{
		{"a token signed by any key passes when its claims do", validClaims(), nil},
		{"another audience is refused", withClaims(func(c map[string]any) { c["aud"] = "https://elsewhere.example" }), ErrAudience},
		{"an expired token is refused", withClaims(func(c map[string]any) { c["exp"] = testNow().Add(-time.Hour).Unix() }), ErrExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := Parse(other.sign(t, tt.claims, nil))
			require.NoError(t, err)
			c, err := CheckClaims(tok, testPolicy())
			if tt.want != nil {
				require.ErrorIs(t, err, tt.want)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tok.UnverifiedClaims().Subject, c.Subject)
		})
	}
	t.Run("an invalid policy is refused before anything", func(t *testing.T) {
		tok, err := Parse(other.sign(t, validClaims(), nil))
		require.NoError(t, err)
		_, err = CheckClaims(tok, Policy{})
		require.ErrorIs(t, err, ErrPolicy)
	})
}
