package engine

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// dine wraps a policy rule's then.details in a minimal deployIfNotExists
// definition.
func dineDoc(details string) string {
	return `{"properties":{"mode":"Indexed","parameters":{"effect":{"type":"String","defaultValue":"DeployIfNotExists"}},
"policyRule":{"if":{"field":"type","equals":"Microsoft.Kubernetes/connectedClusters"},
"then":{"effect":"[parameters('effect')]","details":` + details + `}}}}`
}

const okDeployment = `"deployment":{"properties":{"mode":"incremental","template":{"resources":[]}}}`
const okRoles = `"roleDefinitionIds":["/providers/microsoft.authorization/roleDefinitions/b24988ac-6180-42a0-ab88-20f7382dd24c"]`

func TestParseDefinitionErrors(t *testing.T) {
	sccAlias := "Microsoft.KubernetesConfiguration/sourceControlConfigurations"
	tests := []struct {
		name, doc, code, path, message string
	}{
		{"not JSON", `{"properties":`, CodeInvalidRequestContent, "", ""},
		{"trailing data", `{} {}`, CodeInvalidRequestContent, "", ""},
		{"not an object", `[1]`, CodeInvalidRequestContent, "", ""},
		{"properties not an object", `{"properties":"x"}`, CodeInvalidRequestContent, "properties", ""},
		{"displayName not a string", `{"properties":{"displayName":1,"policyRule":{}}}`, CodeInvalidRequestContent, "properties.displayName", ""},
		{"bad mode", `{"properties":{"mode":"Everything","policyRule":{}}}`, CodeInvalidRequestContent, "properties.mode", ""},
		{"no rule", `{"properties":{"mode":"All"}}`, CodeInvalidPolicyRule, "properties.policyRule", ""},
		{"rule not an object", `{"properties":{"policyRule":[]}}`, CodeInvalidPolicyRule, "properties.policyRule", ""},
		{"rule without then", `{"properties":{"policyRule":{"if":{"field":"type","equals":"x"}}}}`, CodeInvalidPolicyRule, "properties.policyRule",
			"Failed to parse policy rule: 'Required property 'then' not found in JSON. Path ''.'."},
		{"unknown member in the rule", `{"properties":{"policyRule":{"if":{"field":"type","equals":"x"},"then":{"effect":"audit"},"else":{}}}}`,
			CodeInvalidPolicyRule, "properties.policyRule.else", "Failed to parse policy rule: 'Could not find member 'else' on object of type 'PolicyRule'. Path 'else'.'."},
		{"unknown member in a condition", `{"properties":{"policyRule":{"if":{"allOf":[{"field":"type","equalz":"x"}]},"then":{"effect":"audit"}}}}`,
			CodeInvalidPolicyRule, "properties.policyRule.if.allOf[0].equalz", "Failed to parse policy rule: 'Could not find member 'equalz' on object of type 'Condition'. Path 'if.allOf[0].equalz'.'."},
		{"logical operator with extra member", `{"properties":{"policyRule":{"if":{"anyOf":[],"field":"type"},"then":{"effect":"audit"}}}}`,
			CodeInvalidPolicyRule, "properties.policyRule.if.field", ""},
		{"two operators", `{"properties":{"policyRule":{"if":{"field":"type","equals":"x","notEquals":"y"},"then":{"effect":"audit"}}}}`,
			CodeInvalidPolicyRule, "properties.policyRule.if.notEquals", ""},
		{"no operator", `{"properties":{"policyRule":{"if":{"field":"type"},"then":{"effect":"audit"}}}}`, CodeInvalidPolicyRule, "properties.policyRule.if", ""},
		{"no subject", `{"properties":{"policyRule":{"if":{"equals":"x"},"then":{"effect":"audit"}}}}`, CodeInvalidPolicyRule, "properties.policyRule.if", ""},
		{"two subjects", `{"properties":{"policyRule":{"if":{"field":"type","value":"x","equals":"x"},"then":{"effect":"audit"}}}}`, CodeInvalidPolicyRule, "properties.policyRule.if.value", ""},
		{"allOf not an array", `{"properties":{"policyRule":{"if":{"allOf":{}},"then":{"effect":"audit"}}}}`, CodeInvalidPolicyRule, "properties.policyRule.if.allOf", ""},
		{"in with a string", `{"properties":{"policyRule":{"if":{"field":"type","in":"x"},"then":{"effect":"audit"}}}}`, CodeInvalidPolicyRule, "properties.policyRule.if.in", ""},
		{"exists with a word", `{"properties":{"policyRule":{"if":{"field":"type","exists":"yes"},"then":{"effect":"audit"}}}}`, CodeInvalidPolicyRule, "properties.policyRule.if.exists", ""},
		{"field not a string", `{"properties":{"policyRule":{"if":{"field":1,"equals":"x"},"then":{"effect":"audit"}}}}`, CodeInvalidPolicyRule, "properties.policyRule.if.field", ""},
		{"count field without [*]", `{"properties":{"policyRule":{"if":{"count":{"field":"Microsoft.Web/sites/name"},"equals":1},"then":{"effect":"audit"}}}}`,
			CodeInvalidPolicyRule, "properties.policyRule.if.count.field", ""},
		{"count value with an undefined parameter", `{"properties":{"policyRule":{"if":{"count":{"value":"[parameters('list')]"},"equals":1},"then":{"effect":"audit"}}}}`,
			CodeInvalidPolicyParameters, "properties.policyRule.if.count.value", ""},
		{"unknown alias in field()", `{"properties":{"policyRule":{"if":{"value":"[field('Microsoft.KubernetesConfiguration/sourceControlConfigurations/branch')]","equals":"x"},"then":{"effect":"audit"}}}}`,
			CodeInvalidPolicyAlias, "properties.policyRule.if.value", ""},
		{"count with both", `{"properties":{"policyRule":{"if":{"count":{"field":"Microsoft.Web/sites/a[*]","value":[]},"equals":1},"then":{"effect":"audit"}}}}`,
			CodeInvalidPolicyRule, "properties.policyRule.if.count", ""},
		{"no effect", `{"properties":{"policyRule":{"if":{"field":"type","equals":"x"},"then":{}}}}`, CodeInvalidPolicyRule, "properties.policyRule.then.effect", ""},
		{"bad effect", `{"properties":{"policyRule":{"if":{"field":"type","equals":"x"},"then":{"effect":"explode"}}}}`, CodeInvalidPolicyRuleEffect,
			"properties.policyRule.then.effect", "The policy definition 'test-def' rule is invalid. The policy 'effect' property value cannot be 'explode'."},
		{"unknown field", `{"properties":{"policyRule":{"if":{"field":"colour","equals":"x"},"then":{"effect":"audit"}}}}`, CodeInvalidPolicyAlias, "properties.policyRule.if.field", ""},
		{"unknown alias of a strict type", `{"properties":{"policyRule":{"if":{"field":"` + sccAlias + `/gitBranch","equals":"x"},"then":{"effect":"audit"}}}}`,
			CodeInvalidPolicyAlias, "properties.policyRule.if.field",
			"The policy definition 'test-def' rule is invalid. The 'field' property '" + sccAlias + "/gitBranch' of the policy rule doesn't exist as an alias under provider 'Microsoft.KubernetesConfiguration' and resource type 'sourceControlConfigurations'. The supported aliases are '"},
		{"provider without a dot", `{"properties":{"policyRule":{"if":{"field":"Compute/vms/size","equals":"x"},"then":{"effect":"audit"}}}}`,
			CodeInvalidProviderNameInPolicyAlias, "properties.policyRule.if.field", ""},
		{"alias with a bad path", `{"properties":{"policyRule":{"if":{"field":"Microsoft.Web/sites/a..b","equals":"x"},"then":{"effect":"audit"}}}}`,
			CodeInvalidPolicyAlias, "properties.policyRule.if.field", ""},
		{"undefined parameter", `{"properties":{"policyRule":{"if":{"field":"type","equals":"[parameters('kind')]"},"then":{"effect":"audit"}}}}`,
			CodeInvalidPolicyParameters, "properties.policyRule.if.equals",
			"A function or parameter in policy 'test-def' could not be validated. If using template functions, try following the tips in: https://aka.ms/policy-avoiding-template-failures. The inner exception 'The policy 'test-def' has undefined parameter 'kind' which is used in the policy rule. Please either define it in policy definition or remove the reference in policy rule.'."},
		{"undefined parameter deep in an array", `{"properties":{"policyRule":{"if":{"field":"type","in":["a","[concat('x', parameters('p'))]"]},"then":{"effect":"audit"}}}}`,
			CodeInvalidPolicyParameters, "properties.policyRule.if.in[1]", ""},
		{"bad expression", `{"properties":{"policyRule":{"if":{"field":"type","equals":"[concat('a',)]"},"then":{"effect":"audit"}}}}`,
			CodeInvalidPolicyParameters, "properties.policyRule.if.equals", ""},
		{"unknown function", `{"properties":{"policyRule":{"if":{"value":"[frob()]","equals":"x"},"then":{"effect":"audit"}}}}`,
			CodeInvalidPolicyParameters, "properties.policyRule.if.value", ""},
		{"template-only function in a rule", `{"properties":{"policyRule":{"if":{"value":"[resourceId('Microsoft.Web/sites','a')]","equals":"x"},"then":{"effect":"audit"}}}}`,
			CodeInvalidPolicyParameters, "properties.policyRule.if.value", ""},
		{"wrong arity", `{"properties":{"policyRule":{"if":{"value":"[toLower()]","equals":"x"},"then":{"effect":"audit"}}}}`,
			CodeInvalidPolicyParameters, "properties.policyRule.if.value", ""},
		{"parameter without type", `{"properties":{"parameters":{"p":{}},"policyRule":{}}}`, CodeInvalidPolicyParameters, "properties.parameters.p.type", ""},
		{"parameter of unknown type", `{"properties":{"parameters":{"p":{"type":"Map"}},"policyRule":{}}}`, CodeInvalidPolicyParameters, "properties.parameters.p.type", ""},
		{"default of the wrong type", `{"properties":{"parameters":{"allowedLocations":{"type":"Array","defaultValue":"eastus2"}},"policyRule":{}}}`,
			CodeInvalidPolicyParameters, "properties.parameters.allowedLocations.defaultValue",
			"The policy parameter 'allowedLocations' default value does not match the expected parameter type defined in the policy definition. Details 'The expected policy parameter type: 'Array'. The actual policy parameter type 'String'.'."},
		{"default not allowed", `{"properties":{"parameters":{"windowSize":{"type":"String","allowedValues":["PT5M","PT15M"],"defaultValue":"PT1M"}},"policyRule":{}}}`,
			CodePolicyParameterAllowedAndDefaultValuesMismatch, "properties.parameters.windowSize.defaultValue",
			"The policy 'test-def' defines parameter 'windowSize' with a default value 'PT1M' and allowed values 'PT5M,PT15M'. The 'allowedValues' property must include the value of the 'defaultValue' property if both are present."},
		{"DINE without details", `{"properties":{"policyRule":{"if":{"field":"type","equals":"x"},"then":{"effect":"deployIfNotExists"}}}}`,
			CodeInvalidPolicyRuleEffectDetails, "properties.policyRule.then.details", ""},
		{"DINE details without type", dineDoc(`{` + okRoles + `,` + okDeployment + `}`), CodeInvalidPolicyRuleEffectDetails, "properties.policyRule.then.details.type", ""},
		{"DINE without roles", dineDoc(`{"type":"Microsoft.KubernetesConfiguration/sourceControlConfigurations",` + okDeployment + `}`),
			CodeInvalidPolicyRuleEffectDetails, "properties.policyRule.then.details.roleDefinitionIds", ""},
		{"DINE without deployment", dineDoc(`{"type":"Microsoft.KubernetesConfiguration/sourceControlConfigurations",` + okRoles + `}`),
			CodeInvalidPolicyRuleEffectDetails, "properties.policyRule.then.details.deployment", ""},
		{"DINE bad role", dineDoc(`{"type":"A.B/c","roleDefinitionIds":["Contributor"],` + okDeployment + `}`),
			CodeInvalidPolicyRuleEffectDetails, "properties.policyRule.then.details.roleDefinitionIds[0]", ""},
		{"DINE bad delay", dineDoc(`{"type":"A.B/c","evaluationDelay":"PT7H",` + okRoles + `,` + okDeployment + `}`),
			CodeInvalidPolicyRuleEffectDetails, "properties.policyRule.then.details.evaluationDelay", ""},
		{"DINE bad scope", dineDoc(`{"type":"A.B/c","deploymentScope":"Tenant",` + okRoles + `,` + okDeployment + `}`),
			CodeInvalidPolicyRuleEffectDetails, "properties.policyRule.then.details.deploymentScope", ""},
		{"DINE deployment without template", dineDoc(`{"type":"A.B/c",` + okRoles + `,"deployment":{"properties":{"mode":"incremental"}}}`),
			CodeInvalidPolicyRuleEffectDetails, "properties.policyRule.then.details.deployment.properties.template", ""},
		{"DINE parameter with value and reference", dineDoc(`{"type":"A.B/c",` + okRoles + `,"deployment":{"properties":{"template":{},"parameters":{"p":{"value":1,"reference":{}}}}}}`),
			CodeInvalidPolicyRuleEffectDetails, "properties.policyRule.then.details.deployment.properties.parameters.p", ""},
		{"DINE parameter with an undefined policy parameter", dineDoc(`{"type":"A.B/c",` + okRoles + `,"deployment":{"properties":{"template":{},"parameters":{"p":{"value":"[parameters('nope')]"}}}}}`),
			CodeInvalidPolicyParameters, "properties.policyRule.then.details.deployment.properties.parameters.p.value", ""},
		{"existence condition with a bad alias", dineDoc(`{"type":"A.B/c",` + okRoles + `,` + okDeployment + `,"existenceCondition":{"field":"` + sccAlias + `/nope","equals":"x"}}`),
			CodeInvalidPolicyAlias, "properties.policyRule.then.details.existenceCondition.field", ""},
		{"details name with a bad expression", dineDoc(`{"type":"A.B/c","name":"[concat(]",` + okRoles + `,` + okDeployment + `}`),
			CodeInvalidPolicyParameters, "properties.policyRule.then.details.name", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseDefinition("test-def", json.RawMessage(tc.doc))
			e := wantCode(t, err, tc.code)
			if e.Path != tc.path {
				t.Errorf("path = %q, want %q", e.Path, tc.path)
			}
			if tc.message != "" && !strings.HasPrefix(e.Message, tc.message) {
				t.Errorf("message\n got %s\nwant %s", e.Message, tc.message)
			}
			if !strings.Contains(e.Error(), tc.code) {
				t.Errorf("Error() = %q lacks the code", e.Error())
			}
		})
	}
}

