package workload

import (
	"context"
	"strings"
	"time"

	"github.com/latchkey-dev/latchkey/server/assertion"
	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/registry"
)

// SubjectToken is a workload JWT that verified as the subject or actor token of a token
// exchange (RFC 8693, subject_token_type urn:ietf:params:oauth:token-type:jwt).
type SubjectToken struct {
	// Source is registry.SubjectServiceAccountToken or registry.SubjectWorkloadIssuer.
	Source string
	// IssuerName is the WorkloadIssuer's name; "" for a ServiceAccount token.
	IssuerName string
	// Issuer and Subject are iss and sub (for a ServiceAccount token, the reviewed
	// system:serviceaccount:<namespace>:<name>).
	Issuer, Subject string
	// Expiry is exp.
	Expiry time.Time
	// Claims are all the token's claims (may_act and act are read from them). Do not modify.
	Claims map[string]any
}

// serviceAccountPrefix begins the username of every ServiceAccount (registry.ServiceAccountSubject).
const serviceAccountPrefix = "system:serviceaccount:"

// SubjectPolicy decides, before a token is verified, whether its source may be exchanged
// (issuer is the WorkloadIssuer's name, "" for a ServiceAccount token): nil, or the error to
// answer.
type SubjectPolicy func(source, issuer string) error

// VerifySubjectToken verifies a workload JWT presented as a token exchange's subject or actor
// token. A token whose iss is a WorkloadIssuer's is verified as that issuer's client
// assertions are (its keys, audiences, claim rules and lifetime bound; namespace is the
// requesting client's, which must be among its allowedNamespaces); any other token as a
// ServiceAccount token of the local cluster (aud exactly Latchkey's issuer, at most
// DefaultMaxAssertionLifetime, not an extended token; reviewed by the API server, or checked
// against the cluster's keys in JWKS mode). allow is asked before any key or review is used.
// Refusals are invalid_grant; keys or a reviewer that cannot be reached are
// temporarily_unavailable.
func (v *Verifier) VerifySubjectToken(ctx context.Context, snap *registry.Snapshot, namespace, raw string, allow SubjectPolicy) (SubjectToken, error) {
	tok, err := assertion.Parse(raw)
	if err != nil {
		return SubjectToken{}, subjectRefusal.refused(err)
	}
	iss := tok.UnverifiedClaims().Issuer
	var refusedBy error
	for w := range snap.WorkloadIssuers() {
		if w.Issuer != iss || iss == "" {
			continue
		}
		if err := allow(registry.SubjectWorkloadIssuer, w.Name); err != nil {
			refusedBy = err
			continue
		}
		return v.issuerSubject(ctx, w, namespace, tok)
	}
	if refusedBy != nil {
		return SubjectToken{}, refusedBy
	}
	if err := allow(registry.SubjectServiceAccountToken, ""); err != nil {
		return SubjectToken{}, err
	}
	claims, username, err := v.review(ctx, tok, raw, assertion.Policy{
		Issuer: v.cfg.ClusterIssuer, Audiences: []string{v.cfg.Issuer}, ExactAudience: true,
		MaxLifetime: DefaultMaxAssertionLifetime, RefuseExtendedKubernetesTokens: true, Now: v.now,
	}, subjectRefusal)
	switch {
	case err != nil:
		return SubjectToken{}, err
	case username != claims.Subject || !strings.HasPrefix(username, serviceAccountPrefix):
		return SubjectToken{}, oauth2.ErrInvalidGrant.WithDescription("The subject or actor token is not a ServiceAccount token of this cluster.")
	}
	return SubjectToken{
		Source: registry.SubjectServiceAccountToken, Issuer: claims.Issuer, Subject: username,
		Expiry: claims.Expiry, Claims: claims.Raw,
	}, nil
}

// issuerSubject verifies a token of the WorkloadIssuer w as a subject or actor token.
func (v *Verifier) issuerSubject(ctx context.Context, w *registry.WorkloadIssuer, namespace string, tok *assertion.Token) (SubjectToken, error) {
	if !w.AllowsNamespace(namespace) {
		return SubjectToken{}, oauth2.ErrInvalidGrant.WithDescription("The client's namespace may not use the token's WorkloadIssuer.")
	}
	ik := v.issuerKeys(w)
	if ik.err != nil {
		return SubjectToken{}, oauth2.ErrInvalidGrant.WithDescription("The token's WorkloadIssuer cannot be used: " + ik.err.Error())
	}
	claims, err := assertion.Verify(ctx, tok, ik.keys, assertion.Policy{
		Issuer: w.Issuer, Audiences: w.Audiences, MaxLifetime: maxLifetime(w.MaxAssertionLifetime),
		RefuseExtendedKubernetesTokens: true, Rules: ik.rules, Now: v.now,
	})
	switch {
	case err != nil:
		return SubjectToken{}, subjectRefusal.refused(err)
	case claims.Subject == "":
		return SubjectToken{}, oauth2.ErrInvalidGrant.WithDescription("The subject or actor token has no sub.")
	}
	return SubjectToken{
		Source: registry.SubjectWorkloadIssuer, IssuerName: w.Name, Issuer: claims.Issuer, Subject: claims.Subject,
		Expiry: claims.Expiry, Claims: claims.Raw,
	}, nil
}
