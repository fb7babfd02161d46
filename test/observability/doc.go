// Package observability runs the built latchkey binary as an operator would and checks what it
// gives to watch it: the metrics at /metrics (names, labels, zero series, and that every series
// the chart's PrometheusRule and Grafana dashboard query exists with the labels they use), the
// X-Request-Id in responses and in the access and audit logs, the log flags, and the traces it
// exports by OTLP to an in-process receiver.
package observability
