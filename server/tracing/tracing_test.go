package tracing

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

func TestStart(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	sampledOut := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))

	for _, tc := range []struct {
		name    string
		ctx     func() (context.Context, func())
		err     error
		wantRec bool
	}{
		{name: "without a span in the context nothing is recorded", ctx: func() (context.Context, func()) { return context.Background(), func() {} }},
		{name: "under a span that is not sampled nothing is recorded", ctx: func() (context.Context, func()) {
			ctx, span := sampledOut.Tracer("test").Start(context.Background(), "parent")
			return ctx, func() { span.End() }
		}},
		{name: "under a recording span a child is recorded", wantRec: true, ctx: func() (context.Context, func()) {
			ctx, span := tp.Tracer("test").Start(context.Background(), "parent")
			return ctx, func() { span.End() }
		}},
		{name: "a failed child is marked as an error", wantRec: true, err: errors.New("boom"), ctx: func() (context.Context, func()) {
			ctx, span := tp.Tracer("test").Start(context.Background(), "parent")
			return ctx, func() { span.End() }
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(rec.Ended())
			ctx, endParent := tc.ctx()
			childCtx, span := Start(ctx, "child")
			assert.Equal(t, tc.wantRec, span.IsRecording())
			assert.Equal(t, tc.wantRec, Recording(childCtx))
			End(span, tc.err)
			endParent()
			ended := rec.Ended()[before:]
			if !tc.wantRec {
				assert.Empty(t, ended)
				assert.Equal(t, ctx, childCtx, "the context is handed back unchanged")
				return
			}
			require.Len(t, ended, 2)
			child := ended[0]
			assert.Equal(t, "child", child.Name())
			assert.Equal(t, ended[1].SpanContext().SpanID(), child.Parent().SpanID())
			assert.Equal(t, InstrumentationName, child.InstrumentationScope().Name)
			if tc.err != nil {
				assert.Equal(t, codes.Error, child.Status().Code)
				assert.Equal(t, "boom", child.Status().Description)
			} else {
				assert.Equal(t, codes.Unset, child.Status().Code)
			}
		})
	}
}

// BenchmarkStartWithoutTracing is the cost of a span site when tracing is off: no allocation.
func BenchmarkStartWithoutTracing(b *testing.B) {
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		_, span := Start(ctx, "store take_code")
		End(span, nil)
	}
}
