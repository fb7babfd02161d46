package harness

import (
	"bytes"
	"context"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

// CutProxy forwards TCP connections to a server (a redis-server); when armed with a command
// name, it closes the client's connection instead of passing on the reply to the next request
// that sends the command: the server has run it, the client sees the connection fail (as when
// a network fails, or the server goes down, after the request went out and before its reply
// came back). It counts the connections it accepted (Connections): how often a client
// dialled the server (an LDAP re-check dials slapd once).
type CutProxy struct {
	ln     net.Listener
	target string
	conns  atomic.Int64
	mu     sync.Mutex
	armed  []byte // a command name in lower case; nil: none
}

// NewCutProxy listens on a loopback port and forwards to target until the test ends.
func NewCutProxy(tb testing.TB, target string) *CutProxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	p := &CutProxy{ln: ln, target: target}
	tb.Cleanup(func() { _ = ln.Close() })
	go p.serve()
	return p
}

// Addr is the proxy's host:port.
func (p *CutProxy) Addr() string { return p.ln.Addr().String() }

// Connections is the number of connections the proxy accepted so far.
func (p *CutProxy) Connections() int { return int(p.conns.Load()) }

// Arm cuts the connection of the next request that sends command.
func (p *CutProxy) Arm(command string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.armed = []byte(strings.ToLower(command))
}

// takes reports whether request sends the armed command, disarming it.
func (p *CutProxy) takes(request []byte) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.armed == nil || !bytes.Contains(bytes.ToLower(request), p.armed) {
		return false
	}
	p.armed = nil
	return true
}

func (p *CutProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.conns.Add(1)
		go p.handle(c)
	}
}

func (p *CutProxy) handle(c net.Conn) {
	var d net.Dialer
	s, err := d.DialContext(context.Background(), "tcp", p.target)
	if err != nil {
		_ = c.Close()
		return
	}
	var cut atomic.Bool
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := c.Read(buf)
			if n > 0 {
				if p.takes(buf[:n]) {
					cut.Store(true)
				}
				if _, werr := s.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		_ = s.Close()
	}()
	buf := make([]byte, 64<<10)
	for {
		n, err := s.Read(buf)
		if n > 0 {
			if cut.Load() {
				break
			}
			if _, werr := c.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	_ = c.Close()
	_ = s.Close()
}
