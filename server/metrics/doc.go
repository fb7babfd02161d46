// Package metrics holds Latchkey's Prometheus metrics: one Metrics value built from a
// prometheus.Registerer (no globals, no init), a store decorator counting operations, and
// collectors over the registry snapshot and the signing keys.
//
// Label values are bounded: endpoints, grant types, error codes and authentication methods
// come from fixed sets; client IDs and namespaces only of registered clients (the caller passes
// "unknown" for anything else); never a token, secret, user name or raw request input.
//
// Label names never collide with the target labels a scrape adds (Prometheus Operator's
// ServiceMonitor adds namespace, service, pod, container, endpoint, job, instance; a collision
// renames ours to exported_*): a client's namespace is client_namespace, an endpoint of the
// route table is handler. A kind label holds the Kubernetes kind name (OAuthClient, Scope,
// User, WorkloadIssuer, OAuthClientPolicy) in every metric. Series that count failures
// (latchkey_oauth_errors_total for every code an endpoint can answer, latchkey_store_errors_total
// and the failed results of latchkey_store_operations_total) start at zero, so that a healthy
// server shows zeros rather than no data; latchkey_build_info{version, go_version} is always 1.
package metrics
