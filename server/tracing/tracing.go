package tracing

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// InstrumentationName names Latchkey's tracer (the instrumentation scope of its spans).
const InstrumentationName = "github.com/latchkey-dev/latchkey"

// Attribute keys of Latchkey's spans.
const (
	// RequestID is the request's X-Request-Id (as echoed in the response and logged).
	RequestID = attribute.Key("latchkey.request_id")
	// Endpoint is the endpoint name of the route table (the endpoint label of the metrics).
	Endpoint = attribute.Key("latchkey.endpoint")
	// GrantType is the grant type of a token request.
	GrantType = attribute.Key("oauth2.grant_type")
	// ClientID is the client ID of a registered client (never of an unknown one).
	ClientID = attribute.Key("oauth2.client_id")
	// StoreOperation and StoreResult are a store operation and its result label.
	StoreOperation = attribute.Key("latchkey.store.operation")
	StoreResult    = attribute.Key("latchkey.store.result")
	// Algorithm is a signing algorithm.
	Algorithm = attribute.Key("latchkey.signing.alg")
)

// Start starts a span named name, a child of the span in ctx, when that span records. When it
// does not (tracing off, or the trace not sampled) it returns ctx and that non-recording span
// unchanged: End on it does nothing, and nothing is allocated. Callers that set attributes check
// span.IsRecording() first, so that they build none for nothing.
func Start(ctx context.Context, name string) (context.Context, trace.Span) {
	parent := trace.SpanFromContext(ctx)
	if !parent.IsRecording() {
		return ctx, parent
	}
	return parent.TracerProvider().Tracer(InstrumentationName).Start(ctx, name)
}

// End ends span, marking it failed with err when err is not nil.
func End(span trace.Span, err error) {
	if !span.IsRecording() {
		return
	}
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// Recording reports whether ctx holds a recording span: whether building attributes for
// SetAttributes is worth it.
func Recording(ctx context.Context) bool { return trace.SpanFromContext(ctx).IsRecording() }
