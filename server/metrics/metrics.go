package metrics

import (
	"errors"
	"net/http"
	"runtime"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/latchkey-dev/latchkey/server/keys"
	"github.com/latchkey-dev/latchkey/server/registry"
)

// Unknown is the label value of anything outside a bounded set, e.g. an unregistered client.
const Unknown = "unknown"

// Metrics are the server's metrics. A nil *Metrics records nothing.
type Metrics struct {
	tokensIssued       *prometheus.CounterVec
	oauthErrors        *prometheus.CounterVec
	clientAuthFailures *prometheus.CounterVec
	clientAuths        *prometheus.CounterVec
	previousSecretUsed *prometheus.CounterVec
	requestDuration    *prometheus.HistogramVec
	storeOperations    *prometheus.CounterVec
	storeErrors        *prometheus.CounterVec
	knownRecords       *prometheus.CounterVec
	refreshReuse       prometheus.Counter
	keyRotations       prometheus.Counter
	keyRetirements     prometheus.Counter
	registrySynced     *prometheus.GaugeVec
	registryLag        *prometheus.GaugeVec
	registryWatermark  *prometheus.GaugeVec
	rateLimited        *prometheus.CounterVec
	tokenCacheHits     prometheus.Counter
	tokenCacheMisses   prometheus.Counter
	logoutDeliveries   *prometheus.CounterVec
	tokenExchanges     *prometheus.CounterVec
	reg                prometheus.Registerer
}

