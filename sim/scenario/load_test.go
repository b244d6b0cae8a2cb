package scenario_test

import (
	"strings"
	"testing"
	"time"

	"github.com/gitopsim/gitopsim/sim/scenario"
)

func TestLoadValid(t *testing.T) {
	sc, err := scenario.Load("testdata/valid.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := sc.Spec.Tokens[0].ExpiresIn.D(); got != 60*time.Hour {
		t.Errorf("expiresIn 2d12h = %v", got)
	}
	if got := sc.Spec.Clusters[0].Intervals.ConfigPoll.D(); got != 2*time.Second {
		t.Errorf("configPoll = %v", got)
	}
	try := sc.Spec.Steps[1].Try
	if try == nil || try.Steps[0].Expect.GitRef.Ref != "main" || try.Steps[0].Pos.Line != 25 {
		t.Errorf("nested try step not decoded with its position: %+v", try)
	}
}

// TestLoadInvalid pins every message and position: they are what a user
// reads to fix a file.
func TestLoadInvalid(t *testing.T) {
	cases := map[string][]string{
		"unknown-field.yaml": {
			`testdata/invalid/unknown-field.yaml:11:9: spec.steps[1].expect.withn: unknown field (did you mean "within"?); known fields: within, during, since, compliance, connectivity, arm, object, gitRef, event, policyCompliance, policySummary, remediation, policyDeployment`,
		},
		"bad-duration.yaml": {
			`testdata/invalid/bad-duration.yaml:9:16: spec.steps[0].advance: invalid duration "5 minutes" (use e.g. 30s, 5m, 2h, 3d)`,
		},
		"wrong-type.yaml": {
			`testdata/invalid/wrong-type.yaml:8:16: spec.clusters[0].offline: expected true or false, got the string "yes"`,
			`testdata/invalid/wrong-type.yaml:10:37: spec.steps[0].network.flaky: expected an integer, got the string "many"`,
		},
		"references.yaml": {
			`testdata/invalid/references.yaml:12:9: spec.steps[0].configuration.cluster: no cluster "c2" in spec (declared: c1)`,
			`testdata/invalid/references.yaml:12:9: spec.steps[0].configuration.sshKey: no key "nokey" in spec (declared: )`,
			`testdata/invalid/references.yaml:17:9: spec.steps[1].expect.since: no earlier step is named "later"`,
		},
		"two-actions.yaml": {
			`testdata/invalid/two-actions.yaml:7:7: spec.steps[0]: a step has exactly one action, this one has advance and expect: split it into steps`,
			`testdata/invalid/two-actions.yaml:10:16: spec.steps[0].expect.event.cluster: no cluster "c1" in spec (declared: )`,
			`testdata/invalid/two-actions.yaml:11:7: spec.steps[1]: a step needs one action: arm, configuration, deleteConfiguration, deleteCluster, git, setRef, deployKey, revokeKey, expireToken, network, gitServer, armFault, advance, expect, try, onboard, updateCluster, assignPolicy, grantRole, remediate, cancelRemediation, policyScan`,
		},
		"not-yaml.yaml": {
			`testdata/invalid/not-yaml.yaml:4: invalid YAML: did not find expected ',' or ']'`,
		},
		"policy.yaml": {
			`testdata/invalid/policy.yaml:7:5: spec.policy.timing: must be documented or immediate, got "fast"`,
			`testdata/invalid/policy.yaml:11:18: spec.steps[0].grantRole.assignment: no earlier assignPolicy step creates assignment "later"`,
			`testdata/invalid/policy.yaml:11:18: spec.steps[0].grantRole.role: must be Contributor, Owner, Reader or a role definition GUID, got "Janitor"`,
			`testdata/invalid/policy.yaml:13:9: spec.steps[1].assignPolicy.name: required: 1 to 64 characters without <>*%&:\?.+/ or spaces, got "bad/name"`,
			`testdata/invalid/policy.yaml:13:9: spec.steps[1].assignPolicy.definition: must be gitops-no-secrets, gitops-ssh, gitops-https or a definition id (/providers/...), got "gitops-nope"`,
			`testdata/invalid/policy.yaml:13:9: spec.steps[1].assignPolicy.enforcementMode: must be Default or DoNotEnforce, got "Enforce"`,
			`testdata/invalid/policy.yaml:13:9: spec.steps[1].assignPolicy.notScopes[0]: not a resource group name (letters, digits, '-', '_', '.', '(', ')', at most 90): "not a group"`,
			`testdata/invalid/policy.yaml:18:16: spec.steps[3].onboard.cluster: cluster "c1" is onboarded before the first step: declare it with onboard: later`,
			`testdata/invalid/policy.yaml:19:18: spec.steps[4].remediate.mode: must be ExistingNonCompliant or ReEvaluateCompliance, got "Everything"`,
			`testdata/invalid/policy.yaml:19:18: spec.steps[4].remediate.parallelDeployments: must be between 1 and 30, got 31`,
			`testdata/invalid/policy.yaml:19:18: spec.steps[4].remediate.failureThreshold: is a fraction between 0 and 1, got 2`,
			`testdata/invalid/policy.yaml:21:27: spec.steps[5].expect.policyCompliance.cluster: no cluster "nope" in spec (declared: c1)`,
			`testdata/invalid/policy.yaml:21:27: spec.steps[5].expect.policyCompliance.state: must be Compliant, NonCompliant or none, got "compliant"`,
			`testdata/invalid/policy.yaml:23:24: spec.steps[6].expect.policySummary: give compliant, nonCompliant or both`,
			`testdata/invalid/policy.yaml:25:22: spec.steps[7].expect.remediation.name: no earlier remediate step creates remediation "other"`,
			`testdata/invalid/policy.yaml:25:22: spec.steps[7].expect.remediation: give state, deployment counts (total, succeeded, failed) or message`,
			`testdata/invalid/policy.yaml:27:27: spec.steps[8].expect.policyDeployment.error: only a failed deployment has an error: add result: failed`,
		},
		"clusters.yaml": {
			`testdata/invalid/clusters.yaml:7:7: spec.clusters[0].resourceGroups: resourceGroup and resourceGroups exclude each other`,
			`testdata/invalid/clusters.yaml:7:7: spec.clusters[0].resourceGroups[1]: not a resource group name (letters, digits, '-', '_', '.', '(', ')', at most 90): "bad group!"`,
			`testdata/invalid/clusters.yaml:12:7: spec.clusters[1].namePattern: must hold the number once, as {n} or {n:02} (zero-padded), got "edge"`,
			`testdata/invalid/clusters.yaml:14:7: spec.clusters[2].count: must be between 1 and 500, got 0`,
			`testdata/invalid/clusters.yaml:16:7: spec.clusters[3].name: cluster "edge-2" is declared twice`,
			`testdata/invalid/clusters.yaml:17:7: spec.clusters[4].resourceGroups: spreads a group: give count and namePattern, or use resourceGroup for one cluster`,
			`testdata/invalid/clusters.yaml:17:7: spec.clusters[4].onboard: must be start or later, got "soon"`,
			`testdata/invalid/clusters.yaml:20:7: spec.clusters[5].namePattern: makes "Edge-1", which is not a DNS label`,
		},
		"header.yaml": {
			`testdata/invalid/header.yaml:1:1: apiVersion: must be gitopsim.dev/v1alpha1, got "gitopsim.dev/v1"`,
			`testdata/invalid/header.yaml:1:1: kind: must be Scenario, got "Scenaro"`,
			`testdata/invalid/header.yaml:4:3: metadata.name: must be a DNS label (lower-case letters, digits and '-', at most 63), got "Bad_Name"`,
		},
	}
	for file, want := range cases {
		t.Run(file, func(t *testing.T) {
			_, err := scenario.Load("testdata/invalid/" + file)
			if err == nil {
				t.Fatal("loaded without error")
			}
			got := strings.Split(err.Error(), "\n")
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

// TestLoadValidPolicy: the policy, group and onboarding syntax decodes.
func TestLoadValidPolicy(t *testing.T) {
	sc, err := scenario.Load("testdata/valid-policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p := sc.Spec.Policy
	if p == nil || p.Timing != "immediate" || p.Delays.Assignment.D() != time.Minute || p.Delays.Deploy != nil {
		t.Errorf("spec.policy = %+v", p)
	}
	c := sc.Spec.Clusters[0]
	if c.Count != 5 || c.NamePattern != "edge-{n:02}" || len(c.ResourceGroups) != 2 {
		t.Errorf("group = %+v", c)
	}
	if sc.Spec.Clusters[1].Onboard != "later" || sc.Spec.Clusters[1].Location != "westeurope" {
		t.Errorf("late cluster = %+v", sc.Spec.Clusters[1])
	}
	if f := sc.Spec.Steps[5].Remediate.FailureThreshold; f == nil || *f != 0.5 {
		t.Errorf("failureThreshold = %v", f)
	}
	if a := sc.Spec.Steps[0].AssignPolicy; a.EnforcementMode != "DoNotEnforce" || a.NotScopes[0] != "rg-west" || a.Parameters["configurationResourceName"] != "baseline" {
		t.Errorf("assignPolicy = %+v", a)
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"30s": 30 * time.Second, "3d": 72 * time.Hour, "1d2h": 26 * time.Hour, "90d": 90 * 24 * time.Hour} {
		if got, err := scenario.ParseDuration(in); err != nil || got != want {
			t.Errorf("%s = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "5", "-1m", "d", "xd1h", "1w"} {
		if _, err := scenario.ParseDuration(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestFormatOffset(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "00:00:00", 31 * time.Second: "00:00:31", 2*time.Hour + 31*time.Second: "02:00:31", 49 * time.Hour: "2d01:00:00", 1500 * time.Millisecond: "00:00:01.500"} {
		if got := scenario.FormatOffset(d); got != want {
			t.Errorf("%v = %s, want %s", d, got, want)
		}
	}
}

func TestRunnerRejectsBadClock(t *testing.T) {
	for _, c := range []string{"scaled:0", "scaled:x", "scaled:1e6", "scaled:NaN", "warp"} {
		if _, err := scenario.New(scenario.Options{Clock: c, Workdir: t.TempDir()}); err == nil {
			t.Errorf("clock %q accepted", c)
		}
	}
	if _, err := scenario.New(scenario.Options{Clock: "scaled:60", Workdir: t.TempDir()}); err != nil {
		t.Errorf("scaled:60: %v", err)
	}
}
