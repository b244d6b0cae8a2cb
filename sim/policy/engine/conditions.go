package engine

import (
	"errors"
	"fmt"
	"strings"
)

// This file compiles the condition language of policy rules (allOf, anyOf,
// not; field, value and count conditions) from JSON and validates the
// expressions in it; conditions_eval.go evaluates the result.

type logic uint8

const (
	logicLeaf logic = iota
	logicAllOf
	logicAnyOf
	logicNot
)

type subjectKind uint8

const (
	subjectField subjectKind = iota
	subjectValue
	subjectCount
)

// Condition is a compiled policy condition: the rule's "if" or a
// deployIfNotExists existenceCondition.
type Condition struct {
	path     string // JSON path within the policy rule, e.g. "if.allOf[1]"
	logic    logic
	children []*Condition

	subject subjectKind
	field   string    // as written; may be an expression
	ref     *fieldRef // parsed when field is a literal
	value   any       // the value subject, as written
	count   *countSpec
	op      *operator
	opName  string // as written, for messages
	target  any    // as written
}

// countSpec is a count expression.
type countSpec struct {
	field string
	ref   *fieldRef
	value any
	isVal bool
	name  string // lower-case index name for value count
	where *Condition
}

// compiler turns rule JSON into Conditions and validates expressions,
// producing Azure's error codes with JSON paths.
type compiler struct {
	def    string          // definition name, for messages
	params map[string]bool // declared parameters, lower-case
	prefix string          // JSON path of the policy rule in the document
}

func (c *compiler) at(path string) string {
	if path == "" {
		return c.prefix
	}
	return c.prefix + "." + path
}

// memberErr is Json.NET's complaint, which Azure passes through, about a
// member the schema does not have.
func (c *compiler) memberErr(path, member, objType string) *Error {
	p := joinPath(path, member)
	return &Error{Code: CodeInvalidPolicyRule, Path: c.at(p),
		Message: fmt.Sprintf("Failed to parse policy rule: 'Could not find member '%s' on object of type '%s'. Path '%s'.'.", member, objType, p)}
}

// ruleErr is an InvalidPolicyRule error for a malformed member.
func (c *compiler) ruleErr(path, msg string) *Error {
	return &Error{Code: CodeInvalidPolicyRule, Path: c.at(path),
		Message: fmt.Sprintf("Failed to parse policy rule: '%s Path '%s'.'.", msg, path)}
}

// exprErr wraps an expression problem as Azure does for template functions
// and parameters in a policy.
func (c *compiler) exprErr(path, inner string, err error) *Error {
	return &Error{Code: CodeInvalidPolicyParameters, Path: c.at(path), Err: err,
		Message: fmt.Sprintf("A function or parameter in policy '%s' could not be validated. If using template functions, try following the tips in: https://aka.ms/policy-avoiding-template-failures. The inner exception '%s'.", c.def, inner)}
}

func joinPath(path, member string) string {
	if path == "" {
		return member
	}
	return path + "." + member
}

// checkExpr validates one string of the rule: syntax, function names and
// references to declared parameters.
func (c *compiler) checkExpr(s, path string, lang where) error {
	t, err := parseTemplate(s)
	if err != nil {
		return c.exprErr(path, upperFirst(err.Error()), err)
	}
	if !t.isExpr() {
		return nil
	}
	var first error
	walkCalls(t.root, func(call *callNode) {
		if first != nil {
			return
		}
		f, ok := functions[strings.ToLower(call.name)]
		if !ok || f.lang&lang == 0 {
			_, err := lookupFunction(call.name, lang)
			first = c.exprErr(path, upperFirst(strings.TrimSuffix(err.Error(), ": "+ErrEvaluation.Error())), err)
			return
		}
		if err := f.checkArity(call.name, len(call.args)); err != nil {
			first = c.exprErr(path, upperFirst(strings.TrimSuffix(err.Error(), ": "+ErrEvaluation.Error())), err)
			return
		}
		if strings.EqualFold(call.name, "field") && lang == inPolicy && len(call.args) == 1 {
			if lit, ok := call.args[0].(*strLit); ok {
				if _, err := parseField(lit.s, c.def); err != nil {
					var e *Error
					if errors.As(err, &e) {
						first = &Error{Code: e.Code, Message: e.Message, Path: c.at(path)}
					}
					return
				}
			}
		}
		if strings.EqualFold(call.name, "parameters") && lang == inPolicy && len(call.args) == 1 {
			if lit, ok := call.args[0].(*strLit); ok && !c.params[strings.ToLower(lit.s)] {
				first = c.exprErr(path, fmt.Sprintf("The policy '%s' has undefined parameter '%s' which is used in the policy rule. Please either define it in policy definition or remove the reference in policy rule.", c.def, lit.s), nil)
			}
		}
	})
	return first
}

