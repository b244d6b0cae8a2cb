package engine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Definition is a parsed and validated policy definition.
type Definition struct {
	// Name is the definition's name (a GUID for built-ins); it appears in
	// error messages as Azure writes them.
	Name string
	// ID and Type are the envelope's, when the document had them.
	ID, Type string
	// DisplayName, Description, PolicyType and Version are as written.
	DisplayName, Description, PolicyType, Version string
	// Mode is as written; "" behaves as "Indexed", as Azure documents.
	Mode string
	// Metadata is properties.metadata as written.
	Metadata map[string]any
	// Parameters are the declared parameters in document order.
	Parameters []*Parameter
	// Rule is the compiled policy rule.
	Rule *Rule
}

// ParameterType is a policy parameter type, spelled as Azure does.
type ParameterType string

// The policy parameter types of definition-structure-parameters.md.
const (
	TypeString   ParameterType = "String"
	TypeArray    ParameterType = "Array"
	TypeObject   ParameterType = "Object"
	TypeBoolean  ParameterType = "Boolean"
	TypeInteger  ParameterType = "Integer"
	TypeFloat    ParameterType = "Float"
	TypeDateTime ParameterType = "DateTime"
)

// parameterTypes maps lower-case spellings to the canonical ones.
var parameterTypes = map[string]ParameterType{
	"string": TypeString, "array": TypeArray, "object": TypeObject, "boolean": TypeBoolean,
	"integer": TypeInteger, "float": TypeFloat, "datetime": TypeDateTime,
}

// Parameter is one declared policy parameter.
type Parameter struct {
	Name          string
	Type          ParameterType
	AllowedValues []any // nil when the definition gives none
	DefaultValue  any
	HasDefault    bool
	Metadata      map[string]any
	Schema        map[string]any
}

// Rule is a compiled policyRule.
type Rule struct {
	// If is the rule's condition.
	If *Condition
	// Effect is then.effect as written, often "[parameters('effect')]".
	Effect string
	// Details is then.details; nil when the rule has none.
	Details *Details
}

// Details is then.details of an auditIfNotExists or deployIfNotExists rule
// (for other effects only Raw is set).
type Details struct {
	Type               string // related resource type
	Name               string // as written; may be an expression
	ResourceGroupName  string // as written; may be an expression
	ExistenceScope     string // "ResourceGroup" (default) or "Subscription"
	DeploymentScope    string // "ResourceGroup" (default) or "Subscription"
	EvaluationDelay    EvaluationDelay
	RoleDefinitionIDs  []string
	ExistenceCondition *Condition // nil: any related resource satisfies
	Deployment         *DeploymentSpec
	Raw                any // then.details as written
}

// DeploymentSpec is details.deployment.
type DeploymentSpec struct {
	Location   string         // for subscription-scope deployments
	Mode       string         // "incremental" in the built-ins
	Template   map[string]any // the ARM template, unevaluated
	Parameters map[string]any // policy → template parameter values, unevaluated
}

// EvaluationDelay is details.evaluationDelay: how long after a create or
// update the existence check runs.
type EvaluationDelay struct {
	// After is "AfterProvisioning", "AfterProvisioningSuccess" or
	// "AfterProvisioningFailure"; "" for a fixed Duration.
	After string
	// Duration is the fixed delay; PT10M when the definition gives none.
	Duration time.Duration
}

// DefaultEvaluationDelay is Azure's default details.evaluationDelay (PT10M,
// effect-deploy-if-not-exists.md).
const DefaultEvaluationDelay = 10 * time.Minute

// effects are the policy effects (lower-case → canonical spelling).
var effects = map[string]string{
	"append": "append", "audit": "audit", "auditifnotexists": "auditIfNotExists",
	"deny": "deny", "denyaction": "denyAction", "deployifnotexists": "deployIfNotExists",
	"disabled": "disabled", "manual": "manual", "modify": "modify", "mutate": "mutate",
	"addtonetworkgroup": "addToNetworkGroup",
}

// modes are the definition modes Azure accepts (lower-case).
var modes = map[string]bool{
	"all": true, "indexed": true, "microsoft.kubernetes.data": true, "microsoft.keyvault.data": true,
	"microsoft.network.data": true, "microsoft.managedhsm.data": true,
	"microsoft.datafactory.data": true, "microsoft.machinelearningservices.v2.data": true,
}

