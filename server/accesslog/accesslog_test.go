package accesslog

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/server/oauth2"
)

func TestLogAccessWritesOneJSONLineTaggedAccess(t *testing.T) {
	var buf bytes.Buffer
	New(&buf).LogAccess(oauth2.AccessRecord{
		Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600)), RequestID: "req-1", Method: "POST",
		Path: "/oauth2/token", Endpoint: "token", Status: 200, Duration: 1500 * time.Microsecond, Bytes: 812,
		ClientAddr: "198.51.100.7",
	})
	line := buf.String()
	require.Equal(t, 1, bytes.Count(buf.Bytes(), []byte("\n")))
	var got map[string]any
	require.NoError(t, json.Unmarshal([]byte(line), &got))
	assert.Equal(t, map[string]any{
		"time": "2026-01-02T02:04:05Z", "log": "access", "request_id": "req-1", "method": "POST",
		"path": "/oauth2/token", "endpoint": "token", "status": float64(200), "duration_seconds": 0.0015,
		"bytes": float64(812), "client_addr": "198.51.100.7",
	}, got)
}
