package engine

import (
	"fmt"
	"strings"
	"unicode"
)

// This file is the table of condition operators with Azure Policy's
// semantics (definition-structure-policy-rule.md, "Conditions"): string
// comparisons are case-insensitive (InvariantCultureIgnoreCase) except
// match/notMatch; a boolean or number equals its string form; a missing
// value equals the empty string, and every "not" operator is the exact
// negation of its positive twin.

// opFunc tests one selected value. present is false when the field does
// not exist; norm, when not nil, normalises strings on both sides.
type opFunc func(v any, present bool, target any, norm func(string) string) (bool, error)

// targetKind is what an operator accepts as its right-hand side.
type targetKind uint8

const (
	targetAny targetKind = iota
	targetString
	targetArray
	targetBool
)

// operator is one row of the table.
type operator struct {
	name   string // as Azure writes it in evaluation details, e.g. "NotEquals"
	target targetKind
	fn     opFunc
}

// operators is keyed by the lower-case condition name (policy JSON member
// names are case-insensitive).
var operators = func() map[string]*operator {
	rows := []*operator{
		{"Equals", targetAny, opEquals},
		{"Like", targetString, opLike},
		{"Match", targetString, matchOp(false)},
		{"MatchInsensitively", targetString, matchOp(true)},
		{"Contains", targetAny, opContains},
		{"In", targetArray, opIn},
		{"ContainsKey", targetString, opContainsKey},
		{"Less", targetAny, orderOp(func(c int) bool { return c < 0 })},
		{"LessOrEquals", targetAny, orderOp(func(c int) bool { return c <= 0 })},
		{"Greater", targetAny, orderOp(func(c int) bool { return c > 0 })},
		{"GreaterOrEquals", targetAny, orderOp(func(c int) bool { return c >= 0 })},
		{"Exists", targetBool, opExists},
	}
	negations := map[string]string{
		"NotEquals": "Equals", "NotLike": "Like", "NotMatch": "Match",
		"NotMatchInsensitively": "MatchInsensitively", "NotContains": "Contains",
		"NotIn": "In", "NotContainsKey": "ContainsKey",
	}
	out := map[string]*operator{}
	for _, r := range rows {
		out[strings.ToLower(r.name)] = r
	}
	for neg, pos := range negations {
		p := out[strings.ToLower(pos)]
		out[strings.ToLower(neg)] = &operator{name: neg, target: p.target, fn: negate(p.fn)}
	}
	return out
}()

func negate(f opFunc) opFunc {
	return func(v any, present bool, t any, norm func(string) string) (bool, error) {
		ok, err := f(v, present, t, norm)
		return !ok, err
	}
}

// value returns v, or nil when it is missing.
func valueOrNil(v any, present bool) any {
	if !present {
		return nil
	}
	return v
}

func opEquals(v any, present bool, t any, norm func(string) string) (bool, error) {
	return policyEquals(valueOrNil(v, present), t, norm), nil
}

func stringTarget(op string, t any) (string, error) {
	s, ok := t.(string)
	if !ok {
		return "", fmt.Errorf("the value of condition '%s' is type '%s', expected type is 'String': %w", op, typeName(t), ErrEvaluation)
	}
	return s, nil
}

// scalarString is a present scalar's string form; arrays, objects and
// missing values have none.
func scalarString(v any, present bool) (string, bool) {
	if !present {
		return "", false
	}
	return stringForm(v)
}

func opLike(v any, present bool, t any, norm func(string) string) (bool, error) {
	pattern, err := stringTarget("like", t)
	if err != nil {
		return false, err
	}
	s, ok := scalarString(v, present)
	if !ok {
		return false, nil
	}
	if norm != nil {
		s, pattern = norm(s), norm(pattern)
	}
	return wildcardMatch(strings.ToLower(s), strings.ToLower(pattern)), nil
}

// wildcardMatch matches s against a pattern where '*' is any run of
// characters.
func wildcardMatch(s, pattern string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return s == pattern
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return strings.HasSuffix(s, parts[len(parts)-1])
}

