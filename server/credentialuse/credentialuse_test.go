package credentialuse

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/internal/harness"
	"github.com/latchkey-dev/latchkey/server/keys"
	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/oauth2/handler"
	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/store"
	"github.com/latchkey-dev/latchkey/server/store/memory"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func client(id string) *registry.Client { return &registry.Client{ID: id} }

// take returns everything the store holds, by client ID and credential.
func take(t *testing.T, st store.CredentialUses) map[string]time.Time {
	t.Helper()
	uses, err := st.TakeCredentialUses(t.Context(), 1000)
	require.NoError(t, err)
	out := map[string]time.Time{}
	for _, u := range uses {
		k := u.ClientID + "/current"
		if u.Previous {
			k = u.ClientID + "/previous"
		}
		out[k] = u.At
	}
	return out
}

func TestRecorderFlushesTheFirstUseOfEachMinute(t *testing.T) {
	type use struct {
		after    time.Duration // since t0
		id       string
		previous bool
	}
	tests := []struct {
		name string
		uses []use
		want map[string]time.Time
	}{
		{
			name: "the first use of a minute is recorded, later ones of the same minute are not",
			uses: []use{{0, "a", false}, {10 * time.Second, "a", false}, {59 * time.Second, "a", false}},
			want: map[string]time.Time{"a/current": t0},
		},
		{
			name: "a use in the next minute replaces the record",
			uses: []use{{0, "a", false}, {61 * time.Second, "a", false}, {70 * time.Second, "a", false}},
			want: map[string]time.Time{"a/current": t0.Add(61 * time.Second)},
		},
		{
			name: "the current and the previous credential and each client are recorded apart",
			uses: []use{{0, "a", false}, {time.Second, "a", true}, {2 * time.Second, "b", false}, {3 * time.Second, "a", true}},
			want: map[string]time.Time{"a/current": t0, "a/previous": t0.Add(time.Second), "b/current": t0.Add(2 * time.Second)},
		},
		{
			name: "nothing used, nothing flushed",
			want: map[string]time.Time{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := harness.NewClock(t0)
			st := memory.New(memory.WithClock(clock.Now))
			r := New(st, Options{Now: clock.Now})
			for _, u := range tc.uses {
				clock.Set(t0.Add(u.after))
				cred := oauth2.CurrentCredential
				if u.previous {
					cred = oauth2.PreviousCredential
				}
				r.CredentialUsed(client(u.id), cred)
			}
			require.NoError(t, r.Flush(t.Context()))
			assert.Equal(t, tc.want, take(t, st))
		})
	}
}

func TestAFlushSendsOnlyWhatIsNew(t *testing.T) {
	clock := harness.NewClock(t0)
	st := memory.New(memory.WithClock(clock.Now))
	r := New(st, Options{Now: clock.Now})
	r.CredentialUsed(client("a"), oauth2.CurrentCredential)
	require.NoError(t, r.Flush(t.Context()))
	require.Len(t, take(t, st), 1)

	clock.Advance(10 * time.Second)
	r.CredentialUsed(client("a"), oauth2.CurrentCredential) // same minute: already recorded
	require.NoError(t, r.Flush(t.Context()))
	assert.Empty(t, take(t, st))

	clock.Advance(time.Minute)
	r.CredentialUsed(client("a"), oauth2.CurrentCredential)
	require.NoError(t, r.Flush(t.Context()))
	assert.Equal(t, map[string]time.Time{"a/current": clock.Now()}, take(t, st))
}

// failingSink fails while fail is set, then notes into st.
type failingSink struct {
	fail bool
	st   store.CredentialUses
}

func (f *failingSink) NoteCredentialUses(ctx context.Context, uses []store.CredentialUse) error {
	if f.fail {
		return store.ErrUnavailable
	}
	return f.st.NoteCredentialUses(ctx, uses)
}

func TestAFailedFlushKeepsItsRecordsForTheNext(t *testing.T) {
	clock := harness.NewClock(t0)
	st := memory.New(memory.WithClock(clock.Now))
	sink := &failingSink{fail: true, st: st}
	r := New(sink, Options{Now: clock.Now})
	r.CredentialUsed(client("a"), oauth2.CurrentCredential)
	r.CredentialUsed(client("b"), oauth2.PreviousCredential)
	require.ErrorIs(t, r.Flush(t.Context()), store.ErrUnavailable)

	clock.Advance(2 * time.Minute)
	r.CredentialUsed(client("a"), oauth2.CurrentCredential) // newer: replaces the failed one
	sink.fail = false
	require.NoError(t, r.Flush(t.Context()))
	assert.Equal(t, map[string]time.Time{"a/current": clock.Now(), "b/previous": t0}, take(t, st))
}