// New creates the metrics and registers them with reg.
func New(reg prometheus.Registerer) (*Metrics, error) {
	if reg == nil {
		return nil, errors.New("metrics: nil Registerer")
	}
	m := &Metrics{
		reg: reg,
		tokensIssued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latchkey_tokens_issued_total", Help: "Token responses issued, by grant type and registered client.",
		}, []string{"grant_type", "client_id", "client_namespace"}),
		oauthErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latchkey_oauth_errors_total", Help: "OAuth error responses, by handler (the endpoint: token, authorize, ...) and RFC 6749 error code.",
		}, []string{"handler", "error"}),
		clientAuthFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latchkey_client_auth_failures_total", Help: "Failed client authentications, by method.",
		}, []string{"method"}),
		clientAuths: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latchkey_client_authentications_total",
			Help: "Successful client authentications, by method (client_secret_basic, client_secret_post, none, service_account_token, private_key_jwt).",
		}, []string{"method"}),
		previousSecretUsed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latchkey_client_previous_secret_used_total",
			Help: "Client authentications with the previous client secret inside a rotation's grace period, by registered client.",
		}, []string{"client_id", "client_namespace"}),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "latchkey_request_duration_seconds", Help: "HTTP request latency, by handler (the endpoint: token, authorize, ...) and response status code.",
			Buckets: prometheus.DefBuckets,
		}, []string{"handler", "code"}),
		storeOperations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latchkey_store_operations_total", Help: "Leased store operations, by backend, operation and result.",
		}, []string{"backend", "operation", "result"}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latchkey_store_errors_total", Help: "Leased store operations that failed unexpectedly (unavailable or other), by backend and operation.",
		}, []string{"backend", "operation"}),
		knownRecords: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latchkey_store_known_records_total",
			Help: "Lookups of a code's or a refresh token's record that this replica knows without a round trip (store.KnownRecords), by backend, record (code, refresh_token) and result (hit, miss). A miss costs the exchange one more round trip with Redis: the record is read from the store first.",
		}, []string{"backend", "record", "result"}),
		refreshReuse: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "latchkey_refresh_token_reuse_detected_total", Help: "Refresh tokens reused after the grace window (their family was revoked).",
		}),
		keyRotations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "latchkey_signing_key_rotations_total", Help: "Signing key rotations performed by this process.",
		}),
		keyRetirements: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "latchkey_signing_key_retirements_total", Help: "Signing keys retired at once (annotation oauth.latchkey.dev/retire-keys) by this process.",
		}),
		registrySynced: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "latchkey_registry_last_sync_timestamp_seconds",
			Help: "When this replica's registry last took in an informer event, by kind (OAuthClient, Scope, User, WorkloadIssuer); time() minus it is the time since the last sync.",
		}, []string{"kind"}),
		registryLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "latchkey_registry_generation_lag",
			Help: "Objects of a kind (OAuthClient, Scope, User, WorkloadIssuer) whose current generation is in this replica's informer cache but not yet taken in by its registry; 0 when it serves every one.",
		}, []string{"kind"}),
		registryWatermark: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "latchkey_registry_watermark_resource_version",
			Help: "The resourceVersion (an etcd revision) up to which this replica's registry has taken in every change of a kind, as it reports it in its Lease for the leader's served counts.",
		}, []string{"kind"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latchkey_rate_limited_total",
			Help: "Requests refused with 429, by reason: client_authentication and user_login (brute-force protection), client_rate_limit (an OAuthClient's rateLimit), registration, device_user_code (wrong user codes on the device verification page).",
		}, []string{"reason"}),
		logoutDeliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latchkey_backchannel_logout_deliveries_total",
			Help: "Back-channel logout token deliveries, by result: delivered (2xx), retried (a failed attempt that will be tried again), failed (given up after the last attempt or the queue lease), dropped (the client no longer has a backchannelLogoutURI).",
		}, []string{"result"}),
	}
	for _, res := range BackchannelLogoutResults() {
		m.logoutDeliveries.WithLabelValues(res)
	}
	m.tokenExchanges = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "latchkey_token_exchanges_total",
		Help: "Tokens issued by token exchange (RFC 8693), by subject_source: AccessToken, IDToken, ServiceAccountToken, WorkloadIssuer.",
	}, []string{"subject_source"})
	for _, src := range []string{registry.SubjectAccessToken, registry.SubjectIDToken, registry.SubjectServiceAccountToken, registry.SubjectWorkloadIssuer} {
		m.tokenExchanges.WithLabelValues(src)
	}
	tokenCacheLookups := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "latchkey_access_token_cache_lookups_total",
		Help: "Lookups of presented access tokens (introspection, userinfo, revocation) in the cache of verified tokens, by result: hit (no signature verification), or miss (not cached, expired, or its signing key withdrawn).",
	}, []string{"result"})
	m.tokenCacheHits, m.tokenCacheMisses = tokenCacheLookups.WithLabelValues("hit"), tokenCacheLookups.WithLabelValues("miss")
	for _, c := range []prometheus.Collector{
		tokenCacheLookups, m.tokensIssued, m.oauthErrors, m.clientAuthFailures, m.clientAuths, m.previousSecretUsed, m.requestDuration,
		m.storeOperations, m.storeErrors, m.knownRecords, m.refreshReuse, m.keyRotations, m.keyRetirements, m.registrySynced, m.rateLimited,
		m.registryLag, m.registryWatermark, m.logoutDeliveries, m.tokenExchanges,
	} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// TokenIssued counts a token response. clientID and namespace must be a registered client's;
// the namespace is the client_namespace label (a namespace label would be renamed
// exported_namespace by a scrape that adds the target's own).
func (m *Metrics) TokenIssued(grantType, clientID, namespace string) {
	if m == nil {
		return
	}
	m.tokensIssued.WithLabelValues(grantType, clientID, namespace).Inc()
}

// OAuthError counts an error response of an endpoint (a fixed name) with an RFC 6749 code.
func (m *Metrics) OAuthError(endpoint, code string) {
	if m == nil {
		return
	}
	m.oauthErrors.WithLabelValues(endpoint, code).Inc()
}

// ClientAuthFailure counts a failed client authentication by method (a fixed name).
func (m *Metrics) ClientAuthFailure(method string) {
	if m == nil {
		return
	}
	m.clientAuthFailures.WithLabelValues(method).Inc()
}

// ClientAuthenticated counts a successful client authentication by method (a fixed name).
func (m *Metrics) ClientAuthenticated(method string) {
	if m == nil {
		return
	}
	m.clientAuths.WithLabelValues(method).Inc()
}

// PreviousSecretUsed counts an authentication with a client's previous secret. clientID and
// namespace must be a registered client's.
func (m *Metrics) PreviousSecretUsed(clientID, namespace string) {
	if m == nil {
		return
	}
	m.previousSecretUsed.WithLabelValues(clientID, namespace).Inc()
}

