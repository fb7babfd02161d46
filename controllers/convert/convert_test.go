package convert

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
	"github.com/latchkey-dev/latchkey/server/password"
	"github.com/latchkey-dev/latchkey/server/registry"
)

var created = metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))

func oauthClient(mutate func(*v1alpha1.OAuthClient)) *v1alpha1.OAuthClient {
	oc := &v1alpha1.OAuthClient{
		ObjectMeta: metav1.ObjectMeta{Name: "billing", Namespace: "payments", CreationTimestamp: created},
		Spec: v1alpha1.OAuthClientSpec{
			GrantTypes: []v1alpha1.GrantType{v1alpha1.GrantTypeClientCredentials},
			Scopes:     []string{"read:projects", "admin:read"},
		},
	}
	if mutate != nil {
		mutate(oc)
	}
	return oc
}

// withRedirectURIs makes the client an authorization_code client with the redirect URIs.
func withRedirectURIs(uris ...string) func(*v1alpha1.OAuthClient) {
	return func(oc *v1alpha1.OAuthClient) {
		oc.Spec.GrantTypes = []v1alpha1.GrantType{v1alpha1.GrantTypeAuthorizationCode}
		oc.Spec.RedirectURIs = uris
	}
}

func secret(ns, name string, data map[string]string) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: map[string][]byte{}}
	for k, v := range data {
		s.Data[k] = []byte(v)
	}
	return s
}

func TestClientIDAndSecretRef(t *testing.T) {
	tests := []struct {
		name             string
		mutate           func(*v1alpha1.OAuthClient)
		wantID           string
		wantSecret, wKey string
	}{
		{"defaults come from the name and namespace", nil, "billing.payments", "billing-oauth-client", "client-secret"},
		{"spec.clientID wins", func(oc *v1alpha1.OAuthClient) { oc.Spec.ClientID = "billing-service" },
			"billing-service", "billing-oauth-client", "client-secret"},
		{"a secretRef without key keeps the default key", func(oc *v1alpha1.OAuthClient) {
			oc.Spec.SecretRef = &v1alpha1.LocalSecretKeyRef{Name: "creds"}
		}, "billing.payments", "creds", "client-secret"},
		{"a full secretRef is used as written", func(oc *v1alpha1.OAuthClient) {
			oc.Spec.SecretRef = &v1alpha1.LocalSecretKeyRef{Name: "creds", Key: "pw"}
		}, "billing.payments", "creds", "pw"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			oc := oauthClient(tt.mutate)
			assert.Equal(t, tt.wantID, ClientID(oc))
			name, key := SecretRef(oc)
			assert.Equal(t, tt.wantSecret, name)
			assert.Equal(t, tt.wKey, key)
		})
	}
}

