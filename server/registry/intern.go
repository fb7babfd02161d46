package registry

import (
	"slices"
	"strings"
	"unique"
	"unsafe"
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
	slab  []Client            // where clients are allocated (see client)
	bytes []byte              // where the clients' own strings are kept (see own)
	// stale counts the clients replaced or deleted since the last compaction: each leaves its
	// old value in a slab that lives while any of its other clients does.
	stale int
}

// slabSize is the number of clients allocated at once.
const slabSize = 256

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

// client returns a copy of c with its repeated values interned, allocated from a slab of
// slabSize clients, its source key and client ID copied into a shared chunk (own): a million
// clients are a few thousand objects, not three million, which the garbage collector marks in
// address order, several times faster. A slab (or chunk) lives while any of its clients does,
// so a client replaced or deleted leaves its old value behind until the registry compacts
// (Txn.compact).
func (in *interner) client(c Client) *Client {
	c.Namespace = in.str(c.Namespace)
	c.Type = ClientType(in.str(string(c.Type)))
	c.GrantTypes = in.list(c.GrantTypes)
	c.RedirectURIs = in.list(c.RedirectURIs)
	c.PostLogoutRedirectURIs = in.list(c.PostLogoutRedirectURIs)
	c.Scopes = in.list(c.Scopes)
	c.DefaultScopes = in.list(c.DefaultScopes)
	c.Audiences = in.list(c.Audiences)
	c.AuthMethod = in.str(c.AuthMethod)
	c.SigningAlgorithm = in.str(c.SigningAlgorithm)
	c.PKCE = in.str(c.PKCE)
	c.Consent = in.str(c.Consent)
	c.AllowedOrigins = in.list(c.AllowedOrigins)
	c.AllowedIdentityProviders = in.list(c.AllowedIdentityProviders)
	c.WorkloadIssuer = in.str(c.WorkloadIssuer)
	c.JWKSURI = in.str(c.JWKSURI)
	c.Source, c.ID = in.own(c.Source), in.own(c.ID)
	if len(in.slab) == 0 {
		in.slab = make([]Client, slabSize)
	}
	p := &in.slab[0]
	*p = c
	in.slab = in.slab[1:]
	return p
}

// ownChunk is the size of the chunks own copies strings into.
const ownChunk = 64 << 10

// own returns a copy of s kept in a chunk shared with the strings owned before it: one object
// for the garbage collector per 64 KiB of source keys and client IDs, not two per client. A
// chunk's bytes are never written again once a string refers to them.
func (in *interner) own(s string) string {
	if len(s) == 0 || len(s) > ownChunk/16 {
		return s
	}
	if cap(in.bytes)-len(in.bytes) < len(s) {
		in.bytes = make([]byte, 0, ownChunk)
	}
	start := len(in.bytes)
	in.bytes = append(in.bytes, s...)              // within capacity: the chunk stays where it is
	return unsafe.String(&in.bytes[start], len(s)) //nolint:gosec // the bytes are never written again
}

// scope returns sc with its namespace list interned (many scopes allow the same namespaces).
func (in *interner) scope(sc Scope) Scope {
	sc.AllowedNamespaces = in.list(sc.AllowedNamespaces)
	sc.Claims = in.list(sc.Claims)
	return sc
}
