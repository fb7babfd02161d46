package registry

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// named returns the sources of the clients ClientsNamed yields for key, sorted.
func named(t *testing.T, r *Registry, key string) []string {
	t.Helper()
	clients, ok := r.Snapshot().ClientsNamed(key)
	if !ok {
		t.Fatal("no name index")
	}
	var out []string
	for c := range clients {
		out = append(out, c.Source)
	}
	slices.Sort(out)
	return out
}

func TestClientsNamed(t *testing.T) {
	withName := func(source, id, display string, created time.Time) Client {
		c := client(source, id, created)
		c.DisplayName = display
		return c
	}
	tests := []struct {
		name string
		ops  func(r *Registry)
		key  string
		want []string
	}{
		{"clients are found by the key of their display name", func(r *Registry) {
			r.PutClient(withName("a/a", "alpha", "Billing", t0))
			r.PutClient(withName("a/b", "beta", "BILLING", t0))
			r.PutClient(withName("a/c", "gamma", "Payroll", t0))
		}, "billing", []string{"a/a", "a/b"}},
		{"and by the key of their client ID", func(r *Registry) {
			r.PutClient(withName("a/a", "Alpha", "Billing", t0))
		}, "alpha", []string{"a/a"}},
		{"a client whose name and ID have one key is found once", func(r *Registry) {
			r.PutClient(withName("a/a", "billing", "Billing", t0))
		}, "billing", []string{"a/a"}},
		{"a replaced display name is found under its new key only", func(r *Registry) {
			r.PutClient(withName("a/a", "alpha", "Billing", t0))
			r.PutClient(withName("a/a", "alpha", "Payroll", t0))
		}, "billing", nil},
		{"a deleted client is not found", func(r *Registry) {
			r.PutClient(withName("a/a", "alpha", "Billing", t0))
			r.DeleteClient("a/a")
		}, "alpha", nil},
		{"of two clients that claim one ID only the one served is found", func(r *Registry) {
			r.PutClient(withName("a/first", "shared", "Billing", t0))
			r.PutClient(withName("a/later", "shared", "Billing", t0.Add(time.Second)))
		}, "billing", []string{"a/first"}},
		{"the later claimant is found once the first is deleted", func(r *Registry) {
			r.PutClient(withName("a/first", "shared", "Billing", t0))
			r.PutClient(withName("a/later", "shared", "Billing", t0.Add(time.Second)))
			r.DeleteClient("a/first")
		}, "billing", []string{"a/later"}},
		{"an empty name is not indexed", func(r *Registry) {
			r.PutClient(withName("a/a", "alpha", "", t0))
		}, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := New(WithClientNameIndex(strings.ToLower))
			tt.ops(r)
			assert.Equal(t, tt.want, named(t, r, tt.key))
		})
	}
	t.Run("a registry without the option has no name index", func(t *testing.T) {
		r := New()
		r.PutClient(withName("a/a", "alpha", "Billing", t0))
		_, ok := r.Snapshot().ClientsNamed("billing")
		assert.False(t, ok)
	})
	t.Run("the index survives a compaction", func(t *testing.T) {
		r := New(WithClientNameIndex(strings.ToLower))
		r.PutClient(withName("a/a", "alpha", "Billing", t0))
		for range compactAfter + 1 {
			r.PutClient(withName("a/b", "beta", "Payroll", t0))
		}
		assert.Equal(t, []string{"a/a"}, named(t, r, "billing"))
		assert.Equal(t, []string{"a/b"}, named(t, r, "payroll"))
	})
}
