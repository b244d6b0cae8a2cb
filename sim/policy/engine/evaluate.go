package engine

import (
	"fmt"
	"strings"
)

// ReadOnlyNormalisation says how operatorParams of a sourceControlConfiguration
// is compared with the GitOps built-ins' existence condition (the
// "--git-readonly trap" of azure-policy-spec §1.4).
//
// The built-ins accept operatorParams equal to the parameter or to
// concat('--git-readonly ', parameter). With the default parameter "" the
// second candidate is "--git-readonly " (trailing space), while the
// resource provider stores "--git-readonly" when it adds the flag itself, so
// a literal comparison never matches and such clusters stay NonCompliant
// forever, although the Arc docs say they become Compliant.
type ReadOnlyNormalisation uint8

const (
	// Converge, the default, collapses runs of white space and trims both
	// sides before comparing operatorParams, so "--git-readonly " equals
	// "--git-readonly" and clusters converge as the docs promise.
	Converge ReadOnlyNormalisation = iota
	// Literal compares operatorParams exactly as Azure's rule is written,
	// for "policy never turns green" reproductions.
	Literal
)

// String returns "converge" or "literal".
func (n ReadOnlyNormalisation) String() string {
	if n == Literal {
		return "literal"
	}
	return "converge"
}

// ParseReadOnlyNormalisation reads "converge" or "literal", e.g. from a flag.
func ParseReadOnlyNormalisation(s string) (ReadOnlyNormalisation, error) {
	switch strings.ToLower(s) {
	case "", "converge":
		return Converge, nil
	case "literal":
		return Literal, nil
	}
	return Converge, fmt.Errorf("readonly normalisation %q: want converge or literal", s)
}

// Options configure an Engine. The zero value is Azure's behaviour with
// the documented outcome of the GitOps built-ins (Converge).
type Options struct {
	// ReadOnlyNormalisation chooses how operatorParams is compared.
	ReadOnlyNormalisation ReadOnlyNormalisation
}

// Engine evaluates policy definitions. It holds no state besides its
// options and is safe for concurrent use.
type Engine struct {
	opts Options
}

// New returns an Engine with the given options.
func New(opts Options) *Engine {
	return &Engine{opts: opts}
}

// Input is what one evaluation looks at.
type Input struct {
	// Resource is the evaluated resource as ARM returns it.
	Resource Resource
	// ResourceGroup describes its resource group for resourceGroup();
	// optional: name and ID come from the resource's ID, but location and
	// tags only from here.
	ResourceGroup *ResourceGroup
	// Subscription describes its subscription for subscription(); optional.
	Subscription *Subscription
	// Related finds related resources for -IfNotExists rules; nil means
	// there are none.
	Related Related
	// ResolveSecret resolves Key Vault references of a DINE deployment's
	// secure parameters; nil makes rendering such a deployment fail with
	// ErrUnresolvedReference.
	ResolveSecret func(ref KeyVaultReference) (string, error)
}

// ComplianceState is a policy state's complianceState.
type ComplianceState string

// Compliance states the engine reports (compliance-states.md).
const (
	Compliant    ComplianceState = "Compliant"
	NonCompliant ComplianceState = "NonCompliant"
	Unknown      ComplianceState = "Unknown"
)

// Result is the outcome of evaluating one definition against one resource.
type Result struct {
	// Applicable is false when the resource is not evaluated at all: the
	// effect is disabled, the mode excludes it, or (per
	// policy-applicability.md) the if condition rules it out. Such a
	// resource has no policy state.
	Applicable bool
	// NotApplicableReason says why, when Applicable is false.
	NotApplicableReason string
	// IfMatched is the value of the rule's if condition.
	IfMatched bool
	// Effect is the effect after evaluation, lower-cased as Azure writes
	// policyDefinitionAction ("deployifnotexists").
	Effect string
	// ComplianceState is set when Applicable.
	ComplianceState ComplianceState
	// Query is the related-resource query an -IfNotExists rule made.
	Query *RelatedQuery
	// IfNotExistsDetails is set for -IfNotExists rules that were evaluated.
	IfNotExistsDetails *IfNotExistsDetails
	// EvaluatedExpressions are the if condition's evaluated leaves, for
	// policyEvaluationDetails.evaluatedExpressions.
	EvaluatedExpressions []ExpressionResult
	// ExistenceExpressions are the existence condition's leaves for the
	// related resource reported in IfNotExistsDetails.
	ExistenceExpressions []ExpressionResult
}