// RateLimited counts a request refused with 429, by reason (a fixed name).
func (m *Metrics) RateLimited(reason string) {
	if m == nil {
		return
	}
	m.rateLimited.WithLabelValues(reason).Inc()
}

// TokenExchanged counts a token exchange (RFC 8693) by the source of its subject token (one of
// the registry.Subject* values).
func (m *Metrics) TokenExchanged(source string) {
	if m == nil {
		return
	}
	m.tokenExchanges.WithLabelValues(source).Inc()
}

// BackchannelLogoutResults are the result label values of
// latchkey_backchannel_logout_deliveries_total.
func BackchannelLogoutResults() []string {
	return []string{"delivered", "retried", "failed", "dropped"}
}

// BackchannelLogoutDelivery counts a back-channel logout delivery attempt's result (one of
// BackchannelLogoutResults).
func (m *Metrics) BackchannelLogoutDelivery(result string) {
	if m == nil {
		return
	}
	m.logoutDeliveries.WithLabelValues(result).Inc()
}

// AccessTokenCacheLookup counts a lookup in the cache of verified access tokens: a hit, or a
// miss.
func (m *Metrics) AccessTokenCacheLookup(hit bool) {
	switch {
	case m == nil:
	case hit:
		m.tokenCacheHits.Inc()
	default:
		m.tokenCacheMisses.Inc()
	}
}

// ObserveRequest records the latency of a request to an endpoint (a fixed name) answered with
// an HTTP status code.
func (m *Metrics) ObserveRequest(endpoint string, code int, d time.Duration) {
	if m == nil {
		return
	}
	m.requestDuration.WithLabelValues(endpoint, statusLabel(code)).Observe(d.Seconds())
}

// statusLabel is the code label of a status: the three digits, without allocating for the
// common ones.
func statusLabel(code int) string {
	switch code {
	case http.StatusOK:
		return "200"
	case http.StatusFound:
		return "302"
	case http.StatusBadRequest:
		return "400"
	case http.StatusUnauthorized:
		return "401"
	}
	if code < 100 || code > 999 {
		return Unknown
	}
	return strconv.Itoa(code)
}

// InitFailureSeries creates the series of the failure counters at zero, so that dashboards and
// rate() see a healthy server's zeros rather than no data: latchkey_oauth_errors_total for each
// endpoint and each error code it can answer (oauth2.ErrorCodes),
// latchkey_client_auth_failures_total for each method (oauth2.ClientAuthMethodLabels) and
// latchkey_rate_limited_total for each reason (oauth2.RateLimitReasons).
func (m *Metrics) InitFailureSeries(errorCodes map[string][]string, authMethods, rateLimitReasons []string) {
	if m == nil {
		return
	}
	for endpoint, cs := range errorCodes {
		for _, c := range cs {
			m.oauthErrors.WithLabelValues(endpoint, c)
		}
	}
	for _, method := range authMethods {
		m.clientAuthFailures.WithLabelValues(method)
	}
	for _, reason := range rateLimitReasons {
		m.rateLimited.WithLabelValues(reason)
	}
}

// RegisterBuildInfo registers latchkey_build_info{version, go_version}, always 1.
func RegisterBuildInfo(reg prometheus.Registerer, version string) error {
	return reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "latchkey_build_info",
		Help:        "Always 1; the labels name the running build: version and the Go version it was built with.",
		ConstLabels: prometheus.Labels{"version": version, "go_version": runtime.Version()},
	}, func() float64 { return 1 }))
}

// RefreshReuseDetected counts a refresh token reuse detection.
func (m *Metrics) RefreshReuseDetected() {
	if m == nil {
		return
	}
	m.refreshReuse.Inc()
}

// RegistrySynced records that the registry took in an informer event for a kind (a fixed set:
// OAuthClient, Scope, User, WorkloadIssuer, ProtectedResource).
func (m *Metrics) RegistrySynced(kind string) {
	if m == nil {
		return
	}
	m.registrySynced.WithLabelValues(kind).SetToCurrentTime()
}

