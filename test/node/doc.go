// Package node runs strict, independent OAuth clients written by others against the built
// latchkey binary: panva's oauth4webapi and openid-client (npm, pinned in package-lock.json),
// under Node.js (20 or later). They check what Go clients would forgive: the exact shape of
// every response, the ID token's claims, token_type, and (with jose) the access token's
// signature, aud and cnf.jkt.
//
// TestMain finds node (installing Debian's nodejs when it is missing, as `make test-deps`
// does), installs the npm packages with hack/npm-ci.sh when node_modules is missing (the
// harness's tool policy: it never skips), builds latchkey and starts it twice in embedded mode
// (--manifests, memory store): once without DPoP nonces and once with --dpop-require-nonce.
// client.mjs does the client side, one command per run; the Go side drives the login and
// consent pages (harness.Browser) between the pushed authorization request and the code
// exchange, handing the callback URL to a second run of Node (the PKCE verifier and the DPoP
// key wait in a temporary file). A failed check makes Node exit non-zero with the reason,
// which the Go test prints. Node never prints a token, a code or a key.
package node
