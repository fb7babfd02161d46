package oauth2

import (
	"fmt"
	"net/http"

	"github.com/go-logr/logr"
)

// RecoverPanics turns a panic into server_error. There should be none; this is the backstop
// that keeps the client from getting a dropped connection or HTML.
func RecoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler { //nolint:errorlint // the sentinel itself is the panic value
				panic(v)
			}
			logr.FromContextOrDiscard(r.Context()).Error(fmt.Errorf("panic: %v", v), "handler panicked", "path", r.URL.Path)
			WriteError(w, r, ErrServerError)
		}()
		next.ServeHTTP(w, r)
	})
}
