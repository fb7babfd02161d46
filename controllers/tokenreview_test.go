package controllers

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/latchkey-dev/latchkey/server/assertion"
	"github.com/latchkey-dev/latchkey/server/registry"
)

// reviewAudience is the audience Latchkey reviews ServiceAccount tokens for (its issuer).
const reviewAudience = "https://latchkey.example"

// unthrottledClient is a client of the suite's API server without client-go's default rate
// limit (5 requests/s, which the suite's shared client has): the server runs with
// ctrl.GetConfig's QPS -1, and a benchmark must measure the round trip, not the limiter.
func unthrottledClient(t require.TestingT) client.Client {
	cfg := rest.CopyConfig(suite.cfg)
	cfg.QPS = -1
	c, err := client.New(cfg, client.Options{Scheme: suite.scheme})
	require.NoError(t, err)
	return c
}

// createServiceAccount creates the ServiceAccount in the namespace.
func createServiceAccount(ctx context.Context, t require.TestingT, c client.Client, ns, name string) *corev1.ServiceAccount {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	require.NoError(t, c.Create(ctx, sa))
	return sa
}

// serviceAccountToken asks the API server for a token of the ServiceAccount (TokenRequest) with the
// audiences (none: the API server's own), valid ten minutes, the least it issues.
func serviceAccountToken(ctx context.Context, t require.TestingT, c client.Client, sa *corev1.ServiceAccount, audiences ...string) string {
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		Audiences: audiences, ExpirationSeconds: ptr.To[int64](600),
	}}
	require.NoError(t, c.SubResource("token").Create(ctx, sa, tr))
	require.NotEmpty(t, tr.Status.Token)
	return tr.Status.Token
}

func TestTokenReviewerAgainstTheAPIServer(t *testing.T) {
	ctx := t.Context()
	c := unthrottledClient(t)
	ns := newNamespace(t)
	sa := createServiceAccount(ctx, t, c, ns, "runner")
	reviewer := NewTokenReviewer(c)
	username := registry.ServiceAccountSubject(ns, "runner")

	recreated := createServiceAccount(ctx, t, c, ns, "recreated")
	recreatedToken := serviceAccountToken(ctx, t, c, recreated, reviewAudience)
	require.NoError(t, c.Delete(ctx, recreated))
	createServiceAccount(ctx, t, c, ns, "recreated")

	deleted := createServiceAccount(ctx, t, c, ns, "deleted")
	deletedToken := serviceAccountToken(ctx, t, c, deleted, reviewAudience)
	require.NoError(t, c.Delete(ctx, deleted))

	tests := []struct {
		name      string
		token     string
		audiences []string
		// authenticated: the API server authenticated the token as the ServiceAccount, for
		// the audiences in wantAudiences.
		authenticated bool
		wantAudiences []string
		// eventually: the API server reads ServiceAccounts through an informer, so a deletion
		// shows after a short delay.
		eventually bool
	}{
		{name: "a token for Latchkey's audience is authenticated as its ServiceAccount",
			token: serviceAccountToken(ctx, t, c, sa, reviewAudience), audiences: []string{reviewAudience},
			authenticated: true, wantAudiences: []string{reviewAudience}},
		{name: "a token for Latchkey and another audience is authenticated for Latchkey's alone",
			token: serviceAccountToken(ctx, t, c, sa, reviewAudience, "https://other.example"), audiences: []string{reviewAudience},
			authenticated: true, wantAudiences: []string{reviewAudience}},
		{name: "a token for another audience is not authenticated",
			token: serviceAccountToken(ctx, t, c, sa, "https://other.example"), audiences: []string{reviewAudience}},
		{name: "a token for the API server's own audience is not authenticated for Latchkey's",
			token: serviceAccountToken(ctx, t, c, sa), audiences: []string{reviewAudience}},
		{name: "a token of a ServiceAccount deleted and re-created under its name is not authenticated",
			token: recreatedToken, audiences: []string{reviewAudience}, eventually: true},
		{name: "a token of a deleted ServiceAccount is not authenticated",
			token: deletedToken, audiences: []string{reviewAudience}, eventually: true},
		{name: "something that is not a token is not authenticated",
			token: "not-a-token", audiences: []string{reviewAudience}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.eventually {
				require.EventuallyWithT(t, func(ct *assert.CollectT) {
					got, err := reviewer.Review(t.Context(), tt.token, tt.audiences)
					if assert.NoError(ct, err) {
						assert.False(ct, got.Authenticated)
					}
				}, waitFor, tick)
				return
			}
			got, err := reviewer.Review(t.Context(), tt.token, tt.audiences)
			require.NoError(t, err)
			if !tt.authenticated {
				assert.False(t, got.Authenticated)
				return
			}
			assert.True(t, got.Authenticated)
			assert.Equal(t, username, got.Username)
			assert.Equal(t, string(sa.UID), got.UID)
			assert.Equal(t, tt.wantAudiences, got.Audiences)
			assert.Contains(t, got.Groups, "system:serviceaccounts:"+ns)
			assert.NotEmpty(t, got.Extra, "the pod or credential of the token")
		})
	}

	t.Run("an API server that cannot be asked is ErrReviewUnavailable", func(t *testing.T) {
		canceled, cancel := context.WithCancel(t.Context())
		cancel()
		tok := serviceAccountToken(ctx, t, c, sa, reviewAudience)
		_, err := reviewer.Review(canceled, tok, []string{reviewAudience})
		require.ErrorIs(t, err, assertion.ErrReviewUnavailable)
		assert.NotContains(t, err.Error(), tok)
	})
}

