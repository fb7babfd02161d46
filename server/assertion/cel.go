package assertion

import (
	"errors"
	"fmt"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/ext"
	"github.com/google/cel-go/interpreter"
)

// Bounds of claim rules.
const (
	MaxClaimRules           = 16
	MaxClaimRuleLength      = 1024    // bytes of an expression
	MaxClaimRuleMessage     = 256     // bytes of a message
	ClaimRuleCostLimit      = 1000000 // CEL runtime cost of one expression, as the API server's per-call limit
	claimsVariable          = "claims"
	claimRuleRecursionLimit = 32
)

// ClaimRule is one claim validation rule, as in the Kubernetes API server's structured
// authentication configuration (claimValidationRules with an expression): a CEL expression over
// the variable claims (a map of the token's claims) that must evaluate to true.
type ClaimRule struct {
	Expression string
	// Message is the error when the expression is false; "" gives
	// "claim validation rule failed: <expression>".
	Message string
}

// ClaimRules are compiled claim rules. A nil *ClaimRules checks nothing. It is safe for
// concurrent use.
type ClaimRules struct {
	rules    []ClaimRule
	programs []cel.Program
}

// CompileClaimRules compiles rules (at most MaxClaimRules, each expression at most
// MaxClaimRuleLength bytes and of type bool or dyn, each message at most MaxClaimRuleMessage
// bytes). Its errors wrap ErrInvalidRule and name the rule by index, for a condition message.
func CompileClaimRules(rules []ClaimRule) (*ClaimRules, error) {
	if len(rules) > MaxClaimRules {
		return nil, fmt.Errorf("%w: more than %d rules", ErrInvalidRule, MaxClaimRules)
	}
	env, err := cel.NewEnv(
		cel.Variable(claimsVariable, cel.MapType(cel.StringType, cel.DynType)),
		cel.CrossTypeNumericComparisons(true),
		cel.ParserExpressionSizeLimit(MaxClaimRuleLength),
		cel.ParserRecursionLimit(claimRuleRecursionLimit),
		ext.Strings(),
	)
	if err != nil {
		return nil, fmt.Errorf("assertion: CEL environment: %w", err)
	}
	cr := &ClaimRules{rules: append([]ClaimRule(nil), rules...), programs: make([]cel.Program, len(rules))}
	for i, r := range rules {
		switch {
		case r.Expression == "":
			return nil, fmt.Errorf("%w: rule %d: empty expression", ErrInvalidRule, i)
		case len(r.Expression) > MaxClaimRuleLength:
			return nil, fmt.Errorf("%w: rule %d: expression longer than %d bytes", ErrInvalidRule, i, MaxClaimRuleLength)
		case len(r.Message) > MaxClaimRuleMessage:
			return nil, fmt.Errorf("%w: rule %d: message longer than %d bytes", ErrInvalidRule, i, MaxClaimRuleMessage)
		}
		ast, iss := env.Compile(r.Expression)
		if iss.Err() != nil {
			return nil, fmt.Errorf("%w: rule %d: %w", ErrInvalidRule, i, iss.Err())
		}
		if t := ast.OutputType(); !t.IsExactType(types.BoolType) && !t.IsExactType(types.DynType) {
			return nil, fmt.Errorf("%w: rule %d: evaluates to %s, not bool", ErrInvalidRule, i, t)
		}
		prg, err := env.Program(ast, cel.EvalOptions(cel.OptOptimize), cel.CostLimit(ClaimRuleCostLimit))
		if err != nil {
			return nil, fmt.Errorf("%w: rule %d: %w", ErrInvalidRule, i, err)
		}
		cr.programs[i] = prg
	}
	return cr, nil
}

// Check evaluates every rule on claims; the first that is not true gives an error wrapping
// ErrClaims (its message, or which rule failed to evaluate: never the claims' values).
func (cr *ClaimRules) Check(claims map[string]any) error {
	if cr == nil {
		return nil
	}
	vars := map[string]any{claimsVariable: claims}
	for i, prg := range cr.programs {
		out, _, err := prg.Eval(vars)
		if err != nil {
			var cancelled interpreter.EvalCancelledError
			if errors.As(err, &cancelled) && cancelled.Cause == interpreter.CostLimitExceeded {
				return fmt.Errorf("%w: claim validation rule %d exceeded its cost limit", ErrClaims, i)
			}
			return fmt.Errorf("%w: claim validation rule %d could not be evaluated", ErrClaims, i)
		}
		ok, isBool := out.Value().(bool)
		if !isBool {
			return fmt.Errorf("%w: claim validation rule %d did not evaluate to a bool", ErrClaims, i)
		}
		if !ok {
			if msg := cr.rules[i].Message; msg != "" {
				return fmt.Errorf("%w: %s", ErrClaims, msg)
			}
			return fmt.Errorf("%w: claim validation rule failed: %s", ErrClaims, cr.rules[i].Expression)
		}
	}
	return nil
}

// Len is the number of rules.
func (cr *ClaimRules) Len() int {
	if cr == nil {
		return 0
	}
	return len(cr.programs)
}
