package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/authorization/armauthorization/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armpolicy"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/google/uuid"

	"github.com/gitopsim/gitopsim/sim"
	"github.com/gitopsim/gitopsim/sim/azsdk"
	"github.com/gitopsim/gitopsim/sim/clock"
	"github.com/gitopsim/gitopsim/sim/cluster"
	"github.com/gitopsim/gitopsim/sim/gitserver"
	"github.com/gitopsim/gitopsim/sim/policy"
	"github.com/gitopsim/gitopsim/sim/policy/engine"
)

// fleetEnv names the largest fleet BenchmarkPolicyFleet runs: the 1,000
// cluster case takes over a minute of both cores and about 1.5 GiB, too
// much for every `make bench`, so it runs only when
// GITOPSIM_BENCH_FLEET=1000 asks for it.
const fleetEnv = "GITOPSIM_BENCH_FLEET"

// fleetGroups is how many resource groups a fleet is spread over.
const fleetGroups = 4

// baselineFiles is the repo the policy deploys: what a platform team puts
// on every cluster (a read-only binding for auditors, one for the team's
// namespace, and a default-deny ingress policy).
func baselineFiles(ns string) map[string]*string {
	return map[string]*string{
		"rbac/auditors.yaml": to.Ptr(`apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: ` + ns + `-auditors
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: view
subjects:
- apiGroup: rbac.authorization.k8s.io
  kind: Group
  name: auditors
`),
		"rbac/team.yaml": to.Ptr(`apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: team-edit
  namespace: ` + ns + `
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: edit
subjects:
- apiGroup: rbac.authorization.k8s.io
  kind: Group
  name: platform-team
`),
		"network/default-deny.yaml": to.Ptr(`apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: default-deny-ingress
  namespace: ` + ns + `
spec:
  podSelector: {}
  policyTypes:
  - Ingress
`),
	}
}

// BenchmarkPolicyFleet measures Azure Policy at fleet scale on virtual
// time: a subscription-wide assignment of the built-in "[Preview]: Deploy
// GitOps to Kubernetes cluster" (no secrets) with a managed identity that
// holds Contributor, with the documented timing (policy.DefaultTiming).
// Once the assignment is in effect, N connected clusters (spread over a
// few resource groups, all agents on one shared envtest, realistic agent
// intervals) are onboarded, eight at a time; DeployIfNotExists reaches
// each 10 minutes after its creation, its agent installs the
// configuration at its next poll and syncs the baseline repo, and the
// evaluation Azure Policy makes 15 minutes after the cluster's creation
// finds it Compliant. The clock advances in steps of the agents' config
// poll interval until every configuration has synced the baseline's
// revision (Installed alone says only that the operator is) and every
// cluster is Compliant.
//
// Reported per fleet size: wall-s (wall seconds from the assignment to
// all compliant, onboarding included), sim-min (virtual minutes for the
// same), sim-h/wall-s, MiB/cluster (Go heap live after GC, growth from
// before onboarding to all compliant, divided by N), rss-MiB/cluster (the
// same for the process's resident set) and peak-rss-MiB (the process's
// high-water mark: gitopsim and this benchmark, without the envtest
// processes). Goal: 1,000 clusters under 60 wall seconds and under 2 GiB.
func BenchmarkPolicyFleet(b *testing.B) {
	largest := largestFleet(b, fleetEnv, 100)
	backend := sharedEnvtest(b)
	run := 0
	for _, n := range []int{10, 100, 1000} {
		// tasks is the virtual clock's workers for same-instant tasks:
		// 1 is the reproducible default, 8 what `gitopsim run
		// --concurrent-tasks 8` does; benchstat compares the two.
		for _, tasks := range []int{1, 8} {
			b.Run(fmt.Sprintf("clusters=%d/tasks=%d", n, tasks), func(b *testing.B) {
				if n > largest {
					b.Skipf("set %s=%d to run it", fleetEnv, n)
				}
				var wall, virt time.Duration
				var heap, rss float64
				for b.Loop() {
					run++
					r := policyFleet(b, backend, n, tasks, fmt.Sprintf("r%d", run))
					wall += r.wall
					virt += r.virtual
					heap += r.heapMiB
					rss += r.rssMiB
				}
				iters := float64(b.N)
				b.ReportMetric(0, "ns/op")
				b.ReportMetric(wall.Seconds()/iters, "wall-s")
				b.ReportMetric(virt.Minutes()/iters, "sim-min")
				b.ReportMetric(virt.Hours()/wall.Seconds(), "sim-h/wall-s")
				b.ReportMetric(heap/iters/float64(n), "MiB/cluster")
				b.ReportMetric(rss/iters/float64(n), "rss-MiB/cluster")
				b.ReportMetric(procStatusMiB("VmHWM:"), "peak-rss-MiB")
			})
		}
	}
}

