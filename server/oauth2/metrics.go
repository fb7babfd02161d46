package oauth2

import (
	"context"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/go-logr/logr"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/tracing"
)

// Metrics records what the handler does; *metrics.Metrics (server/metrics) implements it.
// Every label value passed is bounded: endpoint names (the route table's) and error codes from
// fixed sets, grant types the server supports, client IDs and namespaces of registered clients
// only.
type Metrics interface {
	TokenIssued(grantType, clientID, namespace string)
	OAuthError(endpoint, code string)
	ClientAuthFailure(method string)
	// ClientAuthenticated counts a successful client authentication by method.
	ClientAuthenticated(method string)
	// PreviousSecretUsed counts a client authenticated by its previous secret (rotation).
	PreviousSecretUsed(clientID, namespace string)
	// ObserveRequest records a request's latency with the HTTP status it was answered with.
	ObserveRequest(endpoint string, code int, d time.Duration)
	// RateLimited counts a refused attempt by reason: client_authentication, user_login,
	// client_rate_limit, registration.
	RateLimited(reason string)
}

// NoMetrics records nothing.
type NoMetrics struct{}

// TokenIssued does nothing.
func (NoMetrics) TokenIssued(string, string, string) {}

// OAuthError does nothing.
func (NoMetrics) OAuthError(string, string) {}

// ClientAuthFailure does nothing.
func (NoMetrics) ClientAuthFailure(string) {}

// ClientAuthenticated does nothing.
func (NoMetrics) ClientAuthenticated(string) {}

// PreviousSecretUsed does nothing.
func (NoMetrics) PreviousSecretUsed(string, string) {}

// ObserveRequest does nothing.
func (NoMetrics) ObserveRequest(string, int, time.Duration) {}

// RateLimited does nothing.
func (NoMetrics) RateLimited(string) {}

var _ Metrics = NoMetrics{}

type scopeKey struct{}

// requestScope is what Instrumentation gives every request through its context: the metrics
// and the auditor, the remote address and the client address, the request ID, and the endpoint
// name (the route table's, set by the Mux when a route matches; EndpointOther until then). It
// is also the request's ResponseWriter, counting the status and the bytes written (one
// allocation for both).
type requestScope struct {
	metrics   Metrics
	auditor   Auditor
	remote    string
	client    string
	requestID string
	endpoint  string
	// idHeader is the X-Request-Id header's value slice, here to save its allocation.
	idHeader [1]string
	// logValues are the values of the request's logger (requestLog), here for the same reason.
	logValues [2]any
	response
}

func scopeOf(ctx context.Context) *requestScope {
	if s, ok := ctx.Value(scopeKey{}).(*requestScope); ok {
		return s
	}
	return nil
}

// Instrumentation is what every request gets through its context.
type Instrumentation struct {
	// Metrics records; nil records nothing.
	Metrics Metrics
	// Auditor records the audit events (Audit); nil records none.
	Auditor Auditor
	// AccessLog records one line per request; nil records none.
	AccessLog AccessLogger
	// ClientIPHeader names a header that a trusted reverse proxy sets to the client address,
	// e.g. X-Forwarded-For or X-Real-IP; its last value is ClientAddress. Empty uses the
	// address of the connection. Set it only behind a proxy that overwrites or appends to it.
	ClientIPHeader string
}

// Wrap gives every request the instrumentation through its context, a request ID (RequestID:
// the request's valid X-Request-Id or a new one, echoed in the response's X-Request-Id, added
// to the context's logger as request_id and to the recording span), times it by endpoint and
// status, and writes its access log line.
func (in Instrumentation) Wrap(next http.Handler) http.Handler {
	m := in.Metrics
	if m == nil {
		m = NoMetrics{}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		s := &requestScope{metrics: m, auditor: in.Auditor, remote: r.RemoteAddr,
			client: clientAddress(r, in.ClientIPHeader), endpoint: EndpointOther,
			requestID: requestID(r), response: response{ResponseWriter: w}}
		s.idHeader[0] = s.requestID
		w.Header()[RequestIDHeader] = s.idHeader[:]
		ctx := context.WithValue(r.Context(), scopeKey{}, s)
		if log := logr.FromContextOrDiscard(ctx); log.GetSink() != nil {
			s.logValues = [2]any{"request_id", s.requestID}
			ctx = logr.NewContext(ctx, requestLog(log, s.logValues[:]))
		}
		span := trace.SpanFromContext(ctx)
		if span.IsRecording() {
			span.SetAttributes(tracing.RequestID.String(s.requestID))
		}
		defer func() {
			d := time.Since(start)
			m.ObserveRequest(s.endpoint, s.statusCode(), d)
			if in.AccessLog != nil {
				in.AccessLog.LogAccess(s.accessRecord(r, start, d, span.SpanContext()))
			}
		}()
		next.ServeHTTP(&s.response, r.WithContext(ctx))
	})
}

