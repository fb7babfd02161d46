package workload_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/server/assertion"
	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/workload"
)

// allowed lets every source be exchanged and records what was asked.
type allowed struct{ asked []string }

func (a *allowed) all(source, issuer string) error {
	a.asked = append(a.asked, source+"/"+issuer)
	return nil
}

var errNotAllowed = oauth2.ErrInvalidTarget.WithDescription("not allowed")

func TestVerifySubjectTokenOfAServiceAccount(t *testing.T) {
	key := newSigningKey(t, "cluster-1")
	rev := &fakeReviewer{review: assertion.Review{Authenticated: true, Username: saSubject, Audiences: []string{latchkeyIssuer}}}
	v := newVerifier(t, workload.Config{Reviewer: rev})
	reg := registry.New()

	t.Run("a reviewed ServiceAccount token for Latchkey is a subject, of any namespace", func(t *testing.T) {
		var a allowed
		got, err := v.VerifySubjectToken(t.Context(), reg.Snapshot(), "elsewhere", key.sign(t, saClaims()), a.all)
		require.NoError(t, err)
		assert.Equal(t, registry.SubjectServiceAccountToken, got.Source)
		assert.Equal(t, saSubject, got.Subject)
		assert.Equal(t, verifierNow.Add(10*time.Minute), got.Expiry)
		assert.Equal(t, []string{registry.SubjectServiceAccountToken + "/"}, a.asked)
	})
	t.Run("the policy is asked before the API server", func(t *testing.T) {
		before := rev.count()
		_, err := v.VerifySubjectToken(t.Context(), reg.Snapshot(), appNamespace, key.sign(t, saClaims(func(c map[string]any) { c["jti"] = "x" })),
			func(string, string) error { return errNotAllowed })
		require.ErrorIs(t, err, oauth2.ErrInvalidTarget)
		assert.Equal(t, before, rev.count())
	})
	t.Run("a token for another audience is refused with invalid_grant before any review", func(t *testing.T) {
		before := rev.count()
		tok := key.sign(t, saClaims(func(c map[string]any) { c["aud"] = []string{"https://kubernetes.default.svc"} }))
		_, err := v.VerifySubjectToken(t.Context(), reg.Snapshot(), appNamespace, tok, (&allowed{}).all)
		requireOAuthError(t, err, "invalid_grant", http.StatusBadRequest, "audience", tok)
		assert.Equal(t, before, rev.count())
	})
	t.Run("a token the API server refuses is invalid_grant", func(t *testing.T) {
		refusing := newVerifier(t, workload.Config{Reviewer: &fakeReviewer{}})
		tok := key.sign(t, saClaims())
		_, err := refusing.VerifySubjectToken(t.Context(), reg.Snapshot(), appNamespace, tok, (&allowed{}).all)
		requireOAuthError(t, err, "invalid_grant", http.StatusBadRequest, "refused", tok)
	})
	t.Run("an API server that cannot be reached is temporarily_unavailable", func(t *testing.T) {
		down := newVerifier(t, workload.Config{Reviewer: &fakeReviewer{err: errors.Join(assertion.ErrReviewUnavailable)}})
		_, err := down.VerifySubjectToken(t.Context(), reg.Snapshot(), appNamespace, key.sign(t, saClaims()), (&allowed{}).all)
		require.ErrorIs(t, err, oauth2.ErrTemporarilyUnavailable)
	})
	t.Run("a malformed token is invalid_grant", func(t *testing.T) {
		_, err := v.VerifySubjectToken(t.Context(), reg.Snapshot(), appNamespace, "a.b.c", (&allowed{}).all)
		require.ErrorIs(t, err, oauth2.ErrInvalidGrant)
	})
}

func TestVerifySubjectTokenOfAWorkloadIssuer(t *testing.T) {
	key := newSigningKey(t, "ci-1")
	v := newVerifier(t, workload.Config{})
	reg := registry.New()
	reg.PutWorkloadIssuer(ciIssuer(key))

	t.Run("a token of the issuer is a subject of any sub, named with the issuer", func(t *testing.T) {
		var a allowed
		got, err := v.VerifySubjectToken(t.Context(), reg.Snapshot(), appNamespace, key.sign(t, ciClaims(func(c map[string]any) {
			c["sub"] = "repo:org/other"
			c["may_act"] = map[string]any{"sub": "gateway"}
		})), a.all)
		require.NoError(t, err)
		assert.Equal(t, registry.SubjectWorkloadIssuer, got.Source)
		assert.Equal(t, ciIssuerName, got.IssuerName)
		assert.Equal(t, "repo:org/other", got.Subject)
		assert.Equal(t, map[string]any{"sub": "gateway"}, got.Claims["may_act"])
		assert.Equal(t, []string{registry.SubjectWorkloadIssuer + "/" + ciIssuerName}, a.asked)
	})
	t.Run("the issuer's claim rules apply", func(t *testing.T) {
		tok := key.sign(t, ciClaims(func(c map[string]any) { c["repository"] = "evil/repo" }))
		_, err := v.VerifySubjectToken(t.Context(), reg.Snapshot(), appNamespace, tok, (&allowed{}).all)
		requireOAuthError(t, err, "invalid_grant", http.StatusBadRequest, "only the org's repositories", tok)
	})
	t.Run("a requester of a namespace the issuer does not allow is refused", func(t *testing.T) {
		_, err := v.VerifySubjectToken(t.Context(), reg.Snapshot(), "elsewhere", key.sign(t, ciClaims()), (&allowed{}).all)
		require.ErrorIs(t, err, oauth2.ErrInvalidGrant)
	})
	t.Run("an issuer the policy refuses is not tried as a ServiceAccount token", func(t *testing.T) {
		var asked []string
		_, err := v.VerifySubjectToken(t.Context(), reg.Snapshot(), appNamespace, key.sign(t, ciClaims()), func(source, issuer string) error {
			asked = append(asked, source)
			return errNotAllowed
		})
		require.ErrorIs(t, err, oauth2.ErrInvalidTarget)
		assert.Equal(t, []string{registry.SubjectWorkloadIssuer}, asked)
	})
	t.Run("another key's signature is refused", func(t *testing.T) {
		tok := newSigningKey(t, "ci-1").sign(t, ciClaims())
		_, err := v.VerifySubjectToken(t.Context(), reg.Snapshot(), appNamespace, tok, (&allowed{}).all)
		requireOAuthError(t, err, "invalid_grant", http.StatusBadRequest, "refused", tok)
	})
}
