// Command latchkey is a Kubernetes-native OAuth 2.0 and OpenID Connect authorization server.
//
// `latchkey serve` runs it either against a Kubernetes API server (the operator: informers feed
// the registry, the leader writes Secrets and status) or, with --manifests, on its own with the
// resources read from a folder (the embedded default). This file is the only place where the
// concrete types of the three layers are wired together.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/zapr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
	"github.com/latchkey-dev/latchkey/controllers"
	"github.com/latchkey-dev/latchkey/controllers/manifests"
	ctrlreg "github.com/latchkey-dev/latchkey/controllers/registration"
	"github.com/latchkey-dev/latchkey/server/backchannel"
	"github.com/latchkey-dev/latchkey/server/credentialuse"
	"github.com/latchkey-dev/latchkey/server/keys"
	"github.com/latchkey-dev/latchkey/server/metrics"
	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/oauth2/grants"
	"github.com/latchkey-dev/latchkey/server/oauth2/handler"
	"github.com/latchkey-dev/latchkey/server/oauth2/register"
	"github.com/latchkey-dev/latchkey/server/registration"
	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/store"
	"github.com/latchkey-dev/latchkey/server/token"
	"github.com/latchkey-dev/latchkey/server/workload"
)

func main() {
	os.Exit(exitCode(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr), os.Stderr))
}

type serveOptions struct {
	// obs: logging, the audit and access logs, tracing (observability.go); tracer is the
	// running tracing, nil when off.
	obs           observabilityOptions
	tracer        *tracer
	listenAddress string
	issuer        string
	manifestsDir  string
	kubeconfig    string
	namespace     string
	// watchNamespaces restricts the namespaced objects the server sees (OAuthClients, Secrets) to
	// these namespaces and --namespace; empty: all namespaces.
	watchNamespaces  []string
	store            string
	redis            redisOptions
	keysFile         string
	keySecretName    string
	defaultPolicy    string
	signingAlgorithm string
	accessTokenTTL   time.Duration
	refreshTokenTTL  time.Duration
	refreshGrace     time.Duration
	device           handler.DeviceConfig
	idTokenTTL       time.Duration
	keyRotation      time.Duration
	clientIPHeader   string
	clientRateLimit  registry.RateLimit
	registration     registrationOptions
	dpop             dpopOptions
	upstream         upstreamOptions
	metricsAddress   string
	probeAddress     string
	pprofAddress     string
	leaderElect      bool
	leaderElectionID string
	leaseDuration    time.Duration
	renewDeadline    time.Duration
	retryPeriod      time.Duration
	shutdownTimeout  time.Duration
	// replicaName and replicaLease: this replica's report of what it serves (a Lease).
	replicaName  string
	replicaLease time.Duration
	// saVerification is how ServiceAccount tokens are verified (workload.ModeTokenReview or
	// ModeJWKS); saIssuer the cluster's issuer in JWKS mode ("" discovers it).
	saVerification string
	saIssuer       string
	saReviewTTL    time.Duration
	// accessTokenCache is how many verified access tokens the bearer endpoints keep (0: none).
	accessTokenCache int
	// backchannel: the delivery of back-channel logout tokens (server/backchannel).
	backchannelTimeout  time.Duration
	requirePAR          bool
	backchannelAttempts int
}

