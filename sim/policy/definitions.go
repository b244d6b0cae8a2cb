package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/gitopsim/gitopsim/sim/arm"
	"github.com/gitopsim/gitopsim/sim/policy/engine"
)

const (
	definitionType    = "Microsoft.Authorization/policyDefinitions"
	setDefinitionType = "Microsoft.Authorization/policySetDefinitions"
	builtInPrefix     = "/providers/Microsoft.Authorization/policyDefinitions/"
)

// definitionNameRE is the name pattern of policyDefinitions and
// policySetDefinitions (PolicyDefinition.tsp).
var definitionNameRE = regexp.MustCompile(`^[^<>%&:\\?/]*[^<>%&:\\?/ ]+$`)

// paramUseRE finds parameters('name') in a policy rule.
var paramUseRE = regexp.MustCompile(`parameters\(\s*'([^']+)'\s*\)`)

// definition is a policy definition: properties are kept as written
// (built-ins byte for byte), with the parts validation needs parsed.
type definition struct {
	Properties json.RawMessage `json:"properties"`
	ID         string          `json:"id"`
	Name       string          `json:"name"`
	SystemData *systemData     `json:"systemData,omitempty"`

	props definitionProps

	// compileOnce compiles the rule for the evaluator the first time it
	// is needed: a stored definition never changes (a PUT replaces it).
	compileOnce sync.Once
	compiled    *engine.Definition
	compileErr  error
}

// rule is the definition compiled by the engine, made once.
func (d *definition) rule() (*engine.Definition, error) {
	d.compileOnce.Do(func() { d.compiled, d.compileErr = engine.ParseDefinition(d.Name, d.Properties) })
	return d.compiled, d.compileErr
}

// definitionProps are the parsed parts of a definition's properties.
type definitionProps struct {
	PolicyType string              `json:"policyType"`
	Mode       string              `json:"mode"`
	Metadata   map[string]any      `json:"metadata"`
	Parameters map[string]paramDef `json:"parameters"`
	PolicyRule json.RawMessage     `json:"policyRule"`
}

// paramDef is a parameter of a definition or set definition.
type paramDef struct {
	Type          string            `json:"type"`
	AllowedValues []json.RawMessage `json:"allowedValues,omitempty"`
	DefaultValue  json.RawMessage   `json:"defaultValue,omitempty"`
	Metadata      json.RawMessage   `json:"metadata,omitempty"`
	Schema        json.RawMessage   `json:"schema,omitempty"`
}

// paramValue is a value given for a parameter: {"value": ...}.
type paramValue struct {
	Value json.RawMessage `json:"value"`
}

func (d *definition) parse() error { return json.Unmarshal(d.Properties, &d.props) }

// view is the definition as ARM returns it.
func (d *definition) view() any {
	return struct {
		Properties json.RawMessage `json:"properties"`
		ID         string          `json:"id"`
		Type       string          `json:"type"`
		Name       string          `json:"name"`
		SystemData *systemData     `json:"systemData,omitempty"`
	}{d.Properties, d.ID, definitionType, d.Name, d.SystemData}
}

// deployEffect names what a definition can do that needs an identity:
// "DeployIfNotExists" (or a deployment in its details) or "Modify";
// "" if neither. It follows what the definition can do, not the effect
// an assignment picks, as Azure's check does.
func (d *definition) deployEffect() string {
	var rule struct {
		Then struct {
			Effect  string `json:"effect"`
			Details struct {
				Deployment json.RawMessage `json:"deployment"`
			} `json:"details"`
		} `json:"then"`
	}
	_ = json.Unmarshal(d.props.PolicyRule, &rule)
	if len(rule.Then.Details.Deployment) > 0 {
		return "DeployIfNotExists"
	}
	effects := []string{rule.Then.Effect}
	if m := paramUseRE.FindStringSubmatch(rule.Then.Effect); m != nil {
		if pd, ok := lookupParam(d.props.Parameters, m[1]); ok {
			effects = nil
			for _, v := range append(slices.Clone(pd.AllowedValues), pd.DefaultValue) {
				var s string
				if json.Unmarshal(v, &s) == nil {
					effects = append(effects, s)
				}
			}
		}
	}
	for _, e := range effects {
		if strings.EqualFold(e, "DeployIfNotExists") {
			return "DeployIfNotExists"
		}
	}
	for _, e := range effects {
		if strings.EqualFold(e, "Modify") {
			return "Modify"
		}
	}
	return ""
}

