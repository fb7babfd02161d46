package handler

import (
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/server/metrics"
	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/store/memory"
)

var _ oauth2.Metrics = (*metrics.Metrics)(nil)

// scrapedSample is one sample line of the Prometheus text format.
type scrapedSample struct {
	name   string
	labels map[string]string
}

var (
	sampleLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? \S+$`)
	labelPair  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)
)

func scrape(t *testing.T, reg *prometheus.Registry) (string, []scrapedSample) {
	t.Helper()
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	text := rec.Body.String()
	var out []scrapedSample
	for line := range strings.SplitSeq(text, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m := sampleLine.FindStringSubmatch(line)
		require.NotNil(t, m, "unparsable line %q", line)
		s := scrapedSample{name: m[1], labels: map[string]string{}}
		for _, p := range labelPair.FindAllStringSubmatch(m[2], -1) {
			s.labels[p[1]] = p[2]
		}
		out = append(out, s)
	}
	return text, out
}

func TestMetricsScrapeHasBoundedLabels(t *testing.T) {
	kr, err := testKeyring()
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	require.NoError(t, err)
	registry := testRegistry()
	require.NoError(t, m.WatchRegistry(registry))
	require.NoError(t, m.WatchKeys(kr, nil))
	h, err := New(Config{
		Issuer: testIssuer, Registry: registry, Keys: kr,
		Store: m.InstrumentStore(memory.New(), "memory"), Metrics: m,
	})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	b := make([]byte, 8)
	_, _ = rand.Read(b)
	attacker := "attacker-" + hex.EncodeToString(b)
	attackerSecret := "attacker-secret-" + hex.EncodeToString(b)
	var issued []string
	for range 3 {
		res := do(t, srv, request{contentType: formType, authorization: basic(billingID, billingSecret), body: "grant_type=client_credentials"})
		require.Equal(t, http.StatusOK, res.status)
		issued = append(issued, res.body["access_token"].(string))
	}
	rv, err := http.NewRequest(http.MethodPost, srv.URL+oauth2.RevocationPath, strings.NewReader("token="+issued[1]))
	require.NoError(t, err)
	rv.Header.Set("Content-Type", formType)
	rv.Header.Set("Authorization", basic(billingID, billingSecret))
	revoked, err := srv.Client().Do(rv)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, revoked.Body)
	_ = revoked.Body.Close()
	require.Equal(t, http.StatusOK, revoked.StatusCode)
	bad := []request{
		{contentType: formType, authorization: basic(attacker, attackerSecret), body: "grant_type=client_credentials"},
		{contentType: formType, body: url.Values{"grant_type": {"client_credentials"}, "client_id": {attacker}, "client_secret": {attackerSecret}}.Encode()},
		{contentType: formType, authorization: basic(billingID, "wrong-"+attackerSecret), body: "grant_type=client_credentials"},
		{contentType: formType, authorization: basic(billingID, billingSecret), body: "grant_type=" + attacker},
		{path: oauth2.RevocationPath, contentType: formType, authorization: basic(attacker, attackerSecret), body: "token=" + issued[0]},
		{path: "/" + attacker, contentType: formType, body: "x=y"},
		{method: http.MethodGet, path: oauth2.TokenPath + "/" + attacker},
	}
	for _, rq := range bad {
		res := do(t, srv, rq)
		require.GreaterOrEqual(t, res.status, 400, "%+v", rq)
	}
	res, err := srv.Client().Get(srv.URL + oauth2.JWKSPath)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, res.Body)
	_ = res.Body.Close()

	text, samples := scrape(t, reg)
	for _, secret := range append([]string{attacker, attackerSecret, billingSecret}, issued...) {
		assert.NotContains(t, text, secret)
	}
	wantLabels := map[string][]string{
		"latchkey_tokens_issued_total":          {"client_id", "client_namespace", "grant_type"},
		"latchkey_oauth_errors_total":           {"error", "handler"},
		"latchkey_client_auth_failures_total":   {"method"},
		"latchkey_request_duration_seconds_sum": {"code", "handler"},
		"latchkey_store_operations_total":       {"backend", "operation", "result"},
		"latchkey_registry_objects":             {"kind"},
		"latchkey_signing_key_age_seconds":      {"alg", "state"},
	}
	endpoints := []string{"token", "authorize", "login", "consent", "userinfo", "revocation", "introspection", "registration", "discovery", "jwks", "static", "other"}
	seen := map[string]bool{}
	for _, s := range samples {
		seen[s.name] = true
		if want, ok := wantLabels[s.name]; ok {
			got := make([]string, 0, len(s.labels))
			for k := range s.labels {
				got = append(got, k)
			}
			slices.Sort(got)
			assert.Equal(t, want, got, "labels of %s", s.name)
		}
		if ep, ok := s.labels["handler"]; ok {
			assert.Contains(t, endpoints, ep)
		}
		if id, ok := s.labels["client_id"]; ok {
			assert.Equal(t, billingID, id)
		}
	}
	for name := range wantLabels {
		assert.True(t, seen[name], "no sample of %s", name)
	}
	assert.True(t, seen["latchkey_refresh_token_reuse_detected_total"])
	assert.Contains(t, text, `latchkey_tokens_issued_total{client_id="billing-service",client_namespace="payments",grant_type="client_credentials"} 3`)
	assert.Contains(t, text, `latchkey_client_auth_failures_total{method="client_secret_basic"} 3`)
	assert.Contains(t, text, `latchkey_client_auth_failures_total{method="client_secret_post"} 1`)
	assert.Contains(t, text, `latchkey_oauth_errors_total{error="invalid_client",handler="token"} 3`)
	assert.Contains(t, text, `latchkey_oauth_errors_total{error="unsupported_grant_type",handler="token"} 1`)
	assert.Contains(t, text, `latchkey_oauth_errors_total{error="invalid_request",handler="other"} 2`)
	assert.Contains(t, text, `latchkey_oauth_errors_total{error="invalid_client",handler="revocation"} 1`)
	assert.Contains(t, text, `latchkey_request_duration_seconds_count{code="200",handler="jwks"} 1`)
}
