// Package accesslog writes the access log (latchkey serve --access-log): one JSON object per
// request and line, with "log":"access" so that it can share a stream with the audit log
// ("log":"audit") and the server log (which has a "level") and still be told apart.
//
// A line holds the method, the path without its query string, the status, the duration, the
// bytes of the response body, the client address, the request ID and, when the request was
// traced, its trace ID: never a query string, a header, a body, a token, a code or a secret
// (oauth2.AccessRecord holds none).
//
// It imports server/oauth2 for the record type only, and server/jsonlines to write the lines.
package accesslog