// lookupParam finds a parameter by case-insensitive name.
func lookupParam(params map[string]paramDef, name string) (paramDef, bool) {
	if pd, ok := params[name]; ok {
		return pd, true
	}
	for k, pd := range params {
		if strings.EqualFold(k, name) {
			return pd, true
		}
	}
	return paramDef{}, false
}

// definitionByID finds a built-in or custom definition; p.mu held.
func (p *Provider) definitionByIDLocked(id string) *definition {
	if strings.HasPrefix(key(id), key(builtInPrefix)+"/") {
		return p.builtIn(id[len(builtInPrefix):])
	}
	return p.st.Definitions[key(id)]
}

func (p *Provider) builtIn(name string) *definition {
	for _, d := range p.builtins {
		if strings.EqualFold(d.Name, name) {
			return d
		}
	}
	return nil
}

// definitionFilter keeps the definitions a $filter selects.
func definitionMatches(d *definition, f filter) bool {
	if v, ok := f.eq["policytype"]; ok && !strings.EqualFold(d.props.PolicyType, v) {
		return false
	}
	if v, ok := f.eq["category"]; ok {
		c, _ := d.props.Metadata["category"].(string)
		if !strings.EqualFold(c, v) {
			return false
		}
	}
	return true
}

func (p *Provider) listBuiltInDefinitions(r *arm.Request) *arm.Error {
	f, e := parseFilter(r, "policyType", "category")
	if e != nil {
		return e
	}
	var items []any
	for _, d := range p.builtins {
		if definitionMatches(d, f) {
			items = append(items, d.view())
		}
	}
	return page(r, items)
}

func (p *Provider) getBuiltInDefinition(r *arm.Request) *arm.Error {
	d := p.builtIn(r.Var("name"))
	if d == nil {
		return notFound(CodePolicyDefinitionNotFound, "The policy definition '%s' could not be found.", r.Var("name"))
	}
	r.JSON(http.StatusOK, d.view())
	return nil
}

func (p *Provider) listDefinitions(r *arm.Request) *arm.Error {
	f, e := parseFilter(r, "policyType", "category")
	if e != nil {
		return e
	}
	scope := scopeOf(r)
	var items []any
	if !f.atExactScope {
		for _, d := range p.builtins {
			if definitionMatches(d, f) {
				items = append(items, d.view())
			}
		}
	}
	p.mu.Lock()
	for _, d := range sortedValues(p.st.Definitions) {
		if within(d.ID, scope) && definitionMatches(d, f) {
			items = append(items, d.view())
		}
	}
	p.mu.Unlock()
	return page(r, items)
}

func (p *Provider) getDefinition(r *arm.Request) *arm.Error {
	id := scopeOf(r) + builtInPrefix + r.Var("name")
	p.mu.Lock()
	d := p.st.Definitions[key(id)]
	p.mu.Unlock()
	if d == nil {
		return notFound(CodePolicyDefinitionNotFound, "The policy definition '%s' could not be found.", r.Var("name"))
	}
	r.JSON(http.StatusOK, d.view())
	return nil
}

