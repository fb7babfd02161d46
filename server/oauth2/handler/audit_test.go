package handler

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/oauth2/grants"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recordingAuditor keeps the audit events as the JSON lines a logger would write.
type recordingAuditor struct {
	mu     sync.Mutex
	events []oauth2.AuditEvent
}

func (a *recordingAuditor) Audit(e oauth2.AuditEvent) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.events = append(a.events, e)
}

type recordingReuse struct {
	oauth2.NoClientEvents
	mu      sync.Mutex
	clients []string
	replays []string
}

func (r *recordingReuse) AuthorizationCodeReplayed(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.replays = append(r.replays, id)
}

func (r *recordingReuse) codeReplays() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.replays)
}

func (r *recordingReuse) RefreshReuseDetected(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.clients = append(r.clients, id)
}

func TestAuditTrail(t *testing.T) {
	aud, reuse := &recordingAuditor{}, &recordingReuse{}
	e := newUserEnv(t, func(c *Config) { c.Audit, c.ClientEvents = aud, reuse })

	first := e.passwordLogin(t, appID, aliceName, alicePassword, "openid")
	rt, at := str(first["refresh_token"]), str(first["access_token"])
	res := e.refresh(t, appID, rt, "")
	require.Equal(t, http.StatusOK, res.status, "%v", res.body)
	rt2, at2 := str(res.body["refresh_token"]), str(res.body["access_token"])
	e.clock.Advance(grants.DefaultRefreshReuseGrace + time.Second)
	require.Equal(t, "invalid_grant", e.refresh(t, appID, rt, "").body["error"], "reuse")

	second := e.passwordLogin(t, appID, aliceName, alicePassword, "openid")
	rt3 := str(second["refresh_token"])
	require.Equal(t, http.StatusOK, e.form(t, oauth2.RevocationPath, appID, url.Values{"token": {rt3}}).status)
	bad := e.form(t, oauth2.TokenPath, appID, url.Values{"grant_type": {"password"}, "username": {aliceName}, "password": {"wrong-password"}})
	require.Equal(t, "invalid_grant", bad.body["error"])

	aud.mu.Lock()
	defer aud.mu.Unlock()
	var got []string
	for _, ev := range aud.events {
		got = append(got, ev.Event)
	}
	assert.Equal(t, []string{
		oauth2.AuditTokenIssued, oauth2.AuditRefreshRotated, oauth2.AuditRefreshReuseDetected,
		oauth2.AuditTokenIssued, oauth2.AuditTokenRevoked, oauth2.AuditLoginFailed,
	}, got)
	assert.Equal(t, []string{appID}, reuse.clients)

	b, err := json.Marshal(aud.events)
	require.NoError(t, err)
	out := string(b)
	for _, s := range []string{rt, rt2, rt3, at, at2, str(second["access_token"]), appSecret, alicePassword, "wrong-password"} {
		require.NotEmpty(t, s)
		assert.NotContains(t, out, s)
	}
	for _, ev := range aud.events {
		assert.Equal(t, appID, ev.ClientID, ev.Event)
		assert.NotEmpty(t, ev.RemoteAddr, ev.Event)
		assert.True(t, ev.Outcome == "success" || ev.Outcome == "failure", ev.Event)
	}
	assert.Equal(t, aliceName, aud.events[0].Username)
	assert.Equal(t, "password", aud.events[0].GrantType)
	// An issued access token is named by its jti, as its revocation would name it; a refresh
	// token by a hash prefix.
	assert.Equal(t, "jti:"+str(claimsOf(t, at)["jti"]), aud.events[0].TokenRef)
	assert.Equal(t, "jti:"+str(claimsOf(t, at2)["jti"]), aud.events[1].TokenRef)
	assert.True(t, strings.HasPrefix(aud.events[2].TokenRef, "sha256:"))
}

// An access token's token_issued and token_revoked lines name it the same way (its jti), so
// that an auditor can match them.
func TestAnAccessTokenIsAuditedByTheSameReferenceWhenIssuedAndRevoked(t *testing.T) {
	aud := &recordingAuditor{}
	e := newUserEnv(t, func(c *Config) { c.Audit = aud })
	at := str(e.passwordLogin(t, appID, aliceName, alicePassword, "openid")["access_token"])
	require.Equal(t, http.StatusOK, e.form(t, oauth2.RevocationPath, appID, url.Values{"token": {at}}).status)

	aud.mu.Lock()
	defer aud.mu.Unlock()
	refs := map[string]string{}
	for _, ev := range aud.events {
		refs[ev.Event] = ev.TokenRef
	}
	require.Contains(t, refs, oauth2.AuditTokenIssued)
	require.Contains(t, refs, oauth2.AuditTokenRevoked)
	assert.Equal(t, "jti:"+str(claimsOf(t, at)["jti"]), refs[oauth2.AuditTokenIssued])
	assert.Equal(t, refs[oauth2.AuditTokenIssued], refs[oauth2.AuditTokenRevoked])
}

// A password typed into the username field must not reach the audit log: a failed login for
// an unknown username is audited without it, one for a user with the user's name.
func TestAFailedLoginAuditsOnlyAKnownUsername(t *testing.T) {
	aud := &recordingAuditor{}
	e := newUserEnv(t, func(c *Config) { c.Audit = aud })
	for _, user := range []string{"correct-horse-battery-staple", aliceName} {
		res := e.form(t, oauth2.TokenPath, appID, url.Values{"grant_type": {"password"}, "username": {user}, "password": {"wrong"}})
		require.Equal(t, "invalid_grant", res.body["error"])
	}
	aud.mu.Lock()
	defer aud.mu.Unlock()
	var names []string
	for _, ev := range aud.events {
		if ev.Event == oauth2.AuditLoginFailed {
			names = append(names, ev.Username)
		}
	}
	assert.Equal(t, []string{"", aliceName}, names)
}
