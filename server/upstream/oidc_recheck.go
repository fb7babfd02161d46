package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/coreos/go-oidc/v3/oidc"
	xoauth2 "golang.org/x/oauth2"

	"github.com/latchkey-dev/latchkey/server/registry"
)

// ProviderLookup finds an upstream OIDC provider's current value by name (the registry's
// snapshot, read at each call).
type ProviderLookup func(name string) (*registry.UpstreamOIDC, bool)

// OIDCRechecker re-checks the users of upstream OIDC providers: with the upstream refresh token
// of their login (refreshed at the upstream's token endpoint; invalid_grant there refuses the
// user; the new tokens replace the old in the identity record), else with the upstream access
// token at the userinfo endpoint while it lives (401 or 403 refuses). With neither (no token
// kept, or an expired access token and no refresh token) the upstream cannot be asked about the
// user, and the user is refused: they sign in again.
type OIDCRechecker struct {
	set    *Set
	ids    *Identities
	lookup ProviderLookup
}

var _ Rechecker = (*OIDCRechecker)(nil)

// OIDCRechecker returns the re-check of the providers' users, finding providers with lookup.
func (p *Providers) OIDCRechecker(lookup ProviderLookup) *OIDCRechecker {
	return &OIDCRechecker{set: p.set, ids: p.ids, lookup: lookup}
}

// Recheck asks the user's upstream whether it still accepts them.
func (r *OIDCRechecker) Recheck(ctx context.Context, id Identity) error {
	u, ok := r.lookup(id.Provider)
	if !ok || u.UID != id.ProviderUID {
		return fmt.Errorf("%w: the provider is no longer served", ErrUserRefused)
	}
	o, err := r.set.Get(u)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	p, err := o.Discover(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, o.client), httpTimeout)
	defer cancel()
	switch {
	case id.Token != nil && id.Token.RefreshToken != "":
		return r.refresh(ctx, o, p, id)
	case id.Token != nil && id.Token.AccessToken != "" && id.Token.Valid() && p.UserInfoEndpoint() != "":
		return userinfo(ctx, o.client, p.UserInfoEndpoint(), id)
	}
	return fmt.Errorf("%w: no upstream token left to ask with", ErrUserRefused)
}

// refresh redeems the upstream refresh token; the upstream's new tokens are kept.
func (r *OIDCRechecker) refresh(ctx context.Context, o *OIDC, p *oidc.Provider, id Identity) error {
	old := *id.Token
	old.Expiry, old.AccessToken = old.Expiry.AddDate(-100, 0, 0), "" // always ask
	ctx = oidc.ClientContext(ctx, o.tokenClient(p.Endpoint().TokenURL))
	tok, err := o.oauth2Config(p, "").TokenSource(ctx, &old).Token()
	if err != nil {
		var re *xoauth2.RetrieveError
		if errors.As(err, &re) && re.ErrorCode == "invalid_grant" {
			return fmt.Errorf("%w: the upstream refused its refresh token", ErrUserRefused)
		}
		return tokenEndpointError(err)
	}
	if raw, _ := tok.Extra("id_token").(string); raw != "" {
		// OpenID Connect 12.2: a refreshed ID token is of the same user.
		idt, err := p.VerifierContext(ctx, &oidc.Config{ClientID: o.cfg.ClientID, Now: o.now}).Verify(ctx, raw)
		if err != nil {
			return fmt.Errorf("%w: refreshed %w", ErrIDToken, err)
		}
		if idt.Subject != id.UpstreamSubject {
			return fmt.Errorf("%w: the refreshed ID token is another user's", ErrUserRefused)
		}
	}
	id.Token = tok
	_, err = r.ids.Remember(ctx, id)
	return err
}

// userinfo asks the userinfo endpoint with the user's upstream access token.
func userinfo(ctx context.Context, client *http.Client, endpoint string, id Identity) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint, nil)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	id.Token.SetAuthHeader(req)
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%w: userinfo: %w", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return fmt.Errorf("%w: userinfo answered HTTP %d", ErrUserRefused, resp.StatusCode)
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("%w: userinfo answered HTTP %d", ErrUnavailable, resp.StatusCode)
	}
	var claims struct {
		Subject string `json:"sub"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&claims); err != nil {
		return fmt.Errorf("%w: userinfo: %w", ErrUnavailable, err)
	}
	if claims.Subject != id.UpstreamSubject {
		return fmt.Errorf("%w: userinfo names another user", ErrUserRefused)
	}
	return nil
}