func (o *serveOptions) bind(fs *flag.FlagSet) {
	fs.StringVar(&o.listenAddress, "listen-address", ":8080", "address the OAuth endpoints listen on")
	o.obs.bind(fs)
	fs.StringVar(&o.issuer, "issuer", "", "public issuer URL (default: http://localhost:<port> from --listen-address)")
	fs.StringVar(&o.manifestsDir, "manifests", "", "run without a cluster, loading OAuthClient, Scope, User, WorkloadIssuer, OIDCIdentityProvider, LDAPIdentityProvider, OAuthClientPolicy and Secret manifests from this folder (watched)")
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig file of the cluster to run against (default: $KUBECONFIG, else the in-cluster config in a Pod, else ~/.kube/config)")
	fs.StringVar(&o.namespace, "namespace", defaultNamespace(), "namespace of the signing key Secret and the leader Lease")
	fs.Func("watch-namespaces", "comma-separated namespaces whose OAuthClients and Secrets the server watches and reads, besides --namespace (default: all namespaces); Users' password Secrets and WorkloadIssuers' key Secrets must be in one of them", func(v string) error {
		for _, ns := range strings.Split(v, ",") {
			if ns = strings.TrimSpace(ns); ns != "" && !slices.Contains(o.watchNamespaces, ns) {
				o.watchNamespaces = append(o.watchNamespaces, ns)
			}
		}
		return nil
	})
	fs.StringVar(&o.store, "store", envOr("LATCHKEY_STORE", "memory"), "leased store for codes and refresh tokens: memory (one replica) or redis (many; see --redis-*) (env LATCHKEY_STORE)")
	o.redis.bind(fs)
	fs.StringVar(&o.keysFile, "keys-file", "", "with --manifests: keep the signing keys in this file (created when missing) instead of memory")
	fs.StringVar(&o.keySecretName, "key-secret-name", controllers.DefaultKeySecretName, "name of the signing key Secret")
	fs.StringVar(&o.defaultPolicy, "default-client-policy", "", "name of an OAuthClientPolicy in --namespace that applies to the OAuthClients of every namespace (with --manifests: in the folder)")
	fs.StringVar(&o.signingAlgorithm, "signing-algorithm", keys.RS256, "default token signing algorithm: RS256, ES256 or EdDSA")
	fs.DurationVar(&o.accessTokenTTL, "access-token-lifetime", time.Hour, "default access token lifetime")
	fs.DurationVar(&o.refreshTokenTTL, "refresh-token-lifetime", 30*24*time.Hour, "default refresh token lifetime")
	fs.DurationVar(&o.refreshGrace, "refresh-reuse-grace", 2*time.Second, "how long after a rotation the old refresh token, presented again by its client, gets the same successor instead of revoking its family (retries)")
	fs.IntVar(&o.accessTokenCache, "access-token-cache-size", token.DefaultCacheSize, "how many verified access tokens introspection, userinfo and revocation keep (about 1 KB each), so a token presented again costs no signature verification; kept until exp while its signing key is published, revocation still checked on every call (0 disables)")
	fs.DurationVar(&o.idTokenTTL, "id-token-lifetime", time.Hour, "default ID token lifetime")
	fs.DurationVar(&o.device.CodeLifetime, "device-code-lifetime", grants.DefaultDeviceCodeLifetime, "how long a device code and its user code of the device authorization grant (RFC 8628) last")
	fs.DurationVar(&o.device.Interval, "device-poll-interval", grants.DefaultDevicePollInterval, "the minimum time between polls of the device_code grant that clients are told (whole seconds; faster polls get slow_down)")
	fs.DurationVar(&o.keyRotation, "key-rotation-period", 30*24*time.Hour, "how long a signing key signs before the leader rotates it (0 disables; annotate the key Secret with oauth.latchkey.dev/rotate-keys to force one)")
	fs.StringVar(&o.clientIPHeader, "client-ip-header", "", "header a trusted reverse proxy sets to the client address (e.g. X-Forwarded-For), for the brute-force limits of logins and client authentication and the audit log; only behind a proxy that overwrites it")
	fs.IntVar(&o.clientRateLimit.PerMinute, "client-rate-limit", 0, "token requests per minute of each client without a spec.rateLimit of its own, across all replicas (0: no limit)")
	fs.IntVar(&o.clientRateLimit.Burst, "client-rate-limit-burst", 0, "burst of --client-rate-limit (0: a tenth of the rate, at least 1)")
	fs.DurationVar(&o.backchannelTimeout, "backchannel-logout-timeout", backchannel.DefaultTimeout, "how long a client's backchannelLogoutURI has to answer one delivery of a logout token")
	fs.IntVar(&o.backchannelAttempts, "backchannel-logout-attempts", backchannel.DefaultMaxAttempts, "how many times a logout token delivery is tried (with exponential back-off from 5s) before it is given up with a Warning Event on the OAuthClient")
	fs.BoolVar(&o.requirePAR, "require-pushed-authorization-requests", false, "refuse every authorization request that does not come through the pushed authorization request endpoint /oauth2/par (RFC 9126); discovery advertises require_pushed_authorization_requests")
	o.registration.bind(fs)
	o.dpop.bind(fs)
	o.upstream.bind(fs)
	fs.StringVar(&o.metricsAddress, "metrics-bind-address", "", "metrics address (default :9090, with --manifests 127.0.0.1:9090; \"0\" disables)")
	fs.StringVar(&o.probeAddress, "health-probe-bind-address", "", "health and readiness probe address (default :8081, with --manifests 127.0.0.1:8081; \"0\" disables)")
	fs.StringVar(&o.pprofAddress, "pprof-bind-address", "", "serve Go's runtime profiles (/debug/pprof/) on this address from start-up, for profiling a load or the operator's start-up (empty or \"0\": off; use a loopback address)")
	fs.BoolVar(&o.leaderElect, "leader-elect", true, "elect a leader (a Lease) among replicas for writes")
	fs.StringVar(&o.leaderElectionID, "leader-election-id", "latchkey.oauth.latchkey.dev", "name of the leader Lease")
	fs.DurationVar(&o.leaseDuration, "leader-election-lease-duration", 15*time.Second, "how long a non-leader waits after the last renewal before it takes the leader Lease over")
	fs.DurationVar(&o.renewDeadline, "leader-election-renew-deadline", 10*time.Second, "how long the leader keeps retrying a renewal before it gives leadership up (less than the lease duration)")
	fs.DurationVar(&o.retryPeriod, "leader-election-retry-period", 2*time.Second, "how often replicas try to acquire or renew the leader Lease")
	fs.StringVar(&o.replicaName, "replica-name", "", "name this replica reports what it serves under, in the Lease latchkey-replica-<name> in --namespace (default: $POD_NAME, else the hostname with a random suffix)")
	fs.DurationVar(&o.replicaLease, "replica-lease-duration", controllers.DefaultReplicaLeaseDuration, "how long a replica counts in the served counts (status.served) after its last report")
	fs.StringVar(&o.saVerification, "service-account-token-verification", workload.ModeTokenReview,
		"how service_account_token clients' ServiceAccount tokens are verified: TokenReview (the API server checks that the Pod and ServiceAccount still exist; a review is reused for at most 30 s) or JWKS (the cluster's keys, no round trip; a deleted Pod's token stays valid until it expires)")
	fs.StringVar(&o.saIssuer, "service-account-issuer", "", "with --service-account-token-verification JWKS: the cluster's ServiceAccount token issuer (default: from the API server's /.well-known/openid-configuration)")
	fs.DurationVar(&o.saReviewTTL, "service-account-review-cache", 30*time.Second, "how long a successful TokenReview of a ServiceAccount token is reused (at most 30s, never past the token's expiry)")
	fs.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 20*time.Second, "how long in-flight requests may take to finish on shutdown")
}

