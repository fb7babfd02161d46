package oauth2

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/server/registry"
)

func TestParseResources(t *testing.T) {
	tests := []struct {
		name   string
		values []string
		want   []string
		ok     bool
	}{
		{name: "no value is no resource", values: nil, want: nil, ok: true},
		{name: "an empty value counts as omitted", values: []string{""}, want: nil, ok: true},
		{name: "an https URI is a resource", values: []string{"https://api.example/"}, want: []string{"https://api.example/"}, ok: true},
		{name: "a URN is an absolute URI", values: []string{"urn:example:api"}, want: []string{"urn:example:api"}, ok: true},
		{name: "a repeated value counts once", values: []string{"https://a/", "https://a/"}, want: []string{"https://a/"}, ok: true},
		{name: "a relative reference is refused", values: []string{"/api"}},
		{name: "a host without scheme is refused", values: []string{"api.example"}},
		{name: "a fragment is refused", values: []string{"https://api.example/#x"}},
		{name: "an empty fragment is refused", values: []string{"https://api.example/#"}},
		{name: "a malformed URI is refused", values: []string{"https://api.example/%zz"}},
		{name: "an oversized value is refused", values: []string{"https://a/" + strings.Repeat("a", MaxResourceLength)}},
		{name: "more than the bound of distinct values is refused", values: strings.Fields(
			"https://1 https://2 https://3 https://4 https://5 https://6 https://7 https://8 https://9")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseResources(tt.values)
			if !tt.ok {
				require.ErrorIs(t, err, ErrInvalidTarget)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestNarrowResources(t *testing.T) {
	a, b := "https://a/", "https://b/"
	tests := []struct {
		name               string
		granted, requested []string
		want               []string
		ok                 bool
	}{
		{name: "no request keeps the granted resources", granted: []string{a, b}, want: []string{a, b}, ok: true},
		{name: "a subset narrows", granted: []string{a, b}, requested: []string{b}, want: []string{b}, ok: true},
		{name: "a grant without resources takes any checked request", requested: []string{b}, want: []string{b}, ok: true},
		{name: "a resource not granted widens and is refused", granted: []string{a}, requested: []string{a, b}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NarrowResources(tt.granted, tt.requested)
			if !tt.ok {
				require.ErrorIs(t, err, ErrInvalidTarget)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

// resourcesSnapshot holds the ProtectedResources of the resource tests: payments (owns
// payments:read and payments:write, allows ns/app), ledger (owns ledger:read, allows ns/app),
// open (owns no scopes, allows ns/app), and a later payments-2 that claims payments' audience
// and allows ns/other (it does not hold it).
func resourcesSnapshot() *registry.Snapshot {
	t0 := time.Unix(1_700_000_000, 0)
	r := registry.New()
	r.Update(func(tx *registry.Txn) {
		tx.PutProtectedResource(registry.ProtectedResource{Source: "ns/payments", Created: t0, Audience: "https://payments/",
			Scopes: []string{"payments:read", "payments:write"}, AllowedClients: []string{"ns/app"}})
		tx.PutProtectedResource(registry.ProtectedResource{Source: "ns/ledger", Created: t0, Audience: "https://ledger/",
			Scopes: []string{"ledger:read"}, AllowedClients: []string{"ns/app"}})
		tx.PutProtectedResource(registry.ProtectedResource{Source: "ns/open", Created: t0, Audience: "https://open/",
			AllowedClients: []string{"ns/app"}})
		tx.PutProtectedResource(registry.ProtectedResource{Source: "ns/payments-2", Created: t0.Add(time.Second), Audience: "https://payments/",
			AllowedClients: []string{"ns/other"}})
	})
	return r.Snapshot()
}

func TestAllowedResources(t *testing.T) {
	snap := resourcesSnapshot()
	app := &registry.Client{ID: "app", Source: "ns/app", Audiences: []string{"https://a/"}}
	other := &registry.Client{ID: "other", Source: "ns/other"}
	tests := []struct {
		name      string
		client    *registry.Client
		requested []string
		ok        bool
	}{
		{"a client reaches its own audience", app, []string{"https://a/"}, true},
		{"an audience must match exactly", app, []string{"https://a"}, false},
		{"a client without audiences reaches no plain audience", other, []string{"https://a/"}, false},
		{"a client reaches a protected resource that allows it", app, []string{"https://payments/"}, true},
		{"a client reaches its audience and protected resources together", app, []string{"https://a/", "https://payments/", "https://open/"}, true},
		{"a client not allowed by the protected resource is refused", other, []string{"https://ledger/"}, false},
		{"only the holder of an audience decides, not a later resource claiming it", other, []string{"https://payments/"}, false},
		{"one unreachable resource refuses the whole request", app, []string{"https://payments/", "https://unknown/"}, false},
		{"no resource requested is allowed and yields nil", other, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := AllowedResources(snap, tt.client, tt.requested)
			if !tt.ok {
				require.ErrorIs(t, err, ErrInvalidTarget)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.requested, got)
		})
	}
}

func TestResourceScopes(t *testing.T) {
	snap := resourcesSnapshot()
	all := []string{"openid", "offline_access", "payments:read", "payments:write", "ledger:read", "admin"}
	tests := []struct {
		name              string
		resources, scopes []string
		want              []string
	}{
		{"without resources the scopes are unchanged", nil, all, all},
		{"one resource that owns scopes keeps its scopes and the OIDC ones",
			[]string{"https://payments/"}, all, []string{"openid", "offline_access", "payments:read", "payments:write"}},
		{"two resources that own scopes keep the union of theirs",
			[]string{"https://payments/", "https://ledger/"}, all, []string{"openid", "offline_access", "payments:read", "payments:write", "ledger:read"}},
		{"a resource that owns no scopes keeps every scope", []string{"https://payments/", "https://open/"}, all, all},
		{"a plain client audience among the resources keeps every scope", []string{"https://payments/", "https://a/"}, all, all},
		{"a scope the resource owns but that was not granted is not added",
			[]string{"https://payments/"}, []string{"payments:read"}, []string{"payments:read"}},
		{"a token whose scopes the resource does not own keeps only OIDC scopes",
			[]string{"https://ledger/"}, []string{"openid", "admin"}, []string{"openid"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, ResourceScopes(snap, tt.resources, tt.scopes))
		})
	}
}

func TestTargetRefusesBeforeNarrowing(t *testing.T) {
	snap := resourcesSnapshot()
	app := &registry.Client{ID: "app", Source: "ns/app"}
	res, scopes, err := Target(snap, app, []string{"https://ledger/"}, []string{"ledger:read", "admin"})
	require.NoError(t, err)
	assert.Equal(t, []string{"https://ledger/"}, res)
	assert.Equal(t, []string{"ledger:read"}, scopes)
	_, _, err = Target(snap, &registry.Client{ID: "x", Source: "ns/x"}, []string{"https://ledger/"}, nil)
	require.ErrorIs(t, err, ErrInvalidTarget)
}

func TestInvalidTargetIsItsOwnError(t *testing.T) {
	err := ErrInvalidTarget.WithDescription("x")
	assert.ErrorIs(t, err, ErrInvalidTarget)
	assert.NotErrorIs(t, err, ErrInvalidRequest)
	assert.Equal(t, 400, ErrInvalidTarget.StatusCode())
}

// FuzzParseResources checks that any resource values either parse into distinct absolute URIs
// without fragment, within the bounds, or are invalid_target; never a panic.
func FuzzParseResources(f *testing.F) {
	f.Add("https://api.example/", "urn:x:y")
	f.Add("https://a/#", "")
	f.Add("/rel", "https://%zz")
	f.Add("https://a/", "https://a/")
	f.Fuzz(func(t *testing.T, a, b string) {
		got, err := ParseResources([]string{a, b})
		if err != nil {
			if !errors.Is(err, ErrInvalidTarget) {
				t.Fatalf("error %v is not invalid_target", err)
			}
			return
		}
		if len(got) > MaxResources {
			t.Fatalf("%d resources", len(got))
		}
		seen := map[string]bool{}
		for _, r := range got {
			u, perr := url.Parse(r)
			if perr != nil || !u.IsAbs() || strings.Contains(r, "#") || len(r) > MaxResourceLength || seen[r] {
				t.Fatalf("accepted %q", r)
			}
			seen[r] = true
		}
		// The token endpoint's parser agrees with ParseResources.
		body := url.Values{"grant_type": {"client_credentials"}, "resource": {a, b}}.Encode()
		req, terr := parseClientParams(FormBody, nil, []byte(body))
		if terr != nil {
			t.Fatalf("token parser refused what ParseResources accepted: %v", terr)
		}
		if len(got) != len(req.Resources) {
			t.Fatalf("token parser got %q, want %q", req.Resources, got)
		}
	})
}
