package browser

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/store"
)

// Kinds of the records the browser flow keeps in the store (the failed-login locks are
// server/userauth's).
const (
	recordSession     = "session"
	recordAuthRequest = "authz-request"
	recordConsent     = "consent"
)

// cookieNames are the names of the browser flow's cookies: with the __Host- prefix (Secure,
// Path=/, no Domain) when the issuer is https.
type cookieNames struct {
	session, browser string
	secure           bool
}

func newCookieNames(secure bool) cookieNames {
	if secure {
		return cookieNames{session: "__Host-latchkey-session", browser: "__Host-latchkey-csrf", secure: true}
	}
	return cookieNames{session: "latchkey-session", browser: "latchkey-csrf"}
}

// cookie returns a cookie of the flow: HttpOnly, SameSite=Lax (sent on the top-level GET that
// brings the user back from the client), Secure when the issuer is https. maxAge 0 makes a
// session cookie, a negative one deletes the cookie.
func (n cookieNames) cookie(name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{ //nolint:gosec // G124: Secure follows the issuer's scheme; an http issuer (development) cannot use it
		Name: name, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: n.secure, SameSite: http.SameSiteLaxMode,
	}
}

// cookieValue returns the value of the named cookie when it is well formed, else "".
func cookieValue(r *http.Request, name string) string {
	c, err := r.Cookie(name)
	if err != nil || !oauth2.WellFormedSecret(c.Value) {
		return ""
	}
	return c.Value
}

// loginSession is the server-side record of a signed-in browser. It names the user by
// Subject, never by username: a user re-created under the same username does not inherit it.
type loginSession struct {
	Subject string `json:"sub"`
	// AuthTime is when the user entered the password, in Unix seconds; the session started
	// then.
	AuthTime int64 `json:"auth_time"`
	// SID is the OP session ID, the sid claim of the tokens issued through the session. It is
	// public (tokens carry it), unlike the cookie's value, and names the session in the user's
	// list (index.go). A session stored before SIDs existed has none.
	SID string `json:"sid,omitempty"`
	// CSRF is the synchronizer token of the session's own forms (account page, logout
	// confirmation).
	CSRF string `json:"csrf,omitempty"`
}

// sessionRecords keeps the session records and the users' lists of sessions; store.Store
// implements it.
type sessionRecords interface {
	PutRecord(ctx context.Context, kind string, h store.Hash, value []byte, ttl time.Duration) error
	GetRecord(ctx context.Context, kind string, h store.Hash) ([]byte, error)
	DeleteRecord(ctx context.Context, kind string, h store.Hash) error
	PutEntry(ctx context.Context, kind string, h store.Hash, id string, value []byte, ttl time.Duration) error
	DeleteEntry(ctx context.Context, kind string, h store.Hash, id string) error
}

// sessions keeps login sessions in the store, keyed by the hash of the cookie's value, and
// lists each in its user's sessions (index.go).
type sessions struct {
	records sessionRecords
	cookies cookieNames
	ttl     time.Duration
	now     func() time.Time
}

// remaining is how long the session that started at authTime (Unix seconds) has left.
func (s *sessions) remaining(authTime int64) time.Duration {
	return time.Unix(authTime, 0).Add(s.ttl).Sub(s.now())
}

// current returns the session of the request's cookie and the hash of its ID. A missing,
// malformed or expired cookie is no session (ok false, err nil); err is a store failure.
func (s *sessions) current(ctx context.Context, r *http.Request) (loginSession, store.Hash, bool, error) {
	id := cookieValue(r, s.cookies.session)
	if id == "" {
		return loginSession{}, store.Hash{}, false, nil
	}
	return s.byHash(ctx, store.HashOf(id))
}

// byHash returns the session stored under the hash of its cookie's value.
func (s *sessions) byHash(ctx context.Context, h store.Hash) (loginSession, store.Hash, bool, error) {
	raw, err := s.records.GetRecord(ctx, recordSession, h)
	if errors.Is(err, store.ErrNotFound) {
		return loginSession{}, store.Hash{}, false, nil
	}
	if err != nil {
		return loginSession{}, store.Hash{}, false, err
	}
	var sess loginSession
	if json.Unmarshal(raw, &sess) != nil || sess.Subject == "" {
		return loginSession{}, store.Hash{}, false, nil //nolint:nilerr // an unreadable record is no session
	}
	return sess, h, true, nil
}

// start stores a new session with a new ID and CSRF token, lists it in its user's sessions,
// sets its cookie and drops the session the request had, if any: a login always gets a fresh
// ID, so a planted cookie is worthless. sess.SID, when set, continues that OP session (the same
// user signed in again); else the session gets a new one.
func (s *sessions) start(ctx context.Context, w http.ResponseWriter, r *http.Request, sess loginSession) (loginSession, store.Hash, error) {
	if old := cookieValue(r, s.cookies.session); old != "" {
		if err := s.drop(ctx, store.HashOf(old)); err != nil {
			return sess, store.Hash{}, err
		}
	}
	id, err := oauth2.NewSecret()
	if err == nil && sess.SID == "" {
		sess.SID, err = newSessionID()
	}
	if err == nil {
		sess.CSRF, err = oauth2.NewSecret()
	}
	if err != nil {
		return sess, store.Hash{}, err
	}
	raw, err := json.Marshal(sess)
	if err != nil {
		return sess, store.Hash{}, err
	}
	h := store.HashOf(id)
	if err := s.records.PutRecord(ctx, recordSession, h, raw, s.ttl); err != nil {
		return sess, store.Hash{}, err
	}
	entry, err := json.Marshal(sessionEntry{AuthTime: sess.AuthTime, Cookie: h.String()})
	if err != nil {
		return sess, store.Hash{}, err
	}
	if err := s.records.PutEntry(ctx, listSessions, userKey(sess.Subject), sess.SID, entry, s.ttl); err != nil {
		return sess, store.Hash{}, err
	}
	http.SetCookie(w, s.cookies.cookie(s.cookies.session, id, int(s.ttl/time.Second)))
	return sess, h, nil
}

// drop deletes the session stored under h and its entry in its user's sessions; a missing one
// is no error.
func (s *sessions) drop(ctx context.Context, h store.Hash) error {
	old, _, ok, err := s.byHash(ctx, h)
	if err != nil {
		return err
	}
	if err := s.records.DeleteRecord(ctx, recordSession, h); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if ok && old.SID != "" {
		return s.records.DeleteEntry(ctx, listSessions, userKey(old.Subject), old.SID)
	}
	return nil
}

// newSessionID returns a new OP session ID: 16 random bytes, base64url without padding.
func newSessionID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}
