package dpop

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"testing"

	"github.com/latchkey-dev/latchkey/server/store/memory"
)

// FuzzVerify feeds arbitrary proofs and URIs: Verify never panics and refuses with
// ErrInvalidProof or ErrUseNonce, or fails on the request URI (the server's, never the client's).
func FuzzVerify(f *testing.F) {
	f.Add("eyJhbGciOiJub25lIn0.e30.", "https://id.example.com/oauth2/token")
	f.Add("a.b.c", "https://id.example.com/")
	f.Add("eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7fX0.e30.AAAA", "http://[::1]:80/x")
	f.Add("", "")
	v, err := NewVerifier(Config{Replay: memory.New()})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, proof, uri string) {
		_, err := v.Verify(context.Background(), Request{Proof: proof, Method: "POST", URI: uri, AccessToken: "t"})
		if err == nil {
			t.Fatalf("an unsigned fuzz proof was accepted")
		}
		if _, uriErr := NormalizeURI(uri); uriErr == nil && !errors.Is(err, ErrInvalidProof) {
			t.Fatalf("a bad proof for a valid URI was refused with %v, not ErrInvalidProof", err)
		}
	})
}

// FuzzValidThumbprint: ValidThumbprint never panics and accepts exactly the canonical base64url
// encodings of 32 bytes.
func FuzzValidThumbprint(f *testing.F) {
	f.Add("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs")
	f.Add("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs=")
	f.Add("NzbLsXh8uDCcd+6MNwXF4W/7noWXFZAfHkxZsRGC9Xs")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		// The decoder skips CR and LF, so the oracle encodes again: only the canonical form of
		// 32 bytes is a thumbprint.
		b, err := base64.RawURLEncoding.Strict().DecodeString(s)
		want := err == nil && len(b) == sha256.Size && base64.RawURLEncoding.EncodeToString(b) == s
		if got := ValidThumbprint(s); got != want {
			t.Fatalf("ValidThumbprint(%q) = %v, want %v", s, got, want)
		}
	})
}