// IfNotExistsDetails is policyEvaluationDetails.ifNotExistsDetails.
type IfNotExistsDetails struct {
	// ResourceID is the related resource that satisfied the existence
	// condition, else the last one checked, else "".
	ResourceID string `json:"resourceId"`
	// TotalResources is how many related resources were checked.
	TotalResources int `json:"totalResources"`
}

// Evaluate evaluates a definition against one resource with an Engine of
// default options.
func Evaluate(def *Definition, params map[string]any, in Input) (*Result, error) {
	return New(Options{}).Evaluate(def, params, in)
}

// Evaluate evaluates a definition, with parameters from ResolveParameters,
// against in.Resource. Errors wrap ErrEvaluation; Azure treats a failed
// evaluation as an implicit deny.
func (e *Engine) Evaluate(def *Definition, params map[string]any, in Input) (*Result, error) {
	if def == nil || def.Rule == nil {
		return nil, fmt.Errorf("evaluate: no definition: %w", ErrEvaluation)
	}
	if in.Resource == nil {
		return nil, fmt.Errorf("evaluate %s: no resource: %w", def.Name, ErrEvaluation)
	}
	res := Resource(normalize(map[string]any(in.Resource)).(map[string]any))
	in.Resource = res
	sc := e.policyScope(def, params, in)
	effect, err := e.effect(def, sc)
	if err != nil {
		return nil, err
	}
	out := &Result{Effect: strings.ToLower(effect)}
	if out.Effect == "disabled" {
		out.NotApplicableReason = "the effect is disabled"
		return out, nil
	}
	if why := modeExcludes(def.Mode, res); why != "" {
		out.NotApplicableReason = why
		return out, nil
	}
	ce := &condEval{res: res, scope: sc, norm: e.normaliser, def: def.Name, record: &out.EvaluatedExpressions}
	if out.IfMatched, err = ce.eval(def.Rule.If); err != nil {
		return nil, fmt.Errorf("evaluate %s on %s: if: %w", def.Name, res.ID(), err)
	}
	switch out.Effect {
	case "auditifnotexists", "deployifnotexists":
		if !out.IfMatched {
			out.NotApplicableReason = "the if condition is false"
			return out, nil
		}
		out.Applicable = true
		if err := e.existence(def, in, sc, out); err != nil {
			return nil, fmt.Errorf("evaluate %s on %s: existence: %w", def.Name, res.ID(), err)
		}
		return out, nil
	}
	if !e.applicable(def.Rule.If, res, sc, def.Name) {
		out.NotApplicableReason = "the type, name and kind conditions of the if condition are false"
		return out, nil
	}
	out.Applicable = true
	switch {
	case out.Effect == "manual":
		out.ComplianceState = Unknown
	case out.IfMatched:
		out.ComplianceState = NonCompliant
	default:
		out.ComplianceState = Compliant
	}
	return out, nil
}

// effect evaluates then.effect and checks it names an effect.
func (e *Engine) effect(def *Definition, sc *scope) (string, error) {
	v, err := evalString(def.Rule.Effect, sc)
	if err != nil {
		return "", fmt.Errorf("evaluate %s: effect: %w", def.Name, err)
	}
	s, ok := v.(string)
	canon, known := effects[strings.ToLower(s)]
	if !ok || !known {
		return "", fmt.Errorf("evaluate %s: the policy 'effect' property value cannot be '%v': %w", def.Name, v, ErrEvaluation)
	}
	if (canon == "auditIfNotExists" || canon == "deployIfNotExists") && !def.IfNotExists() {
		return "", fmt.Errorf("evaluate %s: effect %s needs details with a related resource type: %w", def.Name, canon, ErrEvaluation)
	}
	if canon == "deployIfNotExists" && !def.CanDeploy() {
		return "", fmt.Errorf("evaluate %s: effect deployIfNotExists needs details.deployment: %w", def.Name, ErrEvaluation)
	}
	return canon, nil
}

