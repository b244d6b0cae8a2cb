package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	azarm "github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/hybridkubernetes/armhybridkubernetes"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/kubernetesconfiguration/armkubernetesconfiguration/v2"

	"github.com/gitopsim/gitopsim/sim"
	"github.com/gitopsim/gitopsim/sim/azsdk"
	"github.com/gitopsim/gitopsim/sim/clock"
	"github.com/gitopsim/gitopsim/sim/ui"
)

// viewEnv names the largest fleet BenchmarkWebView runs (default 100;
// 1000 takes about a minute to set up).
const viewEnv = "GITOPSIM_BENCH_VIEW"

// BenchmarkWebView measures what the web view costs to read a fleet: the
// state a page loads (GET /api/state: every cluster's connectivity and
// configurations, the timeline and the spans), against the same-run
// baseline of reading the same through ARM with the Azure SDK (list the
// connected clusters, then each cluster's configurations), which is
// what a dashboard built on the public API would do.
//
// A fleet of shared-API clusters with one configuration each is onboarded
// on a virtual clock that does not move, so the agents stay idle and the
// numbers are the reads alone. Reported per fleet size: state-ms and
// arm-ms (one full read each), state-vs-arm (their ratio; below 1 the
// view is cheaper than the API it summarises) and state-KB.
func BenchmarkWebView(b *testing.B) {
	largest := largestFleet(b, viewEnv, 100)
	backend := sharedEnvtest(b)
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("clusters=%d", n), func(b *testing.B) {
			if n > largest {
				b.Skipf("set %s=%d to run it", viewEnv, n)
			}
			s, err := sim.New(sim.Options{Workdir: b.TempDir(), Clock: clock.NewVirtual(time.Time{}), SharedCluster: backend, Local: sim.LocalCluster{Disabled: true}})
			rec := ui.NewRecorder(ui.RecorderOptions{})
			if err == nil {
				defer rec.Attach(s)()
			}
			stop := startSim(b, s, err)
			defer func() {
				if err := stop(); err != nil {
					b.Error(err)
				}
			}()
			clusters, err := s.OnboardFleet(b.Context(), sim.FleetOptions{Count: n, ResourceGroups: []string{"view-1", "view-2", "view-3", "view-4"}})
			if err != nil {
				b.Fatal(err)
			}
			configs := configsClient(b, s)
			az, err := azsdk.New(s.Endpoints().ARM)
			if err != nil {
				b.Fatal(err)
			}
			ccs, err := armhybridkubernetes.NewConnectedClusterClient(az.SubscriptionID, az.Credential, az.Options)
			if err != nil {
				b.Fatal(err)
			}
			for _, c := range clusters {
				_, err := configs.CreateOrUpdate(b.Context(), c.ResourceGroup, "Microsoft.Kubernetes", "connectedClusters", c.Name, "baseline",
					armkubernetesconfiguration.SourceControlConfiguration{Properties: &armkubernetesconfiguration.SourceControlConfigurationProperties{
						RepositoryURL: to.Ptr(s.Git().HTTPSURL() + "/baseline.git"), OperatorNamespace: to.Ptr("baseline"), OperatorInstanceName: to.Ptr("baseline"),
						OperatorType: to.Ptr(armkubernetesconfiguration.OperatorTypeFlux), OperatorScope: to.Ptr(armkubernetesconfiguration.OperatorScopeTypeNamespace),
					}}, nil)
				if err != nil {
					b.Fatal(err)
				}
			}
			view, err := ui.New(ui.Options{Sim: s, Recorder: rec})
			if err != nil {
				b.Fatal(err)
			}
			if err := view.Start(b.Context()); err != nil {
				b.Fatal(err)
			}
			defer func() { _ = view.Stop(b.Context()) }()

			var stateT, armT time.Duration
			var stateBytes int
			for b.Loop() {
				t0 := time.Now()
				resp, err := http.Get(view.URL() + "api/state")
				if err != nil {
					b.Fatal(err)
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				var st ui.State
				if err == nil {
					err = json.Unmarshal(body, &st)
				}
				if err != nil || len(st.Clusters) != n || len(st.Clusters[0].Configurations) != 1 {
					b.Fatalf("state: %v, %d clusters", err, len(st.Clusters))
				}
				stateT += time.Since(t0)
				stateBytes = len(body)

				t0 = time.Now()
				seen, cfgs := 0, 0
				pager := ccs.NewListBySubscriptionPager(nil)
				for pager.More() {
					page, err := pager.NextPage(b.Context())
					if err != nil {
						b.Fatal(err)
					}
					for _, cc := range page.Value {
						seen++
						id, err := azarm.ParseResourceID(*cc.ID)
						if err != nil {
							b.Fatal(err)
						}
						rg := id.ResourceGroupName
						cp := configs.NewListPager(rg, "Microsoft.Kubernetes", "connectedClusters", *cc.Name, nil)
						for cp.More() {
							p, err := cp.NextPage(b.Context())
							if err != nil {
								b.Fatal(err)
							}
							cfgs += len(p.Value)
						}
					}
				}
				if seen != n || cfgs != n {
					b.Fatalf("arm: %d clusters, %d configurations", seen, cfgs)
				}
				armT += time.Since(t0)
			}
			iters := float64(b.N)
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(float64(stateT.Milliseconds())/iters, "state-ms")
			b.ReportMetric(float64(armT.Milliseconds())/iters, "arm-ms")
			b.ReportMetric(stateT.Seconds()/armT.Seconds(), "state-vs-arm")
			b.ReportMetric(float64(stateBytes)/1024, "state-KB")
		})
	}
}
