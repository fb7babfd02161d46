package upstream

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/go-logr/logr"

	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/store"
)

// recordIdentity is the store record kind of a signed-in upstream user, keyed by the hash of
// its subject.
const recordIdentity = "upstream-identity"

// lookupTimeout bounds one store lookup of ExternalUser.
const lookupTimeout = 2 * time.Second

// Records is the part of the leased store Identities uses; store.Store implements it.
type Records interface {
	PutRecord(ctx context.Context, kind string, h store.Hash, value []byte, ttl time.Duration) error
	GetRecord(ctx context.Context, kind string, h store.Hash) ([]byte, error)
}

// Identities keeps the identities upstream providers signed in, in the leased store (every
// replica sees them), for the token, userinfo and introspection endpoints: each login writes the
// user's current claims, leased for TTL (the longest refresh token lifetime, so a refresh never
// outlives the record). It implements registry.ExternalUsers.
type Identities struct {
	records Records
	ttl     time.Duration
	log     logr.Logger
}

var _ registry.ExternalUsers = (*Identities)(nil)

// NewIdentities keeps identities in records for ttl after each login; log hears failed lookups.
func NewIdentities(records Records, ttl time.Duration, log logr.Logger) *Identities {
	return &Identities{records: records, ttl: ttl, log: log}
}

// identityRecord is the stored form of a user.
type identityRecord struct {
	Subject       string   `json:"sub"`
	Kind          string   `json:"idp_kind,omitempty"`
	Provider      string   `json:"idp"`
	ProviderUID   string   `json:"idp_uid"`
	UpstreamSub   string   `json:"upstream_sub,omitempty"`
	Username      string   `json:"username"`
	Email         string   `json:"email,omitempty"`
	EmailVerified bool     `json:"email_verified,omitempty"`
	Name          string   `json:"name,omitempty"`
	Groups        []string `json:"groups,omitempty"`
}

// Remember stores the identity (replacing its previous claims) and returns it as a user.
func (s *Identities) Remember(ctx context.Context, id Identity) (*registry.User, error) {
	rec := identityRecord{Subject: id.Subject, Kind: id.Kind, Provider: id.Provider, ProviderUID: id.ProviderUID, UpstreamSub: id.UpstreamSubject, Username: id.Username, Email: id.Email,
		EmailVerified: id.EmailVerified, Name: id.Name, Groups: id.Groups}
	raw, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	if err := s.records.PutRecord(ctx, recordIdentity, store.HashOf(id.Subject), raw, s.ttl); err != nil {
		return nil, err
	}
	return rec.user(), nil
}

func (r *identityRecord) user() *registry.User {
	kind := cmp.Or(r.Kind, registry.KindOIDC)
	return &registry.User{
		Source: kind + " " + r.Provider, Subject: r.Subject, Username: r.Username,
		Email: r.Email, EmailVerified: r.EmailVerified, DisplayName: r.Name, Groups: r.Groups,
		IdentityProvider: r.Provider, IdentityProviderUID: r.ProviderUID, IdentityProviderKind: kind,
		UpstreamSubject: r.UpstreamSub,
	}
}

// ExternalUser returns the user of the subject that an upstream provider signed in; a user not
// found, or a store that cannot be reached (logged), finds nobody.
func (s *Identities) ExternalUser(sub string) (*registry.User, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), lookupTimeout)
	defer cancel()
	raw, err := s.records.GetRecord(ctx, recordIdentity, store.HashOf(sub))
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			s.log.Error(err, "looking up an upstream identity")
		}
		return nil, false
	}
	var rec identityRecord
	if json.Unmarshal(raw, &rec) != nil || rec.Subject != sub {
		return nil, false
	}
	return rec.user(), true
}
