package registration

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/latchkey-dev/latchkey/server/oauth2/register"
	"github.com/latchkey-dev/latchkey/server/registry"
)

// ClientRegistry receives the registered clients; *registry.Registry implements it.
type ClientRegistry interface {
	PutClient(c registry.Client)
	DeleteClient(source string)
}

var (
	_ ClientRegistry           = (*registry.Registry)(nil)
	_ register.ClientRegistrar = (*Memory)(nil)
)

// MemoryOptions configure a Memory registrar.
type MemoryOptions struct {
	// Namespace the registered clients belong to (scope AllowedNamespaces are checked against
	// it); required.
	Namespace string
	// MaxClients bounds how many clients may be registered anonymously (open registration);
	// zero means no bound.
	MaxClients int
	// MaxInitialTokenClients bounds, separately, how many clients may be registered with an
	// initial access token; zero means no bound.
	MaxInitialTokenClients int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Admit, when set, is asked before a registration or an update is accepted, with the
	// client ID and the metadata; an error refuses it (register.ErrInvalidClientMetadata with a
	// description is answered invalid_client_metadata). main.go passes the manifest loader's
	// OAuthClientPolicy check.
	Admit func(clientID string, md register.ClientMetadata) error
}

// Memory is the ClientRegistrar of the embedded default: it keeps registrations in memory and
// writes the clients straight into the registry. A restart forgets them.
type Memory struct {
	reg  ClientRegistry
	opts MemoryOptions

	mu      sync.Mutex
	clients map[string]*memoryClient // by client ID
	counts  map[register.Registrant]int
}

// memoryClient is one registration; only hashes of the credentials are kept.
type memoryClient struct {
	issuedAt   time.Time
	by         register.Registrant
	metadata   register.ClientMetadata
	secretHash *[sha256.Size]byte // nil for a public client
	tokenHash  [sha256.Size]byte
}

// NewMemory returns a registrar writing into reg.
func NewMemory(reg ClientRegistry, opts MemoryOptions) (*Memory, error) {
	if reg == nil {
		return nil, errors.New("registration: a ClientRegistry is required")
	}
	if opts.Namespace == "" {
		return nil, errors.New("registration: Namespace is required")
	}
	if opts.MaxClients < 0 || opts.MaxInitialTokenClients < 0 {
		return nil, errors.New("registration: MaxClients and MaxInitialTokenClients must not be negative")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Memory{reg: reg, opts: opts, clients: map[string]*memoryClient{}, counts: map[register.Registrant]int{}}, nil
}

// Namespace is the namespace of the registered clients.
func (m *Memory) Namespace() string { return m.opts.Namespace }

// source is the registry source key of a registered client.
func (m *Memory) source(id string) string { return m.opts.Namespace + "/" + id }

// Register creates a client and serves it at once. Like every method, it does nothing and
// returns the context's error when ctx has ended (the caller is gone).
func (m *Memory) Register(ctx context.Context, md register.ClientMetadata, by register.Registrant) (register.RegisteredClient, error) {
	if err := ctx.Err(); err != nil {
		return register.RegisteredClient{}, err
	}
	md = CloneMetadata(md)
	m.mu.Lock()
	defer m.mu.Unlock()
	if limit := m.limit(by); limit > 0 && m.counts[by] >= limit {
		return register.RegisteredClient{}, fmt.Errorf("registration: %d clients registered by %s: %w", m.counts[by], by, register.ErrRegistrationLimit)
	}
	id := NewClientID()
	for _, taken := m.clients[id]; taken; _, taken = m.clients[id] {
		id = NewClientID()
	}
	if m.opts.Admit != nil {
		if err := m.opts.Admit(id, md); err != nil {
			return register.RegisteredClient{}, err
		}
	}
	token := NewSecret()
	mc := &memoryClient{issuedAt: m.opts.Now().Truncate(time.Second), by: by, metadata: md, tokenHash: HashToken(token)}
	rc := register.RegisteredClient{ClientID: id, IssuedAt: mc.issuedAt, RegistrationAccessToken: token, Metadata: CloneMetadata(md)}
	if !md.Public() {
		rc.ClientSecret = NewSecret()
		h := registry.HashSecret([]byte(rc.ClientSecret))
		mc.secretHash = &h
	}
	m.clients[id] = mc
	m.counts[by]++
	m.reg.PutClient(RegistryClient(m.source(id), m.opts.Namespace, id, mc.issuedAt, &md, mc.secretHash))
	return rc, nil
}

// limit is the bound of the registrant's kind; zero means none.
func (m *Memory) limit(by register.Registrant) int {
	if by == register.RegistrantAnonymous {
		return m.opts.MaxClients
	}
	return m.opts.MaxInitialTokenClients
}

// Get returns a registered client.
func (m *Memory) Get(ctx context.Context, clientID string) (register.RegisteredClient, error) {
	if err := ctx.Err(); err != nil {
		return register.RegisteredClient{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	mc, ok := m.clients[clientID]
	if !ok {
		return register.RegisteredClient{}, register.ErrClientNotFound
	}
	return mc.registered(clientID), nil
}

// Update replaces the metadata of a registered client. A client cannot change between public
// and confidential: it would need a new secret, or keep one it no longer uses.
func (m *Memory) Update(ctx context.Context, clientID string, md register.ClientMetadata) (register.RegisteredClient, error) {
	if err := ctx.Err(); err != nil {
		return register.RegisteredClient{}, err
	}
	md = CloneMetadata(md)
	m.mu.Lock()
	defer m.mu.Unlock()
	mc, ok := m.clients[clientID]
	if !ok {
		return register.RegisteredClient{}, register.ErrClientNotFound
	}
	if md.Public() != mc.metadata.Public() {
		return register.RegisteredClient{}, register.ErrInvalidClientMetadata.WithDescription(
			"The token_endpoint_auth_method cannot change between none and a method with a secret.")
	}
	if m.opts.Admit != nil {
		if err := m.opts.Admit(clientID, md); err != nil {
			return register.RegisteredClient{}, err
		}
	}
	next := *mc
	next.metadata = md
	m.clients[clientID] = &next
	m.reg.PutClient(RegistryClient(m.source(clientID), m.opts.Namespace, clientID, next.issuedAt, &md, next.secretHash))
	return next.registered(clientID), nil
}

// Delete removes a registered client from the registry.
func (m *Memory) Delete(ctx context.Context, clientID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	mc, ok := m.clients[clientID]
	if !ok {
		return register.ErrClientNotFound
	}
	delete(m.clients, clientID)
	m.counts[mc.by]--
	m.reg.DeleteClient(m.source(clientID))
	return nil
}

// CheckRegistrationToken compares the token's hash with the client's in constant time.
func (m *Memory) CheckRegistrationToken(ctx context.Context, clientID, token string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	mc, ok := m.clients[clientID]
	m.mu.Unlock()
	if !ok {
		return register.ErrClientNotFound
	}
	if !TokenMatches(mc.tokenHash, token) {
		return register.ErrRegistrationTokenMismatch
	}
	return nil
}

func (mc *memoryClient) registered(id string) register.RegisteredClient {
	return register.RegisteredClient{ClientID: id, IssuedAt: mc.issuedAt, Metadata: CloneMetadata(mc.metadata)}
}
