package policy_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armpolicy"
)

func gitopsAssignment(params map[string]*armpolicy.ParameterValuesValue) armpolicy.Assignment {
	return armpolicy.Assignment{
		Location: to.Ptr("westeurope"),
		Identity: &armpolicy.Identity{Type: to.Ptr(armpolicy.ResourceIdentityTypeSystemAssigned)},
		Properties: &armpolicy.AssignmentProperties{
			PolicyDefinitionID: to.Ptr(builtInID + noSecrets), Parameters: params,
			DisplayName: to.Ptr("GitOps baseline"), NotScopes: []*string{},
			NonComplianceMessages: []*armpolicy.NonComplianceMessage{{Message: to.Ptr("clusters need the baseline")}},
		},
	}
}

func TestAssignments(t *testing.T) {
	f := start(t, nil)
	rg := f.group("rg1")
	subScope := "/subscriptions/" + f.sub
	a, err := f.assigns.Create(t.Context(), rg, "gitops-baseline", gitopsAssignment(gitopsParams()), nil)
	if err != nil {
		t.Fatal(err)
	}
	if *a.ID != rg+"/providers/Microsoft.Authorization/policyAssignments/gitops-baseline" || *a.Properties.Scope != rg ||
		*a.Identity.TenantID != f.srv.TenantID() || *a.Properties.EnforcementMode != armpolicy.EnforcementModeDefault ||
		*a.Properties.InstanceID == "" || *a.Location != "westeurope" {
		t.Errorf("created %s scope %s identity %+v mode %s", *a.ID, *a.Properties.Scope, a.Identity, *a.Properties.EnforcementMode)
	}
	principal := *a.Identity.PrincipalID
	if len(principal) != 36 {
		t.Errorf("principalId = %q", principal)
	}
	// Replace: 201 again, same identity and instance, new values.
	upd := gitopsAssignment(gitopsParams())
	upd.Properties.EnforcementMode = to.Ptr(armpolicy.EnforcementModeDoNotEnforce)
	b, err := f.assigns.Create(t.Context(), rg, "gitops-baseline", upd, nil)
	if err != nil {
		t.Fatal(err)
	}
	if *b.Identity.PrincipalID != principal || *b.Properties.InstanceID != *a.Properties.InstanceID || *b.Properties.EnforcementMode != armpolicy.EnforcementModeDoNotEnforce {
		t.Errorf("replace changed identity or instance: %s %s", *b.Identity.PrincipalID, *b.Properties.InstanceID)
	}
	got, err := f.assigns.Get(t.Context(), rg, "gitops-baseline", nil)
	if err != nil {
		t.Fatal(err)
	}
	if v := got.Properties.Parameters["repositoryUrl"]; v == nil || v.Value != "https://github.com/Azure/arc-k8s-demo" || len(got.Properties.NonComplianceMessages) != 1 {
		t.Errorf("stored parameters = %+v", got.Properties.Parameters)
	}
	if list := f.p.Assignments(); len(list) != 1 || list[0].PrincipalID != principal || list[0].EnforcementMode != "DoNotEnforce" {
		t.Errorf("Assignments() = %+v", list)
	}

	// PATCH: location is immutable; identity can be changed.
	_, err = f.assigns.Update(t.Context(), rg, "gitops-baseline", armpolicy.AssignmentUpdate{Location: to.Ptr("eastus")}, nil)
	wantErr(t, err, 400, "InvalidLocationUpdate")
	moved := gitopsAssignment(gitopsParams())
	moved.Location = to.Ptr("eastus")
	_, err = f.assigns.Create(t.Context(), rg, "gitops-baseline", moved, nil)
	wantErr(t, err, 400, "InvalidLocationUpdate")
	p, err := f.assigns.Update(t.Context(), rg, "gitops-baseline", armpolicy.AssignmentUpdate{
		Properties: &armpolicy.AssignmentUpdateProperties{Overrides: []*armpolicy.Override{{Kind: to.Ptr(armpolicy.OverrideKindPolicyEffect), Value: to.Ptr("AuditIfNotExists")}}},
	}, nil)
	if err != nil || len(p.Properties.Overrides) != 1 || *p.Identity.PrincipalID != principal {
		t.Fatalf("patch overrides: %v", err)
	}

	// A subscription-level audit assignment beside it.
	if _, err := f.defs.CreateOrUpdate(t.Context(), "audit-clusters", customDef(customRule(), nil), nil); err != nil {
		t.Fatal(err)
	}
	customID := subScope + "/providers/Microsoft.Authorization/policyDefinitions/audit-clusters"
	if _, err := f.assigns.Create(t.Context(), subScope, "audit", armpolicy.Assignment{Properties: &armpolicy.AssignmentProperties{PolicyDefinitionID: &customID}}, nil); err != nil {
		t.Fatal(err)
	}
	f.group("rg2")
	for _, tc := range []struct {
		filter string
		want   []string
	}{
		{"", []string{"audit", "gitops-baseline"}},
		{"atScope()", []string{"audit"}},
		{"atExactScope()", []string{"audit"}},
		{"policyDefinitionId eq '" + builtInID + noSecrets + "'", []string{"gitops-baseline"}},
	} {
		if got := f.listAssignments(tc.filter); !slices.Equal(got, tc.want) {
			t.Errorf("list %q = %v, want %v", tc.filter, got, tc.want)
		}
	}
	listRG := func(rg, filter string) []string {
		var opts *armpolicy.AssignmentsClientListForResourceGroupOptions
		if filter != "" {
			opts = &armpolicy.AssignmentsClientListForResourceGroupOptions{Filter: &filter}
		}
		var names []string
		for pg := f.assigns.NewListForResourceGroupPager(rg, opts); pg.More(); {
			page, err := pg.NextPage(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range page.Value {
				names = append(names, *a.Name)
			}
		}
		return names
	}
	if got := listRG("rg1", "atScope()"); !slices.Equal(got, []string{"audit", "gitops-baseline"}) {
		t.Errorf("rg1 atScope() = %v", got)
	}
	if got := listRG("rg1", "atExactScope()"); !slices.Equal(got, []string{"gitops-baseline"}) {
		t.Errorf("rg1 atExactScope() = %v", got)
	}
	if got := listRG("rg2", ""); !slices.Equal(got, []string{"audit"}) {
		t.Errorf("rg2 = %v", got)
	}
	if code, body := f.raw(http.MethodGet, subScope+"/resourceGroups/nope/providers/Microsoft.Authorization/policyAssignments?api-version=2025-03-01", ""); code != 404 || !strings.Contains(body, "ResourceGroupNotFound") {
		t.Errorf("list in a missing group: %d %s", code, body)
	}
	// az 2.45 (2021-06-01) reads the same assignment.
	if code, body := f.raw(http.MethodGet, rg+"/providers/Microsoft.Authorization/policyAssignments/gitops-baseline?api-version=2021-06-01", ""); code != 200 || !strings.Contains(body, principal) {
		t.Errorf("2021-06-01: %d %s", code, body)
	}

	del, err := f.assigns.Delete(t.Context(), rg, "gitops-baseline", nil)
	if err != nil || del.Name == nil || *del.Name != "gitops-baseline" {
		t.Fatalf("delete: %v %+v", err, del)
	}
	if code, _ := f.raw(http.MethodDelete, rg+"/providers/Microsoft.Authorization/policyAssignments/gitops-baseline?api-version=2025-03-01", ""); code != 204 {
		t.Errorf("second delete = %d, want 204", code)
	}
	_, err = f.assigns.Get(t.Context(), rg, "gitops-baseline", nil)
	wantErr(t, err, 404, "PolicyAssignmentNotFound")
}

func TestAssignmentValidation(t *testing.T) {
	f := start(t, nil)
	rg := f.group("rg1")
	modify := customDef(map[string]any{
		"if":   map[string]any{"field": "type", "equals": "Microsoft.Kubernetes/connectedClusters"},
		"then": map[string]any{"effect": "modify", "details": map[string]any{"roleDefinitionIds": []string{}, "operations": []any{}}},
	}, map[string]*armpolicy.ParameterDefinitionsValue{})
	if _, err := f.defs.CreateOrUpdate(t.Context(), "tag-clusters", modify, nil); err != nil {
		t.Fatal(err)
	}
	with := func(mut func(*armpolicy.Assignment)) armpolicy.Assignment {
		a := gitopsAssignment(gitopsParams())
		mut(&a)
		return a
	}
	params := func(mut func(map[string]*armpolicy.ParameterValuesValue)) func(*armpolicy.Assignment) {
		return func(a *armpolicy.Assignment) { mut(a.Properties.Parameters) }
	}
	for _, tc := range []struct {
		name, scope, assignment string
		a                       armpolicy.Assignment
		status                  int
		code                    string
	}{
		{"unknown definition", rg, "a", with(func(a *armpolicy.Assignment) {
			a.Properties.PolicyDefinitionID = to.Ptr(builtInID + "00000000-0000-0000-0000-000000000000")
		}), 404, "PolicyDefinitionNotFound"},
		{"unknown set definition", rg, "a", with(func(a *armpolicy.Assignment) {
			a.Properties.PolicyDefinitionID = to.Ptr("/subscriptions/" + f.sub + "/providers/Microsoft.Authorization/policySetDefinitions/nope")
		}), 404, "PolicySetDefinitionNotFound"},
		{"DINE without identity", rg, "a", with(func(a *armpolicy.Assignment) { a.Identity = nil }), 400, "ResourceIdentityRequired"},
		{"DINE with identity None", rg, "a", with(func(a *armpolicy.Assignment) {
			a.Identity = &armpolicy.Identity{Type: to.Ptr(armpolicy.ResourceIdentityTypeNone)}
		}), 400, "ResourceIdentityRequired"},
		{"audit effect still needs identity", rg, "a", with(func(a *armpolicy.Assignment) {
			a.Identity = nil
			a.Properties.Parameters["effect"] = &armpolicy.ParameterValuesValue{Value: "AuditIfNotExists"}
		}), 400, "ResourceIdentityRequired"},
		{"modify without identity", rg, "a", armpolicy.Assignment{Properties: &armpolicy.AssignmentProperties{
			PolicyDefinitionID: to.Ptr("/subscriptions/" + f.sub + "/providers/Microsoft.Authorization/policyDefinitions/tag-clusters")}}, 400, "ResourceIdentityRequired"},
		{"identity without location", rg, "a", with(func(a *armpolicy.Assignment) { a.Location = nil }), 400, "LocationRequired"},
		{"undefined parameter", rg, "a", with(params(func(p map[string]*armpolicy.ParameterValuesValue) {
			p["colour"] = &armpolicy.ParameterValuesValue{Value: "red"}
		})), 400, "UndefinedPolicyParameter"},
		{"missing required parameter", rg, "a", with(params(func(p map[string]*armpolicy.ParameterValuesValue) { delete(p, "repositoryUrl") })), 400, "MissingPolicyParameter"},
		{"value not allowed", rg, "a", with(params(func(p map[string]*armpolicy.ParameterValuesValue) {
			p["effect"] = &armpolicy.ParameterValuesValue{Value: "DEPLOYIFNOTEXISTS"}
		})), 400, "PolicyParameterValueNotAllowed"},
		{"wrong parameter type", rg, "a", with(params(func(p map[string]*armpolicy.ParameterValuesValue) {
			p["repositoryUrl"] = &armpolicy.ParameterValuesValue{Value: 42}
		})), 400, "InvalidPolicyParameters"},
		{"name with a dot", rg, "a.b", gitopsAssignment(gitopsParams()), 400, "InvalidPolicyAssignmentName"},
		{"name too long", rg, strings.Repeat("a", 65), gitopsAssignment(gitopsParams()), 400, "InvalidPolicyAssignmentName"},
		{"missing resource group", "/subscriptions/" + f.sub + "/resourceGroups/nope", "a", gitopsAssignment(gitopsParams()), 404, "ResourceGroupNotFound"},
		{"bad enforcement mode", rg, "a", with(func(a *armpolicy.Assignment) {
			a.Properties.EnforcementMode = to.Ptr(armpolicy.EnforcementMode("Sometimes"))
		}), 400, "InvalidRequestContent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.assigns.Create(t.Context(), tc.scope, tc.assignment, tc.a, nil)
			wantErr(t, err, tc.status, tc.code)
		})
	}
	if got := f.listAssignments(""); len(got) != 0 {
		t.Errorf("rejected assignments were stored: %v", got)
	}
	// The error text users search for.
	_, err := f.assigns.Create(t.Context(), rg, "a", with(func(a *armpolicy.Assignment) { a.Identity = nil }), nil)
	if err == nil || !strings.Contains(err.Error(), "Policy assignments must include a 'managed identity' when assigning 'DeployIfNotExists' policy definitions") {
		t.Errorf("ResourceIdentityRequired message: %v", err)
	}
}
