package browser

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/go-logr/logr"
	xoauth2 "golang.org/x/oauth2"

	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/store"
	"github.com/latchkey-dev/latchkey/server/upstream"
)

// recordUpstreamState is the store record of an upstream sign-in in progress, keyed by the
// hash of its state.
const recordUpstreamState = "upstream-state"

// IdentityProviders is the upstream side of the login page; server/upstream.Providers
// implements it. GitHub and LDAP providers plug in here later.
type IdentityProviders interface {
	// Start returns the URL of the upstream authorization request (code flow, PKCE S256 of
	// verifier, state, nonce).
	Start(ctx context.Context, p *registry.UpstreamOIDC, redirectURI, state, nonce, verifier string) (string, error)
	// Finish redeems the upstream's code, checks its ID token (with nonce) and the provider's
	// rules, and returns the user, remembered for the token endpoints.
	Finish(ctx context.Context, p *registry.UpstreamOIDC, redirectURI, code, verifier, nonce string) (*registry.User, error)
}

// upstreamState is an upstream sign-in in progress: one-time (taken by the callback), bound to
// the browser that started it and to its pending request.
type upstreamState struct {
	RequestID   string `json:"request_id"`
	Kind        string `json:"idp_kind,omitempty"` // "" is registry.KindOIDC
	Provider    string `json:"idp"`
	ProviderUID string `json:"idp_uid"`
	Nonce       string `json:"nonce"`
	Verifier    string `json:"verifier"`
	BrowserHash []byte `json:"browser"`
}

// Messages of the upstream sign-in's error pages: what happened, never the upstream's raw
// answer.
const (
	msgUpstreamUnknown  = "This sign-in option is not available for this application. Go back to the application and start again."
	msgUpstreamState    = "This sign-in response has expired, was already used, or was started in another browser. Go back to the application and start again."
	msgUpstreamDenied   = "The identity provider did not sign you in (%s). Go back to the application and start again."
	msgUpstreamFailed   = "The identity provider could not be reached or its answer could not be verified. Try again later."
	msgUpstreamClient   = "This sign-in option is misconfigured: Latchkey could not authenticate itself to the identity provider. Tell your administrator, and try again later."
	msgUpstreamRefused  = "Your account at the identity provider is not allowed to sign in here."
	titleUpstreamFailed = "Sign-in failed"
)

// upstreamChoices are the upstream providers the client allows, in display order.
func upstreamChoices(snap *registry.Snapshot, client *registry.Client) []*registry.UpstreamOIDC {
	all := snap.UpstreamOIDCs()
	out := all[:0:0]
	for _, u := range all {
		if client == nil || client.AllowsIdentityProvider(u.Name) {
			out = append(out, u)
		}
	}
	return out
}

// serveUpstreamStart starts a sign-in at the provider of ?provider= for the pending request
// of ?request_id= (bound to this browser), redirecting to the upstream.
func (a *Flow) serveUpstreamStart(w http.ResponseWriter, r *http.Request) {
	if !a.admitPage(w, r, "upstream") {
		return
	}
	id, p, client, ok := a.pendingFromQuery(w, r)
	if !ok {
		return
	}
	a.startProvider(w, r, id, p, client, r.URL.Query().Get("kind"), r.URL.Query().Get("provider"))
}

// startProvider starts the sign-in at the provider of the kind ("" for OIDC, providerKindGitHub)
// and name.
func (a *Flow) startProvider(w http.ResponseWriter, r *http.Request, id string, p *pendingRequest, client *registry.Client, kind, name string) {
	switch kind {
	case "":
		a.startUpstream(w, r, id, p, client, name)
	case providerKindGitHub:
		a.startGitHub(w, r, id, p, client, name)
	default:
		a.pageError(w, r, http.StatusBadRequest, msgUpstreamUnknown)
	}
}

// startUpstream records a one-time state for the provider and redirects to its authorization
// endpoint.
func (a *Flow) startUpstream(w http.ResponseWriter, r *http.Request, id string, p *pendingRequest, client *registry.Client, name string) {
	ctx := r.Context()
	u, ok := a.registry.Snapshot().UpstreamOIDC(name)
	if a.upstreams == nil || !ok || (!p.Account && !client.AllowsIdentityProvider(name)) {
		a.pageError(w, r, http.StatusBadRequest, msgUpstreamUnknown)
		return
	}
	state, err := oauth2.NewSecret()
	if err == nil {
		var nonce string
		nonce, err = oauth2.NewSecret()
		st := upstreamState{RequestID: id, Provider: u.Name, ProviderUID: u.UID, Nonce: nonce, Verifier: xoauth2.GenerateVerifier(), BrowserHash: p.BrowserHash}
		var raw []byte
		if err == nil {
			raw, err = json.Marshal(st)
		}
		if err == nil {
			err = a.store.PutRecord(ctx, recordUpstreamState, store.HashOf(state), raw, a.requestTTL)
		}
		if err == nil {
			var location string
			location, err = a.upstreams.Start(ctx, u, a.issuer+oauth2.UpstreamCallbackPath, state, st.Nonce, st.Verifier)
			if err == nil {
				a.redirect(w, location)
				return
			}
			logr.FromContextOrDiscard(ctx).Info("upstream sign-in could not start", "identityProvider", u.Name, "error", err.Error())
			a.auditUpstreamFailure(ctx, client, u.Name, "upstream_unavailable")
			a.pages.renderError(w, r, http.StatusBadGateway, errorPage{Title: titleUpstreamFailed, Message: msgUpstreamFailed})
			return
		}
	}
	a.pageStoreError(w, r, err)
}