func TestClient(t *testing.T) {
	good := secret("payments", "billing-oauth-client", map[string]string{"client-secret": "s3cret"})
	tests := []struct {
		name    string
		mutate  func(*v1alpha1.OAuthClient)
		secret  *corev1.Secret
		wantErr error
		check   func(t *testing.T, c registry.Client)
	}{
		{
			name: "a confidential client gets defaults and only the hash of its secret", secret: good,
			check: func(t *testing.T, c registry.Client) {
				assert.Equal(t, "payments/billing", c.Source)
				assert.Equal(t, "payments", c.Namespace)
				assert.Equal(t, "billing.payments", c.ID)
				assert.Equal(t, registry.Confidential, c.Type)
				assert.Empty(t, c.AuthMethod, "no method declared: both secret methods are accepted")
				assert.Equal(t, []string{"client_credentials"}, c.GrantTypes)
				assert.Equal(t, []string{"billing.payments"}, c.Audiences)
				assert.Equal(t, "RequiredS256", c.PKCE)
				assert.Equal(t, "Remember", c.Consent)
				assert.Equal(t, "Optional", c.DPoP, "DPoP is used when a proof is sent")
				assert.True(t, c.Created.Equal(created.Time))
				assert.True(t, c.HasSecret)
				assert.Equal(t, registry.HashSecret([]byte("s3cret")), c.SecretHash)
				assert.True(t, c.CheckSecret("s3cret"))
				assert.False(t, c.CheckSecret("s3cret\n"))
				assert.Zero(t, c.AccessTokenLifetime)
			},
		},
		{
			name: "lifetimes are converted from seconds", secret: good,
			mutate: func(oc *v1alpha1.OAuthClient) {
				oc.Spec.Lifetimes = &v1alpha1.TokenLifetimes{AccessToken: seconds(60), RefreshToken: seconds(120), IDToken: seconds(30), AuthorizationCode: seconds(10)}
			},
			check: func(t *testing.T, c registry.Client) {
				assert.Equal(t, time.Minute, c.AccessTokenLifetime)
				assert.Equal(t, 2*time.Minute, c.RefreshTokenLifetime)
				assert.Equal(t, 30*time.Second, c.IDTokenLifetime)
				assert.Equal(t, 10*time.Second, c.CodeLifetime)
			},
		},
		{
			name: "lifetimes are converted from duration strings", secret: good,
			mutate: func(oc *v1alpha1.OAuthClient) {
				oc.Spec.Lifetimes = &v1alpha1.TokenLifetimes{AccessToken: duration("1m"), RefreshToken: duration("1h30m"), IDToken: duration("30s"), AuthorizationCode: duration("10s")}
			},
			check: func(t *testing.T, c registry.Client) {
				assert.Equal(t, time.Minute, c.AccessTokenLifetime)
				assert.Equal(t, 90*time.Minute, c.RefreshTokenLifetime)
				assert.Equal(t, 30*time.Second, c.IDTokenLifetime)
				assert.Equal(t, 10*time.Second, c.CodeLifetime)
			},
		},
		{
			name: "a lifetime of 0 seconds is the server default, as files written before the CRD's minimum have it", secret: good,
			mutate: func(oc *v1alpha1.OAuthClient) {
				oc.Spec.Lifetimes = &v1alpha1.TokenLifetimes{AccessToken: seconds(0)}
			},
			check: func(t *testing.T, c registry.Client) {
				assert.Zero(t, c.AccessTokenLifetime)
			},
		},
		{
			name: "a custom secret key and client_secret_post are honoured",
			mutate: func(oc *v1alpha1.OAuthClient) {
				oc.Spec.SecretRef = &v1alpha1.LocalSecretKeyRef{Name: "creds", Key: "pw"}
				oc.Spec.SecretPolicy = v1alpha1.SecretPolicyExternal
				oc.Spec.TokenEndpointAuthMethod = v1alpha1.AuthMethodClientSecretPost
			},
			secret: secret("payments", "creds", map[string]string{"pw": "other"}),
			check: func(t *testing.T, c registry.Client) {
				assert.True(t, c.CheckSecret("other"))
				assert.Equal(t, "client_secret_post", c.AuthMethod)
			},
		},
		{
			name: "stringData is read when data lacks the key (manifests on disk)",
			secret: &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "billing-oauth-client"},
				StringData: map[string]string{"client-secret": "from-manifest"}},
			check: func(t *testing.T, c registry.Client) { assert.True(t, c.CheckSecret("from-manifest")) },
		},
		{
			name: "a missing secret returns the client without a secret and ErrSecretNotFound", wantErr: ErrSecretNotFound,
			check: func(t *testing.T, c registry.Client) {
				assert.Equal(t, "billing.payments", c.ID)
				assert.False(t, c.HasSecret)
				assert.False(t, c.CheckSecret(""))
			},
		},
		{
			name: "a secret without the key is not found", wantErr: ErrSecretNotFound,
			secret: secret("payments", "billing-oauth-client", map[string]string{"other": "x"}),
		},
		{
			name: "an empty client secret is not found, so it can never authenticate", wantErr: ErrSecretNotFound,
			secret: secret("payments", "billing-oauth-client", map[string]string{"client-secret": ""}),
		},
		{
			name: "a public client needs no secret and authenticates with none",
			mutate: func(oc *v1alpha1.OAuthClient) {
				oc.Spec.Type = v1alpha1.ClientTypePublic
				oc.Spec.GrantTypes = []v1alpha1.GrantType{v1alpha1.GrantTypeAuthorizationCode}
				oc.Spec.RedirectURIs = []string{"http://127.0.0.1:8080/cb", "com.example.app:/cb"}
			},
			check: func(t *testing.T, c registry.Client) {
				assert.Equal(t, registry.Public, c.Type)
				assert.Equal(t, "none", c.AuthMethod)
				assert.False(t, c.HasSecret)
			},
		},
		{
			name: "post-logout redirect URIs and the logout policy reach the registry",
			mutate: func(oc *v1alpha1.OAuthClient) {
				oc.Spec.Type = v1alpha1.ClientTypePublic
				oc.Spec.GrantTypes = []v1alpha1.GrantType{v1alpha1.GrantTypeAuthorizationCode}
				oc.Spec.RedirectURIs = []string{"https://app.example/cb"}
				oc.Spec.PostLogoutRedirectURIs = []string{"https://app.example/bye", "com.example.app:/bye"}
				oc.Spec.Logout = &v1alpha1.LogoutPolicy{RevokeRefreshTokens: true}
			},
			check: func(t *testing.T, c registry.Client) {
				assert.Equal(t, []string{"https://app.example/bye", "com.example.app:/bye"}, c.PostLogoutRedirectURIs)
				assert.True(t, c.LogoutRevokesRefreshTokens)
			},
		},
		{
			name: "a client without a logout policy keeps its refresh tokens at logout", secret: good,
			check: func(t *testing.T, c registry.Client) {
				assert.Empty(t, c.PostLogoutRedirectURIs)
				assert.False(t, c.LogoutRevokesRefreshTokens)
			},
		},
		{
			name: "a post-logout redirect URI with a fragment is invalid", secret: good, wantErr: ErrInvalidSpec,
			mutate: func(oc *v1alpha1.OAuthClient) { oc.Spec.PostLogoutRedirectURIs = []string{"https://app.example/bye#x"} },
		},
		{
			name: "a post-logout redirect URI to a host merely starting with localhost is invalid", secret: good, wantErr: ErrInvalidSpec,
			mutate: func(oc *v1alpha1.OAuthClient) {
				oc.Spec.PostLogoutRedirectURIs = []string{"http://localhost.evil.example/bye"}
			},
		},
		{
			name: "defaultScopes outside scopes are invalid", secret: good, wantErr: ErrInvalidSpec,
			mutate: func(oc *v1alpha1.OAuthClient) { oc.Spec.DefaultScopes = []string{"write:projects"} },
		},
		{
			name: "a public client with client_credentials is invalid", wantErr: ErrInvalidSpec,
			mutate: func(oc *v1alpha1.OAuthClient) { oc.Spec.Type = v1alpha1.ClientTypePublic },
		},
		{
			name: "a confidential client with auth method none is invalid", secret: good, wantErr: ErrInvalidSpec,
			mutate: func(oc *v1alpha1.OAuthClient) { oc.Spec.TokenEndpointAuthMethod = v1alpha1.AuthMethodNone },
		},
		{
			name: "authorization_code without redirect URIs is invalid", secret: good, wantErr: ErrInvalidSpec,
			mutate: func(oc *v1alpha1.OAuthClient) {
				oc.Spec.GrantTypes = []v1alpha1.GrantType{v1alpha1.GrantTypeAuthorizationCode}
			},
		},
		{
			name: "http redirect URIs to a host merely starting with localhost are invalid", secret: good, wantErr: ErrInvalidSpec,
			mutate: withRedirectURIs("http://localhost.evil.example/cb"),
		},
		{
			name: "redirect URIs with a fragment are invalid", secret: good, wantErr: ErrInvalidSpec,
			mutate: withRedirectURIs("https://app.example/cb#x"),
		},
		{
			name: "a redirect URI with user information is invalid, as registration refuses it", secret: good, wantErr: ErrInvalidSpec,
			mutate: withRedirectURIs("https://user:pw@example.com/cb"),
		},
		{
			name: "a private-use redirect URI with nothing after its scheme is invalid", secret: good, wantErr: ErrInvalidSpec,
			mutate: withRedirectURIs("com.example.app:"),
		},
		{
			name: "a redirect URI with a space is invalid", secret: good, wantErr: ErrInvalidSpec,
			mutate: withRedirectURIs("https://example.com/a b"),
		},
		{
			name: "External without secretRef is invalid", wantErr: ErrInvalidSpec,
			mutate: func(oc *v1alpha1.OAuthClient) { oc.Spec.SecretPolicy = v1alpha1.SecretPolicyExternal },
		},
		{
			name: "an unknown grant type is invalid (manifests skip the CRD enum)", secret: good, wantErr: ErrInvalidSpec,
			mutate: func(oc *v1alpha1.OAuthClient) { oc.Spec.GrantTypes = []v1alpha1.GrantType{"implicit"} },
		},
		{
			name: "no grant types is invalid", secret: good, wantErr: ErrInvalidSpec,
			mutate: func(oc *v1alpha1.OAuthClient) { oc.Spec.GrantTypes = nil },
		},
		{
			name: "a malformed clientID is invalid", secret: good, wantErr: ErrInvalidSpec,
			mutate: func(oc *v1alpha1.OAuthClient) { oc.Spec.ClientID = "bad id" },
		},
		{
			name: "a Generate secretRef key that collides with client-id is invalid", wantErr: ErrInvalidSpec,
			mutate: func(oc *v1alpha1.OAuthClient) {
				oc.Spec.SecretRef = &v1alpha1.LocalSecretKeyRef{Name: "creds", Key: "client-id"}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Client(oauthClient(tt.mutate), tt.secret)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				other := ErrInvalidSpec
				if tt.wantErr == ErrInvalidSpec {
					other = ErrSecretNotFound
				}
				assert.NotErrorIs(t, err, other)
			} else {
				require.NoError(t, err)
			}
			if tt.check != nil {
				tt.check(t, c)
			}
			if s := tt.secret; s != nil && err != nil {
				for _, v := range s.Data {
					if len(v) > 0 {
						assert.NotContains(t, err.Error(), string(v), "errors must not echo secret values")
					}
				}
			}
		})
	}
}

