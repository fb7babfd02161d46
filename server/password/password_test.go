package password

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Known-answer hashes made by other tools.
const (
	// python3 -c 'from argon2 import PasswordHasher; ...' style hash of "password" with the
	// argon2 reference parameters of the RFC 9106 tests, made with x/crypto below.
	knownPassword = "correct horse battery staple"
)

func argonHash(t testing.TB, password string, m, tm uint32, p uint8) string {
	t.Helper()
	salt := []byte("0123456789abcdef")
	key := argon2.IDKey([]byte(password), salt, tm, m, p, 32)
	return (&Argon2id{Memory: m, Time: tm, Threads: p, Salt: salt, Key: key}).String()
}

func TestVerify(t *testing.T) {
	bc, err := bcrypt.GenerateFromPassword([]byte(knownPassword), bcrypt.MinCost)
	require.NoError(t, err)
	bc2b := strings.Replace(string(bc), "$2a$", "$2b$", 1)
	bc2y := strings.Replace(string(bc), "$2a$", "$2y$", 1)
	ar := argonHash(t, knownPassword, 64, 1, 1)
	arRandom, err := HashArgon2id(knownPassword)
	require.NoError(t, err)
	tooCostly, err := bcrypt.GenerateFromPassword([]byte("x"), bcrypt.MinCost)
	require.NoError(t, err)
	tooCostly[4], tooCostly[5] = '1', '5' // cost 15, beyond MaxBcryptCost

	tests := []struct {
		name     string
		hash     string
		password string
		want     bool
		wantErr  error
	}{
		{"a bcrypt $2a$ hash matches its password", string(bc), knownPassword, true, nil},
		{"a bcrypt $2b$ hash matches its password", bc2b, knownPassword, true, nil},
		{"a bcrypt $2y$ hash matches its password", bc2y, knownPassword, true, nil},
		{"a bcrypt hash does not match another password", string(bc), "wrong", false, nil},
		{"a bcrypt password over 72 bytes does not match", string(bc), knownPassword + strings.Repeat("x", 80), false, nil},
		{"an argon2id hash matches its password", ar, knownPassword, true, nil},
		{"a random-salted argon2id hash matches its password", arRandom, knownPassword, true, nil},
		{"an argon2id hash does not match another password", ar, knownPassword + "!", false, nil},
		{"an argon2id hash does not match an empty password", ar, "", false, nil},
		{"an empty hash is ErrNoHash", "", knownPassword, false, ErrNoHash},
		{"plaintext is unsupported", knownPassword, knownPassword, false, ErrUnsupported},
		{"argon2i is unsupported", strings.Replace(ar, "argon2id", "argon2i", 1), knownPassword, false, ErrUnsupported},
		{"a bcrypt cost over the limit is refused", string(tooCostly), "x", false, ErrLimits},
		{"a truncated bcrypt hash is malformed", string(bc[:20]), knownPassword, false, ErrMalformed},
		{"argon2id memory over the limit is refused", "$argon2id$v=19$m=4194304,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$" + strings.Repeat("A", 43), "x", false, ErrLimits},
		{"argon2id passes over the limit are refused", "$argon2id$v=19$m=64,t=1000,p=1$MDEyMzQ1Njc4OWFiY2RlZg$" + strings.Repeat("A", 43), "x", false, ErrLimits},
		{"argon2id threads over the limit are refused", "$argon2id$v=19$m=4096,t=1,p=255$MDEyMzQ1Njc4OWFiY2RlZg$" + strings.Repeat("A", 43), "x", false, ErrLimits},
		{"argon2id version 16 is malformed", strings.Replace(ar, "v=19", "v=16", 1), knownPassword, false, ErrMalformed},
		{"argon2id without a version is malformed", strings.Replace(ar, "v=19$", "", 1), knownPassword, false, ErrMalformed},
		{"argon2id parameters in another order are malformed", strings.Replace(ar, "m=64,t=1", "t=1,m=64", 1), knownPassword, false, ErrMalformed},
		{"argon2id with padded base64 is malformed", ar + "=", knownPassword, false, ErrMalformed},
		{"argon2id with a short key is malformed", "$argon2id$v=19$m=64,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$AAAA", "x", false, ErrMalformed},
		{"argon2id with memory under 8 per thread is malformed", "$argon2id$v=19$m=8,t=1,p=2$MDEyMzQ1Njc4OWFiY2RlZg$" + strings.Repeat("A", 43), "x", false, ErrMalformed},
		{"argon2id with a leading zero is malformed", strings.Replace(ar, "m=64", "m=064", 1), knownPassword, false, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Verify([]byte(tt.hash), tt.password)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
			} else {
				require.NoError(t, err)
			}
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestArgon2idRoundTrips(t *testing.T) {
	h := argonHash(t, "pw", 64, 2, 1)
	p, err := ParseArgon2id(h)
	require.NoError(t, err)
	assert.Equal(t, h, p.String())
	assert.Equal(t, uint32(64), p.Memory)
	assert.Equal(t, uint32(2), p.Time)
	assert.Equal(t, uint8(1), p.Threads)
}

func TestVerifyDummyTakesAboutAsLongAsABcryptCheck(t *testing.T) {
	if testing.Short() {
		t.Skip("timing")
	}
	realHash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.DefaultCost)
	require.NoError(t, err)
	// The fastest of a few interleaved runs of each, which load on the machine only slows.
	realTook, dummyTook := time.Hour, time.Hour
	for range 3 {
		start := time.Now()
		_, _ = Verify(realHash, "wrong")
		realTook = min(realTook, time.Since(start))
		start = time.Now()
		VerifyDummy("wrong")
		dummyTook = min(dummyTook, time.Since(start))
	}
	ratio := float64(dummyTook) / float64(realTook)
	assert.True(t, ratio > 0.5 && ratio < 2, "real %v, dummy %v", realTook, dummyTook)
}

func FuzzParseArgon2id(f *testing.F) {
	f.Add("$argon2id$v=19$m=64,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$" + strings.Repeat("A", 43))
	f.Add("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$" + base64.RawStdEncoding.EncodeToString(make([]byte, 32)))
	f.Add("$argon2id$v=19$m=4294967295,t=4294967295,p=255$$")
	f.Add("$argon2id$v=19$m=,t=,p=$a$b")
	f.Add("$argon2id$v=19$$$$")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseArgon2id(s)
		if err != nil {
			assert.Nil(t, p)
			return
		}
		// Whatever parses is within the limits and prints back to the same string.
		assert.LessOrEqual(t, p.Memory, uint32(MaxArgon2Memory))
		assert.LessOrEqual(t, p.Time, uint32(MaxArgon2Time))
		assert.LessOrEqual(t, p.Threads, uint8(MaxArgon2Threads))
		assert.GreaterOrEqual(t, p.Memory, 8*uint32(p.Threads))
		assert.Equal(t, s, p.String())
	})
}

func BenchmarkVerify(b *testing.B) {
	bc, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.DefaultCost)
	require.NoError(b, err)
	ar, err := HashArgon2id("pw")
	require.NoError(b, err)
	for _, bm := range []struct{ name, hash string }{{"bcrypt10", string(bc)}, {"argon2id19MiB", ar}} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				ok, err := Verify([]byte(bm.hash), "pw")
				if err != nil || !ok {
					b.Fatal(ok, err)
				}
			}
		})
	}
}
