package redirecturi

import (
	"errors"
	"strings"
)

// ErrNotHTTP is the reason CheckLogoutURI gives for a private-use scheme.
var ErrNotHTTP = errors.New("must use https, or http on a loopback host (localhost, 127.0.0.1, [::1])")

// CheckLogoutURI returns nil when u is an acceptable back-channel logout URI (OIDC Back-Channel
// Logout 2.2): Check's rule without the private-use schemes, which no server can POST to. Its
// reasons are Check's, and ErrNotHTTP.
func CheckLogoutURI(u string) error {
	if err := Check(u); err != nil {
		if errors.Is(err, ErrSchemeNotAllowed) || errors.Is(err, ErrNothingAfterScheme) {
			return ErrNotHTTP
		}
		return err
	}
	if !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://") {
		return ErrNotHTTP
	}
	return nil
}