func TestClientInvalidSpecListsEveryProblem(t *testing.T) {
	_, err := Client(oauthClient(func(oc *v1alpha1.OAuthClient) {
		oc.Spec.DefaultScopes = []string{"nope"}
		oc.Spec.PKCE = "Sometimes"
		oc.Spec.DPoP = "Maybe"
	}), nil)
	require.ErrorIs(t, err, ErrInvalidSpec)
	assert.Contains(t, err.Error(), `defaultScope "nope"`)
	assert.Contains(t, err.Error(), `pkce "Sometimes"`)
	assert.Contains(t, err.Error(), `dpop "Maybe"`)
}

func TestClientDPoPPolicyReachesTheRegistry(t *testing.T) {
	c, err := Client(oauthClient(func(oc *v1alpha1.OAuthClient) { oc.Spec.DPoP = v1alpha1.DPoPRequired }),
		secret("payments", "billing-oauth-client", map[string]string{"client-secret": "s3cret"}))
	require.NoError(t, err)
	assert.Equal(t, "Required", c.DPoP)
}

func TestClientRefusesSomeoneElsesSecret(t *testing.T) {
	_, err := Client(oauthClient(nil), secret("payments", "other", map[string]string{"client-secret": "x"}))
	require.Error(t, err)
	assert.NotErrorIs(t, err, ErrSecretNotFound)
}

