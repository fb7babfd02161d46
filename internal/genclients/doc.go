// Package genclients writes folders of generated manifests for scale measurements: n typical
// confidential client_credentials OAuthClients, each with its client secret in a Secret of its
// own (secretPolicy External, as a cluster would hold them), spread over a few namespaces and
// written in files of a fixed number of clients. hack/genclients and hack/loadtest (-clients)
// use it. It imports the standard library only.
package genclients
