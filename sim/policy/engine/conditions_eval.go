package engine

import (
	"fmt"
	"strings"
)

// This file evaluates compiled conditions against a resource.

// ExpressionResult is one evaluated condition as Azure Policy reports it
// in policyEvaluationDetails.evaluatedExpressions (armpolicyinsights
// ExpressionEvaluationDetails).
type ExpressionResult struct {
	Result          string `json:"result"`         // "True" or "False"
	Expression      string `json:"expression"`     // the field, value or count as written
	ExpressionKind  string `json:"expressionKind"` // "Field", "Value" or "Count"
	Path            string `json:"path,omitempty"` // the JSON path a field selected
	ExpressionValue any    `json:"expressionValue"`
	TargetValue     any    `json:"targetValue"`
	Operator        string `json:"operator"`
}

// condEval evaluates conditions against one resource.
type condEval struct {
	res      Resource // what field conditions read
	scope    *scope   // expressions; its field() may read another resource
	norm     func(normKind) func(string) string
	def      string
	bindings []binding
	record   *[]ExpressionResult // nil inside count
}

func (e *condEval) eval(c *Condition) (bool, error) {
	switch c.logic {
	case logicNot:
		ok, err := e.eval(c.children[0])
		return !ok, err
	case logicAllOf:
		for _, ch := range c.children {
			ok, err := e.eval(ch)
			if err != nil || !ok {
				return false, err
			}
		}
		return true, nil
	case logicAnyOf:
		for _, ch := range c.children {
			ok, err := e.eval(ch)
			if err != nil || ok {
				return ok, err
			}
		}
		return false, nil
	}
	return e.leaf(c)
}

func (e *condEval) leaf(c *Condition) (bool, error) {
	fail := func(err error) (bool, error) {
		return false, fmt.Errorf("condition at '%s': %w", c.path, err)
	}
	target, err := evalDeep(c.target, e.scope)
	if err != nil {
		return fail(err)
	}
	rec := ExpressionResult{Operator: c.op.name, TargetValue: target}
	var fv fieldValue
	var norm func(string) string
	switch c.subject {
	case subjectField:
		ref := c.ref
		if ref == nil {
			name, err := evalString(c.field, e.scope)
			if err != nil {
				return fail(err)
			}
			s, ok := name.(string)
			if !ok {
				return fail(fmt.Errorf("the field expression '%s' is type '%s', expected type is 'String': %w", c.field, typeName(name), ErrEvaluation))
			}
			if ref, err = parseField(s, e.def); err != nil {
				return fail(fmt.Errorf("%w: %w", ErrEvaluation, err))
			}
		}
		fv = resolveField(ref, e.res, e.bindings)
		rec.Expression, rec.ExpressionKind, rec.Path = ref.raw, "Field", fv.path
		switch {
		case ref.kind == fieldLocation:
			norm = e.norm(normLocation)
		case ref.alias != nil:
			norm = e.norm(ref.alias.norm)
		}
	case subjectValue:
		v, err := evalDeep(c.value, e.scope)
		if err != nil {
			return fail(err)
		}
		fv = fieldValue{one: item{v, v != nil}}
		rec.Expression, rec.ExpressionKind = display(c.value), "Value"
	case subjectCount:
		n, err := e.countOf(c.count)
		if err != nil {
			return fail(err)
		}
		fv = fieldValue{one: item{n, true}}
		rec.Expression, rec.ExpressionKind = c.count.field, "Count"
		if c.count.isVal {
			rec.Expression = display(c.count.value)
		}
	}
	result := true
	if fv.multi {
		// A [*] field condition holds when every selected member passes.
		for _, it := range fv.items {
			ok, err := c.op.fn(it.value, it.present, target, norm)
			if err != nil {
				return fail(err)
			}
			if !ok {
				result = false
				break
			}
		}
	} else if result, err = c.op.fn(fv.one.value, fv.one.present, target, norm); err != nil {
		return fail(err)
	}
	if e.record != nil {
		rec.ExpressionValue = fv.values()
		if !fv.multi && !fv.one.present {
			rec.ExpressionValue = nil // missing, where field() would say ""
		}
		rec.Result = dotnetBool(result)
		*e.record = append(*e.record, rec)
	}
	return result, nil
}

// countOf evaluates a count expression: how many members satisfy where.
func (e *condEval) countOf(cs *countSpec) (int64, error) {
	var members []any
	var b binding
	if cs.isVal {
		v, err := evalDeep(cs.value, e.scope)
		if err != nil {
			return 0, err
		}
		arr, ok := v.([]any)
		if !ok {
			return 0, fmt.Errorf("the count value is type '%s', expected type is 'Array': %w", typeName(v), ErrEvaluation)
		}
		members, b = arr, binding{name: cs.name}
	} else {
		fv := resolveField(cs.ref, e.res, e.bindings)
		for _, it := range fv.items {
			members = append(members, it.value)
		}
		b = binding{path: cs.ref.alias.path, alias: cs.field}
	}
	if cs.where == nil {
		return int64(len(members)), nil
	}
	inner := *e
	inner.record = nil
	inner.scope = e.innerScope(&inner)
	var n int64
	for _, m := range members {
		b.value = m
		inner.bindings = append(append([]binding{}, e.bindings...), b)
		ok, err := inner.eval(cs.where)
		if err != nil {
			return 0, err
		}
		if ok {
			n++
		}
	}
	return n, nil
}

// innerScope gives where conditions current() and a field() that sees the
// enumerated member.
func (e *condEval) innerScope(inner *condEval) *scope {
	s := *e.scope
	s.current = func(name string, named bool) (any, error) {
		bs := inner.bindings
		for i := len(bs) - 1; i >= 0; i-- {
			b := bs[i]
			if !named || (b.path == nil && b.name == strings.ToLower(name)) || (b.path != nil && strings.EqualFold(b.alias, name)) {
				return b.value, nil
			}
			if b.path != nil && named {
				// current('alias[*].property') reads a property of the member.
				if ref, err := parseField(name, inner.def); err == nil && ref.alias != nil && hasPathPrefix(ref.alias.path, b.path) {
					return selectPathFrom(b.value, ref.alias.path[len(b.path):]).values(), nil
				}
			}
		}
		return nil, fmt.Errorf("current('%s') names no enclosing count expression: %w", name, ErrEvaluation)
	}
	if e.scope.field != nil && inner.res != nil {
		outerField := e.scope.field
		s.field = func(name string) (any, error) {
			ref, err := parseField(name, inner.def)
			if err == nil && ref.alias != nil && boundAlias(ref.alias, inner.bindings) {
				return resolveField(ref, inner.res, inner.bindings).values(), nil
			}
			return outerField(name)
		}
	}
	return &s
}