func TestScope(t *testing.T) {
	s := &v1alpha1.Scope{
		ObjectMeta: metav1.ObjectMeta{Name: "read-projects", CreationTimestamp: created},
		Spec: v1alpha1.ScopeSpec{Name: "read:projects", Description: "List projects", Claims: []string{"projects"},
			Default: true, AllowedNamespaces: []string{"payments"}},
	}
	source, sc, err := Scope(s)
	require.NoError(t, err)
	assert.Equal(t, "read-projects", source)
	assert.Equal(t, registry.Scope{Created: created.Time, Name: "read:projects", Description: "List projects",
		Claims: []string{"projects"}, Default: true, AllowedNamespaces: []string{"payments"}}, sc)
	sc.Claims[0] = "changed"
	assert.Equal(t, "projects", s.Spec.Claims[0], "the registry value must not alias the resource")
}

func TestScopeNameIsValidated(t *testing.T) {
	tests := []struct {
		name    string
		scope   string
		wantErr bool
	}{
		{"a name with a colon is a valid scope token", "read:projects", false},
		{"every printable character but space, quote and backslash is allowed", "!#$%&'()*+,-./09:;<=>?@AZ[]^_`az{|}~", false},
		{"a name of 128 characters is allowed", strings.Repeat("a", 128), false},
		{"an empty name is invalid", "", true},
		{"a name with a space is invalid (scopes are space-separated)", "read projects", true},
		{"a name with a double quote is invalid", `read"projects`, true},
		{"a name with a backslash is invalid", `read\projects`, true},
		{"a name with a newline is invalid", "read\nprojects", true},
		{"a non-ASCII name is invalid", "lesen:projekte-ä", true},
		{"a name of 129 characters is invalid", strings.Repeat("a", 129), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			source, _, err := Scope(&v1alpha1.Scope{ObjectMeta: metav1.ObjectMeta{Name: "s"}, Spec: v1alpha1.ScopeSpec{Name: tt.scope}})
			assert.Equal(t, "s", source, "the source is returned even for an invalid scope")
			if tt.wantErr {
				assert.ErrorIs(t, err, ErrInvalidSpec)
			} else {
				assert.NoError(t, err)
			}
		})
	}
}

