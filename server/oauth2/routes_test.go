package oauth2

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recordingMetrics keeps the endpoint labels of the requests and errors it saw.
type recordingMetrics struct {
	NoMetrics
	mu       sync.Mutex
	observed []string
	errors   []string
	methods  []string
}

func (m *recordingMetrics) ObserveRequest(endpoint string, _ int, _ time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.observed = append(m.observed, endpoint)
}

func (m *recordingMetrics) OAuthError(endpoint, code string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.errors = append(m.errors, endpoint+"/"+code)
}

func (m *recordingMetrics) ClientAuthFailure(method string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.methods = append(m.methods, method)
}

func TestTheRouteTableLabelsEveryRequestFromAFixedSet(t *testing.T) {
	m := NewMux()
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	m.Handle(TokenPath, http.MethodPost, ok)
	m.Handle(RegisteredClientPath, http.MethodGet, ok)
	m.Handle(RegisteredClientPath, http.MethodDelete, ok)
	m.Handle(JWKSPath, http.MethodGet, ok)
	rec := &recordingMetrics{}
	h := Instrumentation{Metrics: rec}.Wrap(m.Handler())

	tests := []struct {
		name, method, path string
		status             int
		endpoint           string
		allow              string
	}{
		{"a seed alias is labelled as its endpoint", http.MethodPost, "/oauth/token", http.StatusNoContent, EndpointToken, ""},
		{"the canonical path is labelled as its endpoint", http.MethodPost, TokenPath, http.StatusNoContent, EndpointToken, ""},
		{"a path with a client ID is labelled registration", http.MethodGet, RegistrationPath + "/some-client", http.StatusNoContent, EndpointRegistration, ""},
		{"a HEAD is answered by the GET handler", http.MethodHead, JWKSPath, http.StatusNoContent, EndpointJWKS, ""},
		{"another method is 405 with the mounted methods, under the endpoint's label", http.MethodGet, "/token", http.StatusMethodNotAllowed, EndpointToken, "POST"},
		{"a PUT that is not mounted is 405", http.MethodPut, RegistrationPath + "/x", http.StatusMethodNotAllowed, EndpointRegistration, "GET, HEAD, DELETE"},
		{"an unknown path is other", http.MethodPost, "/attacker-123", http.StatusNotFound, EndpointOther, ""},
		{"a route that is not mounted is other", http.MethodPost, IntrospectionPath, http.StatusNotFound, EndpointOther, ""},
		{"a path the mux would clean is other and 404", http.MethodPost, "//token", http.StatusNotFound, EndpointOther, ""},
	}
	labels := []string{}
	for _, r := range RouteTable() {
		labels = append(labels, r.Endpoint)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(tt.method, tt.path, nil))
			assert.Equal(t, tt.status, w.Code)
			assert.Equal(t, tt.allow, w.Header().Get("Allow"))
			rec.mu.Lock()
			defer rec.mu.Unlock()
			require.NotEmpty(t, rec.observed)
			got := rec.observed[len(rec.observed)-1]
			assert.Equal(t, tt.endpoint, got)
			assert.True(t, got == EndpointOther || slices.Contains(labels, got))
			if tt.status >= 400 {
				assert.Equal(t, tt.endpoint+"/invalid_request", rec.errors[len(rec.errors)-1])
			}
		})
	}
}

func TestMountingOutsideTheRouteTablePanics(t *testing.T) {
	ok := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	assert.Panics(t, func() { NewMux().Handle("/not/a/route", http.MethodGet, ok) }, "an unknown path")
	assert.Panics(t, func() { NewMux().Handle(TokenPath, http.MethodGet, ok) }, "a method the row does not list")
	assert.Panics(t, func() {
		m := NewMux()
		m.Handle(TokenPath, http.MethodPost, ok)
		m.Handle(TokenPath, http.MethodPost, ok)
	}, "a route mounted twice")
}

func TestClientAuthFailuresAreLabelledByABoundedMethod(t *testing.T) {
	rec := &recordingMetrics{}
	var seen []string
	h := Instrumentation{Metrics: rec}.Wrap(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		for _, method := range []string{"", "attacker", AuthMethodBasic, AuthMethodPost, AuthMethodNone} {
			_, err := NewClientAuth(ClientAuthConfig{}).Authenticate(r.Context(), emptySnapshot(), &TokenRequest{AuthMethod: method, ClientID: "x"})
			require.Error(t, err)
		}
		seen = rec.methods
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, TokenPath, nil))
	assert.Equal(t, []string{"missing", "other", AuthMethodBasic, AuthMethodPost, AuthMethodNone}, seen)
}

func emptySnapshot() *registry.Snapshot { return registry.New().Snapshot() }

func TestOnlyTheBrowserClientsEndpointsAndThePublicDocumentsAnswerCORS(t *testing.T) {
	want := map[string]CORS{
		TokenPath: CORSClientOrigins, UserinfoPath: CORSClientOrigins, RevocationPath: CORSClientOrigins,
		PushedAuthorizationRequestPath: CORSClientOrigins, // a browser app pushes its own requests
		OpenIDConfigurationPath:        CORSAnyOrigin, AuthorizationServerPath: CORSAnyOrigin, JWKSPath: CORSAnyOrigin,
		ProtectedResourceMetadataPath: CORSAnyOrigin, // RFC 9728 metadata is public, like discovery
	}
	for _, r := range RouteTable() {
		assert.Equal(t, want[r.Path], r.CORS, r.Path) // CORSNone for the others
	}
}

func TestTheOriginCheckCostsNothingWithoutAnOriginHeader(t *testing.T) {
	const spa = "https://spa.example"
	var checks []string
	served := 0
	m := NewMux()
	m.AllowOrigins(func(origin string) bool { checks = append(checks, origin); return origin == spa })
	m.Handle(TokenPath, http.MethodPost, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		served++
		w.WriteHeader(http.StatusOK)
	}))
	h := m.Handler()
	send := func(method string, kv ...string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, TokenPath, nil)
		for i := 0; i+1 < len(kv); i += 2 {
			r.Header.Set(kv[i], kv[i+1])
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}

	w := send(http.MethodPost)
	assert.Equal(t, http.StatusOK, w.Code)
	assert.Empty(t, checks, "no Origin header, no origin check")
	assert.Equal(t, http.Header{}, w.Header(), "and no header at all")

	w = send(http.MethodPost, "Origin", spa)
	assert.Equal(t, []string{spa}, checks)
	assert.Equal(t, spa, w.Header().Get("Access-Control-Allow-Origin"))

	served = 0
	w = send(http.MethodOptions, "Origin", "https://evil.example", "Access-Control-Request-Method", http.MethodPost)
	assert.Equal(t, http.StatusMethodNotAllowed, w.Code)
	assert.Empty(t, w.Header().Get("Access-Control-Allow-Origin"))
	w = send(http.MethodOptions, "Origin", spa, "Access-Control-Request-Method", http.MethodPost)
	assert.Equal(t, http.StatusNoContent, w.Code)
	assert.Equal(t, 0, served, "a preflight never reaches the endpoint")

	bare := NewMux()
	bare.Handle(TokenPath, http.MethodPost, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	w = httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodOptions, TokenPath, nil)
	r.Header.Set("Origin", spa)
	r.Header.Set("Access-Control-Request-Method", http.MethodPost)
	bare.Handler().ServeHTTP(w, r)
	assert.Equal(t, http.StatusMethodNotAllowed, w.Code, "a Mux without AllowOrigins allows no client origin")
}
