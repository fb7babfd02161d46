package redirecturi

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestRegistered(t *testing.T) {
	registered := []string{
		"https://app.example.com/callback",
		"http://127.0.0.1/cb",
		"http://[::1]:8080/cb?x=1",
		"http://localhost:3000/",
		"com.example.app:/oauth",
	}
	for _, tc := range []struct {
		name, requested string
		ok              bool
	}{
		{"An exactly registered https URI matches", "https://app.example.com/callback", true},
		{"An https URI on another port does not match", "https://app.example.com:8443/callback", false},
		{"A registered loopback URI without a port matches any port", "http://127.0.0.1:51234/cb", true},
		{"A registered loopback URI matches itself", "http://127.0.0.1/cb", true},
		{"A registered IPv6 loopback URI matches another port", "http://[::1]:9/cb?x=1", true},
		{"A registered IPv6 loopback URI matches no port", "http://[::1]/cb?x=1", true},
		{"A registered localhost URI matches another port", "http://localhost:1/", true},
		{"The loopback host must be the same bytes", "http://localhost:51234/cb", false},
		{"The path must be the same bytes", "http://127.0.0.1:51234/cb/", false},
		{"The query must be the same bytes", "http://[::1]:9/cb?x=2", false},
		{"A fragment never matches", "http://127.0.0.1:51234/cb#x", false},
		{"Port zero does not match", "http://127.0.0.1:0/cb", false},
		{"A port with a leading zero does not match", "http://127.0.0.1:080/cb", false},
		{"A port above 65535 does not match", "http://127.0.0.1:65536/cb", false},
		{"An empty port does not match", "http://127.0.0.1:/cb", false},
		{"A port that is not a number does not match", "http://127.0.0.1:x/cb", false},
		{"User information does not match", "http://evil@127.0.0.1:5/cb", false},
		{"Another address in 127/8 does not match", "http://127.0.0.2:5/cb", false},
		{"https on loopback does not get the exception", "https://127.0.0.1:5/cb", false},
		{"A private-use scheme matches exactly", "com.example.app:/oauth", true},
		{"A host that merely starts like loopback does not match", "http://127.0.0.1.evil.com:5/cb", false},
		{"An unbalanced IPv6 host does not match", "http://::1]:5/cb?x=1", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := Registered(registered, tc.requested)
			assert.Equal(t, tc.ok, ok)
			if ok {
				assert.Equal(t, tc.requested, got)
			}
		})
	}
}

// A registered URI that is not loopback never lends its host to a requested one.
func TestRegisteredNeedsALoopbackRegistration(t *testing.T) {
	_, ok := Registered([]string{"http://example.com/cb"}, "http://example.com:5/cb")
	assert.False(t, ok)
}

func FuzzRegistered(f *testing.F) {
	for _, s := range []string{"http://127.0.0.1:5/cb", "http://[::1]/", "http://localhost:65535?x", "https://a/b", "http://127.0.0.1:/"} {
		f.Add(s)
	}
	registered := []string{"http://127.0.0.1/cb", "http://[::1]:80/", "http://localhost?x"}
	f.Fuzz(func(t *testing.T, requested string) {
		got, ok := Registered(registered, requested)
		if !ok {
			return
		}
		if got != requested {
			t.Fatalf("Registered returned %q for %q", got, requested)
		}
		if err := Check(requested); err != nil {
			t.Fatalf("%q matched a registered URI but is not a valid redirect URI: %v", requested, err)
		}
	})
}