// matchOp implements match: '#' is a digit, '?' a letter, '.' any
// character, anything else itself; the whole value must match.
func matchOp(fold bool) opFunc {
	return func(v any, present bool, t any, _ func(string) string) (bool, error) {
		pattern, err := stringTarget("match", t)
		if err != nil {
			return false, err
		}
		s, ok := scalarString(v, present)
		if !ok {
			return false, nil
		}
		sr, pr := []rune(s), []rune(pattern)
		if len(sr) != len(pr) {
			return false, nil
		}
		for i, p := range pr {
			c := sr[i]
			switch p {
			case '#':
				if !unicode.IsDigit(c) {
					return false, nil
				}
			case '?':
				if !unicode.IsLetter(c) {
					return false, nil
				}
			case '.':
			default:
				if c != p && (!fold || unicode.ToLower(c) != unicode.ToLower(p)) {
					return false, nil
				}
			}
		}
		return true, nil
	}
}

// opContains is a case-insensitive substring test on strings and a
// membership test on arrays.
func opContains(v any, present bool, t any, norm func(string) string) (bool, error) {
	if !present {
		return false, nil
	}
	if arr, ok := v.([]any); ok {
		for _, e := range arr {
			if policyEquals(e, t, norm) {
				return true, nil
			}
		}
		return false, nil
	}
	s, ok := stringForm(v)
	ts, tok := stringForm(t)
	if !ok || !tok {
		return false, nil
	}
	if norm != nil {
		s, ts = norm(s), norm(ts)
	}
	return strings.Contains(strings.ToLower(s), strings.ToLower(ts)), nil
}

func opIn(v any, present bool, t any, norm func(string) string) (bool, error) {
	list, ok := t.([]any)
	if !ok {
		return false, fmt.Errorf("the value of condition 'in' is type '%s', expected type is 'Array': %w", typeName(t), ErrEvaluation)
	}
	x := valueOrNil(v, present)
	for _, e := range list {
		if policyEquals(x, e, norm) {
			return true, nil
		}
	}
	return false, nil
}

func opContainsKey(v any, present bool, t any, _ func(string) string) (bool, error) {
	key, err := stringTarget("containsKey", t)
	if err != nil {
		return false, err
	}
	obj, ok := v.(map[string]any)
	if !present || !ok {
		return false, nil
	}
	_, _, found := lookupFold(obj, key)
	return found, nil
}

// orderOp compares numbers by value, date-times by time and other strings
// case-insensitively; a missing value is never less or greater, and a type
// mismatch is an error as the docs say.
func orderOp(ok func(int) bool) opFunc {
	return func(v any, present bool, t any, _ func(string) string) (bool, error) {
		if !present || v == nil {
			return false, nil
		}
		if x, isNum := number(v); isNum {
			y, isNum := number(t)
			if !isNum {
				return false, fmt.Errorf("the value '%v' of type '%s' cannot be compared with the condition value of type '%s': %w", v, typeName(v), typeName(t), ErrEvaluation)
			}
			return ok(cmpFloat(x, y)), nil
		}
		xs, xok := v.(string)
		ys, yok := t.(string)
		if !xok || !yok {
			return false, fmt.Errorf("the value of type '%s' cannot be compared with the condition value of type '%s': %w", typeName(v), typeName(t), ErrEvaluation)
		}
		if xt, ok1 := parseDateTime(xs); ok1 {
			if yt, ok2 := parseDateTime(ys); ok2 {
				return ok(xt.Compare(yt)), nil
			}
		}
		return ok(strings.Compare(strings.ToLower(xs), strings.ToLower(ys))), nil
	}
}

func opExists(_ any, present bool, t any, _ func(string) string) (bool, error) {
	want, err := existsTarget(t)
	if err != nil {
		return false, err
	}
	return present == want, nil
}

// existsTarget reads exists' value: a boolean or "true"/"false".
func existsTarget(t any) (bool, error) {
	switch x := t.(type) {
	case bool:
		return x, nil
	case string:
		switch strings.ToLower(x) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
	}
	return false, fmt.Errorf("the value of condition 'exists' must be 'true' or 'false', got '%v': %w", t, ErrEvaluation)
}
