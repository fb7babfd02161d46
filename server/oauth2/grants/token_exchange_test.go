package grants

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/server/oauth2"
)

// exchangeForm is a valid token exchange body with the changes applied (an empty value
// removes the parameter).
func exchangeForm(changes map[string]string) string {
	v := url.Values{
		"grant_type":         {oauth2.GrantTokenExchange},
		"subject_token":      {"subject.jwt.value"},
		"subject_token_type": {TokenTypeAccessToken},
		"resource":           {"https://orders.example"},
	}
	for k, val := range changes {
		if val == "" {
			v.Del(k)
		} else {
			v.Set(k, val)
		}
	}
	return v.Encode()
}

func TestParseExchange(t *testing.T) {
	for _, tc := range []struct {
		name    string
		changes map[string]string
		want    string // the description's start; "" for a valid request
	}{
		{"a subject access token is accepted", nil, ""},
		{"an ID token subject with an actor JWT is accepted",
			map[string]string{"subject_token_type": TokenTypeIDToken, "actor_token": "a.b.c", "actor_token_type": TokenTypeJWT}, ""},
		{"requested_token_type access_token is accepted", map[string]string{"requested_token_type": TokenTypeAccessToken}, ""},
		{"a missing subject_token is refused", map[string]string{"subject_token": ""}, "The subject_token parameter is missing."},
		{"a missing subject_token_type is refused", map[string]string{"subject_token_type": ""}, "The subject_token_type parameter is missing."},
		{"a SAML subject is refused", map[string]string{"subject_token_type": "urn:ietf:params:oauth:token-type:saml2"},
			"The subject_token_type \"urn:ietf:params:oauth:token-type:saml2\" is not supported"},
		{"a refresh token subject is refused", map[string]string{"subject_token_type": "urn:ietf:params:oauth:token-type:refresh_token"},
			"The subject_token_type"},
		{"an actor_token without its type is refused", map[string]string{"actor_token": "a.b.c"}, "The actor_token parameter requires actor_token_type."},
		{"an actor_token_type without a token is refused", map[string]string{"actor_token_type": TokenTypeJWT}, "The actor_token_type parameter requires actor_token."},
		{"an unsupported actor_token_type is refused", map[string]string{"actor_token": "x", "actor_token_type": "urn:x"}, "The actor_token_type"},
		{"a refresh token cannot be requested", map[string]string{"requested_token_type": "urn:ietf:params:oauth:token-type:refresh_token"},
			"The requested_token_type \"urn:ietf:params:oauth:token-type:refresh_token\" is not supported; only urn:ietf:params:oauth:token-type:access_token is issued."},
		{"an ID token cannot be requested", map[string]string{"requested_token_type": TokenTypeIDToken}, "The requested_token_type"},
		{"an oversized subject token is refused", map[string]string{"subject_token": strings.Repeat("a", 8<<10+1)}, "A subject or actor token is longer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := oauth2.ParseClientForm(nil, []byte(exchangeForm(tc.changes)))
			require.NoError(t, err)
			x, err := parseExchange(req)
			if tc.want == "" {
				require.NoError(t, err)
				assert.Equal(t, req.SubjectToken, x.subject)
				return
			}
			var oe *oauth2.Error
			require.ErrorAs(t, err, &oe)
			assert.Equal(t, "invalid_request", oe.Code())
			assert.True(t, strings.HasPrefix(oe.Description(), tc.want), "description %q", oe.Description())
		})
	}
}

func TestExchangeParametersIncludedTwiceAreRefused(t *testing.T) {
	for _, p := range []string{"subject_token", "subject_token_type", "actor_token", "actor_token_type", "requested_token_type"} {
		_, err := oauth2.ParseClientForm(nil, []byte(exchangeForm(nil)+"&"+p+"=x&"+p+"=y"))
		require.ErrorIs(t, err, oauth2.ErrInvalidRequest, p)
	}
}

func TestAudiencesAreBoundedAndDeduplicated(t *testing.T) {
	req, err := oauth2.ParseClientForm(nil, []byte(exchangeForm(nil)+"&audience=orders&audience=orders&audience=billing"))
	require.NoError(t, err)
	assert.Equal(t, []string{"orders", "billing"}, req.Audiences)
	targets, err := oauth2.ExchangeTargets(req.Resources, req.Audiences)
	require.NoError(t, err)
	assert.Equal(t, []string{"https://orders.example", "orders", "billing"}, targets)

	body := exchangeForm(nil)
	for i := range oauth2.MaxResources + 1 {
		body += "&audience=a" + strings.Repeat("x", i)
	}
	_, err = oauth2.ParseClientForm(nil, []byte(body))
	require.ErrorIs(t, err, oauth2.ErrInvalidTarget)
	_, err = oauth2.ParseClientForm(nil, []byte(exchangeForm(nil)+"&audience="+strings.Repeat("a", oauth2.MaxResourceLength+1)))
	require.ErrorIs(t, err, oauth2.ErrInvalidTarget)
}

// FuzzParseExchange: any body parses into a request or an RFC 6749 error, and parseExchange
// answers every parsed request with nil or invalid_request, never a panic.
func FuzzParseExchange(f *testing.F) {
	f.Add(exchangeForm(nil))
	f.Add(exchangeForm(map[string]string{"actor_token": "a", "actor_token_type": TokenTypeJWT, "audience": "x"}))
	f.Add(exchangeForm(map[string]string{"requested_token_type": "urn:x", "subject_token_type": ""}))
	f.Add("subject_token=%zz&audience=")
	f.Fuzz(func(t *testing.T, body string) {
		req, err := oauth2.ParseClientForm(nil, []byte(body))
		if err != nil {
			var oe *oauth2.Error
			require.True(t, errors.As(err, &oe), "an RFC 6749 error: %v", err)
			return
		}
		assert.LessOrEqual(t, len(req.Audiences), oauth2.MaxResources)
		x, err := parseExchange(req)
		if err != nil {
			require.ErrorIs(t, err, oauth2.ErrInvalidRequest)
			return
		}
		assert.NotEmpty(t, x.subject)
		assert.True(t, exchangeable(x.subjectType))
		assert.Equal(t, x.actor == "", x.actorType == "")
	})
}
