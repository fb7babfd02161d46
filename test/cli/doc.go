// Package cli runs the built latchkey binary as a user does, from a shell: the exit codes, what
// goes to stdout and to stderr, the help of every command, `latchkey version`,
// `latchkey hash-password` (whose hashes a server started from a folder then accepts), the
// errors for a missing cluster, a misspelt duration or a manifest that does not parse, the
// warnings of the embedded mode (never a stack trace), and Ctrl-C on the operator.
//
// It also runs the README's command blocks, read out of the README by heading, never copied:
// the curl examples against the binary in embedded mode with config/samples
// (readme_curl_test.go), the kubectl blocks against envtest with the binary as the operator in
// namespace latchkey (readme_cluster_test.go). Only the host and port and the credentials the
// README leaves to the reader change. Not run here, by nature: `helm install` (rendered by
// test/chart), `helm test` and `kubectl port-forward` (envtest runs no Pods; `kubectl apply -k
// config/default` is validated with --dry-run=server instead), the WorkloadIssuer example (its
// issuer is GitHub Actions; test/e2e covers the flow with a local issuer), `make run-cluster`
// (interactive), `make docker-build`/`docker-push`, `make install`/`deploy` (a real cluster),
// and the long make targets (`bench`, `bench-scale`, `soak`, `fuzz`, `test` itself, run by CI).
package cli