func TestInvalidRedirectURIMessageNamesTheURI(t *testing.T) {
	long := "https://app.example/" + strings.Repeat("a", 1000) + "#x"
	tests := []struct {
		name, uri, want string
	}{
		{"user information is named with the reason", "https://user:pw@example.com/cb",
			`redirectURI "https://user:pw@example.com/cb" must not contain user information`},
		{"a space is named with the reason", "https://example.com/a b",
			`redirectURI "https://example.com/a b" must not contain white space or control characters`},
		{"nothing after the scheme is named with the reason", "com.example.app:",
			`redirectURI "com.example.app:" has nothing after its scheme`},
		{"a long URI is named by its first 256 bytes", long, fmt.Sprintf("redirectURI %q... must not contain a fragment", long[:256])},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Client(oauthClient(withRedirectURIs("https://app.example/ok", tt.uri)), nil)
			require.ErrorIs(t, err, ErrInvalidSpec)
			assert.Contains(t, err.Error(), tt.want)
			assert.NotContains(t, err.Error(), "app.example/ok", "only the offending URI is named")
		})
	}
}

func seconds(n int) *intstr.IntOrString { return ptr.To(intstr.FromInt(n)) }

func duration(d string) *intstr.IntOrString { return ptr.To(intstr.FromString(d)) }

