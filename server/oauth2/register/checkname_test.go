package register

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/latchkey-dev/latchkey/server/registry"
)

// registries are the two ways the client_name check finds names: the registry's name index
// (as main builds it when registration is on), and a scan of every client (without it).
var registries = []struct {
	name string
	opts []registry.Option
}{
	{"index", []registry.Option{registry.WithClientNameIndex(NameKey)}},
	{"scan", nil},
}

func TestCheckClientName(t *testing.T) {
	for _, r := range registries {
		reg := registry.New(r.opts...)
		reg.PutClient(registry.Client{Source: "apps/billing", Namespace: "apps", ID: "billing-app", DisplayName: "Billing  App"})
		reg.PutClient(registry.Client{Source: "apps/payroll", Namespace: "apps", ID: "Payroll"})
		e := &Endpoint{registry: reg}
		for _, tt := range []struct {
			name, clientName, self string
			refused                bool
		}{
			{"another client's display name, read alike, is refused", "ＢＩＬＬＩＮＧ app", "", true},
			{"another client's ID, read alike, is refused", "payroll", "", true},
			{"a name nobody has is allowed", "Expenses", "", false},
			{"a client's own name does not count against its update", "billing app", "billing-app", false},
			{"an empty name is not checked", " ", "", false},
		} {
			t.Run(r.name+": "+tt.name, func(t *testing.T) {
				err := e.checkClientName(tt.clientName, tt.self)
				if tt.refused {
					assert.ErrorIs(t, err, ErrInvalidClientMetadata)
				} else {
					assert.NoError(t, err)
				}
			})
		}
	}
}

// BenchmarkCheckClientName is the client_name check of one registration with n clients in the
// registry, looked up in the name index and (as before it) scanned.
func BenchmarkCheckClientName(b *testing.B) {
	for _, r := range registries {
		for _, n := range []int{1_000, 10_000, 100_000} {
			b.Run(fmt.Sprintf("%s/%d", r.name, n), func(b *testing.B) {
				reg := registry.New(r.opts...)
				reg.Update(func(tx *registry.Txn) {
					for i := range n {
						id := fmt.Sprintf("client-%07d", i)
						tx.PutClient(registry.Client{Source: "bench/" + id, Namespace: "bench", ID: id, DisplayName: "App " + id})
					}
				})
				e := &Endpoint{registry: reg}
				b.ReportAllocs()
				for b.Loop() {
					if err := e.checkClientName("A new application", ""); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkLoadWithNameIndex loads n typical registered clients (a display name each) into a
// registry in one Update, with and without the name index: what the index costs a load, in
// time and in heap per client.
func BenchmarkLoadWithNameIndex(b *testing.B) {
	for _, r := range registries {
		for _, n := range []int{100_000} {
			b.Run(fmt.Sprintf("%s/%d", r.name, n), func(b *testing.B) {
				clients := make([]registry.Client, n)
				for i := range clients {
					id := fmt.Sprintf("dyn-%016x", i)
					clients[i] = registry.Client{Source: "registered/" + id, Namespace: "registered", ID: id,
						DisplayName: fmt.Sprintf("Application number %d", i), GrantTypes: []string{"authorization_code", "refresh_token"}}
				}
				var perClient float64
				for b.Loop() {
					var before, after runtime.MemStats
					runtime.GC()
					runtime.ReadMemStats(&before)
					reg := registry.New(r.opts...)
					reg.Update(func(tx *registry.Txn) {
						for _, c := range clients {
							tx.PutClient(c)
						}
					})
					runtime.GC()
					runtime.ReadMemStats(&after)
					perClient = float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(n)
					runtime.KeepAlive(reg)
				}
				b.ReportMetric(perClient, "bytes/client")
			})
		}
	}
}