// checkValue validates every string inside a JSON value.
func (c *compiler) checkValue(v any, path string, lang where) error {
	switch x := v.(type) {
	case string:
		return c.checkExpr(x, path, lang)
	case []any:
		for i, e := range x {
			if err := c.checkValue(e, fmt.Sprintf("%s[%d]", path, i), lang); err != nil {
				return err
			}
		}
	case map[string]any:
		for _, k := range sortedKeys(x) {
			if err := c.checkValue(x[k], joinPath(path, k), lang); err != nil {
				return err
			}
		}
	}
	return nil
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// members returns an object's members keyed by lower-case name, failing on
// duplicates that differ only in case (Json.NET would too).
func (c *compiler) members(v any, path, objType string) (map[string]string, map[string]any, error) {
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, nil, c.ruleErr(path, fmt.Sprintf("Expected an object of type '%s' but found a value of type '%s'.", objType, typeName(v)))
	}
	names := map[string]string{}
	for k := range obj {
		lk := strings.ToLower(k)
		if prev, dup := names[lk]; dup {
			return nil, nil, c.ruleErr(joinPath(path, k), fmt.Sprintf("The member '%s' is given twice (also as '%s').", k, prev))
		}
		names[lk] = k
	}
	return names, obj, nil
}

// condition compiles one condition object.
func (c *compiler) condition(v any, path string, depth int) (*Condition, error) {
	if depth > 512 {
		return nil, c.ruleErr(path, "The policy rule nests conditions deeper than 512 levels.")
	}
	names, obj, err := c.members(v, path, "Condition")
	if err != nil {
		return nil, err
	}
	for _, lk := range []string{"allof", "anyof", "not"} {
		k, ok := names[lk]
		if !ok {
			continue
		}
		if len(obj) != 1 {
			for _, other := range sortedKeys(obj) {
				if other != k {
					return nil, c.memberErr(path, other, "LogicalOperator")
				}
			}
		}
		return c.logical(lk, obj[k], joinPath(path, k), depth)
	}
	return c.leaf(names, obj, path, depth)
}

func (c *compiler) logical(kind string, v any, path string, depth int) (*Condition, error) {
	if kind == "not" {
		child, err := c.condition(v, path, depth+1)
		if err != nil {
			return nil, err
		}
		return &Condition{path: path, logic: logicNot, children: []*Condition{child}}, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, c.ruleErr(path, fmt.Sprintf("The '%s' operator expects an array of conditions but found a value of type '%s'.", path[strings.LastIndexByte(path, '.')+1:], typeName(v)))
	}
	cond := &Condition{path: path, logic: logicAllOf}
	if kind == "anyof" {
		cond.logic = logicAnyOf
	}
	for i, e := range list {
		child, err := c.condition(e, fmt.Sprintf("%s[%d]", path, i), depth+1)
		if err != nil {
			return nil, err
		}
		cond.children = append(cond.children, child)
	}
	return cond, nil
}

func (c *compiler) leaf(names map[string]string, obj map[string]any, path string, depth int) (*Condition, error) {
	cond := &Condition{path: path}
	subjects := 0
	for _, k := range sortedKeys(obj) {
		lk := strings.ToLower(k)
		v := obj[k]
		switch {
		case lk == "field" || lk == "value" || lk == "count":
			subjects++
			if subjects > 1 {
				return nil, c.ruleErr(joinPath(path, k), "A condition has exactly one of 'field', 'value' or 'count'.")
			}
			if err := c.subject(cond, lk, v, joinPath(path, k), depth); err != nil {
				return nil, err
			}
		case operators[lk] != nil:
			if cond.op != nil {
				return nil, c.ruleErr(joinPath(path, k), fmt.Sprintf("A condition has exactly one operator; found '%s' and '%s'.", cond.opName, k))
			}
			cond.op, cond.opName, cond.target = operators[lk], k, v
			if err := c.target(cond, joinPath(path, k)); err != nil {
				return nil, err
			}
		default:
			return nil, c.memberErr(path, k, "Condition")
		}
	}
	if subjects == 0 {
		return nil, c.ruleErr(path, "A condition needs one of 'field', 'value' or 'count', or a logical operator 'allOf', 'anyOf' or 'not'.")
	}
	if cond.op == nil {
		return nil, c.ruleErr(path, "A condition needs an operator such as 'equals', 'in' or 'exists'.")
	}
	return cond, nil
}

