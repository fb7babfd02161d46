package grants

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/store"
)

// Descriptions of the device_code grant's invalid_grant and expired_token answers.
const (
	badDeviceCode     = "The device code is malformed."
	usedDeviceCode    = "The device code was already used."
	expiredDeviceCode = "The device code is unknown or has expired; start a new device authorization."
)

// devicePoller polls device grants; store.Store implements it.
type devicePoller interface {
	PollDeviceGrant(ctx context.Context, h store.Hash, clientID string, slowDown time.Duration) (store.DevicePoll, error)
}

// DeviceCode is RFC 8628 3.4/3.5: the client polls with the device code from the device
// authorization endpoint until the user approved or denied it on the verification page. Each
// poll is one atomic store step (store.DeviceGrants.PollDeviceGrant), so any replica answers
// it: authorization_pending while the user has not decided, slow_down (and 5 s more
// interval) for a poll sooner than the interval, access_denied after a denial, expired_token
// once the code's lease ended; an approval is taken by one poll, which gets the user's tokens
// like a code exchange (access token, refresh token when the client lists refresh_token, ID
// token with openid); a second redemption is invalid_grant.
type DeviceCode struct {
	grants devicePoller
	tokens *TokenSet
}

var _ Grant = DeviceCode{}

// NewDeviceCode returns the grant over the device grants of grants, issuing with tokens.
func NewDeviceCode(grants devicePoller, tokens *TokenSet) DeviceCode {
	return DeviceCode{grants: grants, tokens: tokens}
}

// Type is urn:ietf:params:oauth:grant-type:device_code.
func (DeviceCode) Type() string { return oauth2.GrantDeviceCode }

// ConfidentialOnly is false: the grant is made for public clients on devices (RFC 8628 5.6).
func (DeviceCode) ConfidentialOnly() bool { return false }

// IssuedEvent is token_issued.
func (DeviceCode) IssuedEvent() string { return oauth2.AuditTokenIssued }

// Exchange polls the device code and, once approved, issues the user's tokens.
func (g DeviceCode) Exchange(ctx context.Context, req *Request) (*Response, error) {
	if req.DeviceCode == "" {
		return nil, oauth2.InvalidRequest("The device_code parameter is missing.")
	}
	if !oauth2.WellFormedSecret(req.DeviceCode) {
		return nil, oauth2.ErrInvalidGrant.WithDescription(badDeviceCode)
	}
	poll, err := g.grants.PollDeviceGrant(ctx, store.HashOf(req.DeviceCode), req.Client.ID, DeviceSlowDownStep)
	switch {
	case errors.Is(err, store.ErrNotFound):
		// Unknown, expired and another client's codes look alike: a device code is 256 random
		// bits, so a well-formed one the store does not know has most likely expired.
		return nil, oauth2.ErrExpiredToken.WithDescription(expiredDeviceCode)
	case errors.Is(err, store.ErrAlreadyUsed):
		return nil, oauth2.ErrInvalidGrant.WithDescription(usedDeviceCode)
	case err != nil:
		return nil, err
	}
	switch poll.Grant.Status {
	case store.DevicePending:
		if poll.SlowDown {
			return nil, oauth2.ErrSlowDown
		}
		return nil, oauth2.ErrAuthorizationPending
	case store.DeviceDenied:
		return nil, oauth2.ErrAccessDenied.WithStatus(http.StatusBadRequest).WithDescription("The user denied the device authorization.")
	case store.DeviceApproved:
	default:
		return nil, oauth2.ErrServerError.WithCause(errors.New("device grant in an unknown state"))
	}
	user, ok := req.Snapshot.UserBySubject(poll.Grant.Subject)
	if !ok || user.Disabled || !req.Client.AllowsUser(user) {
		return nil, oauth2.ErrInvalidGrant.WithDescription("The user who approved the device can no longer sign in.")
	}
	return g.tokens.Issue(ctx, UserGrant{
		AccessNotAfter: req.AccessNotAfter(),
		Client:         req.Client, User: user, Snapshot: req.Snapshot,
		Scopes:   oauth2.StillAllowed(ctx, req.Snapshot, req.Client, poll.Grant.Scopes),
		AuthTime: poll.Grant.AuthTime, Resources: req.Resources, DPoPThumbprint: req.DPoPThumbprint,
	})
}
