package convert

import (
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
)

func TestAllowedOrigins(t *testing.T) {
	tests := []struct {
		name      string
		redirects []string
		allowed   []string
		want      []string
	}{
		{"the default is the origins of the http and https redirect URIs, once each",
			[]string{"http://localhost:3000/callback", "https://app.example/cb", "https://app.example/other", "com.example.app:/cb"}, nil,
			[]string{"http://localhost:3000", "https://app.example"}},
		{"a redirect URI's default port and upper-case host are written as browsers send them",
			[]string{"https://App.Example:443/cb", "http://127.0.0.1:80/cb", "http://[0:0:0:0:0:0:0:1]:8080/cb"}, nil,
			[]string{"https://app.example", "http://127.0.0.1", "http://[::1]:8080"}},
		{"a client without http(s) redirect URIs allows no origin",
			[]string{"com.example.app:/cb"}, nil, nil},
		{"spec.allowedOrigins replace the default",
			[]string{"http://localhost:3000/callback"}, []string{"https://spa.example", "http://localhost:5173"},
			[]string{"https://spa.example", "http://localhost:5173"}},
		{"spec.allowedOrigins are written as browsers send them, once each",
			nil, []string{"HTTPS://SPA.Example:443", "https://spa.example", "http://localhost:08080"},
			[]string{"https://spa.example", "http://localhost:8080"}},
		{"an entry that is not an origin browsers send is left out",
			nil, []string{"https://127.1", "http://[fe80::1%25eth0]:80", "https://spa.example", "https://x:99999"},
			[]string{"https://spa.example"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			oc := &v1alpha1.OAuthClient{Spec: v1alpha1.OAuthClientSpec{
				Type: v1alpha1.ClientTypePublic, RedirectURIs: tt.redirects, AllowedOrigins: tt.allowed,
			}}
			assert.Equal(t, tt.want, AllowedOrigins(oc))
		})
	}
}

func TestClientAllowedOrigins(t *testing.T) {
	public := func(origins ...string) func(*v1alpha1.OAuthClient) {
		return func(oc *v1alpha1.OAuthClient) {
			withRedirectURIs("https://App.example:443/cb")(oc)
			oc.Spec.Type, oc.Spec.AllowedOrigins = v1alpha1.ClientTypePublic, origins
		}
	}
	t.Run("a Public client gets the origins of its redirect URIs as browsers send them", func(t *testing.T) {
		c, err := Client(oauthClient(public()), nil)
		require.NoError(t, err)
		assert.Equal(t, []string{"https://app.example"}, c.AllowedOrigins)
	})
	t.Run("a Public client gets its allowedOrigins as browsers send them", func(t *testing.T) {
		c, err := Client(oauthClient(public("HTTP://LOCALHOST:3000")), nil)
		require.NoError(t, err)
		assert.Equal(t, []string{"http://localhost:3000"}, c.AllowedOrigins)
	})
	t.Run("a Confidential client gets no origins, not even its redirect URIs'", func(t *testing.T) {
		c, err := Client(oauthClient(withRedirectURIs("https://app.example/cb")),
			secret("payments", "billing-oauth-client", map[string]string{"client-secret": "s"}))
		require.NoError(t, err)
		assert.Empty(t, c.AllowedOrigins)
	})
	t.Run("a Confidential client with allowedOrigins is an invalid spec (the CRD's rule, for manifests)", func(t *testing.T) {
		_, err := Client(oauthClient(func(oc *v1alpha1.OAuthClient) { oc.Spec.AllowedOrigins = []string{"https://app.example"} }), nil)
		require.ErrorIs(t, err, ErrInvalidSpec)
		assert.Contains(t, err.Error(), "allowedOrigins (CORS) is for Public clients")
	})
	t.Run("an allowedOrigin browsers never send is an invalid spec that names it", func(t *testing.T) {
		_, err := Client(oauthClient(public("https://app.example", "http://127.1")), nil)
		require.ErrorIs(t, err, ErrInvalidSpec)
		assert.Contains(t, err.Error(), `allowedOrigin "http://127.1" is not an http(s) origin`)
		assert.NotContains(t, err.Error(), `"https://app.example"`)
	})
}

