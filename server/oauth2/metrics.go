package oauth2

import (
	"context"
	"net/http"
	"strings"
	"time"
)

// Metrics records what the handler does; *metrics.Metrics (server/metrics) implements it.
// Every label value passed is bounded: endpoint names and error codes from fixed sets, grant
// types the server supports, client IDs and namespaces of registered clients only.
type Metrics interface {
	TokenIssued(grantType, clientID, namespace string)
	OAuthError(endpoint, code string)
	ClientAuthFailure(method string)
	ObserveRequest(endpoint string, d time.Duration)
}

// noMetrics is the default: it records nothing.
type noMetrics struct{}

func (noMetrics) TokenIssued(string, string, string)   {}
func (noMetrics) OAuthError(string, string)            {}
func (noMetrics) ClientAuthFailure(string)             {}
func (noMetrics) ObserveRequest(string, time.Duration) {}

// Endpoint names, the endpoint label of the metrics.
const (
	endpointToken         = "token"
	endpointAuthorize     = "authorize"
	endpointLogin         = "login"
	endpointConsent       = "consent"
	endpointUserinfo      = "userinfo"
	endpointRevocation    = "revocation"
	endpointIntrospection = "introspection"
	endpointRegistration  = "registration"
	endpointDiscovery     = "discovery"
	endpointJWKS          = "jwks"
	endpointStatic        = "static"
	endpointOther         = "other"
)

// endpointOf maps a request path to a fixed endpoint name; never the raw path.
func endpointOf(p string) string {
	switch p {
	case TokenPath, "/token", "/oauth/token":
		return endpointToken
	case AuthorizePath:
		return endpointAuthorize
	case LoginPath:
		return endpointLogin
	case ConsentPath:
		return endpointConsent
	case UserinfoPath:
		return endpointUserinfo
	case RevocationPath:
		return endpointRevocation
	case IntrospectionPath:
		return endpointIntrospection
	case RegistrationPath:
		return endpointRegistration
	case OpenIDConfigurationPath, AuthorizationServerPath:
		return endpointDiscovery
	case JWKSPath:
		return endpointJWKS
	case StylesheetPath:
		return endpointStatic
	}
	if strings.HasPrefix(p, RegistrationPath+"/") {
		return endpointRegistration
	}
	return endpointOther
}

type requestMetricsKey struct{}

// requestMetrics are the metrics and endpoint name of a request, in its context.
type requestMetrics struct {
	m        Metrics
	endpoint string
}

// metricsOf returns the request's metrics; outside instrumentMetrics, a no-op.
func metricsOf(ctx context.Context) requestMetrics {
	if rm, ok := ctx.Value(requestMetricsKey{}).(requestMetrics); ok {
		return rm
	}
	return requestMetrics{m: noMetrics{}, endpoint: endpointOther}
}

// instrumentMetrics times every request by endpoint and makes the metrics available to the
// error writer and the token dispatcher through the request context.
func instrumentMetrics(m Metrics, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rm := requestMetrics{m: m, endpoint: endpointOf(r.URL.Path)}
		start := time.Now()
		defer func() { m.ObserveRequest(rm.endpoint, time.Since(start)) }()
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestMetricsKey{}, rm)))
	})
}

// authMethodLabel bounds the client authentication method label.
func authMethodLabel(method string) string {
	switch method {
	case AuthMethodBasic, AuthMethodPost, AuthMethodNone:
		return method
	case "":
		return "missing"
	}
	return "other"
}