// fleetResult is one run of the fleet benchmark.
type fleetResult struct {
	wall, virtual   time.Duration
	heapMiB, rssMiB float64
}

// policyFleet runs the fleet scenario once: n clusters, names prefixed by
// run so that runs on the shared control plane do not meet.
func policyFleet(b *testing.B, backend cluster.Backend, n, tasks int, run string) fleetResult {
	ctx := b.Context()
	clk := clock.NewVirtual(time.Time{})
	clk.SetWorkers(tasks)
	timing := policy.DefaultTiming()
	s, err := sim.New(sim.Options{
		Workdir: b.TempDir(), Clock: clk, SharedCluster: backend,
		Local:        sim.LocalCluster{Disabled: true},
		Logger:       slog.New(slog.DiscardHandler),
		AgentProfile: "realistic",
		PolicyTiming: &timing,
	})
	defer startSim(b, s, err)()
	ns := "baseline-" + run
	repo := "platform/baseline-" + run
	rev := baselineRepo(b, s, repo, ns)
	az, err := azsdk.New(s.Endpoints().ARM)
	if err != nil {
		b.Fatal(err)
	}
	assignments, err := armpolicy.NewAssignmentsClient(az.SubscriptionID, az.Credential, az.Options)
	if err != nil {
		b.Fatal(err)
	}
	roles, err := armauthorization.NewRoleAssignmentsClient(az.SubscriptionID, az.Credential, az.Options)
	if err != nil {
		b.Fatal(err)
	}
	heap0, rss0 := liveHeapMiB(), procStatusMiB("VmRSS:")

	t0, v0 := time.Now(), clk.Now()
	scope := "/subscriptions/" + az.SubscriptionID
	params := map[string]*armpolicy.ParameterValuesValue{}
	for k, v := range map[string]string{
		"configurationResourceName": "baseline", "operatorInstanceName": "baseline", "operatorNamespace": ns,
		"operatorScope": "cluster", "operatorParams": "--git-readonly --git-branch=main",
		"repositoryUrl": s.Git().HTTPSURL() + "/" + repo + ".git", "enableHelmOperator": "false",
	} {
		params[k] = &armpolicy.ParameterValuesValue{Value: v}
	}
	a, err := assignments.Create(ctx, scope, "gitops-baseline-"+run, armpolicy.Assignment{
		Location: to.Ptr(sim.DefaultLocation),
		Identity: &armpolicy.Identity{Type: to.Ptr(armpolicy.ResourceIdentityTypeSystemAssigned)},
		Properties: &armpolicy.AssignmentProperties{
			PolicyDefinitionID: to.Ptr("/providers/Microsoft.Authorization/policyDefinitions/" + engine.BuiltInGitOpsNoSecrets),
			Parameters:         params,
		},
	}, nil)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := roles.Create(ctx, scope, uuid.NewString(), armauthorization.RoleAssignmentCreateParameters{
		Properties: &armauthorization.RoleAssignmentProperties{
			RoleDefinitionID: to.Ptr(scope + "/providers/Microsoft.Authorization/roleDefinitions/" + policy.RoleContributor),
			PrincipalID:      a.Identity.PrincipalID,
			PrincipalType:    to.Ptr(armauthorization.PrincipalTypeServicePrincipal),
		},
	}, nil); err != nil {
		b.Fatal(err)
	}
	// New clusters get DeployIfNotExists only once the assignment is in
	// effect; those made before need a remediation task.
	clk.Advance(timing.Assignment + time.Second)

	tOnboard := time.Now()
	clusters, err := onboardFleet(ctx, s, n, run)
	if err != nil {
		b.Fatal(err)
	}

	onboarding := time.Since(tOnboard)
	step := clusters[0].Agent.Intervals().ConfigPoll
	deadline := clk.Now().Add(timing.Deploy + timing.Resource + 10*time.Minute)
	synced := map[string]bool{}
	for {
		if pending := fleetPending(ctx, s, *a.ID, clusters, synced, rev.String()[:7]); pending == 0 {
			break
		} else if !clk.Now().Before(deadline) {
			b.Fatalf("%d of %d clusters not Compliant with the baseline synced %v after onboarding", pending, n, clk.Since(v0))
		}
		clk.Advance(step)
	}
	res := fleetResult{wall: time.Since(t0), virtual: clk.Since(v0)}
	res.heapMiB, res.rssMiB = liveHeapMiB()-heap0, procStatusMiB("VmRSS:")-rss0
	b.Logf("%d clusters: %.1f wall s (onboarding %.1f s), %.0f virtual min, heap +%.0f MiB, RSS +%.0f MiB, %d clock runs",
		n, res.wall.Seconds(), onboarding.Seconds(), res.virtual.Minutes(), res.heapMiB, res.rssMiB, clk.Runs())
	return res
}

