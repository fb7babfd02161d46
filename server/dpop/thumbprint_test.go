package dpop

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestValidThumbprint(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   string
		want bool
	}{
		{"a base64url SHA-256 thumbprint is valid", "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs", true},
		{"padding is refused", "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs=", false},
		{"standard base64 is refused", "NzbLsXh8uDCcd+6MNwXF4W/7noWXFZAfHkxZsRGC9Xs", false},
		{"a shorter value is refused", "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9X", false},
		{"non-zero trailing bits are refused", "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xt", false},
		{"a line break (which base64 decoders skip) is refused", "NzbLsXh8uDCcd-6MNwXF4W_7no\nWXFZAfHkxZsRGC9Xs", false},
		{"empty is refused", "", false},
	} {
		t.Run(tt.name, func(t *testing.T) { assert.Equal(t, tt.want, ValidThumbprint(tt.in)) })
	}
}
