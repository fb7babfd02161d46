package oauth2

import (
	"cmp"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const formType = "application/x-www-form-urlencoded"

// basic is the client_secret_basic header of RFC 6749 2.3.1.
func basic(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}

func TestParseTokenRequest(t *testing.T) {
	tests := []struct {
		name          string
		contentType   string
		authorization string
		body          string
		want          TokenRequest
	}{
		{name: "a form body with a charset parameter is parsed",
			contentType: "application/x-www-form-urlencoded; charset=UTF-8",
			body:        "grant_type=client_credentials&client_id=a&client_secret=b&scope=x+y",
			want:        TokenRequest{GrantType: "client_credentials", ClientID: "a", ClientSecret: "b", AuthMethod: AuthMethodPost, Scope: "x y"}},
		{name: "percent escapes and semicolons in values are decoded as written",
			contentType: formType,
			body:        "grant_type=client_credentials&client_id=a%3Ab&client_secret=p;q%25r",
			want:        TokenRequest{GrantType: "client_credentials", ClientID: "a:b", ClientSecret: "p;q%r", AuthMethod: AuthMethodPost}},
		{name: "a client_id alone is auth method none",
			contentType: formType, body: "grant_type=authorization_code&client_id=spa&code=c&code_verifier=v&redirect_uri=https%3A%2F%2Fa%2Fcb",
			want: TokenRequest{GrantType: "authorization_code", ClientID: "spa", AuthMethod: AuthMethodNone,
				Code: "c", CodeVerifier: "v", RedirectURI: "https://a/cb"}},
		{name: "Basic credentials are form-urlencoded",
			contentType: formType, authorization: basic("id:1%", "p:w%+ &"), body: "grant_type=client_credentials",
			want: TokenRequest{GrantType: "client_credentials", ClientID: "id:1%", ClientSecret: "p:w%+ &", AuthMethod: AuthMethodBasic}},
		{name: "the Basic scheme is case-insensitive",
			contentType: formType, authorization: strings.Replace(basic("a", "b"), "Basic", "bAsIc", 1), body: "grant_type=x",
			want: TokenRequest{GrantType: "x", ClientID: "a", ClientSecret: "b", AuthMethod: AuthMethodBasic}},
		{name: "a JSON body with escapes and unknown string members is parsed",
			contentType: "application/json",
			body:        `{"grant_type":"password","username":"al\u0069ce","password":"p\"w","extra":"x"}`,
			want:        TokenRequest{GrantType: "password", Username: "alice", Password: `p"w`}},
		{name: "a JWT-bearer client assertion with client_id is auth method client_assertion",
			contentType: formType,
			body:        "grant_type=client_credentials&client_id=svc&client_assertion_type=" + url.QueryEscape(ClientAssertionTypeJWTBearer) + "&client_assertion=a.b.c",
			want:        TokenRequest{GrantType: "client_credentials", ClientID: "svc", AuthMethod: AuthMethodAssertion, ClientAssertion: "a.b.c"}},
		{name: "a client assertion without client_id leaves the client to the assertion's sub",
			contentType: "application/json",
			body:        `{"grant_type":"client_credentials","client_assertion_type":"` + ClientAssertionTypeJWTBearer + `","client_assertion":"a.b.c"}`,
			want:        TokenRequest{GrantType: "client_credentials", AuthMethod: AuthMethodAssertion, ClientAssertion: "a.b.c"}},
		{name: "empty values count as omitted, so they are no duplicates",
			contentType: formType, body: "grant_type=&grant_type=refresh_token&refresh_token=r&scope=",
			want: TokenRequest{GrantType: "refresh_token", RefreshToken: "r"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, TokenPath+"?client_id=ignored", strings.NewReader(tt.body))
			r.Header.Set("Content-Type", tt.contentType)
			if tt.authorization != "" {
				r.Header.Set("Authorization", tt.authorization)
			}
			got, err := ParseTokenRequest(r, 64<<10)
			require.NoError(t, err)
			assert.Equal(t, tt.want, *got)
		})
	}
}

