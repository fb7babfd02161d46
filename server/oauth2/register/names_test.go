package register

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestNameKey(t *testing.T) {
	same := []struct{ name, a, b string }{
		{"case does not count", "Demo Web Application", "demo web APPLICATION"},
		{"surrounding and repeated white space does not count", "Demo web application", "  Demo \t web   application "},
		{"a no-break space is a space", "Demo web application", "Demo\u00a0web\u2003application"},
		{"full-width letters are their plain forms", "Demo", "Ｄｅｍｏ"},
		{"a ligature is its letters", "office", "o\ufb03ce"},
		{"a zero-width space does not count", "Demo", "De\u200bmo"},
		{"bidi controls do not count", "Demo", "\u202eDemo\u202c"},
		{"a variation selector does not count", "GitHub", "GitHub\ufe0f"},
		{"a Hangul filler does not count", "GitHub", "Git\u3164Hub"},
		{"composed and decomposed accents are equal", "Caf\u00e9", "Cafe\u0301"},
		{"the German sharp s folds to ss", "STRASSE", "stra\u00dfe"},
	}
	for _, tt := range same {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, NameKey(tt.a), NameKey(tt.b))
		})
	}
	t.Run("different words stay different", func(t *testing.T) {
		assert.NotEqual(t, NameKey("Demo web application"), NameKey("Demo web applications"))
	})
}

func TestHiddenInName(t *testing.T) {
	for _, r := range []rune{'\u0000', '\u0007', '\u007f', '\u0085', '\u00ad', '\u200b', '\u200e', '\u200f', '\u202a', '\u202e',
		'\u2066', '\u2067', '\u2068', '\u2069', '\u2028', '\u2029', '\ufeff', '\ue000',
		'\ufe0f', '\ufe00', '\U000e0100', '\u180b', '\u034f', '\u115f', '\u1160', '\u3164', '\uffa0', '\u2800', '\u17b4'} {
		assert.True(t, hiddenInName(r), "%U", r)
	}
	for _, r := range []rune{'a', ' ', '\u00e9', '\u00a0', '名', '-', '\''} {
		assert.False(t, hiddenInName(r), "%U", r)
	}
}

func FuzzASCIINameKeyIsNameKey(f *testing.F) {
	for _, seed := range []string{"", "  Demo \t web   APPLICATION ", "a\x00b\x7fc", "Git Hub\r\n", "\v\f"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, name string) {
		fast, ok := asciiNameKey(name)
		if !ok {
			return
		}
		if slow := unicodeNameKey(name); fast != slow {
			t.Fatalf("asciiNameKey(%q) = %q, the general path %q", name, fast, slow)
		}
	})
}
