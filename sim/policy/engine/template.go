package engine

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// This file renders the deployment a deployIfNotExists rule runs: it
// evaluates details.deployment.properties.parameters as policy expressions
// against the evaluated resource, then evaluates the template (parameters,
// variables, resource conditions and every expression) as ARM would, and
// works out the resource ID each template resource is PUT at.

// KeyVaultReference is a deployment parameter given as a Key Vault
// reference instead of a value.
type KeyVaultReference struct {
	// Parameter is the template parameter the secret feeds.
	Parameter string
	// VaultID is reference.keyVault.id, after policy evaluation.
	VaultID string
	// SecretName and SecretVersion are reference.secretName and
	// reference.secretVersion.
	SecretName, SecretVersion string
}

// Deployment is the ARM deployment a deployIfNotExists rule runs for one
// resource (a Microsoft.Resources/deployments PUT of mode incremental).
type Deployment struct {
	// Scope is details.deploymentScope: "ResourceGroup" or "Subscription".
	Scope string
	// SubscriptionID and ResourceGroup say where it runs: the evaluated
	// resource's resource group unless details.resourceGroupName says
	// otherwise.
	SubscriptionID, ResourceGroup string
	// Location is details.deployment.location (subscription scope).
	Location string
	// Mode is the deployment mode, "incremental" for the built-ins.
	Mode string
	// Template is a copy of the definition's template, unevaluated.
	Template map[string]any
	// Parameters are the deployment's parameters after policy evaluation:
	// {"name": {"value": v}}, and Key Vault references left as references.
	Parameters map[string]any
	// Resources are the template resources that deploy (condition true),
	// in template order.
	Resources []DeployedResource
}

// DeployedResource is one resource the deployment PUTs. Its Body may hold
// resolved secure values (protected settings): do not log it.
type DeployedResource struct {
	// ID is the full resource ID to PUT at.
	ID string
	// Type is the resource type the ID names, e.g.
	// Microsoft.KubernetesConfiguration/sourceControlConfigurations.
	Type string
	// TemplateType and Name are as the template gives them, evaluated, e.g.
	// Microsoft.Kubernetes/connectedClusters/providers/sourceControlConfigurations
	// and c1/Microsoft.KubernetesConfiguration/cfg.
	TemplateType, Name string
	// APIVersion is the resource's apiVersion.
	APIVersion string
	// Body is the request body: every member of the template resource but
	// type, name, apiVersion, condition, dependsOn, scope, comments and
	// child resources, evaluated.
	Body map[string]any
}

// templateReserved are the template resource members that are not part of
// the PUT body.
var templateReserved = map[string]bool{
	"type": true, "name": true, "apiversion": true, "condition": true, "dependson": true,
	"scope": true, "comments": true, "resources": true, "copy": true,
}

// templateErr is ARM's template validation failure.
func templateErr(path, format string, args ...any) *Error {
	return &Error{Code: CodeInvalidTemplate, Path: path,
		Message: fmt.Sprintf("Deployment template validation failed: '%s'.", fmt.Sprintf(format, args...))}
}

