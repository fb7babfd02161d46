package oauth2

import (
	"fmt"
	"net/http"
	"path"
	"slices"
	"strings"
)

// Paths of the endpoints (the canonical ones; RouteTable adds the seeds' aliases).
const (
	TokenPath     = "/oauth2/token"
	AuthorizePath = "/oauth2/authorize"
	LoginPath     = "/oauth2/login"
	ConsentPath   = "/oauth2/consent"
	LogoutPath    = "/oauth2/logout"
	AccountPath   = "/oauth2/account"
	// DeviceAuthorizationPath is RFC 8628's device authorization endpoint; DevicePath its
	// verification page (verification_uri).
	DeviceAuthorizationPath = "/oauth2/device_authorization"
	DevicePath              = "/oauth2/device"
	// PushedAuthorizationRequestPath is RFC 9126's pushed authorization request endpoint.
	PushedAuthorizationRequestPath = "/oauth2/par"
	StylesheetPath                 = "/oauth2/static/latchkey.css"
	UserinfoPath                   = "/oauth2/userinfo"
	RevocationPath                 = "/oauth2/revoke"
	IntrospectionPath              = "/oauth2/introspect"
	RegistrationPath               = "/oauth2/register"
	RegisteredClientPath           = RegistrationPath + "/{client_id}"
	OpenIDConfigurationPath        = "/.well-known/openid-configuration"
	AuthorizationServerPath        = "/.well-known/oauth-authorization-server"
	JWKSPath                       = "/.well-known/jwks.json"
)

// Endpoint names: the endpoint label of the metrics. EndpointOther is every request no route
// matched.
const (
	EndpointToken         = "token"
	EndpointAuthorize     = "authorize"
	EndpointLogin         = "login"
	EndpointConsent       = "consent"
	EndpointLogout        = "logout"
	EndpointAccount       = "account"
	EndpointDeviceAuth    = "device_authorization"
	EndpointDevice        = "device"
	EndpointPAR           = "par"
	EndpointStatic        = "static"
	EndpointUserinfo      = "userinfo"
	EndpointRevocation    = "revocation"
	EndpointIntrospection = "introspection"
	EndpointRegistration  = "registration"
	EndpointDiscovery     = "discovery"
	EndpointJWKS          = "jwks"
	EndpointOther         = "other"
)

// ErrorCodes are the error codes each endpoint can answer (the error label of
// latchkey_oauth_errors_total), for metrics that start every series at zero. Endpoints that
// answer no OAuth error (discovery, jwks, static) are absent.
func ErrorCodes() map[string][]string {
	common := []string{"invalid_request", "server_error", "temporarily_unavailable"}
	with := func(codes ...string) []string { return append(slices.Clone(common), codes...) }
	return map[string][]string{
		EndpointToken: with("invalid_client", "invalid_grant", "unauthorized_client", "unsupported_grant_type",
			"invalid_scope", "authorization_pending", "slow_down", "access_denied", "expired_token"),
		EndpointDeviceAuth: with("invalid_client", "unauthorized_client", "invalid_scope"),
		EndpointDevice:     with("access_denied"),
		EndpointPAR: with("invalid_client", "unauthorized_client", "unsupported_response_type", "invalid_scope",
			"request_not_supported", "registration_not_supported"),
		EndpointAuthorize: with("unauthorized_client", "access_denied", "unsupported_response_type", "invalid_scope",
			"login_required", "consent_required", "request_not_supported", "request_uri_not_supported", "registration_not_supported"),
		EndpointLogin:         with("access_denied"),
		EndpointConsent:       with("access_denied"),
		EndpointLogout:        with(),
		EndpointAccount:       with(),
		EndpointUserinfo:      with("invalid_token", "insufficient_scope"),
		EndpointRevocation:    with("invalid_client"),
		EndpointIntrospection: with("invalid_client", "unauthorized_client"),
		EndpointRegistration:  with("invalid_token", "invalid_client", "access_denied", "invalid_redirect_uri", "invalid_client_metadata"),
		EndpointOther:         {"invalid_request"},
	}
}

// Route is one row of the route table.
type Route struct {
	// Path is the canonical path, a net/http ServeMux pattern path (it may hold a {wildcard}).
	Path string
	// Aliases are the same endpoint at the seed documents' paths.
	Aliases []string
	// Methods are the methods the endpoint answers, in the order of the Allow header; GET
	// answers HEAD too.
	Methods []string
	// Endpoint is the endpoint label of the metrics.
	Endpoint string
	// CORS is the route's cross-origin policy: the Mux answers its preflights and adds the
	// CORS headers to its answers.
	CORS CORS
}

