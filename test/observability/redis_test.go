package observability

import (
	"encoding/hex"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/latchkey-dev/latchkey/internal/harness"
)

// TestRedisCommandsAreSpansOfTheStoreOperation runs the binary with the Redis store: a failed
// client authentication counts in the store (the brute-force guard), and go-redis's
// instrumentation makes each Redis command a child span of the store operation's span.
func TestRedisCommandsAreSpansOfTheStoreOperation(t *testing.T) {
	redis := harness.NewRedis(t)
	s, err := startServer(t, filepath.Join(t.TempDir(), "latchkey.log"),
		"--store", "redis", "--redis-address", redis.Addr(), "--otlp-endpoint", receiver.url())
	require.NoError(t, err)
	t.Cleanup(func() { s.Stop(10 * time.Second) })

	const traceID = "7d2c3a4b5e6f708192a3b4c5d6e7f809"
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, s.URL()+"/oauth2/token",
		strings.NewReader("grant_type=client_credentials"))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("traceparent", "00-"+traceID+"-a1b2c3d4e5f60718-01")
	req.SetBasicAuth(clientID, "wrong-secret-R2")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = res.Body.Close()
	require.Equal(t, http.StatusUnauthorized, res.StatusCode)

	var store, command *tracepb.Span
	eventually(t, "a store span with a Redis command span under it", func() bool {
		spans := receiver.trace(traceID)
		for _, s := range spans {
			if strings.HasPrefix(s.GetName(), "store ") {
				store = s
			}
		}
		for _, s := range spans {
			if store != nil && hex.EncodeToString(s.GetParentSpanId()) == hex.EncodeToString(store.GetSpanId()) {
				command = s
			}
		}
		return command != nil
	})
	assert.Equal(t, "redis", attrOf(store, "latchkey.store.backend"))
	assert.NotContains(t, command.GetName(), "store ")
	for _, kv := range command.GetAttributes() {
		assert.NotContains(t, kv.GetValue().GetStringValue(), "wrong-secret-R2", "attribute %s", kv.GetKey())
	}
	t.Logf("store span %q, Redis command span %q", store.GetName(), command.GetName())
}
