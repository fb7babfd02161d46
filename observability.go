package main

// The observability of `latchkey serve`: its log (--log-format, --log-level, and the older
// --zap-* flags), the access log (--access-log), the audit log's destination (--audit-log), how
// long the lines of both may wait in memory (--log-flush-interval) and OpenTelemetry tracing
// (--otlp-endpoint, --otlp-protocol and the standard OTEL_* variables).

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/extra/redisotel/v9"
	goredis "github.com/redis/go-redis/v9"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
	uzap "go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/latchkey-dev/latchkey/server/accesslog"
	"github.com/latchkey-dev/latchkey/server/audit"
	"github.com/latchkey-dev/latchkey/server/oauth2/handler"
)

// Log formats and levels of --log-format and --log-level.
const (
	logFormatJSON = "json"
	logFormatText = "text"
)

// observabilityOptions are the flags of logging and tracing.
type observabilityOptions struct {
	logFormat string
	logLevel  string
	// zap holds the older --zap-* flags (controller-runtime's), kept working: --log-format and
	// --log-level, when given, take precedence over --zap-encoder and --zap-log-level.
	zap       zap.Options
	auditLog  string
	accessLog string
	// logFlushInterval is how long access and audit log lines may wait in memory; 0 writes
	// each line at once.
	logFlushInterval time.Duration
	// otlpEndpoint and otlpProtocol override OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT and _PROTOCOL.
	otlpEndpoint string
	otlpProtocol string
	// set are the flags given on the command line.
	set map[string]bool
}

func (o *observabilityOptions) bind(fs *flag.FlagSet) {
	fs.StringVar(&o.logFormat, "log-format", logFormatJSON, "server log format: json (one object per line) or text (human-readable)")
	fs.StringVar(&o.logLevel, "log-level", "info", "server log level: debug, info, warn or error")
	fs.StringVar(&o.auditLog, "audit-log", "stderr", `where the JSON-lines audit log goes ("log":"audit" on every line): stderr, stdout (or -), a file path (appended), or off`)
	fs.StringVar(&o.accessLog, "access-log", "off", `where the JSON-lines access log goes ("log":"access", one line per request: method, path without query, status, duration, bytes, client address, request ID): off, stderr, stdout (or -), or a file path (appended)`)
	fs.DurationVar(&o.logFlushInterval, "log-flush-interval", 100*time.Millisecond, "access and audit log lines are gathered in memory and written together, at the latest this long after they are logged (at once when the buffer is full, and on shutdown); a crash or SIGKILL loses at most this much of the logs. 0 writes every line as its request ends (one write per line)")
	fs.StringVar(&o.otlpEndpoint, "otlp-endpoint", "", "export OpenTelemetry traces by OTLP to this collector URL, e.g. http://otel-collector:4318 (HTTP; /v1/traces is added) or http://otel-collector:4317 with --otlp-protocol grpc; https:// for TLS (default: $OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or $OTEL_EXPORTER_OTLP_ENDPOINT; tracing is off when none is set)")
	fs.StringVar(&o.otlpProtocol, "otlp-protocol", "", "OTLP protocol: http/protobuf or grpc (default: $OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, $OTEL_EXPORTER_OTLP_PROTOCOL, else http/protobuf)")
	o.zap.BindFlags(fs)
}

// parsed records which flags were given; call it after fs.Parse.
func (o *observabilityOptions) parsed(fs *flag.FlagSet) {
	o.set = map[string]bool{}
	fs.Visit(func(f *flag.Flag) { o.set[f.Name] = true })
}

func (o *observabilityOptions) validate() error {
	switch o.logFormat {
	case logFormatJSON, logFormatText:
	default:
		return fmt.Errorf("--log-format %q: want json or text", o.logFormat)
	}
	if _, err := zapcore.ParseLevel(o.logLevel); err != nil || o.logLevel == "dpanic" || o.logLevel == "panic" || o.logLevel == "fatal" {
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", o.logLevel)
	}
	if o.logFlushInterval < 0 {
		return fmt.Errorf("--log-flush-interval %s: want 0 (write every line at once) or a positive duration", o.logFlushInterval)
	}
	if o.otlpEndpoint != "" {
		u, err := url.Parse(o.otlpEndpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("--otlp-endpoint %q: want an http:// or https:// URL of an OTLP collector, e.g. http://otel-collector:4318", o.otlpEndpoint)
		}
	}
	if p := o.protocol(); p != "grpc" && p != "http/protobuf" {
		return fmt.Errorf("OTLP protocol %q (--otlp-protocol or OTEL_EXPORTER_OTLP_PROTOCOL): want http/protobuf or grpc", p)
	}
	return nil
}

