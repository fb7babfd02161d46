package oauth2

import (
	"errors"
	"testing"

	"github.com/go-logr/logr"
	"github.com/stretchr/testify/assert"
)

// recordingSink records what reaches it: each line's values, and each WithValues and WithName.
type recordingSink struct {
	lines      *[][]any
	withValues *[][]any
	names      []string
}

func newRecordingSink() recordingSink {
	return recordingSink{lines: new([][]any), withValues: new([][]any)}
}

func (s recordingSink) Init(logr.RuntimeInfo)  {}
func (s recordingSink) Enabled(level int) bool { return level <= 0 }
func (s recordingSink) Info(_ int, _ string, kv ...any) {
	*s.lines = append(*s.lines, kv)
}

func (s recordingSink) Error(_ error, _ string, kv ...any) {
	*s.lines = append(*s.lines, kv)
}

func (s recordingSink) WithValues(kv ...any) logr.LogSink {
	*s.withValues = append(*s.withValues, kv)
	return s
}

func (s recordingSink) WithName(name string) logr.LogSink {
	s.names = append(s.names, name)
	return s
}

func TestRequestLog(t *testing.T) {
	values := []any{"request_id", "req-1"}
	for _, tc := range []struct {
		name           string
		log            func(logr.Logger)
		wantLines      [][]any
		wantWithValues [][]any
	}{
		{"a request that logs nothing hands the sink nothing", func(logr.Logger) {}, nil, nil},
		{"a line carries the request's values before its own", func(l logr.Logger) { l.Info("hello", "k", 1) },
			[][]any{{"request_id", "req-1", "k", 1}}, nil},
		{"an error line carries them too", func(l logr.Logger) { l.Error(errors.New("boom"), "failed") },
			[][]any{{"request_id", "req-1"}}, nil},
		{"a line above the sink's level is not logged", func(l logr.Logger) { l.V(1).Info("debug") }, nil, nil},
		{"a named logger keeps the values", func(l logr.Logger) { l.WithName("grant").Info("hello") },
			[][]any{{"request_id", "req-1"}}, nil},
		{"values added later follow the request's, handed to the sink once", func(l logr.Logger) {
			l = l.WithValues("client_id", "app")
			l.Info("a")
			l.Info("b")
		}, [][]any{nil, nil}, [][]any{{"request_id", "req-1", "client_id", "app"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sink := newRecordingSink()
			tc.log(requestLog(logr.New(sink), values))
			assert.Equal(t, tc.wantLines, *sink.lines)
			assert.Equal(t, tc.wantWithValues, *sink.withValues)
		})
	}
}
