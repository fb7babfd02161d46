package handler

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/latchkey-dev/latchkey/server/metrics"
	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/tracing"
)

// tracedFlowEnv is the flow environment with its store instrumented (metrics and store spans)
// and its handler behind otelhttp, recording into an in-memory span recorder, as main.go wires
// a server with tracing on.
func tracedFlowEnv(t *testing.T) (*flowEnv, *tracetest.SpanRecorder) {
	t.Helper()
	m, err := metrics.New(prometheus.NewRegistry())
	require.NoError(t, err)
	env := newFlowEnv(t, func(c *Config) { c.Metrics, c.Store = m, m.InstrumentStore(c.Store, "memory") })
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(t.Context()) })
	env.srv.Config.Handler = otelhttp.NewHandler(env.srv.Config.Handler, "latchkey",
		otelhttp.WithTracerProvider(tp), otelhttp.WithPropagators(propagation.TraceContext{}))
	return env, rec
}

// spanTree indexes the ended spans of one trace.
type spanTree struct{ spans []sdktrace.ReadOnlySpan }

func (tr spanTree) named(t *testing.T, name string) []sdktrace.ReadOnlySpan {
	t.Helper()
	var out []sdktrace.ReadOnlySpan
	for _, s := range tr.spans {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

// child is the one child of parent named name, in parent's trace.
func (tr spanTree) child(t *testing.T, name string, parent sdktrace.ReadOnlySpan) sdktrace.ReadOnlySpan {
	t.Helper()
	var found []sdktrace.ReadOnlySpan
	for _, s := range tr.named(t, name) {
		if s.Parent().SpanID() == parent.SpanContext().SpanID() {
			found = append(found, s)
		}
	}
	require.Len(t, found, 1, "children named %q of %q; spans %v", name, parent.Name(), tr.names())
	assert.Equal(t, parent.SpanContext().TraceID(), found[0].SpanContext().TraceID(), "trace of %q", name)
	return found[0]
}

// childNames are the names of the children of parent, sorted.
func (tr spanTree) childNames(parent sdktrace.ReadOnlySpan) []string {
	var out []string
	for _, s := range tr.spans {
		if s.Parent().SpanID() == parent.SpanContext().SpanID() {
			out = append(out, s.Name())
		}
	}
	slices.Sort(out)
	return out
}

func (tr spanTree) names() []string {
	out := make([]string, 0, len(tr.spans))
	for _, s := range tr.spans {
		out = append(out, s.Name())
	}
	return out
}

func attr(s sdktrace.ReadOnlySpan, key attribute.Key) string {
	for _, kv := range s.Attributes() {
		if kv.Key == key {
			return kv.Value.String()
		}
	}
	return ""
}

// A caller's trace (W3C traceparent) is continued by the server span.
const (
	callerTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	callerSpanID  = "00f067aa0ba902b7"
)

func TestACodeFlowIsTracedFromAuthorizeToToken(t *testing.T) {
	env, rec := tracedFlowEnv(t)
	code, verifier := env.signIn(t, env.browser(t))
	status, body := env.tokenPost(t, formType, url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier},
		"client_id": {spaClientID}, "redirect_uri": {appRedirect},
	}.Encode(), "traceparent", "00-"+callerTraceID+"-"+callerSpanID+"-01", oauth2.RequestIDHeader, "flow-req-1")
	require.Equal(t, http.StatusOK, status, body)
	tr := spanTree{rec.Ended()}

	// The browser's requests: authorize, login and consent pages, each a server span with a
	// generated request ID.
	authorize := tr.named(t, "GET "+oauth2.AuthorizePath)
	require.NotEmpty(t, authorize, "spans: %v", tr.names())
	assert.Regexp(t, `^[0-9a-f]{32}$`, attr(authorize[0], tracing.RequestID))
	assert.Equal(t, oauth2.EndpointAuthorize, attr(authorize[0], tracing.Endpoint))
	assert.NotEmpty(t, tr.named(t, "POST "+oauth2.LoginPath))
	assert.NotEmpty(t, tr.named(t, "POST "+oauth2.ConsentPath))
	// The code was stored when the user consented.
	consent := tr.named(t, "POST "+oauth2.ConsentPath)
	require.Len(t, consent, 1)
	putCode := tr.child(t, "store put_code", consent[0])
	assert.Equal(t, "ok", attr(putCode, tracing.StoreResult))

	// The token request: the caller's trace, the request ID, and its span tree.
	servers := tr.named(t, "POST "+oauth2.TokenPath)
	require.Len(t, servers, 1)
	server := servers[0]
	assert.Equal(t, callerTraceID, server.SpanContext().TraceID().String())
	assert.Equal(t, "flow-req-1", attr(server, tracing.RequestID))
	assert.Equal(t, http.StatusOK, int(attrInt(server, "http.response.status_code")))
	grant := tr.child(t, "grant authorization_code", server)
	assert.Equal(t, spaClientID, attr(grant, tracing.ClientID))
	// The replica knows the code it issued (store.KnownRecords): it signs first, then redeems the
	// code and stores the refresh token in one store step.
	assert.Equal(t, []string{"sign access_token", "sign id_token", "store redeem_code"}, tr.childNames(grant))
	redeem := tr.child(t, "store redeem_code", grant)
	assert.Equal(t, "ok", attr(redeem, tracing.StoreResult))
	assert.Equal(t, "memory", attr(redeem, "latchkey.store.backend"))
	sign := tr.child(t, "sign id_token", grant)
	assert.False(t, redeem.StartTime().Before(sign.EndTime()), "the code is redeemed once the tokens are signed")

	// A replayed code: the grant span fails with the error code on the server span.
	status, _ = env.tokenPost(t, formType, url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier},
		"client_id": {spaClientID}, "redirect_uri": {appRedirect},
	}.Encode())
	require.Equal(t, http.StatusBadRequest, status)
	tr = spanTree{rec.Ended()}
	servers = tr.named(t, "POST "+oauth2.TokenPath)
	require.Len(t, servers, 2)
	assert.Equal(t, "invalid_grant", attr(servers[1], "oauth2.error"))
	replay := tr.child(t, "grant authorization_code", servers[1])
	assert.Equal(t, codes.Error, replay.Status().Code)
}