func (c *compiler) subject(cond *Condition, kind string, v any, path string, depth int) error {
	switch kind {
	case "field":
		s, ok := v.(string)
		if !ok {
			return c.ruleErr(path, fmt.Sprintf("The 'field' property must be a string but found a value of type '%s'.", typeName(v)))
		}
		cond.subject, cond.field = subjectField, s
		if isExpressionString(s) {
			return c.checkExpr(s, path, inPolicy)
		}
		ref, err := c.fieldRef(s, path)
		cond.ref = ref
		return err
	case "value":
		cond.subject, cond.value = subjectValue, v
		return c.checkValue(v, path, inPolicy)
	default:
		cond.subject = subjectCount
		cs, err := c.countSpec(v, path, depth)
		cond.count = cs
		return err
	}
}

func (c *compiler) fieldRef(s, path string) (*fieldRef, error) {
	ref, err := parseField(s, c.def)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			e.Path = c.at(path)
		}
		return nil, err
	}
	return ref, nil
}

func (c *compiler) countSpec(v any, path string, depth int) (*countSpec, error) {
	_, obj, err := c.members(v, path, "CountExpression")
	if err != nil {
		return nil, err
	}
	cs := &countSpec{}
	for _, k := range sortedKeys(obj) {
		p := joinPath(path, k)
		switch strings.ToLower(k) {
		case "field":
			s, ok := obj[k].(string)
			if !ok {
				return nil, c.ruleErr(p, "The count 'field' must be a string.")
			}
			ref, err := c.fieldRef(s, p)
			if err != nil {
				return nil, err
			}
			if ref.kind != fieldAlias || !ref.alias.wildcard() || !ref.alias.path[len(ref.alias.path)-1].wildcard {
				return nil, c.ruleErr(p, fmt.Sprintf("The count 'field' '%s' must be an array alias ending with '[*]'.", s))
			}
			cs.field, cs.ref = s, ref
		case "value":
			cs.value, cs.isVal = obj[k], true
			if err := c.checkValue(obj[k], p, inPolicy); err != nil {
				return nil, err
			}
		case "name":
			s, ok := obj[k].(string)
			if !ok || s == "" {
				return nil, c.ruleErr(p, "The count 'name' must be a non-empty string of letters and digits.")
			}
			cs.name = strings.ToLower(s)
		case "where":
			w, err := c.condition(obj[k], p, depth+1)
			if err != nil {
				return nil, err
			}
			cs.where = w
		default:
			return nil, c.memberErr(path, k, "CountExpression")
		}
	}
	if (cs.ref == nil) == !cs.isVal {
		return nil, c.ruleErr(path, "A count expression has exactly one of 'field' or 'value'.")
	}
	if cs.ref != nil && cs.name != "" {
		return nil, c.memberErr(path, "name", "FieldCountExpression")
	}
	if cs.isVal && cs.name == "" {
		cs.name = "default"
	}
	return cs, nil
}

// target checks an operator's right-hand side where it is a literal.
func (c *compiler) target(cond *Condition, path string) error {
	if err := c.checkValue(cond.target, path, inPolicy); err != nil {
		return err
	}
	if s, ok := cond.target.(string); ok && isExpressionString(s) {
		return nil
	}
	switch cond.op.target {
	case targetArray:
		if _, ok := cond.target.([]any); !ok {
			return c.ruleErr(path, fmt.Sprintf("The '%s' condition expects an array but found a value of type '%s'.", cond.opName, typeName(cond.target)))
		}
	case targetString:
		if _, ok := cond.target.(string); !ok {
			return c.ruleErr(path, fmt.Sprintf("The '%s' condition expects a string but found a value of type '%s'.", cond.opName, typeName(cond.target)))
		}
	case targetBool:
		if _, err := existsTarget(cond.target); err != nil {
			return c.ruleErr(path, "The 'exists' condition expects 'true' or 'false'.")
		}
	}
	return nil
}