func TestClientAssertionsAreRefusedWhenMalformed(t *testing.T) {
	typ := "client_assertion_type=" + url.QueryEscape(ClientAssertionTypeJWTBearer)
	tests := []struct {
		name, authorization, body, code string
		status                          int
	}{
		{"an assertion without its type is invalid_request", "", "grant_type=x&client_assertion=a.b.c", "invalid_request", 400},
		{"a type without an assertion is invalid_request", "", "grant_type=x&" + typ, "invalid_request", 400},
		{"another assertion type is invalid_client", "", "grant_type=x&client_assertion=a.b.c&client_assertion_type=urn%3Aother", "invalid_client", 400},
		{"an assertion beside a client secret is invalid_request", "", "grant_type=x&client_id=c&client_secret=s&client_assertion=a.b.c&" + typ, "invalid_request", 400},
		{"an assertion beside Basic credentials is invalid_request", basic("c", "s"), "grant_type=x&client_assertion=a.b.c&" + typ, "invalid_request", 400},
		{"an assertion sent twice is invalid_request", "", "grant_type=x&client_assertion=a.b.c&client_assertion=d.e.f&" + typ, "invalid_request", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, TokenPath, strings.NewReader(tt.body))
			r.Header.Set("Content-Type", formType)
			if tt.authorization != "" {
				r.Header.Set("Authorization", tt.authorization)
			}
			_, err := ParseTokenRequest(r, 64<<10)
			var oe *Error
			require.ErrorAs(t, err, &oe)
			assert.Equal(t, tt.code, oe.Code())
			assert.Equal(t, tt.status, oe.StatusCode())
			assert.NotContains(t, oe.Description(), "a.b.c")
		})
	}
}

func TestTokenRequestStringHidesSecrets(t *testing.T) {
	r := &TokenRequest{GrantType: "password", ClientID: "c", ClientSecret: "s3cret", Password: "hunter2", Code: "code1", RefreshToken: "rt",
		ClientAssertion: "eyJhbGciOiJFUzI1NiJ9.assert.sig"}
	for _, printed := range []string{fmt.Sprint(r), fmt.Sprint(*r), fmt.Sprintf("%#v", *r), fmt.Sprintf("%+v", r)} {
		for _, secret := range []string{"s3cret", "hunter2", "code1", `"rt"`, "assert.sig"} {
			assert.NotContains(t, printed, secret)
		}
	}
}

// allowedParseErrors are the errors parsing may produce, with their statuses.
var allowedParseErrors = map[string][]int{
	"invalid_request": {http.StatusBadRequest, http.StatusRequestEntityTooLarge},
	"invalid_client":  {http.StatusUnauthorized, http.StatusBadRequest},
}

