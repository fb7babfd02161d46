package redirecturi

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestCheckLogoutURI(t *testing.T) {
	tests := []struct {
		name string
		uri  string
		want error
	}{
		{"an https URI with a path and a query is accepted", "https://app.example/logout?tenant=a", nil},
		{"http on a loopback host is accepted", "http://127.0.0.1:8080/backchannel", nil},
		{"http on another host is refused", "http://app.example/logout", ErrNotLoopback},
		{"a private-use scheme is refused: nobody can POST to it", "com.example.app:/logout", ErrNotHTTP},
		{"a single-label scheme is refused", "myapp://logout", ErrNotHTTP},
		{"a fragment is refused", "https://app.example/logout#x", ErrFragment},
		{"user information is refused", "https://user:pw@app.example/logout", ErrUserInfo},
		{"white space is refused", "https://app.example/log out", ErrWhiteSpace},
		{"an https URI without a host is refused", "https:///logout", ErrNoHost},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckLogoutURI(tc.uri)
			if tc.want == nil {
				assert.NoError(t, err)
				return
			}
			assert.ErrorIs(t, err, tc.want)
		})
	}
}

func FuzzCheckLogoutURI(f *testing.F) {
	for _, u := range []string{
		"https://app.example/logout", "http://localhost/l", "http://[::1]:1/", "com.example.app:/x", "a.b:",
		"javascript:alert(1)", "https://a/#f", "http://localhost.evil/", "https://%C3%A9/", "",
	} {
		f.Add(u)
	}
	f.Fuzz(func(t *testing.T, u string) {
		err := CheckLogoutURI(u)
		if err != nil {
			if !errors.Is(err, ErrNotHTTP) && !isReason(err) {
				t.Fatalf("CheckLogoutURI(%q) = %v, not one of the reasons", u, err)
			}
			return
		}
		if Check(u) != nil {
			t.Fatalf("CheckLogoutURI accepted %q, which Check refuses", u)
		}
		if !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://") {
			t.Fatalf("CheckLogoutURI accepted %q, which is not http(s)", u)
		}
	})
}

func isReason(err error) bool {
	for _, r := range reasons {
		if errors.Is(err, r) {
			return true
		}
	}
	return false
}
