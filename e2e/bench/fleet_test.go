package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/kubernetesconfiguration/armkubernetesconfiguration/v2"
	"k8s.io/client-go/rest"

	"github.com/gitopsim/gitopsim/sim"
	"github.com/gitopsim/gitopsim/sim/clock"
	"github.com/gitopsim/gitopsim/sim/cluster"
)

// dedicatedEnv names the largest fleet BenchmarkFleetDedicated runs:
// every cluster is a kube-apiserver and a kube-controller-manager of its
// own (about 140 MB and 1.5 s of a core each), so 50 clusters take about
// 7 GiB and 100 about 14 GiB and several minutes, too much for every
// `make bench`; GITOPSIM_BENCH_DEDICATED=100 asks for them.
const dedicatedEnv = "GITOPSIM_BENCH_DEDICATED"

// Process names of a control plane, as cluster.Leftovers reports them.
const (
	apiserverProc = "kube-apiserver"
	kcmProc       = "kube-controller-manager"
	etcdProc      = "etcd"
)

// dedicatedRolloutPolls bounds the rollout in config polls (30 virtual
// seconds each with the realistic profile): 20 virtual minutes, four git
// poll intervals, is far more than an agent that works needs.
const dedicatedRolloutPolls = 40

// dedicatedWorkers is how many same-instant clock tasks run at once:
// every agent has its own API server, so their polls are as independent
// as real clusters' are, and running them one by one would measure the
// API servers' latency added up rather than the fleet. 8 is what
// `gitopsim run --concurrent-tasks 8` does.
const dedicatedWorkers = 8

// BenchmarkFleetDedicated measures a fleet of connected clusters that
// each have a Kubernetes API of their own (sim.FleetOptions.Dedicated: a
// trimmed kube-apiserver and a minimal kube-controller-manager per
// cluster, all on one fleet etcd), at 10, 50 and 100 clusters: how long
// the fleet takes to come up, what each cluster costs in memory, and how
// long a GitOps configuration per cluster takes to roll out.
//
// Each iteration starts a simulator on a virtual clock with no local
// cluster and no shared API (noSharedAPI), onboards the fleet with
// OnboardFleet and reports, per fleet size:
//
//   - start-s, s/cluster: wall seconds from OnboardFleet's call to every
//     cluster connected with its agent running (the fleet's etcd
//     included), and that divided by the number of clusters;
//   - apiserver-PSS-MB/cluster, kcm-PSS-MB/cluster, etcd-PSS-MB: the
//     proportional set size (/proc/<pid>/smaps_rollup) of the fleet's API
//     servers and controller-managers, summed and divided by the number
//     of clusters, and of the fleet's etcd, once the fleet is up. PSS, not
//     RSS: the members share the binaries' text, which RSS would count
//     once per process;
//   - rollout-wall-s: wall seconds from the first sourceControlConfiguration
//     PUT (one per cluster, through the Azure SDK, of the baseline repo of
//     BenchmarkPolicyFleet) to every configuration reporting Installed
//     with that revision synced, the virtual clock advancing one config
//     poll at a time (see rollout).
//
// The baseline, measured once per run before any fleet: one standalone
// envtest cluster (its own etcd, a default kube-apiserver and a
// kube-controller-manager with every controller), started and measured
// the same way, then stopped so that it takes nothing from the fleet.
// start-vs-envtest is s/cluster over its start time, pss-vs-envtest the
// fleet's apiserver+kcm PSS per cluster over its apiserver+kcm+etcd PSS;
// envtest-start-s and envtest-PSS-MB are the baseline itself.
//
// Goal: 100 dedicated clusters up in under 3 minutes and under 14 GiB.
// Sizes above GITOPSIM_BENCH_DEDICATED (default 10) are skipped.
func BenchmarkFleetDedicated(b *testing.B) {
	largest := largestFleet(b, dedicatedEnv, 10)
	assets := benchAssets(b)
	base := standaloneEnvtest(b, assets.Dir)
	b.Logf("standalone envtest: started in %.2f s, apiserver+kcm+etcd PSS %.0f MB", base.start.Seconds(), base.pssMB)
	for _, n := range []int{10, 50, 100} {
		b.Run(fmt.Sprintf("clusters=%d", n), func(b *testing.B) {
			if n > largest {
				b.Skipf("set %s=%d to run it", dedicatedEnv, n)
			}
			var sum dedicatedResult
			for b.Loop() {
				r := dedicatedFleet(b, assets.Dir, n)
				sum.start += r.start
				sum.rollout += r.rollout
				sum.apiserverMB += r.apiserverMB
				sum.kcmMB += r.kcmMB
				sum.etcdMB += r.etcdMB
			}
			iters, clusters := float64(b.N), float64(n)
			perCluster := sum.start.Seconds() / iters / clusters
			apiserver, kcm := sum.apiserverMB/iters/clusters, sum.kcmMB/iters/clusters
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(sum.start.Seconds()/iters, "start-s")
			b.ReportMetric(perCluster, "s/cluster")
			b.ReportMetric(apiserver, "apiserver-PSS-MB/cluster")
			b.ReportMetric(kcm, "kcm-PSS-MB/cluster")
			b.ReportMetric(sum.etcdMB/iters, "etcd-PSS-MB")
			b.ReportMetric(sum.rollout.Seconds()/iters, "rollout-wall-s")
			b.ReportMetric(perCluster/base.start.Seconds(), "start-vs-envtest")
			b.ReportMetric((apiserver+kcm)/base.pssMB, "pss-vs-envtest")
			b.ReportMetric(base.start.Seconds(), "envtest-start-s")
			b.ReportMetric(base.pssMB, "envtest-PSS-MB")
		})
	}
}

