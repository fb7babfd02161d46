package metrics

import (
	"context"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/server/keys"
	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/store"
	"github.com/latchkey-dev/latchkey/server/store/memory"
)

func TestNewRegistersOnceAndRejectsNil(t *testing.T) {
	_, err := New(nil)
	require.Error(t, err)
	reg := prometheus.NewRegistry()
	_, err = New(reg)
	require.NoError(t, err)
	_, err = New(reg)
	require.Error(t, err, "a second registration collides")
}

func TestNilMetricsRecordNothing(t *testing.T) {
	var m *Metrics
	m.TokenIssued("client_credentials", "c", "ns")
	m.OAuthError("token", "invalid_client")
	m.ClientAuthFailure("none")
	m.ObserveRequest("token", 200, time.Second)
	m.RefreshReuseDetected()
	m.KeyRotated()
	m.KeyRetired()
	m.AccessTokenCacheLookup(true)
	m.TokenExchanged(registry.SubjectAccessToken)
	m.BackchannelLogoutDelivery("delivered")
	require.NoError(t, m.WatchRegistry(registry.New()))
	s := memory.New()
	assert.Same(t, store.Store(s), m.InstrumentStore(s, "memory"))
}

func TestCounters(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := New(reg)
	require.NoError(t, err)
	m.TokenIssued("client_credentials", "billing", "payments")
	m.TokenIssued("client_credentials", "billing", "payments")
	m.OAuthError("token", "invalid_client")
	m.ClientAuthFailure("client_secret_basic")
	m.ObserveRequest("token", 401, 10*time.Millisecond)
	m.KeyRotated()
	m.KeyRetired()
	m.KeyRetired()
	m.AccessTokenCacheLookup(true)
	m.AccessTokenCacheLookup(true)
	m.AccessTokenCacheLookup(false)
	m.TokenExchanged(registry.SubjectWorkloadIssuer)
	assert.InDelta(t, 1, sample(t, reg, `latchkey_token_exchanges_total{subject_source="WorkloadIssuer"}`), 0)
	assert.InDelta(t, 0, sample(t, reg, `latchkey_token_exchanges_total{subject_source="IDToken"}`), 0)
	assert.InDelta(t, 2, sample(t, reg, `latchkey_access_token_cache_lookups_total{result="hit"}`), 0)
	assert.InDelta(t, 1, sample(t, reg, `latchkey_access_token_cache_lookups_total{result="miss"}`), 0)
	assert.InDelta(t, 2, sample(t, reg, `latchkey_tokens_issued_total{client_id="billing",client_namespace="payments",grant_type="client_credentials"}`), 0)
	assert.InDelta(t, 1, sample(t, reg, `latchkey_oauth_errors_total{error="invalid_client",handler="token"}`), 0)
	assert.InDelta(t, 1, sample(t, reg, `latchkey_client_auth_failures_total{method="client_secret_basic"}`), 0)
	assert.InDelta(t, 1, sample(t, reg, `latchkey_signing_key_rotations_total`), 0)
	assert.InDelta(t, 2, sample(t, reg, `latchkey_signing_key_retirements_total`), 0)
	assert.InDelta(t, 1, sample(t, reg, `latchkey_request_duration_seconds_count{code="401",handler="token"}`), 0)
}

func TestBackchannelLogoutDeliveriesStartAtZeroAndCountByResult(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := New(reg)
	require.NoError(t, err)
	for _, res := range BackchannelLogoutResults() {
		assert.InDelta(t, 0, sample(t, reg, `latchkey_backchannel_logout_deliveries_total{result="`+res+`"}`), 0, res)
	}
	m.BackchannelLogoutDelivery("retried")
	m.BackchannelLogoutDelivery("retried")
	m.BackchannelLogoutDelivery("failed")
	assert.InDelta(t, 2, sample(t, reg, `latchkey_backchannel_logout_deliveries_total{result="retried"}`), 0)
	assert.InDelta(t, 1, sample(t, reg, `latchkey_backchannel_logout_deliveries_total{result="failed"}`), 0)
}

