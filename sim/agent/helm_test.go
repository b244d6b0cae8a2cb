package agent

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/release"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes/fake"
	"sigs.k8s.io/yaml"

	"github.com/gitopsim/gitopsim/sim/arm"
)

var testIntervals = Intervals{ChartsSync: 3 * time.Minute, GitPoll: 5 * time.Minute}

func TestHelmOperatorValuesReadChartValuesAsSetFlags(t *testing.T) {
	sp := arm.ConfigSpec{OperatorInstanceName: "flux", OperatorNamespace: "team-a", OperatorScope: "namespace", HelmChartVersion: "1.4.4",
		HelmChartValues: `--set helm.versions=v3 --set-string image.tag=1.4.0 --set chartsSyncInterval=1m --set 'git.timeout=30s'`}
	vals, hs, err := helmOperatorValues(sp, testIntervals)
	if err != nil {
		t.Fatal(err)
	}
	if hs.chartsSync != time.Minute || hs.gitTimeout != 30*time.Second || strings.Join(hs.versions, ",") != "v3" || hs.allowNamespace != "team-a" {
		t.Errorf("settings = %+v", hs)
	}
	if vals["image"].(map[string]any)["tag"] != "1.4.0" || vals["git"].(map[string]any)["timeout"] != "30s" {
		t.Errorf("values = %v", vals)
	}
	// Cluster scope: no --allow-namespace, and the profile's intervals.
	sp = arm.ConfigSpec{OperatorInstanceName: "flux", OperatorNamespace: "ops", OperatorScope: "cluster", HelmChartValues: "--set helm.versions=v3"}
	_, hs, err = helmOperatorValues(sp, Intervals{ChartsSync: 2 * time.Second, GitPoll: time.Second})
	if err != nil || hs.allowNamespace != "" || hs.chartsSync != 2*time.Second || hs.statusUpdate != 2*time.Second || hs.gitPoll != time.Second {
		t.Errorf("cluster scope settings = %+v, %v", hs, err)
	}
}

func TestHelmOperatorValuesRefuseBadFlags(t *testing.T) {
	for values, want := range map[string]string{
		"--set":                          "flag needs an argument: --set",
		"--values=x.yaml":                "unknown flag: --values",
		"--set a=1 'b":                   "unterminated ' quote",
		"--set chartsSyncInterval=often": `invalid argument "often" for "--charts-sync-interval" flag`,
		"--set chartsSyncInterval=0s":    "--charts-sync-interval=0s: gitopsim needs a positive duration",
		"--set helm.versions=v4":         "--enabled-helm-versions=v4 names no supported Helm version",
		"--set a[x]=1":                   "failed parsing --set data",
	} {
		_, _, err := helmOperatorValues(arm.ConfigSpec{OperatorInstanceName: "f", OperatorNamespace: "n", HelmChartValues: values}, testIntervals)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err = %v, want %q", values, err, want)
		}
	}
}

