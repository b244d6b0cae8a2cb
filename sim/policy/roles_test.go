package policy_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/authorization/armauthorization/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armpolicy"

	"github.com/gitopsim/gitopsim/sim/policy"
)

const (
	principal = "11111111-2222-4333-8444-555555555555"
	other     = "99999999-2222-4333-8444-555555555555"
	raName1   = "0b0e8a5e-6f4d-4b7e-9c1a-000000000001"
	raName2   = "0b0e8a5e-6f4d-4b7e-9c1a-000000000002"
	raName3   = "0b0e8a5e-6f4d-4b7e-9c1a-000000000003"
)

func roleAssignment(sub, role, who string) armauthorization.RoleAssignmentCreateParameters {
	return armauthorization.RoleAssignmentCreateParameters{Properties: &armauthorization.RoleAssignmentProperties{
		RoleDefinitionID: to.Ptr("/subscriptions/" + sub + "/providers/Microsoft.Authorization/roleDefinitions/" + role),
		PrincipalID:      to.Ptr(who), PrincipalType: to.Ptr(armauthorization.PrincipalTypeServicePrincipal),
	}}
}

func TestRoleDefinitions(t *testing.T) {
	f := start(t, nil)
	sub := "/subscriptions/" + f.sub
	for role, name := range map[string]string{policy.RoleContributor: "Contributor", policy.RoleOwner: "Owner", policy.RoleReader: "Reader"} {
		d, err := f.roleDefs.Get(t.Context(), sub, role, nil)
		if err != nil {
			t.Fatal(err)
		}
		if *d.ID != sub+"/providers/Microsoft.Authorization/roleDefinitions/"+role || *d.Properties.RoleName != name || *d.Properties.RoleType != "BuiltInRole" {
			t.Errorf("%s: %s %s", role, *d.ID, *d.Properties.RoleName)
		}
		byID, err := f.roleDefs.GetByID(t.Context(), "/providers/Microsoft.Authorization/roleDefinitions/"+role, nil)
		if err != nil || *byID.Properties.RoleName != name {
			t.Errorf("tenant-level %s: %v", role, err)
		}
	}
	_, err := f.roleDefs.Get(t.Context(), sub, "00000000-0000-0000-0000-000000000000", nil)
	wantErr(t, err, 404, "RoleDefinitionDoesNotExist")
	var names []string
	for pg := f.roleDefs.NewListPager(sub, &armauthorization.RoleDefinitionsClientListOptions{Filter: to.Ptr("roleName eq 'Contributor'")}); pg.More(); {
		page, err := pg.NextPage(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range page.Value {
			names = append(names, *d.Name)
		}
	}
	if !slices.Equal(names, []string{policy.RoleContributor}) {
		t.Errorf("roleName filter = %v", names)
	}
}

func TestRoleAssignments(t *testing.T) {
	f := start(t, nil)
	sub := "/subscriptions/" + f.sub
	rg := f.group("rg1")
	cluster := rg + "/providers/Microsoft.Kubernetes/connectedClusters/c1"

	if f.p.HasRole(principal, policy.RoleContributor, rg) {
		t.Fatal("a role nobody granted")
	}
	ra, err := f.roles.Create(t.Context(), sub, raName1, roleAssignment(f.sub, policy.RoleContributor, principal), nil)
	if err != nil {
		t.Fatal(err)
	}
	if *ra.ID != sub+"/providers/Microsoft.Authorization/roleAssignments/"+raName1 || *ra.Properties.Scope != sub || *ra.Properties.PrincipalID != principal {
		t.Errorf("created %s %s", *ra.ID, *ra.Properties.Scope)
	}
	_, err = f.roles.Create(t.Context(), sub, raName2, roleAssignment(f.sub, policy.RoleContributor, principal), nil)
	wantErr(t, err, 409, "RoleAssignmentExists")
	if _, err := f.roles.Create(t.Context(), rg, raName2, roleAssignment(f.sub, policy.RoleReader, other), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := f.roles.Create(t.Context(), cluster, raName3, roleAssignment(f.sub, policy.RoleReader, principal), nil); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		who, role, scope string
		want             bool
	}{
		{principal, policy.RoleContributor, sub, true},
		{principal, policy.RoleContributor, rg, true},
		{principal, "/providers/Microsoft.Authorization/roleDefinitions/" + policy.RoleContributor, cluster + "/providers/Microsoft.KubernetesConfiguration/sourceControlConfigurations/cfg", true},
		{principal, policy.RoleOwner, rg, false},
		{principal, policy.RoleContributor, "/subscriptions/00000000-0000-0000-0000-000000000000", false},
		{principal, policy.RoleReader, cluster, true},
		{principal, policy.RoleReader, rg, false},
		{other, policy.RoleReader, cluster, true},
		{other, policy.RoleReader, sub, false},
		{other, policy.RoleContributor, rg, false},
	} {
		if got := f.p.HasRole(tc.who, tc.role, tc.scope); got != tc.want {
			t.Errorf("HasRole(%s, %s, %s) = %v", tc.who[:8], tc.role, tc.scope, got)
		}
	}

	for _, tc := range []struct {
		scope, filter string
		want          []string
	}{
		{sub, "", []string{raName1, raName2, raName3}},
		{sub, "atScope()", []string{raName1}},
		{sub, "principalId eq '" + principal + "'", []string{raName1, raName3}},
		{rg, "atScope()", []string{raName1, raName2}},
		{rg, "atScope() and assignedTo('" + other + "')", []string{raName2}},
		{cluster, "principalId eq '" + principal + "'", []string{raName1, raName3}},
	} {
		if got := f.listRoles(tc.scope, tc.filter); !slices.Equal(got, tc.want) {
			t.Errorf("list %s %q = %v, want %v", tc.scope[len(sub):], tc.filter, got, tc.want)
		}
	}
	if g, err := f.roles.GetByID(t.Context(), *ra.ID, nil); err != nil || *g.Name != raName1 {
		t.Errorf("GetByID: %v", err)
	}
	// An older api-version, as az and older SDKs send.
	if code, body := f.raw(http.MethodGet, *ra.ID+"?api-version=2015-07-01", ""); code != 200 || !strings.Contains(body, principal) {
		t.Errorf("2015-07-01: %d %s", code, body)
	}
	if _, err := f.roles.Delete(t.Context(), sub, raName1, nil); err != nil {
		t.Fatal(err)
	}
	if f.p.HasRole(principal, policy.RoleContributor, rg) {
		t.Error("role held after its assignment was deleted")
	}
	_, err = f.roles.Get(t.Context(), sub, raName1, nil)
	wantErr(t, err, 404, "RoleAssignmentNotFound")
}

func TestRoleAssignmentValidation(t *testing.T) {
	f := start(t, nil)
	sub := "/subscriptions/" + f.sub
	if _, err := f.roles.Create(t.Context(), sub, raName1, roleAssignment(f.sub, policy.RoleContributor, principal), nil); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, scope, ra string
		body            armauthorization.RoleAssignmentCreateParameters
		status          int
		code            string
	}{
		{"name not a GUID", sub, "contributor", roleAssignment(f.sub, policy.RoleContributor, other), 400, "InvalidRoleAssignmentId"},
		{"unknown role", sub, raName2, roleAssignment(f.sub, "00000000-0000-0000-0000-000000000000", other), 400, "RoleDefinitionDoesNotExist"},
		{"principal not a GUID", sub, raName2, roleAssignment(f.sub, policy.RoleContributor, "alice"), 400, "InvalidPrincipalId"},
		{"update of principal", sub, raName1, roleAssignment(f.sub, policy.RoleContributor, other), 400, "RoleAssignmentUpdateNotPermitted"},
		{"missing resource group", sub + "/resourceGroups/nope", raName2, roleAssignment(f.sub, policy.RoleContributor, other), 404, "ResourceGroupNotFound"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.roles.Create(t.Context(), tc.scope, tc.ra, tc.body, nil)
			wantErr(t, err, tc.status, tc.code)
		})
	}
	if got := f.listRoles(sub, ""); !slices.Equal(got, []string{raName1}) {
		t.Errorf("role assignments = %v", got)
	}
}