func TestTheRecorderHoldsAtMostMaxClientsRecords(t *testing.T) {
	clock := harness.NewClock(t0)
	st := memory.New(memory.WithClock(clock.Now))
	r := New(st, Options{Now: clock.Now, MaxClients: 2})
	for _, id := range []string{"a", "b", "c", "d"} {
		r.CredentialUsed(client(id), oauth2.CurrentCredential)
	}
	assert.Equal(t, int64(2), r.Dropped(), "the uses of clients past the bound are dropped and counted")
	require.NoError(t, r.Flush(t.Context()))
	assert.Equal(t, map[string]time.Time{"a/current": t0, "b/current": t0}, take(t, st))

	// In a later minute the flushed records of past minutes make room.
	clock.Advance(time.Minute)
	require.NoError(t, r.Flush(t.Context()))
	r.CredentialUsed(client("c"), oauth2.CurrentCredential)
	require.NoError(t, r.Flush(t.Context()))
	assert.Equal(t, map[string]time.Time{"c/current": clock.Now()}, take(t, st))
}

func TestStartFlushes(t *testing.T) {
	tests := []struct {
		name     string
		interval time.Duration
		stop     bool // stop Start right after the use
	}{
		{name: "every interval", interval: 20 * time.Millisecond},
		{name: "once more when it stops", interval: time.Hour, stop: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := memory.New()
			r := New(st, Options{Interval: tc.interval})
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- r.Start(ctx) }()
			r.CredentialUsed(client("a"), oauth2.PreviousCredential)
			if tc.stop {
				cancel()
				require.NoError(t, <-done)
			}
			require.Eventually(t, func() bool {
				_, ok := take(t, st)["a/previous"]
				return ok
			}, 5*time.Second, 10*time.Millisecond)
		})
	}
}

// TestATokenRequestWithThePreviousSecretIsRecordedAsSuch runs real token requests through the
// handler, with the recorder as its CredentialUses.
func TestATokenRequestWithThePreviousSecretIsRecordedAsSuch(t *testing.T) {
	set, err := keys.Generate([]string{keys.ES256}, time.Now().Add(-time.Minute))
	require.NoError(t, err)
	kr := keys.NewKeyring()
	require.NoError(t, kr.Load(set))
	reg := registry.New()
	reg.PutClient(registry.Client{
		Source: "apps/svc", Namespace: "apps", ID: "svc", Type: registry.Confidential,
		GrantTypes: []string{"client_credentials"}, SigningAlgorithm: keys.ES256,
		SecretHash: registry.HashSecret([]byte("new-secret")), HasSecret: true,
		PreviousSecretHash: registry.HashSecret([]byte("old-secret")), PreviousSecretUntil: time.Now().Add(time.Hour),
	})
	st := memory.New()
	rec := New(st, Options{})
	h, err := handler.New(handler.Config{Issuer: "https://latchkey.example", Registry: reg, Keys: kr, Store: st,
		DefaultAlgorithm: keys.ES256, CredentialUses: rec})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	post := func(secret string) int {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+oauth2.TokenPath,
			strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("svc", secret)
		res, err := srv.Client().Do(req)
		require.NoError(t, err)
		_ = res.Body.Close()
		return res.StatusCode
	}
	require.Equal(t, http.StatusOK, post("old-secret"))
	require.NoError(t, rec.Flush(t.Context()))
	got := take(t, st)
	assert.Contains(t, got, "svc/previous")
	assert.NotContains(t, got, "svc/current")

	require.Equal(t, http.StatusOK, post("new-secret"))
	require.Equal(t, http.StatusUnauthorized, post("wrong-secret"))
	require.NoError(t, rec.Flush(t.Context()))
	got = take(t, st)
	assert.Contains(t, got, "svc/current")
	assert.NotContains(t, got, "svc/previous", "recorded once a minute: flushed before")
}