// renderOperator renders the operator chart as Arc would install it.
func renderOperator(t *testing.T, version string, vals map[string]any) map[string]string {
	t.Helper()
	ch, err := helmOperatorChart(version)
	if err != nil {
		t.Fatal(err)
	}
	rv, err := chartutil.ToRenderValues(ch, vals, chartutil.ReleaseOptions{Name: "flux-helm-apps", Namespace: "apps", IsInstall: true}, chartutil.DefaultCapabilities)
	if err != nil {
		t.Fatal(err)
	}
	out, err := engine.Render(ch, rv)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// One version story: the chart version is the app version and the image
// tag, and a 1.4.x chart carries the upstream v1 CRD with its schema and
// printer columns.
func TestHelmOperatorChartVersionIsItsAppVersionImageAndCRD(t *testing.T) {
	for _, v := range HelmOperatorChartVersions {
		ch, err := helmOperatorChart(v)
		if err != nil {
			t.Fatal(err)
		}
		if ch.Metadata.AppVersion != v {
			t.Errorf("chart %s: appVersion %s", v, ch.Metadata.AppVersion)
		}
		dep := renderOperator(t, v, nil)["helm-operator/templates/deployment.yaml"]
		if !strings.Contains(dep, `image: "docker.io/fluxcd/helm-operator:`+v+`"`) {
			t.Errorf("chart %s: deployment\n%s", v, dep)
		}
		var crd struct {
			APIVersion string `json:"apiVersion"`
			Spec       struct {
				Versions []struct {
					Name    string `json:"name"`
					Columns []struct {
						Name string `json:"name"`
					} `json:"additionalPrinterColumns"`
					Schema struct {
						OpenAPIV3Schema struct {
							Properties map[string]struct {
								Properties map[string]any `json:"properties"`
								Required   []string       `json:"required"`
							} `json:"properties"`
						} `json:"openAPIV3Schema"`
					} `json:"schema"`
				} `json:"versions"`
			} `json:"spec"`
		}
		if err := yaml.Unmarshal(ch.Files[0].Data, &crd); err != nil {
			t.Fatal(err)
		}
		ver := crd.Spec.Versions[0]
		var cols []string
		for _, c := range ver.Columns {
			cols = append(cols, c.Name)
		}
		spec := ver.Schema.OpenAPIV3Schema.Properties["spec"]
		if crd.APIVersion != "apiextensions.k8s.io/v1" || ver.Name != "v1" || strings.Join(cols, ",") != "Release,Phase,ReleaseStatus,Message,Age" ||
			spec.Properties["chart"] == nil || spec.Properties["valuesFrom"] == nil || !slices.Equal(spec.Required, []string{"chart"}) {
			t.Errorf("chart %s CRD: %s %s columns %v spec %v", v, crd.APIVersion, ver.Name, cols, spec)
		}
	}
	if DefaultHelmOperatorChartVersion != "1.4.0" || !slices.Contains(HelmOperatorChartVersions, DefaultHelmOperatorChartVersion) {
		t.Errorf("default chart %s is not a simulated one", DefaultHelmOperatorChartVersion)
	}
	old, err := helmOperatorChart("1.2.0")
	if err != nil || old.Metadata.AppVersion != "1.2.0" || !strings.HasPrefix(string(old.Files[0].Data), "apiVersion: apiextensions.k8s.io/v1beta1\n") {
		t.Errorf("chart 1.2.0 = %v, %v", old, err)
	}
	if _, err := helmOperatorChart("9.9.9"); err == nil || !strings.Contains(err.Error(), `chart "helm-operator" version "9.9.9" not found`) {
		t.Errorf("unknown chart version: %v", err)
	}
}

// The operator runs as the chart's own ServiceAccount with the chart's
// RBAC, and with Helm 2 enabled by default, as upstream's values.yaml.
func TestHelmOperatorIdentityIsTheChartsRBAC(t *testing.T) {
	out := renderOperator(t, "1.4.4", nil)
	rbac := out["helm-operator/templates/rbac.yaml"]
	if !strings.Contains(rbac, "kind: ClusterRole\n") || !strings.Contains(rbac, "kind: ClusterRoleBinding") || !strings.Contains(rbac, "name: flux-helm-apps-helm-operator") {
		t.Errorf("default RBAC:\n%s", rbac)
	}
	if !strings.Contains(out["helm-operator/templates/serviceaccount.yaml"], "name: flux-helm-apps-helm-operator") {
		t.Errorf("service account:\n%s", out["helm-operator/templates/serviceaccount.yaml"])
	}
	sp := arm.ConfigSpec{OperatorInstanceName: "flux", OperatorNamespace: "apps", OperatorScope: "cluster", HelmChartVersion: "1.4.4"}
	_, hs, err := helmOperatorValues(sp, testIntervals)
	if err != nil || hs.serviceAccount != "flux-helm-apps-helm-operator" || !slices.Equal(hs.versions, []string{"v2", "v3"}) || hs.allowNamespace != "" {
		t.Errorf("defaults: %+v, %v", hs, err)
	}
	// clusterRole.create=false: a Role in the release namespace, and the
	// template limits the operator to that namespace.
	sp.HelmChartValues = "--set clusterRole.create=false --set helm.versions=v3"
	vals, hs, err := helmOperatorValues(sp, testIntervals)
	if err != nil || hs.allowNamespace != "apps" || hs.serviceAccount != "flux-helm-apps-helm-operator" {
		t.Errorf("clusterRole.create=false: %+v, %v", hs, err)
	}
	rbac = renderOperator(t, "1.4.4", vals)["helm-operator/templates/rbac.yaml"]
	if !strings.Contains(rbac, "kind: Role\n") || strings.Contains(rbac, "ClusterRole\n") {
		t.Errorf("namespaced RBAC:\n%s", rbac)
	}
	sp.HelmChartValues = "--set serviceAccount.create=false --set helm.versions=v3"
	if _, hs, _ = helmOperatorValues(sp, testIntervals); hs.serviceAccount != "default" {
		t.Errorf("serviceAccount.create=false: %q", hs.serviceAccount)
	}
}

func TestConditionsForPhaseAreUpstreamsSentences(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	where := "Helm release 'hello' in 'apps'."
	for phase, want := range map[string][]string{
		PhaseInstalling:       {"Deployed Unknown Running installation for " + where},
		PhaseUpgrading:        {"Deployed Unknown Running upgrade for " + where},
		PhaseDeployed:         {"Deployed True Installation or upgrade succeeded for " + where},
		PhaseDeployFailed:     {"Deployed False Installation or upgrade failed for " + where, "Released False Installation or upgrade failed for " + where},
		PhaseSucceeded:        {"Released True Release was successful for " + where},
		PhaseFailed:           {"Released False Release failed for " + where},
		PhaseRollingBack:      {"RolledBack Unknown Rolling back " + where},
		PhaseRolledBack:       {"RolledBack True Rolled back " + where},
		PhaseRollbackFailed:   {"RolledBack False Rollback failed for " + where},
		PhaseChartFetched:     {"ChartFetched True Chart fetch was successful for " + where},
		PhaseChartFetchFailed: {"ChartFetched False Chart fetch failed for " + where, "Released False Chart fetch failed for " + where},
	} {
		conds, ok := conditionsForPhase("hello", "apps", false, phase, now)
		var got []string
		for _, c := range conds {
			got = append(got, c.Type+" "+c.Status+" "+c.Message)
			if c.Reason != phase || c.LastUpdateTime != "2026-01-01T00:00:00Z" || c.LastTransitionTime != c.LastUpdateTime {
				t.Errorf("%s: %+v", phase, c)
			}
		}
		if !ok || !slices.Equal(got, want) {
			t.Errorf("%s: %q, want %q", phase, got, want)
		}
	}
	if _, ok := conditionsForPhase("hello", "apps", false, "Migrating", now); ok {
		t.Error("Migrating sets no condition upstream")
	}
}

func TestSetConditionsCountsRollbacksAndReleasedClearsThem(t *testing.T) {
	t0, t1 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 1, 1, 0, 5, 0, 0, time.UTC)
	var st hrStatus
	set := func(phase string, at time.Time) {
		conds, _ := conditionsForPhase("r", "ns", false, phase, at)
		setConditions(&st, conds)
	}
	set(PhaseDeployFailed, t0)
	set(PhaseRolledBack, t0)
	set(PhaseRolledBack, t1)
	if st.RollbackCount != 2 || st.condition(condRolledBack).LastTransitionTime != "2026-01-01T00:00:00Z" || st.condition(condRolledBack).LastUpdateTime != "2026-01-01T00:05:00Z" {
		t.Errorf("after two rollbacks: %+v", st)
	}
	set(PhaseSucceeded, t1)
	if st.RollbackCount != 0 || st.condition(condRolledBack) != nil || st.condition(condReleased).Status != "True" || st.condition(condDeployed).Status != "False" {
		t.Errorf("after success: %+v", st)
	}
}