func (o *serveOptions) validate() error {
	if err := o.obs.validate(); err != nil {
		return err
	}
	if !slices.Contains(keys.SupportedAlgorithms(), o.signingAlgorithm) {
		return fmt.Errorf("--signing-algorithm %q: want one of %s", o.signingAlgorithm, strings.Join(keys.SupportedAlgorithms(), ", "))
	}
	switch o.store {
	case "memory":
	case "redis":
		if err := o.redis.validate(); err != nil {
			return err
		}
	default:
		return fmt.Errorf("--store %q: want memory or redis", o.store)
	}
	if o.issuer == "" {
		o.issuer = defaultIssuer(o.listenAddress)
	}
	o.issuer = strings.TrimRight(o.issuer, "/")
	if o.registration.namespace == "" {
		o.registration.namespace = o.namespace
	}
	if err := o.registration.validate(); err != nil {
		return err
	}
	if err := o.dpop.validate(); err != nil {
		return err
	}
	if err := o.upstream.validate(); err != nil {
		return err
	}
	if err := o.validateWatchNamespaces(); err != nil {
		return err
	}
	switch o.saVerification {
	case workload.ModeTokenReview, workload.ModeJWKS:
	default:
		return fmt.Errorf("--service-account-token-verification %q: want %s or %s", o.saVerification, workload.ModeTokenReview, workload.ModeJWKS)
	}
	if o.saReviewTTL <= 0 || o.saReviewTTL > 30*time.Second {
		return fmt.Errorf("--service-account-review-cache %s: want more than 0s and at most 30s", o.saReviewTTL)
	}
	if o.backchannelTimeout <= 0 || o.backchannelTimeout > time.Minute {
		return fmt.Errorf("--backchannel-logout-timeout %s: want more than 0s and at most 1m", o.backchannelTimeout)
	}
	if o.backchannelAttempts < 1 || o.backchannelAttempts > 10 {
		return fmt.Errorf("--backchannel-logout-attempts %d: want 1 to 10", o.backchannelAttempts)
	}
	if o.accessTokenCache < 0 || o.accessTokenCache == 1 {
		return fmt.Errorf("--access-token-cache-size %d: want 0 (off) or at least 2", o.accessTokenCache)
	}
	if o.keysFile != "" && o.manifestsDir == "" {
		return errors.New("--keys-file is for --manifests; against a cluster the keys live in a Secret")
	}
	return nil
}

