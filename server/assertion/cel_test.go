package assertion

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestClaimRulesCheck(t *testing.T) {
	claims := map[string]any{
		"iss": testIssuer,
		"sub": "system:serviceaccount:ci:builder",
		"exp": int64(1_760_000_300),
		"kubernetes.io": map[string]any{
			"namespace": "ci",
			"pod":       map[string]any{"name": "p"},
		},
		"groups": []any{"a", "b"},
		"ratio":  0.5,
	}
	for _, tc := range []struct {
		name  string
		rules []ClaimRule
		want  string // "" is accepted
	}{
		{"no rules accept", nil, ""},
		{"a true rule accepts", []ClaimRule{{Expression: `claims.sub == "system:serviceaccount:ci:builder"`}}, ""},
		{"nested claims are maps", []ClaimRule{{Expression: `claims["kubernetes.io"].namespace == "ci" && has(claims["kubernetes.io"].pod)`}}, ""},
		{"integers compare as int", []ClaimRule{{Expression: `claims.exp > 1760000000`}}, ""},
		{"integers compare with doubles", []ClaimRule{{Expression: `claims.exp > 1.5 && claims.ratio < 1`}}, ""},
		{"lists are lists", []ClaimRule{{Expression: `"b" in claims.groups && claims.groups.size() == 2`}}, ""},
		{"the strings extension is there", []ClaimRule{{Expression: `claims.sub.split(":")[2] == "ci"`}}, ""},
		{"a false rule refuses with its message", []ClaimRule{{Expression: `claims.sub.endsWith(":deployer")`, Message: "only the deployer"}}, "only the deployer"},
		{"a false rule without message names its expression", []ClaimRule{{Expression: `claims.iss == "x"`}},
			`claim validation rule failed: claims.iss == "x"`},
		{"the first false rule of several refuses", []ClaimRule{{Expression: "true", Message: "one"}, {Expression: "false", Message: "two"}, {Expression: "false", Message: "three"}}, "two"},
		{"a rule reading a missing claim refuses", []ClaimRule{{Expression: `claims.missing == "x"`}}, "rule 0 could not be evaluated"},
		{"a dyn rule that is not a bool refuses", []ClaimRule{{Expression: `claims.sub`}}, "rule 0 did not evaluate to a bool"},
		{"a rule over its cost limit refuses", []ClaimRule{{Expression: "true"}, {Expression: `claims.groups.all(a, claims.big.all(b, claims.big.all(c, claims.big.all(d, true))))`}},
			"rule 1 exceeded its cost limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rules, err := CompileClaimRules(tc.rules)
			require.NoError(t, err)
			c := claims
			if strings.Contains(tc.name, "cost") {
				big := make([]any, 200)
				for i := range big {
					big[i] = int64(i)
				}
				c = map[string]any{"groups": claims["groups"], "big": big}
			}
			err = rules.Check(c)
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrClaims)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	t.Run("nil rules check nothing", func(t *testing.T) {
		var rules *ClaimRules
		require.NoError(t, rules.Check(claims))
		assert.Zero(t, rules.Len())
	})
}

func TestCompileClaimRulesRefusesBadRules(t *testing.T) {
	tooMany := make([]ClaimRule, MaxClaimRules+1)
	for i := range tooMany {
		tooMany[i] = ClaimRule{Expression: "true"}
	}
	for _, tc := range []struct {
		name  string
		rules []ClaimRule
		want  string
	}{
		{"a syntax error names its rule", []ClaimRule{{Expression: "true"}, {Expression: "claims.sub =="}}, "rule 1: "},
		{"an unknown variable is refused", []ClaimRule{{Expression: `user.name == "x"`}}, "rule 0: "},
		{"a rule of another type than bool is refused", []ClaimRule{{Expression: `"yes"`}}, "rule 0: evaluates to string, not bool"},
		{"an empty rule is refused", []ClaimRule{{Expression: ""}}, "rule 0: empty expression"},
		{"a rule over 1024 bytes is refused", []ClaimRule{{Expression: "true" + strings.Repeat(" ", MaxClaimRuleLength)}}, "rule 0: expression longer than 1024 bytes"},
		{"a message over 256 bytes is refused", []ClaimRule{{Expression: "true", Message: strings.Repeat("m", MaxClaimRuleMessage+1)}}, "rule 0: message longer"},
		{"more than 16 rules are refused", tooMany, "more than 16 rules"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rules, err := CompileClaimRules(tc.rules)
			require.ErrorIs(t, err, ErrInvalidRule)
			assert.Nil(t, rules)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}
