package policy_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armpolicy"
)

func TestBuiltInDefinitions(t *testing.T) {
	f := start(t, nil)
	for _, tc := range []struct{ name, display string }{
		{noSecrets, "Configure Kubernetes clusters with specified GitOps configuration using no secrets"},
		{sshDef, "Configure Kubernetes clusters with specified GitOps configuration using SSH secrets"},
		{httpsDef, "Configure Kubernetes clusters with specified GitOps configuration using HTTPS secrets"},
	} {
		d, err := f.defs.GetBuiltIn(t.Context(), tc.name, nil)
		if err != nil {
			t.Fatal(err)
		}
		if *d.ID != builtInID+tc.name || *d.Type != "Microsoft.Authorization/policyDefinitions" || *d.Properties.DisplayName != tc.display ||
			*d.Properties.PolicyType != armpolicy.PolicyTypeBuiltIn || *d.Properties.Version != "1.1.0" || *d.Properties.Mode != "Indexed" {
			t.Errorf("%s: %s %s %s %v", tc.name, *d.ID, *d.Type, *d.Properties.DisplayName, *d.Properties.Version)
		}
		if eff := d.Properties.Parameters["effect"]; eff == nil || eff.DefaultValue != "DeployIfNotExists" || len(eff.AllowedValues) != 6 {
			t.Errorf("%s: effect parameter = %+v", tc.name, eff)
		}
	}
	if d, _ := f.defs.GetBuiltIn(t.Context(), sshDef, nil); d.Properties.Parameters["keyVaultResourceId"] == nil ||
		!*d.Properties.Parameters["keyVaultResourceId"].Metadata.AssignPermissions {
		t.Errorf("SSH keyVaultResourceId lacks assignPermissions: %+v", d.Properties.Parameters["keyVaultResourceId"])
	}
	_, err := f.defs.GetBuiltIn(t.Context(), "00000000-0000-0000-0000-000000000000", nil)
	wantErr(t, err, 404, "PolicyDefinitionNotFound")

	list := func(filter string, top int32) []string {
		opts := &armpolicy.DefinitionsClientListBuiltInOptions{}
		if filter != "" {
			opts.Filter = &filter
		}
		if top > 0 {
			opts.Top = &top
		}
		var names []string
		for pg := f.defs.NewListBuiltInPager(opts); pg.More(); {
			page, err := pg.NextPage(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			names = append(names, func() []string {
				var n []string
				for _, d := range page.Value {
					n = append(n, *d.Name)
				}
				return n
			}()...)
		}
		return names
	}
	// The server's page size is 2 here: three built-ins take two pages.
	if got := list("", 0); len(got) != 3 {
		t.Errorf("built-ins = %v", got)
	}
	if got := list("category eq 'Kubernetes'", 0); len(got) != 3 {
		t.Errorf("category Kubernetes = %v", got)
	}
	if got := list("category eq 'Storage'", 0); len(got) != 0 {
		t.Errorf("category Storage = %v", got)
	}
	if got := list("policyType eq 'Custom'", 0); len(got) != 0 {
		t.Errorf("policyType Custom = %v", got)
	}
	if got := list("", 1); len(got) != 1 {
		t.Errorf("$top=1 = %v", got)
	}
	code, body := f.raw(http.MethodGet, "/providers/Microsoft.Authorization/policyDefinitions?api-version=2021-06-01&$filter="+strings.ReplaceAll("name eq 'x'", " ", "%20"), "")
	if code != 400 || !strings.Contains(body, "InvalidFilterInQueryString") {
		t.Errorf("unsupported filter: %d %s", code, body)
	}
	code, body = f.raw(http.MethodGet, builtInID+noSecrets+"?api-version=2021-06-01", "")
	if code != 200 || !strings.Contains(body, `"assignPermissions"`) && !strings.Contains(body, `"configurationResourceName"`) {
		t.Errorf("az's api-version: %d", code)
	}
	if code, body = f.raw(http.MethodGet, builtInID+noSecrets+"?api-version=2017-01-01", ""); code != 400 || !strings.Contains(body, "InvalidApiVersionParameter") {
		t.Errorf("bad api-version: %d %s", code, body)
	}
}

func customRule() any {
	return map[string]any{
		"if":   map[string]any{"field": "type", "equals": "Microsoft.Kubernetes/connectedClusters"},
		"then": map[string]any{"effect": "[parameters('effect')]"},
	}
}

func customDef(rule any, params map[string]*armpolicy.ParameterDefinitionsValue) armpolicy.Definition {
	if params == nil {
		params = map[string]*armpolicy.ParameterDefinitionsValue{
			"effect": {Type: to.Ptr(armpolicy.ParameterTypeString), AllowedValues: []any{"Audit", "Disabled"}, DefaultValue: "Audit"},
		}
	}
	return armpolicy.Definition{Properties: &armpolicy.DefinitionProperties{
		DisplayName: to.Ptr("audit clusters"), Mode: to.Ptr("Indexed"), PolicyRule: rule, Parameters: params,
		Metadata: map[string]any{"category": "Custom Kubernetes"},
	}}
}

func TestCustomDefinitions(t *testing.T) {
	f := start(t, nil)
	d, err := f.defs.CreateOrUpdate(t.Context(), "audit-clusters", customDef(customRule(), nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	wantID := "/subscriptions/" + f.sub + "/providers/Microsoft.Authorization/policyDefinitions/audit-clusters"
	if *d.ID != wantID || *d.Properties.PolicyType != armpolicy.PolicyTypeCustom {
		t.Errorf("created %s %s", *d.ID, *d.Properties.PolicyType)
	}
	// A replace answers 201 as well; the SDK would fail on anything else.
	if _, err := f.defs.CreateOrUpdate(t.Context(), "audit-clusters", customDef(customRule(), nil), nil); err != nil {
		t.Fatal(err)
	}
	if g, err := f.defs.Get(t.Context(), "AUDIT-CLUSTERS", nil); err != nil || *g.Name != "audit-clusters" {
		t.Fatalf("get: %v", err)
	}
	filter := func(s string) *armpolicy.DefinitionsClientListOptions {
		return &armpolicy.DefinitionsClientListOptions{Filter: &s}
	}
	if got := f.listDefs(nil); len(got) != 4 || !slices.Contains(got, "audit-clusters") {
		t.Errorf("subscription list = %v, want built-ins and the custom one", got)
	}
	if got := f.listDefs(filter("atExactScope()")); !slices.Equal(got, []string{"audit-clusters"}) {
		t.Errorf("atExactScope() = %v", got)
	}
	if got := f.listDefs(filter("policyType eq 'BuiltIn'")); len(got) != 3 || slices.Contains(got, "audit-clusters") {
		t.Errorf("policyType BuiltIn = %v", got)
	}
	if got := f.listDefs(filter("policyType eq 'Custom'")); !slices.Equal(got, []string{"audit-clusters"}) {
		t.Errorf("policyType Custom = %v", got)
	}
	if got := f.listDefs(filter("category eq 'custom kubernetes'")); !slices.Equal(got, []string{"audit-clusters"}) {
		t.Errorf("category = %v", got)
	}
	if _, err := f.defs.Delete(t.Context(), "audit-clusters", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := f.defs.Delete(t.Context(), "audit-clusters", nil); err != nil {
		t.Fatalf("second delete (204): %v", err)
	}
	_, err = f.defs.Get(t.Context(), "audit-clusters", nil)
	wantErr(t, err, 404, "PolicyDefinitionNotFound")
}

func TestDefinitionValidation(t *testing.T) {
	f := start(t, nil)
	str := to.Ptr(armpolicy.ParameterTypeString)
	for _, tc := range []struct {
		name, defName string
		def           armpolicy.Definition
		status        int
		code          string
	}{
		{"bad name", "bad:name", customDef(customRule(), nil), 400, "InvalidPolicyDefinitionName"},
		{"trailing space", "name ", customDef(customRule(), nil), 400, "InvalidPolicyDefinitionName"},
		{"no policyRule", "x", customDef(nil, nil), 400, "InvalidPolicyRule"},
		{"rule without then", "x", customDef(map[string]any{"if": map[string]any{"field": "type", "equals": "a"}}, nil), 400, "InvalidPolicyRule"},
		{"rule not an object", "x", customDef("deny", nil), 400, "InvalidPolicyRule"},
		// Refused by the engine the evaluator runs: an operator Azure has not.
		{"unknown operator", "x", customDef(map[string]any{"if": map[string]any{"field": "type", "equalz": "a"}, "then": map[string]any{"effect": "audit"}}, nil), 400, "InvalidPolicyRule"},
		{"unknown alias", "x", customDef(map[string]any{"if": map[string]any{"field": "Microsoft.KubernetesConfiguration/sourceControlConfigurations/nope", "equals": "a"}, "then": map[string]any{"effect": "audit"}}, nil), 400, "InvalidPolicyAlias"},
		{"undefined parameter in rule", "x", customDef(customRule(), map[string]*armpolicy.ParameterDefinitionsValue{}), 400, "InvalidPolicyParameters"},
		{"default not allowed", "x", customDef(customRule(), map[string]*armpolicy.ParameterDefinitionsValue{
			"effect": {Type: str, AllowedValues: []any{"Audit"}, DefaultValue: "Deny"}}), 400, "PolicyParameterAllowedAndDefaultValuesMismatch"},
		{"bad parameter type", "x", customDef(customRule(), map[string]*armpolicy.ParameterDefinitionsValue{
			"effect": {Type: to.Ptr(armpolicy.ParameterType("Text"))}}), 400, "InvalidPolicyParameters"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.defs.CreateOrUpdate(t.Context(), tc.defName, tc.def, nil)
			wantErr(t, err, tc.status, tc.code)
		})
	}
	if got := f.listDefs(&armpolicy.DefinitionsClientListOptions{Filter: to.Ptr("atExactScope()")}); len(got) != 0 {
		t.Errorf("rejected definitions were stored: %v", got)
	}
}

func TestSetDefinitions(t *testing.T) {
	f := start(t, nil)
	if _, err := f.defs.CreateOrUpdate(t.Context(), "audit-clusters", customDef(customRule(), nil), nil); err != nil {
		t.Fatal(err)
	}
	customID := "/subscriptions/" + f.sub + "/providers/Microsoft.Authorization/policyDefinitions/audit-clusters"
	set := func(members ...*armpolicy.DefinitionReference) armpolicy.SetDefinition {
		return armpolicy.SetDefinition{Properties: &armpolicy.SetDefinitionProperties{DisplayName: to.Ptr("gitops"), PolicyDefinitions: members}}
	}
	ref := func(id string, params map[string]*armpolicy.ParameterValuesValue) *armpolicy.DefinitionReference {
		return &armpolicy.DefinitionReference{PolicyDefinitionID: &id, Parameters: params}
	}
	s, err := f.sets.CreateOrUpdate(t.Context(), "gitops", set(ref(builtInID+noSecrets, gitopsParams()), ref(customID, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Properties.PolicyDefinitions) != 2 || *s.Properties.PolicyDefinitions[0].PolicyDefinitionReferenceID == "" || *s.Properties.PolicyType != armpolicy.PolicyTypeCustom {
		t.Errorf("set = %+v", s.Properties)
	}
	if _, err := f.sets.CreateOrUpdate(t.Context(), "gitops", set(ref(customID, nil)), nil); err != nil {
		t.Fatalf("replace: %v", err)
	}
	if g, err := f.sets.Get(t.Context(), "gitops", nil); err != nil || len(g.Properties.PolicyDefinitions) != 1 {
		t.Fatalf("get: %v", err)
	}
	for _, tc := range []struct {
		name   string
		set    armpolicy.SetDefinition
		status int
		code   string
	}{
		{"unknown definition", set(ref(builtInID+"00000000-0000-0000-0000-000000000000", nil)), 404, "PolicyDefinitionNotFound"},
		{"unknown custom definition", set(ref("/subscriptions/"+f.sub+"/providers/Microsoft.Authorization/policyDefinitions/nope", nil)), 404, "PolicyDefinitionNotFound"},
		{"undefined member parameter", set(ref(customID, map[string]*armpolicy.ParameterValuesValue{"colour": {Value: "red"}})), 400, "UndefinedPolicyParameter"},
		{"no members", set(), 400, "InvalidCreatePolicySetDefinitionRequest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.sets.CreateOrUpdate(t.Context(), "bad", tc.set, nil)
			wantErr(t, err, tc.status, tc.code)
		})
	}
	var names []string
	for pg := f.sets.NewListPager(nil); pg.More(); {
		page, err := pg.NextPage(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range page.Value {
			names = append(names, *s.Name)
		}
	}
	if !slices.Equal(names, []string{"gitops"}) {
		t.Errorf("sets = %v", names)
	}
	if _, err := f.sets.Delete(t.Context(), "gitops", nil); err != nil {
		t.Fatal(err)
	}
	_, err = f.sets.Get(t.Context(), "gitops", nil)
	wantErr(t, err, 404, "PolicySetDefinitionNotFound")
}
