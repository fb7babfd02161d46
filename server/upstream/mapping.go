package upstream

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"reflect"
	"strconv"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/ext"
	xoauth2 "golang.org/x/oauth2"

	"github.com/latchkey-dev/latchkey/server/assertion"
	"github.com/latchkey-dev/latchkey/server/registry"
)

// Errors of a sign-in that the upstream's answer or the provider's rules refuse; match them with
// errors.Is. Their messages never quote a claim's value.
var (
	// ErrInvalidMapping: a claim mapping, rule or policy does not compile (a spec problem).
	ErrInvalidMapping = errors.New("upstream: invalid claim mapping")
	// ErrClaims: the upstream's claims do not map (a missing claim, a value of the wrong type)
	// or a claim validation rule is false.
	ErrClaims = errors.New("upstream: claims not accepted")
	// ErrNotAllowed: the allow policy is false for the user.
	ErrNotAllowed = errors.New("upstream: user not allowed")
)

// Bounds of a mapped identity.
const (
	maxUsernameLength = 256
	maxClaimLength    = 512
	maxGroups         = 256
	maxGroupLength    = 256
	maxExpression     = assertion.MaxClaimRuleLength
	recursionLimit    = 32
	subjectPrefix     = registry.ExternalSubjectPrefix
)

// The default mappings (spec.claims fields left empty).
const (
	DefaultUsername      = "has(claims.email) ? claims.email : has(claims.preferred_username) ? claims.preferred_username : claims.sub"
	DefaultGroups        = "has(claims.groups) ? claims.groups : []"
	DefaultEmail         = "has(claims.email) ? claims.email : ''"
	DefaultEmailVerified = "has(claims.email_verified) ? claims.email_verified : false"
	DefaultName          = "has(claims.name) ? claims.name : ''"
)

// Identity is a user as an upstream provider authenticated them, mapped to our claims.
type Identity struct {
	// Subject is the local sub (Subject).
	Subject string
	// Kind, Provider and ProviderUID name the provider (Kind a registry.Kind* constant, ""
	// is KindOIDC); UpstreamSubject is the user's stable identifier upstream (the OIDC sub).
	Kind, Provider, ProviderUID, UpstreamSubject string
	Username, Email, Name                        string
	EmailVerified                                bool
	Groups                                       []string
	// Token is the upstream's token response of the login (its refresh or access token is what
	// a Rechecker asks the upstream with); kept sealed in the identity record, never logged.
	Token *xoauth2.Token
}

// Subject is the local subject of an upstream subject of the provider with the UID: see doc.go.
func Subject(providerUID, upstreamSub string) string {
	h := sha256.Sum256([]byte(strconv.Itoa(len(providerUID)) + ":" + providerUID + upstreamSub))
	return subjectPrefix + base64.RawURLEncoding.EncodeToString(h[:])
}

// Mapper maps an upstream's claims to an Identity with a provider's CEL expressions. It is safe
// for concurrent use.
type Mapper struct {
	username, groups, email, emailVerified, name cel.Program
	rules                                        *assertion.ClaimRules
	allow                                        cel.Program // nil: everyone
}

// Compile compiles a provider's mappings, rules and allow policy. Its errors wrap
// ErrInvalidMapping and name the field.
func Compile(u *registry.UpstreamOIDC) (*Mapper, error) {
	env, err := cel.NewEnv(
		cel.Variable("claims", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("user", cel.MapType(cel.StringType, cel.DynType)),
		cel.CrossTypeNumericComparisons(true),
		cel.ParserExpressionSizeLimit(maxExpression),
		cel.ParserRecursionLimit(recursionLimit),
		ext.Strings(),
	)
	if err != nil {
		return nil, fmt.Errorf("upstream: CEL environment: %w", err)
	}
	m := &Mapper{}
	c := u.Claims
	for _, f := range []struct {
		field, expr, def string
		out              *cel.Program
	}{
		{"claims.username", c.Username, DefaultUsername, &m.username},
		{"claims.groups", c.Groups, DefaultGroups, &m.groups},
		{"claims.email", c.Email, DefaultEmail, &m.email},
		{"claims.emailVerified", c.EmailVerified, DefaultEmailVerified, &m.emailVerified},
		{"claims.name", c.Name, DefaultName, &m.name},
	} {
		expr := f.expr
		if expr == "" {
			expr = f.def
		}
		if *f.out, err = compile(env, f.field, expr); err != nil {
			return nil, err
		}
	}
	rules := make([]assertion.ClaimRule, 0, len(u.ClaimRules))
	for _, r := range u.ClaimRules {
		rules = append(rules, assertion.ClaimRule{Expression: r.Expression, Message: r.Message})
	}
	if m.rules, err = assertion.CompileClaimRules(rules); err != nil {
		return nil, fmt.Errorf("%w: claimValidationRules: %w", ErrInvalidMapping, err)
	}
	if u.AllowPolicy != "" {
		if m.allow, err = compile(env, "allowPolicy", u.AllowPolicy); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func compile(env *cel.Env, field, expr string) (cel.Program, error) {
	if len(expr) > maxExpression {
		return nil, fmt.Errorf("%w: %s: longer than %d bytes", ErrInvalidMapping, field, maxExpression)
	}
	ast, iss := env.Compile(expr)
	if iss.Err() != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalidMapping, field, iss.Err())
	}
	prg, err := env.Program(ast, cel.EvalOptions(cel.OptOptimize), cel.CostLimit(assertion.ClaimRuleCostLimit))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalidMapping, field, err)
	}
	return prg, nil
}

