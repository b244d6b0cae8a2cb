package engine

import (
	"fmt"
	"strings"
)

// where says which language an expression belongs to: a policy rule (with
// field(), current(), no resourceId()) or a deployment template (with
// variables() and the resource functions). Azure lists the functions each
// side lacks in definition-structure-policy-rule.md, "Policy functions".
type where uint8

const (
	inPolicy where = 1 << iota
	inTemplate
	inBoth = inPolicy | inTemplate
)

func (w where) String() string {
	if w == inTemplate {
		return "deployment template"
	}
	return "policy rule"
}

// scope is what an expression can see while it is evaluated. Nil functions
// mean the thing does not exist in this context.
type scope struct {
	lang          where
	params        func(name string) (any, error)
	variables     func(name string) (any, error)
	field         func(name string) (any, error)
	current       func(name string, named bool) (any, error)
	resourceGroup func() (map[string]any, error)
	subscription  func() (map[string]any, error)
}

// evalTemplate returns a string's value: the literal, or the expression's
// result.
func evalTemplate(t *template, s *scope) (any, error) {
	if !t.isExpr() {
		return t.literal, nil
	}
	v, err := eval(t.root, s)
	if err != nil {
		return nil, fmt.Errorf("the language expression '%s' is not valid: %w", t.src, err)
	}
	return v, nil
}

// evalString parses and evaluates a JSON string value.
func evalString(src string, s *scope) (any, error) {
	t, err := parseTemplate(src)
	if err != nil {
		return nil, err
	}
	return evalTemplate(t, s)
}

// evalDeep evaluates every expression string in a JSON value, leaving
// everything else as it is. The input is not modified.
func evalDeep(v any, s *scope) (any, error) {
	switch x := v.(type) {
	case string:
		return evalString(x, s)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			ev, err := evalDeep(e, s)
			if err != nil {
				return nil, err
			}
			out[i] = ev
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for _, k := range sortedKeys(x) {
			ev, err := evalDeep(x[k], s)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			out[k] = ev
		}
		return out, nil
	}
	return v, nil
}

// eval evaluates a parsed expression.
func eval(n node, s *scope) (any, error) {
	switch x := n.(type) {
	case *strLit:
		return x.s, nil
	case *intLit:
		return x.n, nil
	case *callNode:
		return call(x, s)
	case *memberNode:
		v, err := eval(x.x, s)
		if err != nil {
			return nil, err
		}
		return property(v, x.name)
	case *indexNode:
		v, err := eval(x.x, s)
		if err != nil {
			return nil, err
		}
		idx, err := eval(x.index, s)
		if err != nil {
			return nil, err
		}
		return index(v, idx)
	}
	return nil, fmt.Errorf("unknown expression node %T: %w", n, ErrEvaluation)
}

// property is the '.name' accessor; ARM matches property names
// case-insensitively and fails on a missing one.
func property(v any, name string) (any, error) {
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("the language expression property '%s' can't be evaluated, the value is of type '%s', expected 'Object': %w", name, typeName(v), ErrEvaluation)
	}
	if _, pv, ok := lookupFold(obj, name); ok {
		return pv, nil
	}
	return nil, fmt.Errorf("the language expression property '%s' doesn't exist, available properties are '%s': %w", name, strings.Join(sortedKeys(obj), ", "), ErrEvaluation)
}

// index is the '[x]' accessor: an integer into an array or a string key
// into an object.
func index(v, idx any) (any, error) {
	switch c := v.(type) {
	case []any:
		i, ok := idx.(int64)
		if !ok {
			return nil, fmt.Errorf("the array index must be an integer, got '%s': %w", typeName(idx), ErrEvaluation)
		}
		if i < 0 || i >= int64(len(c)) {
			return nil, fmt.Errorf("the language expression array index '%d' is out of bounds (length %d): %w", i, len(c), ErrEvaluation)
		}
		return c[i], nil
	case map[string]any:
		key, ok := idx.(string)
		if !ok {
			return nil, fmt.Errorf("the object property name must be a string, got '%s': %w", typeName(idx), ErrEvaluation)
		}
		return property(c, key)
	}
	return nil, fmt.Errorf("the language expression cannot index a value of type '%s': %w", typeName(v), ErrEvaluation)
}

// call evaluates a function call through the function table.
func call(c *callNode, s *scope) (any, error) {
	fn, err := lookupFunction(c.name, s.lang)
	if err != nil {
		return nil, err
	}
	if err := fn.checkArity(c.name, len(c.args)); err != nil {
		return nil, err
	}
	if fn.lazy != nil {
		return fn.lazy(s, c.args)
	}
	args := make([]any, len(c.args))
	for i, a := range c.args {
		v, err := eval(a, s)
		if err != nil {
			return nil, err
		}
		args[i] = v
	}
	v, err := fn.call(s, args)
	if err != nil {
		return nil, fmt.Errorf("unable to evaluate template language function '%s': %w", fn.name, err)
	}
	return v, nil
}
