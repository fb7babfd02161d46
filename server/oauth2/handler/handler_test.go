package handler

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/server/keys"
	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/registry"
)

func TestNewHandlerChecksConfig(t *testing.T) {
	reg, kr := registry.New(), keys.NewKeyring()
	tests := []struct {
		name string
		cfg  Config
	}{
		{"a registry is required", Config{Issuer: testIssuer, Keys: kr}},
		{"keys are required", Config{Issuer: testIssuer, Registry: reg}},
		{"an issuer is required", Config{Registry: reg, Keys: kr}},
		{"a relative issuer is refused", Config{Issuer: "latchkey.example", Registry: reg, Keys: kr}},
		{"an issuer with a query is refused", Config{Issuer: "https://latchkey.example?x=1", Registry: reg, Keys: kr}},
		{"an unknown default algorithm is refused", Config{Issuer: testIssuer, Registry: reg, Keys: kr, DefaultAlgorithm: "HS256"}},
		{"a negative body limit is refused", Config{Issuer: testIssuer, Registry: reg, Keys: kr, MaxBodyBytes: -1}},
		{"a negative lifetime is refused", Config{Issuer: testIssuer, Registry: reg, Keys: kr, AccessTokenLifetime: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			assert.Error(t, err)
		})
	}
}

func TestMaxBodyBytesIsConfigurable(t *testing.T) {
	kr, err := testKeyring()
	require.NoError(t, err)
	h, err := New(Config{Issuer: testIssuer, Registry: testRegistry(), Keys: kr, MaxBodyBytes: 64})
	require.NoError(t, err)
	req := httptest.NewRequest(http.MethodPost, oauth2.TokenPath, strings.NewReader("grant_type=client_credentials&scope="+strings.Repeat("x", 64)))
	req.Header.Set("Content-Type", formType)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	assert.Equal(t, http.StatusRequestEntityTooLarge, rec.Code)
}

func TestAnUnloadedKeyringIsTemporarilyUnavailable(t *testing.T) {
	h, err := New(Config{Issuer: testIssuer, Registry: testRegistry(), Keys: keys.NewKeyring()})
	require.NoError(t, err)
	req := httptest.NewRequest(http.MethodPost, oauth2.TokenPath, strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", formType)
	req.Header.Set("Authorization", basic(billingID, billingSecret))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
	assert.JSONEq(t, `{"error":"temporarily_unavailable","error_description":"The authorization server is temporarily unable to handle the request."}`,
		rec.Body.String())
}
