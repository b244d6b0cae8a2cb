package policy_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gitopsim/gitopsim/sim/arm/armtest"
	"github.com/gitopsim/gitopsim/sim/policy"
	"github.com/gitopsim/gitopsim/sim/policy/engine"
)

// TestGitOpsPolicyOnTheClock follows the no-secrets GitOps built-in through
// Azure Policy's documented timing: an assignment evaluates existing
// clusters after 5 minutes and deploys nothing to them; a cluster created
// later is deployed to 10 minutes after its creation, which fails while
// the assignment's identity lacks Contributor; with the role the
// configuration appears and the cluster turns Compliant at its next
// evaluation.
func TestGitOpsPolicyOnTheClock(t *testing.T) {
	f := start(t, nil)
	if err := f.p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.p.Stop)
	f.group("rg1")
	cluster := func(name string) string {
		t.Helper()
		id := "/subscriptions/" + f.sub + "/resourceGroups/rg1/providers/Microsoft.Kubernetes/connectedClusters/" + name
		body := fmt.Sprintf(`{"location":"westeurope","identity":{"type":"SystemAssigned"},"properties":{"agentPublicKeyCertificate":%q}}`, armtest.AgentKey())
		if code, out := f.raw(http.MethodPut, id+"?api-version=2021-10-01", body); code >= 300 {
			t.Fatalf("PUT cluster: %d %s", code, out)
		}
		return id
	}
	state := func(clusterID string) engine.ComplianceState {
		for _, s := range f.p.States() {
			if strings.EqualFold(s.ResourceID, clusterID) {
				return s.ComplianceState
			}
		}
		return ""
	}
	deployments := func(clusterID string) []policy.Deployment {
		var out []policy.Deployment
		for _, d := range f.p.Deployments() {
			if strings.EqualFold(d.ResourceID, clusterID) {
				out = append(out, d)
			}
		}
		return out
	}
	old := cluster("old")

	assignment := "/subscriptions/" + f.sub + "/providers/Microsoft.Authorization/policyAssignments/gitops-baseline"
	params := map[string]any{
		"configurationResourceName": "cluster-config", "operatorInstanceName": "cluster-config",
		"operatorNamespace": "cluster-config", "operatorScope": "cluster",
		"repositoryUrl": "https://127.0.0.1/team/baseline.git", "enableHelmOperator": "false",
	}
	values := map[string]any{}
	for k, v := range params {
		values[k] = map[string]any{"value": v}
	}
	body, _ := json.Marshal(map[string]any{
		"location": "westeurope", "identity": map[string]string{"type": "SystemAssigned"},
		"properties": map[string]any{"policyDefinitionId": builtInID + noSecrets, "parameters": values},
	})
	code, out := f.raw(http.MethodPut, assignment+"?api-version=2025-03-01", string(body))
	if code != http.StatusCreated {
		t.Fatalf("PUT assignment: %d %s", code, out)
	}
	var created struct{ Identity struct{ PrincipalID string } }
	_ = json.Unmarshal([]byte(out), &created)

	f.clk.Advance(4 * time.Minute)
	if s := state(old); s != "" {
		t.Errorf("4 minutes after the assignment the existing cluster is already %s", s)
	}
	f.clk.Advance(time.Minute)
	if s := state(old); s != engine.NonCompliant {
		t.Errorf("5 minutes after the assignment: %q, want NonCompliant", s)
	}
	// Its creation event (10 minutes) predates the assignment's effect.
	f.clk.Advance(6 * time.Minute)
	if d := deployments(old); len(d) != 0 {
		t.Errorf("an existing cluster got deployments without a remediation: %+v", d)
	}

	denied := cluster("denied")
	f.clk.Advance(10 * time.Minute)
	d := deployments(denied)
	if len(d) != 1 || !strings.Contains(d[0].Error, "does not have authorization") {
		t.Fatalf("deployment without Contributor: %+v", d)
	}
	if code, _ := f.raw(http.MethodGet, denied+"/providers/Microsoft.KubernetesConfiguration/sourceControlConfigurations/cluster-config?api-version=2022-03-01", ""); code != http.StatusNotFound {
		t.Errorf("a configuration was deployed without the role: %d", code)
	}

	role := fmt.Sprintf(`{"properties":{"roleDefinitionId":"/subscriptions/%s/providers/Microsoft.Authorization/roleDefinitions/%s","principalId":%q,"principalType":"ServicePrincipal"}}`,
		f.sub, policy.RoleContributor, created.Identity.PrincipalID)
	if code, out := f.raw(http.MethodPut, "/subscriptions/"+f.sub+"/providers/Microsoft.Authorization/roleAssignments/6f1b0a0e-2f0a-4c3e-9a55-0c6c5a1e0001?api-version=2022-04-01", role); code != http.StatusCreated {
		t.Fatalf("role assignment: %d %s", code, out)
	}
	granted := cluster("granted")
	f.clk.Advance(9 * time.Minute)
	if d := deployments(granted); len(d) != 0 {
		t.Errorf("deployed before the 10-minute delay: %+v", d)
	}
	f.clk.Advance(time.Minute)
	if d := deployments(granted); len(d) != 1 || d[0].Error != "" || len(d[0].DeployedIDs) != 1 {
		t.Fatalf("deployment with Contributor: %+v", d)
	}
	code, out = f.raw(http.MethodGet, granted+"/providers/Microsoft.KubernetesConfiguration/sourceControlConfigurations/cluster-config?api-version=2022-03-01", "")
	if code != http.StatusOK || !strings.Contains(out, "baseline.git") {
		t.Fatalf("deployed configuration: %d %s", code, out)
	}
	// (Tokens live an hour of simulated time: the test stays within it.)
	// The cluster's own evaluation (15 minutes after its creation) and
	// the configuration's (15 minutes after it was written) see it.
	f.clk.Advance(15 * time.Minute)
	if s := state(granted); s != engine.Compliant {
		t.Errorf("after the deployment: %q, want Compliant", s)
	}
	if s := state(old); s != engine.NonCompliant {
		t.Errorf("the existing cluster: %q, want NonCompliant until remediated", s)
	}
}
