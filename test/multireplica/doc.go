// Package multireplica runs three latchkey processes against one control plane and one Redis,
// and checks that any replica answers any request. Back-channel logout (backchannel_test.go):
// one logout token per client whichever replica ends the session (or all of them at once), a
// delivery first tried at a replica that then stops is delivered by another, and one that
// always fails ends in a Warning Event on the OAuthClient.
package multireplica
