// Package credentialuse records, on every replica, when each client last authenticated with its
// current credential and with its previous client secret (inside a rotation's grace period),
// and flushes those records into the leased store, where the leader takes them to write the
// OAuthClients' status.credentials (controllers/credential_status.go).
//
// Recorder implements oauth2.CredentialUses: the token endpoint calls it on every successful
// client authentication, so it only takes a mutex and looks at a map. It keeps per client ID
// and credential the first use of the current minute (the status is to the minute), so a busy
// client costs one record a minute, not one a request. Start (a controller-runtime Runnable on
// every replica, or run by hand) flushes the new records every Interval with
// store.CredentialUses.NoteCredentialUses, and once more when it stops.
//
// Decisions:
//   - Bounded: at most MaxClients records are held. When full, a use of a client it holds no
//     record of is dropped (counted by Dropped); it is recorded again in a later minute, after
//     a flush has made room.
//   - A flush that fails keeps its records for the next one (a newer use replaces an older).
//   - Only client IDs and times are recorded: never a secret or a token.
//
// This package imports server/oauth2, server/registry and server/store; like all of server/, it
// never imports controllers/, controller-runtime or api/.
package credentialuse
