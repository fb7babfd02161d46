package convert

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"sigs.k8s.io/yaml"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
	"github.com/latchkey-dev/latchkey/server/registry"
)

func workloadIssuer(mutate func(*v1alpha1.WorkloadIssuer)) *v1alpha1.WorkloadIssuer {
	wi := &v1alpha1.WorkloadIssuer{
		ObjectMeta: metav1.ObjectMeta{Name: "ci", Generation: 3, CreationTimestamp: created},
		Spec: v1alpha1.WorkloadIssuerSpec{
			Issuer:            "https://ci.example/oidc",
			Audiences:         []string{"https://latchkey.example"},
			AllowedNamespaces: []string{"payments"},
		},
	}
	if mutate != nil {
		mutate(wi)
	}
	return wi
}

// testCABundle is a PEM bundle of one self-signed CA certificate.
func testCABundle(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// testJWKS is a JWK set of one public P-256 key with the key ID.
func testJWKS(t *testing.T, kid string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	data, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: kid, Algorithm: "ES256", Use: "sig"}}})
	require.NoError(t, err)
	return string(data)
}

func TestWorkloadIssuerServesTheSpecWithDefaults(t *testing.T) {
	ca := testCABundle(t)
	w, err := WorkloadIssuer(workloadIssuer(func(wi *v1alpha1.WorkloadIssuer) {
		wi.Spec.CABundle = ca
		wi.Spec.ClaimValidationRules = []v1alpha1.ClaimValidationRule{{Expression: "claims.repository_owner == 'example'", Message: "not ours"}}
	}), nil)
	require.NoError(t, err)
	assert.Equal(t, registry.WorkloadIssuer{
		Name: "ci", Generation: 3, Issuer: "https://ci.example/oidc", CABundle: []byte(ca),
		Audiences: []string{"https://latchkey.example"}, AllowedNamespaces: []string{"payments"},
		ClaimRules:    []registry.ClaimRule{{Expression: "claims.repository_owner == 'example'", Message: "not ours"}},
		RefreshPeriod: time.Hour, // MaxAssertionLifetime zero: the verifier's default, 1 h
	}, w)
}

