package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/go-logr/logr"
	"go.uber.org/zap/zapcore"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

const serveSynopsis = `Usage: latchkey serve [flags]

Runs the OAuth 2.0 / OpenID Connect server in one of two modes:

  latchkey serve --manifests DIR     embedded: no cluster; OAuthClient, Scope, User, WorkloadIssuer,
                                     OIDCIdentityProvider, LDAPIdentityProvider, OAuthClientPolicy
                                     and Secret manifests are read from DIR and reloaded when they
                                     change. Probes and metrics listen on 127.0.0.1 unless their
                                     flags say otherwise.
  latchkey serve [--kubeconfig FILE] operator: against a Kubernetes cluster; without --kubeconfig
                                     $KUBECONFIG, else the in-cluster config (in a Pod), else
                                     ~/.kube/config.
`

// Default listeners of the probes and metrics: every interface against a cluster (a Pod's
// kubelet and Prometheus reach them there), loopback in the embedded mode (a laptop).
const (
	defaultMetricsPort = "9090"
	defaultProbePort   = "8081"
)

// noStacktraces is the zap stack trace level: only panics carry stack traces. What a user does
// wrong (a manifest, a flag, a missing cluster) is logged at warn or error and a stack trace
// would only bury the message; --zap-stacktrace-level still overrides it.
const noStacktraces = zapcore.DPanicLevel

// modeDefaults fills in the defaults that depend on the mode: the probe and metrics listeners
// bind loopback in the embedded mode, every interface against a cluster.
func (o *serveOptions) modeDefaults() {
	host := ""
	if o.manifestsDir != "" {
		host = "127.0.0.1"
	}
	if o.metricsAddress == "" {
		o.metricsAddress = host + ":" + defaultMetricsPort
	}
	if o.probeAddress == "" {
		o.probeAddress = host + ":" + defaultProbePort
	}
}

// twoModes explains the two modes when no cluster is configured or reachable.
const twoModes = `latchkey serve runs in one of two modes:
  latchkey serve --manifests DIR       no cluster: the resources are read from a folder (make run)
  latchkey serve --kubeconfig FILE     against a cluster (without the flag: $KUBECONFIG, else the
                                       in-cluster config in a Pod, else ~/.kube/config)`

// clusterConfig returns the REST config of the cluster the operator runs against, and checks
// that its API server answers (within reachableTimeout; the manager would otherwise wait for its
// caches and fail later, less clearly). Missing or unreachable, the error says how to run with a
// cluster and without one.
func clusterConfig(ctx context.Context, kubeconfig string) (*rest.Config, error) {
	// The order of ctrl.GetConfig: --kubeconfig, $KUBECONFIG, the in-cluster config, ~/.kube/config.
	source := kubeconfig
	if source == "" {
		source = os.Getenv(clientcmd.RecommendedConfigPathEnvVar)
	}
	inPod := source == "" && os.Getenv("KUBERNETES_SERVICE_HOST") != ""
	if inPod {
		source = "the in-cluster config"
	}
	if source == "" {
		source = clientcmd.RecommendedHomeFile
		if _, err := os.Stat(source); err != nil {
			return nil, fmt.Errorf("no Kubernetes cluster to run against: no --kubeconfig, no $KUBECONFIG, not in a Pod and no %s\n%s", source, twoModes)
		}
	}
	cfg, err := restConfig(kubeconfig, inPod)
	switch {
	case clientcmd.IsEmptyConfig(err):
		return nil, fmt.Errorf("no Kubernetes cluster to run against: %s does not exist or names no cluster\n%s", source, twoModes)
	case err != nil && inPod:
		return nil, fmt.Errorf("%s: %w\n%s", source, err, twoModes)
	case err != nil:
		return nil, fmt.Errorf("kubeconfig %s: %w\n%s", source, err, twoModes)
	}
	if err := reachable(ctx, cfg); err != nil {
		return nil, fmt.Errorf("the Kubernetes API server %s (from %s) does not answer: %w\n%s", cfg.Host, source, err, twoModes)
	}
	return cfg, nil
}

