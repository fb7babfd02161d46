package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/latchkey-dev/latchkey/server/store"
	"github.com/latchkey-dev/latchkey/server/store/memory"
	redisstore "github.com/latchkey-dev/latchkey/server/store/redis"
)

// leasedStore is a store backend that runs for the process's life: Start until ctx ends
// (memory's janitor, Redis's client close), on every replica.
type leasedStore interface {
	store.Store
	Start(ctx context.Context) error
	NeedLeaderElection() bool
}

// redisOptions are the --redis-* flags; each defaults to its LATCHKEY_REDIS_* variable.
type redisOptions struct {
	// tlsCAFile, tlsServerName and tlsInsecureSkipVerify refine tls.
	tlsCAFile             string
	tlsServerName         string
	tlsInsecureSkipVerify bool

	address      string
	masterName   string
	passwordFile string
	username     string
	db           int
	tls          bool
	keyPrefix    string
	knownRecords int
}

func envOr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

func (o *redisOptions) bind(fs *flag.FlagSet) {
	insecure, _ := strconv.ParseBool(envOr("LATCHKEY_REDIS_TLS_INSECURE_SKIP_VERIFY", "false"))
	db, _ := strconv.Atoi(envOr("LATCHKEY_REDIS_DB", "0"))
	tlsOn, _ := strconv.ParseBool(envOr("LATCHKEY_REDIS_TLS", "false"))
	known, err := strconv.Atoi(envOr("LATCHKEY_REDIS_KNOWN_RECORDS", strconv.Itoa(redisstore.DefaultKnownRecords)))
	if err != nil {
		known = -1 // validate refuses it
	}
	fs.StringVar(&o.address, "redis-address", envOr("LATCHKEY_REDIS_ADDRESS", ""), "with --store redis: host:port of Redis; comma-separated for Cluster nodes or Sentinels (env LATCHKEY_REDIS_ADDRESS)")
	fs.StringVar(&o.masterName, "redis-master-name", envOr("LATCHKEY_REDIS_MASTER_NAME", ""), "Sentinel master name; set it to use Sentinel (env LATCHKEY_REDIS_MASTER_NAME)")
	fs.StringVar(&o.passwordFile, "redis-password-file", envOr("LATCHKEY_REDIS_PASSWORD_FILE", ""), "file holding the Redis password, e.g. a mounted Secret (env LATCHKEY_REDIS_PASSWORD_FILE)")
	fs.StringVar(&o.username, "redis-username", envOr("LATCHKEY_REDIS_USERNAME", ""), "Redis ACL user name (env LATCHKEY_REDIS_USERNAME)")
	fs.IntVar(&o.db, "redis-db", db, "Redis database number, standalone and Sentinel only (env LATCHKEY_REDIS_DB)")
	fs.BoolVar(&o.tls, "redis-tls", tlsOn, "connect to Redis with TLS, verified against the system roots or --redis-tls-ca-file (env LATCHKEY_REDIS_TLS)")
	fs.StringVar(&o.tlsCAFile, "redis-tls-ca-file", envOr("LATCHKEY_REDIS_TLS_CA_FILE", ""), "with --redis-tls: PEM file of the CA certificates that verify Redis, instead of the system roots, e.g. a mounted Secret (env LATCHKEY_REDIS_TLS_CA_FILE)")
	fs.StringVar(&o.tlsServerName, "redis-tls-server-name", envOr("LATCHKEY_REDIS_TLS_SERVER_NAME", ""), "with --redis-tls: the name Redis's certificate must carry (default: the host of --redis-address) (env LATCHKEY_REDIS_TLS_SERVER_NAME)")
	fs.BoolVar(&o.tlsInsecureSkipVerify, "redis-tls-insecure-skip-verify", insecure, "with --redis-tls: do not verify Redis's certificate (testing only: anyone on the path can read the store) (env LATCHKEY_REDIS_TLS_INSECURE_SKIP_VERIFY)")
	fs.StringVar(&o.keyPrefix, "redis-key-prefix", envOr("LATCHKEY_REDIS_KEY_PREFIX", "latchkey:"), "prefix of every Redis key (env LATCHKEY_REDIS_KEY_PREFIX)")
	fs.IntVar(&o.knownRecords, "redis-known-records", known, "how many records of the codes and refresh tokens it issued a replica remembers, "+
		"so that their exchange costs one Redis round trip; 0: none (env LATCHKEY_REDIS_KNOWN_RECORDS)")
}

