package manifests

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/internal/harness"
	"github.com/latchkey-dev/latchkey/server/registry"
)

// rotatingClientYAML is an External client with the secret rotation the test gives ("" for
// none), and its Secret.
func rotatingClientYAML(rotation, secret string) string {
	return fmt.Sprintf(`apiVersion: oauth.latchkey.dev/v1alpha1
kind: OAuthClient
metadata: {name: billing}
spec:
  clientID: billing-service
  grantTypes: [client_credentials]
  secretPolicy: External
  secretRef: {name: billing-oauth, key: client-secret}
%s---
apiVersion: v1
kind: Secret
metadata: {name: billing-oauth}
stringData: {client-secret: %s}
`, rotation, secret)
}

func TestAChangedSecretKeepsThePreviousOneWorkingForTheGracePeriodAcrossLoads(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	const grace = "  secretRotation: {gracePeriod: 10m}\n"
	tests := []struct {
		name string
		// before and after are the rotation settings of the two loads; removed leaves the
		// client out of a load in between.
		before, after string
		removed       bool
		want          time.Duration // how long after the second load the old secret works; 0: not at all
	}{
		{name: "with a grace period the old secret works until it ends", before: grace, after: grace, want: 10 * time.Minute},
		{name: "with a grace period of 0 the old secret stops at once", before: "  secretRotation: {gracePeriod: 0s}\n", after: "  secretRotation: {gracePeriod: 0s}\n"},
		{name: "without secretRotation the old secret stops at once"},
		{name: "turned on with the change, there is no previous secret to keep", after: grace},
		{name: "a client removed and added again starts over", before: grace, after: grace, removed: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := harness.NewClock(t0)
			dir := t.TempDir()
			reg := registry.New()
			l, err := New(dir, reg, &warnings{})
			require.NoError(t, err)
			l.now = clock.Now
			write(t, dir, "billing.yaml", rotatingClientYAML(tc.before, "old-secret"))
			require.NoError(t, l.Load(t.Context()))
			if tc.removed {
				clock.Advance(time.Minute)
				require.NoError(t, os.Remove(filepath.Join(dir, "billing.yaml")))
				require.NoError(t, l.Load(t.Context()))
			}

			clock.Advance(time.Minute)
			changed := clock.Now()
			write(t, dir, "billing.yaml", rotatingClientYAML(tc.after, "new-secret"))
			require.NoError(t, l.Load(t.Context()))
			c, ok := reg.Snapshot().Client("billing-service")
			require.True(t, ok)
			assert.Equal(t, registry.CurrentSecret, c.MatchSecret("new-secret", changed))
			if tc.want == 0 {
				assert.Equal(t, registry.NoSecret, c.MatchSecret("old-secret", changed))
				return
			}
			assert.Equal(t, registry.PreviousSecret, c.MatchSecret("old-secret", changed))
			assert.Equal(t, registry.PreviousSecret, c.MatchSecret("old-secret", changed.Add(tc.want-time.Second)))
			assert.Equal(t, registry.NoSecret, c.MatchSecret("old-secret", changed.Add(tc.want)), "not after the grace period")

			// Reloads inside the window keep its end; a reload after it drops the previous.
			clock.Advance(5 * time.Minute)
			require.NoError(t, l.Load(t.Context()))
			c, _ = reg.Snapshot().Client("billing-service")
			assert.Equal(t, changed.Add(tc.want), c.PreviousSecretUntil)
			clock.Advance(tc.want)
			require.NoError(t, l.Load(t.Context()))
			c, _ = reg.Snapshot().Client("billing-service")
			assert.True(t, c.PreviousSecretUntil.IsZero(), "the previous secret is forgotten")
			assert.Equal(t, registry.NoSecret, c.MatchSecret("old-secret", clock.Now()))
		})
	}
}
