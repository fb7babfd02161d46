package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"golang.org/x/crypto/bcrypt"

	"github.com/latchkey-dev/latchkey/internal/harness"
)

// cluster is the Redis and the replicas of a soak.
type cluster struct {
	issuer    string
	redis     *harness.Process
	redisAddr string
	replicas  []*replica
}

type replica struct {
	name  string
	addrs harness.ServeAddrs
	proc  *harness.Process
}

// startTimeout bounds a replica's start until ready, and Redis's until it answers PING.
const startTimeout = time.Minute

// startCluster writes the manifests and starts Redis (append-only file on, so that a restart
// keeps the data) and the replicas, pinned to core 0, logging into the run folder.
func startCluster(ctx context.Context, o options) (*cluster, error) {
	dir := o.out
	manifests := filepath.Join(dir, "manifests")
	if err := writeManifests(manifests); err != nil {
		return nil, err
	}
	redisBin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, err
	}
	cl := &cluster{issuer: "http://localhost:8080"}
	if cl.redisAddr, err = harness.FreeAddr(); err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(cl.redisAddr)
	redisDir := filepath.Join(dir, "redis")
	if err := os.MkdirAll(redisDir, 0o750); err != nil {
		return nil, err
	}
	// The append-only file keeps the refresh chains across the Redis restart. Its automatic
	// rewrite forks a child that dumps the whole dataset (~350 MB after 10 minutes at 2,200
	// operations/s: every rotated refresh token stays until it expires, for reuse detection) on
	// the replicas' core: each rewrite stalled every endpoint for about a second, and the
	// generator could not keep the rate. A production Redis has cores of its own; here the
	// rewrite waits until the file passes 2 GB, beyond a 10-minute run.
	if cl.redis, err = harness.Start(harness.Command{Name: "redis-server", Path: "taskset",
		Args: []string{"-c", "0", redisBin, "--port", port, "--bind", "127.0.0.1", "--save", "",
			"--appendonly", "yes", "--appendfsync", "everysec", "--auto-aof-rewrite-min-size", "2gb", "--dir", redisDir},
		Log: filepath.Join(dir, "redis.log")}); err != nil {
		return nil, err
	}
	if err := cl.waitRedis(ctx); err != nil {
		cl.stop()
		return nil, err
	}
	keys := filepath.Join(dir, "signing-keys.json")
	for i := range replicaCount {
		r, err := cl.startReplica(ctx, o.binary, dir, manifests, keys, i)
		if err != nil {
			cl.stop()
			return nil, err
		}
		cl.replicas = append(cl.replicas, r)
	}
	return cl, nil
}

func (cl *cluster) startReplica(ctx context.Context, binary, dir, manifests, keys string, i int) (*replica, error) {
	addrs, err := harness.FreeServeAddrs()
	if err != nil {
		return nil, err
	}
	name := fmt.Sprintf("replica-%d", i)
	args := append([]string{"-c", "0", binary, "serve", "--manifests", manifests, "--issuer", cl.issuer,
		"--store", "redis", "--redis-address", cl.redisAddr, "--keys-file", keys, "--signing-algorithm", "ES256",
		"--refresh-reuse-grace", refreshGrace.String(), "--log-level", "error", "--audit-log", filepath.Join(dir, name+"-audit.log")}, addrs.Args()...)
	p, err := harness.Start(harness.Command{Name: name, Path: "taskset", Args: args, Log: filepath.Join(dir, name+".log")})
	if err != nil {
		return nil, err
	}
	if err := p.WaitHTTP(ctx, addrs.ReadyURL(), startTimeout); err != nil {
		p.Stop(5 * time.Second)
		return nil, err
	}
	return &replica{name: name, addrs: addrs, proc: p}, nil
}