func (p *Provider) putDefinition(r *arm.Request) *arm.Error {
	name := r.Var("name")
	if !definitionNameRE.MatchString(name) || len(name) > 128 {
		return badRequest(CodeInvalidPolicyDefinitionName, "The policy definition name '%s' is invalid. The name must match the pattern '^[^<>%%&:\\?/]*[^<>%%&:\\?/ ]+$' and be at most 128 characters long.", name)
	}
	var body struct {
		Properties map[string]json.RawMessage `json:"properties"`
	}
	if e := readBody(r, &body); e != nil {
		return e
	}
	if e := p.checkScope(r); e != nil {
		return e
	}
	props := body.Properties
	if props == nil {
		props = map[string]json.RawMessage{}
	}
	if e := validateRule(props["policyRule"]); e != nil {
		return e
	}
	// Whatever the caller says, what it creates is a custom definition.
	props["policyType"] = json.RawMessage(`"Custom"`)
	if _, ok := props["mode"]; !ok {
		props["mode"] = json.RawMessage(`"Indexed"`)
	}
	raw, err := json.Marshal(props)
	if err != nil {
		return badRequest(arm.CodeInvalidRequestContent, "The request content was invalid: %v.", err)
	}
	id := scopeOf(r) + builtInPrefix + name
	d := &definition{Properties: raw, ID: id, Name: name}
	if err := d.parse(); err != nil {
		return badRequest(arm.CodeInvalidRequestContent, "The request content was invalid and could not be deserialized: %v.", err)
	}
	if e := validateParameterDefs("policy", name, d.props.Parameters); e != nil {
		return e
	}
	for _, m := range paramUseRE.FindAllStringSubmatch(string(d.props.PolicyRule), -1) {
		if _, ok := lookupParam(d.props.Parameters, m[1]); !ok {
			return badRequest(CodeInvalidPolicyParameters, "A function or parameter in policy '%s' could not be validated. If using template functions, try following the tips in: https://aka.ms/policy-avoiding-template-failures. The inner exception 'The policy '%s' has undefined parameter '%s' which is used in the policy rule. Please either define it in policy definition or remove the reference in policy rule.'.", name, name, m[1])
		}
	}
	// What the evaluator will run must compile: unknown operators,
	// aliases, effects and expressions are refused now, as Azure refuses
	// them, not discovered at the first evaluation.
	if _, err := engine.ParseDefinition(name, raw); err != nil {
		var ee *engine.Error
		if errors.As(err, &ee) {
			return &arm.Error{Status: http.StatusBadRequest, Code: ee.Code, Message: ee.Message, Target: ee.Path}
		}
		return badRequest(CodeInvalidPolicyRule, "The policy definition '%s' is invalid: %v.", name, err)
	}
	p.mu.Lock()
	old := p.st.Definitions[key(id)]
	if old != nil {
		d.ID, d.Name = old.ID, old.Name
		d.SystemData = touched(old.SystemData, r.Caller(), r.Now())
	} else {
		d.SystemData = touched(nil, r.Caller(), r.Now())
	}
	p.st.Definitions[key(id)] = d
	p.mu.Unlock()
	if e := p.srv.Persist(); e != nil {
		return e
	}
	p.log.Info("policy definition written", "id", d.ID)
	// Definitions answer 201 on replace too; the SDK accepts nothing else.
	r.JSON(http.StatusCreated, d.view())
	return nil
}

// validateRule checks the outline of a policy rule: an object with an
// "if" condition and a "then" block that names an effect.
func validateRule(raw json.RawMessage) *arm.Error {
	if len(raw) == 0 || string(raw) == "null" {
		return badRequest(CodeInvalidPolicyRule, "The policy definition request is invalid: the property 'policyRule' is required.")
	}
	var rule map[string]json.RawMessage
	if err := json.Unmarshal(raw, &rule); err != nil {
		return badRequest(CodeInvalidPolicyRule, "Failed to parse policy rule: the rule must be a JSON object.")
	}
	ifc, then := rule["if"], rule["then"]
	var ifObj, thenObj map[string]json.RawMessage
	if json.Unmarshal(ifc, &ifObj) != nil || ifObj == nil {
		return badRequest(CodeInvalidPolicyRule, "Failed to parse policy rule: the rule must have an 'if' condition object.")
	}
	var effect string
	if json.Unmarshal(then, &thenObj) != nil || thenObj == nil || json.Unmarshal(thenObj["effect"], &effect) != nil || effect == "" {
		return badRequest(CodeInvalidPolicyRule, "Failed to parse policy rule: the rule must have a 'then' block that names an 'effect'.")
	}
	return nil
}

// validateParameterDefs checks parameter definitions of a policy or set.
func validateParameterDefs(kind, name string, params map[string]paramDef) *arm.Error {
	for _, pn := range sortedKeys(params) {
		pd := params[pn]
		if !slices.ContainsFunc([]string{"String", "Array", "Object", "Boolean", "Integer", "Float", "DateTime"}, func(t string) bool { return strings.EqualFold(t, pd.Type) }) {
			return badRequest(CodeInvalidPolicyParameters, "The %s '%s' has an invalid type '%s' for parameter '%s'. Allowed types are String, Array, Object, Boolean, Integer, Float and DateTime.", kind, name, pd.Type, pn)
		}
		if len(pd.DefaultValue) > 0 && len(pd.AllowedValues) > 0 && !containsJSON(pd.AllowedValues, pd.DefaultValue) {
			return badRequest(CodeAllowedAndDefaultMismatch, "The %s '%s' defines parameter '%s' with a default value '%s' and allowed values '%s'. The 'allowedValues' property must include the value of the 'defaultValue' property if both are present.", kind, name, pn, plain(pd.DefaultValue), joinPlain(pd.AllowedValues))
		}
	}
	return nil
}