// validateWatchNamespaces checks --watch-namespaces: names of namespaces, including the
// registration namespace when registration is on (registered clients must be seen to be served).
func (o *serveOptions) validateWatchNamespaces() error {
	for _, ns := range o.watchNamespaces {
		if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
			return fmt.Errorf("--watch-namespaces: %q is not a namespace name: %s", ns, strings.Join(errs, "; "))
		}
	}
	if o.registration.enabled() && len(o.watchNamespaces) > 0 && !slices.Contains(o.watchedNamespaces(), o.registration.namespace) {
		return fmt.Errorf("--registration-namespace %q is not watched: add it to --watch-namespaces (%s)",
			o.registration.namespace, strings.Join(o.watchNamespaces, ","))
	}
	return nil
}

// watchedNamespaces is --watch-namespaces plus --namespace (the signing key Secret lives there),
// or nil for all namespaces.
func (o *serveOptions) watchedNamespaces() []string {
	if len(o.watchNamespaces) == 0 {
		return nil
	}
	if slices.Contains(o.watchNamespaces, o.namespace) {
		return slices.Clone(o.watchNamespaces)
	}
	return append(slices.Clone(o.watchNamespaces), o.namespace)
}

// cacheOptions restricts the informers of namespaced kinds to the watched namespaces; cluster-scoped
// kinds (Scope, User, WorkloadIssuer) are watched cluster-wide either way. Every informer trims
// the objects it caches (controllers.TrimForCache).
func (o *serveOptions) cacheOptions() cache.Options {
	// The replicas' reports (Leases) live in the server's namespace only, where its Role lets it
	// read them.
	opts := cache.Options{ByObject: map[client.Object]cache.ByObject{
		&coordinationv1.Lease{}: {Namespaces: map[string]cache.Config{o.namespace: {}}},
	}, DefaultTransform: controllers.TrimForCache} // no managedFields, no last-applied annotation
	watched := o.watchedNamespaces()
	if watched == nil {
		return opts
	}
	defaults := make(map[string]cache.Config, len(watched))
	for _, ns := range watched {
		defaults[ns] = cache.Config{}
	}
	opts.DefaultNamespaces = defaults
	return opts
}

func defaultNamespace() string {
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	if b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace"); err == nil {
		return strings.TrimSpace(string(b))
	}
	return corev1.NamespaceDefault
}

func defaultIssuer(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "http://localhost:8080"
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}

func serve(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	// Only panics carry stack traces (noStacktraces), unless --zap-stacktrace-level says otherwise.
	opts := serveOptions{obs: observabilityOptions{zap: zap.Options{StacktraceLevel: noStacktraces}}}
	opts.bind(fs)
	if err := parseFlags(fs, args, serveSynopsis, stdout); err != nil {
		return err
	}
	opts.obs.parsed(fs)
	opts.modeDefaults()
	if err := opts.validate(); err != nil {
		return &usageError{command: "serve", err: err}
	}
	// The raw zap logger also gives the manifest loader a warning level (logr has none).
	raw := opts.obs.newLogger(stderr)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := quietAtShutdown(ctx, zapr.NewLogger(raw))
	ctrl.SetLogger(log)
	ctx = logr.NewContext(ctx, log)

	if err := startPprof(ctx, opts.pprofAddress, log); err != nil {
		return fmt.Errorf("--pprof-bind-address: %w", err)
	}
	var regOpts []registry.Option
	if opts.registration.enabled() {
		// The client_name check of every registration looks names up instead of scanning.
		regOpts = append(regOpts, registry.WithClientNameIndex(register.NameKey))
	}
	reg := registry.New(regOpts...)
	keyring := keys.NewKeyring()
	st, err := opts.openStore(ctx)
	if err != nil {
		return err
	}
	cfg, err := opts.handlerConfig(reg, keyring, st)
	if err != nil {
		return err
	}
	var outs logs
	defer outs.close()
	if err := outs.apply(&opts.obs, &cfg, stdout, stderr); err != nil {
		return err
	}
	if opts.tracer, err = opts.obs.startTracing(ctx); err != nil {
		return err
	}
	defer opts.tracer.shutdown(ctx)
	if err := opts.tracer.instrumentRedis(st); err != nil {
		return err
	}
	// The operator serves controller-runtime's registry on its metrics endpoint; the embedded
	// mode has its own registry and endpoint.
	var registerer prometheus.Registerer = ctrlmetrics.Registry
	var gatherer prometheus.Gatherer = ctrlmetrics.Registry
	if opts.manifestsDir != "" {
		r := prometheus.NewRegistry()
		if err := r.Register(collectors.NewGoCollector()); err != nil {
			return err
		}
		if err := r.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
			return err
		}
		registerer, gatherer = r, r
	}
	if err := instrument(&cfg, registerer, reg, keyring, opts.store); err != nil {
		return err
	}
	if opts.manifestsDir != "" {
		return serveEmbedded(ctx, &opts, cfg, reg, keyring, st, stdout, gatherer, raw.Sugar())
	}
	return serveCluster(ctx, &opts, cfg, reg, keyring, st)
}

