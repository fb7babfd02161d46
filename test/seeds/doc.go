// Package seeds runs the examples of the documents our users arrive with (../shared/seeds) against
// the built latchkey binary, as written: the curl commands are read out of each document and run
// with the real curl, and the authorize URLs are opened with an HTTP client that signs in and
// consents. Only the host (and base path) changes, placeholders such as YOUR_CLIENT_ID get the
// values of the test's clients, and where an example sends no client credentials the client's are
// added. Examples outside Latchkey's surface (a resource server's API, the seeds' ad-hoc client
// registration shapes, replaced by RFC 7591) are skipped by rule, listed in skipURL.
package seeds
