// Package keys owns the signing keys: the persisted key set (the JSON kept in a Secret or a file),
// its generation, and the Keyring the server signs with and publishes as JWKS.
//
// A Set holds one or more keys per algorithm (RS256, ES256, EdDSA). A key signs from its
// ActiveFrom time on and is published in the JWKS until its RetireAt time (zero: never), so a key
// can be published before it signs and kept after it stops (rotation, a later issue, only edits
// these times). The Keyring compiles a Set into go-jose signers once per load; the token path only
// picks a signer and signs bytes.
//
// Decisions:
//   - Publication before signing: the keys of a brand-new set sign at once (ActiveFrom is
//     ClockSkew in the past, so a replica whose clock lags can sign too); nobody can have cached a
//     JWKS without them. A key added to a set that already exists (Ensure adding an algorithm)
//     signs only PublishLead (JWKSMaxAge + ClockSkew) after its creation, so every verifier that
//     cached the JWKS (at most JWKSMaxAge, the max-age the HTTP handler must not exceed) has
//     refetched it. Until then that algorithm has no signer (ErrNoKey).
//   - Retirement: a key whose RetireAt passed is gone from the JWKS and PublicKeys. The published
//     view is built at Load and rebuilt on the first read after the next RetireAt, so reads stay
//     lock-free and no timer is needed.
//   - Early retirement (RetireNow, for a key suspected leaked): the key gets RetireAt = now and
//     RetiredEarly, which every replica honours on load whatever its clock, so the key leaves the
//     JWKS and stops signing at once and its tokens stop verifying. A new key of its algorithm
//     signs at once, without a publish lead: cutting trust now beats verifiers' caches. The set
//     keeps the retired key, for the record, until every token it could have signed has expired.
//   - Keyring.Set returns the set last loaded, so the leader can write it back when the key
//     Secret is deleted instead of generating keys that would invalidate every issued token.
package keys
