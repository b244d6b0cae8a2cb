package scenario

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/gitopsim/gitopsim/sim/clock"
	"github.com/gitopsim/gitopsim/sim/cluster"
	"github.com/gitopsim/gitopsim/sim/policy"
)

// TestEveryExpectCheckHasAKind: an Expect field the loader accepts must
// have a row in expectKinds, or the check would never run.
func TestEveryExpectCheckHasAKind(t *testing.T) {
	for _, c := range expectChecks() {
		if k, ok := expectKinds[c]; !ok || k.summary == nil || k.check == nil {
			t.Errorf("check %q has no row in expectKinds", c)
		}
	}
	if len(expectKinds) != len(expectChecks()) {
		t.Errorf("expectKinds has %d rows for %d checks", len(expectKinds), len(expectChecks()))
	}
}

func TestClusterDecls(t *testing.T) {
	spec := &Spec{Clusters: []Cluster{
		{Name: "fleet", Count: 5, NamePattern: "edge-{n:02}", ResourceGroups: []string{"rg-east", "rg-west"}},
		{Name: "solo", Location: "westeurope", Onboard: "later"},
		{Count: 2, NamePattern: "x{n}y", ResourceGroup: "rg-x"},
	}}
	var got []string
	for _, d := range clusterDecls(spec, "scenario-t") {
		got = append(got, d.Name+"@"+d.ResourceGroup+"@"+d.Location+"@"+d.Group)
	}
	want := []string{
		"edge-01@rg-east@eastus@fleet", "edge-02@rg-west@eastus@fleet", "edge-03@rg-east@eastus@fleet", "edge-04@rg-west@eastus@fleet", "edge-05@rg-east@eastus@fleet",
		"solo@scenario-t@westeurope@", "x1y@rg-x@eastus@", "x2y@rg-x@eastus@",
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("clusters:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if d := clusterDecls(spec, "x")[5]; !d.later() {
		t.Error("solo should wait for an onboard step")
	}
	if got := expandPattern("n{n}-{n:003}", 7); got != "n{n}-{n:003}" && got != "n7-{n:003}" {
		t.Errorf("expandPattern = %q", got)
	}
	if got := expandPattern("edge-{n:03}", 7); got != "edge-007" {
		t.Errorf("expandPattern = %q", got)
	}
}

func TestPolicyTiming(t *testing.T) {
	if policyTiming(nil) != nil {
		t.Error("no spec.policy should keep the simulator's timing")
	}
	if got := *policyTiming(&PolicySpec{}); got != policy.DefaultTiming() {
		t.Errorf("default = %+v, want documented", got)
	}
	m := Duration(time.Minute)
	got := *policyTiming(&PolicySpec{Timing: "immediate", Delays: &PolicyDelays{Deploy: &m}})
	want := policy.ImmediateTiming()
	want.Deploy = time.Minute
	if got != want {
		t.Errorf("immediate with deploy 1m = %+v, want %+v", got, want)
	}
	got = *policyTiming(&PolicySpec{Delays: &PolicyDelays{Cycle: new(Duration)}})
	want = policy.DefaultTiming()
	want.Cycle = 0
	if got != want {
		t.Errorf("documented without cycle = %+v", got)
	}
}

// TestMilestones: the presenter's delays come from the provider's events,
// deployments grouped by task, in time order.
func TestMilestones(t *testing.T) {
	t0 := clock.Epoch
	r := &run{start: t0}
	a := &assignmentRef{name: "base", id: "/subscriptions/s/providers/Microsoft.Authorization/policyAssignments/base", scope: "/subscriptions/s", at: t0}
	id := strings.ToUpper(a.id) // ids compare without case
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	ev := []policy.Event{
		{Time: at(5), Kind: policy.EventAssignmentEffective, AssignmentID: id},
		{Time: at(5), Kind: policy.EventCompliance, AssignmentID: id, ResourceID: "c1", State: "NonCompliant"},
		{Time: at(5), Kind: policy.EventCompliance, AssignmentID: id, ResourceID: "c2", State: "NonCompliant"},
		{Time: at(5), Kind: policy.EventCompliance, AssignmentID: "/other", ResourceID: "c9", State: "NonCompliant"},
		{Time: at(17), Kind: policy.EventDeployment, AssignmentID: id, ResourceID: "c1", Remediation: "/subscriptions/s/providers/microsoft.policyinsights/remediations/fix"},
		{Time: at(18), Kind: policy.EventDeployment, AssignmentID: id, ResourceID: "c2", Remediation: "/subscriptions/s/providers/microsoft.policyinsights/remediations/fix", Error: "denied"},
		{Time: at(20), Kind: policy.EventDeployment, AssignmentID: id, ResourceID: "c2"},
		{Time: at(32), Kind: policy.EventCompliance, AssignmentID: id, ResourceID: "c1", State: "Compliant"},
		{Time: at(35), Kind: policy.EventCompliance, AssignmentID: id, ResourceID: "c2", State: "Compliant"},
	}
	m := r.milestones(a, ev)
	if m.Effective != "00:05:00" || m.Evaluated != 2 || m.Compliant != 2 || m.FirstCompliant != "00:32:00" || m.AllCompliant != "00:35:00" {
		t.Errorf("milestones = %+v", m)
	}
	if len(m.Deployments) != 2 || m.Deployments[0] != (DeploymentMilestones{By: "remediation fix", First: "00:17:00", Last: "00:18:00", Count: 2, Failed: 1}) ||
		m.Deployments[1] != (DeploymentMilestones{By: "automatic", First: "00:20:00", Last: "00:20:00", Count: 1}) {
		t.Errorf("deployments = %+v", m.Deployments)
	}
	want := `  policy base on the subscription: 2 clusters evaluated, 2 Compliant at the end
    00:00:00     assigned
    00:05:00     in effect                +5m
    00:17:00     first deployment         +17m     remediation fix
    00:18:00     last deployment          +18m     remediation fix (2 deployments, 1 failed)
    00:20:00     deployment               +20m     automatic
    00:32:00     first cluster Compliant  +32m
    00:35:00     last cluster Compliant   +35m     (all 2)
`
	if got := m.text(); got != want {
		t.Errorf("text:\n%s\nwant:\n%s", got, want)
	}
	// One cluster left NonCompliant: no "last cluster Compliant".
	m = r.milestones(a, ev[:len(ev)-1])
	if m.AllCompliant != "" || m.Compliant != 1 {
		t.Errorf("with c2 NonCompliant: %+v", m)
	}
}

// noKube is a cluster backend for scenarios without clusters: the policy
// steps need ARM only.
type noKube struct{}

func (noKube) Name() string                { return "none" }
func (noKube) Available() error            { return nil }
func (noKube) Start(context.Context) error { return nil }
func (noKube) Stop(context.Context) error  { return nil }
func (noKube) AdminConfig() *rest.Config   { return &rest.Config{Host: "https://127.0.0.1:1"} }
func (noKube) Kubeconfig() string          { return "" }
func (noKube) NewUser(context.Context, string, []string) (*cluster.User, error) {
	return nil, errors.New("no Kubernetes here")
}

// TestPolicySteps runs the policy steps and expectations against the
// simulator's ARM (no clusters, so no Kubernetes): each talks REST to
// the policy provider and fails when what it checks is not so.
func TestPolicySteps(t *testing.T) {
	sc, err := Parse("policy-steps.yaml", []byte(`apiVersion: gitopsim.dev/v1alpha1
kind: Scenario
metadata: {name: policy-steps}
spec:
  policy: {timing: immediate}
  # Never onboarded: they make the resource groups the scopes name.
  clusters:
    - {name: a, resourceGroup: rg-a, onboard: later}
    - {name: b, resourceGroup: rg-b, onboard: later}
  steps:
    - name: no identity
      assignPolicy:
        name: broken
        identity: none
        parameters: {configurationResourceName: x, operatorInstanceName: x, operatorNamespace: x, repositoryUrl: "https://example.com/x.git"}
        expect: {status: 400, code: ResourceIdentityRequired}
    - name: assign
      assignPolicy:
        name: base
        resourceGroup: rg-a
        notScopes: [rg-b]
        enforcementMode: DoNotEnforce
        parameters: {configurationResourceName: x, operatorInstanceName: x, operatorNamespace: x, repositoryUrl: "https://example.com/x.git"}
        expect: {status: 201}
    - expect:
        arm:
          path: ${assignment.base.id}
          apiVersion: "2025-03-01"
          fields:
            properties.enforcementMode: DoNotEnforce
            properties.notScopes[0]: /subscriptions/${subscription}/resourceGroups/rg-b
            identity.principalId: ${assignment.base.principalId}
    - grantRole: {assignment: base}
    - expect:
        arm:
          path: /subscriptions/${subscription}/resourceGroups/rg-a/providers/Microsoft.Authorization/roleAssignments
          apiVersion: "2022-04-01"
          fields:
            value[0].properties.principalId: ${assignment.base.principalId}
    - policyScan: {resourceGroup: rg-a}
    - expect:
        policySummary: {assignment: base, compliant: 0, nonCompliant: 0}
    - remediate: {name: stop, assignment: base}
    - cancelRemediation: {name: stop}
    - expect:
        within: 1m
        remediation: {name: stop, state: Canceled}
    - remediate: {name: fix, assignment: base, parallelDeployments: 5, failureThreshold: 0.5}
    # Nothing was evaluated (no clusters): Azure's answer is a failed task.
    - expect:
        within: 10m
        remediation: {name: fix, state: Failed, total: 0, message: No policy evaluation result was found}
    - try:
        steps:
          - expect: {policySummary: {compliant: 1}}
        catch:
          - cancelRemediation: {name: fix, expect: {status: 400}}
        finally:
          - expect: {policySummary: {nonCompliant: 0}}
`))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	clk := clock.NewVirtual(clock.Epoch)
	s, err := NewSim(dir, sc.Metadata.Name, clk, slog.New(slog.DiscardHandler), noKube{}, policyTiming(sc.Spec.Policy))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop(context.WithoutCancel(t.Context())) })
	var tl strings.Builder
	res := execute(t.Context(), env{sim: s, clk: clk, timeline: &tl}, sc)
	if !res.Passed {
		t.Fatalf("failed:\n%s\n%s", strings.Join(res.Failures, "\n"), tl.String())
	}
	if len(res.Caught) != 1 || !strings.Contains(res.Caught[0], "compliant: expected 1 resources, got 0") {
		t.Errorf("the try block should catch the summary's failure: %q", res.Caught)
	}
	for _, want := range []string{
		"assign policy base (gitops-no-secrets) to the resource group rg-a except rg-b, DoNotEnforce (assign): 201",
		"grant Contributor on the assignment's scope to the identity of base: 201",
		"policy scan of the resource group rg-a: 202, done after 0s",
		"remediate base: task fix, 5 in parallel: 201",
		"policy base on the resource group rg-a: 0 clusters evaluated, 0 Compliant at the end",
	} {
		if !strings.Contains(tl.String(), want) {
			t.Errorf("timeline lacks %q:\n%s", want, tl.String())
		}
	}
	if len(res.Policy) != 1 || res.Policy[0].Assignment != "base" || res.Policy[0].Effective != "00:00:00" {
		t.Errorf("milestones = %+v", res.Policy)
	}
	if !strings.Contains(string(res.Transcript()), `"policy": [`) {
		t.Error("the transcript lacks the milestones")
	}
}
