package oauth2

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type accessRecorder struct{ records []AccessRecord }

func (a *accessRecorder) LogAccess(r AccessRecord) { a.records = append(a.records, r) }

func TestRequestIDs(t *testing.T) {
	generated := `^[0-9a-f]{32}$`
	for _, tc := range []struct {
		name   string
		header []string
		want   string // exact, or a pattern when it starts with ^
	}{
		{name: "a request without an ID gets a generated one", want: generated},
		{name: "a valid ID is taken and echoed", header: []string{"abc-123_x.y:z/+=@Q"}, want: "abc-123_x.y:z/+=@Q"},
		{name: "a UUID is taken", header: []string{"3f2b8c1e-9d4a-4e5f-8a7b-6c5d4e3f2a1b"}, want: "3f2b8c1e-9d4a-4e5f-8a7b-6c5d4e3f2a1b"},
		{name: "an ID of the longest length is taken", header: []string{strings.Repeat("a", MaxRequestIDLength)}, want: strings.Repeat("a", MaxRequestIDLength)},
		{name: "a longer ID is replaced", header: []string{strings.Repeat("a", MaxRequestIDLength+1)}, want: generated},
		{name: "an ID with a space is replaced", header: []string{"abc def"}, want: generated},
		{name: "an ID with a quote or a brace is replaced", header: []string{`a"}{`}, want: generated},
		{name: "an ID with a newline is replaced", header: []string{"a\nlevel=error"}, want: generated},
		{name: "an ID with non-ASCII is replaced", header: []string{"réq"}, want: generated},
		{name: "an empty ID is replaced", header: []string{""}, want: generated},
		{name: "two ID headers are replaced", header: []string{"a", "b"}, want: generated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var seen string
			var logged bytes.Buffer
			log := funcr.New(func(prefix, args string) { logged.WriteString(args + "\n") }, funcr.Options{})
			access := &accessRecorder{}
			h := Instrumentation{AccessLog: access}.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				seen = RequestID(r.Context())
				logr.FromContextOrDiscard(r.Context()).Info("hello")
				w.WriteHeader(http.StatusTeapot)
				_, _ = w.Write([]byte("body"))
			}))
			r := httptest.NewRequest(http.MethodPost, "/oauth2/token?code=secret-code", nil)
			for _, v := range tc.header {
				r.Header.Add(RequestIDHeader, v)
			}
			r = r.WithContext(logr.NewContext(r.Context(), log))
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			got := w.Header().Get(RequestIDHeader)
			if strings.HasPrefix(tc.want, "^") {
				assert.Regexp(t, tc.want, got)
			} else {
				assert.Equal(t, tc.want, got)
			}
			assert.Equal(t, got, seen, "the context's request ID is the echoed one")
			assert.Contains(t, logged.String(), `"request_id"="`+got+`"`, "the request's logger carries it")
			require.Len(t, access.records, 1)
			rec := access.records[0]
			assert.Equal(t, got, rec.RequestID)
			assert.Equal(t, "/oauth2/token", rec.Path, "no query string")
			assert.Equal(t, http.StatusTeapot, rec.Status)
			assert.Equal(t, int64(4), rec.Bytes)
			assert.Equal(t, EndpointOther, rec.Endpoint)
		})
	}
}

func TestGeneratedRequestIDsDiffer(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := newRequestID()
		require.False(t, seen[id], "duplicate %s", id)
		seen[id] = true
	}
}

func TestTheStatusOfAResponseWithoutWriteHeaderIs200(t *testing.T) {
	var status int
	h := Instrumentation{AccessLog: accessFunc(func(r AccessRecord) { status = r.Status })}.Wrap(
		http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	assert.Equal(t, http.StatusOK, status)
}

type accessFunc func(AccessRecord)

func (f accessFunc) LogAccess(r AccessRecord) { f(r) }