func TestParseDefinitionShapes(t *testing.T) {
	// The bare properties object parses as well as the resource envelope,
	// member names are case-insensitive, and the name argument wins.
	def := mustParse(t, `{"Mode":"all","PolicyRule":{"If":{"AllOf":[{"Field":"Type","Equals":"x"}]},"Then":{"Effect":"AUDIT"}}}`)
	if def.Name != "test-def" || def.Mode != "all" || def.Rule.Effect != "AUDIT" {
		t.Errorf("%+v", def)
	}
	def, err := ParseDefinition("", json.RawMessage(`{"name":"from-doc","id":"/x","type":"Microsoft.Authorization/policyDefinitions","properties":{"policyRule":{"if":{"field":"type","equals":"x"},"then":{"effect":"[[literal]"}}}}`))
	if e := wantCode(t, err, CodeInvalidPolicyRuleEffect); !strings.Contains(e.Message, "'from-doc'") || !strings.Contains(e.Message, "'[literal]'") {
		t.Errorf("message %q", e.Message)
	}
	_ = def
	// Non-IfNotExists details are kept as written.
	def = mustParse(t, `{"properties":{"policyRule":{"if":{"field":"type","equals":"x"},"then":{"effect":"modify","details":{"operations":[{"operation":"add","field":"tags['a']","value":"[resourceGroup().name]"}]}}}}}`)
	if def.Rule.Details == nil || def.Rule.Details.Raw == nil || def.IfNotExists() || def.CanDeploy() {
		t.Errorf("modify details %+v", def.Rule.Details)
	}
	// An auditIfNotExists definition needs no deployment.
	def = mustParse(t, `{"properties":{"policyRule":{"if":{"field":"type","equals":"x"},"then":{"effect":"auditIfNotExists","details":{"type":"Microsoft.Insights/diagnosticSettings","existenceScope":"subscription","evaluationDelay":"AfterProvisioningSuccess"}}}}}`)
	d := def.Rule.Details
	if !def.IfNotExists() || def.CanDeploy() || d.ExistenceScope != "Subscription" || d.EvaluationDelay.After != "AfterProvisioningSuccess" || d.DeploymentScope != "ResourceGroup" {
		t.Errorf("AINE details %+v", d)
	}
}