func TestWaitDefaultsToRollbackOrTest(t *testing.T) {
	yes, no := true, false
	for _, c := range []struct {
		spec hrSpec
		want bool
	}{
		{hrSpec{}, false},
		{hrSpec{Rollback: hrRollback{Enable: true}}, true},
		{hrSpec{Test: hrTest{Enable: true}}, true},
		{hrSpec{Rollback: hrRollback{Enable: true}, Wait: &no}, false},
		{hrSpec{Wait: &yes}, true},
	} {
		if got := c.spec.wait(); got != c.want {
			t.Errorf("%+v: wait = %v", c.spec, got)
		}
	}
}

// pkg/helm/v3: upgrades take neither skipCRDs nor
// disableOpenAPIValidation, resetValues: false reuses values, and a
// rollback is never forced.
func TestHelmActionsAsHelmOperatorConfiguresThem(t *testing.T) {
	no := false
	r := &syncRun{cfg: new(action.Configuration), target: "apps", spec: hrSpec{
		SkipCRDs: true, DisableOpenAPI: true, ForceUpgrade: true, ResetValues: &no,
		Rollback: hrRollback{Enable: true, Force: true, Recreate: true},
	}}
	up := r.upgradeAction(false)
	if up.SkipCRDs || up.DisableOpenAPIValidation || !up.Force || !up.ReuseValues || up.ResetValues || up.MaxHistory != 10 || up.Timeout != 300*time.Second {
		t.Errorf("upgrade = %+v", up)
	}
	r.spec.ResetValues = nil
	if up := r.upgradeAction(true); up.ReuseValues || !up.ResetValues || !up.DryRun {
		t.Errorf("dry run with resetValues unset = %+v", up)
	}
	if rb := r.rollbackAction(); rb.Force || !rb.Recreate || rb.Version != 0 {
		t.Errorf("rollback = %+v", rb)
	}
}

