package oauth2

import "github.com/go-logr/logr"

// requestLog is the logger of one request: base with the request's values (request_id), which
// reach base's sink only when the request logs a line. zapr's WithValues encodes the values at
// once, into a copy of the encoder with a 1 KiB buffer of its own (~1.2 KB of garbage per
// request), although most requests log nothing.
func requestLog(base logr.Logger, values []any) logr.Logger {
	return base.WithSink(lazyValues{LogSink: base.GetSink(), values: values})
}

// lazyValues is a sink whose values are added to each line it logs, and handed to the wrapped
// sink (LogSink.WithValues) only when more values are added (see requestLog).
type lazyValues struct {
	logr.LogSink
	values []any
}

var _ logr.CallDepthLogSink = lazyValues{}

func (s lazyValues) Info(level int, msg string, keysAndValues ...any) {
	s.LogSink.Info(level, msg, s.with(keysAndValues)...)
}

func (s lazyValues) Error(err error, msg string, keysAndValues ...any) {
	s.LogSink.Error(err, msg, s.with(keysAndValues)...)
}

// WithValues hands the wrapped sink the pending values, then the new ones: a logger that adds
// values of its own will most likely log.
func (s lazyValues) WithValues(keysAndValues ...any) logr.LogSink {
	return s.LogSink.WithValues(s.with(keysAndValues)...)
}

func (s lazyValues) WithName(name string) logr.LogSink {
	return lazyValues{LogSink: s.LogSink.WithName(name), values: s.values}
}

func (s lazyValues) WithCallDepth(depth int) logr.LogSink {
	if cd, ok := s.LogSink.(logr.CallDepthLogSink); ok {
		return lazyValues{LogSink: cd.WithCallDepth(depth), values: s.values}
	}
	return s
}

// with is the pending values followed by keysAndValues, in a new slice.
func (s lazyValues) with(keysAndValues []any) []any {
	out := make([]any, 0, len(s.values)+len(keysAndValues))
	return append(append(out, s.values...), keysAndValues...)
}
