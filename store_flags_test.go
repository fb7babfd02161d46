package main

import (
	"testing"

	"github.com/stretchr/testify/require"

	redisstore "github.com/latchkey-dev/latchkey/server/store/redis"
)

func TestRedisKnownRecordsFlag(t *testing.T) {
	tests := []struct {
		name    string
		env     string
		args    []string
		want    int
		invalid bool
	}{
		{name: "the default is the store's default", want: redisstore.DefaultKnownRecords},
		{name: "the flag sets it", args: []string{"--redis-known-records", "100"}, want: 100},
		{name: "0 turns it off", args: []string{"--redis-known-records", "0"}, want: 0},
		{name: "the environment sets the default", env: "7", want: 7},
		{name: "a negative count is refused", args: []string{"--redis-known-records", "-1"}, invalid: true},
		{name: "an environment value that is not a number is refused", env: "many", invalid: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.env != "" {
				t.Setenv("LATCHKEY_REDIS_KNOWN_RECORDS", tt.env)
			}
			var o redisOptions
			bindAndParse(t, o.bind, append([]string{"--redis-address", "localhost:6379"}, tt.args...)...)
			if tt.invalid {
				require.Error(t, o.validate())
				return
			}
			require.NoError(t, o.validate())
			require.Equal(t, tt.want, o.knownRecords)
		})
	}
}
