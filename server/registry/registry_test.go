package registry

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func client(source, id string, created time.Time) Client {
	return Client{Source: source, ID: id, Created: created, Type: Confidential, SecretHash: HashSecret([]byte("s-" + source)), HasSecret: true}
}

func TestClientIDWinner(t *testing.T) {
	tests := []struct {
		name string
		ops  func(r *Registry)
		id   string
		want string // winning source, "" for none
	}{
		{
			name: "a single client is served under its ID",
			ops:  func(r *Registry) { r.PutClient(client("a/x", "x", t0)) },
			id:   "x", want: "a/x",
		},
		{
			name: "the client created first keeps an ID a later one claims",
			ops: func(r *Registry) {
				r.PutClient(client("b/x", "x", t0))
				r.PutClient(client("a/x", "x", t0.Add(time.Second)))
			},
			id: "x", want: "b/x",
		},
		{
			name: "equal creation times fall back to the smaller source",
			ops: func(r *Registry) {
				r.PutClient(client("b/x", "x", t0))
				r.PutClient(client("a/x", "x", t0))
			},
			id: "x", want: "a/x",
		},
		{
			name: "deleting the winner hands the ID to the other claimant",
			ops: func(r *Registry) {
				r.PutClient(client("b/x", "x", t0))
				r.PutClient(client("a/x", "x", t0.Add(time.Second)))
				r.DeleteClient("b/x")
			},
			id: "x", want: "a/x",
		},
		{
			name: "a client that changes its ID leaves the old one free",
			ops: func(r *Registry) {
				r.PutClient(client("a/x", "x", t0))
				r.PutClient(client("a/x", "y", t0))
			},
			id: "x", want: "",
		},
		{
			name: "deleting an unknown source changes nothing",
			ops: func(r *Registry) {
				r.PutClient(client("a/x", "x", t0))
				r.DeleteClient("nope/nope")
			},
			id: "x", want: "a/x",
		},
		{
			name: "deleting the only client frees its ID",
			ops: func(r *Registry) {
				r.PutClient(client("a/x", "x", t0))
				r.DeleteClient("a/x")
			},
			id: "x", want: "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := New()
			tt.ops(r)
			c, ok := r.Snapshot().Client(tt.id)
			if tt.want == "" {
				assert.False(t, ok)
				return
			}
			require.True(t, ok)
			assert.Equal(t, tt.want, c.Source)
		})
	}
}

func TestUsernameAndScopeNameWinner(t *testing.T) {
	user := func(source string, created time.Time) User {
		return User{Source: source, Created: created, Username: "alice", Email: source + "@example.com"}
	}
	scope := func(created time.Time, desc string) Scope {
		return Scope{Name: "read:projects", Created: created, Description: desc}
	}
	tests := []struct {
		name      string
		ops       func(r *Registry)
		wantUser  string // source of the User served as alice, "" for none
		wantScope string // description of the Scope served as read:projects, "" for none
	}{
		{
			name: "a later User with a smaller resource name cannot shadow an existing username",
			ops: func(r *Registry) {
				r.PutUser(user("zz-alice", t0))
				r.PutUser(user("aa-mallory", t0.Add(time.Second)))
			},
			wantUser: "zz-alice",
		},
		{
			name: "the order of the writes does not matter, only the creation times",
			ops: func(r *Registry) {
				r.PutUser(user("aa-mallory", t0.Add(time.Second)))
				r.PutUser(user("zz-alice", t0))
			},
			wantUser: "zz-alice",
		},
		{
			name: "equal creation times fall back to the smaller source for users",
			ops: func(r *Registry) {
				r.PutUser(user("b", t0))
				r.PutUser(user("a", t0))
			},
			wantUser: "a",
		},
		{
			name: "deleting the winning User hands the username to the other claimant",
			ops: func(r *Registry) {
				r.PutUser(user("zz-alice", t0))
				r.PutUser(user("aa-mallory", t0.Add(time.Second)))
				r.DeleteUser("zz-alice")
			},
			wantUser: "aa-mallory",
		},
		{
			name: "a later Scope with a smaller resource name cannot redefine a scope name",
			ops: func(r *Registry) {
				r.PutScope("zz-read", scope(t0, "first"))
				r.PutScope("aa-read", scope(t0.Add(time.Second), "second"))
			},
			wantScope: "first",
		},
		{
			name: "equal creation times fall back to the smaller source for scopes",
			ops: func(r *Registry) {
				r.PutScope("b", scope(t0, "b"))
				r.PutScope("a", scope(t0, "a"))
			},
			wantScope: "a",
		},
		{
			name: "deleting the winning Scope hands the name to the other claimant",
			ops: func(r *Registry) {
				r.PutScope("zz-read", scope(t0, "first"))
				r.PutScope("aa-read", scope(t0.Add(time.Second), "second"))
				r.DeleteScope("zz-read")
			},
			wantScope: "second",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := New()
			tt.ops(r)
			snap := r.Snapshot()
			u, ok := snap.User("alice")
			if tt.wantUser == "" {
				assert.False(t, ok)
			} else if assert.True(t, ok) {
				assert.Equal(t, tt.wantUser, u.Source)
			}
			sc, ok := snap.Scope("read:projects")
			if tt.wantScope == "" {
				assert.False(t, ok)
			} else if assert.True(t, ok) {
				assert.Equal(t, tt.wantScope, sc.Description)
				assert.Len(t, snap.Scopes(), 1, "a scope name is listed once")
			}
		})
	}
}

