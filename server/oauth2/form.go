package oauth2

import (
	"iter"
	"net/url"
	"strings"
)

// FormParam is one name=value pair of an application/x-www-form-urlencoded body or query.
type FormParam struct {
	Name, Value string
	// Malformed: the pair is not correctly percent-encoded; Name and Value are then "".
	Malformed bool
}

// FormParams yields the pairs of an application/x-www-form-urlencoded body (or a query
// string) in order, decoded, every repeat included (the callers decide what a repeated
// parameter means; url.ParseQuery would merge them and drop the order). Empty pairs (&&) are
// skipped; a pair without = has an empty value.
func FormParams(body string) iter.Seq[FormParam] {
	return func(yield func(FormParam) bool) {
		for body != "" {
			var pair string
			pair, body, _ = strings.Cut(body, "&")
			if pair == "" {
				continue
			}
			rawName, rawValue, _ := strings.Cut(pair, "=")
			name, err1 := url.QueryUnescape(rawName)
			value, err2 := url.QueryUnescape(rawValue)
			p := FormParam{Name: name, Value: value}
			if err1 != nil || err2 != nil {
				p = FormParam{Malformed: true}
			}
			if !yield(p) {
				return
			}
		}
	}
}