// newLogger builds the server's zap logger: --log-format and --log-level when given (else the
// --zap-* flags, else JSON at info). Stack traces from the level o.zap starts with (serve gives
// noStacktraces: only panics) unless --zap-stacktrace-level is given: an error log says what
// failed; a stack trace would bury it (and a user mistake must never print one).
func (o *observabilityOptions) newLogger(stderr io.Writer) *uzap.Logger {
	opts := o.zap
	if o.set["log-format"] || (!o.set["zap-encoder"] && !o.set["zap-devel"]) {
		if o.logFormat == logFormatText {
			opts.NewEncoder = func(...zap.EncoderConfigOption) zapcore.Encoder {
				cfg := uzap.NewDevelopmentEncoderConfig()
				cfg.EncodeTime = zapcore.ISO8601TimeEncoder
				return zapcore.NewConsoleEncoder(cfg)
			}
		} else {
			opts.NewEncoder = func(...zap.EncoderConfigOption) zapcore.Encoder {
				cfg := uzap.NewProductionEncoderConfig()
				cfg.EncodeTime = zapcore.ISO8601TimeEncoder
				return zapcore.NewJSONEncoder(cfg)
			}
		}
	}
	if o.set["log-level"] || (!o.set["zap-log-level"] && !o.set["zap-devel"]) {
		lvl, _ := zapcore.ParseLevel(o.logLevel) // checked by validate
		opts.Level = uzap.NewAtomicLevelAt(lvl)
	}
	return zap.NewRaw(zap.UseFlagOptions(&opts), zap.WriteTo(stderr))
}

// protocol is the OTLP protocol: the flag, else the standard variables, else http/protobuf (the
// specification's default).
func (o *observabilityOptions) protocol() string {
	for _, p := range []string{o.otlpProtocol, os.Getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"), os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL")} {
		if p != "" {
			return p
		}
	}
	return "http/protobuf"
}

// tracingEnabled: an endpoint is given (the flag or the standard variables), and neither
// OTEL_SDK_DISABLED=true nor OTEL_TRACES_EXPORTER=none turns tracing off.
func (o *observabilityOptions) tracingEnabled() bool {
	if strings.EqualFold(os.Getenv("OTEL_SDK_DISABLED"), "true") || os.Getenv("OTEL_TRACES_EXPORTER") == "none" {
		return false
	}
	return o.otlpEndpoint != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != ""
}

// logs are the audit and access log destinations, opened.
type logs struct {
	closers []func()
}

// apply opens --audit-log and --access-log, buffered per --log-flush-interval, and sets them in
// cfg.
func (l *logs) apply(o *observabilityOptions, cfg *handler.Config, stdout, stderr io.Writer) error {
	w, err := l.open("--audit-log", o.auditLog, o.logFlushInterval, stdout, stderr)
	if err != nil {
		return err
	}
	if w != nil {
		cfg.Audit = audit.New(w)
	}
	w, err = l.open("--access-log", o.accessLog, o.logFlushInterval, stdout, stderr)
	if err != nil {
		return err
	}
	if w != nil {
		cfg.AccessLog = accesslog.New(w)
	}
	return nil
}

// open opens a log destination (openLogDestination) and buffers it (bufferLog); close writes
// out the buffer, then releases a file.
func (l *logs) open(flagName, dest string, interval time.Duration, stdout, stderr io.Writer) (io.Writer, error) {
	w, closeFn, err := openLogDestination(flagName, dest, stdout, stderr)
	if err != nil || w == nil {
		return nil, err
	}
	size := streamLogBuffer
	if dest != "stderr" && dest != "stdout" && dest != "-" {
		size = fileLogBuffer
	}
	w, flush := bufferLog(w, size, interval)
	l.closers = append(l.closers, func() { flush(); closeFn() })
	return w, nil
}

// Buffer sizes of the access and audit logs. A file is the log's alone, and every write appends
// (O_APPEND). stdout and stderr are shared with the server log and are often pipes, where only
// writes of at most PIPE_BUF (4,096 bytes on Linux) cannot be interleaved with another writer's:
// no write of a shared stream may exceed it, or a line of one log could be cut by a line of
// another.
const (
	fileLogBuffer   = 256 << 10
	streamLogBuffer = 4096
)

// bufferLog gathers the lines written to w in a buffer of size bytes, written out by one write
// when a line does not fit and every interval, so that no line waits longer; flush writes out
// what is left and stops. Lines are never split across writes (zap's BufferedWriteSyncer
// writes out the buffer before a line that does not fit). The buffer spares the server a
// write(2) per request: at a fixed 7,900 ES256 tokens a second on one core, writing each audit
// line at once cost ~7% more of the server's CPU. interval 0 returns w as it is.
func bufferLog(w io.Writer, size int, interval time.Duration) (buffered io.Writer, flush func()) {
	if interval <= 0 {
		return w, func() {}
	}
	b := &zapcore.BufferedWriteSyncer{
		// unsynced hides a file's Sync: a flush writes to the kernel and does not wait for the
		// disk (fsync), as the writes without the buffer did not.
		WS:            zapcore.AddSync(unsynced{w}),
		Size:          size,
		FlushInterval: interval,
	}
	return b, func() { _ = b.Stop() }
}

// unsynced is a writer without Sync (see bufferLog).
type unsynced struct{ io.Writer }

func (l *logs) close() {
	for _, c := range l.closers {
		c()
	}
}