// TestRestart checks that every kind of resource survives a restart on
// the same state dir.
func TestRestart(t *testing.T) {
	f := start(t, nil)
	rg := f.group("rg1")
	sub := "/subscriptions/" + f.sub
	if _, err := f.defs.CreateOrUpdate(t.Context(), "audit-clusters", customDef(customRule(), nil), nil); err != nil {
		t.Fatal(err)
	}
	customID := sub + "/providers/Microsoft.Authorization/policyDefinitions/audit-clusters"
	if _, err := f.sets.CreateOrUpdate(t.Context(), "set", armpolicy.SetDefinition{Properties: &armpolicy.SetDefinitionProperties{
		PolicyDefinitions: []*armpolicy.DefinitionReference{{PolicyDefinitionID: &customID}}}}, nil); err != nil {
		t.Fatal(err)
	}
	a, err := f.assigns.Create(t.Context(), rg, "gitops", gitopsAssignment(gitopsParams()), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.roles.Create(t.Context(), rg, raName1, roleAssignment(f.sub, policy.RoleContributor, *a.Identity.PrincipalID), nil); err != nil {
		t.Fatal(err)
	}
	f.srv.Stop(t.Context())

	f = start(t, f)
	if _, err := f.defs.Get(t.Context(), "audit-clusters", nil); err != nil {
		t.Errorf("definition: %v", err)
	}
	if _, err := f.sets.Get(t.Context(), "set", nil); err != nil {
		t.Errorf("set definition: %v", err)
	}
	b, err := f.assigns.Get(t.Context(), rg, "gitops", nil)
	if err != nil {
		t.Fatalf("assignment: %v", err)
	}
	if *b.Identity.PrincipalID != *a.Identity.PrincipalID || *b.Properties.InstanceID != *a.Properties.InstanceID {
		t.Errorf("assignment identity changed across a restart")
	}
	if !f.p.HasRole(*a.Identity.PrincipalID, policy.RoleContributor, rg+"/providers/Microsoft.Kubernetes/connectedClusters/c1") {
		t.Error("role assignment lost in restart")
	}
	// Restored definitions still validate assignments.
	if _, err := f.assigns.Create(t.Context(), sub, "audit", armpolicy.Assignment{Properties: &armpolicy.AssignmentProperties{
		PolicyDefinitionID: &customID, Parameters: map[string]*armpolicy.ParameterValuesValue{"effect": {Value: "Deny"}}}}, nil); err == nil {
		t.Error("a value outside the restored definition's allowedValues was accepted")
	}
}