// Deployment renders the deployment def's deployIfNotExists rule runs for
// in.Resource, with parameters from ResolveParameters.
func (e *Engine) Deployment(def *Definition, params map[string]any, in Input) (*Deployment, error) {
	if def == nil || !def.CanDeploy() {
		return nil, fmt.Errorf("render deployment: %w", ErrNoDeployment)
	}
	if in.Resource == nil {
		return nil, fmt.Errorf("render deployment %s: no resource: %w", def.Name, ErrEvaluation)
	}
	in.Resource = Resource(normalize(map[string]any(in.Resource)).(map[string]any))
	d, spec := def.Rule.Details, def.Rule.Details.Deployment
	sc := e.policyScope(def, params, in)
	id, ok := parseResourceID(in.Resource.ID())
	if !ok {
		return nil, fmt.Errorf("render deployment %s: the resource has no valid id '%s': %w", def.Name, in.Resource.ID(), ErrEvaluation)
	}
	out := &Deployment{Scope: d.DeploymentScope, SubscriptionID: id.subscription, ResourceGroup: id.resourceGroup,
		Location: spec.Location, Mode: spec.Mode, Template: deepCopy(spec.Template).(map[string]any), Parameters: map[string]any{}}
	if d.ResourceGroupName != "" {
		v, err := evalString(d.ResourceGroupName, sc)
		if err != nil {
			return nil, fmt.Errorf("render deployment %s: resourceGroupName: %w", def.Name, err)
		}
		if s, ok := v.(string); ok && s != "" {
			out.ResourceGroup = s
		}
	}
	for _, name := range sortedKeys(spec.Parameters) {
		v, err := evalDeep(spec.Parameters[name], sc)
		if err != nil {
			return nil, fmt.Errorf("render deployment %s: parameter %s: %w", def.Name, name, err)
		}
		out.Parameters[name] = v
	}
	rg := in.ResourceGroup
	if !strings.EqualFold(out.ResourceGroup, id.resourceGroup) {
		rg = &ResourceGroup{Name: out.ResourceGroup}
	}
	ts := newTemplateScope(spec.Template, out.Parameters, in.ResolveSecret, id, rg, in.Subscription)
	if err := ts.checkParameters(); err != nil {
		return nil, err
	}
	scopeID := "/subscriptions/" + out.SubscriptionID
	if out.Scope != "Subscription" {
		scopeID += "/resourceGroups/" + out.ResourceGroup
	}
	_, resources, _ := lookupFold(spec.Template, "resources")
	list, _ := resources.([]any)
	for i, r := range list {
		deployed, err := ts.render(r, fmt.Sprintf("resources[%d]", i), scopeID, "", "")
		if err != nil {
			return nil, fmt.Errorf("render deployment %s: %w", def.Name, err)
		}
		out.Resources = append(out.Resources, deployed...)
	}
	return out, nil
}

// templateScope evaluates one template's expressions.
type templateScope struct {
	template  map[string]any
	declared  map[string]any // template parameters, as written
	provided  map[string]any // deployment parameters, {"value"|"reference": ...}
	resolve   func(KeyVaultReference) (string, error)
	values    map[string]any // resolved parameters, by lower-case name
	vars      map[string]any // evaluated variables, by lower-case name
	resolving map[string]bool
	scope     *scope
}

func newTemplateScope(t, provided map[string]any, resolve func(KeyVaultReference) (string, error), id resourceID, rg *ResourceGroup, sub *Subscription) *templateScope {
	ts := &templateScope{template: t, provided: provided, resolve: resolve,
		values: map[string]any{}, vars: map[string]any{}, resolving: map[string]bool{}}
	_, declared, _ := lookupFold(t, "parameters")
	ts.declared, _ = declared.(map[string]any)
	ts.scope = &scope{
		lang:          inTemplate,
		params:        ts.parameter,
		variables:     ts.variable,
		resourceGroup: resourceGroupFunc(id, rg),
		subscription:  subscriptionFunc(id, sub),
	}
	return ts
}

// checkParameters rejects deployment parameters the template does not
// declare and declared ones with neither a value nor a default, as ARM's
// template validation does.
func (ts *templateScope) checkParameters() error {
	var extra []string
	for name := range ts.provided {
		if _, _, ok := lookupFold(ts.declared, name); !ok {
			extra = append(extra, name)
		}
	}
	if len(extra) > 0 {
		sort.Strings(extra)
		return templateErr("properties.parameters", "The template parameters '%s' in the parameters file are not valid; they are not present in the original template and can therefore not be provided at deployment time. The only supported parameters for this template are '%s'",
			strings.Join(extra, ", "), strings.Join(sortedKeys(ts.declared), ", "))
	}
	for _, name := range sortedKeys(ts.declared) {
		decl, ok := ts.declared[name].(map[string]any)
		if !ok {
			return templateErr("properties.template.parameters."+name, "The template parameter '%s' is not an object", name)
		}
		_, _, hasDefault := lookupFold(decl, "defaultValue")
		if _, _, given := lookupFold(ts.provided, name); !given && !hasDefault {
			return templateErr("properties.template.parameters."+name, "The value for the template parameter '%s' is not provided. Please see https://aka.ms/arm-create-parameter-file for usage details", name)
		}
	}
	if _, fns, ok := lookupFold(ts.template, "functions"); ok {
		if arr, isArr := fns.([]any); !isArr || len(arr) > 0 {
			return fmt.Errorf("render deployment: user-defined template functions: %w", ErrUnsupported)
		}
	}
	return nil
}

