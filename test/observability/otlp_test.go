package observability

import (
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// otlpReceiver is an in-process OTLP/HTTP traces receiver: it keeps every span it is sent.
type otlpReceiver struct {
	srv   *http.Server
	ln    net.Listener
	mu    sync.Mutex
	spans []*tracepb.Span
	// service is the service.name of the resource of the last export.
	service string
}

func startOTLPReceiver() *otlpReceiver {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	r := &otlpReceiver{ln: ln}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		var export collectortrace.ExportTraceServiceRequest
		if err == nil {
			err = proto.Unmarshal(body, &export)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		for _, rs := range export.GetResourceSpans() {
			for _, kv := range rs.GetResource().GetAttributes() {
				if kv.GetKey() == "service.name" {
					r.service = kv.GetValue().GetStringValue()
				}
			}
			for _, ss := range rs.GetScopeSpans() {
				r.spans = append(r.spans, ss.GetSpans()...)
			}
		}
		r.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		b, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
		_, _ = w.Write(b)
	})
	r.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10e9}
	go func() { _ = r.srv.Serve(ln) }()
	return r
}

// url is the receiver's base URL, as --otlp-endpoint takes it (the exporter adds /v1/traces).
func (r *otlpReceiver) url() string { return "http://" + r.ln.Addr().String() }

func (r *otlpReceiver) close() { _ = r.srv.Close() }

// trace is the spans received of the trace with the ID (hex).
func (r *otlpReceiver) trace(id string) []*tracepb.Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*tracepb.Span
	for _, s := range r.spans {
		if hex.EncodeToString(s.GetTraceId()) == id {
			out = append(out, s)
		}
	}
	return out
}

func attrOf(s *tracepb.Span, key string) string {
	for _, kv := range s.GetAttributes() {
		if kv.GetKey() == key {
			return kv.GetValue().GetStringValue()
		}
	}
	return ""
}

func TestTheBinaryExportsTheSpansOfATokenRequestByOTLP(t *testing.T) {
	const traceID, parentID = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
	res := tokenRequest(t, "", "traceparent", "00-"+traceID+"-"+parentID+"-01", "X-Request-Id", "otlp-req-1")
	require.Equal(t, http.StatusOK, res.StatusCode)
	var spans []*tracepb.Span
	eventually(t, "the token request's spans at the receiver", func() bool {
		spans = receiver.trace(traceID)
		return len(spans) >= 3
	})
	byName := map[string]*tracepb.Span{}
	for _, s := range spans {
		byName[s.GetName()] = s
	}
	server, grant := byName["POST /oauth2/token"], byName["grant client_credentials"]
	require.NotNil(t, server)
	require.NotNil(t, grant)
	require.NotNil(t, byName["sign access_token"])
	for _, s := range spans {
		switch name := s.GetName(); {
		case name == "POST /oauth2/token", name == "grant client_credentials", name == "sign access_token":
		case strings.HasPrefix(name, "store "): // the brute-force guard's, when this address failed before
			assert.Equal(t, grant.GetSpanId(), s.GetParentSpanId(), "parent of %s", name)
		default:
			t.Errorf("unexpected span %q", name)
		}
	}
	assert.Equal(t, parentID, hex.EncodeToString(server.GetParentSpanId()), "the caller's traceparent is the parent")
	assert.Equal(t, "otlp-req-1", attrOf(server, "latchkey.request_id"))
	assert.Equal(t, server.GetSpanId(), byName["grant client_credentials"].GetParentSpanId())
	assert.Equal(t, byName["grant client_credentials"].GetSpanId(), byName["sign access_token"].GetParentSpanId())
	receiver.mu.Lock()
	defer receiver.mu.Unlock()
	assert.Equal(t, "latchkey", receiver.service)
}
