package main

import (
	"context"
	"testing"

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