// ParseDefinition parses and validates a policy definition. raw is either
// the ARM resource ({"properties": {...}, "name": ...}) or its properties
// object. name, when not empty, overrides the document's name in error
// messages (a PUT body usually has none). Errors are *Error with Azure's
// code, message and the JSON path of the offending member.
func ParseDefinition(name string, raw json.RawMessage) (*Definition, error) {
	doc, err := decodeJSON(raw)
	if err != nil {
		return nil, &Error{Code: CodeInvalidRequestContent, Err: err,
			Message: fmt.Sprintf("The request content was invalid and could not be deserialized: '%v'.", err)}
	}
	top, ok := doc.(map[string]any)
	if !ok {
		return nil, &Error{Code: CodeInvalidRequestContent,
			Message: fmt.Sprintf("The request content was invalid and could not be deserialized: 'a policy definition is a JSON object, not %s'.", typeName(doc))}
	}
	def := &Definition{}
	props, prefix := top, ""
	if _, p, ok := lookupFold(top, "properties"); ok {
		m, ok := p.(map[string]any)
		if !ok {
			return nil, &Error{Code: CodeInvalidRequestContent, Path: "properties",
				Message: "The request content was invalid and could not be deserialized: 'properties must be an object'."}
		}
		props, prefix = m, "properties"
		def.ID, def.Type = Resource(top).ID(), Resource(top).Type()
		def.Name = Resource(top).Name()
	}
	if name != "" {
		def.Name = name
	}
	str := func(key string) (string, error) {
		_, v, ok := lookupFold(props, key)
		if !ok || v == nil {
			return "", nil
		}
		s, isStr := v.(string)
		if !isStr {
			return "", &Error{Code: CodeInvalidRequestContent, Path: joinPath(prefix, key),
				Message: fmt.Sprintf("The request content was invalid and could not be deserialized: '%s must be a string, not %s'.", key, typeName(v))}
		}
		return s, nil
	}
	for _, f := range []struct {
		key string
		dst *string
	}{{"displayName", &def.DisplayName}, {"description", &def.Description},
		{"policyType", &def.PolicyType}, {"version", &def.Version}, {"mode", &def.Mode}} {
		if *f.dst, err = str(f.key); err != nil {
			return nil, err
		}
	}
	if def.Mode != "" && !modes[strings.ToLower(def.Mode)] {
		return nil, &Error{Code: CodeInvalidRequestContent, Path: joinPath(prefix, "mode"),
			Message: fmt.Sprintf("The policy definition '%s' mode '%s' is not valid; expected 'All', 'Indexed' or a resource provider mode.", def.Name, def.Mode)}
	}
	if _, md, ok := lookupFold(props, "metadata"); ok && md != nil {
		m, isObj := md.(map[string]any)
		if !isObj {
			return nil, &Error{Code: CodeInvalidRequestContent, Path: joinPath(prefix, "metadata"),
				Message: "The request content was invalid and could not be deserialized: 'metadata must be an object'."}
		}
		def.Metadata = m
	}
	if err := def.parseParameters(raw, props, prefix); err != nil {
		return nil, err
	}
	c := &compiler{def: def.Name, params: map[string]bool{}, prefix: joinPath(prefix, "policyRule")}
	for _, p := range def.Parameters {
		c.params[strings.ToLower(p.Name)] = true
	}
	_, rule, ok := lookupFold(props, "policyRule")
	if !ok || rule == nil {
		return nil, &Error{Code: CodeInvalidPolicyRule, Path: c.prefix,
			Message: "Failed to parse policy rule: 'The policy definition has no 'policyRule'.'."}
	}
	if def.Rule, err = def.parseRule(c, rule); err != nil {
		return nil, err
	}
	return def, nil
}

// parseParameters reads properties.parameters in document order.
func (def *Definition) parseParameters(raw []byte, props map[string]any, prefix string) error {
	key, v, ok := lookupFold(props, "parameters")
	if !ok || v == nil {
		return nil
	}
	path := joinPath(prefix, key)
	params, isObj := v.(map[string]any)
	if !isObj {
		return &Error{Code: CodeInvalidPolicyParameters, Path: path,
			Message: fmt.Sprintf("The policy definition '%s' parameters must be an object, not %s.", def.Name, typeName(v))}
	}
	for _, name := range orderedKeys(raw, prefix, key, params) {
		p, err := def.parseParameter(name, params[name], joinPath(path, name))
		if err != nil {
			return err
		}
		def.Parameters = append(def.Parameters, p)
	}
	return nil
}