// instrument registers the server's metrics with registerer and wires them into cfg: the
// handler records through cfg.Metrics, the store is wrapped to count its operations.
func instrument(cfg *handler.Config, registerer prometheus.Registerer, reg *registry.Registry, keyring *keys.Keyring, backend string) error {
	m, err := metrics.New(registerer)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	if err := metrics.RegisterBuildInfo(registerer, readBuildInfo().Version); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	m.InitFailureSeries(oauth2.ErrorCodes(), oauth2.ClientAuthMethodLabels(), oauth2.RateLimitReasons())
	if err := m.WatchRegistry(reg); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	if err := m.WatchKeys(keyring, nil); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	cfg.Metrics = m
	cfg.Store = m.InstrumentStore(cfg.Store, backend)
	return nil
}

// serveMetrics serves the gatherer's metrics at /metrics until ctx ends.
func serveMetrics(ctx context.Context, addr string, gatherer prometheus.Gatherer) error {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return serveHTTP(ctx, ln, mux, time.Second)
}

// handlerConfig is the OAuth handler's configuration, without the registrar (which depends on
// the mode).
func (o *serveOptions) handlerConfig(reg *registry.Registry, keyring *keys.Keyring, st store.Store) (handler.Config, error) {
	cfg := handler.Config{
		Issuer:                             o.issuer,
		DefaultAlgorithm:                   o.signingAlgorithm,
		AccessTokenLifetime:                o.accessTokenTTL,
		RefreshTokenLifetime:               o.refreshTokenTTL,
		RefreshReuseGrace:                  o.refreshGrace,
		Device:                             o.device,
		IDTokenLifetime:                    o.idTokenTTL,
		Registry:                           reg,
		Keys:                               keyring,
		Store:                              st,
		Login:                              handler.LoginConfig{ClientIPHeader: o.clientIPHeader},
		ClientRateLimit:                    o.clientRateLimit,
		AccessTokenCacheSize:               o.accessTokenCache,
		BackchannelLogout:                  true, // newBackchannel runs in both modes
		RequirePushedAuthorizationRequests: o.requirePAR,
	}
	if o.accessTokenCache == 0 {
		cfg.AccessTokenCacheSize = -1 // the flag's 0 is off; the Config's is the default
	}
	if err := o.dpop.apply(&cfg); err != nil {
		return cfg, err
	}
	if err := o.upstream.apply(&cfg); err != nil {
		return cfg, err
	}
	return cfg, o.registration.apply(&cfg)
}