// envtestBaseline is the standalone envtest cluster the fleet is
// compared with.
type envtestBaseline struct {
	start time.Duration
	// pssMB is its kube-apiserver, kube-controller-manager and etcd
	// together.
	pssMB float64
}

// standaloneEnvtest starts one envtest cluster, measures its start and
// its processes' PSS, and stops it again.
func standaloneEnvtest(b *testing.B, assetsDir string) envtestBaseline {
	b.Helper()
	wd := b.TempDir()
	backend, err := cluster.New(cluster.Options{Backend: cluster.Envtest, AssetsDir: assetsDir, Workdir: wd})
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Now()
	err = backend.Start(b.Context())
	start := time.Since(t0)
	if err != nil {
		// A failed Start stops what it started.
		b.Fatalf("standalone envtest: %v", err)
	}
	pss, pssErr := controlPlanePSS(wd)
	if err := backend.Stop(context.Background()); err != nil {
		b.Errorf("standalone envtest: stop: %v", err)
	}
	checkNoLeftovers(b, wd)
	if pssErr != nil {
		b.Fatalf("standalone envtest: %v", pssErr)
	}
	if err := pss.expect(1, 1); err != nil {
		b.Fatalf("standalone envtest: %v", err)
	}
	return envtestBaseline{start: start, pssMB: pss.sum(apiserverProc) + pss.sum(kcmProc) + pss.sum(etcdProc)}
}

// dedicatedResult is one iteration of BenchmarkFleetDedicated.
type dedicatedResult struct {
	start, rollout             time.Duration
	apiserverMB, kcmMB, etcdMB float64
}

// dedicatedFleet runs one iteration: a simulator, a dedicated fleet of n
// clusters, its memory, then a configuration per cluster rolled out. The
// simulator, and with it every process of the fleet, stops before it
// returns.
func dedicatedFleet(b *testing.B, assetsDir string, n int) dedicatedResult {
	ctx := b.Context()
	clk := clock.NewVirtual(time.Time{})
	clk.SetWorkers(dedicatedWorkers)
	wd := b.TempDir()
	s, err := sim.New(sim.Options{
		Workdir: wd, Clock: clk, SharedCluster: noSharedAPI{},
		// Where the fleet finds its binaries; the rest of Cluster is
		// unused with SharedCluster set.
		Cluster: cluster.Options{AssetsDir: assetsDir},
		Local:   sim.LocalCluster{Disabled: true},
		Logger:  slog.New(slog.DiscardHandler),
		// On the virtual clock a poll interval costs no wall time, only
		// the work done at each poll does; the realistic intervals give
		// each config poll the heartbeats and git polls a real agent
		// makes in that time, where the fast profile would add a
		// heartbeat and two git polls to every one.
		AgentProfile: "realistic",
	})
	stop := startSim(b, s, err)
	defer func() {
		if err := stop(); err != nil {
			b.Errorf("stop the simulator: %v", err)
		}
		checkNoLeftovers(b, wd, filepath.Join(wd, "fleet"))
	}()

	const ns, repo = "baseline", "platform/baseline"
	rev := baselineRepo(b, s, repo, ns)
	groups := make([]string, fleetGroups)
	for i := range groups {
		groups[i] = fmt.Sprintf("dedicated-%d", i+1)
	}

	t0 := time.Now()
	clusters, err := s.OnboardFleet(ctx, sim.FleetOptions{Count: n, Dedicated: true, ResourceGroups: groups})
	if err != nil {
		b.Fatal(err)
	}
	res := dedicatedResult{start: time.Since(t0)}

	pss, err := controlPlanePSS(filepath.Join(wd, "fleet"))
	if err != nil {
		b.Fatalf("fleet: %v", err)
	}
	if err := pss.expect(n, 1); err != nil {
		b.Fatalf("fleet: %v", err)
	}
	res.apiserverMB, res.kcmMB, res.etcdMB = pss.sum(apiserverProc), pss.sum(kcmProc), pss.sum(etcdProc)

	var virtual time.Duration
	res.rollout, virtual = rollout(b, s, clk, clusters, s.Git().HTTPSURL()+"/"+repo+".git", ns, rev.String()[:7])
	b.Logf("%d dedicated clusters: up in %.1f s, fleet PSS %.2f GiB (apiservers %.0f MB, kcms %.0f MB, etcd %.0f MB), rollout %.1f s wall, %v virtual",
		n, res.start.Seconds(), (res.apiserverMB+res.kcmMB+res.etcdMB)/1024, res.apiserverMB, res.kcmMB, res.etcdMB, res.rollout.Seconds(), virtual)
	return res
}