func TestWorkloadIssuer(t *testing.T) {
	jwks := testJWKS(t, "k1")
	withSecretRef := func(wi *v1alpha1.WorkloadIssuer) {
		wi.Spec.JWKSSecretRef = &v1alpha1.SecretKeyRef{Namespace: "latchkey", Name: "ci-keys"}
	}
	for _, tc := range []struct {
		name    string
		mutate  func(*v1alpha1.WorkloadIssuer)
		secret  *corev1.Secret
		wantErr error
		want    string // in the error
		check   func(t *testing.T, w registry.WorkloadIssuer)
	}{
		{name: "A jwksURI is served as written, with the lifetimes of the spec", mutate: func(wi *v1alpha1.WorkloadIssuer) {
			wi.Spec.JWKSURI = "https://ci.example/keys"
			wi.Spec.RefreshPeriod = &metav1.Duration{Duration: 5 * time.Minute}
			wi.Spec.MaxAssertionLifetime = &metav1.Duration{Duration: 10 * time.Minute}
		}, check: func(t *testing.T, w registry.WorkloadIssuer) {
			assert.Equal(t, "https://ci.example/keys", w.JWKSURI)
			assert.Equal(t, 5*time.Minute, w.RefreshPeriod)
			assert.Equal(t, 10*time.Minute, w.MaxAssertionLifetime)
			assert.Empty(t, w.StaticKeys)
		}},
		{name: "Keys from a Secret are served as static keys", mutate: withSecretRef,
			secret: secret("latchkey", "ci-keys", map[string]string{"jwks.json": jwks}),
			check: func(t *testing.T, w registry.WorkloadIssuer) {
				require.Len(t, w.StaticKeys, 1)
				assert.Equal(t, "k1", w.StaticKeys[0].KeyID)
				assert.True(t, w.StaticKeys[0].IsPublic())
			}},
		{name: "Keys from another key of a Secret are served", mutate: func(wi *v1alpha1.WorkloadIssuer) {
			wi.Spec.JWKSSecretRef = &v1alpha1.SecretKeyRef{Namespace: "latchkey", Name: "ci-keys", Key: "keys"}
		}, secret: secret("latchkey", "ci-keys", map[string]string{"keys": jwks}),
			check: func(t *testing.T, w registry.WorkloadIssuer) { assert.Len(t, w.StaticKeys, 1) }},
		{name: "A missing key Secret is SecretNotFound and serves nothing", mutate: withSecretRef,
			wantErr: ErrSecretNotFound, want: "Secret latchkey/ci-keys does not exist",
			check: func(t *testing.T, w registry.WorkloadIssuer) {
				assert.Equal(t, registry.WorkloadIssuer{Name: "ci", Generation: 3}, w, "nothing to fetch keys from elsewhere")
			}},
		{name: "A key Secret without the key is SecretNotFound", mutate: withSecretRef,
			secret:  secret("latchkey", "ci-keys", map[string]string{"other": jwks}),
			wantErr: ErrSecretNotFound, want: `has no value under key "jwks.json"`},
		{name: "A key Secret that holds no JWK set is SecretNotFound", mutate: withSecretRef,
			secret:  secret("latchkey", "ci-keys", map[string]string{"jwks.json": `{"keys":[]}`}),
			wantErr: ErrSecretNotFound, want: "does not hold a JWK set of public keys"},
		{name: "A key Secret that holds a private key is SecretNotFound", mutate: withSecretRef,
			secret:  secret("latchkey", "ci-keys", map[string]string{"jwks.json": `{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`}),
			wantErr: ErrSecretNotFound, want: "does not hold a JWK set of public keys"},
		{name: "An http issuer is refused", mutate: func(wi *v1alpha1.WorkloadIssuer) { wi.Spec.Issuer = "http://ci.example" },
			wantErr: ErrInvalidSpec, want: `issuer "http://ci.example" must be an https URL`},
		{name: "An issuer with a query is refused", mutate: func(wi *v1alpha1.WorkloadIssuer) { wi.Spec.Issuer = "https://ci.example/?a=b" },
			wantErr: ErrInvalidSpec, want: "must be an https URL"},
		{name: "An http jwksURI is refused", mutate: func(wi *v1alpha1.WorkloadIssuer) { wi.Spec.JWKSURI = "http://ci.example/keys" },
			wantErr: ErrInvalidSpec, want: `jwksURI "http://ci.example/keys" must be an https URL`},
		{name: "Keys from both a jwksURI and a Secret are refused", mutate: func(wi *v1alpha1.WorkloadIssuer) {
			withSecretRef(wi)
			wi.Spec.JWKSURI = "https://ci.example/keys"
		}, wantErr: ErrInvalidSpec, want: "keys come from one place"},
		{name: "A jwksSecretRef without a namespace is refused", mutate: func(wi *v1alpha1.WorkloadIssuer) {
			wi.Spec.JWKSSecretRef = &v1alpha1.SecretKeyRef{Name: "ci-keys"}
		}, wantErr: ErrInvalidSpec, want: "jwksSecretRef needs a namespace"},
		{name: "A CA bundle that is not PEM is refused", mutate: func(wi *v1alpha1.WorkloadIssuer) { wi.Spec.CABundle = "not a certificate" },
			wantErr: ErrInvalidSpec, want: "caBundle holds no PEM certificate"},
		{name: "A CA bundle with a private key is refused", mutate: func(wi *v1alpha1.WorkloadIssuer) {
			wi.Spec.CABundle = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}}))
		}, wantErr: ErrInvalidSpec, want: `caBundle holds a PEM block of type "PRIVATE KEY"`},
		{name: "A CA bundle with a certificate that does not parse is refused", mutate: func(wi *v1alpha1.WorkloadIssuer) {
			wi.Spec.CABundle = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("garbage")}))
		}, wantErr: ErrInvalidSpec, want: "caBundle certificate 0 does not parse"},
		{name: "No audience is refused", mutate: func(wi *v1alpha1.WorkloadIssuer) { wi.Spec.Audiences = nil },
			wantErr: ErrInvalidSpec, want: "audiences must list 1 to 8 entries"},
		{name: "An audience listed twice is refused", mutate: func(wi *v1alpha1.WorkloadIssuer) { wi.Spec.Audiences = []string{"a", "a"} },
			wantErr: ErrInvalidSpec, want: `audiences lists "a" twice`},
		{name: "No allowed namespace is refused", mutate: func(wi *v1alpha1.WorkloadIssuer) { wi.Spec.AllowedNamespaces = nil },
			wantErr: ErrInvalidSpec, want: "allowedNamespaces must list 1 to 256 entries"},
		{name: "A namespace longer than 63 characters is refused", mutate: func(wi *v1alpha1.WorkloadIssuer) {
			wi.Spec.AllowedNamespaces = []string{strings.Repeat("a", 64)}
		}, wantErr: ErrInvalidSpec, want: "allowedNamespaces[0] must have 1 to 63 characters"},
		{name: "A claim rule that does not compile is refused, naming it", mutate: func(wi *v1alpha1.WorkloadIssuer) {
			wi.Spec.ClaimValidationRules = []v1alpha1.ClaimValidationRule{{Expression: "true"}, {Expression: "claims.sub =="}}
		}, wantErr: ErrInvalidSpec, want: "claimValidationRules: rule 1:"},
		{name: "A claim rule that is not a bool is refused", mutate: func(wi *v1alpha1.WorkloadIssuer) {
			wi.Spec.ClaimValidationRules = []v1alpha1.ClaimValidationRule{{Expression: "'yes'"}}
		}, wantErr: ErrInvalidSpec, want: "not bool"},
		{name: "A refresh period under a minute is refused", mutate: func(wi *v1alpha1.WorkloadIssuer) {
			wi.Spec.RefreshPeriod = &metav1.Duration{Duration: 30 * time.Second}
		}, wantErr: ErrInvalidSpec, want: "refreshPeriod must be between 1m and 24h"},
		{name: "An assertion lifetime over a day is refused", mutate: func(wi *v1alpha1.WorkloadIssuer) {
			wi.Spec.MaxAssertionLifetime = &metav1.Duration{Duration: 25 * time.Hour}
		}, wantErr: ErrInvalidSpec, want: "maxAssertionLifetime must be more than 0s and at most 24h"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, err := WorkloadIssuer(workloadIssuer(tc.mutate), tc.secret)
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				assert.Contains(t, err.Error(), tc.want)
				assert.NotContains(t, err.Error(), "c2VjcmV0", "a Secret's value is never echoed")
			} else {
				require.NoError(t, err)
				assert.Equal(t, "ci", w.Name)
			}
			if tc.check != nil {
				tc.check(t, w)
			}
		})
	}
}

