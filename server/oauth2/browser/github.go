package browser

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/go-logr/logr"
	xoauth2 "golang.org/x/oauth2"

	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/store"
)

// GitHubSignIn is the GitHub side of the login page; server/upstream.Providers implements it.
type GitHubSignIn interface {
	// StartGitHub returns the URL of GitHub's authorization request (web flow, PKCE S256 of
	// verifier, state).
	StartGitHub(ctx context.Context, p *registry.UpstreamGitHub, redirectURI, state, verifier string) (string, error)
	// FinishGitHub redeems GitHub's code, reads the user and checks the allowed organizations,
	// and returns the user, remembered for the token endpoints.
	FinishGitHub(ctx context.Context, p *registry.UpstreamGitHub, redirectURI, code, verifier string) (*registry.User, error)
}

// providerKindGitHub is the kind parameter of a GitHub provider's link on the login page.
const providerKindGitHub = "github"

// githubChoices are the GitHub providers the client allows, in display order.
func githubChoices(snap *registry.Snapshot, client *registry.Client) []*registry.UpstreamGitHub {
	all := snap.UpstreamGitHubs()
	out := all[:0:0]
	for _, u := range all {
		if client == nil || client.AllowsIdentityProvider(u.Name) {
			out = append(out, u)
		}
	}
	return out
}

// startGitHub records a one-time state for the GitHub provider (the upstream state of the OIDC
// flow, with the kind) and redirects to GitHub's authorization endpoint.
func (a *Flow) startGitHub(w http.ResponseWriter, r *http.Request, id string, p *pendingRequest, client *registry.Client, name string) {
	ctx := r.Context()
	u, ok := a.registry.Snapshot().UpstreamGitHub(name)
	if a.github == nil || !ok || (!p.Account && !client.AllowsIdentityProvider(name)) {
		a.pageError(w, r, http.StatusBadRequest, msgUpstreamUnknown)
		return
	}
	state, err := oauth2.NewSecret()
	if err == nil {
		st := upstreamState{RequestID: id, Kind: registry.KindGitHub, Provider: u.Name, ProviderUID: u.UID, Verifier: xoauth2.GenerateVerifier(), BrowserHash: p.BrowserHash}
		var raw []byte
		raw, err = json.Marshal(st)
		if err == nil {
			err = a.store.PutRecord(ctx, recordUpstreamState, store.HashOf(state), raw, a.requestTTL)
		}
		if err == nil {
			var location string
			location, err = a.github.StartGitHub(ctx, u, a.issuer+oauth2.UpstreamCallbackPath, state, st.Verifier)
			if err == nil {
				a.redirect(w, location)
				return
			}
			logr.FromContextOrDiscard(ctx).Info("GitHub sign-in could not start", "identityProvider", u.Name, "error", err.Error())
			a.auditUpstreamFailure(ctx, client, u.Name, "upstream_unavailable")
			a.pages.renderError(w, r, http.StatusBadGateway, errorPage{Title: titleUpstreamFailed, Message: msgUpstreamFailed})
			return
		}
	}
	a.pageStoreError(w, r, err)
}

// finishGitHub is the callback of a GitHub sign-in, its state taken and checked (this browser's,
// its pending request's): GitHub's error or code, then the same login completion as a password.
func (a *Flow) finishGitHub(w http.ResponseWriter, r *http.Request, st upstreamState, p *pendingRequest, client *registry.Client) {
	ctx := r.Context()
	q := r.URL.Query()
	u, ok := a.registry.Snapshot().UpstreamGitHub(st.Provider)
	if a.github == nil || !ok || u.UID != st.ProviderUID || (!p.Account && !client.AllowsIdentityProvider(u.Name)) {
		a.pageError(w, r, http.StatusBadRequest, msgUpstreamUnknown)
		return
	}
	if _, sent := q["iss"]; sent { // GitHub sends none (RFC 9207): another provider's response
		a.auditUpstreamFailure(ctx, client, u.Name, "issuer_mismatch")
		a.pageError(w, r, http.StatusBadRequest, msgUpstreamState)
		return
	}
	if e := q.Get("error"); e != "" {
		a.auditUpstreamFailure(ctx, client, u.Name, "upstream_error")
		a.pages.renderError(w, r, http.StatusBadRequest, errorPage{Title: titleUpstreamFailed, Message: upstreamDeniedMessage(e)})
		return
	}
	code := q.Get("code")
	if code == "" || len(code) > maxUsernameLength*4 {
		a.pageError(w, r, http.StatusBadRequest, msgUpstreamState)
		return
	}
	user, err := a.github.FinishGitHub(ctx, u, a.issuer+oauth2.UpstreamCallbackPath, code, st.Verifier)
	if err != nil {
		reason, status, msg := upstreamFailure(err)
		logr.FromContextOrDiscard(ctx).Info("GitHub sign-in failed", "identityProvider", u.Name, "reason", reason, "error", err.Error())
		a.auditUpstreamFailure(ctx, client, u.Name, reason)
		a.pages.renderError(w, r, status, errorPage{Title: titleUpstreamFailed, Message: msg})
		return
	}
	a.completeLogin(w, r, st.RequestID, p, client, user)
}

// githubLink is the login page's link of a GitHub provider.
func githubLink(u *registry.UpstreamGitHub) providerLink {
	return providerLink{Name: u.Name, DisplayName: u.DisplayName, Kind: providerKindGitHub, ID: "idp-github-" + u.Name}
}