func TestSnapshotsAreImmutable(t *testing.T) {
	r := New()
	r.PutClient(client("a/x", "x", t0))
	before := r.Snapshot()
	updated := client("a/x", "x", t0)
	updated.Scopes = []string{"read"}
	r.PutClient(updated)
	r.PutScope("read", Scope{Name: "read"})
	r.PutUser(User{Source: "alice", Username: "alice"})

	c, _ := before.Client("x")
	assert.Empty(t, c.Scopes, "an old snapshot must not see later writes")
	_, ok := before.Scope("read")
	assert.False(t, ok)
	_, ok = before.User("alice")
	assert.False(t, ok)

	c, _ = r.Snapshot().Client("x")
	assert.Equal(t, []string{"read"}, c.Scopes)
}

func TestScopesAndUsersByName(t *testing.T) {
	r := New()
	r.PutScope("read-projects", Scope{Name: "read:projects", Default: true})
	r.PutScope("write-projects", Scope{Name: "write:projects", AllowedNamespaces: []string{"payments"}})
	r.PutUser(User{Source: "alice", Username: "alice", Email: "alice@example.com"})

	snap := r.Snapshot()
	sc, ok := snap.Scope("read:projects")
	require.True(t, ok)
	assert.True(t, sc.Default)
	assert.True(t, sc.AllowsNamespace("anything"))
	w, _ := snap.Scope("write:projects")
	assert.True(t, w.AllowsNamespace("payments"))
	assert.False(t, w.AllowsNamespace("default"))
	names := []string{}
	for _, s := range snap.Scopes() {
		names = append(names, s.Name)
	}
	assert.Equal(t, []string{"read:projects", "write:projects"}, names)
	u, ok := snap.User("alice")
	require.True(t, ok)
	assert.Equal(t, "alice@example.com", u.Email)

	r.DeleteScope("read-projects")
	r.DeleteUser("alice")
	_, ok = r.Snapshot().Scope("read:projects")
	assert.False(t, ok)
	_, ok = r.Snapshot().User("alice")
	assert.False(t, ok)
}

func TestCheckSecret(t *testing.T) {
	c := client("a/x", "x", t0)
	assert.True(t, c.CheckSecret("s-a/x"))
	assert.False(t, c.CheckSecret("s-a/y"))
	assert.False(t, c.CheckSecret(""))
	c.HasSecret = false
	assert.False(t, c.CheckSecret("s-a/x"), "a client without a known secret never authenticates")
}

func BenchmarkSnapshotClientLookup(b *testing.B) {
	r := New()
	ids := make([]string, 10000)
	for i := range ids {
		ids[i] = "c" + strconv.Itoa(i)
		r.PutClient(client("ns/"+ids[i], ids[i], t0))
	}
	snap := r.Snapshot()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, ok := snap.Client(ids[i%len(ids)]); !ok {
			b.Fatal("missing")
		}
	}
}

