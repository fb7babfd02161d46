package upstream

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
)

// ClientAssertionType is RFC 7523's client_assertion_type of a JWT client assertion.
const ClientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// ErrClientCredentials: Latchkey's own credentials at the upstream cannot be read (the workload
// identity token file) or the upstream's token endpoint refused them (invalid_client).
var ErrClientCredentials = errors.New("upstream: Latchkey's client credentials not accepted")

// Bounds of the token request a client assertion is added to.
const (
	maxAssertionBytes    = 64 << 10
	maxTokenRequestBytes = 1 << 20
)

// readAssertion reads the token file at path: read at every use, so a token the kubelet rotated
// is sent as soon as it is written. Its errors name the path, never the content.
func readAssertion(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("%w: workload identity token file: %w", ErrClientCredentials, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxAssertionBytes+1))
	if err != nil {
		return "", fmt.Errorf("%w: workload identity token file %s: %w", ErrClientCredentials, path, err)
	}
	tok := strings.TrimSpace(string(b))
	switch {
	case len(b) > maxAssertionBytes:
		return "", fmt.Errorf("%w: workload identity token file %s is larger than %d bytes", ErrClientCredentials, path, maxAssertionBytes)
	case tok == "":
		return "", fmt.Errorf("%w: workload identity token file %s is empty", ErrClientCredentials, path)
	}
	return tok, nil
}

// assertionTransport adds the client assertion of the token file to the form POSTed to the
// token endpoint, for the code exchange and refresh alike (golang.org/x/oauth2 builds both
// requests; its TokenSource takes no extra parameters). Other requests pass unchanged.
type assertionTransport struct {
	base          http.RoundTripper
	tokenEndpoint string
	file          string
}

func (t *assertionTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodPost || req.Body == nil || req.URL.String() != t.tokenEndpoint {
		return t.base.RoundTrip(req)
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, maxTokenRequestBytes))
	req.Body.Close()
	if err != nil {
		return nil, err
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, fmt.Errorf("token request form: %w", err)
	}
	tok, err := readAssertion(t.file)
	if err != nil {
		return nil, err
	}
	form.Del("client_secret")
	form.Set("client_assertion_type", ClientAssertionType)
	form.Set("client_assertion", tok)
	encoded := []byte(form.Encode())
	out := req.Clone(req.Context())
	out.Body, out.ContentLength = io.NopCloser(bytes.NewReader(encoded)), int64(len(encoded))
	out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(encoded)), nil }
	return t.base.RoundTrip(out)
}

// tokenClient is the HTTP client of the token endpoint at endpoint: o's client, adding the
// client assertion when the provider authenticates with a token file.
func (o *OIDC) tokenClient(endpoint string) *http.Client {
	if o.cfg.AssertionFile == "" {
		return o.client
	}
	c := *o.client
	base := c.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	c.Transport = &assertionTransport{base: base, tokenEndpoint: endpoint, file: o.cfg.AssertionFile}
	return &c
}
