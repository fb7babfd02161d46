package store

import (
	"context"
	"time"
)

// DeviceStatus is where a device authorization (RFC 8628) stands.
type DeviceStatus int

// States of a device authorization.
const (
	// DevicePending waits for the user's decision.
	DevicePending DeviceStatus = iota
	// DeviceApproved: the user approved; the next poll takes it.
	DeviceApproved
	// DeviceDenied: the user denied; every poll answers so until the lease ends.
	DeviceDenied
)

// DeviceGrant is a device authorization's record, stored under the hash of its device code
// and found by the hash of its user code.
type DeviceGrant struct {
	ClientID string
	Scopes   []string
	// UserCode is the hash of the normalised user code.
	UserCode Hash
	// Interval is the minimum time between two polls; it grows with every slow_down.
	Interval time.Duration
	// ExpiresAt is when the lease ends (expired_token after it).
	ExpiresAt time.Time
	Status    DeviceStatus
	// Subject and AuthTime are set by an approval: who approved, when they signed in.
	Subject  string
	AuthTime time.Time
}

// DevicePoll is what a poll of a device code found.
type DevicePoll struct {
	Grant DeviceGrant
	// SlowDown: the poll came sooner than the interval after the previous one (a pending
	// grant only); the interval grew.
	SlowDown bool
}

// DeviceGrants holds device authorizations (RFC 8628), so that the replica that issued a device
// code, the one whose verification page the user approves on and the one the client polls
// need not be the same.
type DeviceGrants interface {
	// PutDeviceGrant stores d (Status pending) under the device code hash h, and indexes it by
	// d.UserCode, until d.ExpiresAt. A device code or user code hash that holds a live grant is
	// ErrConflict and nothing is stored; an ExpiresAt in the past stores nothing.
	PutDeviceGrant(ctx context.Context, h Hash, d DeviceGrant) error
	// DeviceGrantByUserCode returns the device code hash and the record of a live, pending
	// grant by its user code hash; ErrNotFound otherwise (unknown, expired or decided).
	DeviceGrantByUserCode(ctx context.Context, uh Hash) (Hash, DeviceGrant, error)
	// DecideDeviceGrant approves (with the subject and when they signed in) or denies the
	// grant of the user code hash uh, in one atomic step, and drops the user code: a grant that
	// is no longer pending (or unknown, or expired) is ErrNotFound and nothing changes.
	DecideDeviceGrant(ctx context.Context, uh Hash, approve bool, subject string, authTime time.Time) (DeviceGrant, error)
	// PollDeviceGrant is one poll of the device code hash h by clientID, in one atomic step. An
	// unknown or expired code, or another client's, is ErrNotFound and nothing changes. A
	// pending grant records the poll; one polled sooner than its interval after the previous
	// poll also grows the interval by slowDown (SlowDown). An approved grant is taken: this
	// poll returns it, every later one ErrAlreadyUsed. A denied one is returned as it is.
	PollDeviceGrant(ctx context.Context, h Hash, clientID string, slowDown time.Duration) (DevicePoll, error)
}
