package oauth2

import (
	"net/http"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// AccessLogger records one line per request; server/accesslog implements it.
type AccessLogger interface {
	LogAccess(AccessRecord)
}

// AccessRecord is one request as the access log records it. It never holds a query string, a
// header value, a body, a token, a code or a secret: the path is the URL's path alone (no
// endpoint of Latchkey takes a credential in its path), cut at MaxAccessPathLength.
type AccessRecord struct {
	Time      time.Time
	RequestID string
	Method    string
	Path      string
	// Endpoint is the route table's name of the endpoint (EndpointOther when none matched).
	Endpoint   string
	Status     int
	Duration   time.Duration
	Bytes      int64
	ClientAddr string
	// TraceID is the trace of the request when it was traced, else "".
	TraceID string
}

// MaxAccessPathLength and maxMethodLength bound what the access log copies of request input.
const (
	MaxAccessPathLength = 256
	maxMethodLength     = 16
)

func (s *requestScope) accessRecord(r *http.Request, start time.Time, d time.Duration, sc trace.SpanContext) AccessRecord {
	rec := AccessRecord{
		Time: start, RequestID: s.requestID, Method: truncate(r.Method, maxMethodLength),
		Path: truncate(r.URL.Path, MaxAccessPathLength), Endpoint: s.endpoint, Status: s.statusCode(),
		Duration: d, Bytes: s.bytes, ClientAddr: s.client,
	}
	if sc.HasTraceID() {
		rec.TraceID = sc.TraceID().String()
	}
	return rec
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
