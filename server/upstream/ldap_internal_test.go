package upstream

import (
	"testing"

	"github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestUIDFilterFindsTextAndBinaryValues(t *testing.T) {
	tests := []struct{ name, uid, want string }{
		{"an entryUUID is matched as text", "3f2a-11", `(entryUUID=3f2a-11)`},
		{"a hex value is matched as text or as the bytes it encodes", "0aff", `(|(entryUUID=0aff)(entryUUID=\0a\ff))`},
		{"filter syntax in a value is escaped", "a*)(b", `(entryUUID=a\2a\29\28b)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := uidFilter("entryUUID", tt.uid)
			assert.Equal(t, tt.want, got)
			_, err := ldap.CompileFilter(got)
			require.NoError(t, err)
		})
	}
}
