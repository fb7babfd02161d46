package observability

import (
	"context"
	"encoding/hex"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
)

// grpcReceiver is an in-process OTLP/gRPC traces receiver keeping the span names by trace ID.
type grpcReceiver struct {
	collectortrace.UnimplementedTraceServiceServer
	mu    sync.Mutex
	names map[string][]string
}

func (r *grpcReceiver) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				id := hex.EncodeToString(s.GetTraceId())
				r.names[id] = append(r.names[id], s.GetName())
			}
		}
	}
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

func TestTheBinaryExportsSpansByOTLPOverGRPC(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	rec := &grpcReceiver{names: map[string][]string{}}
	gs := grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(gs, rec)
	go func() { _ = gs.Serve(ln) }()
	t.Cleanup(gs.Stop)

	s, err := startServer(t, filepath.Join(t.TempDir(), "latchkey.log"),
		"--otlp-protocol", "grpc", "--otlp-endpoint", "http://"+ln.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { s.Stop(10 * time.Second) })

	const traceID = "5b8efff798038103d269b633813fc60c"
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, s.URL()+"/.well-known/jwks.json", nil)
	require.NoError(t, err)
	req.Header.Set("traceparent", "00-"+traceID+"-eee19b7ec3c1b174-01")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	eventually(t, "the JWKS request's span at the gRPC receiver", func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return len(rec.names[traceID]) > 0
	})
	rec.mu.Lock()
	defer rec.mu.Unlock()
	assert.Equal(t, []string{"GET /.well-known/jwks.json"}, rec.names[traceID])
}
