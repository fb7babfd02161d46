package genclients

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
)

// Options say what to write.
type Options struct {
	// Clients is the number of OAuthClients (and of Secrets).
	Clients int
	// PerFile is the number of clients per file (default 1,000).
	PerFile int
	// Namespaces is the number of namespaces the clients are spread over (default 50).
	Namespaces int
	// Prefix starts every client's name (default "gen").
	Prefix string
	// JSON writes each document in JSON form (YAML's flow style: the files are still YAML),
	// as a generator that marshals objects would; the loader then skips the YAML conversion.
	JSON bool
}

// ClientID is the client ID of the i-th generated client, and Secret its client secret.
func (o Options) ClientID(i int) string { return fmt.Sprintf("%s-%d", o.prefix(), i) }

// Secret is the client secret of the i-th generated client.
func (o Options) Secret(i int) string { return fmt.Sprintf("%s-secret-%d", o.prefix(), i) }

func (o Options) prefix() string {
	if o.Prefix == "" {
		return "gen"
	}
	return o.Prefix
}

// Write writes the manifests into dir (created if missing) as files clients-NNNNNN.yaml.
func Write(dir string, o Options) error {
	if o.PerFile <= 0 {
		o.PerFile = 1000
	}
	if o.Namespaces <= 0 {
		o.Namespaces = 50
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	for first := 0; first < o.Clients; first += o.PerFile {
		if err := writeFile(filepath.Join(dir, fmt.Sprintf("clients-%07d.yaml", first/o.PerFile)), o, first, min(first+o.PerFile, o.Clients)); err != nil {
			return err
		}
	}
	return nil
}

// clientDoc is a typical service client: what a team writes for a service that calls APIs.
const clientDoc = `apiVersion: oauth.latchkey.dev/v1alpha1
kind: OAuthClient
metadata:
  name: %[1]s
  namespace: %[2]s
spec:
  clientID: %[1]s
  type: Confidential
  grantTypes: [client_credentials]
  scopes: ["read:projects", "write:projects"]
  audiences: ["https://api.example.com"]
  tokenEndpointAuthMethod: client_secret_basic
  secretPolicy: External
  secretRef:
    name: %[1]s-oauth
    key: client-secret
---
apiVersion: v1
kind: Secret
metadata:
  name: %[1]s-oauth
  namespace: %[2]s
type: Opaque
stringData:
  client-secret: %[3]s
---
`

// clientJSON is clientDoc in JSON form.
const clientJSON = `{"apiVersion":"oauth.latchkey.dev/v1alpha1","kind":"OAuthClient",` +
	`"metadata":{"name":"%[1]s","namespace":"%[2]s"},"spec":{"clientID":"%[1]s","type":"Confidential",` +
	`"grantTypes":["client_credentials"],"scopes":["read:projects","write:projects"],` +
	`"audiences":["https://api.example.com"],"tokenEndpointAuthMethod":"client_secret_basic",` +
	`"secretPolicy":"External","secretRef":{"name":"%[1]s-oauth","key":"client-secret"}}}
---
{"apiVersion":"v1","kind":"Secret","metadata":{"name":"%[1]s-oauth","namespace":"%[2]s"},"type":"Opaque",` +
	`"stringData":{"client-secret":"%[3]s"}}
---
`

func writeFile(path string, o Options, from, to int) (err error) {
	f, err := os.Create(path) //nolint:gosec // the caller names the folder
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	w := bufio.NewWriter(f)
	doc := clientDoc
	if o.JSON {
		doc = clientJSON
	}
	for i := from; i < to; i++ {
		if _, err := fmt.Fprintf(w, doc, o.ClientID(i), fmt.Sprintf("team-%d", i%o.Namespaces), o.Secret(i)); err != nil {
			return err
		}
	}
	return w.Flush()
}
