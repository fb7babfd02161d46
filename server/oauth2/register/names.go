package register

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// hiddenInName reports whether r must not appear in a client name: it is invisible or changes
// how the text around it is shown. Control characters (Cc), format characters (Cf: bidi
// controls such as U+202E, U+200F and U+2066-U+2069, zero-width characters, soft hyphen),
// private-use characters (Co), line and paragraph separators (Zl, Zp), and the characters that
// are not format characters yet show nothing or change the character before them: default
// ignorable code points (Other_Default_Ignorable_Code_Point: the combining grapheme joiner
// U+034F, the Hangul fillers U+115F, U+1160, U+3164 and U+FFA0, ...), variation selectors
// (U+FE00-U+FE0F, U+E0100-U+E01EF, the Mongolian ones; so also the emoji presentation selector
// U+FE0F) and the Braille blank U+2800. Each would let "GitHub" plus one of them pass for
// "GitHub".
func hiddenInName(r rune) bool {
	switch r {
	case '\u2800', // Braille pattern blank: a symbol (So) that shows as a space
		'\u115f', '\u1160', '\u3164', '\uffa0': // Hangul fillers (default ignorable too)
		return true
	}
	return unicode.In(r, unicode.Cc, unicode.Cf, unicode.Co, unicode.Zl, unicode.Zp,
		unicode.Other_Default_Ignorable_Code_Point, unicode.Variation_Selector)
}

// NameKey is what two names are compared by (and the key of the registry's name index,
// registry.WithClientNameIndex): NFKC-normalized (so full-width letters, ligatures
// and no-break spaces equal their plain forms), without hidden characters, case-folded (then
// normalized again, as Unicode's NFKC_Casefold), with runs of white space as one space and none
// around it.
func NameKey(name string) string {
	if key, ok := asciiNameKey(name); ok {
		return key
	}
	return unicodeNameKey(name)
}

// unicodeNameKey is NameKey by the Unicode tables, for any name.
func unicodeNameKey(name string) string {
	s := norm.NFKC.String(name)
	s = strings.Map(func(r rune) rune {
		if hiddenInName(r) {
			return -1
		}
		return r
	}, s)
	s = norm.NFKC.String(cases.Fold().String(s))
	return strings.Join(strings.Fields(s), " ")
}

// asciiNameKey is NameKey of an ASCII name (ok false for any other), without the Unicode
// tables: NFKC leaves ASCII as it is, the only hidden ASCII characters are the controls (Cc,
// which include tab and newline, so the only white space left is the space), and case folding
// is lower-casing. FuzzASCIINameKeyIsNameKey holds it to the general path. Client IDs and most
// names are ASCII, so the registry's name index costs little to build.
func asciiNameKey(name string) (string, bool) {
	for i := range len(name) {
		if name[i] >= utf8.RuneSelf {
			return "", false
		}
	}
	b := make([]byte, 0, len(name))
	space := false
	for i := range len(name) {
		c := name[i]
		switch {
		case c < 0x20 || c == 0x7f:
			continue
		case c == ' ':
			space = len(b) > 0
			continue
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		if space {
			b = append(b, ' ')
			space = false
		}
		b = append(b, c)
	}
	if string(b) == name {
		return name, true // shares name (a client ID interned by the registry, say)
	}
	return string(b), true
}

// checkClientName refuses a client_name that reads like the display name or the client ID of
// another client the registry serves (any namespace): equal after NameKey. self is the client
// being updated ("" for a registration), whose own name does not count. It looks the key up in
// the registry's name index (main builds the registry WithClientNameIndex(NameKey) when
// registration is on), else scans every client.
func (e *Endpoint) checkClientName(name, self string) error {
	key := NameKey(name)
	if key == "" {
		return nil
	}
	snap := e.registry.Snapshot()
	clients, indexed := snap.ClientsNamed(key)
	if !indexed {
		clients = snap.Clients()
	}
	for c := range clients {
		if c.ID == self {
			continue
		}
		if NameKey(c.DisplayName) == key || NameKey(c.ID) == key {
			return metadataError("The client_name is already the name or client ID of another client; choose another.")
		}
	}
	return nil
}
