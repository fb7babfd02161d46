package harness

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// redisStartTimeout bounds how long redis-server may take to answer PING.
const redisStartTimeout = 10 * time.Second

// Redis is Debian's redis-server on a loopback port, without persistence (an empty --save and no
// append-only file): a restart comes back empty.
type Redis struct {
	proc *Process
	addr string
}

// StartRedis starts redis-server on a free loopback port, with its working directory and log
// (redis.log) in dir (created when missing), and waits until it answers PING. A missing redis-server is installed
// (Tool) or the error says what to run. Stop it with Stop.
func StartRedis(dir string) (*Redis, error) {
	bin, err := Tool("redis-server", "redis-server")
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	var r *Redis
	err = retryPortClash(func() error {
		port, err := FreePort()
		if err != nil {
			return err
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		p, err := Start(Command{Path: bin, Log: filepath.Join(dir, "redis.log"),
			Args: []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir}})
		if err != nil {
			return err
		}
		candidate := &Redis{proc: p, addr: addr}
		if err := candidate.waitPing(); err != nil {
			_ = p.Kill()
			return err
		}
		r = candidate
		return nil
	})
	return r, err
}

// NewRedis is StartRedis for one test: in the test's temporary directory, killed when the test
// ends, and a failure to start fails the test. Under go test -short (make test-unit, the loop
// without external services) the test is skipped instead; make test and CI never run -short.
func NewRedis(tb testing.TB) *Redis {
	tb.Helper()
	if testing.Short() {
		tb.Skip("needs redis-server: skipped by -short (make test-unit); make test runs it")
	}
	r, err := StartRedis(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(r.Stop)
	return r
}

// Addr is the server's host:port.
func (r *Redis) Addr() string { return r.addr }

// Client returns a go-redis client of the server with the options (nil: the defaults); Addr is
// set to the server's. The caller closes it.
func (r *Redis) Client(opts *goredis.Options) *goredis.Client {
	o := goredis.Options{}
	if opts != nil {
		o = *opts
	}
	o.Addr = r.addr
	return goredis.NewClient(&o)
}

// Kill SIGKILLs the server (to test "Redis down") and waits for it to exit.
func (r *Redis) Kill() error { return r.proc.Kill() }

// Restart starts a killed server again on the same port, empty, and waits until it answers PING.
func (r *Redis) Restart() error {
	if err := r.proc.Restart(); err != nil {
		return err
	}
	return r.waitPing()
}

// Stop kills the server; stopping a stopped server does nothing. Nothing is persisted, so there
// is nothing to shut down gracefully.
func (r *Redis) Stop() { _ = r.proc.Kill() }

func (r *Redis) waitPing() error {
	c := r.Client(&goredis.Options{MaxRetries: -1})
	defer c.Close() //nolint:errcheck // a probe
	return r.proc.waitFor(context.Background(), redisStartTimeout, "redis-server on "+r.addr,
		func(ctx context.Context) error { return c.Ping(ctx).Err() })
}

// RoundTrips is a go-redis hook that counts round trips: every command and every pipeline (a
// MULTI/EXEC transaction included) is one. Add it with client.AddHook.
type RoundTrips struct{ n atomic.Int64 }

var _ goredis.Hook = (*RoundTrips)(nil)

// Count is the number of round trips since the start or the last Reset.
func (r *RoundTrips) Count() int64 { return r.n.Load() }

// Reset sets the count to zero.
func (r *RoundTrips) Reset() { r.n.Store(0) }

// DialHook counts nothing: dialling is not a command.
func (r *RoundTrips) DialHook(next goredis.DialHook) goredis.DialHook { return next }

// ProcessHook counts one round trip per command.
func (r *RoundTrips) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		r.n.Add(1)
		return next(ctx, cmd)
	}
}

// ProcessPipelineHook counts one round trip per pipeline.
func (r *RoundTrips) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		r.n.Add(1)
		return next(ctx, cmds)
	}
}

// RedisStats are the server's own counts since it started (INFO stats and commandstats), so
// that a benchmark can count what Redis saw rather than what a client hook saw.
type RedisStats struct {
	// Writes is total_writes_processed: the writes of replies to clients. A request answered
	// with a small reply (every command of this project) is one write, so the difference of two
	// readings is the round trips between them plus one (the first reading's own reply).
	Writes int64
	// Calls are the calls of each command (cmdstat_<name>, subcommands as name|sub), counting
	// the commands that scripts call too: an EVALSHA that runs three commands adds one evalsha
	// and three more calls.
	Calls map[string]int64
}

// Stats reads the server's counts with c (a client of this server; it adds one INFO call and
// one reply write to the counts).
func (r *Redis) Stats(ctx context.Context, c *goredis.Client) (RedisStats, error) {
	info, err := c.Info(ctx, "stats", "commandstats").Result()
	if err != nil {
		return RedisStats{}, err
	}
	return parseRedisStats(info)
}

// parseRedisStats reads total_writes_processed and the cmdstat_ lines of an INFO reply.
func parseRedisStats(info string) (RedisStats, error) {
	st := RedisStats{Calls: map[string]int64{}}
	found := false
	for line := range strings.Lines(info) {
		line = strings.TrimSpace(line)
		if v, ok := strings.CutPrefix(line, "total_writes_processed:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return st, fmt.Errorf("harness: INFO total_writes_processed %q: %w", v, err)
			}
			st.Writes, found = n, true
			continue
		}
		rest, ok := strings.CutPrefix(line, "cmdstat_")
		if !ok {
			continue
		}
		name, fields, _ := strings.Cut(rest, ":")
		for f := range strings.SplitSeq(fields, ",") {
			if v, ok := strings.CutPrefix(f, "calls="); ok {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					return st, fmt.Errorf("harness: INFO cmdstat_%s calls %q: %w", name, v, err)
				}
				st.Calls[name] = n
			}
		}
	}
	if !found {
		return st, errors.New("harness: INFO has no total_writes_processed")
	}
	return st, nil
}

// Sub returns the counts of s since before, less what the reading of before added (its INFO
// call and its reply's write).
func (s RedisStats) Sub(before RedisStats) RedisStats {
	d := RedisStats{Writes: s.Writes - before.Writes - 1, Calls: map[string]int64{}}
	for name, n := range s.Calls {
		if n -= before.Calls[name]; name == "info" {
			n--
		}
		if n != 0 {
			d.Calls[name] = n
		}
	}
	return d
}

// Add returns the sum of two differences.
func (s RedisStats) Add(o RedisStats) RedisStats {
	d := RedisStats{Writes: s.Writes + o.Writes, Calls: maps.Clone(s.Calls)}
	if d.Calls == nil {
		d.Calls = map[string]int64{}
	}
	for name, n := range o.Calls {
		d.Calls[name] += n
	}
	return d
}
