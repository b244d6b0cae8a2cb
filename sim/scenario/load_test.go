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
			`testdata/invalid/unknown-field.yaml:11:9: spec.steps[1].expect.withn: unknown field (did you mean "within"?); known fields: within, during, since, compliance, connectivity, arm, object, gitRef, event`,
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
			`testdata/invalid/two-actions.yaml:11:7: spec.steps[1]: a step needs one action: arm, configuration, deleteConfiguration, deleteCluster, git, setRef, deployKey, revokeKey, expireToken, network, gitServer, armFault, advance, expect, try`,
		},
		"not-yaml.yaml": {
			`testdata/invalid/not-yaml.yaml:4: invalid YAML: did not find expected ',' or ']'`,
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
	for _, c := range []string{"scaled:0", "scaled:x", "warp"} {
		if _, err := scenario.New(scenario.Options{Clock: c, Workdir: t.TempDir()}); err == nil {
			t.Errorf("clock %q accepted", c)
		}
	}
	if _, err := scenario.New(scenario.Options{Clock: "scaled:60", Workdir: t.TempDir()}); err != nil {
		t.Errorf("scaled:60: %v", err)
	}
}
