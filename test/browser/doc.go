// Package browser drives the login and consent pages of the authorization endpoint with a real
// browser: Debian's chromium, through chromedp. The test serves the oauth2 handler (memory
// store, generated keys, an in-memory registry) and a client's callback on loopback ports,
// signs in, consents, exchanges the code with golang.org/x/oauth2 and calls userinfo; it also
// denies consent and types a wrong password. A single-page app served on a second loopback
// origin (another port) signs in the same way from JavaScript alone: PKCE with WebCrypto, the
// code exchanged with fetch and userinfo called with the access token, which needs the CORS
// answers of the token and userinfo endpoints for its origin (the default from its redirect URI,
// converted by controllers/convert); a page on a third origin is refused by Chromium (CORS
// errors) for the same requests that Go makes successfully, while any page reads discovery and
// the JWKS. The device authorization grant (RFC 8628) runs end to end too: a CLI
// (golang.org/x/oauth2's DeviceAuth and DeviceAccessToken, polling in the background) waits
// while chromium enters the user code on the verification page, signs in and approves (or,
// from verification_uri_complete, denies). Back-channel logout runs through the built binary
// (latchkey serve --manifests, memory store): chromium signs in to several clients of one
// session, then RP-initiated logout, the account page (this browser's session or another's)
// and a logout POSTed without cookies each send one logout token, verified against the JWKS,
// to every client that took part (harness.LogoutReceiver) and none to another. A missing chromium is installed with
// hack/apt-install.sh chromium (the harness's tool policy, as `make test-deps` does); when that
// fails the test fails, it never skips.
//
// Screenshots of the login and consent pages (wide and narrow) are written to the test's
// artifact directory: run with `go test ./test/browser -artifacts -outputdir DIR` to keep them.
// LATCHKEY_CHROMIUM overrides the browser's path (default: chromium on PATH).
package browser