func FuzzParseTokenRequest(f *testing.F) {
	f.Add(formType, "", "grant_type=client_credentials&client_id=a&client_secret=b")
	f.Add(formType+"; charset=utf-8", basic("a:b", "c%d"), "grant_type=client_credentials&scope=a+b")
	f.Add("application/json", "", `{"grant_type":"client_credentials","client_id":"a","client_secret":"b"}`)
	f.Add("application/json", "", `{"grant_type":"x","grant_type":"y"}`)
	f.Add("application/json", "Basic Og==", `{"a":[1,{"b":null}],"grant_type":true}`)
	f.Add("text/plain", "Basic !!", "grant_type=%zz&&=&;")
	f.Add(formType, "Bearer x", "grant_type=a&grant_type=b")
	f.Add(formType, "", "grant_type=client_credentials&client_id=c&client_assertion_type="+url.QueryEscape(ClientAssertionTypeJWTBearer)+"&client_assertion=a.b.c")
	f.Add("application/json", "", `{"grant_type":"x","client_assertion":"a.b.c","client_assertion_type":"urn:x"}`)
	f.Fuzz(func(t *testing.T, contentType, authorization, body string) {
		r := httptest.NewRequest(http.MethodPost, TokenPath, strings.NewReader(body))
		r.Header.Set("Content-Type", contentType)
		if authorization != "" {
			r.Header.Set("Authorization", authorization)
		}
		req, err := ParseTokenRequest(r, 1024)
		if err != nil {
			require.Nil(t, req)
			var oe *Error
			require.True(t, errors.As(err, &oe), "not an RFC 6749 error: %v", err)
			require.Contains(t, allowedParseErrors, oe.Code())
			require.Contains(t, allowedParseErrors[oe.Code()], oe.StatusCode())
			require.NotEmpty(t, oe.Description())
			return
		}
		require.NotNil(t, req)
		require.NotEmpty(t, req.GrantType)
		switch req.AuthMethod {
		case AuthMethodBasic:
			require.NotEmpty(t, req.ClientID)
			require.NotEmpty(t, authorization)
		case AuthMethodPost:
			require.NotEmpty(t, req.ClientID)
			require.NotEmpty(t, req.ClientSecret)
		case AuthMethodNone:
			require.NotEmpty(t, req.ClientID)
			require.Empty(t, req.ClientSecret)
		case AuthMethodAssertion:
			require.NotEmpty(t, req.ClientAssertion)
			require.Empty(t, req.ClientSecret)
			require.Empty(t, authorization)
		case "":
			require.Empty(t, req.ClientID)
			require.Empty(t, req.ClientSecret)
			require.Empty(t, req.ClientAssertion)
		default:
			t.Fatalf("unknown auth method %q", req.AuthMethod)
		}
	})
}

func TestReadBody(t *testing.T) {
	const limit = 16
	long := strings.Repeat("b", exactBodyRead+1)
	tests := []struct {
		name     string
		body     io.Reader
		declared int64 // ContentLength; -1 unknown (chunked)
		limit    int64 // maxBody; 0 is limit
		want     string
		status   int // of the invalid_request; 0 none
	}{
		{name: "a declared length longer than is allocated up front is read as it arrives", body: strings.NewReader(long), declared: int64(len(long)), limit: 2 * exactBodyRead, want: long},
		{name: "a body of its declared length is read whole", body: strings.NewReader("grant_type=x"), declared: 12, want: "grant_type=x"},
		{name: "a body of unknown length is read to its end", body: strings.NewReader("grant_type=x"), declared: -1, want: "grant_type=x"},
		{name: "a body of exactly the limit is read", body: strings.NewReader(strings.Repeat("a", limit)), declared: limit, want: strings.Repeat("a", limit)},
		{name: "a declared length over the limit is refused before reading", body: strings.NewReader(strings.Repeat("a", limit+1)), declared: limit + 1, status: http.StatusRequestEntityTooLarge},
		{name: "a body of unknown length over the limit is refused", body: strings.NewReader(strings.Repeat("a", limit+1)), declared: -1, status: http.StatusRequestEntityTooLarge},
		{name: "a body shorter than its declared length cannot be read", body: strings.NewReader("short"), declared: 10, status: http.StatusBadRequest},
		{name: "a body longer than its declared length is refused, not cut short", body: strings.NewReader("grant_type=xyz"), declared: 12, status: http.StatusBadRequest},
		{name: "a reader that fails cannot be read", body: iotest.ErrReader(errors.New("reset")), declared: 5, status: http.StatusBadRequest},
		{name: "no body is an empty one", body: http.NoBody, declared: 0, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, TokenPath, nil)
			r.Body, r.ContentLength = io.NopCloser(tt.body), tt.declared
			if tt.body == http.NoBody {
				r.Body = http.NoBody
			}
			maxBody := cmp.Or(tt.limit, limit)
			got, err := ReadBody(r, maxBody)
			if tt.status == 0 {
				require.NoError(t, err)
				assert.Equal(t, tt.want, string(got))
				return
			}
			require.Nil(t, got)
			var oe *Error
			require.ErrorAs(t, err, &oe)
			assert.True(t, errors.Is(err, ErrInvalidRequest))
			assert.Equal(t, tt.status, oe.StatusCode())
			assert.NotEmpty(t, oe.Description())
		})
	}
}