// RegistryLag records how many cached objects of a kind the registry has not taken in the
// current generation of yet, and the watermark it reports.
func (m *Metrics) RegistryLag(kind string, pending int, watermark uint64) {
	if m == nil {
		return
	}
	m.registryLag.WithLabelValues(kind).Set(float64(pending))
	m.registryWatermark.WithLabelValues(kind).Set(float64(watermark))
}

// KeyRotated counts a signing key rotation.
func (m *Metrics) KeyRotated() {
	if m == nil {
		return
	}
	m.keyRotations.Inc()
}

// KeyRetired counts a signing key retired at once.
func (m *Metrics) KeyRetired() {
	if m == nil {
		return
	}
	m.keyRetirements.Inc()
}

// Snapshotter gives the current registry snapshot; *registry.Registry implements it.
type Snapshotter interface {
	Snapshot() *registry.Snapshot
}

// Kind label values: the Kubernetes kind names, the same in every metric with a kind label.
const (
	KindOAuthClient = "OAuthClient"
	KindScope       = "Scope"
	KindUser        = "User"
	// KindOIDCIdentityProvider counts the upstream OIDC identity providers served.
	KindOIDCIdentityProvider = "OIDCIdentityProvider"
	// KindLDAPIdentityProvider counts the LDAP identity providers served.
	KindLDAPIdentityProvider = "LDAPIdentityProvider"
	// KindGitHubIdentityProvider counts the GitHub identity providers served.
	KindGitHubIdentityProvider = "GitHubIdentityProvider"
)

// WatchRegistry registers latchkey_registry_objects{kind}: the OAuthClients, Scopes, Users,
// OIDCIdentityProviders, LDAPIdentityProviders and GitHubIdentityProviders of the current
// registry snapshot.
func (m *Metrics) WatchRegistry(r Snapshotter) error {
	if m == nil {
		return nil
	}
	for _, kind := range []string{KindOAuthClient, KindScope, KindUser, KindOIDCIdentityProvider, KindLDAPIdentityProvider, KindGitHubIdentityProvider} {
		g := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "latchkey_registry_objects", Help: "Objects in the registry snapshot, by kind.",
			ConstLabels: prometheus.Labels{"kind": kind},
		}, func() float64 {
			s := r.Snapshot()
			if s == nil {
				return 0
			}
			clients, scopes, users := s.Counts()
			switch kind {
			case KindOAuthClient:
				return float64(clients)
			case KindScope:
				return float64(scopes)
			case KindOIDCIdentityProvider:
				return float64(s.UpstreamOIDCCount())
			case KindLDAPIdentityProvider:
				return float64(s.UpstreamLDAPCount())
			case KindGitHubIdentityProvider:
				return float64(s.UpstreamGitHubCount())
			}
			return float64(users)
		})
		if err := m.reg.Register(g); err != nil {
			return err
		}
	}
	return nil
}

// KeySource gives the loaded signing key set; *keys.Keyring implements it.
type KeySource interface {
	Set() *keys.Set
}

// WatchKeys registers latchkey_signing_key_age_seconds{alg,state}: the age of the newest key of
// each algorithm and state. The key ID is not a label (it changes with every rotation).
func (m *Metrics) WatchKeys(src KeySource, now func() time.Time) error {
	if m == nil {
		return nil
	}
	if now == nil {
		now = time.Now
	}
	return m.reg.Register(&keyAgeCollector{src: src, now: now, desc: prometheus.NewDesc(
		"latchkey_signing_key_age_seconds", "Age of the newest signing key of each algorithm and state.",
		[]string{"alg", "state"}, nil)})
}

type keyAgeCollector struct {
	src  KeySource
	now  func() time.Time
	desc *prometheus.Desc
}

func (c *keyAgeCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *keyAgeCollector) Collect(ch chan<- prometheus.Metric) {
	set := c.src.Set()
	if set == nil {
		return
	}
	now := c.now()
	type key struct{ alg, state string }
	ages := map[key]float64{}
	for _, k := range set.Keys {
		id := key{k.Algorithm, string(set.State(k, now))}
		age := now.Sub(k.Created).Seconds()
		if old, ok := ages[id]; !ok || age < old {
			ages[id] = age
		}
	}
	for id, age := range ages {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, age, id.alg, id.state)
	}
}
