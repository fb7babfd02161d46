// Package jsonlines writes values as JSON lines to a writer that other goroutines, and other
// logs, share: the audit log (server/audit) and the access log (server/accesslog). Each line
// goes out whole in one Write, encoded in a pooled buffer rather than by json.Marshal, whose
// result is a copy made per line.
package jsonlines
