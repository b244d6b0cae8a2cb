package policy_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/policyinsights/armpolicyinsights"

	"github.com/gitopsim/gitopsim/sim/arm/armtest"
	"github.com/gitopsim/gitopsim/sim/policy"
	"github.com/gitopsim/gitopsim/sim/policy/engine"
)

// remediationFixture adds the remediations client to an insights
// fixture.
type remediationFixture struct {
	*insightsFixture
	rem *armpolicyinsights.RemediationsClient
}

func startRemediations(t *testing.T) *remediationFixture {
	t.Helper()
	f := startInsights(t)
	rem, err := armpolicyinsights.NewRemediationsClient(f.sub, f.az.Credential, f.az.Options)
	if err != nil {
		t.Fatal(err)
	}
	return &remediationFixture{insightsFixture: f, rem: rem}
}

// clusterAt creates a connected cluster in a location.
func (f *insightsFixture) clusterAt(rg, name, location string) string {
	f.t.Helper()
	id := "/subscriptions/" + f.sub + "/resourceGroups/" + rg + "/providers/Microsoft.Kubernetes/connectedClusters/" + name
	body := fmt.Sprintf(`{"location":%q,"identity":{"type":"SystemAssigned"},"properties":{"agentPublicKeyCertificate":%q}}`, location, armtest.AgentKey())
	if code, out := f.raw(http.MethodPut, id+"?api-version=2021-10-01", body); code >= 300 {
		f.t.Fatalf("PUT cluster: %d %s", code, out)
	}
	return id
}

// grant gives an assignment's identity Contributor on the subscription.
func (f *insightsFixture) grant(assignment string) {
	f.t.Helper()
	code, out := f.raw(http.MethodGet, assignment+"?api-version=2025-03-01", "")
	if code != http.StatusOK {
		f.t.Fatalf("GET assignment: %d %s", code, out)
	}
	var a struct{ Identity struct{ PrincipalID string } }
	if err := json.Unmarshal([]byte(out), &a); err != nil || a.Identity.PrincipalID == "" {
		f.t.Fatalf("assignment without identity: %s", out)
	}
	body := fmt.Sprintf(`{"properties":{"roleDefinitionId":"/subscriptions/%s/providers/Microsoft.Authorization/roleDefinitions/%s","principalId":%q,"principalType":"ServicePrincipal"}}`,
		f.sub, policy.RoleContributor, a.Identity.PrincipalID)
	path := "/subscriptions/" + f.sub + "/providers/Microsoft.Authorization/roleAssignments/0b5c7b61-1d57-4c8e-9a3e-" + fmt.Sprintf("%012x", len(f.p.Assignments())) + "?api-version=2022-04-01"
	if code, out := f.raw(http.MethodPut, path, body); code != http.StatusCreated {
		f.t.Fatalf("PUT role assignment: %d %s", code, out)
	}
}