func TestInstrumentStoreCountsResults(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := New(reg)
	require.NoError(t, err)
	st := m.InstrumentStore(memory.New(), "memory")
	ctx := context.Background()
	h := store.HashOf("a-code-secret")
	require.NoError(t, st.PutCode(ctx, h, store.Code{ClientID: "c"}, time.Minute))
	_, err = st.TakeCode(ctx, h, "c")
	require.NoError(t, err)
	_, err = st.TakeCode(ctx, h, "c")
	require.ErrorIs(t, err, store.ErrAlreadyUsed)
	_, err = st.GetRefresh(ctx, store.HashOf("unknown"))
	require.ErrorIs(t, err, store.ErrNotFound)

	now := time.Now()
	first, second := store.HashOf("rt-1"), store.HashOf("rt-2")
	rt := store.RefreshToken{FamilyID: "f", ClientID: "c", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
	require.NoError(t, st.CreateRefresh(ctx, first, rt))
	_, err = st.RotateRefresh(ctx, first, second, rt, nil, 0)
	require.NoError(t, err)
	_, err = st.RotateRefresh(ctx, first, store.HashOf("rt-3"), rt, nil, 0)
	require.ErrorIs(t, err, store.ErrReused)
	kept, retried := store.HashOf("rt-4"), store.HashOf("rt-5")
	require.NoError(t, st.CreateRefresh(ctx, kept, store.RefreshToken{FamilyID: "g", ClientID: "c", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}))
	_, err = st.RotateRefresh(ctx, kept, retried, rt, []byte("sealed"), time.Minute)
	require.NoError(t, err)
	_, err = st.RotateRefresh(ctx, kept, store.HashOf("rt-6"), rt, []byte("other"), time.Minute)
	require.ErrorIs(t, err, store.ErrConflict)

	assert.InDelta(t, 1, sample(t, reg, `latchkey_store_operations_total{backend="memory",operation="take_code",result="ok"}`), 0)
	assert.InDelta(t, 1, sample(t, reg, `latchkey_store_operations_total{backend="memory",operation="take_code",result="already_used"}`), 0)
	assert.InDelta(t, 1, sample(t, reg, `latchkey_store_operations_total{backend="memory",operation="get_refresh",result="not_found"}`), 0)
	assert.InDelta(t, 1, sample(t, reg, `latchkey_store_operations_total{backend="memory",operation="rotate_refresh",result="reused"}`), 0)
	assert.InDelta(t, 1, sample(t, reg, `latchkey_store_operations_total{backend="memory",operation="rotate_refresh",result="successor"}`), 0,
		"a retry within grace answered with the kept successor")
	assert.InDelta(t, 1, sample(t, reg, `latchkey_refresh_token_reuse_detected_total`), 0)
	assert.Equal(t, "unavailable", Result(store.ErrUnavailable))
	assert.Equal(t, "conflict", Result(store.ErrConflict))
	assert.Equal(t, "error", Result(context.Canceled))
}

func TestRegistryAndKeyGauges(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := New(reg)
	require.NoError(t, err)
	r := registry.New()
	r.PutClient(registry.Client{Source: "ns/a", Namespace: "ns", ID: "a"})
	r.PutUpstreamOIDC(registry.UpstreamOIDC{Name: "corp"})
	r.PutUpstreamLDAP(registry.UpstreamLDAP{Name: "directory"})
	r.PutUpstreamLDAP(registry.UpstreamLDAP{Name: "other-directory"})
	r.PutUpstreamGitHub(registry.UpstreamGitHub{Name: "github"})
	r.PutUpstreamGitHub(registry.UpstreamGitHub{Name: "ghes"})
	require.NoError(t, m.WatchRegistry(r))
	now := time.Now()
	set, err := keys.Generate([]string{keys.ES256}, now.Add(-time.Hour))
	require.NoError(t, err)
	kr := keys.NewKeyring()
	require.NoError(t, kr.Load(set))
	require.NoError(t, m.WatchKeys(kr, func() time.Time { return now }))
	text := scrape(t, reg)
	for _, line := range []string{
		`latchkey_registry_objects{kind="OAuthClient"} 1`,
		`latchkey_registry_objects{kind="Scope"} 0`,
		`latchkey_registry_objects{kind="User"} 0`,
		`latchkey_registry_objects{kind="OIDCIdentityProvider"} 1`,
		`latchkey_registry_objects{kind="LDAPIdentityProvider"} 2`,
		`latchkey_registry_objects{kind="GitHubIdentityProvider"} 2`,
	} {
		assert.Contains(t, text, line+"\n")
	}
	assert.InDelta(t, 3600, sample(t, reg, `latchkey_signing_key_age_seconds{alg="ES256",state="active"}`), 5)
}

func scrape(t *testing.T, reg *prometheus.Registry) string {
	t.Helper()
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	return rec.Body.String()
}

// sample is the value of the series (name and labels as the text format writes them).
func sample(t *testing.T, reg *prometheus.Registry, series string) float64 {
	t.Helper()
	for line := range strings.SplitSeq(scrape(t, reg), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			require.NoError(t, err)
			return f
		}
	}
	t.Fatalf("no series %s", series)
	return 0
}

