package assertion

import (
	"context"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

func FuzzParse(f *testing.F) {
	k := newTestKey(f, ES256, "k")
	valid := k.sign(f, withClaims(func(c map[string]any) {
		c["kubernetes.io"] = map[string]any{"namespace": "ns", "serviceaccount": map[string]any{"name": "sa", "uid": "u"}, "warnafter": 1}
	}), nil)
	for _, alg := range SupportedAlgorithms() {
		f.Add(newTestKey(f, alg, "kid").sign(f, validClaims(), nil))
	}
	f.Add(valid)
	f.Add(valid[:len(valid)-5])
	f.Add(strings.Replace(valid, ".", "..", 1))
	f.Add(rawToken(`{"alg":"none"}`, `{"iss":"a"}`))
	f.Add(rawToken(`{"alg":"HS256"}`, `{"iss":"a"}`))
	f.Add(rawToken(`{"alg":"ES256","crit":["b64"],"b64":false}`, `{"iss":"a"}`))
	f.Add(rawToken(`{"alg":"ES256"}`, `{"aud":["a",1],"exp":1e999}`))
	f.Add(rawToken(`{"alg":"ES256"}`, `{"kubernetes.io":{"pod":{"name":1}}}`))
	f.Add(rawToken(`{"alg":"ES256","jwk":{"kty":"oct","k":"AA"}}`, `{}`))
	f.Add("a.b.c")
	f.Add("..")
	f.Add("")
	keys := staticKeys(f, k)
	algs := joseAlgorithms()
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := Parse(s)
		if err != nil {
			if tok != nil {
				t.Fatal("a token and an error")
			}
			if strings.Contains(err.Error(), s) && len(s) > 16 {
				t.Fatalf("the error %q contains the input", err)
			}
			return
		}
		if _, err := jwt.ParseSigned(s, algs); err != nil {
			t.Fatalf("Parse accepted what go-jose refuses: %v", err)
		}
		if _, err := jose.ParseSignedCompact(s, algs); err != nil {
			t.Fatalf("Parse accepted what go-jose refuses: %v", err)
		}
		_, _ = Verify(context.Background(), tok, keys, testPolicy())
	})
}