// Map maps claims (an ID token's, with userinfo's added) of the provider with the UID and name
// to an Identity: sub must be a non-empty string, every mapping of its type and within bounds,
// every rule true, and the allow policy true. Claims of odd types give errors wrapping ErrClaims,
// never a panic.
func (m *Mapper) Map(providerName, providerUID string, claims map[string]any) (Identity, error) {
	sub, ok := claims["sub"].(string)
	if !ok || sub == "" || len(sub) > maxClaimLength {
		return Identity{}, fmt.Errorf("%w: the upstream's sub claim is missing or not a string", ErrClaims)
	}
	if err := m.rules.Check(claims); err != nil {
		return Identity{}, fmt.Errorf("%w: %w", ErrClaims, err)
	}
	vars := map[string]any{"claims": claims, "user": map[string]any{}}
	id := Identity{Subject: Subject(providerUID, sub), Kind: registry.KindOIDC, Provider: providerName, ProviderUID: providerUID, UpstreamSubject: sub}
	var err error
	if id.Username, err = evalString(m.username, vars, "username", maxUsernameLength); err != nil {
		return Identity{}, err
	}
	if id.Username == "" {
		return Identity{}, fmt.Errorf("%w: the username mapping gave an empty string", ErrClaims)
	}
	if id.Email, err = evalString(m.email, vars, "email", maxClaimLength); err != nil {
		return Identity{}, err
	}
	if id.Name, err = evalString(m.name, vars, "name", maxClaimLength); err != nil {
		return Identity{}, err
	}
	if id.EmailVerified, err = evalBool(m.emailVerified, vars, "emailVerified"); err != nil {
		return Identity{}, err
	}
	if id.Groups, err = evalGroups(m.groups, vars); err != nil {
		return Identity{}, err
	}
	if m.allow != nil {
		groups := make([]any, len(id.Groups))
		for i, g := range id.Groups {
			groups[i] = g
		}
		vars["user"] = map[string]any{
			"username": id.Username, "email": id.Email, "emailVerified": id.EmailVerified,
			"name": id.Name, "groups": groups,
		}
		allowed, err := evalBool(m.allow, vars, "allowPolicy")
		if err != nil {
			return Identity{}, err
		}
		if !allowed {
			return Identity{}, fmt.Errorf("%w: the provider's allow policy refuses this user", ErrNotAllowed)
		}
	}
	return id, nil
}

func eval(prg cel.Program, vars map[string]any, field string) (ref.Val, error) {
	out, _, err := prg.Eval(vars)
	if err != nil {
		return nil, fmt.Errorf("%w: the %s mapping could not be evaluated on the upstream's claims", ErrClaims, field)
	}
	return out, nil
}

func evalString(prg cel.Program, vars map[string]any, field string, maxLen int) (string, error) {
	out, err := eval(prg, vars, field)
	if err != nil {
		return "", err
	}
	s, ok := out.Value().(string)
	if !ok {
		return "", fmt.Errorf("%w: the %s mapping gave a %s, not a string", ErrClaims, field, out.Type().TypeName())
	}
	if len(s) > maxLen {
		return "", fmt.Errorf("%w: the %s mapping gave more than %d bytes", ErrClaims, field, maxLen)
	}
	return s, nil
}

func evalBool(prg cel.Program, vars map[string]any, field string) (bool, error) {
	out, err := eval(prg, vars, field)
	if err != nil {
		return false, err
	}
	b, ok := out.Value().(bool)
	if !ok {
		return false, fmt.Errorf("%w: the %s expression gave a %s, not a bool", ErrClaims, field, out.Type().TypeName())
	}
	return b, nil
}

var stringList = reflect.TypeFor[[]string]()

// evalGroups takes a list of strings, or one string (a single group).
func evalGroups(prg cel.Program, vars map[string]any) ([]string, error) {
	out, err := eval(prg, vars, "groups")
	if err != nil {
		return nil, err
	}
	if s, ok := out.Value().(string); ok {
		out = types.NewStringList(types.DefaultTypeAdapter, []string{s})
	}
	v, err := out.ConvertToNative(stringList)
	if err != nil {
		return nil, fmt.Errorf("%w: the groups mapping gave a %s, not a list of strings", ErrClaims, out.Type().TypeName())
	}
	groups, _ := v.([]string)
	if len(groups) > maxGroups {
		return nil, fmt.Errorf("%w: the groups mapping gave more than %d groups", ErrClaims, maxGroups)
	}
	for _, g := range groups {
		if g == "" || len(g) > maxGroupLength {
			return nil, fmt.Errorf("%w: the groups mapping gave an empty group or one longer than %d bytes", ErrClaims, maxGroupLength)
		}
	}
	return groups, nil
}
