package main

import (
	"fmt"
	"os"
)

// minSharedSecret is the least a secret file shared by every replica may hold: keys are derived
// from it, so it must carry at least 256 bits.
const minSharedSecret = 32

// readSharedSecret reads the secret file named by the flag flagName (the DPoP nonce secret, the
// upstream token key): errors name the flag, and a secret under minSharedSecret bytes is refused.
func readSharedSecret(flagName, path string) ([]byte, error) {
	secret, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--%s: %w", flagName, err)
	}
	if len(secret) < minSharedSecret {
		return nil, fmt.Errorf("--%s: the secret must be at least %d bytes", flagName, minSharedSecret)
	}
	return secret, nil
}
