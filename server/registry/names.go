package registry

import "iter"

// Option configures New.
type Option func(*Registry)

// WithClientNameIndex makes the registry index every client under key(DisplayName) and
// key(ID) (an empty key is not indexed), so that Snapshot.ClientsNamed finds the clients whose
// name or client ID reads like a given one without a scan (the registration endpoint's
// client_name check). key must be a pure function. Without it nothing is indexed and nothing is
// computed, so a registry without dynamic registration pays nothing for it.
func WithClientNameIndex(key func(string) string) Option {
	return func(r *Registry) { r.nameKey = key }
}

// ClientsNamed yields the clients the snapshot serves (the winner of each client ID) whose
// display name or client ID has the key (WithClientNameIndex's function). ok is false when the
// registry keeps no name index: the caller then scans Clients.
func (s *Snapshot) ClientsNamed(key string) (clients iter.Seq[*Client], ok bool) {
	if s.nameKey == nil {
		return nil, false
	}
	return func(yield func(*Client) bool) {
		holder, others, found := s.names.claims(key)
		if !found {
			return
		}
		for _, c := range append([]*Client{holder}, others...) {
			if served, _ := s.byID.holder.get(c.ID); served == c && !yield(c) {
				return
			}
		}
	}, true
}

// nameKeys are the keys c is indexed under by name: of its display name and of its client ID,
// the empty ones left out and the second left out when it equals the first.
func (s *Snapshot) nameKeys(c *Client) []string {
	var keys []string
	for _, v := range [...]string{c.DisplayName, c.ID} {
		if k := s.nameKey(v); k != "" && (len(keys) == 0 || keys[0] != k) {
			keys = append(keys, k)
		}
	}
	return keys
}

// indexNames adds c's names to the name index, if the registry keeps one.
func (tx *Txn) indexNames(c *Client) {
	if tx.s.nameKey == nil {
		return
	}
	for _, k := range tx.s.nameKeys(c) {
		tx.names.add(k, c)
	}
}

// unindexNames takes c's names out of the name index (c as indexed).
func (tx *Txn) unindexNames(c *Client) {
	if tx.s.nameKey == nil {
		return
	}
	for _, k := range tx.s.nameKeys(c) {
		tx.names.remove(k, c)
	}
}
