package main

import (
	"flag"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/server/keys"
	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/token"
)

func TestWatchNamespacesFlag(t *testing.T) {
	for _, tc := range []struct {
		name        string
		args        []string
		wantErr     string
		wantWatched []string
	}{
		{name: "without the flag every namespace is watched", args: nil},
		{name: "the server's namespace is watched besides the listed ones",
			args: []string{"--namespace=latchkey", "--watch-namespaces=team-a, team-b,team-a"}, wantWatched: []string{"team-a", "team-b", "latchkey"}},
		{name: "the server's namespace is listed once",
			args: []string{"--namespace=latchkey", "--watch-namespaces=latchkey,team-a"}, wantWatched: []string{"latchkey", "team-a"}},
		{name: "a name that is not a namespace is refused",
			args: []string{"--watch-namespaces=Team_A"}, wantErr: `"Team_A" is not a namespace name`},
		{name: "registration into an unwatched namespace is refused",
			args:    []string{"--namespace=latchkey", "--watch-namespaces=team-a", "--registration-open", "--registration-namespace=team-b"},
			wantErr: `--registration-namespace "team-b" is not watched`},
		{name: "registration into any namespace is accepted when every namespace is watched",
			args: []string{"--namespace=latchkey", "--registration-open", "--registration-namespace=team-b"}},
		{name: "registration into a watched namespace is accepted",
			args:        []string{"--namespace=latchkey", "--watch-namespaces=team-a", "--registration-open", "--registration-namespace=team-a"},
			wantWatched: []string{"team-a", "latchkey"}},
		{name: "registration into the server's namespace is accepted",
			args:        []string{"--namespace=latchkey", "--watch-namespaces=team-a", "--registration-open"},
			wantWatched: []string{"team-a", "latchkey"}},
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
			assert.Equal(t, tc.wantWatched, o.watchedNamespaces())
			opts := o.cacheOptions()
			assert.NotNil(t, opts.DefaultTransform, "every informer trims what it caches")
			defaults := opts.DefaultNamespaces
			assert.Len(t, defaults, len(tc.wantWatched))
			for _, ns := range tc.wantWatched {
				assert.Contains(t, defaults, ns)
			}
		})
	}
}

func TestAccessTokenCacheSizeFlag(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		wantErr string
		want    int // handler.Config.AccessTokenCacheSize
	}{
		{name: "without the flag the handler gets the default size", want: token.DefaultCacheSize},
		{name: "a size is passed on", args: []string{"--access-token-cache-size=500"}, want: 500},
		{name: "0 turns the cache off", args: []string{"--access-token-cache-size=0"}, want: -1},
		{name: "a negative size is refused", args: []string{"--access-token-cache-size=-5"}, wantErr: "want 0 (off) or at least 2"},
		{name: "a size of one is refused", args: []string{"--access-token-cache-size=1"}, wantErr: "want 0 (off) or at least 2"},
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
			cfg, err := o.handlerConfig(registry.New(), keys.NewKeyring(), nil)
			require.NoError(t, err)
			assert.Equal(t, tc.want, cfg.AccessTokenCacheSize)
		})
	}
}

// bindAndParse binds flags with bind on a fresh serve flag set and parses args; a parse error
// fails the test.
func bindAndParse(t *testing.T, bind func(*flag.FlagSet), args ...string) {
	t.Helper()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	bind(fs)
	require.NoError(t, fs.Parse(args))
}
