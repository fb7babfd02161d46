package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

func TestTracesURL(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"a base URL gets the traces path", "http://collector:4318", "http://collector:4318/v1/traces"},
		{"a base URL with a slash gets the traces path", "https://collector:4318/", "https://collector:4318/v1/traces"},
		{"a URL with a path keeps it", "http://collector:4318/custom/traces", "http://collector:4318/custom/traces"},
	} {
		t.Run(tc.name, func(t *testing.T) { assert.Equal(t, tc.want, tracesURL(tc.in)) })
	}
}

func TestTracingEnabled(t *testing.T) {
	for _, tc := range []struct {
		name string
		flag string
		env  map[string]string
		want bool
	}{
		{name: "tracing is off by default", want: false},
		{name: "the flag turns it on", flag: "http://c:4318", want: true},
		{name: "the standard endpoint variable turns it on", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, want: true},
		{name: "the traces endpoint variable turns it on", env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, want: true},
		{name: "OTEL_SDK_DISABLED turns it off", flag: "http://c:4318", env: map[string]string{"OTEL_SDK_DISABLED": "true"}, want: false},
		{name: "OTEL_TRACES_EXPORTER=none turns it off", flag: "http://c:4318", env: map[string]string{"OTEL_TRACES_EXPORTER": "none"}, want: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER"} {
				t.Setenv(k, tc.env[k])
			}
			o := observabilityOptions{otlpEndpoint: tc.flag}
			assert.Equal(t, tc.want, o.tracingEnabled())
		})
	}
}

func TestRedisSpansAreChildrenOnly(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	tracer := childSpansOnly{tp: tp}.Tracer("redis")

	_, span := tracer.Start(context.Background(), "evalsha")
	span.End()
	assert.Empty(t, rec.Ended(), "a command outside a traced request makes no span")

	ctx, parent := tp.Tracer("test").Start(context.Background(), "store throttle")
	_, span = tracer.Start(ctx, "evalsha")
	span.End()
	parent.End()
	require.Len(t, rec.Ended(), 2)
	assert.Equal(t, "evalsha", rec.Ended()[0].Name())
	assert.Equal(t, parent.SpanContext().SpanID(), rec.Ended()[0].Parent().SpanID())
}

// writes records every Write call's bytes.
type writes struct{ calls []string }

func (w *writes) Write(p []byte) (int, error) {
	w.calls = append(w.calls, string(p))
	return len(p), nil
}

func TestBufferedLogs(t *testing.T) {
	line := func(i int) string {
		return fmt.Sprintf(`{"log":"audit","n":%d,"pad":"%s"}`+"\n", i, strings.Repeat("x", 90))
	}
	t.Run("lines wait in memory and are written together when flushed", func(t *testing.T) {
		var w writes
		b, flush := bufferLog(&w, fileLogBuffer, time.Hour)
		for i := range 5 {
			_, err := io.WriteString(b, line(i))
			require.NoError(t, err)
		}
		assert.Empty(t, w.calls, "nothing is written before the interval or a full buffer")
		flush()
		require.Len(t, w.calls, 1, "one write for all five lines")
		assert.Equal(t, line(0)+line(1)+line(2)+line(3)+line(4), w.calls[0])
	})
	t.Run("lines are written out within the interval without a flush", func(t *testing.T) {
		f, err := os.CreateTemp(t.TempDir(), "audit")
		require.NoError(t, err)
		defer f.Close()
		b, flush := bufferLog(f, fileLogBuffer, 20*time.Millisecond)
		defer flush()
		_, err = io.WriteString(b, line(1))
		require.NoError(t, err)
		require.Eventually(t, func() bool {
			got, err := os.ReadFile(f.Name())
			return err == nil && string(got) == line(1)
		}, 10*time.Second, 10*time.Millisecond)
	})
	t.Run("a shared stream gets whole lines in writes of at most PIPE_BUF", func(t *testing.T) {
		var stderr writes
		var l logs
		w, err := l.open("--audit-log", "stderr", time.Hour, io.Discard, &stderr)
		require.NoError(t, err)
		var want strings.Builder
		for i := range 200 {
			want.WriteString(line(i))
			_, err := io.WriteString(w, line(i))
			require.NoError(t, err)
		}
		l.close()
		require.Greater(t, len(stderr.calls), 1)
		for _, c := range stderr.calls {
			assert.LessOrEqual(t, len(c), streamLogBuffer)
			assert.True(t, strings.HasSuffix(c, "\n") && strings.HasPrefix(c, `{"log"`), "a write of whole lines: %q", c)
		}
		assert.Equal(t, want.String(), strings.Join(stderr.calls, ""), "every line, in order")
	})
	t.Run("a file gets the larger buffer", func(t *testing.T) {
		path := t.TempDir() + "/audit.log"
		var l logs
		w, err := l.open("--audit-log", path, time.Hour, io.Discard, io.Discard)
		require.NoError(t, err)
		var want strings.Builder
		for i := range 200 { // ~25 KB: more than a stream's buffer, less than a file's
			want.WriteString(line(i))
			_, err := io.WriteString(w, line(i))
			require.NoError(t, err)
		}
		got, err := os.ReadFile(path)
		require.NoError(t, err)
		assert.Empty(t, got, "nothing written before the close")
		l.close()
		got, err = os.ReadFile(path)
		require.NoError(t, err)
		assert.Equal(t, want.String(), string(got))
	})
	t.Run("interval 0 writes every line at once", func(t *testing.T) {
		var w writes
		b, flush := bufferLog(&w, fileLogBuffer, 0)
		defer flush()
		_, err := io.WriteString(b, line(1))
		require.NoError(t, err)
		assert.Equal(t, []string{line(1)}, w.calls)
	})
	t.Run("off opens nothing", func(t *testing.T) {
		var l logs
		w, err := l.open("--access-log", "off", time.Hour, io.Discard, io.Discard)
		require.NoError(t, err)
		assert.Nil(t, w)
		l.close()
	})
}