// parameter is parameters() in the template: the provided value, the
// resolved Key Vault secret, or the default, checked against the type.
func (ts *templateScope) parameter(name string) (any, error) {
	key := strings.ToLower(name)
	if v, ok := ts.values[key]; ok {
		return v, nil
	}
	declName, declV, ok := lookupFold(ts.declared, name)
	if !ok {
		return nil, fmt.Errorf("the template parameter '%s' is not found. Please see https://aka.ms/arm-syntax-parameters for usage details: %w", name, ErrEvaluation)
	}
	if ts.resolving[key] {
		return nil, fmt.Errorf("the template parameter '%s' refers to itself through its default value: %w", name, ErrEvaluation)
	}
	ts.resolving[key] = true
	defer delete(ts.resolving, key)
	decl, _ := declV.(map[string]any)
	_, tv, _ := lookupFold(decl, "type")
	typ, _ := tv.(string)
	var v any
	if _, entry, given := lookupFold(ts.provided, declName); given {
		obj, _ := entry.(map[string]any)
		if _, val, ok := lookupFold(obj, "value"); ok {
			v = val
		} else {
			_, ref, _ := lookupFold(obj, "reference")
			secret, err := ts.secret(declName, ref)
			if err != nil {
				return nil, err
			}
			v = secret
		}
	} else {
		_, def, _ := lookupFold(decl, "defaultValue")
		dv, err := evalDeep(def, ts.scope)
		if err != nil {
			return nil, fmt.Errorf("default value of template parameter '%s': %w", declName, err)
		}
		v = dv
	}
	if err := checkTemplateType(declName, typ, v); err != nil {
		return nil, err
	}
	if _, av, ok := lookupFold(decl, "allowedValues"); ok {
		if allowed, isArr := av.([]any); isArr && !templateAllowed(v, allowed) {
			return nil, templateErr("properties.template.parameters."+declName, "The provided value '%s' for the template parameter '%s' is not valid. The parameter value is not part of the allowed value(s): '%s'", display(v), declName, displayList(allowed, ","))
		}
	}
	ts.values[key] = v
	return v, nil
}

// secret resolves a Key Vault reference through the caller.
func (ts *templateScope) secret(param string, ref any) (string, error) {
	obj, _ := ref.(map[string]any)
	kv := KeyVaultReference{Parameter: param}
	if _, vault, ok := lookupFold(obj, "keyVault"); ok {
		if vm, ok := vault.(map[string]any); ok {
			_, id, _ := lookupFold(vm, "id")
			kv.VaultID, _ = id.(string)
		}
	}
	_, sn, _ := lookupFold(obj, "secretName")
	kv.SecretName, _ = sn.(string)
	_, sv, _ := lookupFold(obj, "secretVersion")
	kv.SecretVersion, _ = sv.(string)
	if ts.resolve == nil {
		return "", fmt.Errorf("template parameter '%s' is a Key Vault reference (vault '%s', secret '%s'): %w", param, kv.VaultID, kv.SecretName, ErrUnresolvedReference)
	}
	s, err := ts.resolve(kv)
	if err != nil {
		return "", fmt.Errorf("template parameter '%s': key vault reference: %w", param, err)
	}
	return s, nil
}

