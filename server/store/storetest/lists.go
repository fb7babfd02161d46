package storetest

import (
	"fmt"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/server/store"
)

// entryIDs returns the IDs of a list's entries, in the order ListEntries gave them.
func (e *env) entryIDs(kind string, h store.Hash) []string {
	e.t.Helper()
	entries, err := e.s.ListEntries(e.ctx, kind, h)
	require.NoError(e.t, err)
	ids := make([]string, 0, len(entries))
	for _, en := range entries {
		ids = append(ids, en.ID)
	}
	return ids
}

func listTests() []test {
	return []test{
		{
			name: "entries that were put are listed by ID with their values and leases",
			run: func(e *env) {
				before := e.now()
				require.NoError(e.t, e.s.PutEntry(e.ctx, "sessions", hash("alice"), "b", []byte(`{"v":2}`), long))
				require.NoError(e.t, e.s.PutEntry(e.ctx, "sessions", hash("alice"), "a", []byte(`{"v":1}`), long))
				got, err := e.s.ListEntries(e.ctx, "sessions", hash("alice"))
				require.NoError(e.t, err)
				require.Len(e.t, got, 2)
				require.Equal(e.t, "a", got[0].ID)
				require.Equal(e.t, `{"v":1}`, string(got[0].Value))
				require.Equal(e.t, "b", got[1].ID)
				require.WithinDuration(e.t, before.Add(long), got[0].ExpiresAt, 5*time.Second)
			},
		},
		{
			name: "an unknown list is empty, and lists of other kinds or hashes are apart",
			run: func(e *env) {
				require.Empty(e.t, e.entryIDs("sessions", hash("nobody")))
				require.NoError(e.t, e.s.PutEntry(e.ctx, "sessions", hash("alice"), "a", []byte("v"), long))
				require.Empty(e.t, e.entryIDs("consents", hash("alice")))
				require.Empty(e.t, e.entryIDs("sessions", hash("bob")))
			},
		},
		{
			name: "putting an entry again replaces its value and its lease",
			run: func(e *env) {
				require.NoError(e.t, e.s.PutEntry(e.ctx, "sessions", hash("alice"), "a", []byte("v1"), lease))
				require.NoError(e.t, e.s.PutEntry(e.ctx, "sessions", hash("alice"), "a", []byte("v2"), long))
				e.wait(pastLease)
				got, err := e.s.ListEntries(e.ctx, "sessions", hash("alice"))
				require.NoError(e.t, err)
				require.Len(e.t, got, 1)
				require.Equal(e.t, "v2", string(got[0].Value))
			},
		},
		{
			name: "an entry is gone once its lease ends while the others stay",
			run: func(e *env) {
				require.NoError(e.t, e.s.PutEntry(e.ctx, "sessions", hash("alice"), "short", []byte("v"), lease))
				require.NoError(e.t, e.s.PutEntry(e.ctx, "sessions", hash("alice"), "long", []byte("v"), long))
				e.wait(pastLease)
				require.Equal(e.t, []string{"long"}, e.entryIDs("sessions", hash("alice")))
			},
		},
		{
			name: "a deleted entry is not listed and deleting a missing one is no error",
			run: func(e *env) {
				require.NoError(e.t, e.s.PutEntry(e.ctx, "sessions", hash("alice"), "a", []byte("v"), long))
				require.NoError(e.t, e.s.PutEntry(e.ctx, "sessions", hash("alice"), "b", []byte("v"), long))
				require.NoError(e.t, e.s.DeleteEntry(e.ctx, "sessions", hash("alice"), "a"))
				require.NoError(e.t, e.s.DeleteEntry(e.ctx, "sessions", hash("alice"), "a"))
				require.NoError(e.t, e.s.DeleteEntry(e.ctx, "sessions", hash("nobody"), "a"))
				require.Equal(e.t, []string{"b"}, e.entryIDs("sessions", hash("alice")))
			},
		},
		{
			name: "a put with no lease deletes the entry",
			run: func(e *env) {
				require.NoError(e.t, e.s.PutEntry(e.ctx, "sessions", hash("alice"), "a", []byte("v"), long))
				require.NoError(e.t, e.s.PutEntry(e.ctx, "sessions", hash("alice"), "a", []byte("v"), 0))
				require.Empty(e.t, e.entryIDs("sessions", hash("alice")))
			},
		},
		{
			name: "a full list drops the entry that expires first to take a new one",
			run: func(e *env) {
				require.NoError(e.t, e.s.PutEntry(e.ctx, "sessions", hash("alice"), "soonest", []byte("v"), long-time.Minute))
				for i := range store.MaxListEntries - 1 {
					require.NoError(e.t, e.s.PutEntry(e.ctx, "sessions", hash("alice"), fmt.Sprintf("e%03d", i), []byte("v"), long))
				}
				require.Len(e.t, e.entryIDs("sessions", hash("alice")), store.MaxListEntries)
				require.NoError(e.t, e.s.PutEntry(e.ctx, "sessions", hash("alice"), "newest", []byte("v"), long))
				ids := e.entryIDs("sessions", hash("alice"))
				require.Len(e.t, ids, store.MaxListEntries)
				require.Contains(e.t, ids, "newest")
				require.NotContains(e.t, ids, "soonest")
			},
		},
		{
			name: "entries keep values with spaces and binary bytes intact",
			run: func(e *env) {
				v := []byte("a b\x00\xff c")
				require.NoError(e.t, e.s.PutEntry(e.ctx, "sessions", hash("alice"), "id with space", v, long))
				got, err := e.s.ListEntries(e.ctx, "sessions", hash("alice"))
				require.NoError(e.t, err)
				require.Len(e.t, got, 1)
				require.Equal(e.t, "id with space", got[0].ID)
				require.Equal(e.t, v, got[0].Value)
			},
		},
	}
}
