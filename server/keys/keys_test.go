package keys

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var now = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

func TestSignedTokensVerifyWithThePublishedKeys(t *testing.T) {
	// A replica whose clock is a minute behind the one that made the keys can sign at once.
	set, err := Generate(SupportedAlgorithms(), time.Now().Add(time.Minute))
	require.NoError(t, err)
	kr := NewKeyring()
	require.NoError(t, kr.Load(set))
	assert.Equal(t, SupportedAlgorithms(), kr.Algorithms())

	var published jose.JSONWebKeySet
	require.NoError(t, json.Unmarshal(kr.JWKS(), &published))
	for _, k := range published.Keys {
		assert.True(t, k.IsPublic(), "the JWKS must never hold a private key (%s)", k.KeyID)
	}
	for _, alg := range SupportedAlgorithms() {
		t.Run(alg, func(t *testing.T) {
			sg, err := kr.Signer(alg)
			require.NoError(t, err)
			for _, typ := range []string{TypeAccessToken, TypeJWT} {
				tok, err := sg.Sign(typ, []byte(`{"sub":"x"}`))
				require.NoError(t, err)
				obj, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
				require.NoError(t, err)
				require.Len(t, obj.Signatures, 1)
				h := obj.Signatures[0].Protected
				assert.Equal(t, sg.KeyID, h.KeyID)
				assert.Equal(t, typ, h.ExtraHeaders[jose.HeaderType])
				keys := published.Key(h.KeyID)
				require.Len(t, keys, 1)
				payload, err := obj.Verify(keys[0].Key)
				require.NoError(t, err)
				assert.JSONEq(t, `{"sub":"x"}`, string(payload))
			}
		})
	}
}

func TestSetRoundTripsThroughMarshal(t *testing.T) {
	set, err := Generate(SupportedAlgorithms(), now)
	require.NoError(t, err)
	set.Keys[0].RetireAt = now.Add(time.Hour)
	set.Keys[1].RetireAt, set.Keys[1].RetiredEarly = now, true
	data, err := set.Marshal()
	require.NoError(t, err)
	back, err := Parse(data)
	require.NoError(t, err)
	require.Len(t, back.Keys, len(set.Keys))
	for i := range set.Keys {
		assert.Equal(t, set.Keys[i].ID, back.Keys[i].ID)
		assert.Equal(t, set.Keys[i].Algorithm, back.Keys[i].Algorithm)
		assert.True(t, set.Keys[i].ActiveFrom.Equal(back.Keys[i].ActiveFrom))
		assert.True(t, set.Keys[i].RetireAt.Equal(back.Keys[i].RetireAt))
		assert.Equal(t, set.Keys[i].RetiredEarly, back.Keys[i].RetiredEarly)
		assert.Equal(t, set.Keys[i].Private.Public(), back.Keys[i].Private.Public())
	}
}