// templateTypes maps template parameter types to the check and to the
// type list ARM names in its message.
var templateTypes = map[string]struct {
	ok   func(any) bool
	want string
}{
	"string":       {func(v any) bool { _, ok := v.(string); return ok }, "String, Uri"},
	"securestring": {func(v any) bool { _, ok := v.(string); return ok }, "String, Uri"},
	"int":          {func(v any) bool { _, ok := v.(int64); return ok }, "Integer"},
	"bool":         {func(v any) bool { _, ok := v.(bool); return ok }, "Boolean"},
	"object":       {func(v any) bool { _, ok := v.(map[string]any); return ok }, "Object"},
	"secureobject": {func(v any) bool { _, ok := v.(map[string]any); return ok }, "Object"},
	"array":        {func(v any) bool { _, ok := v.([]any); return ok }, "Array"},
}

func checkTemplateType(name, typ string, v any) error {
	t, ok := templateTypes[strings.ToLower(typ)]
	if !ok {
		return templateErr("properties.template.parameters."+name, "The template parameter '%s' has an invalid type '%s'", name, typ)
	}
	if !t.ok(v) {
		return templateErr("properties.parameters."+name, "The provided value for the template parameter '%s' is not valid. Expected a value of type '%s', but received a value of type '%s'", name, t.want, typeName(v))
	}
	return nil
}

func templateAllowed(v any, allowed []any) bool {
	for _, a := range allowed {
		as, aok := a.(string)
		vs, vok := v.(string)
		if (aok && vok && strings.EqualFold(as, vs)) || armEquals(normalize(a), v) {
			return true
		}
	}
	return false
}

// variable is variables() in the template, evaluated once on first use.
func (ts *templateScope) variable(name string) (any, error) {
	key := strings.ToLower(name)
	if v, ok := ts.vars[key]; ok {
		return v, nil
	}
	_, vars, _ := lookupFold(ts.template, "variables")
	vm, _ := vars.(map[string]any)
	_, raw, ok := lookupFold(vm, name)
	if !ok {
		return nil, fmt.Errorf("the template variable '%s' is not found. Please see https://aka.ms/arm-syntax-variables for usage details: %w", name, ErrEvaluation)
	}
	if ts.resolving["var:"+key] {
		return nil, fmt.Errorf("the template variable '%s' refers to itself: %w", name, ErrEvaluation)
	}
	ts.resolving["var:"+key] = true
	defer delete(ts.resolving, "var:"+key)
	v, err := evalDeep(raw, ts.scope)
	if err != nil {
		return nil, fmt.Errorf("variable '%s': %w", name, err)
	}
	ts.vars[key] = v
	return v, nil
}

// render evaluates one template resource (and its child resources) and
// returns those whose condition holds. parentType and parentName are set
// for children declared inside a parent.
func (ts *templateScope) render(raw any, path, scopeID, parentType, parentName string) ([]DeployedResource, error) {
	r, ok := raw.(map[string]any)
	if !ok {
		return nil, templateErr(path, "The template resource at '%s' is not an object", path)
	}
	if _, cond, ok := lookupFold(r, "condition"); ok {
		v, err := evalDeep(cond, ts.scope)
		if err != nil {
			return nil, fmt.Errorf("%s.condition: %w", path, err)
		}
		b, isBool := v.(bool)
		if !isBool {
			return nil, templateErr(path+".condition", "The template resource condition must evaluate to a Boolean, got '%s'", typeName(v))
		}
		if !b {
			return nil, nil
		}
	}
	if _, _, ok := lookupFold(r, "copy"); ok {
		return nil, fmt.Errorf("%s: copy loops: %w", path, ErrUnsupported)
	}
	field := func(key string) (string, error) {
		_, raw, _ := lookupFold(r, key)
		v, err := evalDeep(raw, ts.scope)
		if err != nil {
			return "", fmt.Errorf("%s.%s: %w", path, key, err)
		}
		s, ok := v.(string)
		if !ok || s == "" {
			return "", templateErr(path+"."+key, "The template resource property '%s' must be a non-empty string", key)
		}
		return s, nil
	}
	typ, err := field("type")
	if err != nil {
		return nil, err
	}
	name, err := field("name")
	if err != nil {
		return nil, err
	}
	api, err := field("apiVersion")
	if err != nil {
		return nil, err
	}
	if parentType != "" && !strings.Contains(typ, "/") {
		typ, name = parentType+"/"+typ, parentName+"/"+name
	}
	if strings.EqualFold(typ, "Microsoft.Resources/deployments") {
		return nil, fmt.Errorf("%s: nested deployments: %w", path, ErrUnsupported)
	}
	id, err := ts.resourceID(r, path, scopeID, typ, name)
	if err != nil {
		return nil, err
	}
	body := map[string]any{}
	for _, k := range sortedKeys(r) {
		if templateReserved[strings.ToLower(k)] {
			continue
		}
		v, err := evalDeep(r[k], ts.scope)
		if err != nil {
			return nil, fmt.Errorf("%s.%s: %w", path, k, err)
		}
		body[k] = v
	}
	rid, _ := parseResourceID(id)
	out := []DeployedResource{{ID: id, Type: rid.fullType(), TemplateType: typ, Name: name, APIVersion: api, Body: body}}
	if _, children, ok := lookupFold(r, "resources"); ok {
		list, _ := children.([]any)
		for i, ch := range list {
			more, err := ts.render(ch, fmt.Sprintf("%s.resources[%d]", path, i), scopeID, typ, name)
			if err != nil {
				return nil, err
			}
			out = append(out, more...)
		}
	}
	return out, nil
}