// RouteTable is the one table of Latchkey's endpoints: routing (Mux), the metrics' endpoint
// label, the CORS policy and the endpoint URLs of discovery all come from it.
func RouteTable() []Route {
	get, post, getPost := []string{http.MethodGet}, []string{http.MethodPost}, []string{http.MethodGet, http.MethodPost}
	client, anyOrigin := CORSClientOrigins, CORSAnyOrigin
	return []Route{
		{Path: TokenPath, Aliases: []string{"/token", "/oauth/token"}, Methods: post, Endpoint: EndpointToken, CORS: client},
		{Path: AuthorizePath, Aliases: []string{"/oauth/authorize"}, Methods: getPost, Endpoint: EndpointAuthorize},
		{Path: LoginPath, Methods: getPost, Endpoint: EndpointLogin},
		{Path: ConsentPath, Methods: getPost, Endpoint: EndpointConsent},
		{Path: LogoutPath, Methods: getPost, Endpoint: EndpointLogout},
		{Path: AccountPath, Methods: getPost, Endpoint: EndpointAccount},
		{Path: DeviceAuthorizationPath, Methods: post, Endpoint: EndpointDeviceAuth},
		{Path: DevicePath, Methods: getPost, Endpoint: EndpointDevice},
		{Path: PushedAuthorizationRequestPath, Methods: post, Endpoint: EndpointPAR, CORS: client},
		{Path: StylesheetPath, Methods: get, Endpoint: EndpointStatic},
		{Path: UserinfoPath, Methods: getPost, Endpoint: EndpointUserinfo, CORS: client},
		{Path: RevocationPath, Aliases: []string{"/oauth/revoke"}, Methods: post, Endpoint: EndpointRevocation, CORS: client},
		{Path: IntrospectionPath, Methods: post, Endpoint: EndpointIntrospection},
		{Path: RegistrationPath, Methods: post, Endpoint: EndpointRegistration},
		{Path: RegisteredClientPath, Methods: []string{http.MethodGet, http.MethodPut, http.MethodDelete}, Endpoint: EndpointRegistration},
		{Path: OpenIDConfigurationPath, Methods: get, Endpoint: EndpointDiscovery, CORS: anyOrigin},
		{Path: AuthorizationServerPath, Methods: get, Endpoint: EndpointDiscovery, CORS: anyOrigin},
		{Path: JWKSPath, Methods: get, Endpoint: EndpointJWKS, CORS: anyOrigin},
		{Path: ProtectedResourceMetadataPath, Methods: get, Endpoint: EndpointDiscovery, CORS: anyOrigin},
	}
}

// Mux routes requests by the route table. Packages mount the handlers of the endpoints they
// serve; Handler then answers every other method of a mounted path 405 (with Allow), every
// other path 404, both as JSON errors, and CORS as each route's policy says.
type Mux struct {
	table    map[string]Route
	handlers map[string]map[string]http.Handler // path -> method -> handler
	origins  func(origin string) bool           // the CORSClientOrigins routes' origins
}

// NewMux returns an empty Mux over RouteTable.
func NewMux() *Mux {
	m := &Mux{table: map[string]Route{}, handlers: map[string]map[string]http.Handler{}}
	for _, r := range RouteTable() {
		m.table[r.Path] = r
	}
	return m
}

// Handle mounts h for method at the route of path (a canonical path of RouteTable). A path or
// method that is not in the table, or mounted twice, is a programming error: it panics.
func (m *Mux) Handle(path, method string, h http.Handler) {
	r, ok := m.table[path]
	if !ok || !slices.Contains(r.Methods, method) {
		panic(fmt.Sprintf("oauth2: %s %s is not in the route table", method, path))
	}
	if m.handlers[path] == nil {
		m.handlers[path] = map[string]http.Handler{}
	}
	if _, dup := m.handlers[path][method]; dup {
		panic(fmt.Sprintf("oauth2: %s %s is mounted twice", method, path))
	}
	m.handlers[path][method] = h
}

// HandleFunc is Handle for a function.
func (m *Mux) HandleFunc(path, method string, h http.HandlerFunc) { m.Handle(path, method, h) }

// AllowOrigins sets the origins the CORSClientOrigins routes allow: those for which allowed
// (called once per request with an Origin header, with the header's value) is true. Without
// it they allow none. Call it before Handler.
func (m *Mux) AllowOrigins(allowed func(origin string) bool) { m.origins = allowed }

// Mounted reports whether any method of the route of path is mounted.
func (m *Mux) Mounted(path string) bool { return len(m.handlers[path]) > 0 }

// Handler returns the router of the mounted routes. Only the methods mounted are allowed (the
// Allow header of a 405 lists them, with HEAD after GET); a path that a ServeMux would
// redirect to a cleaned one (//token, /a/../token) is 404, never an HTML redirect. A route
// with a CORS policy answers the preflights of the origins it allows (OPTIONS, which is
// otherwise 405) with the same methods and adds CORS headers to the answers of its methods.
func (m *Mux) Handler() http.Handler {
	mux := http.NewServeMux()
	for p, byMethod := range m.handlers {
		r := m.table[p]
		var allow []string
		for _, method := range r.Methods {
			if _, ok := byMethod[method]; !ok {
				continue
			}
			allow = append(allow, method)
			if method == http.MethodGet {
				allow = append(allow, http.MethodHead)
			}
		}
		cors := corsRoute{policy: r.CORS, allowed: m.origins, methods: strings.Join(allow, ", ")}
		for method, h := range byMethod {
			h = withEndpoint(r.Endpoint, r.Path, cors.wrap(h))
			for _, at := range append([]string{r.Path}, r.Aliases...) {
				mux.Handle(method+" "+at, h) // a GET pattern matches HEAD too
			}
		}
		refuse := MethodNotAllowed(strings.Join(allow, ", "))
		refuseAt, preflight := withEndpoint(r.Endpoint, r.Path, refuse), withEndpoint(r.Endpoint, r.Path, cors.preflight(refuse))
		for _, at := range append([]string{r.Path}, r.Aliases...) {
			mux.Handle(at, refuseAt)
			if r.CORS != CORSNone {
				mux.Handle(http.MethodOptions+" "+at, preflight)
			}
		}
	}
	mux.HandleFunc("/", NotFound)
	return cleanPathsOnly(mux)
}

// cleanPathsOnly answers 404 for paths the mux would redirect (with an HTML body) to a
// cleaned path, such as //token or /a/../token.
func cleanPathsOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if p == "" || p[0] != '/' || path.Clean(p) != p {
			NotFound(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}
