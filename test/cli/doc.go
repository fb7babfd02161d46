// Package cli runs the built latchkey binary as a user does, from a shell: the exit codes, what
// goes to stdout and to stderr, the help of every command, `latchkey version`,
// `latchkey hash-password` (whose hashes a server started from a folder then accepts), the
// errors for a missing cluster, a misspelt duration or a manifest that does not parse, the
// warnings of the embedded mode (never a stack trace), and Ctrl-C on the operator.
package cli