func attrInt(s sdktrace.ReadOnlySpan, key attribute.Key) int64 {
	for _, kv := range s.Attributes() {
		if kv.Key == key {
			return kv.Value.AsInt64()
		}
	}
	return 0
}

func TestAClientCredentialsRequestIsTracedWithItsRequestID(t *testing.T) {
	env, rec := tracedFlowEnv(t)
	env.reg.PutClient(registry.Client{
		Source: "web/machine", Namespace: "web", ID: "machine", Type: registry.Confidential,
		AuthMethod: oauth2.AuthMethodBasic, GrantTypes: []string{"client_credentials"}, Scopes: []string{"read:projects"},
		SecretHash: registry.HashSecret([]byte("machine-secret")), HasSecret: true,
	})
	status, body := env.tokenPost(t, formType, "grant_type=client_credentials",
		"Authorization", basic("machine", "machine-secret"),
		"traceparent", "00-"+callerTraceID+"-"+callerSpanID+"-01", oauth2.RequestIDHeader, "cc-req-1")
	require.Equal(t, http.StatusOK, status, body)
	tr := spanTree{rec.Ended()}

	servers := tr.named(t, "POST "+oauth2.TokenPath)
	require.Len(t, servers, 1, "spans: %v", tr.names())
	server := servers[0]
	assert.Equal(t, callerTraceID, server.SpanContext().TraceID().String(), "the caller's trace continues")
	assert.Equal(t, callerSpanID, server.Parent().SpanID().String(), "the caller's span is the parent")
	assert.True(t, server.Parent().IsRemote())
	assert.Equal(t, trace.SpanKindServer, server.SpanKind())
	assert.Equal(t, "cc-req-1", attr(server, tracing.RequestID))
	assert.Equal(t, oauth2.EndpointToken, attr(server, tracing.Endpoint))

	grant := tr.child(t, "grant client_credentials", server)
	assert.Equal(t, "client_credentials", attr(grant, tracing.GrantType))
	assert.Equal(t, "machine", attr(grant, tracing.ClientID))
	tr.child(t, "sign access_token", grant)
	for _, s := range tr.spans {
		for _, kv := range s.Attributes() {
			assert.NotContains(t, kv.Value.String(), "machine-secret", "attribute %s of %s", kv.Key, s.Name())
			assert.False(t, strings.HasPrefix(kv.Value.String(), "eyJ"), "a JWT in attribute %s of %s", kv.Key, s.Name())
		}
	}
}