func TestLifetimesOnDiskAreRefusedOutOfRange(t *testing.T) {
	tests := []struct {
		name      string
		lifetimes v1alpha1.TokenLifetimes
		want      string
	}{
		{"an access token of more than 86400 seconds is refused", v1alpha1.TokenLifetimes{AccessToken: seconds(86401)},
			"lifetimes.accessToken must be integer seconds from 1 to 86400 or a duration from 1s to 24h0m0s"},
		{"an access token of more than 24h is refused", v1alpha1.TokenLifetimes{AccessToken: duration("24h1s")},
			"lifetimes.accessToken must be integer seconds from 1 to 86400"},
		{"a negative number of seconds is refused", v1alpha1.TokenLifetimes{IDToken: seconds(-1)},
			"lifetimes.idToken must be integer seconds from 1 to 86400"},
		{"a duration under a second is refused", v1alpha1.TokenLifetimes{AuthorizationCode: duration("500ms")},
			"lifetimes.authorizationCode must be integer seconds from 1 to 3600 or a duration from 1s to 1h0m0s"},
		{"a zero duration string is refused", v1alpha1.TokenLifetimes{AuthorizationCode: duration("0s")},
			"lifetimes.authorizationCode must be integer seconds from 1 to 3600"},
		{"a refresh token of more than 365 days is refused", v1alpha1.TokenLifetimes{RefreshToken: duration("8761h")},
			"lifetimes.refreshToken must be integer seconds from 1 to 31536000 or a duration from 1s to 8760h0m0s"},
		{"a quoted number is not a duration", v1alpha1.TokenLifetimes{AccessToken: duration("3600")},
			`lifetimes.accessToken: "3600" is neither integer seconds nor a duration such as 30m or 1h`},
		{"a day unit is not a duration", v1alpha1.TokenLifetimes{RefreshToken: duration("30d")},
			`lifetimes.refreshToken: "30d" is neither integer seconds nor a duration`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Client(oauthClient(func(oc *v1alpha1.OAuthClient) { oc.Spec.Lifetimes = &tt.lifetimes }), nil)
			require.ErrorIs(t, err, ErrInvalidSpec)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestLifetimesAtTheirBoundsAreAccepted(t *testing.T) {
	tests := []struct {
		name      string
		lifetimes v1alpha1.TokenLifetimes
	}{
		{"the largest lifetimes in seconds", v1alpha1.TokenLifetimes{AccessToken: seconds(86400), RefreshToken: seconds(31536000), IDToken: seconds(86400), AuthorizationCode: seconds(3600)}},
		{"the largest lifetimes as durations", v1alpha1.TokenLifetimes{AccessToken: duration("24h"), RefreshToken: duration("8760h"), IDToken: duration("1440m"), AuthorizationCode: duration("3600s")}},
		{"the smallest lifetimes", v1alpha1.TokenLifetimes{AccessToken: seconds(1), RefreshToken: duration("1s"), IDToken: duration("1000ms"), AuthorizationCode: seconds(1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Client(oauthClient(func(oc *v1alpha1.OAuthClient) { oc.Spec.Lifetimes = &tt.lifetimes }), nil)
			assert.NotErrorIs(t, err, ErrInvalidSpec)
		})
	}
}

func TestUser(t *testing.T) {
	bc, err := bcrypt.GenerateFromPassword([]byte("correct horse"), bcrypt.MinCost)
	require.NoError(t, err)
	const argon = "$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHRzb21lc2FsdA$RdescudvJCsgt3ub+b+dWRWJTmaaJObG0fN9vOyd1sQ"
	ref := &v1alpha1.SecretKeyRef{Namespace: "latchkey", Name: "alice-password"}
	user := func(ref *v1alpha1.SecretKeyRef) *v1alpha1.User {
		return &v1alpha1.User{
			ObjectMeta: metav1.ObjectMeta{Name: "alice", CreationTimestamp: created},
			Spec: v1alpha1.UserSpec{Username: "alice", Email: "alice@example.com", EmailVerified: true,
				DisplayName: "Alice", Groups: []string{"admins"}, PasswordSecretRef: ref},
		}
	}
	pw := func(v string) *corev1.Secret {
		return secret("latchkey", "alice-password", map[string]string{"hash": v})
	}
	tests := []struct {
		name     string
		user     *v1alpha1.User
		secret   *corev1.Secret
		wantErr  error
		wantHash string
	}{
		{"a bcrypt hash is accepted", user(ref), pw(string(bc)), nil, string(bc)},
		{"a bcrypt hash with a trailing newline is trimmed", user(ref), pw(string(bc) + "\n"), nil, string(bc)},
		{"a $2y$ bcrypt hash is accepted", user(ref), pw("$2y" + string(bc[3:])), nil, "$2y" + string(bc[3:])},
		{"an argon2id PHC hash is accepted", user(ref), pw(argon), nil, argon},
		{"a custom key is read", user(&v1alpha1.SecretKeyRef{Namespace: "latchkey", Name: "alice-password", Key: "pw"}),
			secret("latchkey", "alice-password", map[string]string{"pw": string(bc)}), nil, string(bc)},
		{"a user without a password is served without one", user(nil), nil, nil, ""},
		{"plaintext is refused", user(ref), pw("correct horse"), ErrInvalidSpec, ""},
		{"a truncated bcrypt hash is refused", user(ref), pw(string(bc[:40])), ErrInvalidSpec, ""},
		{"a $2x$ bcrypt hash is refused", user(ref), pw("$2x" + string(bc[3:])), ErrInvalidSpec, ""},
		{"argon2i (not id) is refused", user(ref), pw(strings.Replace(argon, "argon2id", "argon2i", 1)), ErrInvalidSpec, ""},
		{"argon2id without parameters is refused", user(ref), pw("$argon2id$v=19$c29tZXNhbHQ$aGFzaA"), ErrInvalidSpec, ""},
		{"argon2id at the limits is accepted", user(ref), pw(strings.Replace(argon, "m=65536,t=3,p=4", "m=131072,t=10,p=16", 1)),
			nil, strings.Replace(argon, "m=65536,t=3,p=4", "m=131072,t=10,p=16", 1)},
		{"argon2id asking for more than 128 MiB is refused", user(ref), pw(strings.Replace(argon, "m=65536", "m=131073", 1)), ErrInvalidSpec, ""},
		{"argon2id asking for more than 10 passes is refused", user(ref), pw(strings.Replace(argon, "t=3", "t=11", 1)), ErrInvalidSpec, ""},
		{"argon2id asking for more than 16 lanes is refused", user(ref), pw(strings.Replace(argon, "p=4", "p=17", 1)), ErrInvalidSpec, ""},
		{"a missing secret is not found", user(ref), nil, ErrSecretNotFound, ""},
		{"a missing key is not found", user(ref), secret("latchkey", "alice-password", nil), ErrSecretNotFound, ""},
		{"an empty username is invalid", &v1alpha1.User{ObjectMeta: metav1.ObjectMeta{Name: "x"}}, nil, ErrInvalidSpec, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := User(tt.user, tt.secret)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				assert.NotContains(t, err.Error(), "correct horse")
				if tt.wantErr == ErrSecretNotFound {
					assert.Equal(t, "alice", u.Username, "the user is still returned")
					assert.Empty(t, u.PasswordHash)
				}
				return
			}
			require.NoError(t, err)
			assert.Equal(t, "alice", u.Source)
			assert.Equal(t, created.Time, u.Created)
			assert.Equal(t, "alice", u.Username)
			assert.Equal(t, "alice@example.com", u.Email)
			assert.True(t, u.EmailVerified)
			assert.Equal(t, []string{"admins"}, u.Groups)
			assert.Equal(t, tt.wantHash, string(u.PasswordHash))
		})
	}
}

func TestUserSubject(t *testing.T) {
	const uid1, uid2 = "0d5c6a0e-1111-4222-8333-944445555666", "9f0c6a0e-1111-4222-8333-944445555666"
	named := func(name, uid string) *v1alpha1.User {
		return &v1alpha1.User{ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID(uid)},
			Spec: v1alpha1.UserSpec{Username: "alice"}}
	}
	uuidShape := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	tests := []struct {
		name      string
		user      *v1alpha1.User
		same      *v1alpha1.User // a User whose subject must be equal, or nil
		different *v1alpha1.User // a User whose subject must differ, or nil
	}{
		{name: "a User from the API server has its uid as subject", user: named("alice", uid1)},
		{name: "a re-created User (new uid, same name and username) is another subject",
			user: named("alice", uid2), different: named("alice", uid1)},
		{name: "a User from a file keeps its subject when read again", user: named("alice", ""), same: named("alice", "")},
		{name: "a User from a file with another resource name and the same username is another subject",
			user: named("alice-2", ""), different: named("alice", "")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := User(tt.user, nil)
			require.NoError(t, err)
			assert.Equal(t, UserSubject(tt.user), u.Subject)
			assert.Regexp(t, uuidShape, u.Subject)
			assert.NotEqual(t, u.Username, u.Subject, "the subject is never the username")
			if tt.user.UID != "" {
				assert.Equal(t, string(tt.user.UID), u.Subject)
			}
			if tt.same != nil {
				assert.Equal(t, UserSubject(tt.same), u.Subject)
			}
			if tt.different != nil {
				assert.NotEqual(t, UserSubject(tt.different), u.Subject)
			}
		})
	}
}

