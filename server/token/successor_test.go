package token

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// chain returns two refresh tokens of one family: old and its successor.
func chain(t testing.TB) (old, next string) {
	t.Helper()
	fam, err := NewFamilyID()
	require.NoError(t, err)
	old, err = NewRefreshToken(fam)
	require.NoError(t, err)
	next, err = NewRefreshToken(fam)
	require.NoError(t, err)
	return old, next
}

func TestSealedSuccessor(t *testing.T) {
	old, next := chain(t)
	other, stranger := chain(t)
	sealed, err := SealSuccessor(old, next, "client-a\x00client_secret_basic")
	require.NoError(t, err)
	assert.NotContains(t, string(sealed), next[23:], "the token is not readable in what the store keeps")

	got, err := OpenSuccessor(old, sealed, "client-a\x00client_secret_basic")
	require.NoError(t, err)
	assert.Equal(t, next, got)

	tampered := append([]byte(nil), sealed...)
	tampered[len(tampered)-1] ^= 1
	for _, tt := range []struct {
		name    string
		old     string
		sealed  []byte
		binding string
	}{
		{"another client cannot open it", old, sealed, "client-b\x00client_secret_basic"},
		{"the same client authenticated another way cannot open it", old, sealed, "client-a\x00client_secret_post"},
		{"another token cannot open it", other, sealed, "client-a\x00client_secret_basic"},
		{"the successor itself cannot open it", next, sealed, "client-a\x00client_secret_basic"},
		{"a tampered seal does not open", old, tampered, "client-a\x00client_secret_basic"},
		{"a truncated seal does not open", old, sealed[:20], "client-a\x00client_secret_basic"},
		{"an empty seal does not open", old, nil, "client-a\x00client_secret_basic"},
		{"a token of another shape cannot open it", "not-a-refresh-token", sealed, "client-a\x00client_secret_basic"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := OpenSuccessor(tt.old, tt.sealed, tt.binding)
			require.ErrorIs(t, err, errSealedSuccessor)
			assert.Empty(t, got)
		})
	}

	t.Run("a sealed token of another family does not open", func(t *testing.T) {
		s, err := SealSuccessor(old, stranger, "b")
		require.NoError(t, err)
		_, err = OpenSuccessor(old, s, "b")
		require.ErrorIs(t, err, errSealedSuccessor)
	})
	t.Run("two seals of one token differ", func(t *testing.T) {
		again, err := SealSuccessor(old, next, "client-a\x00client_secret_basic")
		require.NoError(t, err)
		assert.NotEqual(t, sealed, again)
	})
}

func FuzzOpenSuccessor(f *testing.F) {
	old, next := chain(f)
	sealed, err := SealSuccessor(old, next, "c")
	require.NoError(f, err)
	f.Add(sealed, "c")
	f.Add([]byte{successorVersion}, "")
	f.Add([]byte{}, "c")
	f.Fuzz(func(t *testing.T, b []byte, binding string) {
		got, err := OpenSuccessor(old, b, binding)
		if err != nil {
			require.Empty(t, got)
			return
		}
		// Only the genuine seal opens.
		require.Equal(t, next, got)
		require.Equal(t, "c", binding)
	})
}

func BenchmarkSealSuccessor(b *testing.B) {
	old, next := chain(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := SealSuccessor(old, next, "client-a\x00client_secret_basic"); err != nil {
			b.Fatal(err)
		}
	}
}
