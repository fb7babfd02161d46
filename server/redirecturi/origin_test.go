package redirecturi

import (
	"net/url"
	"slices"
	"strings"
	"testing"
)

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
			if got, ok := Origin(tt.raw); got != tt.want || ok != (tt.want != "") {
				t.Errorf("Origin(%q) = %q, %v; want %q", tt.raw, got, ok, tt.want)
			}
		})
	}
}

// FuzzOrigin checks that what Origin accepts is an origin in the form it returns: returned
// again unchanged, in lower case, with an http(s) scheme and a host and nothing after it.
func TestOrigins(t *testing.T) {
	got := Origins([]string{"http://localhost:3000/callback", "https://App.example:443/cb", "https://app.example/other",
		"com.example.app:/cb", "http://127.1/cb", "http://[::1]:8080/cb"})
	want := []string{"http://localhost:3000", "https://app.example", "http://[::1]:8080"}
	if !slices.Equal(got, want) {
		t.Errorf("Origins = %q, want %q", got, want)
	}
	if got := Origins([]string{"com.example.app:/cb"}); got != nil {
		t.Errorf("Origins of a private-use scheme = %q, want none", got)
	}
}

func FuzzOrigin(f *testing.F) {
	for _, s := range []string{"https://spa.example", "http://localhost:3000", "HTTPS://A.B:443/", "http://[::1]:80",
		"http://127.0.0.1", "http://127.1", "https://x:0x1", "http://[fe80::1%25x]", "https://a.b.#", "null"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got, ok := Origin(raw)
		if !ok {
			if got != "" {
				t.Fatalf("refused %q but returned %q", raw, got)
			}
			return
		}
		again, ok := Origin(got)
		if !ok || again != got {
			t.Fatalf("Origin(%q) = %q, but Origin(%q) = %q, %v", raw, got, got, again, ok)
		}
		if strings.ToLower(got) != got || (!strings.HasPrefix(got, "http://") && !strings.HasPrefix(got, "https://")) {
			t.Fatalf("Origin(%q) = %q is not a lower-case http(s) origin", raw, got)
		}
		u, err := url.Parse(got)
		if err != nil || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil ||
			got != u.Scheme+"://"+u.Host {
			t.Fatalf("Origin(%q) = %q is not scheme://host[:port]", raw, got)
		}
		if p := u.Port(); (u.Scheme == "https" && p == "443") || (u.Scheme == "http" && p == "80") || strings.HasPrefix(p, "0") && p != "0" {
			t.Fatalf("Origin(%q) = %q keeps a default port or leading zeros", raw, got)
		}
	})
}