func TestCheckPasswordHashNeverEchoesTheValue(t *testing.T) {
	for _, v := range []string{"hunter2", "$2b$10$hunter2", "$argon2id$hunter2"} {
		err := CheckPasswordHash([]byte(v))
		require.Error(t, err)
		assert.NotContains(t, err.Error(), "hunter2")
		assert.False(t, errors.Is(err, ErrSecretNotFound))
	}
}

func FuzzCheckPasswordHash(f *testing.F) {
	bc, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	require.NoError(f, err)
	f.Add(bc)
	f.Add([]byte("$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHRzb21lc2FsdA$RdescudvJCsgt3ub+b+dWRWJTmaaJObG0fN9vOyd1sQ"))
	f.Add([]byte("$argon2id$m=4294967295,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$RdescudvJCsgt3ub+b+dWRWJTmaaJObG0fN9vOyd1sQ"))
	f.Add([]byte("$2b$99$" + strings.Repeat("a", 53)))
	f.Add([]byte("hunter2"))
	known := []error{errNotAHash, errMalformedHash, errHashTooCostly}
	f.Fuzz(func(t *testing.T, hash []byte) {
		err := CheckPasswordHash(hash)
		if err != nil {
			// Only fixed messages: nothing of the value can leak into logs or status.
			for _, k := range known {
				if err == k { //nolint:errorlint // identity is the point: no wrapping, no value
					return
				}
			}
			t.Fatalf("error %q is not one of the fixed errors", err)
		}
		switch {
		case bytes.HasPrefix(hash, []byte("$2")):
			if _, err := bcrypt.Cost(hash); err != nil {
				t.Fatalf("accepted a bcrypt hash whose cost bcrypt refuses: %v", err)
			}
		case bytes.HasPrefix(hash, []byte("$argon2id$")):
			for _, part := range strings.Split(string(hash), "$") {
				for kv := range strings.SplitSeq(part, ",") {
					k, v, ok := strings.Cut(kv, "=")
					if !ok || k == "v" {
						continue
					}
					n, perr := strconv.ParseUint(v, 10, 64)
					limit := map[string]uint64{"m": password.MaxArgon2Memory, "t": password.MaxArgon2Time, "p": password.MaxArgon2Threads}[k]
					if perr != nil || n == 0 || n > limit {
						t.Fatalf("accepted argon2id parameter %s=%s outside 1..%d", k, v, limit)
					}
				}
			}
		default:
			t.Fatalf("accepted a value that is neither bcrypt nor argon2id")
		}
	})
}

