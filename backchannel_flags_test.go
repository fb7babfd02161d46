package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/server/backchannel"
	"github.com/latchkey-dev/latchkey/server/keys"
	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/store/memory"
)

func TestBackchannelLogoutFlags(t *testing.T) {
	for _, tc := range []struct {
		name         string
		args         []string
		wantErr      string
		wantTimeout  time.Duration
		wantAttempts int
	}{
		{name: "without the flags the defaults apply", wantTimeout: backchannel.DefaultTimeout, wantAttempts: backchannel.DefaultMaxAttempts},
		{name: "a timeout and attempts are passed on", args: []string{"--backchannel-logout-timeout=2s", "--backchannel-logout-attempts=3"}, wantTimeout: 2 * time.Second, wantAttempts: 3},
		{name: "a zero timeout is refused", args: []string{"--backchannel-logout-timeout=0s"}, wantErr: "want more than 0s and at most 1m"},
		{name: "a timeout over a minute is refused", args: []string{"--backchannel-logout-timeout=2m"}, wantErr: "want more than 0s and at most 1m"},
		{name: "zero attempts are refused", args: []string{"--backchannel-logout-attempts=0"}, wantErr: "want 1 to 10"},
		{name: "more than ten attempts are refused", args: []string{"--backchannel-logout-attempts=11"}, wantErr: "want 1 to 10"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var o serveOptions
			bindAndParse(t, o.bind, tc.args...)
			err := o.validate()
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.wantTimeout, o.backchannelTimeout)
			assert.Equal(t, tc.wantAttempts, o.backchannelAttempts)
			cfg, err := o.handlerConfig(registry.New(), keys.NewKeyring(), memory.New())
			require.NoError(t, err)
			assert.True(t, cfg.BackchannelLogout, "discovery advertises back-channel logout")
			_, err = newBackchannel(&o, cfg, registry.New(), keys.NewKeyring(), nil)
			require.NoError(t, err, "every accepted setting makes a sender whose retries fit the queue lease")
		})
	}
}
