package memory

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/internal/harness"
	"github.com/latchkey-dev/latchkey/server/store"
)

func TestCredentialUsesLiveALeaseAfterTheLastNote(t *testing.T) {
	tests := []struct {
		name      string
		noteAgain time.Duration // after the first note; 0: none
		wait      time.Duration // after the first note
		want      int
	}{
		{name: "uses nobody took are dropped a lease after the last note", wait: store.CredentialUseLease, want: 0},
		{name: "uses are kept within the lease", wait: store.CredentialUseLease - time.Second, want: 1},
		{name: "a later note renews the lease of every use", noteAgain: 30 * time.Minute, wait: store.CredentialUseLease + time.Minute, want: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := harness.NewClock(t0)
			s := New(WithClock(clock.Now))
			require.NoError(t, s.NoteCredentialUses(t.Context(), []store.CredentialUse{{ClientID: "a", At: clock.Now()}}))
			if tc.noteAgain > 0 {
				clock.Advance(tc.noteAgain)
				require.NoError(t, s.NoteCredentialUses(t.Context(), []store.CredentialUse{{ClientID: "b", At: clock.Now()}}))
				clock.Advance(tc.wait - tc.noteAgain)
			} else {
				clock.Advance(tc.wait)
			}
			got, err := s.TakeCredentialUses(t.Context(), 10)
			require.NoError(t, err)
			require.Len(t, got, tc.want)
		})
	}
}
