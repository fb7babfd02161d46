// Package keys owns the signing keys: the persisted key set (the JSON kept in a Secret or a file),
// its generation, and the Keyring the server signs with and publishes as JWKS.
//
// A Set holds one or more keys per algorithm (RS256, ES256, EdDSA). A key signs from its
// ActiveFrom time on and is published in the JWKS until its RetireAt time (zero: never), so a key
// can be published before it signs and kept after it stops (rotation, a later issue, only edits
// these times). The Keyring compiles a Set into go-jose signers once per load; the token path only
// picks a signer and signs bytes.
//
// This package must not import controller-runtime, client-go or api/.
package keys
