package registry

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

const (
	spaOrigin   = "https://spa.example"
	otherOrigin = "http://127.0.0.1:3000"
)

func publicClient(source, id string, created time.Time, origins ...string) Client {
	return Client{Source: source, ID: id, Created: created, Type: Public, AuthMethod: "none", AllowedOrigins: origins}
}

func TestAllowedOrigins(t *testing.T) {
	confidentialWithOrigins := client("a/conf", "conf", t0)
	confidentialWithOrigins.AllowedOrigins = []string{spaOrigin}
	tests := []struct {
		name        string
		ops         func(r *Registry)
		allowed     []string
		notAllowed  []string
		unchangedBy func(r *Registry) // when set: a write after ops that must leave the index's map as it was
	}{
		{
			name:    "a public client's origins are allowed",
			ops:     func(r *Registry) { r.PutClient(publicClient("a/spa", "spa", t0, spaOrigin, otherOrigin)) },
			allowed: []string{spaOrigin, otherOrigin}, notAllowed: []string{"https://other.example", "", "null"},
		},
		{
			name:       "origins are compared byte for byte",
			ops:        func(r *Registry) { r.PutClient(publicClient("a/spa", "spa", t0, spaOrigin)) },
			notAllowed: []string{"https://SPA.example", spaOrigin + "/", spaOrigin + ":443", "http://spa.example"},
		},
		{
			name:       "a confidential client's origins are never allowed",
			ops:        func(r *Registry) { r.PutClient(confidentialWithOrigins) },
			notAllowed: []string{spaOrigin},
		},
		{
			name: "a client that becomes confidential takes its origins away",
			ops: func(r *Registry) {
				r.PutClient(publicClient("a/spa", "spa", t0, spaOrigin))
				c := publicClient("a/spa", "spa", t0, spaOrigin)
				c.Type = Confidential
				r.PutClient(c)
			},
			notAllowed: []string{spaOrigin},
		},
		{
			name: "a deleted client's origins are no longer allowed",
			ops: func(r *Registry) {
				r.PutClient(publicClient("a/spa", "spa", t0, spaOrigin))
				r.DeleteClient("a/spa")
			},
			notAllowed: []string{spaOrigin},
		},
		{
			name: "an updated client allows its new origins only",
			ops: func(r *Registry) {
				r.PutClient(publicClient("a/spa", "spa", t0, spaOrigin))
				r.PutClient(publicClient("a/spa", "spa", t0, otherOrigin))
			},
			allowed: []string{otherOrigin}, notAllowed: []string{spaOrigin},
		},
		{
			name: "an origin two clients list stays allowed while one of them does",
			ops: func(r *Registry) {
				r.PutClient(publicClient("a/one", "one", t0, spaOrigin))
				r.PutClient(publicClient("a/two", "two", t0, spaOrigin))
				r.DeleteClient("a/one")
			},
			allowed: []string{spaOrigin},
		},
		{
			name: "the client that loses a client ID conflict allows nothing",
			ops: func(r *Registry) {
				r.PutClient(publicClient("a/spa", "spa", t0, spaOrigin))
				r.PutClient(publicClient("b/spa", "spa", t0.Add(time.Second), otherOrigin))
			},
			allowed: []string{spaOrigin}, notAllowed: []string{otherOrigin},
		},
		{
			name: "the winner's deletion hands the ID, and its origins, to the other claimant",
			ops: func(r *Registry) {
				r.PutClient(publicClient("a/spa", "spa", t0, spaOrigin))
				r.PutClient(publicClient("b/spa", "spa", t0.Add(time.Second), otherOrigin))
				r.DeleteClient("a/spa")
			},
			allowed: []string{otherOrigin}, notAllowed: []string{spaOrigin},
		},
		{
			name: "a client that changes its ID keeps its origins under the new one",
			ops: func(r *Registry) {
				r.PutClient(publicClient("a/spa", "spa", t0, spaOrigin))
				r.PutClient(publicClient("a/spa", "spa2", t0, spaOrigin))
			},
			allowed: []string{spaOrigin},
		},
		{
			name:    "writing a client without origins leaves the origin index as it was",
			ops:     func(r *Registry) { r.PutClient(publicClient("a/spa", "spa", t0, spaOrigin)) },
			allowed: []string{spaOrigin},
			unchangedBy: func(r *Registry) {
				r.PutClient(client("a/conf", "conf", t0))
				r.DeleteClient("a/conf")
				r.PutUser(User{Source: "alice", Username: "alice"})
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := New()
			tt.ops(r)
			snap := r.Snapshot()
			for _, o := range tt.allowed {
				assert.True(t, snap.AllowsOrigin(o), "%q is allowed", o)
			}
			for _, o := range tt.notAllowed {
				assert.False(t, snap.AllowsOrigin(o), "%q is not allowed", o)
			}
			if tt.unchangedBy != nil {
				tt.unchangedBy(r)
				assert.Same(t, snap.origins.shards, r.Snapshot().origins.shards,
					"the origin index was not copied")
			}
		})
	}
}

// TestTheOriginIndexAgreesWithAScanOfTheClients writes random clients (public and
// confidential, with conflicting IDs, changing IDs and deletions) and compares AllowsOrigin
// with a scan of the clients each snapshot serves, after every write.
func TestTheOriginIndexAgreesWithAScanOfTheClients(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	origins := []string{"https://a.example", "https://b.example", "http://localhost:3000", "http://127.0.0.1:8080"}
	sources := []string{"n/1", "n/2", "n/3", "m/1", "m/2"}
	ids := []string{"x", "y", "z"}
	r := New()
	for i := range 2000 {
		src := sources[rng.IntN(len(sources))]
		if rng.IntN(4) == 0 {
			r.DeleteClient(src)
		} else {
			var picked []string
			for _, o := range origins {
				if rng.IntN(3) == 0 {
					picked = append(picked, o)
				}
			}
			c := publicClient(src, ids[rng.IntN(len(ids))], t0.Add(time.Duration(rng.IntN(3))*time.Second), picked...)
			if rng.IntN(3) == 0 {
				c.Type = Confidential
			}
			r.PutClient(c)
		}
		snap := r.Snapshot()
		for _, o := range origins {
			want := false
			for c := range snap.Clients() {
				want = want || (c.Type == Public && slices.Contains(c.AllowedOrigins, o))
			}
			if snap.AllowsOrigin(o) != want {
				t.Fatalf("after write %d: AllowsOrigin(%q) = %v, a scan says %v", i, o, !want, want)
			}
		}
	}
}