// orderedKeys returns the parameter names in the order the document has
// them, so messages list them as the author wrote them.
func orderedKeys(raw []byte, prefix, key string, params map[string]any) []string {
	var env map[string]json.RawMessage
	if json.Unmarshal(raw, &env) != nil {
		return sortedKeys(params)
	}
	pick := func(m map[string]json.RawMessage, k string) json.RawMessage {
		for mk, mv := range m {
			if strings.EqualFold(mk, k) {
				return mv
			}
		}
		return nil
	}
	sub := json.RawMessage(raw)
	if prefix != "" {
		sub = pick(env, prefix)
		env = nil
		if json.Unmarshal(sub, &env) != nil {
			return sortedKeys(params)
		}
	}
	obj := pick(env, key)
	dec := json.NewDecoder(bytes.NewReader(obj))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return sortedKeys(params)
	}
	var out []string
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return sortedKeys(params)
		}
		k, _ := t.(string)
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			return sortedKeys(params)
		}
		if _, ok := params[k]; ok && !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}

func (def *Definition) parseParameter(name string, v any, path string) (*Parameter, error) {
	invalid := func(sub, msg string) error {
		return &Error{Code: CodeInvalidPolicyParameters, Path: joinPath(path, sub),
			Message: fmt.Sprintf("The policy definition '%s' parameter '%s' is invalid: %s", def.Name, name, msg)}
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, invalid("", "a parameter definition is an object.")
	}
	p := &Parameter{Name: name}
	_, t, ok := lookupFold(obj, "type")
	ts, isStr := t.(string)
	if !ok || !isStr {
		return nil, invalid("type", "the 'type' property is required and must be a string.")
	}
	if p.Type, ok = parameterTypes[strings.ToLower(ts)]; !ok {
		return nil, invalid("type", fmt.Sprintf("the type '%s' is not one of String, Array, Object, Boolean, Integer, Float, DateTime.", ts))
	}
	if _, md, ok := lookupFold(obj, "metadata"); ok {
		p.Metadata, _ = md.(map[string]any)
	}
	if _, sc, ok := lookupFold(obj, "schema"); ok {
		p.Schema, _ = sc.(map[string]any)
	}
	if _, av, ok := lookupFold(obj, "allowedValues"); ok && av != nil {
		arr, isArr := av.([]any)
		if !isArr {
			return nil, invalid("allowedValues", "'allowedValues' must be an array.")
		}
		p.AllowedValues = arr
	}
	if _, dv, ok := lookupFold(obj, "defaultValue"); ok {
		p.DefaultValue, p.HasDefault = dv, true
		if got, ok := p.typeMatches(dv); !ok {
			return nil, &Error{Code: CodeInvalidPolicyParameters, Path: joinPath(path, "defaultValue"),
				Message: fmt.Sprintf("The policy parameter '%s' default value does not match the expected parameter type defined in the policy definition. Details 'The expected policy parameter type: '%s'. The actual policy parameter type '%s'.'.", name, p.Type, got)}
		}
		if p.AllowedValues != nil && !p.allowed(dv) {
			return nil, &Error{Code: CodePolicyParameterAllowedAndDefaultValuesMismatch, Path: joinPath(path, "defaultValue"),
				Message: fmt.Sprintf("The policy '%s' defines parameter '%s' with a default value '%s' and allowed values '%s'. The 'allowedValues' property must include the value of the 'defaultValue' property if both are present.", def.Name, name, display(dv), displayList(p.AllowedValues, ","))}
		}
	}
	return p, nil
}

// display renders a value inside an Azure message.
func display(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return toJSONString(v)
}

func displayList(vs []any, sep string) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = display(v)
	}
	return strings.Join(parts, sep)
}