// onboarders is how many clusters connect at once.
const onboarders = 8

// onboardFleet connects n clusters, a few at a time as a fleet does, at
// one virtual instant (nothing advances the clock meanwhile).
func onboardFleet(ctx context.Context, s *sim.Sim, n int, run string) ([]*sim.Connected, error) {
	clusters := make([]*sim.Connected, n)
	errs := make([]error, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for range onboarders {
		wg.Go(func() {
			for i := range next {
				clusters[i], errs[i] = s.Onboard(ctx, sim.OnboardOptions{Name: fmt.Sprintf("edge-%04d", i), ResourceGroup: fmt.Sprintf("fleet-%s-%d", run, i%fleetGroups)})
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return clusters, errors.Join(errs...)
}

// fleetPending counts the clusters not yet Compliant for the assignment
// with the baseline's revision short synced. A configuration is read (an
// ARM GET, in process) once its cluster is Compliant, until it has synced.
func fleetPending(ctx context.Context, s *sim.Sim, assignmentID string, clusters []*sim.Connected, synced map[string]bool, short string) int {
	compliant := map[string]bool{}
	for _, st := range s.Policy().States() {
		if strings.EqualFold(st.PolicyAssignmentID, assignmentID) && st.ComplianceState == engine.Compliant {
			compliant[strings.ToLower(st.ResourceID)] = true
		}
	}
	pending := 0
	for _, c := range clusters {
		id := strings.ToLower(c.ID)
		if !compliant[id] {
			pending++
			continue
		}
		if !synced[id] {
			synced[id] = configSynced(ctx, s, c.ID+"/providers/Microsoft.KubernetesConfiguration/sourceControlConfigurations/baseline", short)
		}
		if !synced[id] {
			pending++
		}
	}
	return pending
}

// sharedEnvtest starts an envtest that the fleets of a benchmark share,
// stopped when it ends.
func sharedEnvtest(b *testing.B) cluster.Backend {
	b.Helper()
	backend, err := cluster.New(cluster.Options{Backend: cluster.Envtest, AssetsDir: benchAssets(b).Dir, Workdir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	if err := backend.Start(b.Context()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = backend.Stop(context.Background()) })
	return backend
}

// startSim starts the simulator sim.New returned (failing the benchmark
// on err) and returns what stops it, which the caller defers: a fleet
// must be gone before the next iteration starts one.
func startSim(b *testing.B, s *sim.Sim, err error) (stop func() error) {
	b.Helper()
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Start(b.Context()); err != nil {
		b.Fatal(err)
	}
	return func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		return s.Stop(ctx)
	}
}

// baselineRepo makes the public repo repo holding baselineFiles(ns) on
// main and returns its commit.
func baselineRepo(b *testing.B, s *sim.Sim, repo, ns string) plumbing.Hash {
	b.Helper()
	if _, err := s.Git().CreateRepo(repo, gitserver.RepoOptions{Public: true, DefaultBranch: "main"}); err != nil {
		b.Fatal(err)
	}
	rev, err := s.Git().Commit(repo, "main", "baseline", baselineFiles(ns))
	if err != nil {
		b.Fatal(err)
	}
	return rev
}

// largestFleet is the largest fleet size a benchmark runs: the number
// in the environment variable env, or def.
func largestFleet(b *testing.B, env string, def int) int {
	b.Helper()
	v := os.Getenv(env)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		b.Fatalf("%s=%q: %v", env, v, err)
	}
	return n
}

// benchAssets finds the envtest binaries, or skips the benchmark.
func benchAssets(b *testing.B) *cluster.Assets {
	b.Helper()
	assets, err := cluster.FindAssets("")
	if err != nil {
		b.Skipf("envtest assets missing (run `make tools`): %v", err)
	}
	return assets
}

// liveHeapMiB is the Go heap's live bytes after a full collection.
func liveHeapMiB() float64 {
	runtime.GC()
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return float64(s[0].Value.Uint64()) / (1 << 20)
}

// procStatusMiB reads a kB field of /proc/self/status (VmRSS, VmHWM) in MiB.
func procStatusMiB(field string) float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}
