package audit

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/server/oauth2"
)

func TestLoggerJSONShape(t *testing.T) {
	var buf bytes.Buffer
	l := New(&buf)
	l.now = func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }
	l.Audit(oauth2.AuditEvent{
		Event: oauth2.AuditTokenIssued, ClientID: "app", Username: "alice", GrantType: "password",
		Scopes: []string{"openid"}, TokenRef: "jti:abc", RemoteAddr: "10.0.0.1:1234", ClientAddr: "198.51.100.7", Outcome: "success",
		RequestID: "req-7",
	})
	l.Audit(oauth2.AuditEvent{Event: oauth2.AuditLoginFailed, ClientID: "app", Outcome: "failure", Reason: "bad credentials"})
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d lines, want 2: %q", len(lines), buf.String())
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"time": "2026-01-02T03:04:05Z", "log": "audit", "request_id": "req-7", "event": "token_issued", "client_id": "app", "username": "alice",
		"grant_type": "password", "scopes": []any{"openid"}, "token": "jti:abc",
		"remote_addr": "10.0.0.1:1234", "client_addr": "198.51.100.7", "outcome": "success",
	}
	if len(got) != len(want) {
		t.Fatalf("fields = %v, want %v", got, want)
	}
	for k, v := range want {
		if gb, _ := json.Marshal(got[k]); string(gb) != mustJSON(t, v) {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if err := json.Unmarshal([]byte(lines[1]), &got); err != nil || got["reason"] != "bad credentials" {
		t.Errorf("second line %q: %v", lines[1], err)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestLoggerNoSecrets(t *testing.T) {
	const (
		secret   = "client-secret-Zq9"
		password = "hunter2-password-Xy7"
		tok      = "refresh-token-abcdefghijklmnopqrstuvwxyz0123456789"
	)
	var buf bytes.Buffer
	l := New(&buf)
	l.Audit(oauth2.AuditEvent{
		Event: oauth2.AuditRefreshReuseDetected, ClientID: "app", GrantType: "refresh_token",
		TokenRef: oauth2.TokenRef(tok), Outcome: "failure",
	})
	l.Audit(oauth2.AuditEvent{Event: oauth2.AuditLoginFailed, ClientID: "app", Username: "alice", TokenRef: oauth2.TokenRef(password)})
	l.Audit(oauth2.AuditEvent{Event: oauth2.AuditClientRegistered, ClientID: "app", TokenRef: oauth2.TokenRef(secret)})
	out := buf.String()
	for _, s := range []string{secret, password, tok, tok[:16]} {
		if strings.Contains(out, s) {
			t.Errorf("audit log contains %q:\n%s", s, out)
		}
	}
	if !strings.Contains(out, oauth2.TokenRef(tok)) {
		t.Errorf("audit log lacks the token reference:\n%s", out)
	}
}

func TestLoggerConcurrentLines(t *testing.T) {
	var buf bytes.Buffer
	l := New(&buf)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() { l.Audit(oauth2.AuditEvent{Event: oauth2.AuditTokenIssued, ClientID: "app"}) })
	}
	wg.Wait()
	for _, line := range strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n") {
		if !json.Valid([]byte(line)) {
			t.Errorf("invalid line %q", line)
		}
	}
	var nilLogger *Logger
	nilLogger.Audit(oauth2.AuditEvent{Event: "x"})
}