// parseRule compiles policyRule.
func (def *Definition) parseRule(c *compiler, v any) (*Rule, error) {
	names, obj, err := c.members(v, "", "PolicyRule")
	if err != nil {
		return nil, err
	}
	for _, k := range sortedKeys(obj) {
		if lk := strings.ToLower(k); lk != "if" && lk != "then" {
			return nil, c.memberErr("", k, "PolicyRule")
		}
	}
	if names["if"] == "" || names["then"] == "" {
		missing := "if"
		if names["if"] != "" {
			missing = "then"
		}
		return nil, c.ruleErr("", fmt.Sprintf("Required property '%s' not found in JSON.", missing))
	}
	r := &Rule{}
	if r.If, err = c.condition(obj[names["if"]], "if", 0); err != nil {
		return nil, err
	}
	tnames, then, err := c.members(obj[names["then"]], "then", "Then")
	if err != nil {
		return nil, err
	}
	for _, k := range sortedKeys(then) {
		if lk := strings.ToLower(k); lk != "effect" && lk != "details" {
			return nil, c.memberErr("then", k, "Then")
		}
	}
	eff, ok := then[tnames["effect"]].(string)
	if !ok || eff == "" {
		return nil, c.ruleErr("then.effect", "Required property 'effect' not found in JSON or not a string.")
	}
	r.Effect = eff
	if err := c.checkExpr(eff, "then.effect", inPolicy); err != nil {
		return nil, err
	}
	possible, err := def.possibleEffects(c, eff)
	if err != nil {
		return nil, err
	}
	dv, hasDetails := then[tnames["details"]]
	if !hasDetails || tnames["details"] == "" {
		dv = nil
	}
	ifNotExists, deploy := possible["auditifnotexists"] || possible["deployifnotexists"], possible["deployifnotexists"]
	if dv == nil {
		if ifNotExists {
			return nil, def.detailsErr(c, "then.details", "the 'details' property is required for the effect.")
		}
		return r, nil
	}
	if !ifNotExists {
		if err := c.checkValue(dv, "then.details", inPolicy); err != nil {
			return nil, err
		}
		r.Details = &Details{Raw: dv}
		return r, nil
	}
	if r.Details, err = def.parseDetails(c, dv, deploy); err != nil {
		return nil, err
	}
	return r, nil
}

// possibleEffects lists the effects a rule can have: the literal one, or
// for "[parameters('p')]" the parameter's allowed and default values.
func (def *Definition) possibleEffects(c *compiler, eff string) (map[string]bool, error) {
	out := map[string]bool{}
	if !isExpressionString(eff) {
		t, _ := parseTemplate(eff)
		lit := t.literal
		if _, ok := effects[strings.ToLower(lit)]; !ok {
			return nil, &Error{Code: CodeInvalidPolicyRuleEffect, Path: c.at("then.effect"),
				Message: fmt.Sprintf("The policy definition '%s' rule is invalid. The policy 'effect' property value cannot be '%s'.", def.Name, lit)}
		}
		out[strings.ToLower(lit)] = true
		return out, nil
	}
	t, err := parseTemplate(eff)
	if err != nil {
		return nil, c.exprErr("then.effect", err.Error(), err)
	}
	call, ok := t.root.(*callNode)
	if !ok || !strings.EqualFold(call.name, "parameters") || len(call.args) != 1 {
		// Any other expression could yield any effect.
		for e := range effects {
			out[e] = true
		}
		return out, nil
	}
	lit, _ := call.args[0].(*strLit)
	var p *Parameter
	if lit != nil {
		p = def.parameter(lit.s)
	}
	if p == nil {
		for e := range effects {
			out[e] = true
		}
		return out, nil
	}
	vals := append([]any{}, p.AllowedValues...)
	if p.HasDefault {
		vals = append(vals, p.DefaultValue)
	}
	for _, v := range vals {
		if s, ok := v.(string); ok {
			out[strings.ToLower(s)] = true
		}
	}
	if len(vals) == 0 {
		for e := range effects {
			out[e] = true
		}
	}
	return out, nil
}

func (def *Definition) detailsErr(c *compiler, path, why string) *Error {
	return &Error{Code: CodeInvalidPolicyRuleEffectDetails, Path: c.at(path),
		Message: fmt.Sprintf("The policy definition '%s' rule is invalid. The policy effect 'details' property could not be parsed: %s", def.Name, why)}
}

