package registry

import (
	"slices"
	"strings"
	"unique"
)

// maxInternedLists bounds the interner's table of lists; past it the table starts afresh (what
// was shared stays shared, later values share with later ones).
const maxInternedLists = 1 << 16

// interner makes the values the registry keeps share what many of them repeat: strings such as
// namespaces, client types, authentication methods and policies (through package unique, whose
// table forgets what nothing uses), and lists such as grant types, scopes, audiences and
// origins (one array per distinct list). Values are immutable, so sharing never shows.
type interner struct {
	lists map[string][]string // by listKey
}

func (in *interner) str(s string) string {
	if s == "" {
		return s
	}
	return unique.Make(s).Value()
}

// list returns a list equal to l (nil stays nil, empty stays empty) whose array, and strings,
// are shared with the equal lists interned before.
func (in *interner) list(l []string) []string {
	if len(l) == 0 {
		return l
	}
	key := listKey(l)
	if shared, ok := in.lists[key]; ok && slices.Equal(shared, l) {
		return shared
	}
	if in.lists == nil || len(in.lists) >= maxInternedLists {
		in.lists = make(map[string][]string)
	}
	shared := make([]string, len(l))
	for i, s := range l {
		shared[i] = in.str(s)
	}
	in.lists[key] = shared
	return shared
}

func listKey(l []string) string { return strings.Join(l, "\x00") }

// client returns a copy of c with its repeated values interned.
func (in *interner) client(c Client) *Client {
	c.Namespace = in.str(c.Namespace)
	c.Type = ClientType(in.str(string(c.Type)))
	c.GrantTypes = in.list(c.GrantTypes)
	c.RedirectURIs = in.list(c.RedirectURIs)
	c.Scopes = in.list(c.Scopes)
	c.DefaultScopes = in.list(c.DefaultScopes)
	c.Audiences = in.list(c.Audiences)
	c.AuthMethod = in.str(c.AuthMethod)
	c.SigningAlgorithm = in.str(c.SigningAlgorithm)
	c.PKCE = in.str(c.PKCE)
	c.Consent = in.str(c.Consent)
	c.AllowedOrigins = in.list(c.AllowedOrigins)
	c.WorkloadIssuer = in.str(c.WorkloadIssuer)
	c.JWKSURI = in.str(c.JWKSURI)
	return &c
}

// scope returns sc with its namespace list interned (many scopes allow the same namespaces).
func (in *interner) scope(sc Scope) Scope {
	sc.AllowedNamespaces = in.list(sc.AllowedNamespaces)
	sc.Claims = in.list(sc.Claims)
	return sc
}
