package registry

import (
	"fmt"
	"testing"
	"time"
)

func TestProtectedResources(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	aud := "https://api.example.com"
	tests := []struct {
		name   string
		writes func(tx *Txn)
		holder string // source holding aud; "" when none
	}{
		{"a resource holds its audience", func(tx *Txn) {
			tx.PutProtectedResource(ProtectedResource{Source: "a/r", Created: t0, Audience: aud})
		}, "a/r"},
		{"the earliest of two resources with one audience holds it", func(tx *Txn) {
			tx.PutProtectedResource(ProtectedResource{Source: "b/r", Created: t0.Add(time.Second), Audience: aud})
			tx.PutProtectedResource(ProtectedResource{Source: "a/r", Created: t0.Add(2 * time.Second), Audience: aud})
			tx.PutProtectedResource(ProtectedResource{Source: "c/r", Created: t0, Audience: aud})
		}, "c/r"},
		{"deleting the holder hands the audience to the next", func(tx *Txn) {
			tx.PutProtectedResource(ProtectedResource{Source: "a/r", Created: t0, Audience: aud})
			tx.PutProtectedResource(ProtectedResource{Source: "b/r", Created: t0.Add(time.Second), Audience: aud})
			tx.DeleteProtectedResource("a/r")
		}, "b/r"},
		{"changing a resource's audience releases the old one", func(tx *Txn) {
			tx.PutProtectedResource(ProtectedResource{Source: "a/r", Created: t0, Audience: aud})
			tx.PutProtectedResource(ProtectedResource{Source: "a/r", Created: t0, Audience: "https://other.example.com"})
		}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := New()
			r.Update(tc.writes)
			p, ok := r.Snapshot().ProtectedResource(aud)
			switch {
			case tc.holder == "" && ok:
				t.Fatalf("audience held by %s, want none", p.Source)
			case tc.holder != "" && (!ok || p.Source != tc.holder):
				t.Fatalf("audience held by %v (%v), want %s", p, ok, tc.holder)
			}
		})
	}
}

func TestProtectedResourcePolicy(t *testing.T) {
	p := ProtectedResource{
		AllowedClients: []string{"ns/web"},
		ExchangeRequesters: []ExchangeRequester{
			{Client: "ns/gateway", SubjectTokenSources: []string{SubjectAccessToken}},
		},
	}
	if !p.AllowsClient("ns/web") || p.AllowsClient("ns/gateway") {
		t.Fatal("AllowsClient does not follow AllowedClients")
	}
	if r, ok := p.ExchangeRequester("ns/gateway"); !ok || r.Client != "ns/gateway" {
		t.Fatal("the gateway's exchange policy is not found")
	}
	if _, ok := p.ExchangeRequester("ns/web"); ok {
		t.Fatal("a client outside the requesters has an exchange policy")
	}
}

func TestAllowsClientIsTheSameWithManyClients(t *testing.T) {
	for _, n := range []int{1, indexAllowedAbove, indexAllowedAbove + 1, 1000} {
		clients := make([]string, n)
		for i := range clients {
			clients[i] = fmt.Sprintf("ns/c%d", i)
		}
		r := New()
		r.PutProtectedResource(ProtectedResource{Source: "ns/r", Audience: "https://r", AllowedClients: clients})
		p, ok := r.Snapshot().ProtectedResource("https://r")
		if !ok {
			t.Fatal("not served")
		}
		for _, c := range []string{clients[0], clients[n-1]} {
			if !p.AllowsClient(c) {
				t.Errorf("%d clients: %s is not allowed", n, c)
			}
		}
		if p.AllowsClient("ns/other") || p.AllowsClient("") {
			t.Errorf("%d clients: an unlisted client is allowed", n)
		}
	}
}