func (p *Provider) deleteDefinition(r *arm.Request) *arm.Error {
	id := scopeOf(r) + builtInPrefix + r.Var("name")
	p.mu.Lock()
	d := p.st.Definitions[key(id)]
	delete(p.st.Definitions, key(id))
	p.mu.Unlock()
	if d == nil {
		r.Empty(http.StatusNoContent)
		return nil
	}
	if e := p.srv.Persist(); e != nil {
		return e
	}
	r.JSON(http.StatusOK, d.view())
	return nil
}

// setDefinition is a policy set definition (initiative).
type setDefinition struct {
	Properties setProps    `json:"properties"`
	ID         string      `json:"id"`
	Type       string      `json:"type"`
	Name       string      `json:"name"`
	SystemData *systemData `json:"systemData,omitempty"`
}

type setProps struct {
	PolicyType             string              `json:"policyType"`
	DisplayName            string              `json:"displayName,omitempty"`
	Description            string              `json:"description,omitempty"`
	Metadata               json.RawMessage     `json:"metadata,omitempty"`
	Parameters             map[string]paramDef `json:"parameters,omitempty"`
	PolicyDefinitions      []member            `json:"policyDefinitions"`
	PolicyDefinitionGroups json.RawMessage     `json:"policyDefinitionGroups,omitempty"`
	Version                string              `json:"version,omitempty"`
	Versions               []string            `json:"versions,omitempty"`
}

// member is one definition of a set.
type member struct {
	PolicyDefinitionID          string                `json:"policyDefinitionId"`
	PolicyDefinitionReferenceID string                `json:"policyDefinitionReferenceId,omitempty"`
	Parameters                  map[string]paramValue `json:"parameters,omitempty"`
	GroupNames                  []string              `json:"groupNames,omitempty"`
	DefinitionVersion           string                `json:"definitionVersion,omitempty"`
}

// deployEffect is the first deploying effect among the set's members;
// p.mu held.
func (p *Provider) setDeployEffectLocked(s *setDefinition) string {
	for _, m := range s.Properties.PolicyDefinitions {
		if d := p.definitionByIDLocked(m.PolicyDefinitionID); d != nil {
			if e := d.deployEffect(); e != "" {
				return e
			}
		}
	}
	return ""
}

func (p *Provider) listBuiltInSetDefinitions(r *arm.Request) *arm.Error {
	if _, e := parseFilter(r, "policyType", "category"); e != nil {
		return e
	}
	// No built-in initiative contains the GitOps definitions; none is served.
	return page(r, nil)
}

func (p *Provider) listSetDefinitions(r *arm.Request) *arm.Error {
	f, e := parseFilter(r, "policyType", "category")
	if e != nil {
		return e
	}
	scope := scopeOf(r)
	var items []any
	p.mu.Lock()
	for _, s := range sortedValues(p.st.SetDefinitions) {
		if !within(s.ID, scope) {
			continue
		}
		if v, ok := f.eq["policytype"]; ok && !strings.EqualFold(v, s.Properties.PolicyType) {
			continue
		}
		if v, ok := f.eq["category"]; ok {
			var md map[string]any
			_ = json.Unmarshal(s.Properties.Metadata, &md)
			if c, _ := md["category"].(string); !strings.EqualFold(c, v) {
				continue
			}
		}
		items = append(items, s)
	}
	p.mu.Unlock()
	return page(r, items)
}

func setID(r *arm.Request) string {
	return scopeOf(r) + "/providers/Microsoft.Authorization/policySetDefinitions/" + r.Var("name")
}

func (p *Provider) getSetDefinition(r *arm.Request) *arm.Error {
	p.mu.Lock()
	s := p.st.SetDefinitions[key(setID(r))]
	p.mu.Unlock()
	if s == nil {
		return notFound(CodePolicySetDefinitionNotFound, "The policy set definition '%s' could not be found.", r.Var("name"))
	}
	r.JSON(http.StatusOK, s)
	return nil
}

