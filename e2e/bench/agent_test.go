package bench

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/kubernetesconfiguration/armkubernetesconfiguration/v2"
	"github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/gitopsim/gitopsim/sim"
	"github.com/gitopsim/gitopsim/sim/azsdk"
	"github.com/gitopsim/gitopsim/sim/gitserver"
)

// BenchmarkPushToCompliance measures, on the fast profile and the real
// clock, how long a commit takes to be applied in the cluster and then to
// show in the configuration's compliance message through the Azure SDK
// (the message names the synced revision). Each iteration is one commit.
//
// Reported: applied-p50/p95-ms and visible-p50/p95-ms; floor-ms, the same
// run's cost of doing the two observable steps by hand (one server-side
// apply of the ConfigMap plus one SDK GET); and visible-p95/poll, the p95
// against the fast profile's git poll interval, which bounds the wait for
// a push to be seen (goal: visible p95 under 1 s). Commits land at
// changing points of the poll cycle, as real pushes do.
func BenchmarkPushToCompliance(b *testing.B) {
	ctx := context.Background()
	s, local, configs := fastStack(b)
	const repo = "bench/app"
	if _, err := s.Git().CreateRepo(repo, gitserver.RepoOptions{Public: true, DefaultBranch: "main"}); err != nil {
		b.Fatal(err)
	}
	manifest := func(v int) map[string]*string {
		return map[string]*string{"cm.yaml": to.Ptr(fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n  namespace: bench\ndata:\n  value: \"%d\"\n", v))}
	}
	if _, err := s.Git().Commit(repo, "main", "v0", manifest(0)); err != nil {
		b.Fatal(err)
	}
	_, err := configs.CreateOrUpdate(ctx, local.ResourceGroup, "Microsoft.Kubernetes", "connectedClusters", local.Name, "bench",
		armkubernetesconfiguration.SourceControlConfiguration{Properties: &armkubernetesconfiguration.SourceControlConfigurationProperties{
			RepositoryURL: to.Ptr(s.Git().HTTPSURL() + "/" + repo + ".git"), OperatorNamespace: to.Ptr("bench"), OperatorInstanceName: to.Ptr("bench"),
			OperatorType: to.Ptr(armkubernetesconfiguration.OperatorTypeFlux), OperatorScope: to.Ptr(armkubernetesconfiguration.OperatorScopeTypeNamespace),
			OperatorParams: to.Ptr("--git-branch=main"),
		}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	kube := kubernetes.NewForConfigOrDie(s.Cluster().AdminConfig())
	message := func() string {
		got, err := configs.Get(ctx, local.ResourceGroup, "Microsoft.Kubernetes", "connectedClusters", local.Name, "bench", nil)
		if err != nil {
			b.Fatal(err)
		}
		return *got.Properties.ComplianceStatus.Message
	}
	value := func() string {
		cm, err := kube.CoreV1().ConfigMaps("bench").Get(ctx, "app", metav1.GetOptions{})
		if err != nil {
			return ""
		}
		return cm.Data["value"]
	}
	g := gomega.NewWithT(b)
	waitFor := func(what string, cond func() bool) {
		g.Eventually(cond).WithTimeout(30*time.Second).WithPolling(5*time.Millisecond).Should(gomega.BeTrue(), what)
	}
	waitFor("first sync", func() bool { return value() == "0" })

	// The floor: what the two observable steps cost when done directly.
	var floor time.Duration
	for i := range 20 {
		t0 := time.Now()
		cm := &corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"}, ObjectMeta: metav1.ObjectMeta{Name: "floor", Namespace: "bench"}, Data: map[string]string{"v": fmt.Sprint(i)}}
		if _, err := kube.CoreV1().ConfigMaps("bench").Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
			if _, err := kube.CoreV1().ConfigMaps("bench").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
				b.Fatal(err)
			}
		}
		message()
		floor += time.Since(t0)
	}

	var applied, visible []time.Duration
	b.ResetTimer()
	poll := local.Agent.Intervals().GitPoll
	// Pushes arrive at any point of the poll cycle, not just after a sync
	// (then every sample would wait a full interval): commits come on a
	// period that is not a multiple of the poll interval, so each lands
	// at another phase of it.
	arrivals := time.NewTicker(poll*3/2 + 37*time.Millisecond)
	defer arrivals.Stop()
	for i := range b.N {
		b.StopTimer()
		<-arrivals.C
		b.StartTimer()
		rev, err := s.Git().Commit(repo, "main", fmt.Sprint(i+1), manifest(i+1))
		if err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		waitFor("apply", func() bool { return value() == fmt.Sprint(i+1) })
		applied = append(applied, time.Since(t0))
		waitFor("compliance", func() bool { return strings.Contains(message(), rev.String()[:7]) })
		visible = append(visible, time.Since(t0))
	}
	b.StopTimer()
	pct := func(d []time.Duration, p float64) float64 {
		slices.Sort(d)
		return float64(d[min(len(d)-1, int(float64(len(d))*p))].Microseconds()) / 1000
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(pct(applied, 0.5), "applied-p50-ms")
	b.ReportMetric(pct(applied, 0.95), "applied-p95-ms")
	b.ReportMetric(pct(visible, 0.5), "visible-p50-ms")
	b.ReportMetric(pct(visible, 0.95), "visible-p95-ms")
	b.ReportMetric(float64(floor.Microseconds())/20/1000, "floor-ms")
	b.ReportMetric(pct(visible, 0.95)/float64(poll.Milliseconds()), "visible-p95/poll")
}

// fastStack starts a simulator on the fast profile and the real clock,
// and returns it with its local connected cluster and an Azure SDK client
// for configurations.
func fastStack(b *testing.B) (*sim.Sim, *sim.Connected, *armkubernetesconfiguration.SourceControlConfigurationsClient) {
	b.Helper()
	s, err := sim.New(sim.Options{Workdir: b.TempDir(), AgentProfile: "fast", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Stop(context.Background()) })
	return s, s.Connected()[0], configsClient(b, s)
}

// configsClient is the Azure SDK's configurations client for s's ARM.
func configsClient(b *testing.B, s *sim.Sim) *armkubernetesconfiguration.SourceControlConfigurationsClient {
	b.Helper()
	az, err := azsdk.New(s.Endpoints().ARM)
	if err != nil {
		b.Fatal(err)
	}
	configs, err := armkubernetesconfiguration.NewSourceControlConfigurationsClient(az.SubscriptionID, az.Credential, az.Options)
	if err != nil {
		b.Fatal(err)
	}
	return configs
}
