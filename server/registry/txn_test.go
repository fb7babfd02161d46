package registry

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTheIndexesAgreeWithAScan writes random clients, users, scopes and issuers (contested
// names, changing names, deletions, in batches and one by one) and compares every index with a
// scan of the values after each publish.
func TestTheIndexesAgreeWithAScan(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	sources := []string{"n/1", "n/2", "n/3", "m/1", "m/2", "m/3"}
	names := []string{"x", "y", "z"}
	issuers := []string{"ci", "cloud"}
	created := func() time.Time { return t0.Add(time.Duration(rng.IntN(3)) * time.Second) }
	r := New()
	for i := range 3000 {
		r.Update(func(tx *Txn) {
			for range 1 + rng.IntN(3) {
				src := sources[rng.IntN(len(sources))]
				switch rng.IntN(8) {
				case 0:
					tx.DeleteClient(src)
				case 1:
					tx.DeleteUser(src)
				case 2:
					tx.DeleteScope(src)
				case 3:
					if rng.IntN(2) == 0 {
						tx.DeleteWorkloadIssuer(issuers[rng.IntN(2)])
					} else {
						tx.PutWorkloadIssuer(WorkloadIssuer{Name: issuers[rng.IntN(2)], AllowedNamespaces: []string{"n"}})
					}
				case 4:
					tx.PutUser(User{Source: src, Username: names[rng.IntN(3)], Subject: "uid-" + names[rng.IntN(3)], Created: created()})
				case 5:
					tx.PutScope(src, Scope{Name: names[rng.IntN(3)], Created: created()})
				default:
					c := client(src, names[rng.IntN(3)], created())
					c.Namespace = src[:1]
					c.AuthMethod = AuthMethodServiceAccountToken
					if rng.IntN(2) == 0 {
						c.ServiceAccount = names[rng.IntN(3)]
					} else {
						c.WorkloadIssuer, c.WorkloadSubject = issuers[rng.IntN(2)], names[rng.IntN(3)]
					}
					tx.PutClient(c)
				}
			}
		})
		if err := agreesWithAScan(r.Snapshot(), names, issuers); err != nil {
			t.Fatalf("after publish %d: %v", i, err)
		}
	}
}

// agreesWithAScan compares the snapshot's indexes with what a scan of its values decides.
func agreesWithAScan(s *Snapshot, names, issuers []string) error {
	var clients []*Client
	for _, c := range s.clients.all() {
		clients = append(clients, c)
	}
	for _, name := range names {
		var want *Client
		for _, c := range clients {
			if c.ID == name && (want == nil || Wins(c, want)) {
				want = c
			}
		}
		if got, _ := s.Client(name); got != want {
			return fmt.Errorf("client ID %q: holder %v, a scan says %v", name, got, want)
		}
		for _, iss := range append([]string{LocalIssuer}, issuers...) {
			subject := name
			if iss == LocalIssuer {
				subject = ServiceAccountSubject("n", name)
			}
			var want *Client
			for _, c := range clients {
				i, sub, ok := c.WorkloadSubjectKey()
				if ok && i == iss && sub == subject && mayBind(s, c) && (want == nil || Wins(c, want)) {
					want = c
				}
			}
			if got, _ := s.SubjectHolder(iss, subject); got != want {
				return fmt.Errorf("subject %s %s: holder %v, a scan says %v", iss, subject, got, want)
			}
		}
		var user *User
		for _, u := range s.users.all() {
			if u.Username == name && (user == nil || Precedes(u.Created, u.Source, user.Created, user.Source)) {
				user = u
			}
		}
		if got, _ := s.User(name); got != user {
			return fmt.Errorf("username %q: holder %v, a scan says %v", name, got, user)
		}
		var scope *Scope
		var scopeSource string
		for src, e := range s.scopes.all() {
			if e.scope.Name == name && (scope == nil || Precedes(e.scope.Created, src, scope.Created, scopeSource)) {
				scope, scopeSource = &e.scope, src
			}
		}
		if got, _ := s.Scope(name); got != scope {
			return fmt.Errorf("scope %q: holder %v, a scan says %v", name, got, scope)
		}
	}
	return nil
}

func TestUpdate(t *testing.T) {
	t.Run("the writes of one update are published together", func(t *testing.T) {
		r := New()
		before := r.Snapshot()
		r.Update(func(tx *Txn) {
			tx.PutClient(client("a/x", "x", t0))
			tx.PutClient(client("a/y", "y", t0))
			tx.DeleteClient("a/x")
			assert.Same(t, before, r.Snapshot(), "nothing is published while the update runs")
		})
		_, hasX := r.Snapshot().Client("x")
		_, hasY := r.Snapshot().Client("y")
		assert.False(t, hasX, "x was put and deleted in the update")
		assert.True(t, hasY)
		n, _, _ := before.Counts()
		assert.Zero(t, n, "the earlier snapshot did not change")
	})
	t.Run("concurrent writers each return once their write is published", func(t *testing.T) {
		r := New()
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Go(func() {
				for i := range 200 {
					id := strconv.Itoa(w) + "-" + strconv.Itoa(i)
					r.PutClient(client("ns/"+id, id, t0))
					_, ok := r.Snapshot().Client(id)
					assert.True(t, ok, "client %s is served once PutClient returns", id)
				}
			})
		}
		wg.Wait()
		n, _, _ := r.Snapshot().Counts()
		assert.Equal(t, 8*200, n)
	})
	t.Run("a write copies the shards it changes, not the others", func(t *testing.T) {
		r := New()
		r.Update(func(tx *Txn) {
			for i := range 5000 {
				tx.PutClient(client("ns/"+strconv.Itoa(i), strconv.Itoa(i), t0))
			}
		})
		before := r.Snapshot()
		r.PutClient(client("ns/new", "new", t0))
		after := r.Snapshot()
		same := 0
		for i := range shardCount {
			if fmt.Sprintf("%p", before.byID.holder.shards[i]) == fmt.Sprintf("%p", after.byID.holder.shards[i]) {
				same++
			}
		}
		assert.Equal(t, shardCount-1, same, "one shard of the client ID index was copied")
	})
}