func (p *Provider) putSetDefinition(r *arm.Request) *arm.Error {
	name := r.Var("name")
	if !definitionNameRE.MatchString(name) || len(name) > 128 {
		return badRequest(CodeInvalidPolicyDefinitionName, "The policy set definition name '%s' is invalid. The name must match the pattern '^[^<>%%&:\\?/]*[^<>%%&:\\?/ ]+$' and be at most 128 characters long.", name)
	}
	var body struct {
		Properties setProps `json:"properties"`
	}
	if e := readBody(r, &body); e != nil {
		return e
	}
	if e := p.checkScope(r); e != nil {
		return e
	}
	props := body.Properties
	props.PolicyType = "Custom"
	if len(props.PolicyDefinitions) == 0 {
		return badRequest(CodeInvalidPolicySetDefinition, "The policy set definition '%s' request is invalid: at least one policy definition must be referenced.", name)
	}
	if e := validateParameterDefs("policy set definition", name, props.Parameters); e != nil {
		return e
	}
	id := setID(r)
	p.mu.Lock()
	seen := map[string]bool{}
	for i := range props.PolicyDefinitions {
		m := &props.PolicyDefinitions[i]
		d := p.definitionByIDLocked(m.PolicyDefinitionID)
		if d == nil {
			p.mu.Unlock()
			return notFound(CodePolicyDefinitionNotFound, "The policy set definition '%s' request is invalid. The policy definition '%s' could not be found.", name, m.PolicyDefinitionID)
		}
		var undefined []string
		for _, pn := range sortedKeys(m.Parameters) {
			if _, ok := lookupParam(d.props.Parameters, pn); !ok {
				undefined = append(undefined, pn)
			}
		}
		if len(undefined) > 0 {
			p.mu.Unlock()
			return badRequest(CodeUndefinedPolicyParameter, "The policy set definition '%s' is attempting to assign the parameter(s) '%s' which are not defined in the policy definition '%s'.", name, strings.Join(undefined, ", "), d.Name)
		}
		if m.PolicyDefinitionReferenceID == "" {
			// Azure generates a reference id when none is given.
			m.PolicyDefinitionReferenceID = fmt.Sprintf("%s_%d", d.Name, i+1)
		}
		if seen[strings.ToLower(m.PolicyDefinitionReferenceID)] {
			p.mu.Unlock()
			return badRequest(CodeInvalidPolicySetDefinition, "The policy set definition '%s' request is invalid: the policy definition reference id '%s' is used more than once.", name, m.PolicyDefinitionReferenceID)
		}
		seen[strings.ToLower(m.PolicyDefinitionReferenceID)] = true
	}
	old := p.st.SetDefinitions[key(id)]
	s := &setDefinition{Properties: props, ID: id, Type: setDefinitionType, Name: name}
	status := http.StatusCreated
	if old != nil {
		s.ID, s.Name, status = old.ID, old.Name, http.StatusOK
		s.SystemData = touched(old.SystemData, r.Caller(), r.Now())
	} else {
		s.SystemData = touched(nil, r.Caller(), r.Now())
	}
	p.st.SetDefinitions[key(id)] = s
	p.mu.Unlock()
	if e := p.srv.Persist(); e != nil {
		return e
	}
	r.JSON(status, s)
	return nil
}

func (p *Provider) deleteSetDefinition(r *arm.Request) *arm.Error {
	id := setID(r)
	p.mu.Lock()
	s := p.st.SetDefinitions[key(id)]
	delete(p.st.SetDefinitions, key(id))
	p.mu.Unlock()
	if s == nil {
		r.Empty(http.StatusNoContent)
		return nil
	}
	if e := p.srv.Persist(); e != nil {
		return e
	}
	r.JSON(http.StatusOK, s)
	return nil
}

// containsJSON reports whether vs holds v, compared as JSON values.
func containsJSON(vs []json.RawMessage, v json.RawMessage) bool {
	var want any
	if json.Unmarshal(v, &want) != nil {
		return false
	}
	wb, _ := json.Marshal(want)
	for _, x := range vs {
		var got any
		if json.Unmarshal(x, &got) == nil {
			if gb, _ := json.Marshal(got); string(gb) == string(wb) {
				return true
			}
		}
	}
	return false
}

// plain renders a JSON value for a message: strings without quotes.
func plain(v json.RawMessage) string {
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s
	}
	return string(v)
}

func joinPlain(vs []json.RawMessage) string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = plain(v)
	}
	return strings.Join(out, ",")
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func sortedValues[V any](m map[string]V) []V {
	out := make([]V, 0, len(m))
	for _, k := range sortedKeys(m) {
		out = append(out, m[k])
	}
	return out
}