func TestRegistrySyncedIsATimestampPerKind(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := New(reg)
	require.NoError(t, err)
	before := float64(time.Now().Unix())
	m.RegistrySynced("OAuthClient")
	got := sample(t, reg, `latchkey_registry_last_sync_timestamp_seconds{kind="OAuthClient"}`)
	assert.GreaterOrEqual(t, got, before)
	assert.LessOrEqual(t, got, float64(time.Now().Unix())+1)
	assert.NotContains(t, scrape(t, reg), `kind="User"`, "a kind appears once the registry took one in")
}

func TestRegistryLagIsTheCountOfObjectsNotTakenInAndTheReportedWatermarkPerKind(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := New(reg)
	require.NoError(t, err)
	m.RegistryLag("Scope", 2, 1234)
	assert.InDelta(t, 2.0, sample(t, reg, `latchkey_registry_generation_lag{kind="Scope"}`), 0)
	assert.InDelta(t, 1234.0, sample(t, reg, `latchkey_registry_watermark_resource_version{kind="Scope"}`), 0)
	m.RegistryLag("Scope", 0, 1300)
	assert.InDelta(t, 0.0, sample(t, reg, `latchkey_registry_generation_lag{kind="Scope"}`), 0)
	assert.InDelta(t, 1300.0, sample(t, reg, `latchkey_registry_watermark_resource_version{kind="Scope"}`), 0)
}

func TestEveryStoreMethodHasAnOperationLabel(t *testing.T) {
	// The lookups of store.KnownRecords (no round trip, no error) count in
	// latchkey_store_known_records_total instead.
	known := reflect.TypeFor[store.KnownRecords]().NumMethod()
	assert.Len(t, storeOperations(), reflect.TypeFor[store.Store]().NumMethod()-known,
		"storeOperations lists one operation per method of store.Store, but those of store.KnownRecords")
}

func TestKnownRecordLookupsStartAtZeroAndCountByRecordAndResult(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := New(reg)
	require.NoError(t, err)
	st := m.InstrumentStore(memory.New(), "memory")
	assert.InDelta(t, 0, sample(t, reg, `latchkey_store_known_records_total{backend="memory",record="refresh_token",result="hit"}`), 0)
	_, ok := st.KnownCode(store.HashOf("never issued"))
	assert.False(t, ok)
	assert.InDelta(t, 1, sample(t, reg, `latchkey_store_known_records_total{backend="memory",record="code",result="miss"}`), 0)
	assert.InDelta(t, 0, sample(t, reg, `latchkey_store_known_records_total{backend="memory",record="code",result="hit"}`), 0)
}