// rolloutConfig names the configuration rollout puts on every cluster.
const rolloutConfig = "baseline"

// rollout PUTs a configuration of repoURL on every cluster through the
// Azure SDK, then advances the clock one config poll at a time until
// every configuration has synced revision short, and returns the wall
// and virtual time from the first PUT. Installed alone is not enough:
// Arc reports Installed once the operator is, whether or not the repo
// could be read, so a configuration counts once its message names the
// revision and carries no warning or error. After
// dedicatedRolloutPolls it fails, naming a configuration still pending
// and its status.
func rollout(b *testing.B, s *sim.Sim, clk *clock.Virtual, clusters []*sim.Connected, repoURL, ns, short string) (wall, virtual time.Duration) {
	b.Helper()
	ctx := b.Context()
	configs := configsClient(b, s)
	scc := armkubernetesconfiguration.SourceControlConfiguration{Properties: &armkubernetesconfiguration.SourceControlConfigurationProperties{
		RepositoryURL: to.Ptr(repoURL), OperatorNamespace: to.Ptr(ns), OperatorInstanceName: to.Ptr(ns),
		OperatorType: to.Ptr(armkubernetesconfiguration.OperatorTypeFlux), OperatorScope: to.Ptr(armkubernetesconfiguration.OperatorScopeTypeCluster),
		OperatorParams: to.Ptr("--git-readonly --git-branch=main"), EnableHelmOperator: to.Ptr(false),
	}}
	t0, v0 := time.Now(), clk.Now()
	for _, c := range clusters {
		if _, err := configs.CreateOrUpdate(ctx, c.ResourceGroup, "Microsoft.Kubernetes", "connectedClusters", c.Name, rolloutConfig, scc, nil); err != nil {
			b.Fatalf("PUT configuration on %s: %v", c.Name, err)
		}
	}
	step := clusters[0].Agent.Intervals().ConfigPoll
	synced := make([]bool, len(clusters))
	for polls := 0; ; polls++ {
		var pending []*sim.Connected
		for i, c := range clusters {
			if !synced[i] {
				synced[i] = configSynced(ctx, s, c.ID+"/providers/Microsoft.KubernetesConfiguration/sourceControlConfigurations/"+rolloutConfig, short)
			}
			if !synced[i] {
				pending = append(pending, c)
			}
		}
		if len(pending) == 0 {
			return time.Since(t0), clk.Since(v0)
		}
		if polls == dedicatedRolloutPolls {
			c := pending[0]
			b.Fatalf("rollout: %d of %d configurations have not synced revision %s after %d config polls (%v virtual, %.1f s wall); %s: %s",
				len(pending), len(clusters), short, polls, clk.Since(v0), time.Since(t0).Seconds(), c.Name, complianceOf(ctx, configs, c, rolloutConfig))
		}
		clk.Advance(step)
	}
}

// configSynced reports whether the configuration id is Installed and has
// synced revision short cleanly. It reads through
// the ARM server in process, which costs nothing next to the fleet.
func configSynced(ctx context.Context, s *sim.Sim, id, short string) bool {
	code, body := s.ARM().Dispatch(ctx, http.MethodGet, id+"?api-version=2021-03-01", nil, "")
	if code != http.StatusOK {
		return false
	}
	var cfg struct {
		Properties struct {
			ComplianceStatus struct {
				ComplianceState string `json:"complianceState"`
				Message         string `json:"message"`
				MessageLevel    string `json:"messageLevel"`
			} `json:"complianceStatus"`
		} `json:"properties"`
	}
	if json.Unmarshal(body, &cfg) != nil {
		return false
	}
	st := cfg.Properties.ComplianceStatus
	return st.ComplianceState == "Installed" && st.MessageLevel == "Information" && strings.Contains(st.Message, "synced revision "+short)
}

