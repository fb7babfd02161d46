package harness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// LogoutReceiver is a loopback HTTP server that stands for the backchannelLogoutURI of
// clients: each client gets the path /<client ID> (URI). It records every POST it gets and
// answers 200, or 503 while the client is set to fail (FailNext, FailAlways).
type LogoutReceiver struct {
	srv *httptest.Server

	mu       sync.Mutex
	attempts map[string][]LogoutPost // every POST, by client
	failNext map[string]int          // how many of the next POSTs of a client fail
	failAll  map[string]bool
}

// LogoutPost is one POST the receiver got.
type LogoutPost struct {
	ContentType string
	Token       string // the form's logout_token
	Answered    int    // the status the receiver answered
}

// NewLogoutReceiver starts a receiver that stops with the test.
func NewLogoutReceiver(t testing.TB) *LogoutReceiver {
	t.Helper()
	r := StartLogoutReceiver()
	t.Cleanup(r.Close)
	return r
}

// StartLogoutReceiver starts a receiver; Close stops it.
func StartLogoutReceiver() *LogoutReceiver {
	r := &LogoutReceiver{attempts: map[string][]LogoutPost{}, failNext: map[string]int{}, failAll: map[string]bool{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	return r
}

// Close stops the receiver.
func (r *LogoutReceiver) Close() { r.srv.Close() }

// URI is the backchannelLogoutURI of the client.
func (r *LogoutReceiver) URI(clientID string) string { return r.srv.URL + "/" + clientID }

// FailNext makes the next n POSTs of the client answer 503.
func (r *LogoutReceiver) FailNext(clientID string, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failNext[clientID] = n
}

// FailAlways makes every POST of the client answer 503.
func (r *LogoutReceiver) FailAlways(clientID string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failAll[clientID] = true
}

// Posts returns the POSTs the client got so far, in order.
func (r *LogoutReceiver) Posts(clientID string) []LogoutPost {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]LogoutPost(nil), r.attempts[clientID]...)
}

// Delivered returns the logout tokens of the client's POSTs that were answered 200.
func (r *LogoutReceiver) Delivered(clientID string) []string {
	var out []string
	for _, p := range r.Posts(clientID) {
		if p.Answered == http.StatusOK {
			out = append(out, p.Token)
		}
	}
	return out
}

// AwaitDelivered waits until the client got n logout tokens answered 200 and returns them; it
// fails the test when that takes longer than timeout or more arrive.
func (r *LogoutReceiver) AwaitDelivered(t testing.TB, clientID string, n int, timeout time.Duration) []string {
	t.Helper()
	require.Eventually(t, func() bool { return len(r.Delivered(clientID)) >= n }, timeout, 20*time.Millisecond,
		"%s gets %d logout token(s); it got %d POST(s)", clientID, n, len(r.Posts(clientID)))
	got := r.Delivered(clientID)
	require.Equal(t, n, len(got), "%s gets exactly %d logout token(s)", clientID, n) //nolint:testifylint // Len would print every token
	return got
}

func (r *LogoutReceiver) serve(w http.ResponseWriter, req *http.Request) {
	client := strings.TrimPrefix(req.URL.Path, "/")
	if req.Method != http.MethodPost || client == "" {
		http.Error(w, "want a POST to /<client>", http.StatusMethodNotAllowed)
		return
	}
	req.Body = http.MaxBytesReader(w, req.Body, 64<<10)
	if err := req.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	status := http.StatusOK
	switch {
	case r.failNext[client] > 0:
		r.failNext[client]--
		status = http.StatusServiceUnavailable
	case r.failAll[client]:
		status = http.StatusServiceUnavailable
	}
	r.attempts[client] = append(r.attempts[client], LogoutPost{
		ContentType: req.Header.Get("Content-Type"), Token: req.PostForm.Get("logout_token"), Answered: status,
	})
	r.mu.Unlock()
	w.WriteHeader(status)
}

// logoutTokenAlgorithms are the signature algorithms a logout token may have.
var logoutTokenAlgorithms = []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA} //nolint:gochecknoglobals // constant list

// VerifyLogoutToken verifies a logout token as a relying party must (OpenID Connect
// Back-Channel Logout 1.0 2.6) against the key set published at issuer's
// /.well-known/jwks.json: the signature, the typ header logout+jwt, iss, aud (the client ID),
// iat and exp (at most 2 minutes apart, exp in the future), a jti, the back-channel logout
// event, sid or sub, and no nonce. It returns the claims.
func VerifyLogoutToken(t testing.TB, hc *http.Client, issuer, clientID, token string) map[string]any {
	t.Helper()
	parsed, err := jwt.ParseSigned(token, logoutTokenAlgorithms)
	require.NoError(t, err, "a signed JWT")
	require.Len(t, parsed.Headers, 1)
	header := parsed.Headers[0]
	assert.Equal(t, "logout+jwt", header.ExtraHeaders[jose.HeaderType], "typ header")

	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, issuer+"/.well-known/jwks.json", nil)
	require.NoError(t, err)
	resp, err := hc.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close() //nolint:errcheck // test
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var set jose.JSONWebKeySet
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&set))
	keys := set.Key(header.KeyID)
	require.Len(t, keys, 1, "the token's kid %q is published", header.KeyID)

	claims := map[string]any{}
	var std jwt.Claims
	require.NoError(t, parsed.Claims(keys[0].Key, &claims, &std), "the signature verifies")
	require.NoError(t, std.ValidateWithLeeway(jwt.Expected{Issuer: issuer, AnyAudience: jwt.Audience{clientID}, Time: time.Now()}, 5*time.Second))
	assert.Equal(t, jwt.Audience{clientID}, std.Audience, "aud is the client ID alone")
	require.NotNil(t, std.IssuedAt, "iat")
	require.NotNil(t, std.Expiry, "exp")
	assert.LessOrEqual(t, std.Expiry.Time().Sub(std.IssuedAt.Time()), 2*time.Minute, "exp - iat")
	assert.NotEmpty(t, std.ID, "jti")
	events, ok := claims["events"].(map[string]any)
	require.True(t, ok, "events is a JSON object: %v", claims["events"])
	assert.Contains(t, events, "http://schemas.openid.net/event/backchannel-logout")
	assert.True(t, claims["sid"] != nil || claims["sub"] != nil, "sid or sub")
	assert.NotContains(t, claims, "nonce")
	return claims
}

// DeliveryCounts scrapes latchkey_backchannel_logout_deliveries_total from the metrics
// endpoint at metricsURL (scheme://host:port) and returns it by result.
func DeliveryCounts(t testing.TB, metricsURL string) map[string]float64 {
	t.Helper()
	out, err := ScrapeDeliveryCounts(t.Context(), metricsURL)
	require.NoError(t, err)
	return out
}

// ScrapeDeliveryCounts is DeliveryCounts for a caller that cannot fail a test (a condition of
// require.Eventually).
func ScrapeDeliveryCounts(ctx context.Context, metricsURL string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, metricsURL+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close() //nolint:errcheck // read fully below
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	const prefix = `latchkey_backchannel_logout_deliveries_total{result="`
	out := map[string]float64{}
	for line := range strings.Lines(string(body)) {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), prefix)
		if !ok {
			continue
		}
		result, value, ok := strings.Cut(rest, `"} `)
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", line, err)
		}
		out[result] = v
	}
	if len(out) == 0 {
		return nil, errors.New("the metrics have no latchkey_backchannel_logout_deliveries_total")
	}
	return out, nil
}