func (cl *cluster) waitRedis(ctx context.Context) error {
	c := goredis.NewClient(&goredis.Options{Addr: cl.redisAddr, MaxRetries: -1})
	defer c.Close() //nolint:errcheck // a probe
	deadline := time.Now().Add(startTimeout)
	for {
		err := c.Ping(ctx).Err()
		if err == nil {
			return nil
		}
		select {
		case <-cl.redis.Exited():
			return fmt.Errorf("redis-server exited: %s", cl.redis.Tail(2048))
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redis-server on %s did not answer: %w", cl.redisAddr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop stops the replicas and Redis.
func (cl *cluster) stop() {
	for _, r := range cl.replicas {
		r.proc.Stop(10 * time.Second)
	}
	if cl.redis != nil {
		cl.redis.Stop(10 * time.Second)
	}
}

// killPause is how long the killed replica stays down before it is started again.
const killPause = 5 * time.Second

// injectFaults SIGKILLs a replica at killAt of the run and starts it again after killPause,
// and restarts Redis at redisRestartAt, marking each step in f.
func (cl *cluster) injectFaults(ctx context.Context, f *faults, start time.Time, d time.Duration) error {
	wait := func(frac float64) error {
		select {
		case <-ctx.Done():
			return errStopped
		case <-time.After(time.Until(start.Add(time.Duration(frac * float64(d))))):
			return nil
		}
	}
	if err := wait(killAt); err != nil {
		return nil //nolint:nilerr // the run ended first
	}
	r := cl.replicas[killedReplica]
	f.mark("SIGKILL "+r.name, func() { f.killed[killedReplica] = time.Now() })
	if err := r.proc.Kill(); err != nil {
		return err
	}
	time.Sleep(killPause)
	if err := r.proc.Restart(); err != nil {
		return err
	}
	if err := r.proc.WaitHTTP(ctx, r.addrs.ReadyURL(), startTimeout); err != nil {
		return err
	}
	f.mark(r.name+" ready again", func() { f.back[killedReplica] = time.Now() })

	if err := wait(redisRestartAt); err != nil {
		return nil //nolint:nilerr // the run ended first
	}
	f.mark("redis-server stopped", func() { f.redisDown = time.Now() })
	cl.redis.Stop(30 * time.Second)
	if err := cl.redis.Restart(); err != nil {
		return err
	}
	if err := cl.waitRedis(ctx); err != nil {
		return err
	}
	f.mark("redis-server answers again", func() { f.redisUp = time.Now() })
	return nil
}

// writeManifests writes the soak's scope, clients, user and Secrets: a confidential service client
// (client_credentials, may introspect) and a public SPA (code with PKCE S256, refresh tokens),
// and the user soak whose password hash is bcrypt at the minimum cost (the soak measures
// the server, not bcrypt).
func writeManifests(dir string) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		return err
	}
	body := fmt.Sprintf(manifestsTemplate, serviceID, serviceSecret, spaID, redirectURI, username, hash)
	return os.WriteFile(filepath.Join(dir, "soak.yaml"), []byte(body), 0o600)
}

const manifestsTemplate = `apiVersion: oauth.latchkey.dev/v1alpha1
kind: Scope
metadata: {name: read-projects}
spec: {name: "read:projects", description: "List and view projects"}
---
apiVersion: oauth.latchkey.dev/v1alpha1
kind: OAuthClient
metadata: {name: soak-service, namespace: default}
spec:
  clientID: %[1]s
  grantTypes: [client_credentials]
  scopes: ["read:projects"]
  introspection: true
  secretPolicy: External
  secretRef: {name: soak-service, key: client-secret}
---
apiVersion: v1
kind: Secret
metadata: {name: soak-service, namespace: default}
stringData: {client-secret: %[2]s}
---
apiVersion: oauth.latchkey.dev/v1alpha1
kind: OAuthClient
metadata: {name: soak-spa, namespace: default}
spec:
  clientID: %[3]s
  type: Public
  grantTypes: [authorization_code, refresh_token]
  redirectURIs: ["%[4]s"]
  scopes: [openid, profile, "read:projects"]
  tokenEndpointAuthMethod: none
---
apiVersion: oauth.latchkey.dev/v1alpha1
kind: User
metadata: {name: soak}
spec:
  username: %[5]s
  passwordSecretRef: {namespace: default, name: soak-password, key: hash}
---
apiVersion: v1
kind: Secret
metadata: {name: soak-password, namespace: default}
stringData: {hash: "%[6]s"}
`