// modeExcludes says why a definition's mode keeps a resource out, or "".
// Indexed (and no mode) evaluates only types that support tags and
// location; resource provider modes evaluate components, not ARM resources.
func modeExcludes(mode string, r Resource) string {
	switch strings.ToLower(mode) {
	case "all":
		return ""
	case "", "indexed":
		t := strings.ToLower(r.Type())
		if t == "microsoft.resources/subscriptions" || t == "microsoft.resources/subscriptions/resourcegroups" || t == "microsoft.resources/resourcegroups" {
			return "mode Indexed does not evaluate subscriptions and resource groups"
		}
		if _, _, ok := lookupFold(r, "location"); !ok {
			return "mode Indexed evaluates only resource types with a location"
		}
		return ""
	}
	return fmt.Sprintf("mode %s evaluates resource provider components, not ARM resources", mode)
}

// normaliser returns the string normalisation for a field kind.
func (e *Engine) normaliser(k normKind) func(string) string {
	switch k {
	case normLocation:
		return func(s string) string { return strings.ToLower(strings.ReplaceAll(s, " ", "")) }
	case normReadonly:
		if e.opts.ReadOnlyNormalisation == Converge {
			return func(s string) string { return strings.Join(strings.Fields(s), " ") }
		}
	}
	return nil
}

// policyScope is what policy expressions see while evaluating in.Resource.
func (e *Engine) policyScope(def *Definition, params map[string]any, in Input) *scope {
	id, _ := parseResourceID(in.Resource.ID())
	return &scope{
		lang: inPolicy,
		params: func(name string) (any, error) {
			if _, v, ok := lookupFold(params, name); ok {
				return normalize(v), nil
			}
			if p := def.parameter(name); p != nil && p.HasDefault {
				return normalize(p.DefaultValue), nil
			}
			if def.parameter(name) != nil {
				return nil, fmt.Errorf("the policy parameter '%s' has no value; resolve the assignment's parameters first: %w", name, ErrEvaluation)
			}
			return nil, fmt.Errorf("the policy '%s' has undefined parameter '%s': %w", def.Name, name, ErrEvaluation)
		},
		field: func(name string) (any, error) {
			ref, err := parseField(name, def.Name)
			if err != nil {
				return nil, fmt.Errorf("%w: %w", ErrEvaluation, err)
			}
			return resolveField(ref, in.Resource, nil).values(), nil
		},
		resourceGroup: resourceGroupFunc(id, in.ResourceGroup),
		subscription:  subscriptionFunc(id, in.Subscription),
	}
}

func resourceGroupFunc(id resourceID, rg *ResourceGroup) func() (map[string]any, error) {
	return func() (map[string]any, error) {
		name := id.resourceGroup
		if rg != nil && rg.Name != "" {
			name = rg.Name
		}
		if name == "" || id.subscription == "" {
			return nil, fmt.Errorf("resourceGroup(): the resource is not in a resource group: %w", ErrEvaluation)
		}
		out := map[string]any{
			"id":         "/subscriptions/" + id.subscription + "/resourceGroups/" + name,
			"name":       name,
			"type":       "Microsoft.Resources/resourceGroups",
			"properties": map[string]any{"provisioningState": "Succeeded"},
			"tags":       map[string]any{},
		}
		if rg != nil {
			if rg.Location != "" {
				out["location"] = rg.Location
			}
			if rg.ManagedBy != "" {
				out["managedBy"] = rg.ManagedBy
			}
			for k, v := range rg.Tags {
				out["tags"].(map[string]any)[k] = v
			}
		}
		return out, nil
	}
}

func subscriptionFunc(id resourceID, sub *Subscription) func() (map[string]any, error) {
	return func() (map[string]any, error) {
		sid := id.subscription
		if sub != nil && sub.ID != "" {
			sid = sub.ID
		}
		if sid == "" {
			return nil, fmt.Errorf("subscription(): the resource ID names no subscription: %w", ErrEvaluation)
		}
		out := map[string]any{"id": "/subscriptions/" + sid, "subscriptionId": sid}
		if sub != nil {
			out["tenantId"] = sub.TenantID
			out["displayName"] = sub.DisplayName
		}
		return out, nil
	}
}

