package main

import (
	"flag"
	"fmt"
	"time"

	"github.com/latchkey-dev/latchkey/server/oauth2/handler"
	"github.com/latchkey-dev/latchkey/server/upstream"
)

// upstreamOptions are the --upstream-* flags (sign-in through identity providers;
// docs/identity-providers.md).
type upstreamOptions struct {
	recheckInterval time.Duration
	tokenKeyFile    string
}

func (o *upstreamOptions) bind(fs *flag.FlagSet) {
	fs.DurationVar(&o.recheckInterval, "upstream-recheck-interval", upstream.DefaultRecheckInterval, "how often, at most, a refresh of an identity provider's user asks the provider whether it still accepts them (shared by replicas through the store)")
	fs.StringVar(&o.tokenKeyFile, "upstream-token-key-file", "", "file with a secret (at least 32 bytes) shared by every replica, from which the key that encrypts the identity providers' tokens kept for refresh re-checks is derived; empty: a random key per process (a restarted or other replica cannot re-check, and the user signs in again)")
}

func (o *upstreamOptions) validate() error {
	if o.recheckInterval < time.Second {
		return fmt.Errorf("--upstream-recheck-interval %s: want at least 1s", o.recheckInterval)
	}
	return nil
}

// apply sets the handler's upstream configuration, reading the token key secret.
func (o *upstreamOptions) apply(cfg *handler.Config) error {
	cfg.Upstream.RecheckInterval = o.recheckInterval
	if o.tokenKeyFile == "" {
		return nil // the handler's random key of this process
	}
	secret, err := readSharedSecret("upstream-token-key-file", o.tokenKeyFile)
	if err != nil {
		return err
	}
	sealer, err := upstream.NewSealer(secret)
	if err != nil {
		return fmt.Errorf("--upstream-token-key-file: %w", err)
	}
	cfg.Upstream.TokenSealer = sealer
	return nil
}
