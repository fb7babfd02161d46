package audit

import (
	"io"
	"time"

	"github.com/latchkey-dev/latchkey/server/jsonlines"
	"github.com/latchkey-dev/latchkey/server/oauth2"
)

var _ oauth2.Auditor = (*Logger)(nil)

// Record is one line of the audit log.
type Record struct {
	Time time.Time `json:"time"`
	// Log is always "audit": it tells audit lines from the access log's ("access") and the
	// server log's (which have a "level") when they share a stream.
	Log        string   `json:"log"`
	Event      string   `json:"event"`
	ClientID   string   `json:"client_id,omitempty"`
	Subject    string   `json:"subject,omitempty"`
	Username   string   `json:"username,omitempty"`
	GrantType  string   `json:"grant_type,omitempty"`
	AuthMethod string   `json:"auth_method,omitempty"` // how the client authenticated
	Scopes     []string `json:"scopes,omitempty"`
	// Actor, Targets and SubjectSource describe a token exchange (RFC 8693): the actor's
	// subject, the audiences of the issued token, the kind of subject token.
	Actor         string   `json:"actor,omitempty"`
	Targets       []string `json:"targets,omitempty"`
	SubjectSource string   `json:"subject_source,omitempty"`
	Token         string   `json:"token,omitempty"` // jti or SHA-256 prefix, never the token
	RemoteAddr    string   `json:"remote_addr,omitempty"`
	ClientAddr    string   `json:"client_addr,omitempty"` // the address the limits count
	Outcome       string   `json:"outcome,omitempty"`
	Reason        string   `json:"reason,omitempty"`
	RequestID     string   `json:"request_id,omitempty"`
}

// Logger writes audit records as JSON lines to a writer; safe for concurrent use.
type Logger struct {
	lines *jsonlines.Writer
	now   func() time.Time
}

// New returns a Logger writing to w.
func New(w io.Writer) *Logger { return &Logger{lines: jsonlines.New(w), now: time.Now} }

// Audit writes the event as one JSON line. Write errors are dropped: auditing must not fail
// the request.
func (l *Logger) Audit(e oauth2.AuditEvent) {
	if l == nil {
		return
	}
	l.lines.Write(Record{
		Time: l.now().UTC(), Log: "audit", Event: e.Event, ClientID: e.ClientID, Subject: e.Subject,
		Username: e.Username, GrantType: e.GrantType, AuthMethod: e.AuthMethod, Scopes: e.Scopes, Token: e.TokenRef,
		Actor: e.Actor, Targets: e.Targets, SubjectSource: e.SubjectSource,
		RemoteAddr: e.RemoteAddr, ClientAddr: e.ClientAddr, Outcome: e.Outcome, Reason: e.Reason,
		RequestID: e.RequestID,
	})
}
