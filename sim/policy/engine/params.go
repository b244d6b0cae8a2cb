package engine

import (
	"fmt"
	"strings"
)

// ResolveParameters checks an assignment's parameter values against the
// definition and returns the values the rule sees: the assigned ones with
// defaults filled in, keyed by the names the definition declares. assigned
// holds plain values (the "value" of each ARM parameter entry); a nil value
// counts as not given. assignment names the assignment in messages.
//
// The checks and their ARM codes, in the order they are made:
// UndefinedPolicyParameter for names the definition does not declare,
// MissingPolicyParameter for parameters without a value or default,
// InvalidPolicyParameters for a value of the wrong type, and
// PolicyParameterValueNotAllowed for a value outside allowedValues, which
// Azure compares case-sensitively (definition-structure-parameters.md).
func (def *Definition) ResolveParameters(assignment string, assigned map[string]any) (map[string]any, error) {
	var undefined []string
	for _, name := range sortedKeys(assigned) {
		if def.parameter(name) == nil {
			undefined = append(undefined, name)
		}
	}
	if len(undefined) > 0 {
		return nil, &Error{Code: CodeUndefinedPolicyParameter, Path: "properties.parameters",
			Message: fmt.Sprintf("The policy assignment '%s' has the parameter(s) '%s' which are not defined in the policy definition '%s'.", assignment, strings.Join(undefined, ","), def.Name)}
	}
	out := make(map[string]any, len(def.Parameters))
	var missing []string
	for _, p := range def.Parameters {
		v, given := lookupAssigned(assigned, p.Name)
		switch {
		case given:
			out[p.Name] = normalize(v)
		case p.HasDefault:
			out[p.Name] = normalize(p.DefaultValue)
		default:
			missing = append(missing, p.Name)
		}
	}
	if len(missing) > 0 {
		return nil, &Error{Code: CodeMissingPolicyParameter, Path: "properties.parameters",
			Message: fmt.Sprintf("The policy assignment '%s' is missing the parameter(s) '%s' as defined in the policy definition '%s'.", assignment, strings.Join(missing, ","), def.Name)}
	}
	for _, p := range def.Parameters {
		v := out[p.Name]
		path := "properties.parameters." + p.Name + ".value"
		if got, ok := p.typeMatches(v); !ok {
			return nil, &Error{Code: CodeInvalidPolicyParameters, Path: path,
				Message: fmt.Sprintf("The policy assignment '%s' parameter '%s' value does not match the expected parameter type defined in the policy definition '%s'. Details 'The expected policy parameter type: '%s'. The actual policy parameter type '%s'.'.", assignment, p.Name, def.Name, p.Type, got)}
		}
		if !p.allowed(v) {
			return nil, &Error{Code: CodePolicyParameterValueNotAllowed, Path: path,
				Message: fmt.Sprintf("The value '%s' is not allowed for policy parameter '%s' in policy definition '%s'. The allowed values are '%s'.", display(v), p.Name, def.Name, displayList(p.AllowedValues, ", "))}
		}
	}
	return out, nil
}

// lookupAssigned finds an assigned value by parameter name; ARM matches
// parameter names case-insensitively.
func lookupAssigned(assigned map[string]any, name string) (any, bool) {
	_, v, ok := lookupFold(assigned, name)
	return v, ok && v != nil
}

// typeMatches checks a value against the parameter's type and returns the
// value's type name when it does not match.
func (p *Parameter) typeMatches(v any) (string, bool) {
	v = normalize(v)
	got := typeName(v)
	switch p.Type {
	case TypeString:
		_, ok := v.(string)
		return got, ok
	case TypeArray:
		_, ok := v.([]any)
		return got, ok
	case TypeObject:
		_, ok := v.(map[string]any)
		return got, ok
	case TypeBoolean:
		_, ok := v.(bool)
		return got, ok
	case TypeInteger:
		_, ok := v.(int64)
		return got, ok
	case TypeFloat:
		_, ok := number(v)
		return got, ok
	case TypeDateTime:
		s, ok := v.(string)
		if !ok {
			return got, false
		}
		_, ok = parseDateTime(s)
		return got, ok
	}
	return got, false
}

// allowed checks a value against allowedValues: the value itself, or for
// an array parameter each of its members, must be listed.
func (p *Parameter) allowed(v any) bool {
	if p.AllowedValues == nil {
		return true
	}
	v = normalize(v)
	in := func(x any) bool {
		for _, a := range p.AllowedValues {
			if armEquals(normalize(a), x) {
				return true
			}
		}
		return false
	}
	if in(v) {
		return true
	}
	if arr, ok := v.([]any); ok && p.Type == TypeArray {
		for _, e := range arr {
			if !in(e) {
				return false
			}
		}
		return true
	}
	return false
}

// MemberParameters evaluates the parameter values an initiative (policy
// set definition) passes to one of its definitions: each value may be a
// literal or an expression over the set's own parameters, typically
// "[parameters('name')]" (policy-set-definition-structure.md). setParams
// are the set's resolved parameter values; the result is what
// ResolveParameters of the member definition takes.
func MemberParameters(values, setParams map[string]any) (map[string]any, error) {
	s := &scope{lang: inPolicy, params: func(name string) (any, error) {
		if _, v, ok := lookupFold(setParams, name); ok {
			return v, nil
		}
		return nil, fmt.Errorf("the policy set parameter '%s' is not defined", name)
	}}
	out := make(map[string]any, len(values))
	for _, k := range sortedKeys(values) {
		v, err := evalDeep(values[k], s)
		if err != nil {
			return nil, &Error{Code: CodeInvalidPolicyParameters, Path: "properties.policyDefinitions.parameters." + k,
				Message: fmt.Sprintf("The value of parameter '%s' could not be evaluated: %v.", k, err)}
		}
		out[k] = v
	}
	return out, nil
}