// serveUpstreamCallback takes the upstream's answer: the state (one-time, this browser's),
// then the code (or the error the upstream sent), then the same login completion as a password.
func (a *Flow) serveUpstreamCallback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	if len(q["state"]) != 1 || !oauth2.WellFormedSecret(q.Get("state")) || (a.upstreams == nil && a.github == nil) {
		a.pageError(w, r, http.StatusBadRequest, msgUpstreamState)
		return
	}
	if !a.admitPage(w, r, "upstream") {
		return
	}
	// The state is read, checked against this browser, then taken: another browser that saw
	// the callback URL cannot use it, nor burn it for the user.
	h := store.HashOf(q.Get("state"))
	raw, err := a.store.GetRecord(ctx, recordUpstreamState, h)
	var st upstreamState
	browser := cookieValue(r, a.cookies.browser)
	if err == nil && (json.Unmarshal(raw, &st) != nil || browser == "" || !sameHash(store.HashOf(browser), st.BrowserHash)) {
		err = store.ErrNotFound
	}
	if err == nil {
		_, err = a.store.TakeRecord(ctx, recordUpstreamState, h)
	}
	if errors.Is(err, store.ErrNotFound) {
		a.auditUpstreamFailure(ctx, nil, st.Provider, "bad_state")
		a.pageError(w, r, http.StatusBadRequest, msgUpstreamState)
		return
	}
	if err != nil {
		a.pageStoreError(w, r, err)
		return
	}
	p, found, err := a.loadPending(ctx, st.RequestID)
	if err != nil {
		a.pageStoreError(w, r, err)
		return
	}
	var client *registry.Client
	if found {
		client, found = a.pendingClient(p)
	}
	if !found || !sameHash(store.HashOf(browser), p.BrowserHash) {
		a.pageError(w, r, http.StatusBadRequest, msgExpired)
		return
	}
	if st.Kind == registry.KindGitHub {
		a.finishGitHub(w, r, st, p, client)
		return
	}
	u, ok := a.registry.Snapshot().UpstreamOIDC(st.Provider)
	if !ok || u.UID != st.ProviderUID || (!p.Account && !client.AllowsIdentityProvider(u.Name)) {
		a.pageError(w, r, http.StatusBadRequest, msgUpstreamUnknown)
		return
	}
	// RFC 9207: an upstream that names itself in the response must be the one the state is
	// for (a mix-up attack sends another provider's response here).
	if iss, sent := q["iss"]; sent && (len(iss) != 1 || iss[0] != u.Issuer) {
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
	user, err := a.upstreams.Finish(ctx, u, a.issuer+oauth2.UpstreamCallbackPath, code, st.Verifier, st.Nonce)
	if err != nil {
		reason, status, msg := upstreamFailure(err)
		logr.FromContextOrDiscard(ctx).Info("upstream sign-in failed", "identityProvider", u.Name, "reason", reason, "error", err.Error())
		a.auditUpstreamFailure(ctx, client, u.Name, reason)
		a.pages.renderError(w, r, status, errorPage{Title: titleUpstreamFailed, Message: msg})
		return
	}
	a.completeLogin(w, r, st.RequestID, p, client, user)
}

// upstreamFailure classifies a failed Finish: the provider's rules refusing the user, the
// store, or the upstream (unreachable, or an answer that does not verify).
func upstreamFailure(err error) (reason string, status int, message string) {
	switch {
	case errors.Is(err, upstream.ErrClaims) || errors.Is(err, upstream.ErrNotAllowed):
		return "refused", http.StatusForbidden, msgUpstreamRefused
	case errors.Is(err, upstream.ErrClientCredentials):
		return "client_credentials", http.StatusBadGateway, msgUpstreamClient
	case errors.Is(err, upstream.ErrIDToken):
		return "id_token_rejected", http.StatusBadGateway, msgUpstreamFailed
	case errors.Is(err, upstream.ErrUnavailable):
		return "upstream_unavailable", http.StatusBadGateway, msgUpstreamFailed
	case errors.Is(oauth2.FromStore(err), oauth2.ErrTemporarilyUnavailable):
		return "store_unavailable", http.StatusServiceUnavailable, msgBusy
	}
	return "upstream_failed", http.StatusBadGateway, msgUpstreamFailed
}

// upstreamDeniedMessage names the upstream's error code when it is one of RFC 6749's (4.1.2.1)
// or OpenID Connect's; anything else is not repeated.
func upstreamDeniedMessage(code string) string {
	switch code {
	case "access_denied", "invalid_request", "unauthorized_client", "unsupported_response_type", "invalid_scope",
		"server_error", "temporarily_unavailable", "interaction_required", "login_required", "account_selection_required",
		"consent_required":
	default:
		code = "unknown error"
	}
	return fmt.Sprintf(msgUpstreamDenied, code)
}

func (a *Flow) auditUpstreamFailure(ctx context.Context, client *registry.Client, provider, reason string) {
	ev := oauth2.AuditEvent{Event: oauth2.AuditLoginFailed, Outcome: "failure", Reason: "upstream " + provider + ": " + reason}
	if client != nil {
		ev.ClientID = client.ID
	}
	oauth2.Audit(ctx, ev)
}
