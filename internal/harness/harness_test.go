package harness

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRootIsTheModuleRoot(t *testing.T) {
	root, err := Root()
	require.NoError(t, err)
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	require.NoError(t, err)
	assert.Contains(t, string(mod), "module github.com/latchkey-dev/latchkey\n")
	assert.FileExists(t, filepath.Join(root, "hack", "apt-install.sh"))
}

func TestProvide(t *testing.T) {
	exists := func(path string) func() (string, error) {
		return func() (string, error) {
			_, err := os.Stat(path)
			return path, err
		}
	}
	const script = "internal/harness/testdata/provide.sh"

	t.Run("a tool that is there is found without installing", func(t *testing.T) {
		path, err := Provide("sh", exists("/bin/sh"), Install{Script: "does/not/exist.sh"})
		require.NoError(t, err)
		assert.Equal(t, "/bin/sh", path)
	})
	t.Run("a missing tool is installed with the script, then found", func(t *testing.T) {
		target := filepath.Join(t.TempDir(), "tool")
		path, err := Provide("tool", exists(target), Install{Script: script, Env: []string{"PROVIDE_TARGET=" + target}})
		require.NoError(t, err)
		assert.Equal(t, target, path)
		assert.FileExists(t, target)
	})
	t.Run("a tool the script does not provide is an error that says what to run", func(t *testing.T) {
		target := filepath.Join(t.TempDir(), "tool")
		_, err := Provide("tool", exists(target), Install{Script: script, Args: []string{"some-package"}})
		require.Error(t, err)
		assert.Contains(t, err.Error(), script+" some-package")
		assert.Contains(t, err.Error(), "tool is missing")
	})
	t.Run("a tool on PATH is found by Tool", func(t *testing.T) {
		path, err := Tool("sh", "dash")
		require.NoError(t, err)
		assert.True(t, filepath.IsAbs(path), path)
	})
}

func TestClock(t *testing.T) {
	start := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	c := NewClock(start)
	assert.Equal(t, start, c.Now())
	c.Advance(90 * time.Second)
	assert.Equal(t, start.Add(90*time.Second), c.Now())
	c.Set(start)
	assert.Equal(t, start, c.Now())

	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				c.Advance(time.Millisecond)
				_ = c.Now()
			}
		})
	}
	wg.Wait()
	assert.Equal(t, start.Add(800*time.Millisecond), c.Now(), "concurrent advances all count")
}

// shell starts sh -c script as a Process logging into a temporary file.
func shell(t *testing.T, script string) *Process {
	t.Helper()
	p, err := Start(Command{Name: "test-shell", Path: "/bin/sh", Args: []string{"-c", script}, Log: filepath.Join(t.TempDir(), "sh.log")})
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Kill() })
	return p
}

// untilInterrupted logs, then loops until SIGINT, which it logs before exiting with status 0.
const untilInterrupted = `trap 'echo interrupted; exit 0' INT; echo started; while :; do sleep 0.05; done`

func TestProcess(t *testing.T) {
	t.Run("Stop interrupts the process, which exits cleanly", func(t *testing.T) {
		p := shell(t, untilInterrupted)
		require.Eventually(t, func() bool { return strings.Contains(p.Log(), "started") }, 5*time.Second, 10*time.Millisecond)
		p.Stop(5 * time.Second)
		<-p.Exited()
		require.NoError(t, p.Err())
		assert.Equal(t, 0, p.ExitCode())
		assert.Contains(t, p.Log(), "interrupted")
	})
	t.Run("Stop kills a process that ignores SIGINT after the timeout", func(t *testing.T) {
		p := shell(t, `trap '' INT; echo started; while :; do sleep 0.05; done`)
		require.Eventually(t, func() bool { return strings.Contains(p.Log(), "started") }, 5*time.Second, 10*time.Millisecond)
		start := time.Now()
		p.Stop(300 * time.Millisecond)
		assert.GreaterOrEqual(t, time.Since(start), 300*time.Millisecond)
		require.Error(t, p.Err(), "killed")
		assert.Equal(t, -1, p.ExitCode(), "ended by a signal")
	})
	t.Run("Kill, then Restart runs the same command again, appending to the log", func(t *testing.T) {
		p := shell(t, untilInterrupted)
		require.Eventually(t, func() bool { return strings.Contains(p.Log(), "started") }, 5*time.Second, 10*time.Millisecond)
		require.Error(t, p.Restart(), "a running process cannot be restarted")
		require.NoError(t, p.Kill())
		require.Error(t, p.Err())
		require.NoError(t, p.Restart())
		select {
		case <-p.Exited():
			t.Fatal("the restarted process exited")
		default:
		}
		require.Eventually(t, func() bool { return strings.Count(p.Log(), "started") == 2 }, 5*time.Second, 10*time.Millisecond)
		p.Stop(5 * time.Second)
		require.NoError(t, p.Err())
	})
	t.Run("Tail returns the end of the log", func(t *testing.T) {
		p := shell(t, `echo first; echo last`)
		<-p.Exited()
		assert.Equal(t, "last\n", p.Tail(5))
		assert.Equal(t, "first\nlast\n", p.Tail(1000))
	})
	t.Run("WaitHTTP fails early, with the log, when the process exits", func(t *testing.T) {
		p := shell(t, `echo cannot start; exit 3`)
		start := time.Now()
		err := p.WaitHTTP(t.Context(), "http://127.0.0.1:1/readyz", time.Minute)
		require.Error(t, err)
		assert.Less(t, time.Since(start), 10*time.Second)
		assert.Contains(t, err.Error(), "test-shell exited (exit status 3)")
		assert.Contains(t, err.Error(), "cannot start")
		assert.Equal(t, 3, p.ExitCode())
	})
}