// serveEmbedded runs with no cluster: resources from a folder, keys in memory or a file.
func serveEmbedded(ctx context.Context, opts *serveOptions, cfg handler.Config, reg *registry.Registry, keyring *keys.Keyring, st leasedStore, stdout io.Writer, gatherer prometheus.Gatherer, warn manifests.Warner) error {
	log := logr.FromContextOrDiscard(ctx)
	var set *keys.Set
	var err error
	if opts.keysFile != "" {
		set, err = keys.LoadOrCreateFile(opts.keysFile, keys.SupportedAlgorithms(), time.Now())
	} else {
		set, err = keys.Generate(keys.SupportedAlgorithms(), time.Now())
	}
	if err != nil {
		return err
	}
	if err := keyring.Load(set); err != nil {
		return err
	}
	// No cluster: ServiceAccount tokens cannot be verified; WorkloadIssuers and private_key_jwt can.
	wv, err := workload.New(workloadConfig(opts, cfg))
	if err != nil {
		return err
	}
	cfg.ClientAssertions, cfg.WorkloadTokens = wv, wv
	loader, err := manifests.New(opts.manifestsDir, reg, warn)
	if err != nil {
		return err
	}
	if opts.defaultPolicy != "" {
		loader.SetDefaultPolicy(opts.namespace, opts.defaultPolicy)
	}
	if opts.registration.enabled() {
		// Registered clients live in memory only: they are gone after a restart. The folder's
		// OAuthClientPolicies of the registration namespace apply to them.
		mo := opts.registration.memoryOptions()
		mo.Admit = loader.AdmitRegistration(mo.Namespace)
		r, err := registration.NewMemory(reg, mo)
		if err != nil {
			return err
		}
		cfg.Registrar = r
	}
	// No cluster, so no Events: a given-up delivery is logged and counted.
	logouts, err := newBackchannel(opts, cfg, reg, keyring, nil)
	if err != nil {
		return err
	}
	cfg.SessionEnd = logouts // every ended OP session queues its clients' logout tokens
	h, err := newOAuthHandler(cfg, opts.tracer)
	if err != nil {
		return err
	}
	switch err := loader.Load(ctx); {
	case err != nil && ctx.Err() != nil: // signalled while loading: stop now, as a server that was serving
		log.Info("stopped while loading manifests", "dir", opts.manifestsDir, "reason", err.Error())
		return nil //nolint:nilerr // a signal is a clean stop
	case err != nil:
		return err
	}
	// The first load's garbage (every parsed object of the folder) is most of the peak: give it
	// back to the OS now rather than over the next minutes.
	debug.FreeOSMemory()
	ln, err := net.Listen("tcp", opts.listenAddress)
	if err != nil {
		return err
	}
	ready := &atomic.Bool{}
	ready.Store(true)
	demo := loader.Demo() // read before Watch starts reloading
	background := make(chan error, 5)
	go func() { background <- loader.Watch(ctx, 200*time.Millisecond) }()
	go func() { background <- st.Start(ctx) }()
	go func() { background <- logouts.Start(ctx) }()
	if opts.probeAddress != "0" {
		go func() { background <- serveProbes(ctx, opts.probeAddress, ready) }()
	}
	if opts.metricsAddress != "0" {
		go func() { background <- serveMetrics(ctx, opts.metricsAddress, gatherer) }()
	}
	served := make(chan error, 1)
	go func() { served <- serveHTTP(ctx, ln, h, opts.shutdownTimeout) }()
	log.Info("latchkey serving (embedded, no cluster)", "address", ln.Addr().String(), "issuer", opts.issuer, "manifests", opts.manifestsDir)
	printBanner(stdout, opts.issuer, demo)
	select {
	case err := <-served: // returns after ctx ends and in-flight requests are drained
		ready.Store(false)
		return err
	case err := <-background:
		if ctx.Err() == nil && err != nil {
			return err
		}
		ready.Store(false)
		return <-served
	}
}

func printBanner(w io.Writer, issuer string, demo *manifests.DemoClient) {
	fmt.Fprintf(w, "\nLatchkey is serving at %s\n  discovery: curl -s %s/.well-known/openid-configuration\n", issuer, issuer)
	if demo == nil {
		fmt.Fprintf(w, "  get a token: curl -s -u CLIENT_ID:CLIENT_SECRET -d grant_type=client_credentials %s/oauth2/token\n\n", issuer)
		return
	}
	fmt.Fprintf(w, "  get a token for the sample client (demo credentials from the manifests folder):\n")
	fmt.Fprintf(w, "    curl -s -u '%s:%s' -d grant_type=client_credentials %s/oauth2/token\n\n", demo.ClientID, demo.ClientSecret, issuer)
}

// serveHTTP serves until ctx ends, then drains in-flight requests for at most timeout.
func serveHTTP(ctx context.Context, ln net.Listener, h http.Handler, timeout time.Duration) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		// Requests keep running while the server drains on shutdown: their context is not the
		// signal context (which is already cancelled then), only derived from it for values.
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	return srv.Shutdown(shutdownCtx)
}

func serveProbes(ctx context.Context, addr string, ready *atomic.Bool) error {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !ready.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok")
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return serveHTTP(ctx, ln, mux, time.Second)
}

