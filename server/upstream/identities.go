package upstream

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/go-logr/logr"
	xoauth2 "golang.org/x/oauth2"

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
	sealer  *Sealer
	// checked is the re-check interval (Dispatcher): a login counts as a check for it.
	checked time.Duration
}

var _ registry.ExternalUsers = (*Identities)(nil)

// NewIdentities keeps identities in records for ttl after each login; log hears failed lookups.
// sealer (nil: none) encrypts the upstream tokens kept for refresh re-checks; without one no
// token is kept.
func NewIdentities(records Records, ttl time.Duration, log logr.Logger, sealer *Sealer) *Identities {
	return &Identities{records: records, ttl: ttl, log: log, sealer: sealer}
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
	// Token is the upstream's token (JSON of an oauth2.Token) sealed by the Sealer.
	Token []byte `json:"upstream_token,omitempty"`
}

// Remember stores the identity (replacing its previous claims) and returns it as a user.
func (s *Identities) Remember(ctx context.Context, id Identity) (*registry.User, error) {
	rec := identityRecord{Subject: id.Subject, Kind: id.Kind, Provider: id.Provider, ProviderUID: id.ProviderUID, UpstreamSub: id.UpstreamSubject, Username: id.Username, Email: id.Email,
		EmailVerified: id.EmailVerified, Name: id.Name, Groups: id.Groups}
	if id.Token != nil && s.sealer != nil {
		plain, err := json.Marshal(id.Token)
		if err != nil {
			return nil, err
		}
		rec.Token = s.sealer.Seal(id.Subject, plain)
	}
	raw, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	if err := s.records.PutRecord(ctx, recordIdentity, store.HashOf(id.Subject), raw, s.ttl); err != nil {
		return nil, err
	}
	if s.checked > 0 {
		if err := s.records.PutRecord(ctx, recordRecheck, store.HashOf(id.Subject), recheckAccepted, s.checked); err != nil {
			return nil, err
		}
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

// Lookup returns the identity of the subject with its upstream token (nil when none was kept or
// it no longer opens: another key). A user not found is store.ErrNotFound.
func (s *Identities) Lookup(ctx context.Context, sub string) (Identity, error) {
	raw, err := s.records.GetRecord(ctx, recordIdentity, store.HashOf(sub))
	if err != nil {
		return Identity{}, err
	}
	var rec identityRecord
	if json.Unmarshal(raw, &rec) != nil || rec.Subject != sub {
		return Identity{}, store.ErrNotFound
	}
	id := Identity{Subject: rec.Subject, Kind: cmp.Or(rec.Kind, registry.KindOIDC), Provider: rec.Provider, ProviderUID: rec.ProviderUID,
		UpstreamSubject: rec.UpstreamSub, Username: rec.Username, Email: rec.Email, Name: rec.Name,
		EmailVerified: rec.EmailVerified, Groups: rec.Groups}
	if len(rec.Token) > 0 && s.sealer != nil {
		if plain, err := s.sealer.Open(sub, rec.Token); err == nil {
			var tok xoauth2.Token
			if json.Unmarshal(plain, &tok) == nil {
				id.Token = &tok
			}
		}
	}
	return id, nil
}