// openLogDestination opens a log destination flag's value: nil for off; close releases a file.
func openLogDestination(flagName, dest string, stdout, stderr io.Writer) (w io.Writer, closeFn func(), err error) {
	switch dest {
	case "off", "":
		return nil, func() {}, nil
	case "stderr":
		return stderr, func() {}, nil
	case "-", "stdout":
		return stdout, func() {}, nil
	}
	f, err := os.OpenFile(dest, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", flagName, err)
	}
	return f, func() { _ = f.Close() }, nil
}

// tracer is the tracing of a running server: nil when tracing is off (then nothing is
// wrapped, and the server makes no span).
type tracer struct {
	provider   *sdktrace.TracerProvider
	propagator propagation.TextMapPropagator
}

// startTracing builds the OTLP exporter and the tracer provider when tracing is enabled; the
// OTEL_* variables configure what the flags do not (headers, timeouts, the sampler
// OTEL_TRACES_SAMPLER, batching OTEL_BSP_*, the resource OTEL_SERVICE_NAME and
// OTEL_RESOURCE_ATTRIBUTES). It returns nil when tracing is off.
func (o *observabilityOptions) startTracing(ctx context.Context) (*tracer, error) {
	if !o.tracingEnabled() {
		return nil, nil
	}
	var (
		exp sdktrace.SpanExporter
		err error
	)
	if o.protocol() == "grpc" {
		var opts []otlptracegrpc.Option
		if o.otlpEndpoint != "" {
			opts = append(opts, otlptracegrpc.WithEndpointURL(o.otlpEndpoint))
		}
		exp, err = otlptracegrpc.New(ctx, opts...)
	} else {
		var opts []otlptracehttp.Option
		if o.otlpEndpoint != "" {
			opts = append(opts, otlptracehttp.WithEndpointURL(tracesURL(o.otlpEndpoint)))
		}
		exp, err = otlptracehttp.New(ctx, opts...)
	}
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	return newTracer(ctx, sdktrace.WithBatcher(exp))
}

// newTracer builds the tracer provider with the resource latchkey (OTEL_SERVICE_NAME and
// OTEL_RESOURCE_ATTRIBUTES override it) and a span processor.
func newTracer(ctx context.Context, processor sdktrace.TracerProviderOption) (*tracer, error) {
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName("latchkey"), semconv.ServiceVersion(version)),
		resource.WithTelemetrySDK(), resource.WithFromEnv())
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	return &tracer{
		provider:   sdktrace.NewTracerProvider(processor, sdktrace.WithResource(res)),
		propagator: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
	}, nil
}

// tracesURL adds the OTLP/HTTP traces path to a collector's base URL (as the SDK does for
// OTEL_EXPORTER_OTLP_ENDPOINT) unless it has a path of its own.
func tracesURL(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Path != "" && u.Path != "/") {
		return endpoint
	}
	u.Path = "/v1/traces"
	return u.String()
}

// wrap makes h start a server span per request, continuing the W3C traceparent of the caller;
// the OAuth handler names it after the route. Without tracing, h itself.
func (t *tracer) wrap(h http.Handler) http.Handler {
	if t == nil {
		return h
	}
	return otelhttp.NewHandler(h, "latchkey",
		otelhttp.WithTracerProvider(t.provider), otelhttp.WithPropagators(t.propagator),
		otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()))
}

// instrumentRedis adds go-redis's OpenTelemetry hooks (a span per command) to a Redis store,
// without the commands' arguments (db.statement): they hold the store's records, and a span
// is no place for those. Commands outside a traced request (the store's background work)
// make no span.
func (t *tracer) instrumentRedis(st any) error {
	c, ok := st.(interface {
		Client() goredis.UniversalClient
	})
	if t == nil || !ok {
		return nil
	}
	return redisotel.InstrumentTracing(c.Client(), redisotel.WithTracerProvider(childSpansOnly{tp: t.provider}),
		redisotel.WithDBStatement(false), redisotel.WithCallerEnabled(false))
}

// childSpansOnly is a TracerProvider whose tracers start a span only under a recording one: a
// Redis command of a traced request is a span of it, the store's background commands are no
// traces of their own.
type childSpansOnly struct {
	embedded.TracerProvider
	tp trace.TracerProvider
}

func (p childSpansOnly) Tracer(name string, opts ...trace.TracerOption) trace.Tracer {
	return childSpansOnlyTracer{t: p.tp.Tracer(name, opts...)}
}

type childSpansOnlyTracer struct {
	embedded.Tracer
	t trace.Tracer
}

func (t childSpansOnlyTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if parent := trace.SpanFromContext(ctx); !parent.IsRecording() {
		return ctx, parent
	}
	return t.t.Start(ctx, name, opts...)
}

// shutdown flushes the spans not yet exported, for at most a few seconds.
func (t *tracer) shutdown(ctx context.Context) {
	if t == nil {
		return
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = t.provider.Shutdown(sctx)
}

// newOAuthHandler is handler.New traced when tracing is on.
func newOAuthHandler(cfg handler.Config, t *tracer) (http.Handler, error) {
	h, err := handler.New(cfg)
	if err != nil {
		return nil, err
	}
	return t.wrap(h), nil
}
