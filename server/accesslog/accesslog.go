package accesslog

import (
	"io"
	"time"

	"github.com/latchkey-dev/latchkey/server/jsonlines"
	"github.com/latchkey-dev/latchkey/server/oauth2"
)

var _ oauth2.AccessLogger = (*Logger)(nil)

// Line is one line of the access log.
type Line struct {
	Time            time.Time `json:"time"`
	Log             string    `json:"log"` // always "access"
	RequestID       string    `json:"request_id"`
	Method          string    `json:"method"`
	Path            string    `json:"path"`
	Endpoint        string    `json:"endpoint"`
	Status          int       `json:"status"`
	DurationSeconds float64   `json:"duration_seconds"`
	Bytes           int64     `json:"bytes"`
	ClientAddr      string    `json:"client_addr"`
	TraceID         string    `json:"trace_id,omitempty"`
}

// Logger writes access log lines to a writer; safe for concurrent use.
type Logger struct {
	lines *jsonlines.Writer
}

// New returns a Logger writing to w.
func New(w io.Writer) *Logger { return &Logger{lines: jsonlines.New(w)} }

// LogAccess writes the record as one JSON line. Write errors are dropped: logging must not fail
// the request.
func (l *Logger) LogAccess(r oauth2.AccessRecord) {
	l.lines.Write(Line{
		Time: r.Time.UTC(), Log: "access", RequestID: r.RequestID, Method: r.Method, Path: r.Path,
		Endpoint: r.Endpoint, Status: r.Status, DurationSeconds: r.Duration.Seconds(), Bytes: r.Bytes,
		ClientAddr: r.ClientAddr, TraceID: r.TraceID,
	})
}
