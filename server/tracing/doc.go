// Package tracing starts Latchkey's OpenTelemetry spans: a child of the span in the context,
// and only when that span records. The tracer provider is not a global and not a field of any
// config: it travels in the server span that the HTTP middleware (otelhttp, wired by main.go
// when tracing is on) puts in each request's context, and every child span comes from the
// provider of its parent. With tracing off there is no recording span anywhere, so Start costs
// a context lookup and allocates nothing.
//
// Span names are fixed strings (an endpoint, a grant type, a store operation), never request
// input; attributes never hold a token, code, secret or password.
//
// It imports only the OpenTelemetry API (go.opentelemetry.io/otel/...), never the SDK, and
// nothing of Latchkey's.
package tracing
