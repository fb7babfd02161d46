package oauth2

import (
	"errors"
	"net/url"
	"strings"
	"testing"

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

func TestAllowedResourcesAreTheClientsAudiences(t *testing.T) {
	c := &registry.Client{ID: "c", Audiences: []string{"https://a/"}}
	got, err := AllowedResources(c, []string{"https://a/"})
	require.NoError(t, err)
	assert.Equal(t, []string{"https://a/"}, got)
	_, err = AllowedResources(c, []string{"https://a"})
	require.ErrorIs(t, err, ErrInvalidTarget)
	_, err = AllowedResources(&registry.Client{ID: "c"}, []string{"https://a/"})
	require.ErrorIs(t, err, ErrInvalidTarget, "a client without audiences reaches no resource")
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
