// Package multireplica runs three latchkey processes against one control plane and one Redis,
// and checks that any replica answers any request.
package multireplica