// BenchmarkTokenReview measures one TokenReview round trip against the envtest API server: what
// a TokenReview cache miss costs beyond BenchmarkClientAuthentication's
// service_account_token/tokenreview_cache_miss. fresh_token reviews a new token each time (the
// API server's own token cache misses too); same_token reviews one token again and again (the
// API server's cache hits: the least a round trip costs).
func BenchmarkTokenReview(b *testing.B) {
	ctx := b.Context()
	c := unthrottledClient(b)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "bench-"}}
	require.NoError(b, c.Create(ctx, ns))
	sa := createServiceAccount(ctx, b, c, ns.Name, "runner")
	reviewer := NewTokenReviewer(c)
	audiences := []string{reviewAudience}
	review := func(b *testing.B, tok string) {
		r, err := reviewer.Review(ctx, tok, audiences)
		if err != nil || !r.Authenticated {
			b.Fatalf("review: %+v, %v", r, err)
		}
	}

	b.Run("fresh_token", func(b *testing.B) {
		// Tokens are requested before the timed loop: a TokenRequest is the kubelet's cost.
		tokens := make([]string, b.N)
		for i := range tokens {
			tokens[i] = serviceAccountToken(ctx, b, c, sa, reviewAudience)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			review(b, tokens[i])
		}
	})
	b.Run("same_token", func(b *testing.B) {
		tok := serviceAccountToken(ctx, b, c, sa, reviewAudience)
		b.ReportAllocs()
		for b.Loop() {
			review(b, tok)
		}
	})
}

func TestATracedTokenReviewIsASpanOfTheRequest(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	ctx, parent := tp.Tracer("test").Start(t.Context(), "POST /oauth2/token")
	c := unthrottledClient(t)
	sa := createServiceAccount(t.Context(), t, c, newNamespace(t), "traced")
	tok := serviceAccountToken(t.Context(), t, c, sa, reviewAudience)
	got, err := NewTokenReviewer(c).Review(ctx, tok, []string{reviewAudience})
	require.NoError(t, err)
	assert.True(t, got.Authenticated)
	parent.End()
	ended := rec.Ended()
	require.Len(t, ended, 2)
	assert.Equal(t, "kubernetes TokenReview", ended[0].Name())
	assert.Equal(t, parent.SpanContext().SpanID(), ended[0].Parent().SpanID())
	for _, kv := range ended[0].Attributes() {
		assert.NotContains(t, kv.Value.String(), tok, "the token in attribute %s", kv.Key)
	}
}