func TestOrigin(t *testing.T) {
	tests := []struct {
		name, raw, want string // want "" means refused
	}{
		{"https with a host is itself", "https://spa.example", "https://spa.example"},
		{"http with a port is itself", "http://localhost:3000", "http://localhost:3000"},
		{"a lone slash after the host is dropped", "https://spa.example/", "https://spa.example"},
		{"scheme and host are lower-cased", "HTTPS://Spa.EXAMPLE", "https://spa.example"},
		{"the https default port is dropped", "https://spa.example:443", "https://spa.example"},
		{"the http default port is dropped", "http://spa.example:80", "http://spa.example"},
		{"the other scheme's default port is kept", "http://spa.example:443", "http://spa.example:443"},
		{"leading zeros of the port are dropped", "http://localhost:003000", "http://localhost:3000"},
		{"port 0 is kept", "http://localhost:0", "http://localhost:0"},
		{"an IPv6 host is compressed and lower-cased", "http://[0:0:0:0:0:0:0:1]:8080", "http://[::1]:8080"},
		{"an upper-case IPv6 host is lower-cased", "https://[2001:DB8::1]", "https://[2001:db8::1]"},
		{"a dotted-decimal IPv4 host is itself", "http://127.0.0.2:8080", "http://127.0.0.2:8080"},
		{"a trailing dot is kept, as browsers keep it", "https://spa.example.", "https://spa.example."},

		{"a path is refused", "https://spa.example/app", ""},
		{"a query is refused", "https://spa.example?x", ""},
		{"an empty query is refused", "https://spa.example/?", ""},
		{"a fragment is refused", "https://spa.example#x", ""},
		{"an empty fragment is refused", "https://spa.example#", ""},
		{"user information is refused", "https://u@spa.example", ""},
		{"another scheme is refused", "ftp://spa.example", ""},
		{"null is refused", "null", ""},
		{"no host is refused", "https://", ""},
		{"an empty port is refused", "https://spa.example:", ""},
		{"a port over 65535 is refused", "https://spa.example:65536", ""},
		{"a shortened IPv4 address is refused", "http://127.1", ""},
		{"an IPv4 address with a leading zero is refused", "http://127.0.0.01", ""},
		{"a hexadecimal IPv4 address is refused", "http://0x7f000001", ""},
		{"an IPv6 zone is refused", "http://[fe80::1%25eth0]", ""},
		{"an IPv4 address in brackets is refused", "http://[127.0.0.1]", ""},
		{"a host with an underscore is refused", "https://a_b.example", ""},
		{"a non-ASCII host is refused", "https://bücher.example", ""},
		{"an opaque URI is refused", "https:spa.example", ""},
		{"the empty string is refused", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := origin(tt.raw)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.want != "", ok)
		})
	}
}

// FuzzOrigin checks that what origin accepts is an origin in the form it returns: returned
// again unchanged, in lower case, with an http(s) scheme and a host and nothing after it.
func FuzzOrigin(f *testing.F) {
	for _, s := range []string{"https://spa.example", "http://localhost:3000", "HTTPS://A.B:443/", "http://[::1]:80",
		"http://127.0.0.1", "http://127.1", "https://x:0x1", "http://[fe80::1%25x]", "https://a.b.#", "null"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got, ok := origin(raw)
		if !ok {
			if got != "" {
				t.Fatalf("refused %q but returned %q", raw, got)
			}
			return
		}
		again, ok := origin(got)
		if !ok || again != got {
			t.Fatalf("origin(%q) = %q, but origin(%q) = %q, %v", raw, got, got, again, ok)
		}
		if strings.ToLower(got) != got || (!strings.HasPrefix(got, "http://") && !strings.HasPrefix(got, "https://")) {
			t.Fatalf("origin(%q) = %q is not a lower-case http(s) origin", raw, got)
		}
		u, err := url.Parse(got)
		if err != nil || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil ||
			got != u.Scheme+"://"+u.Host {
			t.Fatalf("origin(%q) = %q is not scheme://host[:port]", raw, got)
		}
		if p := u.Port(); (u.Scheme == "https" && p == "443") || (u.Scheme == "http" && p == "80") || strings.HasPrefix(p, "0") && p != "0" {
			t.Fatalf("origin(%q) = %q keeps a default port or leading zeros", raw, got)
		}
	})
}
