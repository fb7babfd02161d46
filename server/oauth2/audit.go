package oauth2

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
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
)

// AuditEvent is one security-relevant event. It never holds a token, code, secret or
// password: TokenRef is a jti or a short prefix of a token's SHA-256 hash (TokenRef).
type AuditEvent struct {
	Event      string
	ClientID   string
	Subject    string
	Username   string
	GrantType  string
	Scopes     []string
	TokenRef   string
	RemoteAddr string
	Outcome    string // "success" or "failure"
	Reason     string
}

// Auditor records audit events; *audit.Logger (server/audit) implements it. nil records nothing.
type Auditor interface {
	Audit(e AuditEvent)
}

// ReuseReporter is told when a refresh token of a client is reused after its rotation (its
// family is then revoked); the operator emits a Kubernetes Event on the OAuthClient. nil
// reports nothing.
type ReuseReporter interface {
	RefreshReuseDetected(clientID string)
}

// TokenRef is a short SHA-256 prefix identifying a token in audit records, never the token.
func TokenRef(tok string) string {
	if tok == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(tok))
	return "sha256:" + hex.EncodeToString(sum[:6])
}

type auditKey struct{}

type requestAudit struct {
	a      Auditor
	remote string
}

// audit records e with the request's remote address; outside instrumentAudit, nothing.
func audit(ctx context.Context, e AuditEvent) {
	ra, ok := ctx.Value(auditKey{}).(requestAudit)
	if !ok || ra.a == nil {
		return
	}
	if e.RemoteAddr == "" {
		e.RemoteAddr = ra.remote
	}
	if e.Outcome == "" {
		e.Outcome = "success"
	}
	ra.a.Audit(e)
}

// instrumentAudit makes the auditor and the remote address available through the context.
func instrumentAudit(a Auditor, next http.Handler) http.Handler {
	if a == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ra := requestAudit{a: a, remote: r.RemoteAddr}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), auditKey{}, ra)))
	})
}

type noReuseReporter struct{}

func (noReuseReporter) RefreshReuseDetected(string) {}

// grantPassword is the password grant's type.
const grantPassword = "password"

// errorReason is the OAuth error code and description of err, for an audit record.
func errorReason(err error) string {
	var e *Error
	if errors.As(err, &e) {
		if e.Description() != "" {
			return e.Code() + ": " + e.Description()
		}
		return e.Code()
	}
	return "error"
}