// RequestID is the ID of the request (see Instrumentation.Wrap); outside Wrap it is "".
func RequestID(ctx context.Context) string {
	if s := scopeOf(ctx); s != nil {
		return s.requestID
	}
	return ""
}

// ClientAddress is the address of the request's client, as the per-address limits count it
// and the audit log records it: the last value of the Instrumentation's ClientIPHeader when it
// is set and that value is an IP address (with or without a port, which is dropped), else the
// IP of the connection. Outside Wrap it is "".
func ClientAddress(ctx context.Context) string {
	if s := scopeOf(ctx); s != nil {
		return s.client
	}
	return ""
}

// clientAddress is ClientAddress of r. A header value that is not an address (a proxy that
// adds a port is fine; garbage is not) falls back to the connection, so that it cannot give
// every request a key of its own.
func clientAddress(r *http.Request, header string) string {
	if header != "" {
		if vals := r.Header.Values(header); len(vals) > 0 {
			last := vals[len(vals)-1]
			if i := strings.LastIndexByte(last, ','); i >= 0 {
				last = last[i+1:]
			}
			if ip, ok := parseIP(strings.TrimSpace(last)); ok {
				return ip
			}
		}
	}
	if ip, ok := parseIP(r.RemoteAddr); ok {
		return ip
	}
	return r.RemoteAddr
}

// parseIP returns the IP of "ip", "ip:port", "[ipv6]" or "[ipv6]:port", unmapped from IPv4-in-IPv6.
func parseIP(s string) (string, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().String(), true
	}
	if a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")); err == nil {
		return a.Unmap().String(), true
	}
	return "", false
}

// withEndpoint names the endpoint of the requests h serves, for the metrics, and the recording
// server span after the route ("POST /oauth2/token", the canonical path for an alias too).
func withEndpoint(name, route string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s := scopeOf(r.Context()); s != nil {
			s.endpoint = name
		}
		if span := trace.SpanFromContext(r.Context()); span.IsRecording() {
			span.SetName(r.Method + " " + route)
			span.SetAttributes(tracing.Endpoint.String(name), semconv.HTTPRoute(route))
		}
		h.ServeHTTP(w, r)
	})
}

// RecordTokenIssued counts a token response; the client must be registered (it authenticated).
func RecordTokenIssued(ctx context.Context, grantType, clientID, namespace string) {
	if s := scopeOf(ctx); s != nil {
		s.metrics.TokenIssued(grantType, clientID, namespace)
	}
}

// RecordRateLimited counts an attempt refused for reason (a fixed set: see Metrics).
func RecordRateLimited(ctx context.Context, reason string) {
	if s := scopeOf(ctx); s != nil {
		s.metrics.RateLimited(reason)
	}
}

func recordOAuthError(ctx context.Context, code string) {
	if s := scopeOf(ctx); s != nil {
		s.metrics.OAuthError(s.endpoint, code)
	}
}

func recordClientAuthFailure(ctx context.Context, method string) {
	if s := scopeOf(ctx); s != nil {
		s.metrics.ClientAuthFailure(authMethodLabel(method))
	}
}

func recordClientAuthenticated(ctx context.Context, method string) {
	if s := scopeOf(ctx); s != nil {
		s.metrics.ClientAuthenticated(authMethodLabel(method))
	}
}

func recordPreviousSecretUsed(ctx context.Context, c *registry.Client) {
	if s := scopeOf(ctx); s != nil {
		s.metrics.PreviousSecretUsed(c.ID, c.Namespace)
	}
}

// ClientAuthMethodLabels are every value of the client authentication method label
// (authMethodLabel), for metrics that start their series at zero.
func ClientAuthMethodLabels() []string {
	return []string{AuthMethodBasic, AuthMethodPost, AuthMethodNone, AuthMethodServiceAccountToken, AuthMethodPrivateKeyJWT,
		AuthMethodAssertion, "missing", "other"}
}

// Rate limit reasons, the reasons of RecordRateLimited.
const (
	RateLimitClientAuthentication = "client_authentication"
	RateLimitUserLogin            = "user_login"
	RateLimitClient               = "client_rate_limit"
	RateLimitRegistration         = "registration"
	// RateLimitDeviceUserCode: the device verification page refused a user code after too
	// many wrong ones (RFC 8628 5.1).
	RateLimitDeviceUserCode = "device_user_code"
)

// RateLimitReasons are every reason of RecordRateLimited.
func RateLimitReasons() []string {
	return []string{RateLimitClientAuthentication, RateLimitUserLogin, RateLimitClient, RateLimitRegistration,
		RateLimitDeviceUserCode}
}

// authMethodLabel bounds the client authentication method label.
func authMethodLabel(method string) string {
	switch method {
	case AuthMethodBasic, AuthMethodPost, AuthMethodNone, AuthMethodServiceAccountToken, AuthMethodPrivateKeyJWT, AuthMethodAssertion:
		return method
	case "":
		return "missing"
	}
	return "other"
}