// parseDetails reads the details of an -IfNotExists rule.
func (def *Definition) parseDetails(c *compiler, v any, deploy bool) (*Details, error) {
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, def.detailsErr(c, "then.details", fmt.Sprintf("expected an object, found %s.", typeName(v)))
	}
	d := &Details{Raw: v, DeploymentScope: "ResourceGroup", ExistenceScope: "ResourceGroup",
		EvaluationDelay: EvaluationDelay{Duration: DefaultEvaluationDelay}}
	path := func(k string) string { return "then.details." + k }
	str := func(key string, expr bool) (string, error) {
		k, v, ok := lookupFold(obj, key)
		if !ok || v == nil {
			return "", nil
		}
		s, isStr := v.(string)
		if !isStr {
			return "", def.detailsErr(c, path(k), fmt.Sprintf("'%s' must be a string.", k))
		}
		if expr {
			if err := c.checkExpr(s, path(k), inPolicy); err != nil {
				return "", err
			}
		}
		return s, nil
	}
	var err error
	if d.Type, err = str("type", false); err != nil {
		return nil, err
	}
	if segs := strings.Split(d.Type, "/"); len(segs) < 2 || !strings.Contains(segs[0], ".") || strings.Contains(d.Type, "//") {
		return nil, def.detailsErr(c, path("type"), fmt.Sprintf("'type' must be a resource type such as 'Microsoft.Provider/resourceType', got '%s'.", d.Type))
	}
	if d.Name, err = str("name", true); err != nil {
		return nil, err
	}
	if d.ResourceGroupName, err = str("resourceGroupName", true); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		key string
		dst *string
	}{{"existenceScope", &d.ExistenceScope}, {"deploymentScope", &d.DeploymentScope}} {
		key, dst := f.key, f.dst
		s, err := str(key, false)
		if err != nil {
			return nil, err
		}
		switch strings.ToLower(s) {
		case "":
		case "resourcegroup":
			*dst = "ResourceGroup"
		case "subscription":
			*dst = "Subscription"
		default:
			return nil, def.detailsErr(c, path(key), fmt.Sprintf("'%s' must be 'ResourceGroup' or 'Subscription', got '%s'.", key, s))
		}
	}
	delay, err := str("evaluationDelay", false)
	if err != nil {
		return nil, err
	}
	if delay != "" {
		if d.EvaluationDelay, err = parseEvaluationDelay(delay); err != nil {
			return nil, def.detailsErr(c, path("evaluationDelay"), err.Error())
		}
	}
	if k, ec, ok := lookupFold(obj, "existenceCondition"); ok && ec != nil {
		if d.ExistenceCondition, err = c.condition(ec, path(k), 0); err != nil {
			return nil, err
		}
	}
	if k, rd, ok := lookupFold(obj, "roleDefinitionIds"); ok && rd != nil {
		arr, isArr := rd.([]any)
		if !isArr {
			return nil, def.detailsErr(c, path(k), "'roleDefinitionIds' must be an array of role definition IDs.")
		}
		for i, e := range arr {
			s, isStr := e.(string)
			if !isStr || !strings.Contains(strings.ToLower(s), "/providers/microsoft.authorization/roledefinitions/") {
				return nil, def.detailsErr(c, fmt.Sprintf("%s[%d]", path(k), i), fmt.Sprintf("'%v' is not a role definition ID.", e))
			}
			d.RoleDefinitionIDs = append(d.RoleDefinitionIDs, s)
		}
	}
	if k, dep, ok := lookupFold(obj, "deployment"); ok && dep != nil {
		if d.Deployment, err = def.parseDeployment(c, dep, path(k)); err != nil {
			return nil, err
		}
	}
	if deploy {
		if len(d.RoleDefinitionIDs) == 0 {
			return nil, def.detailsErr(c, path("roleDefinitionIds"), "'roleDefinitionIds' is required for deployIfNotExists.")
		}
		if d.Deployment == nil {
			return nil, def.detailsErr(c, path("deployment"), "'deployment' is required for deployIfNotExists.")
		}
	}
	return d, nil
}

