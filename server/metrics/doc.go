// Package metrics holds Latchkey's Prometheus metrics: one Metrics value built from a
// prometheus.Registerer (no globals, no init), a store decorator counting operations, and
// collectors over the registry snapshot and the signing keys.
//
// Label values are bounded: endpoints, grant types, error codes and authentication methods
// come from fixed sets; client IDs and namespaces only of registered clients (the caller passes
// "unknown" for anything else); never a token, secret, user name or raw request input.
package metrics