// typicalClient is a client as a generated folder holds them: a confidential client_credentials
// client of one of a few namespaces, with the scopes and audience its namespace's clients share.
func typicalClient(i int) Client {
	ns := "team-" + strconv.Itoa(i%50)
	name := "svc-" + strconv.Itoa(i)
	return Client{
		Source: ns + "/" + name, Namespace: ns, Created: t0.Add(time.Duration(i)), ID: name + "." + ns,
		Type: Confidential, GrantTypes: []string{"client_credentials"},
		Scopes: []string{"read:projects", "write:projects"}, Audiences: []string{"https://api.example.com"},
		AuthMethod: "client_secret_basic", SecretHash: HashSecret([]byte("secret-" + name)), HasSecret: true,
		PKCE: "RequiredS256", Consent: "Always",
	}
}

// BenchmarkMemoryPerClient loads n typical clients in one update and reports the heap they take
// per client (runtime.MemStats after a GC), as bytes/client:
// go test -run '^$' -bench MemoryPerClient -benchtime 1x ./server/registry/
func BenchmarkMemoryPerClient(b *testing.B) {
	for _, n := range []int{1_000, 100_000, 1_000_000} {
		b.Run(strconv.Itoa(n)+"_clients", func(b *testing.B) {
			var perClient float64
			for b.Loop() {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				r := New()
				r.Update(func(tx *Txn) {
					for i := range n {
						tx.PutClient(typicalClient(i)) // its strings are the registry's; its lists garbage
					}
				})
				runtime.GC()
				runtime.ReadMemStats(&after)
				got, _, _ := r.Snapshot().Counts()
				require.Equal(b, n, got)
				perClient = float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(n)
				runtime.KeepAlive(r)
			}
			b.ReportMetric(perClient, "bytes/client")
		})
	}
}

// BenchmarkPutClient replaces one client of a registry of n: the cost of one publish, which
// grows with the shard a write copies (n/1024 entries), not with n.
func BenchmarkPutClient(b *testing.B) {
	for _, n := range []int{1_000, 100_000, 1_000_000} {
		b.Run(strconv.Itoa(n)+" clients", func(b *testing.B) {
			r := New()
			r.Update(func(tx *Txn) {
				for i := range n {
					tx.PutClient(typicalClient(i))
				}
			})
			c := typicalClient(n / 2)
			for b.Loop() {
				r.PutClient(c)
			}
		})
	}
}

// BenchmarkClientLookup looks a client up by its client ID in a registry of n clients.
func BenchmarkClientLookup(b *testing.B) {
	for _, n := range []int{1_000, 1_000_000} {
		b.Run(strconv.Itoa(n)+" clients", func(b *testing.B) {
			r := New()
			ids := make([]string, n)
			r.Update(func(tx *Txn) {
				for i := range n {
					c := typicalClient(i)
					ids[i] = c.ID
					tx.PutClient(c)
				}
			})
			snap := r.Snapshot()
			i := 0
			for b.Loop() {
				if _, ok := snap.Client(ids[i]); !ok {
					b.Fatal("not found")
				}
				i = (i + 7919) % n
			}
		})
	}
}

func TestAnUpdateThatPanics(t *testing.T) {
	r := New()
	assert.Panics(t, func() {
		r.Update(func(tx *Txn) {
			tx.PutClient(client("a/x", "x", t0))
			panic("boom")
		})
	})
	_, ok := r.Snapshot().Client("x")
	assert.False(t, ok, "its writes are dropped")
	done := make(chan struct{})
	go func() { r.PutClient(client("a/y", "y", t0)); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a later write is blocked")
	}
	_, ok = r.Snapshot().Client("y")
	assert.True(t, ok, "a later write is published")
}

func TestABulkUpdateServesEveryClientAsGiven(t *testing.T) {
	r := New()
	const n = 3 * compactAfter
	r.Update(func(tx *Txn) {
		for i := range n {
			tx.PutClient(typicalClient(i))
		}
	})
	first := r.Snapshot()
	r.Update(func(tx *Txn) {
		for i := range n {
			if i%2 == 0 {
				tx.DeleteClient(typicalClient(i).Source)
			}
		}
	})
	for i := range n {
		want := typicalClient(i)
		got, ok := first.Client(want.ID)
		require.True(t, ok, "client %d is in the first snapshot", i)
		assert.Equal(t, want, *got)
		_, ok = r.Snapshot().Client(want.ID)
		assert.Equal(t, i%2 == 1, ok, "client %d is in the second snapshot unless deleted", i)
	}
}

func TestStaleClientsAreCompactedAway(t *testing.T) {
	r := New()
	const n = 2 * compactAfter
	for i := range n {
		r.PutClient(typicalClient(i))
	}
	for i := range n { // each replacement leaves a stale value; half of n of them compact
		c := typicalClient(i)
		c.DisplayName = "second"
		r.PutClient(c)
	}
	assert.Less(t, r.in.stale, max(compactAfter, n/2), "the registry compacted")
	for i := range n {
		c, ok := r.Snapshot().Client(typicalClient(i).ID)
		require.True(t, ok)
		assert.Equal(t, "second", c.DisplayName)
	}
	require.NoError(t, agreesWithAScan(r.Snapshot(), []string{typicalClient(0).ID, typicalClient(n - 1).ID}, nil))
}
