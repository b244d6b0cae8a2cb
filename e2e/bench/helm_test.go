package bench

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/kubernetesconfiguration/armkubernetesconfiguration/v2"
	"github.com/onsi/gomega"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/kubernetes"

	"github.com/gitopsim/gitopsim/sim/gitserver"
)

// BenchmarkHelmReleaseDeploy measures, on the fast profile and the real
// clock, how long a HelmRelease change committed to git takes to be
// deployed: fluxd sees the commit and applies the HelmRelease, the Helm
// operator upgrades the release from gitopsim's chart repository, and the
// chart's ConfigMap holds the new value. Each iteration is one commit.
//
// Reported: deployed-p50/p95-ms; helm-upgrade-ms, the same run's cost of
// the same upgrade done directly with the Helm SDK (the floor: what the
// operator must do anyway); deployed-p95/helm-upgrade; and
// deployed-p95/poll against the fast profile's git poll interval.
func BenchmarkHelmReleaseDeploy(b *testing.B) {
	ctx := context.Background()
	s, local, configs := fastStack(b)
	const repo, ns = "bench/helm", "helmbench"
	if _, err := s.Git().CreateRepo(repo, gitserver.RepoOptions{Public: true, DefaultBranch: "main"}); err != nil {
		b.Fatal(err)
	}
	hr := func(v int) map[string]*string {
		return map[string]*string{"hr.yaml": to.Ptr(fmt.Sprintf(`apiVersion: helm.fluxcd.io/v1
kind: HelmRelease
metadata: {name: hello, namespace: %s}
spec:
  releaseName: hello
  chart: {repository: %s, name: hello, version: 0.1.0}
  values: {greeting: "v%d"}
`, ns, s.HelmRepo().URL(), v))}
	}
	if _, err := s.Git().Commit(repo, "main", "v0", hr(0)); err != nil {
		b.Fatal(err)
	}
	_, err := configs.CreateOrUpdate(ctx, local.ResourceGroup, "Microsoft.Kubernetes", "connectedClusters", local.Name, "helmbench",
		armkubernetesconfiguration.SourceControlConfiguration{Properties: &armkubernetesconfiguration.SourceControlConfigurationProperties{
			RepositoryURL: to.Ptr(s.Git().HTTPSURL() + "/" + repo + ".git"), OperatorNamespace: to.Ptr(ns), OperatorInstanceName: to.Ptr("flux"),
			OperatorType: to.Ptr(armkubernetesconfiguration.OperatorTypeFlux), OperatorScope: to.Ptr(armkubernetesconfiguration.OperatorScopeTypeNamespace),
			OperatorParams: to.Ptr("--git-branch=main"), EnableHelmOperator: to.Ptr(true),
			HelmOperatorProperties: &armkubernetesconfiguration.HelmOperatorProperties{ChartVersion: to.Ptr("1.4.4"), ChartValues: to.Ptr("--set helm.versions=v3")},
		}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	kube := kubernetes.NewForConfigOrDie(s.Cluster().AdminConfig())
	greeting := func(name string) string {
		cm, err := kube.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return ""
		}
		return cm.Data["greeting"]
	}
	g := gomega.NewWithT(b)
	waitFor := func(what string, cond func() bool) {
		g.Eventually(cond).WithTimeout(60*time.Second).WithPolling(5*time.Millisecond).Should(gomega.BeTrue(), what)
	}
	waitFor("first release", func() bool { return greeting("hello") == "v0" })

	// The floor: the same chart upgraded directly with the Helm SDK, as
	// cluster admin, in another release.
	kubeconfig := s.Cluster().Kubeconfig()
	namespace := ns
	cf := genericclioptions.NewConfigFlags(false)
	cf.KubeConfig, cf.Namespace = &kubeconfig, &namespace
	cfg := new(action.Configuration)
	if err := cfg.Init(cf, ns, "secret", func(string, ...any) {}); err != nil {
		b.Fatal(err)
	}
	ch, err := loader.LoadDir("../../fixtures/charts/hello")
	if err != nil {
		b.Fatal(err)
	}
	in := action.NewInstall(cfg)
	in.ReleaseName, in.Namespace = "floor", ns
	if _, err := in.Run(ch, map[string]any{"greeting": "f0"}); err != nil {
		b.Fatal(err)
	}
	var floor time.Duration
	for i := range 10 {
		up := action.NewUpgrade(cfg)
		up.Namespace = ns
		t0 := time.Now()
		if _, err := up.Run("floor", ch, map[string]any{"greeting": fmt.Sprint("f", i+1)}); err != nil {
			b.Fatal(err)
		}
		floor += time.Since(t0)
	}

	var deployed []time.Duration
	poll := local.Agent.Intervals().GitPoll
	arrivals := time.NewTicker(poll*3/2 + 37*time.Millisecond)
	defer arrivals.Stop()
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		<-arrivals.C
		b.StartTimer()
		if _, err := s.Git().Commit(repo, "main", fmt.Sprint(i+1), hr(i+1)); err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		want := fmt.Sprint("v", i+1)
		waitFor("deployed", func() bool { return greeting("hello") == want })
		deployed = append(deployed, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(deployed)
	pct := func(p float64) float64 {
		return float64(deployed[min(len(deployed)-1, int(float64(len(deployed))*p))].Microseconds()) / 1000
	}
	floorMS := float64(floor.Microseconds()) / 10 / 1000
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(pct(0.5), "deployed-p50-ms")
	b.ReportMetric(pct(0.95), "deployed-p95-ms")
	b.ReportMetric(floorMS, "helm-upgrade-ms")
	b.ReportMetric(pct(0.95)/floorMS, "deployed-p95/helm-upgrade")
	b.ReportMetric(pct(0.95)/float64(poll.Milliseconds()), "deployed-p95/poll")
}
