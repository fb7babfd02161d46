package dpop

import (
	"context"
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