func TestEvaluationDelay(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"PT10M": 10 * time.Minute, "pt1h": time.Hour, "PT0S": 0, "P0D": 0, "PT1H30M": 90 * time.Minute,
		"PT360M": 6 * time.Hour, "PT90S": 90 * time.Second, "PT0.5S": 500 * time.Millisecond,
	} {
		got, err := parseEvaluationDelay(in)
		if err != nil || got.Duration != want || got.After != "" {
			t.Errorf("%s = %+v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"P", "PT", "10M", "PT361M", "P1D", "soon", "PT-1M", ""} {
		if _, err := parseEvaluationDelay(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if got, err := parseEvaluationDelay("afterprovisioning"); err != nil || got.After != "AfterProvisioning" {
		t.Errorf("AfterProvisioning: %+v %v", got, err)
	}
}

func TestResolveParameterTypes(t *testing.T) {
	def := mustParse(t, `{"properties":{"parameters":{
"s":{"type":"string"},"a":{"type":"Array","allowedValues":["x","y","z"]},"o":{"type":"Object"},"b":{"type":"Boolean"},
"i":{"type":"Integer"},"f":{"type":"Float"},"d":{"type":"DateTime"}},
"policyRule":{"if":{"field":"type","equals":"[parameters('s')]"},"then":{"effect":"audit"}}}}`)
	good := map[string]any{"s": "x", "a": []any{"x", "z"}, "o": map[string]any{"k": 1}, "b": false,
		"i": float64(3), "f": 1.5, "d": "2025-03-01T10:00:00.0000000Z"}
	p, err := def.ResolveParameters("a1", good)
	if err != nil {
		t.Fatal(err)
	}
	if p["i"] != int64(3) || def.Parameters[0].Type != TypeString {
		t.Errorf("resolved %v, type %q", p, def.Parameters[0].Type)
	}
	for name, bad := range map[string]any{"s": 1, "a": "x", "o": []any{}, "b": "true", "i": 1.5, "f": "1.5", "d": "yesterday"} {
		in := merge(good, map[string]any{name: bad})
		_, err := def.ResolveParameters("a1", in)
		wantCode(t, err, CodeInvalidPolicyParameters)
	}
	_, err = def.ResolveParameters("a1", merge(good, map[string]any{"a": []any{"x", "w"}}))
	wantCode(t, err, CodePolicyParameterValueNotAllowed)
}
