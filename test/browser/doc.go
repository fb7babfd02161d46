// Package browser drives the login and consent pages of the authorization endpoint with a real
// browser: Debian's chromium, through chromedp. The test serves the oauth2 handler (memory
// store, generated keys, an in-memory registry) and a client's callback on loopback ports,
// signs in, consents, exchanges the code with golang.org/x/oauth2 and calls userinfo; it also
// denies consent and types a wrong password. A missing chromium is installed with
// hack/apt-install.sh chromium (the harness's tool policy, as `make test-deps` does); when that
// fails the test fails, it never skips.
//
// Screenshots of the login and consent pages (wide and narrow) are written to the test's
// artifact directory: run with `go test ./test/browser -artifacts -outputdir DIR` to keep them.
// LATCHKEY_CHROMIUM overrides the browser's path (default: chromium on PATH).
package browser