// restConfig loads the cluster's REST config in the order of ctrl.GetConfig, without its error
// log: the kubeconfig file; in a Pod without $KUBECONFIG, the in-cluster config; else
// $KUBECONFIG (a list of files) or ~/.kube/config.
func restConfig(kubeconfig string, inPod bool) (*rest.Config, error) {
	var cfg *rest.Config
	var err error
	switch {
	case kubeconfig != "":
		cfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
	case inPod:
		cfg, err = rest.InClusterConfig()
	default:
		cfg, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(clientcmd.NewDefaultClientConfigLoadingRules(), &clientcmd.ConfigOverrides{}).ClientConfig()
	}
	if err == nil && cfg.QPS == 0 {
		// As ctrl.GetConfig does: no client-side limit (5/s by default), the API server's
		// priority and fairness decides; TokenReviews would otherwise queue behind it.
		cfg.QPS = -1
	}
	return cfg, err
}

// reachableTimeout bounds the start-up check of the API server.
const reachableTimeout = 10 * time.Second

// reachable asks the API server for its version.
func reachable(ctx context.Context, cfg *rest.Config) error {
	c := rest.CopyConfig(cfg)
	c.Timeout = reachableTimeout
	dc, err := discovery.NewDiscoveryClientForConfig(c)
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { _, err := dc.ServerVersion(); done <- err }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// errLeaderElectionLost is the error controller-runtime's manager reports whenever its leader
// election ends: when the Lease is lost, and also when it is released on shutdown
// (LeaderElectionReleaseOnCancel).
const errLeaderElectionLost = "leader election lost"

// shutdownQuietSink is the server's logger: once ctx has ended (a signal asked the process to
// stop), the manager's "leader election lost", which then only means that this replica released
// the Lease, and the errors of requests the shutdown cancelled (a reconciler's, a replica
// report's) are info lines, not errors. A Lease lost while running stays an error (and
// mgr.Start returns it).
type shutdownQuietSink struct {
	logr.LogSink
	ctx context.Context
}

var _ logr.CallDepthLogSink = shutdownQuietSink{}

func (s shutdownQuietSink) Error(err error, msg string, keysAndValues ...any) {
	switch {
	case s.ctx.Err() == nil || err == nil:
	case err.Error() == errLeaderElectionLost:
		s.Info(0, "leader election ended: the leader Lease was released at shutdown", keysAndValues...)
		return
	case errors.Is(err, context.Canceled):
		// A reconciler or a writer whose API call the shutdown cancelled.
		s.Info(0, msg+" (cancelled by the shutdown)", append(keysAndValues, "error", err.Error())...)
		return
	}
	s.LogSink.Error(err, msg, keysAndValues...)
}

func (s shutdownQuietSink) WithValues(keysAndValues ...any) logr.LogSink {
	return shutdownQuietSink{LogSink: s.LogSink.WithValues(keysAndValues...), ctx: s.ctx}
}

func (s shutdownQuietSink) WithName(name string) logr.LogSink {
	return shutdownQuietSink{LogSink: s.LogSink.WithName(name), ctx: s.ctx}
}

func (s shutdownQuietSink) WithCallDepth(depth int) logr.LogSink {
	if cd, ok := s.LogSink.(logr.CallDepthLogSink); ok {
		return shutdownQuietSink{LogSink: cd.WithCallDepth(depth), ctx: s.ctx}
	}
	return s
}

// quietAtShutdown is log, quiet about what the shutdown itself causes once ctx has ended: the
// leader Lease released, requests cancelled (shutdownQuietSink).
func quietAtShutdown(ctx context.Context, log logr.Logger) logr.Logger {
	if log.GetSink() == nil {
		return log
	}
	return log.WithSink(shutdownQuietSink{LogSink: log.GetSink(), ctx: ctx})
}
