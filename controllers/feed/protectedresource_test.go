package feed_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
	"github.com/latchkey-dev/latchkey/controllers/convert"
	"github.com/latchkey-dev/latchkey/controllers/feed"
	"github.com/latchkey-dev/latchkey/server/registry"
)

func TestProtectedResourceDecisions(t *testing.T) {
	p := registry.ProtectedResource{Audience: "https://api.example", AllowedClients: []string{"ns/a", "ns/b"}}
	tests := []struct {
		name    string
		err     error
		unknown []string
		action  feed.Action
		reason  string
		message string
	}{
		{"a valid resource is served", nil, nil, feed.Serve, v1alpha1.ReasonReady, "allowed clients: 2"},
		{"named clients that do not exist are named, and it is served", nil, []string{"ns/ghost"}, feed.Serve, v1alpha1.ReasonReady, "ns/ghost"},
		{"an invalid spec is withdrawn", fmt.Errorf("%w: audience", convert.ErrInvalidSpec), nil, feed.Withdraw, v1alpha1.ReasonInvalidSpec, "audience"},
		{"another error is withdrawn without a reason", errors.New("boom"), nil, feed.Withdraw, "", "boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := feed.ProtectedResource(p, tt.err, tt.unknown)
			assert.Equal(t, tt.action, d.Action)
			assert.Equal(t, tt.reason, d.Reason)
			assert.Contains(t, d.Message, tt.message)
		})
	}
}

func TestResourceScopesResolved(t *testing.T) {
	defined := func(name string) bool { return name == "payments:read" }
	res := feed.ResourceScopesResolved([]string{"openid", "payments:read"}, defined)
	assert.True(t, res.Resolved, "built-in and defined scopes resolve")
	assert.Equal(t, v1alpha1.ReasonResolved, res.Reason)
	res = feed.ResourceScopesResolved([]string{"payments:read", "payments:write"}, defined)
	assert.False(t, res.Resolved)
	assert.Equal(t, v1alpha1.ReasonUnknownScope, res.Reason)
	assert.Equal(t, []string{"payments:write"}, res.Unknown)
	assert.Contains(t, res.Message, `"payments:write"`)
	c := feed.AudienceConflict("https://api.example", "ns/first")
	assert.Equal(t, v1alpha1.ReasonAudienceConflict, c.Reason)
	assert.Contains(t, c.Message, "ns/first")
}
