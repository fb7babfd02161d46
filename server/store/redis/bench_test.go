package redis

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/harness"
	"github.com/latchkey-dev/latchkey/server/store"
)

func key(i uint64) store.Hash {
	var h store.Hash
	binary.LittleEndian.PutUint64(h[:], i)
	binary.LittleEndian.PutUint64(h[8:], i*0x9e3779b97f4a7c15)
	return h
}

func benchStore(b *testing.B) (*Store, *harness.RoundTrips) {
	srv := harness.NewRedis(b)
	s := newStore(b, srv, false)
	if err := s.LoadScripts(context.Background()); err != nil {
		b.Fatal(err)
	}
	rt := &harness.RoundTrips{}
	s.Client().AddHook(rt)
	return s, rt
}

func BenchmarkTakeCode(b *testing.B) {
	ctx := context.Background()
	s, rt := benchStore(b)
	c := store.Code{ClientID: "client", RedirectURI: "https://app.example.com/cb", Subject: "alice",
		Scopes: []string{"openid", "profile"}, FamilyID: "AAAAAAAAAAAAAAAAAAAAAA", AuthTime: time.Now()}
	for i := range b.N {
		if err := s.PutCode(ctx, key(uint64(i)), c, time.Minute); err != nil {
			b.Fatal(err)
		}
	}
	rt.Reset()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := s.TakeCode(ctx, key(uint64(i)), "client"); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(rt.Count())/float64(b.N), "roundtrips/op")
}

func BenchmarkRotateRefresh(b *testing.B) {
	ctx := context.Background()
	s, rt := benchStore(b)
	now := time.Now()
	next := store.RefreshToken{FamilyID: "AAAAAAAAAAAAAAAAAAAAAA", ClientID: "client", Subject: "alice",
		Scopes: []string{"openid", "offline_access"}, AuthTime: now, IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := s.CreateRefresh(ctx, key(0), next); err != nil {
		b.Fatal(err)
	}
	rt.Reset()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := s.RotateRefresh(ctx, key(uint64(i)), key(uint64(i+1)), next, nil, time.Minute); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(rt.Count())/float64(b.N), "roundtrips/op")
}
