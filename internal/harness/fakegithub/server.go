package fakegithub

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// User is a user of the fake GitHub.
type User struct {
	ID          int64
	Login, Name string
	Email       string // the primary, verified address
	Orgs        []string
	Teams       []Team
}

// Team is a team of an organization.
type Team struct {
	Org, Slug, Name string
}

// Server is the fake GitHub; its Host (http://127.0.0.1:PORT) is a GitHubIdentityProvider's
// spec.host, its URL+"/api/v3" the REST API.
type Server struct {
	*httptest.Server

	clientID, clientSecret, redirectURI string

	mu       sync.Mutex
	users    map[int64]*User
	signedIn int64
	codes    map[string][2]string // code: user ID, challenge
	tokens   map[string]int64
	n        int
	calls    atomic.Int64
	mux      *http.ServeMux
}

// Start serves a GitHub whose one OAuth App has the credentials and callback URL.
func Start(t testing.TB, clientID, clientSecret, redirectURI string) *Server {
	t.Helper()
	g := &Server{clientID: clientID, clientSecret: clientSecret, redirectURI: redirectURI,
		users: map[int64]*User{}, codes: map[string][2]string{}, tokens: map[string]int64{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login/oauth/authorize", g.authorize)
	mux.HandleFunc("POST /login/oauth/access_token", g.accessToken)
	mux.HandleFunc("GET /api/v3/meta", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"verifiable_password_authentication":false}`))
	})
	g.api(mux, "/user", func(u *User) any {
		return map[string]any{"login": u.Login, "id": u.ID, "name": u.Name, "email": nil}
	})
	g.api(mux, "/user/emails", func(u *User) any {
		return []map[string]any{{"email": "noreply@example.com", "primary": false, "verified": true}, {"email": u.Email, "primary": true, "verified": true}}
	})
	g.api(mux, "/user/orgs", func(u *User) any {
		out := []map[string]any{}
		for _, o := range u.Orgs {
			out = append(out, map[string]any{"login": o, "id": 1})
		}
		return out
	})
	g.api(mux, "/user/teams", func(u *User) any {
		out := []map[string]any{}
		for _, tm := range u.Teams {
			out = append(out, map[string]any{"slug": tm.Slug, "name": tm.Name, "organization": map[string]any{"login": tm.Org}})
		}
		return out
	})
	g.mux = mux
	g.Server = httptest.NewServer(mux)
	t.Cleanup(g.Close)
	return g
}

// SignInAs makes u the user the authorize endpoint signs in (and one GitHub knows).
func (g *Server) SignInAs(u User) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.users[u.ID] = &u
	g.signedIn = u.ID
}

// Change changes a user GitHub knows.
func (g *Server) Change(id int64, f func(u *User)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	f(g.users[id])
}

// UserCalls counts the GET /api/v3/user requests.
func (g *Server) UserCalls() int64 { return g.calls.Load() }

// SetHandler replaces every answer with h (nil: the fake's own again).
func (g *Server) SetHandler(h http.Handler) {
	if h == nil {
		h = g.mux
	}
	g.Config.Handler = h
}

func (g *Server) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("client_id") != g.clientID || q.Get("redirect_uri") != g.redirectURI || q.Get("code_challenge_method") != "S256" || q.Get("state") == "" {
		http.Error(w, "bad authorization request", http.StatusBadRequest)
		return
	}
	g.mu.Lock()
	g.n++
	code := "code-" + strconv.Itoa(g.n)
	g.codes[code] = [2]string{strconv.FormatInt(g.signedIn, 10), q.Get("code_challenge")}
	g.mu.Unlock()
	http.Redirect(w, r, g.redirectURI+"?"+url.Values{"code": {code}, "state": {q.Get("state")}}.Encode(), http.StatusFound)
}

func (g *Server) accessToken(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	c, ok := g.codes[r.PostFormValue("code")]
	delete(g.codes, r.PostFormValue("code"))
	sum := sha256.Sum256([]byte(r.PostFormValue("code_verifier")))
	w.Header().Set("Content-Type", "application/json")
	if !ok || r.PostFormValue("client_id") != g.clientID || r.PostFormValue("client_secret") != g.clientSecret ||
		base64.RawURLEncoding.EncodeToString(sum[:]) != c[1] {
		_, _ = w.Write([]byte(`{"error":"bad_verification_code"}`))
		return
	}
	g.n++
	tok := "gho_" + strconv.Itoa(g.n)
	id, _ := strconv.ParseInt(c[0], 10, 64)
	g.tokens[tok] = id
	_ = json.NewEncoder(w).Encode(map[string]string{"access_token": tok, "token_type": "bearer", "scope": "read:user,user:email,read:org"})
}

// api serves GET /api/v3<path> with answer's JSON for the token's user; 401 for another token.
func (g *Server) api(mux *http.ServeMux, path string, answer func(u *User) any) {
	mux.HandleFunc("GET /api/v3"+path, func(w http.ResponseWriter, r *http.Request) {
		if path == "/user" {
			g.calls.Add(1)
		}
		g.mu.Lock()
		defer g.mu.Unlock()
		id, ok := g.tokens[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
		u := g.users[id]
		if !ok || u == nil {
			http.Error(w, `{"message":"Bad credentials"}`, http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(answer(u))
	})
}