// maxClientTokenLifetime is the longest access or ID token lifetime an OAuthClient may set
// (spec.lifetimes, capped by the CRD at 86400 s).
const maxClientTokenLifetime = 24 * time.Hour

// serveCluster runs as the operator against a Kubernetes API server.
func serveCluster(ctx context.Context, opts *serveOptions, cfg handler.Config, reg *registry.Registry, keyring *keys.Keyring, st leasedStore) error {
	kubeconfig, err := clusterConfig(ctx, opts.kubeconfig)
	if err != nil {
		return err
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return err
	}
	mgr, err := ctrl.NewManager(kubeconfig, ctrl.Options{
		Scheme:                        scheme,
		Cache:                         opts.cacheOptions(),
		Metrics:                       metricsserver.Options{BindAddress: opts.metricsAddress},
		HealthProbeBindAddress:        opts.probeAddress,
		LeaderElection:                opts.leaderElect,
		LeaderElectionID:              opts.leaderElectionID,
		LeaderElectionNamespace:       opts.namespace,
		LeaderElectionReleaseOnCancel: true,
		LeaseDuration:                 ptr.To(opts.leaseDuration),
		RenewDeadline:                 ptr.To(opts.renewDeadline),
		RetryPeriod:                   ptr.To(opts.retryPeriod),
		GracefulShutdownTimeout:       ptr.To(opts.shutdownTimeout + 5*time.Second), // the HTTP drain plus a margin
	})
	if err != nil {
		return fmt.Errorf("create manager: %w", err)
	}
	readiness := controllers.NewReadiness()
	// *metrics.Metrics implements each of these (asserted below), cfg.Metrics may be nil.
	keyMetrics, _ := cfg.Metrics.(controllers.KeyMetrics)
	syncMetrics, _ := cfg.Metrics.(controllers.SyncMetrics)
	propagationMetrics, _ := cfg.Metrics.(controllers.PropagationMetrics)
	clientEvents := controllers.NewClientEvents(mgr, reg)
	cfg.ClientEvents = clientEvents
	wcfg := workloadConfig(opts, cfg)
	if opts.saVerification == workload.ModeJWKS {
		if wcfg.ClusterKeys, wcfg.ClusterIssuer, err = controllers.ClusterKeys(ctx, kubeconfig, opts.saIssuer); err != nil {
			return err
		}
	} else {
		wcfg.Reviewer = controllers.NewTokenReviewer(mgr.GetClient())
	}
	wv, err := workload.New(wcfg)
	if err != nil {
		return err
	}
	cfg.ClientAssertions, cfg.WorkloadTokens = wv, wv
	// Every replica records which credential authenticated each client and flushes that into
	// the leased store, where the leader takes it for status.credentials.
	uses := credentialuse.New(cfg.Store, credentialuse.Options{})
	cfg.CredentialUses = uses
	if err := controllers.Setup(mgr, controllers.Options{
		KeyMetrics:      keyMetrics,
		SyncMetrics:     syncMetrics,
		Registry:        reg,
		Keys:            keyring,
		Namespace:       opts.namespace,
		WatchNamespaces: opts.watchedNamespaces(),
		KeySecretName:   opts.keySecretName,
		// The default OAuthClientPolicy, besides each namespace's own.
		DefaultClientPolicy: opts.defaultPolicy,
		Algorithms:          keys.SupportedAlgorithms(),
		TokenURL:            opts.issuer + "/oauth2/token",
		Readiness:           readiness,
		// A rotated key stays published until the longest-lived token it signed has expired.
		KeyRotationPeriod: opts.keyRotation,
		// A client may set its own token lifetimes, up to the CRD's 24 h: a retired key stays
		// published until the longest of them has passed.
		MaxTokenLifetime: max(opts.accessTokenTTL, opts.idTokenTTL, maxClientTokenLifetime),
		CredentialUses:   cfg.Store,
		// What this replica serves, for the leader's status.served and Propagated condition.
		ReplicaName:          opts.replicaName,
		ReplicaLeaseDuration: opts.replicaLease,
		PropagationMetrics:   propagationMetrics,
		// The RFC 9728 metadata ConfigMap of each ProtectedResource, as the server serves it.
		ResourceMetadata: handler.ResourceMetadata(cfg),
	}); err != nil {
		return fmt.Errorf("set up controllers: %w", err)
	}
	if opts.registration.enabled() {
		r, err := ctrlreg.New(mgr.GetClient(), opts.registration.namespace, append(opts.registration.clusterOptions(),
			ctrlreg.WithReader(mgr.GetAPIReader()),
			ctrlreg.WithDefaultPolicy(types.NamespacedName{Namespace: opts.namespace, Name: opts.defaultPolicy}),
			ctrlreg.WithTokenURL(opts.issuer+"/oauth2/token"))...)
		if err != nil {
			return err
		}
		cfg.Registrar = r
	}
	logouts, err := newBackchannel(opts, cfg, reg, keyring, clientEvents)
	if err != nil {
		return err
	}
	cfg.SessionEnd = logouts // every ended OP session queues its clients' logout tokens
	h, err := newOAuthHandler(cfg, opts.tracer)
	if err != nil {
		return err
	}
	if err := mgr.Add(logouts); err != nil { // delivers back-channel logout tokens, on every replica
		return err
	}
	if err := mgr.Add(st); err != nil { // the store's janitor, on every replica
		return err
	}
	if err := mgr.Add(uses); err != nil { // flushes the credential uses, on every replica
		return err
	}
	ln, err := net.Listen("tcp", opts.listenAddress)
	if err != nil {
		return err
	}
	if err := mgr.Add(&httpRunnable{ln: ln, handler: h, timeout: opts.shutdownTimeout}); err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("registry", readiness.Check); err != nil {
		return err
	}
	if opts.store == "redis" {
		if err := mgr.AddReadyzCheck("store", func(r *http.Request) error {
			ctx, cancel := context.WithTimeout(r.Context(), storeReadyzTimeout)
			defer cancel()
			return st.Ping(ctx)
		}); err != nil {
			return err
		}
	}
	if err := mgr.AddReadyzCheck("signing-keys", func(*http.Request) error {
		if !keyring.Loaded() {
			return errors.New("signing keys not loaded")
		}
		return nil
	}); err != nil {
		return err
	}
	logr.FromContextOrDiscard(ctx).Info("latchkey serving (operator)", "address", ln.Addr().String(), "issuer", opts.issuer, "namespace", opts.namespace, "watchNamespaces", opts.watchedNamespaces())
	return mgr.Start(ctx)
}

