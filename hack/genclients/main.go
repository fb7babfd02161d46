// Command genclients writes a folder of n typical OAuthClients, each with a Secret holding its
// client secret, for measuring the embedded mode at scale:
//
//	go run ./hack/genclients -clients 100000 -out /tmp/clients
//	latchkey serve --manifests /tmp/clients
//
// Client i is gen-i with secret gen-secret-i (internal/genclients).
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/latchkey-dev/latchkey/internal/genclients"
)

func main() {
	var o genclients.Options
	out := flag.String("out", "", "folder to write (created if missing)")
	flag.IntVar(&o.Clients, "clients", 1000, "number of OAuthClients, each with its Secret")
	flag.IntVar(&o.PerFile, "per-file", 1000, "clients per file")
	flag.IntVar(&o.Namespaces, "namespaces", 50, "namespaces the clients are spread over")
	flag.StringVar(&o.Prefix, "prefix", "gen", "start of every client's name")
	flag.BoolVar(&o.JSON, "json", false, "write each document in JSON form (still YAML files)")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "genclients: -out is required")
		os.Exit(2)
	}
	if err := genclients.Write(*out, o); err != nil {
		fmt.Fprintln(os.Stderr, "genclients:", err)
		os.Exit(1)
	}
}
