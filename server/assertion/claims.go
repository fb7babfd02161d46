package assertion

import (
	"fmt"
	"math"
	"time"
)

// Claims are the claims of a token Verify accepted.
type Claims struct {
	Issuer    string    // iss
	Subject   string    // sub
	Audience  []string  // aud; a string is one value
	Expiry    time.Time // exp; zero when absent (never after Verify)
	NotBefore time.Time // nbf; zero when absent
	IssuedAt  time.Time // iat; zero when absent
	ID        string    // jti
	// Kubernetes is the "kubernetes.io" claim of a ServiceAccount token, nil when absent.
	Kubernetes *KubernetesClaims
	// Raw is every claim (integers as int64, other numbers as float64), the "claims" of CEL
	// rules. It is shared with the Token: do not modify it.
	Raw map[string]any
}

// UnverifiedClaims are the claims of a token that has not been verified: a distinct type so
// that they cannot be taken for Claims by accident.
type UnverifiedClaims Claims

// KubernetesClaims is the "kubernetes.io" claim of a ServiceAccount token.
type KubernetesClaims struct {
	Namespace      string
	ServiceAccount Ref
	Pod            *Ref // the pod the token is bound to, nil when absent
	Node           *Ref // the node the token is bound to, nil when absent
	// WarnAfter is set when the kubelet extended the token's lifetime to a year (admission of
	// old clients); zero when absent.
	WarnAfter time.Time
}

// Ref names a Kubernetes object.
type Ref struct {
	Name string
	UID  string
}

// maxNumericDate bounds a NumericDate: the end of year 9999.
const maxNumericDate = 253402300799

// typedClaims reads the registered claims and the Kubernetes claim from the decoded claims.
func typedClaims(raw map[string]any) (Claims, error) {
	c := Claims{Raw: raw}
	var err error
	if c.Issuer, err = stringClaim(raw, "iss"); err != nil {
		return c, err
	}
	if c.Subject, err = stringClaim(raw, "sub"); err != nil {
		return c, err
	}
	if c.ID, err = stringClaim(raw, "jti"); err != nil {
		return c, err
	}
	if c.Audience, err = audienceClaim(raw); err != nil {
		return c, err
	}
	if c.Expiry, err = dateClaim(raw, "exp"); err != nil {
		return c, err
	}
	if c.NotBefore, err = dateClaim(raw, "nbf"); err != nil {
		return c, err
	}
	if c.IssuedAt, err = dateClaim(raw, "iat"); err != nil {
		return c, err
	}
	if c.Kubernetes, err = kubernetesClaim(raw); err != nil {
		return c, err
	}
	return c, nil
}

func stringClaim(m map[string]any, name string) (string, error) {
	v, ok := m[name]
	if !ok {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%w: %s is not a string", ErrMalformed, name)
	}
	return s, nil
}

func audienceClaim(m map[string]any) ([]string, error) {
	switch v := m["aud"].(type) {
	case nil:
		if _, ok := m["aud"]; ok {
			return nil, fmt.Errorf("%w: aud is null", ErrMalformed)
		}
		return nil, nil
	case string:
		return []string{v}, nil
	case []any:
		aud := make([]string, 0, len(v))
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("%w: aud is not a string or an array of strings", ErrMalformed)
			}
			aud = append(aud, s)
		}
		return aud, nil
	default:
		return nil, fmt.Errorf("%w: aud is not a string or an array of strings", ErrMalformed)
	}
}

// dateClaim reads a NumericDate (RFC 7519 section 2), whole seconds (a fraction is dropped).
func dateClaim(m map[string]any, name string) (time.Time, error) {
	v, ok := m[name]
	if !ok {
		return time.Time{}, nil
	}
	var sec int64
	switch v := v.(type) {
	case int64:
		sec = v
	case float64:
		if math.IsNaN(v) || v < 0 || v > maxNumericDate {
			return time.Time{}, fmt.Errorf("%w: %s is out of range", ErrMalformed, name)
		}
		sec = int64(v)
	default:
		return time.Time{}, fmt.Errorf("%w: %s is not a number", ErrMalformed, name)
	}
	if sec < 0 || sec > maxNumericDate {
		return time.Time{}, fmt.Errorf("%w: %s is out of range", ErrMalformed, name)
	}
	return time.Unix(sec, 0), nil
}

func kubernetesClaim(m map[string]any) (*KubernetesClaims, error) {
	v, ok := m["kubernetes.io"]
	if !ok {
		return nil, nil
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: kubernetes.io is not an object", ErrMalformed)
	}
	k := &KubernetesClaims{}
	var err error
	if k.Namespace, err = stringClaim(obj, "namespace"); err != nil {
		return nil, err
	}
	sa, err := refClaim(obj, "serviceaccount")
	if err != nil {
		return nil, err
	}
	if sa != nil {
		k.ServiceAccount = *sa
	}
	if k.Pod, err = refClaim(obj, "pod"); err != nil {
		return nil, err
	}
	if k.Node, err = refClaim(obj, "node"); err != nil {
		return nil, err
	}
	if k.WarnAfter, err = dateClaim(obj, "warnafter"); err != nil {
		return nil, err
	}
	return k, nil
}

func refClaim(m map[string]any, name string) (*Ref, error) {
	v, ok := m[name]
	if !ok {
		return nil, nil
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: kubernetes.io %s is not an object", ErrMalformed, name)
	}
	var r Ref
	var err error
	if r.Name, err = stringClaim(obj, "name"); err != nil {
		return nil, err
	}
	if r.UID, err = stringClaim(obj, "uid"); err != nil {
		return nil, err
	}
	return &r, nil
}