func (def *Definition) parseDeployment(c *compiler, v any, path string) (*DeploymentSpec, error) {
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, def.detailsErr(c, path, "'deployment' must be an object.")
	}
	spec := &DeploymentSpec{}
	if _, loc, ok := lookupFold(obj, "location"); ok {
		spec.Location, _ = loc.(string)
	}
	pk, pv, ok := lookupFold(obj, "properties")
	props, isObj := pv.(map[string]any)
	if !ok || !isObj {
		return nil, def.detailsErr(c, joinPath(path, "properties"), "'deployment.properties' is required and must be an object.")
	}
	path = joinPath(path, pk)
	if _, m, ok := lookupFold(props, "mode"); ok {
		spec.Mode, _ = m.(string)
	}
	if spec.Mode == "" {
		spec.Mode = "incremental"
	}
	tk, tv, ok := lookupFold(props, "template")
	if spec.Template, isObj = tv.(map[string]any); !ok || !isObj {
		return nil, def.detailsErr(c, joinPath(path, "template"), "'deployment.properties.template' is required and must be an object.")
	}
	if _, res, ok := lookupFold(spec.Template, "resources"); ok {
		if _, isArr := res.([]any); !isArr {
			return nil, def.detailsErr(c, joinPath(path, tk+".resources"), "'resources' must be an array.")
		}
	}
	if k, pv, ok := lookupFold(props, "parameters"); ok && pv != nil {
		params, isObj := pv.(map[string]any)
		if !isObj {
			return nil, def.detailsErr(c, joinPath(path, k), "'deployment.properties.parameters' must be an object.")
		}
		for _, name := range sortedKeys(params) {
			ppath := joinPath(path, k+"."+name)
			entry, isObj := params[name].(map[string]any)
			_, _, hasValue := lookupFold(entry, "value")
			_, _, hasRef := lookupFold(entry, "reference")
			if !isObj || hasValue == hasRef {
				return nil, def.detailsErr(c, ppath, fmt.Sprintf("the deployment parameter '%s' needs exactly one of 'value' or 'reference'.", name))
			}
			if err := c.checkValue(entry, ppath, inPolicy); err != nil {
				return nil, err
			}
		}
		spec.Parameters = params
	}
	return spec, nil
}

var isoDuration = regexp.MustCompile(`^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$`)

// parseEvaluationDelay reads AfterProvisioning* or an ISO 8601 duration of
// 0 to 360 minutes.
func parseEvaluationDelay(s string) (EvaluationDelay, error) {
	for _, after := range []string{"AfterProvisioning", "AfterProvisioningSuccess", "AfterProvisioningFailure"} {
		if strings.EqualFold(s, after) {
			return EvaluationDelay{After: after}, nil
		}
	}
	m := isoDuration.FindStringSubmatch(strings.ToUpper(s))
	if m == nil || s == "P" || strings.HasSuffix(strings.ToUpper(s), "T") {
		return EvaluationDelay{}, fmt.Errorf("'evaluationDelay' must be AfterProvisioning, AfterProvisioningSuccess, AfterProvisioningFailure or an ISO 8601 duration, got '%s'.", s)
	}
	var d time.Duration
	for i, unit := range []time.Duration{24 * time.Hour, time.Hour, time.Minute} {
		if m[i+1] != "" {
			n, err := strconv.ParseInt(m[i+1], 10, 64)
			if err != nil || n > 1000000 {
				return EvaluationDelay{}, fmt.Errorf("'evaluationDelay' '%s' is out of range.", s)
			}
			d += time.Duration(n) * unit
		}
	}
	if m[4] != "" {
		f, _ := strconv.ParseFloat(m[4], 64)
		d += time.Duration(f * float64(time.Second))
	}
	if d < 0 || d > 360*time.Minute {
		return EvaluationDelay{}, fmt.Errorf("'evaluationDelay' must be between 0 and 360 minutes, got '%s'.", s)
	}
	return EvaluationDelay{Duration: d}, nil
}

// parameter finds a declared parameter by name, case-insensitively.
func (def *Definition) parameter(name string) *Parameter {
	for _, p := range def.Parameters {
		if strings.EqualFold(p.Name, name) {
			return p
		}
	}
	return nil
}

// IfNotExists reports whether the rule can have an -IfNotExists effect
// (auditIfNotExists or deployIfNotExists) for some assignment.
func (def *Definition) IfNotExists() bool {
	return def.Rule != nil && def.Rule.Details != nil && def.Rule.Details.Type != ""
}

// CanDeploy reports whether some assignment of the definition can deploy:
// its effect may be deployIfNotExists. Azure requires a managed identity on
// such assignments whatever the assigned effect (ResourceIdentityRequired).
func (def *Definition) CanDeploy() bool {
	return def.IfNotExists() && def.Rule.Details.Deployment != nil
}