func (f *remediationFixture) create(name string, props armpolicyinsights.RemediationProperties) armpolicyinsights.Remediation {
	f.t.Helper()
	res, err := f.rem.CreateOrUpdateAtSubscription(f.t.Context(), name, armpolicyinsights.Remediation{Properties: &props}, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	return res.Remediation
}

func (f *remediationFixture) get(name string) *armpolicyinsights.RemediationProperties {
	f.t.Helper()
	res, err := f.rem.GetAtSubscription(f.t.Context(), name, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	return res.Properties
}

// status is a task's state and counters, "Succeeded 5/5 0".
func status(p *armpolicyinsights.RemediationProperties) string {
	ds := p.DeploymentStatus
	return fmt.Sprintf("%s %d/%d %d", *p.ProvisioningState, *ds.SuccessfulDeployments, *ds.TotalDeployments, *ds.FailedDeployments)
}

func (f *remediationFixture) deployments(name string) []*armpolicyinsights.RemediationDeployment {
	f.t.Helper()
	var out []*armpolicyinsights.RemediationDeployment
	for pg := f.rem.NewListDeploymentsAtSubscriptionPager(name, nil); pg.More(); {
		page, err := pg.NextPage(f.t.Context())
		if err != nil {
			f.t.Fatal(err)
		}
		out = append(out, page.Value...)
	}
	return out
}

func (f *insightsFixture) compliance(assignment string) map[string]string {
	out := map[string]string{}
	for _, s := range f.p.States() {
		if strings.EqualFold(s.PolicyAssignmentID, assignment) {
			out[lastSeg(s.ResourceID)] = string(s.ComplianceState)
		}
	}
	return out
}

// TestRemediationWithSDK runs remediation tasks with the unmodified
// armpolicyinsights client: five existing clusters stay NonCompliant after
// the assignment; a task without the role fails every deployment with
// the documented messages; with the role a task deploys in batches of
// parallelDeployments on the clock, refuses a conflicting task, and the
// clusters turn Compliant at their next evaluation.
func TestRemediationWithSDK(t *testing.T) {
	f := startRemediations(t)
	ctx := t.Context()
	f.group("rg1")
	f.group("rg2")
	for i := range 5 {
		f.cluster([]string{"rg1", "rg2"}[i%2], fmt.Sprintf("c%d", i+1))
	}
	assignment := f.assign("/subscriptions/"+f.sub, "baseline")
	f.clk.Advance(5 * time.Minute)
	for c, s := range f.compliance(assignment) {
		if s != "NonCompliant" {
			t.Fatalf("%s is %s after the assignment took effect, want NonCompliant", c, s)
		}
	}
	if d := f.p.Deployments(); len(d) != 0 {
		t.Fatalf("the assignment deployed to existing clusters: %+v", d)
	}

	// Without the role every deployment fails.
	created := f.create("no-role", armpolicyinsights.RemediationProperties{PolicyAssignmentID: to.Ptr(assignment)})
	want := "/subscriptions/" + f.sub + "/providers/microsoft.policyinsights/remediations/no-role"
	if *created.ID != want || *created.Type != "Microsoft.PolicyInsights/remediations" || *created.Properties.ProvisioningState != "Accepted" ||
		*created.Properties.ResourceDiscoveryMode != armpolicyinsights.ResourceDiscoveryModeExistingNonCompliant ||
		created.Properties.ResourceCount != nil || created.Properties.ParallelDeployments != nil || created.Properties.CreatedOn == nil ||
		created.SystemData == nil || *created.Properties.CorrelationID == "" {
		t.Fatalf("created: %s", mustJSON(created))
	}
	f.clk.Advance(2 * time.Minute)
	if got := status(f.get("no-role")); got != "Evaluating 0/5 0" {
		t.Fatalf("after the start delay: %s", got)
	}
	f.clk.Advance(time.Minute)
	p := f.get("no-role")
	if got := status(p); got != "Failed 0/5 5" || !strings.Contains(*p.StatusMessage, "does not have the necessary permissions to create deployment") {
		t.Fatalf("without the role: %s %q", got, *p.StatusMessage)
	}
	for _, d := range f.deployments("no-role") {
		if *d.Status != "Failed" || d.Error == nil || *d.Error.Code != "AuthorizationFailed" || !strings.Contains(*d.Error.Message, "does not have authorization to perform action") {
			t.Errorf("deployment without the role: %s", mustJSON(d))
		}
	}

	// With the role: batches of two, a minute each.
	f.grant(assignment)
	f.create("fix", armpolicyinsights.RemediationProperties{PolicyAssignmentID: to.Ptr(assignment), ParallelDeployments: to.Ptr[int32](2)})
	_, err := f.rem.CreateOrUpdateAtResourceGroup(ctx, "rg1", "overlap", armpolicyinsights.Remediation{Properties: &armpolicyinsights.RemediationProperties{PolicyAssignmentID: to.Ptr(assignment)}}, nil)
	wantErr(t, err, http.StatusBadRequest, "InvalidCreateRemediationRequest")
	var seen []string
	for range 5 {
		f.clk.Advance(time.Minute)
		seen = append(seen, status(f.get("fix")))
	}
	if want := []string{"Accepted 0/0 0", "Evaluating 0/5 0", "Evaluating 2/5 0", "Evaluating 4/5 0", "Succeeded 5/5 0"}; !slices.Equal(seen, want) {
		t.Fatalf("progress by minute: %v, want %v", seen, want)
	}
	deps := f.deployments("fix") // pages of two: a POST, then GETs
	if len(deps) != 5 {
		t.Fatalf("%d deployments listed, want 5", len(deps))
	}
	for _, d := range deps {
		if *d.Status != "Succeeded" || !strings.Contains(*d.DeploymentID, "/providers/microsoft.resources/deployments/PolicyDeployment_") || *d.ResourceLocation != "westeurope" {
			t.Errorf("deployment: %s", mustJSON(d))
		}
	}
	for c, s := range f.compliance(assignment) {
		if s != "NonCompliant" {
			t.Errorf("%s is %s before its next evaluation", c, s)
		}
	}
	f.clk.Advance(15 * time.Minute)
	for c, s := range f.compliance(assignment) {
		if s != "Compliant" {
			t.Errorf("%s is %s 15 minutes after its remediation, want Compliant", c, s)
		}
	}

	// Lists, filters, paging, delete.
	filter := "PolicyAssignmentId eq '" + strings.ToUpper(assignment) + "' AND PolicyDefinitionReferenceId eq ''"
	var names []string
	for pg := f.rem.NewListForSubscriptionPager(&armpolicyinsights.RemediationsClientListForSubscriptionOptions{Filter: &filter}); pg.More(); {
		page, err := pg.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page.Value {
			names = append(names, *r.Name)
		}
	}
	if !slices.Equal(names, []string{"fix", "no-role"}) {
		t.Errorf("listed %v", names)
	}
	if _, err := f.rem.CancelAtSubscription(ctx, "fix", nil); err == nil {
		t.Error("a finished task was canceled")
	}
	del, err := f.rem.DeleteAtSubscription(ctx, "no-role", nil)
	if err != nil || *del.Name != "no-role" {
		t.Fatalf("delete: %v %v", del, err)
	}
	if code, _ := f.raw(http.MethodDelete, "/subscriptions/"+f.sub+"/providers/Microsoft.PolicyInsights/remediations/no-role?api-version=2024-10-01", ""); code != http.StatusNoContent {
		t.Errorf("deleting again: %d, want 204", code)
	}
	_, err = f.rem.GetAtSubscription(ctx, "no-role", nil)
	wantErr(t, err, http.StatusNotFound, "RemediationNotFound")

	// Automatic and remediation deployments are told apart.
	for _, d := range f.p.Deployments() {
		if !strings.HasSuffix(d.Remediation, "/remediations/no-role") && !strings.HasSuffix(d.Remediation, "/remediations/fix") {
			t.Errorf("deployment outside a task: %+v", d)
		}
	}
}

// TestRemediationDiscovery covers how a task finds its resources: without
// an evaluation ExistingNonCompliant fails with Azure's message and
// ReEvaluateCompliance evaluates first; location filters and resourceCount
// narrow the task; cancel stops it between batches; settings are
// validated.
func TestRemediationDiscovery(t *testing.T) {
	f := startRemediations(t)
	ctx := t.Context()
	f.group("rg1")
	f.clusterAt("rg1", "east1", "eastus")
	f.clusterAt("rg1", "east2", "East US")
	f.clusterAt("rg1", "west1", "westeurope")
	f.clusterAt("rg1", "east3", "eastus")
	assignment := f.assign("/subscriptions/"+f.sub, "baseline")
	f.grant(assignment)

	// Before the assignment has been evaluated.
	f.create("early", armpolicyinsights.RemediationProperties{PolicyAssignmentID: to.Ptr(assignment)})
	f.clk.Advance(2 * time.Minute)
	if p := f.get("early"); *p.ProvisioningState != "Failed" || !strings.Contains(*p.StatusMessage, "No policy evaluation result was found") {
		t.Fatalf("early task: %s %q", *p.ProvisioningState, *p.StatusMessage)
	}
	f.create("reevaluate", armpolicyinsights.RemediationProperties{PolicyAssignmentID: to.Ptr(assignment),
		ResourceDiscoveryMode: to.Ptr(armpolicyinsights.ResourceDiscoveryModeReEvaluateCompliance),
		Filters:               &armpolicyinsights.RemediationFilters{Locations: []*string{to.Ptr("eastus")}}, ResourceCount: to.Ptr[int32](2)})
	f.clk.Advance(3 * time.Minute)
	if got := status(f.get("reevaluate")); got != "Succeeded 2/2 0" {
		t.Fatalf("re-evaluating task: %s", got)
	}
	var remediated []string
	for _, d := range f.deployments("reevaluate") {
		remediated = append(remediated, lastSeg(*d.RemediatedResourceID))
	}
	slices.Sort(remediated)
	if !slices.Equal(remediated, []string{"east1", "east2"}) && !slices.Equal(remediated, []string{"east1", "east3"}) && !slices.Equal(remediated, []string{"east2", "east3"}) {
		t.Errorf("remediated %v: want two of the eastus clusters", remediated)
	}

	// Cancel: one deployment a minute; canceled after the first.
	f.create("slow", armpolicyinsights.RemediationProperties{PolicyAssignmentID: to.Ptr(assignment), ParallelDeployments: to.Ptr[int32](1)})
	f.clk.Advance(3 * time.Minute) // discovery, first batch done, second started
	c, err := f.rem.CancelAtSubscription(ctx, "slow", nil)
	if err != nil || *c.Properties.ProvisioningState != "Cancelling" {
		t.Fatalf("cancel: %v %v", c, err)
	}
	f.clk.Advance(time.Minute)
	// Four targets: the two remediated clusters are NonCompliant until
	// their next evaluation.
	if got := status(f.get("slow")); got != "Canceled 2/4 0" {
		t.Errorf("canceled task: %s", got)
	}

	for _, tc := range []struct {
		name  string
		props armpolicyinsights.RemediationProperties
		code  string
	}{
		{"parallel", armpolicyinsights.RemediationProperties{PolicyAssignmentID: to.Ptr(assignment), ParallelDeployments: to.Ptr[int32](31)}, "InvalidCreateRemediationRequest"},
		{"count", armpolicyinsights.RemediationProperties{PolicyAssignmentID: to.Ptr(assignment), ResourceCount: to.Ptr[int32](50001)}, "InvalidCreateRemediationRequest"},
		{"threshold", armpolicyinsights.RemediationProperties{PolicyAssignmentID: to.Ptr(assignment), FailureThreshold: &armpolicyinsights.RemediationPropertiesFailureThreshold{Percentage: to.Ptr[float32](1.5)}}, "InvalidCreateRemediationRequest"},
		{"ids with reevaluate", armpolicyinsights.RemediationProperties{PolicyAssignmentID: to.Ptr(assignment),
			ResourceDiscoveryMode: to.Ptr(armpolicyinsights.ResourceDiscoveryModeReEvaluateCompliance),
			Filters:               &armpolicyinsights.RemediationFilters{ResourceIDs: []*string{to.Ptr("/x")}}}, "InvalidCreateRemediationRequest"},
		{"reference on a plain assignment", armpolicyinsights.RemediationProperties{PolicyAssignmentID: to.Ptr(assignment), PolicyDefinitionReferenceID: to.Ptr("x")}, "InvalidCreateRemediationRequest"},
	} {
		_, err := f.rem.CreateOrUpdateAtSubscription(ctx, "bad", armpolicyinsights.Remediation{Properties: &tc.props}, nil)
		wantErr(t, err, http.StatusBadRequest, tc.code)
	}
	_, err = f.rem.CreateOrUpdateAtSubscription(ctx, "bad", armpolicyinsights.Remediation{Properties: &armpolicyinsights.RemediationProperties{
		PolicyAssignmentID: to.Ptr("/subscriptions/" + f.sub + "/providers/Microsoft.Authorization/policyAssignments/nope")}}, nil)
	wantErr(t, err, http.StatusNotFound, "PolicyAssignmentNotFound")
	if code, out := f.raw(http.MethodPut, "/subscriptions/"+f.sub+"/providers/Microsoft.PolicyInsights/remediations/bad?api-version=2024-10-01", `{"properties":`); code != http.StatusBadRequest || !strings.Contains(out, "InvalidRequestContent") {
		t.Errorf("malformed body: %d %s", code, out)
	}
	if _, err := f.rem.GetAtSubscription(ctx, "bad", nil); err == nil {
		t.Error("a refused task was stored")
	}
}

// TestRemediationSurvivesRestart stops the server in the middle of a task
// and starts it again on the same state: the task goes on where it was
// and finishes.
func TestRemediationSurvivesRestart(t *testing.T) {
	f := startRemediations(t)
	f.group("rg1")
	for i := range 3 {
		f.cluster("rg1", fmt.Sprintf("c%d", i+1))
	}
	assignment := f.assign("/subscriptions/"+f.sub, "baseline")
	f.grant(assignment)
	f.clk.Advance(5 * time.Minute)
	f.create("fix", armpolicyinsights.RemediationProperties{PolicyAssignmentID: to.Ptr(assignment), ParallelDeployments: to.Ptr[int32](1)})
	f.clk.Advance(3 * time.Minute) // one done, one running
	g := f.restart()
	f.clk.Advance(0)
	for range 3 {
		f.clk.Advance(time.Minute)
	}
	rems := g.p.Remediations()
	if len(rems) != 1 || rems[0].ProvisioningState != policy.RemediationSucceeded || rems[0].Successful != 3 || rems[0].Total != 3 {
		t.Fatalf("after the restart: %+v", rems)
	}
}

// TestInitiativeEvaluation assigns an initiative holding the no-secrets
// built-in twice (two configurations, repositories from the set's
// parameters): each member is evaluated and reported with its reference
// id, and a remediation must name the member it remediates.
func TestInitiativeEvaluation(t *testing.T) {
	f := startRemediations(t)
	ctx := t.Context()
	f.group("rg1")
	c1 := f.cluster("rg1", "c1")
	member := func(ref, name string) map[string]any {
		return map[string]any{
			"policyDefinitionId": builtInID + noSecrets, "policyDefinitionReferenceId": ref,
			"parameters": map[string]any{
				"configurationResourceName": map[string]any{"value": name}, "operatorInstanceName": map[string]any{"value": name},
				"operatorNamespace": map[string]any{"value": name}, "operatorScope": map[string]any{"value": "cluster"},
				"repositoryUrl": map[string]any{"value": "[parameters('" + ref + "Repo')]"}, "enableHelmOperator": map[string]any{"value": "false"},
			},
		}
	}
	set, _ := json.Marshal(map[string]any{"properties": map[string]any{
		"displayName": "GitOps baseline and apps",
		"parameters": map[string]any{
			"baselineRepo": map[string]any{"type": "String"},
			"appsRepo":     map[string]any{"type": "String", "defaultValue": "https://127.0.0.1/team/apps.git"},
		},
		"policyDefinitions": []any{member("baseline", "cluster-config"), member("apps", "apps")},
	}})
	setID := "/subscriptions/" + f.sub + "/providers/Microsoft.Authorization/policySetDefinitions/gitops"
	if code, out := f.raw(http.MethodPut, setID+"?api-version=2025-03-01", string(set)); code != http.StatusCreated {
		t.Fatalf("PUT set: %d %s", code, out)
	}
	assignment := "/subscriptions/" + f.sub + "/providers/Microsoft.Authorization/policyAssignments/initiative"
	body, _ := json.Marshal(map[string]any{
		"location": "westeurope", "identity": map[string]string{"type": "SystemAssigned"},
		"properties": map[string]any{"policyDefinitionId": setID, "parameters": map[string]any{"baselineRepo": map[string]any{"value": baselineRepo}}},
	})
	if code, out := f.raw(http.MethodPut, assignment+"?api-version=2025-03-01", string(body)); code != http.StatusCreated {
		t.Fatalf("PUT assignment: %d %s", code, out)
	}
	f.grant(assignment)
	f.configure(c1) // the baseline member's configuration, by hand
	f.clk.Advance(5 * time.Minute)
	got := map[string]string{}
	for _, s := range f.p.States() {
		if !strings.EqualFold(s.PolicySetDefinitionID, setID) {
			t.Errorf("state without its initiative: %+v", s)
		}
		got[s.PolicyDefinitionReferenceID] = string(s.ComplianceState)
	}
	if want := map[string]string{"baseline": "Compliant", "apps": "NonCompliant"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("member states %v, want %v", got, want)
	}
	recs := f.subStates(&armpolicyinsights.PolicyStatesClientListQueryResultsForSubscriptionOptions{Filter: to.Ptr("PolicyDefinitionReferenceId eq 'apps'")})
	if len(recs) != 1 || *recs[0].PolicySetDefinitionName != "gitops" || *recs[0].ComplianceState != "NonCompliant" {
		t.Fatalf("records of the apps member: %s", mustJSON(recs))
	}

	_, err := f.rem.CreateOrUpdateAtSubscription(ctx, "apps", armpolicyinsights.Remediation{Properties: &armpolicyinsights.RemediationProperties{PolicyAssignmentID: to.Ptr(assignment)}}, nil)
	wantErr(t, err, http.StatusBadRequest, "InvalidCreateRemediationRequest")
	f.create("apps", armpolicyinsights.RemediationProperties{PolicyAssignmentID: to.Ptr(assignment), PolicyDefinitionReferenceID: to.Ptr("apps")})
	f.clk.Advance(3 * time.Minute)
	if got := status(f.get("apps")); got != "Succeeded 1/1 0" {
		t.Fatalf("apps remediation: %s", got)
	}
	code, out := f.raw(http.MethodGet, c1+"/providers/Microsoft.KubernetesConfiguration/sourceControlConfigurations/apps?api-version=2022-03-01", "")
	if code != http.StatusOK || !strings.Contains(out, "https://127.0.0.1/team/apps.git") {
		t.Fatalf("the apps configuration: %d %s", code, out)
	}
	f.clk.Advance(15 * time.Minute)
	for _, s := range f.p.States() {
		if s.ComplianceState != engine.Compliant {
			t.Errorf("%s is %s after the remediation", s.PolicyDefinitionReferenceID, s.ComplianceState)
		}
	}
}

// TestRemediationFailureThresholdAndFilters: a task stops Failed once its
// failures exceed failureThreshold of the deployments it plans, and a
// resourceIds filter remediates only the resources it names.
func TestRemediationFailureThresholdAndFilters(t *testing.T) {
	f := startRemediations(t)
	f.group("rg1")
	var ids []string
	for i := range 4 {
		ids = append(ids, f.cluster("rg1", fmt.Sprintf("c%d", i+1)))
	}
	assignment := f.assign("/subscriptions/"+f.sub, "baseline")
	f.clk.Advance(5 * time.Minute)

	// No role: every deployment fails; at 2 of 4 (50 %) the 30 % threshold
	// is passed and the task stops with two deployments never made.
	f.create("capped", armpolicyinsights.RemediationProperties{PolicyAssignmentID: to.Ptr(assignment), ParallelDeployments: to.Ptr[int32](1),
		FailureThreshold: &armpolicyinsights.RemediationPropertiesFailureThreshold{Percentage: to.Ptr[float32](0.3)}})
	f.clk.Advance(10 * time.Minute)
	p := f.get("capped")
	if got := status(p); got != "Failed 0/4 2" || !strings.Contains(*p.StatusMessage, "failure threshold") {
		t.Fatalf("capped task: %s %q", got, *p.StatusMessage)
	}
	if n := len(f.deployments("capped")); n != 2 {
		t.Errorf("%d deployments listed, want the 2 made before the stop", n)
	}

	f.grant(assignment)
	f.create("one", armpolicyinsights.RemediationProperties{PolicyAssignmentID: to.Ptr(assignment),
		Filters: &armpolicyinsights.RemediationFilters{ResourceIDs: []*string{to.Ptr(strings.ToUpper(ids[2]))}}})
	f.clk.Advance(3 * time.Minute)
	if got := status(f.get("one")); got != "Succeeded 1/1 0" {
		t.Fatalf("filtered task: %s", got)
	}
	if d := f.deployments("one"); len(d) != 1 || !strings.EqualFold(*d[0].RemediatedResourceID, ids[2]) {
		t.Errorf("filtered task deployed to %s", mustJSON(d))
	}
}

// TestRemediationDeletedAndRecreated deletes a running task and creates
// one of the same name: the old task's pending steps neither deploy nor
// touch the new task, which runs on its own.
func TestRemediationDeletedAndRecreated(t *testing.T) {
	f := startRemediations(t)
	f.group("rg1")
	for i := range 3 {
		f.cluster("rg1", fmt.Sprintf("c%d", i+1))
	}
	assignment := f.assign("/subscriptions/"+f.sub, "baseline")
	f.grant(assignment)
	f.clk.Advance(5 * time.Minute)
	f.create("fix", armpolicyinsights.RemediationProperties{PolicyAssignmentID: to.Ptr(assignment), ParallelDeployments: to.Ptr[int32](1)})
	f.clk.Advance(3 * time.Minute) // one deployed, the second running
	if _, err := f.rem.DeleteAtSubscription(t.Context(), "fix", nil); err != nil {
		t.Fatal(err)
	}
	f.create("fix", armpolicyinsights.RemediationProperties{PolicyAssignmentID: to.Ptr(assignment), ParallelDeployments: to.Ptr[int32](1)})
	var seen []string
	for range 4 {
		f.clk.Advance(time.Minute)
		seen = append(seen, status(f.get("fix")))
	}
	// The cluster the old task deployed to is evaluated Compliant 10
	// minutes after its creation, before the new task discovers; the
	// other two get one deployment a minute. (Without the task's identity
	// check, the old task's pending batch ends the new task at once.)
	if want := []string{"Accepted 0/0 0", "Evaluating 0/2 0", "Evaluating 1/2 0", "Succeeded 2/2 0"}; !slices.Equal(seen, want) {
		t.Fatalf("the new task by minute: %v, want %v", seen, want)
	}
	if n := len(f.p.Deployments()); n != 3 {
		t.Errorf("%d deployments, want 1 by the deleted task and 2 by the new one", n)
	}
}

// TestRemediationRestartBeforeDiscovery restarts the server during a
// task's start delay, with same-instant tasks on workers as the real
// clock runs them: the task evaluates the assignment again before it
// discovers, instead of finding no evaluation.
func TestRemediationRestartBeforeDiscovery(t *testing.T) {
	f := startRemediations(t)
	f.clk.SetWorkers(4)
	f.group("rg1")
	for i := range 3 {
		f.cluster("rg1", fmt.Sprintf("c%d", i+1))
	}
	assignment := f.assign("/subscriptions/"+f.sub, "baseline")
	f.grant(assignment)
	f.clk.Advance(5 * time.Minute)
	f.create("fix", armpolicyinsights.RemediationProperties{PolicyAssignmentID: to.Ptr(assignment)})
	f.clk.Advance(time.Minute)
	g := f.restart()
	f.clk.Advance(2 * time.Minute)
	rems := g.p.Remediations()
	if len(rems) != 1 || rems[0].ProvisioningState != policy.RemediationSucceeded || rems[0].Successful != 3 {
		t.Fatalf("after a restart before discovery: %+v", rems)
	}
}

// restart stops the server and starts it again on the same state
// directory and clock.
func (f *remediationFixture) restart() *fixture {
	f.t.Helper()
	f.srv.Stop(f.t.Context())
	f.p.Stop()
	g := start(f.t, f.fixture)
	if err := g.p.Start(f.t.Context()); err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(g.p.Stop)
	return g
}