// resourceID applies ARM's rule for a template resource's ID: the type's
// segments after the namespace pair up with the name's segments, so
// "Microsoft.Kubernetes/connectedClusters/providers/sourceControlConfigurations"
// named "c1/Microsoft.KubernetesConfiguration/cfg" is
// {scope}/providers/Microsoft.Kubernetes/connectedClusters/c1/providers/Microsoft.KubernetesConfiguration/sourceControlConfigurations/cfg.
// With a "scope" property the resource is an extension of the resource
// that scope names.
func (ts *templateScope) resourceID(r map[string]any, path, scopeID, typ, name string) (string, error) {
	if strings.EqualFold(typ, "Microsoft.Resources/resourceGroups") {
		return "/subscriptions/" + strings.Split(strings.TrimPrefix(scopeID, "/subscriptions/"), "/")[0] + "/resourceGroups/" + name, nil
	}
	if _, sv, ok := lookupFold(r, "scope"); ok {
		v, err := evalDeep(sv, ts.scope)
		if err != nil {
			return "", fmt.Errorf("%s.scope: %w", path, err)
		}
		s, isStr := v.(string)
		if !isStr || s == "" {
			return "", templateErr(path+".scope", "The template resource scope must be a non-empty string")
		}
		if !strings.HasPrefix(s, "/") {
			// A relative scope names a resource in the deployment's scope.
			segs := strings.Split(s, "/")
			if len(segs) < 3 || len(segs)%2 == 0 {
				return "", templateErr(path+".scope", "The template resource scope '%s' is not a resource ID", s)
			}
			names := make([]string, 0, len(segs)/2)
			types := []string{segs[0]}
			for i := 1; i+1 < len(segs); i += 2 {
				types = append(types, segs[i])
				names = append(names, segs[i+1])
			}
			var err error
			if s, err = buildResourceID(scopeID, strings.Join(types, "/"), names); err != nil {
				return "", templateErr(path+".scope", "The template resource scope '%s' is not a resource ID", v)
			}
		}
		scopeID = strings.TrimRight(s, "/")
	}
	id, err := buildResourceID(scopeID, typ, strings.Split(name, "/"))
	if err != nil {
		if errors.Is(err, ErrEvaluation) {
			return "", templateErr(path, "The template resource '%s' for type '%s' has incorrect segment lengths. A nested resource type must have identical number of segments as its resource name. A root resource type must have segment length one greater than its resource name. Please see https://aka.ms/arm-syntax-resources for usage details", name, typ)
		}
		return "", err
	}
	return id, nil
}