// existence looks up the related resources and checks the existence
// condition against each: the rule is satisfied when any passes.
func (e *Engine) existence(def *Definition, in Input, sc *scope, out *Result) error {
	d := def.Rule.Details
	name, rg := "", ""
	for _, f := range []struct {
		src string
		dst *string
	}{{d.Name, &name}, {d.ResourceGroupName, &rg}} {
		if f.src == "" {
			continue
		}
		v, err := evalString(f.src, sc)
		if err != nil {
			return err
		}
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("details value '%s' is type '%s', expected type is 'String': %w", f.src, typeName(v), ErrEvaluation)
		}
		*f.dst = s
	}
	q, err := relatedQuery(in.Resource, d.Type, name, rg, d.ExistenceScope)
	if err != nil {
		return err
	}
	out.Query = &q
	var candidates []Resource
	if in.Related != nil {
		found, err := in.Related(q)
		if err != nil {
			return fmt.Errorf("look up related %s: %w", d.Type, err)
		}
		for _, r := range found {
			if r == nil {
				continue
			}
			r = Resource(normalize(map[string]any(r)).(map[string]any))
			if matchesQuery(r, q) && nameMatches(r, name) {
				candidates = append(candidates, r)
			}
		}
	}
	details := &IfNotExistsDetails{TotalResources: len(candidates)}
	out.IfNotExistsDetails = details
	out.ComplianceState = NonCompliant
	for _, r := range candidates {
		var rec []ExpressionResult
		ok := true
		if d.ExistenceCondition != nil {
			ce := &condEval{res: r, scope: sc, norm: e.normaliser, def: def.Name, record: &rec}
			if ok, err = ce.eval(d.ExistenceCondition); err != nil {
				return fmt.Errorf("related %s: %w", r.ID(), err)
			}
		}
		details.ResourceID, out.ExistenceExpressions = r.ID(), rec
		if ok {
			out.ComplianceState = Compliant
			return nil
		}
	}
	return nil
}

// nameMatches checks a related resource's name against details.name,
// whose last segment may be the "?" wildcard.
func nameMatches(r Resource, name string) bool {
	if name == "" {
		return true
	}
	segs := strings.Split(name, "/")
	last := segs[len(segs)-1]
	return last == "?" || strings.EqualFold(r.Name(), last) || strings.EqualFold(r.Name(), name)
}

// applicable decides applicability for effects other than -IfNotExists
// (policy-applicability.md): only type, name and kind conditions count,
// others are treated as true (false when negated), with the documented
// special cases for rules that use only some of them.
func (e *Engine) applicable(c *Condition, r Resource, sc *scope, def string) bool {
	used := map[fieldKind]bool{}
	other := false
	var walk func(c *Condition)
	walk = func(c *Condition) {
		for _, ch := range c.children {
			walk(ch)
		}
		if c.logic != logicLeaf {
			return
		}
		if c.subject == subjectField && c.ref != nil && (c.ref.kind == fieldType || c.ref.kind == fieldName || c.ref.kind == fieldKindName) {
			used[c.ref.kind] = true
		} else {
			other = true
		}
	}
	walk(c)
	considered := map[fieldKind]bool{}
	switch {
	case !used[fieldType] && !used[fieldName] && !used[fieldKindName]:
		return true
	case !used[fieldType] && !other && len(used) == 1:
		// Only kind or only name conditions: applicable to everything.
		return true
	case used[fieldType] && !other:
		considered[fieldType] = true
	default:
		for k := range used {
			considered[k] = true
		}
	}
	ce := &condEval{res: r, scope: sc, norm: e.normaliser, def: def}
	var eval func(c *Condition, negated bool) bool
	eval = func(c *Condition, negated bool) bool {
		switch c.logic {
		case logicNot:
			return !eval(c.children[0], !negated)
		case logicAllOf, logicAnyOf:
			all := c.logic == logicAllOf
			for _, ch := range c.children {
				if eval(ch, negated) != all {
					return !all
				}
			}
			return all
		}
		if c.subject == subjectField && c.ref != nil && considered[c.ref.kind] {
			// A leaf that fails here is left to the real evaluation of the
			// if condition, which reports the failure if it reaches it.
			if v, err := ce.leaf(c); err == nil {
				return v
			}
		}
		return !negated
	}
	return eval(c, false)
}