func TestWorkloadIssuerInvalidSpecListsEveryProblem(t *testing.T) {
	_, err := WorkloadIssuer(workloadIssuer(func(wi *v1alpha1.WorkloadIssuer) {
		wi.Spec.Issuer = "ftp://x"
		wi.Spec.Audiences = nil
		wi.Spec.ClaimValidationRules = []v1alpha1.ClaimValidationRule{{Expression: "("}}
	}), nil)
	require.ErrorIs(t, err, ErrInvalidSpec)
	for _, want := range []string{"issuer", "audiences", "claimValidationRules"} {
		assert.Contains(t, err.Error(), want)
	}
}

func TestWorkloadSubjectKeyIsTheRegistrys(t *testing.T) {
	for _, tc := range []struct {
		name                string
		mutate              func(*v1alpha1.OAuthClient)
		wantIssuer, wantSub string
		wantOK              bool
	}{
		{name: "A client with a secret is bound to no workload identity"},
		{name: "A WorkloadIssuer subject is the issuer's name and the subject", mutate: func(oc *v1alpha1.OAuthClient) {
			oc.Spec.TokenEndpointAuthMethod = v1alpha1.AuthMethodServiceAccountToken
			oc.Spec.WorkloadIdentity = &v1alpha1.WorkloadIdentity{IssuerRef: v1alpha1.WorkloadIssuerRef{Name: "ci"}, Subject: "repo:example/app"}
		}, wantIssuer: "ci", wantSub: "repo:example/app", wantOK: true},
		{name: "A ServiceAccount is the local issuer's subject", mutate: func(oc *v1alpha1.OAuthClient) {
			oc.Spec.TokenEndpointAuthMethod = v1alpha1.AuthMethodServiceAccountToken
			oc.Spec.ServiceAccount = &v1alpha1.ServiceAccountRef{Name: "api"}
		}, wantIssuer: registry.LocalIssuer, wantSub: "system:serviceaccount:payments:api", wantOK: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			oc := oauthClient(tc.mutate)
			iss, sub, ok := WorkloadSubjectKey(oc)
			assert.Equal(t, tc.wantOK, ok)
			assert.Equal(t, tc.wantIssuer, iss)
			assert.Equal(t, tc.wantSub, sub)
			c, err := Client(oc, secret("payments", "billing-oauth-client", map[string]string{"client-secret": "s"}))
			require.NoError(t, err)
			riss, rsub, rok := c.WorkloadSubjectKey()
			assert.Equal(t, []any{riss, rsub, rok}, []any{iss, sub, ok}, "the same pair as the registry's")
		})
	}
}

