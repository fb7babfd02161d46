package oauth2

import (
	"encoding/hex"
	"math/rand/v2"
	"net/http"
)

// RequestIDHeader carries a request's ID: taken from the request when valid, else generated,
// and echoed in the response either way.
const RequestIDHeader = "X-Request-Id"

// MaxRequestIDLength bounds a request ID taken from a request.
const MaxRequestIDLength = 128

// requestID is r's valid X-Request-Id, else a new random one (32 hex digits). Valid: 1 to
// MaxRequestIDLength characters, each a letter, a digit or one of - _ . : / + = @ (what
// proxies, UUIDs, W3C trace IDs and base64 use), so that it cannot forge a log line, hold a
// space-separated payload or grow a log without bound.
func requestID(r *http.Request) string {
	if vals := r.Header[RequestIDHeader]; len(vals) == 1 && validRequestID(vals[0]) {
		return vals[0]
	}
	return newRequestID()
}

func validRequestID(id string) bool {
	if id == "" || len(id) > MaxRequestIDLength {
		return false
	}
	for i := range len(id) {
		switch c := id[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-', c == '_', c == '.', c == ':', c == '/', c == '+', c == '=', c == '@':
		default:
			return false
		}
	}
	return true
}

// newRequestID is 128 random bits in hex. Request IDs need to be unique, not secret: the
// runtime's per-thread ChaCha8 source is enough and takes no lock.
func newRequestID() string {
	var b [16]byte
	for i := 0; i < len(b); i += 8 {
		v := rand.Uint64() //nolint:gosec // a request ID must be unique, not unpredictable
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return hex.EncodeToString(b[:])
}

// response is the request's ResponseWriter as Wrap hands it on: it remembers the status and
// counts the body bytes for the metrics and the access log. Unwrap gives http.ResponseController
// the connection's writer (flushing, deadlines).
type response struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *response) WriteHeader(code int) {
	if w.status == 0 && code >= 200 { // 1xx responses are informational; the final one counts
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *response) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap is for http.ResponseController.
func (w *response) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// statusCode is the status written, 200 when the handler wrote nothing (as net/http answers).
func (w *response) statusCode() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}