func TestParseRefusesUnusableSets(t *testing.T) {
	es, err := NewKey(ES256, now)
	require.NoError(t, err)
	pub, err := jose.JSONWebKey{Key: es.Private.Public(), KeyID: "k", Algorithm: ES256}.MarshalJSON()
	require.NoError(t, err)
	priv, err := jose.JSONWebKey{Key: es.Private, KeyID: "k", Algorithm: ES256}.MarshalJSON()
	require.NoError(t, err)
	tests := []struct {
		name string
		data string
	}{
		{"malformed JSON is refused", `{"keys":`},
		{"a public key alone cannot sign", `{"keys":[{"kid":"k","alg":"ES256","jwk":` + string(pub) + `}]}`},
		{"an algorithm that does not fit the key is refused", `{"keys":[{"kid":"k","alg":"RS256","jwk":` + string(priv) + `}]}`},
		{"a key without kid is refused", `{"keys":[{"kid":"","alg":"ES256","jwk":` + string(priv) + `}]}`},
		{"a key retired early without retireAt is refused", `{"keys":[{"kid":"k","alg":"ES256","retiredEarly":true,"jwk":` + string(priv) + `}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.data))
			assert.Error(t, err)
		})
	}
}

func TestSignerFollowsTheKeySchedule(t *testing.T) {
	oldKey, err := NewKey(ES256, now.Add(-2*time.Hour))
	require.NoError(t, err)
	newKey, err := NewKey(ES256, now)
	require.NoError(t, err)
	newKey.ActiveFrom = now.Add(time.Hour) // published, not yet signing
	kr := NewKeyring()
	kr.now = func() time.Time { return now }
	require.NoError(t, kr.Load(&Set{Keys: []Key{oldKey, newKey}}))

	sg, err := kr.Signer(ES256)
	require.NoError(t, err)
	assert.Equal(t, oldKey.ID, sg.KeyID, "a key signs only from its ActiveFrom time")
	assert.Len(t, kr.PublicKeys().Keys, 2, "a future key is published before it signs")

	kr.now = func() time.Time { return now.Add(2 * time.Hour) }
	sg, err = kr.Signer(ES256)
	require.NoError(t, err)
	assert.Equal(t, newKey.ID, sg.KeyID, "the newest active key signs")

	oldKey.RetireAt, newKey.RetireAt = now, now
	require.NoError(t, kr.Load(&Set{Keys: []Key{oldKey, newKey}}))
	_, err = kr.Signer(ES256)
	assert.ErrorIs(t, err, ErrNoKey, "retired keys never sign")
	_, err = kr.Signer(RS256)
	assert.ErrorIs(t, err, ErrNoKey)
}

func TestEnsureSchedulesNewKeys(t *testing.T) {
	rs, err := NewKey(RS256, now.Add(-time.Hour))
	require.NoError(t, err)
	retired, err := NewKey(ES256, now.Add(-48*time.Hour))
	require.NoError(t, err)
	retired.RetireAt = now.Add(-time.Hour)
	tests := []struct {
		name       string
		set        *Set
		algs       []string
		wantActive time.Time // ActiveFrom of every added key
		wantAdded  int
	}{
		{"the keys of a brand-new set sign at once on every replica", &Set{}, []string{RS256, ES256},
			now.Add(-ClockSkew), 2},
		{"a key added to an existing set is published for a JWKS max-age and the clock skew before it signs",
			&Set{Keys: []Key{rs}}, []string{RS256, EdDSA}, now.Add(JWKSMaxAge + ClockSkew), 1},
		{"a set whose only key of an algorithm retired is still an existing set",
			&Set{Keys: []Key{rs, retired}}, []string{ES256}, now.Add(PublishLead), 1},
		{"an algorithm with an unretired key gets no new key", &Set{Keys: []Key{rs}}, []string{RS256}, time.Time{}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(tt.set.Keys)
			changed, err := tt.set.Ensure(tt.algs, now)
			require.NoError(t, err)
			assert.Equal(t, tt.wantAdded > 0, changed)
			added := tt.set.Keys[before:]
			require.Len(t, added, tt.wantAdded)
			for _, k := range added {
				assert.True(t, tt.wantActive.Equal(k.ActiveFrom), "%s ActiveFrom %s, want %s", k.Algorithm, k.ActiveFrom, tt.wantActive)
			}
		})
	}
}

func TestKeyAddedToAPublishedSetIsPublishedBeforeItSigns(t *testing.T) {
	set, err := Generate([]string{RS256}, now)
	require.NoError(t, err)
	_, err = set.Ensure([]string{RS256, ES256}, now)
	require.NoError(t, err)
	es := set.Keys[1]
	kr := NewKeyring()
	kr.now = func() time.Time { return now }
	require.NoError(t, kr.Load(set))

	published := kr.PublicKeys()
	assert.Len(t, published.Key(es.ID), 1, "published at once")
	_, err = kr.Signer(ES256)
	require.ErrorIs(t, err, ErrNoKey, "not signing while verifiers may hold a JWKS without it")
	assert.Equal(t, []string{RS256}, kr.Algorithms())

	kr.now = func() time.Time { return now.Add(PublishLead) }
	sg, err := kr.Signer(ES256)
	require.NoError(t, err)
	assert.Equal(t, es.ID, sg.KeyID)
}

func TestRetiredKeysLeaveTheJWKS(t *testing.T) {
	old, err := NewKey(ES256, now.Add(-48*time.Hour))
	require.NoError(t, err)
	old.RetireAt = now.Add(-time.Minute)
	retiring, err := NewKey(ES256, now.Add(-24*time.Hour))
	require.NoError(t, err)
	retiring.RetireAt = now.Add(time.Hour)
	current, err := NewKey(ES256, now.Add(-time.Hour))
	require.NoError(t, err)

	jwksIDs := func(kr *Keyring) []string {
		var set jose.JSONWebKeySet
		require.NoError(t, json.Unmarshal(kr.JWKS(), &set))
		var ids []string
		for _, k := range set.Keys {
			ids = append(ids, k.KeyID)
		}
		var pub []string
		for _, k := range kr.PublicKeys().Keys {
			pub = append(pub, k.KeyID)
		}
		assert.ElementsMatch(t, ids, pub, "JWKS and PublicKeys agree")
		return ids
	}
	tests := []struct {
		name string
		at   time.Time
		want []string
	}{
		{"a key retired before the load is not published", now, []string{retiring.ID, current.ID}},
		{"a key leaves the JWKS when its RetireAt passes after the load", now.Add(time.Hour), []string{current.ID}},
		{"later reads keep the rebuilt set", now.Add(2 * time.Hour), []string{current.ID}},
	}
	kr := NewKeyring()
	clock := now
	kr.now = func() time.Time { return clock }
	require.NoError(t, kr.Load(&Set{Keys: []Key{old, retiring, current}}))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock = tt.at
			assert.ElementsMatch(t, tt.want, jwksIDs(kr))
		})
	}

	t.Run("a set whose keys all retired publishes an empty key list", func(t *testing.T) {
		all := NewKeyring()
		all.now = func() time.Time { return now }
		require.NoError(t, all.Load(&Set{Keys: []Key{old}}))
		assert.JSONEq(t, `{"keys":[]}`, string(all.JWKS()))
	})
}

func TestKeyringSetReturnsTheLoadedKeys(t *testing.T) {
	kr := NewKeyring()
	assert.Nil(t, kr.Set(), "nothing loaded")
	set, err := Generate(SupportedAlgorithms(), now)
	require.NoError(t, err)
	require.NoError(t, kr.Load(set))
	got := kr.Set()
	require.NotNil(t, got)
	require.Len(t, got.Keys, len(set.Keys))
	for i := range set.Keys {
		assert.Equal(t, set.Keys[i].ID, got.Keys[i].ID, "the loaded order")
	}
	got.Keys[0].ID = "changed"
	assert.Equal(t, set.Keys[0].ID, kr.Set().Keys[0].ID, "a copy")
}

func TestLoadOrCreateFileKeepsKeysAcrossRestarts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.json")
	first, err := LoadOrCreateFile(path, []string{ES256}, now)
	require.NoError(t, err)
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "the key file holds private keys")

	second, err := LoadOrCreateFile(path, []string{ES256, EdDSA}, now)
	require.NoError(t, err)
	require.Len(t, second.Keys, 2, "a missing algorithm is added")
	assert.Equal(t, first.Keys[0].ID, second.Keys[0].ID, "existing keys are kept")

	third, err := LoadOrCreateFile(path, []string{ES256, EdDSA}, now)
	require.NoError(t, err)
	assert.Equal(t, second.Keys[1].ID, third.Keys[1].ID, "the added key was written back")

	require.NoError(t, os.WriteFile(path, []byte("not json"), 0o600))
	_, err = LoadOrCreateFile(path, []string{ES256}, now)
	assert.Error(t, err, "a corrupt key file is an error, never silently replaced")
}

func FuzzParse(f *testing.F) {
	set, err := Generate([]string{ES256, EdDSA}, now)
	require.NoError(f, err)
	data, err := set.Marshal()
	require.NoError(f, err)
	f.Add(data)
	f.Add([]byte(`{"keys":[]}`))
	f.Add([]byte(`{"keys":[{"kid":"a","alg":"EdDSA","jwk":{"kty":"OKP","crv":"Ed25519","x":"AA"}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse(data)
		if err != nil {
			return
		}
		// Whatever parses must load and sign.
		kr := NewKeyring()
		if err := kr.Load(s); err != nil {
			t.Fatalf("a parsed set failed to load: %v", err)
		}
		for _, k := range s.Keys {
			if err := checkAlgorithm(k.Algorithm, k.Private); err != nil {
				t.Fatalf("parsed key %s does not fit its algorithm: %v", k.ID, err)
			}
		}
	})
}

func BenchmarkSign(b *testing.B) {
	set, err := Generate(SupportedAlgorithms(), time.Now())
	require.NoError(b, err)
	kr := NewKeyring()
	require.NoError(b, kr.Load(set))
	payload := []byte(`{"iss":"http://localhost:8080","sub":"demo","aud":"demo","exp":1,"iat":1,"jti":"abcdefabcdefabcdefabcd","client_id":"demo"}`)
	for _, alg := range SupportedAlgorithms() {
		b.Run(alg, func(b *testing.B) {
			sg, err := kr.Signer(alg)
			require.NoError(b, err)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := sg.Sign(TypeAccessToken, payload); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestEveryES256SignatureVerifies(t *testing.T) {
	// r and s are fixed-width in JWS; about one signature in 128 has a short r or s, so sign many.
	k, err := NewKey(ES256, time.Now())
	require.NoError(t, err)
	cs, err := newCompactSigner(ES256, k.ID, TypeAccessToken, k.Private)
	require.NoError(t, err)
	for i := range 2000 {
		tok, err := cs.sign([]byte(`{"n":` + strconv.Itoa(i) + `}`))
		require.NoError(t, err)
		obj, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.ES256})
		require.NoError(t, err)
		_, err = obj.Verify(k.Private.Public())
		require.NoError(t, err, "signature %d", i)
	}
}