// complianceOf describes a configuration's compliance status as the
// Azure SDK reads it, for the failure message of a stuck rollout.
func complianceOf(ctx context.Context, configs *armkubernetesconfiguration.SourceControlConfigurationsClient, c *sim.Connected, name string) string {
	got, err := configs.Get(ctx, c.ResourceGroup, "Microsoft.Kubernetes", "connectedClusters", c.Name, name, nil)
	if err != nil {
		return fmt.Sprintf("GET configuration: %v", err)
	}
	var state, message string
	if p := got.Properties; p != nil && p.ComplianceStatus != nil {
		if st := p.ComplianceStatus.ComplianceState; st != nil {
			state = string(*st)
		}
		if m := p.ComplianceStatus.Message; m != nil {
			message = *m
		}
	}
	return fmt.Sprintf("complianceState %q, message %q", state, message)
}

// processPSS is the PSS in MB (kB/1024, as this package's other -MB
// metrics) of each process of a control plane, by process name.
type processPSS map[string][]float64

// sum is the total PSS of the processes named name.
func (p processPSS) sum(name string) float64 {
	total := 0.0
	for _, mb := range p[name] {
		total += mb
	}
	return total
}

// expect checks that p holds members API servers and controller-managers
// and etcds etcd, and nothing else: a count that is off means the
// processes were not told apart as this benchmark assumes.
func (p processPSS) expect(members, etcds int) error {
	want := map[string]int{apiserverProc: members, kcmProc: members, etcdProc: etcds}
	ok := len(p) == len(want)
	for name, n := range want {
		ok = ok && len(p[name]) == n
	}
	if ok {
		return nil
	}
	var found []string
	for name, mbs := range p {
		found = append(found, fmt.Sprintf("%d %s", len(mbs), name))
	}
	sort.Strings(found)
	return fmt.Errorf("control-plane processes: found %s, want %d %s, %d %s and %d %s",
		strings.Join(found, ", "), members, apiserverProc, members, kcmProc, etcds, etcdProc)
}

// controlPlanePSS finds the processes of the control plane started in
// workdir (through cluster.Leftovers, which matches their command lines
// against the workdir) and reads their PSS.
func controlPlanePSS(workdir string) (processPSS, error) {
	procs, err := cluster.Leftovers(workdir)
	if err != nil {
		return nil, fmt.Errorf("find control-plane processes: %w", err)
	}
	out := processPSS{}
	for _, p := range procs {
		kb, err := pssKB(p.PID)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.Command, err)
		}
		out[p.Command] = append(out[p.Command], float64(kb)/1024)
	}
	return out, nil
}

// pssKB reads a process's proportional set size: its private pages plus
// its share of the pages it shares with others.
func pssKB(pid int) (int, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0, fmt.Errorf("pss of pid %d: %w", pid, err)
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "Pss:"); ok {
			f := strings.Fields(v)
			if len(f) == 0 {
				break
			}
			kb, err := strconv.Atoi(f[0])
			if err != nil {
				return 0, fmt.Errorf("pss of pid %d: %w", pid, err)
			}
			return kb, nil
		}
	}
	return 0, fmt.Errorf("pss of pid %d: no Pss line in smaps_rollup", pid)
}

// checkNoLeftovers fails the benchmark if a control-plane process started
// in one of workdirs still runs.
func checkNoLeftovers(b *testing.B, workdirs ...string) {
	b.Helper()
	for _, wd := range workdirs {
		left, err := cluster.Leftovers(wd)
		if err != nil {
			b.Errorf("leftovers in %s: %v", wd, err)
		}
		for _, p := range left {
			b.Errorf("still running after stop: %s (pid %d) of %s", p.Command, p.PID, wd)
		}
	}
}

// noSharedAPI is the simulator's Kubernetes backend here: every
// connected cluster has its own API in the fleet and there is no local
// cluster, so nothing uses a shared one, and starting one anyway would
// put an etcd, an API server and a controller-manager that no cluster
// uses on the two cores the fleet starts on. The simulator neither
// starts nor stops a SharedCluster.
type noSharedAPI struct{}

func (noSharedAPI) Name() string                { return "none" }
func (noSharedAPI) Available() error            { return nil }
func (noSharedAPI) Start(context.Context) error { return nil }
func (noSharedAPI) Stop(context.Context) error  { return nil }
func (noSharedAPI) AdminConfig() *rest.Config   { return nil }
func (noSharedAPI) Kubeconfig() string          { return "" }
func (noSharedAPI) NewUser(context.Context, string, []string) (*cluster.User, error) {
	return nil, errors.New("bench: no shared Kubernetes API, only the fleet's")
}
