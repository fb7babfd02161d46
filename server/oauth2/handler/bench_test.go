package handler

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/server/keys"
	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/registry"
)

// discardWriter is a reusable ResponseWriter that keeps only the status.
type discardWriter struct {
	header http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.header }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(status int)      { w.status = status }

// rewindBody is a request body that can be read again.
type rewindBody struct{ bytes.Reader }

func (*rewindBody) Close() error { return nil }

// BenchmarkTokenEndpoint measures a whole client_credentials request (client_secret_basic,
// form body, two scopes) through the handler's ServeHTTP, without the network.
func BenchmarkTokenEndpoint(b *testing.B) {
	reg := testRegistry()
	for _, alg := range keys.SupportedAlgorithms() {
		reg.PutClient(registry.Client{
			Source: "bench/" + alg, Namespace: "bench", ID: "bench-" + alg, Type: registry.Confidential,
			GrantTypes: []string{"client_credentials"}, Scopes: []string{"read:projects", "admin:read"},
			Audiences: []string{"https://api.example.com"}, SigningAlgorithm: alg,
			SecretHash: registry.HashSecret([]byte(commonSecret)), HasSecret: true,
		})
	}
	kr, err := testKeyring()
	require.NoError(b, err)
	h, err := New(Config{Issuer: testIssuer, Registry: reg, Keys: kr, Now: time.Now})
	require.NoError(b, err)

	payload := []byte("grant_type=client_credentials&scope=read%3Aprojects+admin%3Aread")
	for _, alg := range keys.SupportedAlgorithms() {
		b.Run(alg, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodPost, oauth2.TokenPath, nil)
			req.Header.Set("Content-Type", formType)
			req.Header.Set("Authorization", basic("bench-"+alg, commonSecret))
			req.ContentLength = int64(len(payload))
			body := &rewindBody{}
			w := &discardWriter{header: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				body.Reset(payload)
				req.Body = body
				clear(w.header)
				h.ServeHTTP(w, req)
				if w.status != http.StatusOK {
					b.Fatalf("status %d", w.status)
				}
			}
		})
	}
}
