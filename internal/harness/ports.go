package harness

import (
	"context"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// FreePort returns a loopback TCP port that was free a moment ago: it binds port 0 and closes
// the listener. Another process may take the port before the caller binds it; an in-process
// server should take a listener instead (httptest does), and a subprocess that cannot be handed
// one is started with portAttempts tries (StartServer and StartRedis do so).
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close() //nolint:errcheck // only used to pick a port
	addr, ok := l.Addr().(*net.TCPAddr)
	if !ok {
		return 0, errors.New("not a TCP address: " + l.Addr().String())
	}
	return addr.Port, nil
}

// FreeAddr is FreePort as 127.0.0.1:port (with FreePort's caveat: the port may be taken
// before the caller binds it).
func FreeAddr() (string, error) {
	port, err := FreePort()
	if err != nil {
		return "", err
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), nil
}

// portAttempts is how often a start whose port was taken meanwhile is tried.
const portAttempts = 3

// retryPortClash runs start until it succeeds, fails for another reason than a port taken
// between FreePort and the bind ("address already in use", in the error or the log tail it
// carries), or has been tried portAttempts times. start picks new ports on every call.
func retryPortClash(start func() error) error {
	var err error
	for range portAttempts {
		if err = start(); err == nil || !isPortClash(err) {
			return err
		}
	}
	return err
}

func isPortClash(err error) bool {
	return strings.Contains(strings.ToLower(err.Error()), "address already in use")
}

// ServeAddrs are the loopback addresses (host:port) of a `latchkey serve` process.
type ServeAddrs struct {
	Listen, Probe, Metrics string
}

// FreeServeAddrs picks three free loopback ports.
func FreeServeAddrs() (ServeAddrs, error) {
	var a ServeAddrs
	for _, addr := range []*string{&a.Listen, &a.Probe, &a.Metrics} {
		var err error
		if *addr, err = FreeAddr(); err != nil {
			return ServeAddrs{}, err
		}
	}
	return a, nil
}

// Args are the flags of `latchkey serve` that bind the addresses.
func (a ServeAddrs) Args() []string {
	return []string{"--listen-address=" + a.Listen, "--health-probe-bind-address=" + a.Probe, "--metrics-bind-address=" + a.Metrics}
}

// URL is the base URL of the OAuth endpoints: http://Listen.
func (a ServeAddrs) URL() string { return "http://" + a.Listen }

// ReadyURL is the readiness probe.
func (a ServeAddrs) ReadyURL() string { return "http://" + a.Probe + "/readyz" }

// MetricsURL is the base URL of the metrics endpoint.
func (a ServeAddrs) MetricsURL() string { return "http://" + a.Metrics }

// Server is a `latchkey serve` process and its addresses.
type Server struct {
	*Process
	ServeAddrs
}

// stopTimeout is how long a process that failed to start gets to exit before it is killed.
const stopTimeout = 10 * time.Second

// StartServer runs `binary <args(addrs)...> <addrs.Args()...>` on free loopback ports, logging to
// logPath, and waits until its /readyz answers 200. When a port was taken before the process
// bound it, it starts again on new ports. On any other failure the process is stopped and the
// error carries the tail of its log (the whole log stays in logPath).
func StartServer(ctx context.Context, binary, logPath string, timeout time.Duration, args func(ServeAddrs) []string) (*Server, error) {
	var srv *Server
	err := retryPortClash(func() error {
		addrs, err := FreeServeAddrs()
		if err != nil {
			return err
		}
		name := strings.TrimSuffix(filepath.Base(logPath), filepath.Ext(logPath))
		p, err := Start(Command{Name: name, Path: binary, Args: append(args(addrs), addrs.Args()...), Log: logPath})
		if err != nil {
			return err
		}
		if err := p.WaitHTTP(ctx, addrs.ReadyURL(), timeout); err != nil {
			p.Stop(stopTimeout)
			return err
		}
		srv = &Server{Process: p, ServeAddrs: addrs}
		return nil
	})
	return srv, err
}

// ClientFrom returns an HTTP client whose connections come from the loopback address ip, e.g.
// 127.0.0.2 (Linux answers on all of 127.0.0.0/8), so that a server on loopback sees another
// client address: an attacker and a legitimate client, say.
func ClientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 10 * time.Second}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 64}}
}