func TestUsersBySubject(t *testing.T) {
	tests := []struct {
		name    string
		ops     func(r *Registry)
		subject string
		want    string // email of the user found, "" for none
	}{
		{
			name:    "a user is found by its subject",
			ops:     func(r *Registry) { r.PutUser(User{Source: "alice", Subject: "s1", Username: "alice", Email: "a1"}) },
			subject: "s1", want: "a1",
		},
		{
			name: "a user re-created under the same username is not found by the old subject",
			ops: func(r *Registry) {
				r.PutUser(User{Source: "alice", Subject: "s1", Username: "alice", Email: "a1"})
				r.DeleteUser("alice")
				r.PutUser(User{Source: "alice", Subject: "s2", Username: "alice", Email: "a2"})
			},
			subject: "s1",
		},
		{
			name: "the re-created user is found by its new subject",
			ops: func(r *Registry) {
				r.PutUser(User{Source: "alice", Subject: "s1", Username: "alice", Email: "a1"})
				r.DeleteUser("alice")
				r.PutUser(User{Source: "alice", Subject: "s2", Username: "alice", Email: "a2"})
			},
			subject: "s2", want: "a2",
		},
		{
			name:    "a user is not found by its username as a subject",
			ops:     func(r *Registry) { r.PutUser(User{Source: "alice", Subject: "s1", Username: "alice"}) },
			subject: "alice",
		},
		{
			name:    "an empty subject finds no user, not even one without a subject",
			ops:     func(r *Registry) { r.PutUser(User{Source: "alice", Username: "alice"}) },
			subject: "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := New()
			tt.ops(r)
			u, ok := r.Snapshot().UserBySubject(tt.subject)
			if tt.want == "" {
				assert.False(t, ok)
				return
			}
			require.True(t, ok)
			assert.Equal(t, tt.want, u.Email)
		})
	}
}

func TestClientsListsTheServedClientOfEachID(t *testing.T) {
	r := New()
	r.PutClient(client("b/x", "x", t0))
	r.PutClient(client("a/x", "x", t0.Add(time.Second)))
	r.PutClient(client("a/y", "y", t0))
	var got []string
	for c := range r.Snapshot().Clients() {
		got = append(got, c.Source)
	}
	assert.ElementsMatch(t, []string{"b/x", "a/y"}, got)
}

func TestAWorkloadIdentityIsHeldOnlyByAClientTheIssuerAllows(t *testing.T) {
	r := New()
	bound := func(src, ns string, created time.Time) Client {
		return Client{Source: src, Namespace: ns, ID: src, Created: created, Type: Confidential,
			AuthMethod: AuthMethodServiceAccountToken, WorkloadIssuer: "ci", WorkloadSubject: "repo:example/app"}
	}
	t0 := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	squatter := bound("other/squat", "other", t0)
	legit := bound("ci/deploy", "ci", t0.Add(time.Minute))
	r.PutClient(squatter)
	r.PutClient(legit)
	holder := func() string {
		c, ok := r.Snapshot().SubjectHolder("ci", "repo:example/app")
		if !ok {
			return ""
		}
		return c.Source
	}
	assert.Empty(t, holder(), "without the issuer nobody holds the pair")
	r.PutWorkloadIssuer(WorkloadIssuer{Name: "ci", AllowedNamespaces: []string{"ci"}})
	assert.Equal(t, "ci/deploy", holder(), "the earlier client of a namespace the issuer does not allow does not hold it")
	r.PutWorkloadIssuer(WorkloadIssuer{Name: "ci", AllowedNamespaces: []string{"*"}})
	assert.Equal(t, "other/squat", holder(), "once allowed, the earlier client holds it")
	r.DeleteWorkloadIssuer("ci")
	assert.Empty(t, holder())
	sa := Client{Source: "ns/a", Namespace: "ns", ID: "a", AuthMethod: AuthMethodServiceAccountToken, ServiceAccount: "worker"}
	r.PutClient(sa)
	c, ok := r.Snapshot().SubjectHolder(LocalIssuer, "system:serviceaccount:ns:worker")
	require.True(t, ok, "a ServiceAccount client needs no issuer")
	assert.Equal(t, "ns/a", c.Source)
}