func (o *redisOptions) validate() error {
	if strings.TrimSpace(o.address) == "" {
		return errors.New("--store redis needs --redis-address (or LATCHKEY_REDIS_ADDRESS)")
	}
	if !o.tls && (o.tlsCAFile != "" || o.tlsServerName != "" || o.tlsInsecureSkipVerify) {
		return errors.New("--redis-tls-ca-file, --redis-tls-server-name and --redis-tls-insecure-skip-verify need --redis-tls")
	}
	if o.db < 0 {
		return fmt.Errorf("--redis-db %d: must not be negative", o.db)
	}
	if o.knownRecords < 0 {
		return errors.New("--redis-known-records (LATCHKEY_REDIS_KNOWN_RECORDS) must be a number, not negative")
	}
	return nil
}

// tlsConfig is the TLS configuration of the Redis connections (nil without --redis-tls).
func (o *redisOptions) tlsConfig() (*tls.Config, error) {
	if !o.tls {
		return nil, nil
	}
	//nolint:gosec // InsecureSkipVerify only when the operator asks for it (--redis-tls-insecure-skip-verify)
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: o.tlsServerName, InsecureSkipVerify: o.tlsInsecureSkipVerify}
	if o.tlsCAFile != "" {
		b, err := os.ReadFile(o.tlsCAFile)
		if err != nil {
			return nil, fmt.Errorf("--redis-tls-ca-file: %w", err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("--redis-tls-ca-file %s: no PEM certificate in it", o.tlsCAFile)
		}
	}
	return c, nil
}

// redisStartTimeout bounds the ping at startup.
const redisStartTimeout = 10 * time.Second

// open connects to Redis and pings it: an unreachable or misconfigured Redis is an error at
// startup, not at the first request.
func (o *redisOptions) open(ctx context.Context) (*redisstore.Store, error) {
	opts := redisstore.Options{Username: o.username, DB: o.db, KeyPrefix: o.keyPrefix, MasterName: o.masterName,
		KnownRecords: o.knownRecords}
	if o.knownRecords == 0 {
		opts.KnownRecords = -1 // none
	}
	for _, a := range strings.Split(o.address, ",") {
		if a = strings.TrimSpace(a); a != "" {
			opts.Addrs = append(opts.Addrs, a)
		}
	}
	if o.passwordFile != "" {
		b, err := os.ReadFile(o.passwordFile)
		if err != nil {
			return nil, fmt.Errorf("--redis-password-file: %w", err)
		}
		opts.Password = strings.TrimRight(string(b), "\r\n")
	}
	var err error
	if opts.TLS, err = o.tlsConfig(); err != nil {
		return nil, err
	}
	s, err := redisstore.New(opts)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, redisStartTimeout)
	defer cancel()
	if err := s.Ping(pctx); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("redis at %s unreachable or misconfigured: %w", o.address, err)
	}
	if err := s.LoadScripts(pctx); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("redis at %s: %w", o.address, err)
	}
	return s, nil
}

// openStore builds the backend --store names.
func (o *serveOptions) openStore(ctx context.Context) (leasedStore, error) {
	if o.store == "redis" {
		return o.redis.open(ctx)
	}
	return memory.New(), nil
}

// storeReadyzTimeout bounds the readiness ping.
const storeReadyzTimeout = 2 * time.Second