func TestWaitHTTP(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/never" || calls.Add(1) < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()

	require.NoError(t, WaitHTTP(t.Context(), srv.URL, 10*time.Second))
	assert.Equal(t, int32(3), calls.Load(), "polled until 200")

	err := WaitHTTP(t.Context(), srv.URL+"/never", 300*time.Millisecond)
	require.Error(t, err)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestRetryPortClash(t *testing.T) {
	tests := []struct {
		name   string
		errs   []error
		calls  int
		failed bool
	}{
		{"a start that works is tried once", []error{nil}, 1, false},
		{"a port taken meanwhile is tried again", []error{errors.New("listen tcp: bind: address already in use"), nil}, 2, false},
		{"a port clash in the log is recognised", []error{errors.New("log:\nAddress already in use"), nil}, 2, false},
		{"another failure is not tried again", []error{errors.New("no such file")}, 1, true},
		{"a port clash every time gives up", []error{errors.New("address already in use"), errors.New("address already in use"),
			errors.New("address already in use"), nil}, portAttempts, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			err := retryPortClash(func() error {
				calls++
				return tt.errs[calls-1]
			})
			assert.Equal(t, tt.calls, calls)
			assert.Equal(t, tt.failed, err != nil, "%v", err)
		})
	}
}

func TestRedis(t *testing.T) {
	r := NewRedis(t)
	ctx := t.Context()
	c := r.Client(&goredis.Options{MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	rt := &RoundTrips{}
	c.AddHook(rt)
	commands := func() {
		require.NoError(t, c.Set(ctx, "k", "v", 0).Err())
		_, err := c.Pipelined(ctx, func(p goredis.Pipeliner) error {
			p.Get(ctx, "k")
			p.Incr(ctx, "n")
			p.Incr(ctx, "n")
			return nil
		})
		require.NoError(t, err)
	}
	// The first run dials the pool's connections, whose set-up commands (HELLO ...) count too.
	commands()
	require.Positive(t, rt.Count())
	rt.Reset()
	assert.Zero(t, rt.Count())
	commands()
	assert.Equal(t, int64(2), rt.Count(), "one command and one pipeline are two round trips")

	require.NoError(t, r.Kill())
	require.Error(t, c.Ping(ctx).Err(), "a killed redis-server does not answer")
	require.NoError(t, r.Restart())
	require.Eventually(t, func() bool { return c.Ping(ctx).Err() == nil }, 10*time.Second, 50*time.Millisecond,
		"the restarted server answers on the same address")
	assert.ErrorIs(t, c.Get(ctx, "k").Err(), goredis.Nil, "nothing is persisted")
	assert.True(t, strings.HasPrefix(r.Addr(), "127.0.0.1:"), r.Addr())
}

// flowServer is a stand-in for the authorization endpoint's pages: a redirect to the login page,
// the login and consent forms (which check their cookie and hidden fields), and a redirect to the
// client. It records the Origin and Host of the POSTs.
func flowServer(t *testing.T, seen *[]string) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /oauth2/authorize", func(w http.ResponseWriter, _ *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "flow", Value: "c1", Path: "/"})
		w.Header().Set("Location", "../oauth2/login?request_id=r1")
		w.WriteHeader(http.StatusSeeOther)
	})
	mux.HandleFunc("GET /oauth2/login", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<form method="post" action="../oauth2/login"><input type="hidden" name="request_id" value="%s">`+
			`<input type="hidden" name="csrf_token" value="a&amp;b"></form>`, r.URL.Query().Get("request_id"))
	})
	mux.HandleFunc("POST /oauth2/login", func(w http.ResponseWriter, r *http.Request) {
		*seen = append(*seen, r.Header.Get("Origin")+" "+r.Host)
		if c, err := r.Cookie("flow"); err != nil || c.Value != "c1" || r.PostFormValue("csrf_token") != "a&b" ||
			r.PostFormValue("username") != "alice" || r.PostFormValue("password") != "pw" {
			http.Error(w, "bad login", http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, `<form method="post" action="../oauth2/consent"><input type="hidden" name="request_id" value="%s">`+
			`<input type="hidden" name="csrf_token" value="a&amp;b"></form>`, r.PostFormValue("request_id"))
	})
	mux.HandleFunc("POST /oauth2/consent", func(w http.ResponseWriter, r *http.Request) {
		*seen = append(*seen, r.Header.Get("Origin")+" "+r.Host)
		if r.PostFormValue("decision") != "allow" || r.PostFormValue("request_id") != "r1" {
			w.Header().Set("Location", "https://client.example/cb?error=access_denied&error_description=no&state=s")
		} else {
			w.Header().Set("Location", "https://client.example/cb?code=c0de&state=s&iss=https%3A%2F%2Fissuer.example")
		}
		w.WriteHeader(http.StatusSeeOther)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestBrowser(t *testing.T) {
	t.Run("a sign-in follows the server's redirects and stops at the client's", func(t *testing.T) {
		var seen []string
		srv := flowServer(t, &seen)
		b := NewBrowser(t, srv.Client(), srv.URL)
		p := b.Get(srv.URL + "/oauth2/authorize?client_id=x")
		require.Equal(t, http.StatusOK, p.Status, p.Body)
		assert.Equal(t, "/oauth2/login", p.URL.Path, "the redirect within the server was followed")
		require.True(t, p.IsLogin())
		assert.False(t, p.IsConsent())
		assert.Equal(t, "a&b", p.Hidden().Get("csrf_token"), "hidden values are unescaped")

		p = b.Login(p, "alice", "pw")
		require.Equal(t, http.StatusOK, p.Status, p.Body)
		require.True(t, p.IsConsent(), p.Body)
		p = b.Decide(p, "allow")
		assert.Equal(t, http.StatusSeeOther, p.Status)
		cb := p.Callback(t)
		assert.Equal(t, Callback{URI: "https://client.example/cb", Code: "c0de", State: "s", Iss: "https://issuer.example",
			Query: p.Location.Query()}, cb)
		host := strings.TrimPrefix(srv.URL, "http://")
		assert.Equal(t, []string{" " + host, " " + host}, seen, "no Origin unless the browser has one")
	})
	t.Run("a denial's error reaches the callback", func(t *testing.T) {
		var seen []string
		srv := flowServer(t, &seen)
		b := NewBrowser(t, nil, srv.URL)
		p := b.Login(b.Get(srv.URL+"/oauth2/authorize"), "alice", "pw")
		cb := b.Decide(p, "deny").Callback(t)
		assert.Equal(t, "access_denied", cb.Error)
		assert.Equal(t, "no", cb.ErrorDescription)
		assert.Empty(t, cb.Code)
	})
	t.Run("with an Origin, the POSTs carry it and its host", func(t *testing.T) {
		var seen []string
		srv := flowServer(t, &seen)
		b := NewBrowser(t, nil, srv.URL)
		// A load balancer in front of the server on another port of the same host: the
		// cookies (which ignore the port) are the same.
		b.Origin = "http://127.0.0.1:1"
		p := b.Login(b.Get(srv.URL+"/oauth2/authorize"), "alice", "pw")
		require.True(t, p.IsConsent(), p.Body)
		assert.Equal(t, []string{"http://127.0.0.1:1 127.0.0.1:1"}, seen)
		p = b.Post(srv.URL+"/oauth2/login", p.Hidden(), "Origin", "http://evil.example", "Host", "evil.example")
		assert.Equal(t, http.StatusBadRequest, p.Status, "no username")
		assert.Equal(t, "http://evil.example evil.example", seen[1], "explicit headers win")
	})
	t.Run("a redirect to another host is not followed", func(t *testing.T) {
		var seen []string
		srv := flowServer(t, &seen)
		other := httptest.NewServer(http.RedirectHandler(srv.URL+"/oauth2/login", http.StatusFound))
		defer other.Close()
		b := NewBrowser(t, nil, other.URL)
		p := b.Get(other.URL)
		assert.Equal(t, http.StatusFound, p.Status)
		require.NotNil(t, p.Location)
		assert.Equal(t, srv.URL+"/oauth2/login", p.Location.String())
	})
}