func TestComposeValuesFollowsUpstream(t *testing.T) {
	kube := fake.NewSimpleClientset(
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "good", Namespace: "apps"}, Data: map[string]string{"values.yaml": "a: 1\nm: {x: 1}\n"}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "broken", Namespace: "apps"}, Data: map[string]string{"values.yaml": "a: [1\n"}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "legacy", Namespace: "apps"}, Data: map[string][]byte{"values.yaml": []byte("b: 2\nm: {z: 2}\n")}},
	)
	h := &helmOperator{kube: kube}
	hr := &unstructured.Unstructured{Object: map[string]any{"metadata": map[string]any{"name": "hello", "namespace": "apps"}}}
	yes := true
	sp := hrSpec{
		ValueFileSecrets: []struct{ Name string }{{Name: "legacy"}},
		ValuesFrom: []valuesFrom{
			{ConfigMapKeyRef: &keyRef{Name: "good"}},
			{ConfigMapKeyRef: &keyRef{Name: "broken", Optional: true}},
			{ConfigMapKeyRef: &keyRef{Name: "missing", Optional: true}},
			{ChartFileRef: &struct {
				Path     string `json:"path"`
				Optional *bool  `json:"optional"`
			}{Path: "values.yaml", Optional: &yes}},
		},
		Values: []byte(`{"a": 3}`),
	}
	vals, err := h.composeValues(context.Background(), hr, &sp, &preparedChart{})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(vals); got != "map[a:3 b:2 m:map[x:1 z:2]]" {
		t.Errorf("values = %s", got)
	}
	for ref, want := range map[keyRef]string{
		{Name: "broken"}:                "unable to yaml.Unmarshal a: [1\n from values.yaml in ConfigMap apps/broken",
		{Name: "good", Key: "other"}:    "could not find key other in ConfigMap apps/good",
		{Name: "good", Namespace: "ns"}: `configmaps "good" not found`,
	} {
		sp := hrSpec{ValuesFrom: []valuesFrom{{ConfigMapKeyRef: &ref}}}
		if _, err := h.composeValues(context.Background(), hr, &sp, &preparedChart{}); err == nil || err.Error() != want {
			t.Errorf("%+v: %v, want %q", ref, err, want)
		}
	}
	// A repository chart's path is its .tgz upstream: chartFileRef never
	// reads from it.
	sp = hrSpec{ValuesFrom: []valuesFrom{{ChartFileRef: &struct {
		Path     string `json:"path"`
		Optional *bool  `json:"optional"`
	}{Path: "values.yaml"}}}}
	if _, err := h.composeValues(context.Background(), hr, &sp, &preparedChart{}); err == nil || err.Error() != "unable to read value file from path values.yaml" {
		t.Errorf("chartFileRef on a repository chart: %v", err)
	}
}

func TestErrCollectionNamesTheNewestFirst(t *testing.T) {
	e := errCollection{errors.New("upgrade failed: x"), errors.New("rollback failed: y")}
	if e.Error() != "rollback failed: y, previous error:upgrade failed: x" {
		t.Errorf("%q", e.Error())
	}
}

func TestReleaseDiffComparesValuesAndChartByValue(t *testing.T) {
	mk := func(vals map[string]any, tpl string) *release.Release {
		return &release.Release{Config: vals, Chart: &chart.Chart{
			Metadata:  &chart.Metadata{Name: "hello", Version: "0.1.0"},
			Values:    map[string]any{"replicaCount": float64(1)},
			Templates: []*chart.File{{Name: "templates/b.yaml", Data: []byte("b")}, {Name: "templates/a.yaml", Data: []byte(tpl)}},
		}}
	}
	a := mk(map[string]any{"replicaCount": int64(2)}, "a")
	if releaseDiff(a, mk(map[string]any{"replicaCount": float64(2)}, "a")) {
		t.Error("2 and 2.0 differ")
	}
	if !releaseDiff(a, mk(map[string]any{"replicaCount": 3}, "a")) || !releaseDiff(a, mk(map[string]any{"replicaCount": 2}, "a2")) {
		t.Error("a values or template change is no diff")
	}
}

func TestReleaseNamesAndIDs(t *testing.T) {
	hr := &unstructured.Unstructured{Object: map[string]any{"metadata": map[string]any{"name": "hello", "namespace": "apps"}}}
	for _, c := range []struct {
		sp   hrSpec
		want string
	}{
		{hrSpec{}, "apps-hello"},
		{hrSpec{TargetNamespace: "other"}, "apps-other-hello"},
		{hrSpec{ReleaseName: "x", TargetNamespace: "other"}, "x"},
	} {
		if got := releaseName(hr, &c.sp); got != c.want {
			t.Errorf("%+v: %s", c.sp, got)
		}
	}
	if hrResourceID(hr) != "apps:helmrelease/hello" {
		t.Error(hrResourceID(hr))
	}
}
