package main

import (
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/latchkey-dev/latchkey/server/dpop"
	"github.com/latchkey-dev/latchkey/server/oauth2/handler"
)

// dpopOptions are the --dpop-* flags (RFC 9449 proof-of-possession; docs/dpop.md).
type dpopOptions struct {
	proofWindow     time.Duration
	nonceSecretFile string
	noncePeriod     time.Duration
	requireNonce    bool
}

func (o *dpopOptions) bind(fs *flag.FlagSet) {
	fs.DurationVar(&o.proofWindow, "dpop-proof-window", dpop.DefaultWindow, "how far a DPoP proof's iat may be from the server's clock, either way (its jti is remembered twice as long)")
	fs.StringVar(&o.nonceSecretFile, "dpop-nonce-secret-file", "", "file with a secret (at least 32 bytes) shared by every replica, from which the DPoP nonce key is derived; empty issues no nonces")
	fs.DurationVar(&o.noncePeriod, "dpop-nonce-period", dpop.DefaultNoncePeriod, "how often the DPoP nonce changes (the previous one stays valid for one more period)")
	fs.BoolVar(&o.requireNonce, "dpop-require-nonce", false, "refuse DPoP proofs at the token endpoint without a current server nonce (use_dpop_nonce); needs --dpop-nonce-secret-file")
}

func (o *dpopOptions) validate() error {
	if o.proofWindow <= 0 || o.proofWindow > 10*time.Minute {
		return fmt.Errorf("--dpop-proof-window %s: want more than 0s and at most 10m", o.proofWindow)
	}
	if o.noncePeriod < time.Second {
		return fmt.Errorf("--dpop-nonce-period %s: want at least 1s", o.noncePeriod)
	}
	if o.requireNonce && o.nonceSecretFile == "" {
		return errors.New("--dpop-require-nonce needs --dpop-nonce-secret-file")
	}
	return nil
}

// apply sets the handler's DPoP configuration, reading the nonce secret.
func (o *dpopOptions) apply(cfg *handler.Config) error {
	cfg.DPoP = handler.DPoPConfig{ProofWindow: o.proofWindow, NoncePeriod: o.noncePeriod, RequireNonce: o.requireNonce}
	if o.nonceSecretFile == "" {
		return nil
	}
	secret, err := readSharedSecret("dpop-nonce-secret-file", o.nonceSecretFile)
	if err != nil {
		return err
	}
	key, err := dpop.NonceKey(secret)
	if err != nil {
		return fmt.Errorf("--dpop-nonce-secret-file: %w", err)
	}
	cfg.DPoP.NonceKey = key
	return nil
}
