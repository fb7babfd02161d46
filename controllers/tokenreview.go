package controllers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	authenticationv1 "k8s.io/api/authentication/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/latchkey-dev/latchkey/server/assertion"
	"github.com/latchkey-dev/latchkey/server/tracing"
)

// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:urls=/.well-known/openid-configuration;/openid/v1/jwks,verbs=get

// TokenReviewer reviews ServiceAccount tokens with the API server's TokenReview API: the API
// server checks the signature, the audience, the expiry, and that the ServiceAccount (by UID)
// and the Pod or Secret the token is bound to still exist. It implements assertion.Reviewer.
type TokenReviewer struct {
	client client.Client
}

var _ assertion.Reviewer = (*TokenReviewer)(nil)

// NewTokenReviewer returns a TokenReviewer creating TokenReviews with c (which must reach the
// API server directly: a TokenReview is never cached).
func NewTokenReviewer(c client.Client) *TokenReviewer { return &TokenReviewer{client: c} }

// Review creates a TokenReview of the token for the audiences. A token the API server refuses
// is a Review with Authenticated false; an error (wrapping assertion.ErrReviewUnavailable) means
// it could not answer. A traced request has a span "kubernetes TokenReview" for the call.
func (r *TokenReviewer) Review(ctx context.Context, token string, audiences []string) (assertion.Review, error) {
	tr := &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token, Audiences: audiences}}
	ctx, span := tracing.Start(ctx, "kubernetes TokenReview")
	err := r.client.Create(ctx, tr)
	tracing.End(span, err)
	if err != nil {
		// The error of a create never holds the token (the API server does not echo specs).
		return assertion.Review{}, fmt.Errorf("%w: %w", assertion.ErrReviewUnavailable, err)
	}
	st := tr.Status
	out := assertion.Review{
		Authenticated: st.Authenticated, Username: st.User.Username, UID: st.User.UID,
		Groups: st.User.Groups, Audiences: st.Audiences,
	}
	if len(st.User.Extra) > 0 {
		out.Extra = make(map[string][]string, len(st.User.Extra))
		for k, v := range st.User.Extra {
			out.Extra[k] = v
		}
	}
	return out, nil
}

// ClusterKeys returns the key set that verifies the cluster's ServiceAccount tokens without a
// TokenReview (the JWKS mode) and their issuer: the API server's /openid/v1/jwks, fetched with
// cfg's credentials, and the issuer of its /.well-known/openid-configuration unless issuer
// names it. The caller needs get on those two URLs (the ClusterRole system:service-account-
// issuer-discovery grants them).
func ClusterKeys(ctx context.Context, cfg *rest.Config, issuer string) (assertion.KeySet, string, error) {
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, "", fmt.Errorf("service account keys: %w", err)
	}
	base := strings.TrimSuffix(cfg.Host, "/")
	if !strings.Contains(base, "://") {
		base = "https://" + base
	}
	if issuer == "" {
		if issuer, err = discoverIssuer(ctx, hc, base+"/.well-known/openid-configuration"); err != nil {
			return nil, "", err
		}
	}
	keys, err := assertion.NewRemote(assertion.RemoteConfig{Issuer: issuer, JWKSURI: base + "/openid/v1/jwks", HTTPClient: hc})
	if err != nil {
		return nil, "", fmt.Errorf("service account keys: %w", err)
	}
	// Fetched once now, so that a server that cannot read them (RBAC) says so at start.
	if err := keys.Refresh(ctx); err != nil {
		return nil, "", fmt.Errorf("service account keys (is get on /openid/v1/jwks allowed?): %w", err)
	}
	return keys, issuer, nil
}

// discoverIssuer reads the issuer of the API server's OIDC discovery document.
func discoverIssuer(ctx context.Context, hc *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("service account issuer discovery: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("service account issuer discovery: %s answered %s (is get on /.well-known/openid-configuration allowed?)", url, resp.Status)
	}
	var doc struct {
		Issuer string `json:"issuer"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&doc); err != nil {
		return "", fmt.Errorf("service account issuer discovery: %w", err)
	}
	if doc.Issuer == "" {
		return "", errors.New("service account issuer discovery: the document names no issuer")
	}
	return doc.Issuer, nil
}
