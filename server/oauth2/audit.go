package oauth2

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
)

// Audit events, the Event of an AuditEvent.
const (
	AuditTokenIssued          = "token_issued"
	AuditRefreshRotated       = "refresh_rotated"
	AuditRefreshReuseDetected = "refresh_reuse_detected"
	AuditTokenRevoked         = "token_revoked"
	AuditLoginSucceeded       = "login_succeeded"
	AuditLoginFailed          = "login_failed"
	AuditConsentGiven         = "consent_given"
	AuditConsentDenied        = "consent_denied"
	AuditClientRegistered     = "client_registered"
	AuditClientUpdated        = "client_updated"
	AuditClientDeleted        = "client_deleted"
	// AuditClientAuthenticationFailed: a client failed to authenticate (its client ID only when
	// it is registered; the method and why in Reason).
	AuditClientAuthenticationFailed = "client_authentication_failed"
	// AuditRateLimited: an attempt was refused by brute-force protection or a rate limit.
	AuditRateLimited = "rate_limited"
	// AuditPreviousSecretUsed: a client authenticated with its previous secret inside the grace
	// period of a rotation (its owner should move the workload to the new one).
	AuditPreviousSecretUsed = "client_previous_secret_used"
	// AuditCodeReplayed: an authorization code was presented again by its own client; the
	// grant of its first exchange is revoked.
	AuditCodeReplayed = "authorization_code_replayed"
	// AuditRefreshRetried: a refresh token rotated moments ago (within the reuse grace) was
	// presented again by its client, authenticated the same way, and got the successor its
	// rotation issued (a retry whose answer was lost, or the token's thief: see the refresh
	// token grant). The endpoint's refresh_rotated follows.
	AuditRefreshRetried = "refresh_retried"
	// AuditSessionEnded: an OP session ended (RP-initiated logout, or the user on the account
	// page; Reason says which, ClientID is the client that asked).
	AuditSessionEnded = "session_ended"
	// AuditConsentWithdrawn: the user withdrew a remembered consent on the account page (the
	// client's grants for the user were revoked).
	AuditConsentWithdrawn = "consent_withdrawn"
	// AuditDeviceAuthorizationStarted: a client started a device authorization (RFC 8628).
	AuditDeviceAuthorizationStarted = "device_authorization_started"
	// AuditAuthorizationRequestPushed: a client pushed an authorization request (RFC 9126).
	AuditAuthorizationRequestPushed = "authorization_request_pushed"
	// AuditDeviceApproved and AuditDeviceDenied: the user decided a device authorization on
	// the verification page.
	AuditDeviceApproved = "device_approved"
	AuditDeviceDenied   = "device_denied"
	// AuditTokenExchanged: a client exchanged a subject token (RFC 8693); Subject, Actor,
	// Targets and SubjectSource say for whom, by whom, into what and from what.
	AuditTokenExchanged = "token_exchanged"
	// AuditUpstreamUserRefused: at refresh, the identity provider that signed the user in no
	// longer accepts them (deleted, disabled, out of its allowed organizations): the refresh
	// token's family was revoked.
	AuditUpstreamUserRefused = "upstream_user_refused"
)

// AuditEvent is one security-relevant event. It never holds a token, code, secret or
// password: TokenRef is an access token's jti (AccessTokenRef) or a short prefix of another
// token's SHA-256 hash (TokenRef).
type AuditEvent struct {
	Event     string
	ClientID  string
	Subject   string
	Username  string
	GrantType string
	// AuthMethod is how the client authenticated (or tried to): client_secret_basic,
	// client_secret_post, none, service_account_token, private_key_jwt.
	AuthMethod string
	Scopes     []string
	TokenRef   string
	// Actor is the sub of the acting party of a token exchange (its act claim); Targets the
	// audiences of the token it issued; SubjectSource the kind of subject token
	// (registry.SubjectAccessToken ...).
	Actor         string
	Targets       []string
	SubjectSource string
	// RemoteAddr is the connection's peer (a proxy's, behind one); ClientAddr the client's
	// address the brute-force limits count (from the trusted proxy's header when configured).
	RemoteAddr string
	ClientAddr string
	Outcome    string // "success" or "failure"
	Reason     string
	// RequestID is the request's ID (RequestID), filled in by Audit.
	RequestID string
}

// Auditor records audit events; *audit.Logger (server/audit) implements it. nil records nothing.
type Auditor interface {
	Audit(e AuditEvent)
}

// TokenRef is a short SHA-256 prefix identifying a token in audit records, never the token.
func TokenRef(tok string) string {
	if tok == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(tok))
	return "sha256:" + hex.EncodeToString(sum[:6])
}

// AccessTokenRef identifies an access token in audit records by its jti, never the token: the
// same at issuance and at revocation.
func AccessTokenRef(jti string) string { return "jti:" + jti }

// Auditing reports whether Audit records anything for the request, so that a caller can skip
// building an event (hashing a token for TokenRef, say) that nobody reads.
func Auditing(ctx context.Context) bool {
	s := scopeOf(ctx)
	return s != nil && s.auditor != nil
}

// Audit records e with the request's remote and client addresses (see Instrumentation.Wrap);
// outside Wrap, or without an Auditor, nothing.
func Audit(ctx context.Context, e AuditEvent) {
	s := scopeOf(ctx)
	if s == nil || s.auditor == nil {
		return
	}
	if e.RemoteAddr == "" {
		e.RemoteAddr = s.remote
	}
	if e.ClientAddr == "" {
		e.ClientAddr = s.client
	}
	if e.Outcome == "" {
		e.Outcome = "success"
	}
	e.RequestID = s.requestID
	s.auditor.Audit(e)
}
