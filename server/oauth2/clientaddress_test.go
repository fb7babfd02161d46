package oauth2

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestClientAddress(t *testing.T) {
	for _, tc := range []struct {
		name, remote, header, value, want string
	}{
		{"Without a header the connection's IP counts", "192.0.2.1:5000", "", "", "192.0.2.1"},
		{"An unconfigured header is ignored", "192.0.2.1:5000", "", "198.51.100.7", "192.0.2.1"},
		{"The configured header's last value counts", "10.0.0.1:5000", "X-Forwarded-For", "203.0.113.1, 198.51.100.7", "198.51.100.7"},
		{"A port after the address is dropped", "10.0.0.1:5000", "X-Forwarded-For", "198.51.100.7:61000", "198.51.100.7"},
		{"A bracketed IPv6 address with a port is its address", "10.0.0.1:5000", "X-Forwarded-For", "[2001:db8::1]:443", "2001:db8::1"},
		{"A bracketed IPv6 address without a port is its address", "10.0.0.1:5000", "X-Forwarded-For", "[2001:db8::1]", "2001:db8::1"},
		{"An IPv4-mapped address is its IPv4 address", "10.0.0.1:5000", "X-Forwarded-For", "::ffff:198.51.100.7", "198.51.100.7"},
		{"A value that is no address falls back to the connection", "10.0.0.1:5000", "X-Forwarded-For", "unknown", "10.0.0.1"},
		{"An empty last value falls back to the connection", "10.0.0.1:5000", "X-Forwarded-For", "198.51.100.7, ", "10.0.0.1"},
		{"An IPv6 connection is its address", "[2001:db8::2]:5000", "", "", "2001:db8::2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tc.remote
			if tc.value != "" {
				r.Header.Set("X-Forwarded-For", tc.value)
			}
			assert.Equal(t, tc.want, clientAddress(r, tc.header))
		})
	}
}

// FuzzClientAddress: whatever the header says, the address is an IP (the header's or the
// connection's), so a client cannot get a limit key of its own per request.
func FuzzClientAddress(f *testing.F) {
	for _, s := range []string{"198.51.100.7", "1.2.3.4:5", "[::1]:80", "a, b", "::ffff:1.2.3.4", "", "[::1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, value string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = "10.0.0.1:5000"
		r.Header.Set("X-Client-Ip", value)
		got := clientAddress(r, "X-Client-Ip")
		if _, err := netip.ParseAddr(got); err != nil {
			t.Fatalf("clientAddress(%q) = %q, not an IP", value, got)
		}
	})
}