// workloadIssuerRules evaluates the generated WorkloadIssuer CRD's CEL rules on a spec with the API
// server's own validator, so that they can be compared with convert.WorkloadIssuer.
func workloadIssuerRules(t *testing.T) func(spec v1alpha1.WorkloadIssuerSpec) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "config", "crd", "bases", "oauth.latchkey.dev_workloadissuers.yaml"))
	require.NoError(t, err)
	var crd apiextensionsv1.CustomResourceDefinition
	require.NoError(t, yaml.Unmarshal(data, &crd))
	require.Len(t, crd.Spec.Versions, 1)
	props := crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"]
	var internal apiextensions.JSONSchemaProps
	require.NoError(t, apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(&props, &internal, nil))
	s, err := structuralschema.NewStructural(&internal)
	require.NoError(t, err)
	v := cel.NewValidator(s, false, celconfig.PerCallLimit)
	require.NotNil(t, v)
	return func(spec v1alpha1.WorkloadIssuerSpec) []string {
		raw, err := json.Marshal(spec)
		require.NoError(t, err)
		var obj map[string]any
		require.NoError(t, json.Unmarshal(raw, &obj))
		errs, _ := v.Validate(context.Background(), field.NewPath("spec"), s, obj, nil, celconfig.RuntimeCELCostBudget)
		var out []string
		for _, e := range errs {
			out = append(out, e.Error())
		}
		return out
	}
}

// The CRD's CEL rules and convert agree on what CEL can express; convert refuses more.
func TestWorkloadIssuerCRDRulesAndConvertAgree(t *testing.T) {
	rules := workloadIssuerRules(t)
	for _, tc := range []struct {
		name       string
		mutate     func(*v1alpha1.WorkloadIssuer)
		celRefuses bool
		refused    bool // by convert
	}{
		{name: "An issuer found by discovery is accepted by both"},
		{name: "Keys from a jwksURI and a Secret are refused by both", mutate: func(wi *v1alpha1.WorkloadIssuer) {
			wi.Spec.JWKSURI = "https://ci.example/keys"
			wi.Spec.JWKSSecretRef = &v1alpha1.SecretKeyRef{Namespace: "ns", Name: "keys"}
		}, celRefuses: true, refused: true},
		{name: "A refresh period of 30s is refused by both", mutate: func(wi *v1alpha1.WorkloadIssuer) {
			wi.Spec.RefreshPeriod = &metav1.Duration{Duration: 30 * time.Second}
		}, celRefuses: true, refused: true},
		{name: "A refresh period of 25h is refused by both", mutate: func(wi *v1alpha1.WorkloadIssuer) {
			wi.Spec.RefreshPeriod = &metav1.Duration{Duration: 25 * time.Hour}
		}, celRefuses: true, refused: true},
		{name: "A refresh period of 1m is accepted by both", mutate: func(wi *v1alpha1.WorkloadIssuer) {
			wi.Spec.RefreshPeriod = &metav1.Duration{Duration: time.Minute}
		}},
		{name: "An assertion lifetime of 0s is refused by both", mutate: func(wi *v1alpha1.WorkloadIssuer) {
			wi.Spec.MaxAssertionLifetime = &metav1.Duration{}
		}, celRefuses: true, refused: true},
		{name: "An assertion lifetime of 24h is accepted by both", mutate: func(wi *v1alpha1.WorkloadIssuer) {
			wi.Spec.MaxAssertionLifetime = &metav1.Duration{Duration: 24 * time.Hour}
		}},
		{name: "A claim rule that does not compile is left to the controller", mutate: func(wi *v1alpha1.WorkloadIssuer) {
			wi.Spec.ClaimValidationRules = []v1alpha1.ClaimValidationRule{{Expression: "claims.sub =="}}
		}, refused: true},
		{name: "A CA bundle that is not PEM is left to the controller", mutate: func(wi *v1alpha1.WorkloadIssuer) {
			wi.Spec.CABundle = "not PEM"
		}, refused: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wi := workloadIssuer(tc.mutate)
			got := rules(wi.Spec)
			assert.Equal(t, tc.celRefuses, len(got) > 0, "the CRD's refusals: %v", got)
			_, err := WorkloadIssuer(wi, nil)
			if tc.refused {
				assert.ErrorIs(t, err, ErrInvalidSpec)
			} else {
				assert.NoError(t, err)
			}
		})
	}
}