// Manifests on disk (the embedded mode) never met the CRD's schema and CEL rules: the bounds and
// rules of the fields the hardening added are checked here as the API server checks them.
func TestClientRefusesWhatTheCRDRefuses(t *testing.T) {
	publicClient := func(oc *v1alpha1.OAuthClient) {
		oc.Spec.Type, oc.Spec.SecretRef, oc.Spec.TokenEndpointAuthMethod = v1alpha1.ClientTypePublic, nil, v1alpha1.AuthMethodNone
		oc.Spec.GrantTypes = []v1alpha1.GrantType{v1alpha1.GrantTypeAuthorizationCode}
		oc.Spec.RedirectURIs = []string{"https://app.example/cb"}
	}
	for _, tc := range []struct {
		name, want string
		mutate     func(*v1alpha1.OAuthClient)
	}{
		{"A Public client that introspects is refused", "a Public client cannot introspect tokens", func(oc *v1alpha1.OAuthClient) {
			publicClient(oc)
			oc.Spec.Introspection = true
		}},
		{"A Public client with token exchange is refused", "a Public client must not use token exchange", func(oc *v1alpha1.OAuthClient) {
			publicClient(oc)
			oc.Spec.GrantTypes = append(oc.Spec.GrantTypes, v1alpha1.GrantTypeTokenExchange)
		}},
		{"A rate of zero requests per minute is refused", "rateLimit.requestsPerMinute must be between 1 and 6000000", func(oc *v1alpha1.OAuthClient) {
			oc.Spec.RateLimit = &v1alpha1.RateLimit{RequestsPerMinute: 0}
		}},
		{"A rate above the bound is refused", "rateLimit.requestsPerMinute must be between 1 and 6000000", func(oc *v1alpha1.OAuthClient) {
			oc.Spec.RateLimit = &v1alpha1.RateLimit{RequestsPerMinute: 6000001}
		}},
		{"A burst above the bound is refused", "rateLimit.burst must be between 1 and 1000000", func(oc *v1alpha1.OAuthClient) {
			oc.Spec.RateLimit = &v1alpha1.RateLimit{RequestsPerMinute: 60, Burst: 1000001}
		}},
		{"More than 16 allowed origins are refused", "allowedOrigins may list at most 16 origins", func(oc *v1alpha1.OAuthClient) {
			publicClient(oc)
			for i := range 17 {
				oc.Spec.AllowedOrigins = append(oc.Spec.AllowedOrigins, fmt.Sprintf("https://app%d.example", i))
			}
		}},
		{"An origin over 512 bytes is refused", "of at most 512 bytes", func(oc *v1alpha1.OAuthClient) {
			publicClient(oc)
			oc.Spec.AllowedOrigins = []string{"https://" + strings.Repeat("a", 510) + ".example"}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Client(oauthClient(tc.mutate), secret("payments", "billing-oauth-client", map[string]string{"client-secret": "s"}))
			require.ErrorIs(t, err, ErrInvalidSpec)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	t.Run("A rate limit within the bounds is served with its default burst", func(t *testing.T) {
		c, err := Client(oauthClient(func(oc *v1alpha1.OAuthClient) { oc.Spec.RateLimit = &v1alpha1.RateLimit{RequestsPerMinute: 600} }),
			secret("payments", "billing-oauth-client", map[string]string{"client-secret": "s"}))
		require.NoError(t, err)
		assert.Equal(t, registry.RateLimit{PerMinute: 600, Burst: 60}, c.RateLimit)
	})
}