// newBackchannel returns the sender of back-channel logout tokens: it queues deliveries in the
// leased store and, as a Runnable on every replica, delivers them. events may be nil.
func newBackchannel(opts *serveOptions, cfg handler.Config, reg *registry.Registry, keyring *keys.Keyring, events backchannel.Events) (*backchannel.Sender, error) {
	bc := backchannel.Config{
		Issuer: opts.issuer, DefaultAlgorithm: opts.signingAlgorithm, Store: cfg.Store, Clients: reg, Keys: keyring,
		Timeout: opts.backchannelTimeout, MaxAttempts: opts.backchannelAttempts,
	}
	if events != nil {
		bc.Events = events
	}
	if m, ok := cfg.Metrics.(backchannel.Metrics); ok {
		bc.Metrics = m
	}
	return backchannel.New(bc)
}

// workloadConfig is the configuration of the client assertion verifier, without the cluster's
// ServiceAccount token verification (which depends on the mode).
func workloadConfig(opts *serveOptions, cfg handler.Config) workload.Config {
	return workload.Config{Issuer: opts.issuer, TokenEndpoint: opts.issuer + oauth2.TokenPath, Replay: cfg.Store, ReviewTTL: opts.saReviewTTL}
}

// httpRunnable serves the OAuth endpoints on every replica, leader or not.
type httpRunnable struct {
	ln      net.Listener
	handler http.Handler
	timeout time.Duration
}

var (
	_ manager.LeaderElectionRunnable = (*httpRunnable)(nil)
)

func (r *httpRunnable) Start(ctx context.Context) error {
	err := serveHTTP(ctx, r.ln, r.handler, r.timeout)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

func (r *httpRunnable) NeedLeaderElection() bool { return false }

var (
	_ controllers.KeyMetrics         = (*metrics.Metrics)(nil)
	_ controllers.SyncMetrics        = (*metrics.Metrics)(nil)
	_ controllers.PropagationMetrics = (*metrics.Metrics)(nil)
	_ token.CacheMetrics             = (*metrics.Metrics)(nil)
	_ grants.ExchangeMetrics         = (*metrics.Metrics)(nil)
	_ backchannel.Metrics            = (*metrics.Metrics)(nil)
	_ backchannel.Events             = (*controllers.ClientEvents)(nil)
)
