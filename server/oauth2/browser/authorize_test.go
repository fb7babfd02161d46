package browser

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestResponseURI(t *testing.T) {
	tests := []struct {
		name, redirect, want string
	}{
		{"a plain URI gets a query", "https://a.example/cb", "https://a.example/cb?code=c&state=s&iss=https%3A%2F%2Fi.example"},
		{"a URI with a query keeps it", "https://a.example/cb?x=1", "https://a.example/cb?x=1&code=c&state=s&iss=https%3A%2F%2Fi.example"},
		{"a URI ending in ? gets no extra separator", "https://a.example/cb?", "https://a.example/cb?code=c&state=s&iss=https%3A%2F%2Fi.example"},
		{"a native app's URI works", "com.example.app:/cb", "com.example.app:/cb?code=c&state=s&iss=https%3A%2F%2Fi.example"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, responseURI(tt.redirect, "code", "c", "s", "https://i.example"))
		})
	}
	t.Run("extra parameters come before state and iss", func(t *testing.T) {
		assert.Equal(t, "https://a.example/cb?error=access_denied&error_description=No+thanks.&state=s&iss=https%3A%2F%2Fi.example",
			responseURI("https://a.example/cb", "error", "access_denied", "s", "https://i.example", "error_description", "No thanks."))
	})
}

func TestFormActionSource(t *testing.T) {
	tests := []struct {
		name, redirect, want string
	}{
		{"an https URI gives its origin", "https://app.example/cb?x=1", "https://app.example"},
		{"a port is kept", "http://127.0.0.1:8080/cb", "http://127.0.0.1:8080"},
		{"a host is lowercased", "https://App.Example/cb", "https://app.example"},
		{"a native app's scheme is a scheme source", "com.example.app:/cb", "com.example.app:"},
		{"an IPv6 literal falls back to the scheme", "http://[::1]:8080/cb", "http:"},
		{"a host with CSP syntax in it falls back to the scheme", "https://a.example;script-src/cb", "https:"},
		{"garbage gives nothing", "::", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, formActionSource(tt.redirect))
		})
	}
}
