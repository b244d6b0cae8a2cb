package agent

import (
	"strings"
	"testing"
	"time"

	"github.com/gitopsim/gitopsim/sim/arm"
)

func TestHelmOperatorValuesReadChartValuesAsSetFlags(t *testing.T) {
	sp := arm.ConfigSpec{OperatorInstanceName: "flux", OperatorNamespace: "team-a", OperatorScope: "namespace",
		HelmChartValues: `--set helm.versions=v3 --set-string image.tag=1.4.0 --set chartsSyncInterval=1m --set 'git.timeout=30s'`}
	vals, hs, err := helmOperatorValues(sp, 3*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if hs.chartsSync != time.Minute || strings.Join(hs.versions, ",") != "v3" || hs.allowNamespace != "team-a" {
		t.Errorf("settings = %+v", hs)
	}
	if vals["image"].(map[string]any)["tag"] != "1.4.0" || vals["git"].(map[string]any)["timeout"] != "30s" {
		t.Errorf("values = %v", vals)
	}
	if vals["serviceAccount"].(map[string]any)["name"] != "flux" {
		t.Errorf("the operator runs as fluxd's ServiceAccount: %v", vals["serviceAccount"])
	}
	// Cluster scope: no --allow-namespace, and the profile's interval.
	sp = arm.ConfigSpec{OperatorInstanceName: "flux", OperatorNamespace: "ops", OperatorScope: "cluster"}
	_, hs, err = helmOperatorValues(sp, 2*time.Second)
	if err != nil || hs.allowNamespace != "" || hs.chartsSync != 2*time.Second || hs.versions[0] != "v3" {
		t.Errorf("cluster scope settings = %+v, %v", hs, err)
	}
}

func TestHelmOperatorValuesRefuseBadFlags(t *testing.T) {
	for values, want := range map[string]string{
		"--set":                          "flag needs an argument: --set",
		"--values=x.yaml":                "unknown flag: --values",
		"--set a=1 'b":                   "unterminated ' quote",
		"--set chartsSyncInterval=often": `chartsSyncInterval "often" is not a positive duration`,
		"--set helm.versions=":           "helm.versions is empty",
		"--set a[x]=1":                   "failed parsing --set data",
	} {
		_, _, err := helmOperatorValues(arm.ConfigSpec{OperatorInstanceName: "f", OperatorNamespace: "n", HelmChartValues: values}, time.Minute)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err = %v, want %q", values, err, want)
		}
	}
}

func TestMergeValuesIsDeepAndLeavesInputsAlone(t *testing.T) {
	base := map[string]any{"a": map[string]any{"x": 1, "y": 2}, "b": 1}
	over := map[string]any{"a": map[string]any{"y": 3}, "c": 4}
	got := mergeValues(base, over)
	if got["a"].(map[string]any)["x"] != 1 || got["a"].(map[string]any)["y"] != 3 || got["b"] != 1 || got["c"] != 4 {
		t.Errorf("merged = %v", got)
	}
	if base["a"].(map[string]any)["y"] != 2 {
		t.Errorf("base was modified: %v", base)
	}
}
