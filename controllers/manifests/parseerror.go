package manifests

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strconv"

	"github.com/go-logr/logr"
)

// docError is an error in the document of a file at index (0-based, as the YAML reader
// returns them).
type docError struct {
	index int
	err   error
}

func (e *docError) Error() string { return fmt.Sprintf("document %d: %v", e.index, e.err) }
func (e *docError) Unwrap() error { return e.err }

// yamlLine is the line, within its document, that the YAML parser reports.
var yamlLine = regexp.MustCompile(`yaml: line (\d+): `)

// atLine returns err as "path:line: message": the line in the file where the YAML parser
// stopped, or where the document it was reading starts (a strict-decoding error such as an
// unknown field names the field, not a line).
func atLine(path string, data []byte, err error) error {
	de, ok := err.(*docError) //nolint:errorlint // parseBytes returns it unwrapped
	if !ok {
		return fmt.Errorf("%s: %w", path, err)
	}
	line := docStartLine(data, de.index)
	msg := de.err.Error()
	if m := yamlLine.FindStringSubmatchIndex(msg); m != nil {
		if n, aerr := strconv.Atoi(msg[m[2]:m[3]]); aerr == nil {
			line += n - 1
			msg = msg[:m[0]] + "yaml: " + msg[m[1]:]
		}
	}
	return fmt.Errorf("%s:%d: %s", path, line, msg)
}

// docStartLine is the 1-based line on which the document at index starts, counting documents as
// k8s.io/apimachinery's YAMLReader does: a line beginning with "---" ends the document before it
// when that has any line, and is otherwise the first line of a document (so a leading "---" is
// part of the first document).
func docStartLine(data []byte, index int) int {
	doc, inDoc, n := 0, false, 0
	for line := range bytes.Lines(data) {
		n++
		if inDoc && bytes.HasPrefix(line, []byte("---")) {
			doc++
			inDoc = false
			continue
		}
		if !inDoc {
			if doc == index {
				return n
			}
			inDoc = true
		}
	}
	return max(n, 1)
}

// unparsed warns about a file that failed to parse on a reload: what it held at its last good
// parse stays served.
func (l *Loader) unparsed(ctx context.Context, path string, err error) {
	w := l.warn
	if w == nil {
		w = logrWarner{log: logr.FromContextOrDiscard(ctx)}
	}
	if _, ok := l.files[path]; ok {
		w.Warnw("manifest file does not parse; its last good contents stay served", "file", path, "error", err.Error())
		return
	}
	w.Warnw("manifest file does not parse; nothing of it is served", "file", path, "error", err.Error())
}
