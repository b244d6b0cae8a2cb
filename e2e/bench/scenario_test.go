package bench

import (
	"context"
	"testing"
	"time"

	"github.com/gitopsim/gitopsim/sim/cluster"
	"github.com/gitopsim/gitopsim/sim/scenario"
)

func newRunner(b *testing.B, parallel int) *scenario.Runner {
	b.Helper()
	r, err := scenario.New(scenario.Options{Cluster: cluster.Options{Backend: cluster.Envtest}, Parallel: parallel, Workdir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	if err := r.Available(); err != nil {
		b.Fatalf("envtest cannot start here (run `make tools`): %v", err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = r.Close(ctx)
	})
	return r
}

// BenchmarkScenarioLibrary runs all of scenarios/ the way `gitopsim run -p
// 2 scenarios/` does, control-plane start included (the goal is under 60 s
// on a 2-core machine).
//
// Reported: library-s (wall seconds per run of the library), one
// control-plane start (controlplane-s, the baseline measured in the same
// iteration) and their ratio, and virtual-h/wall-s: simulated hours per
// wall second over the whole library.
func BenchmarkScenarioLibrary(b *testing.B) {
	files, err := scenario.Files([]string{"../../scenarios"})
	if err != nil {
		b.Fatal(err)
	}
	var lib, cp, virt time.Duration
	for b.Loop() {
		r := newRunner(b, 2)
		t0 := time.Now()
		results, err := r.RunFiles(b.Context(), files)
		lib += time.Since(t0)
		if err != nil {
			b.Fatal(err)
		}
		for _, res := range results {
			if !res.Passed {
				b.Fatalf("%s failed: %v", res.Name, res.Failures)
			}
			virt += res.Virtual
		}
		_ = r.Close(b.Context())

		// Baseline: what starting one control plane costs here.
		be, err := cluster.New(cluster.Options{Backend: cluster.Envtest, Workdir: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := be.Start(b.Context()); err != nil {
			b.Fatal(err)
		}
		cp += time.Since(t1)
		_ = be.Stop(b.Context())
	}
	n := float64(b.N)
	b.ReportMetric(lib.Seconds()/n, "library-s")
	b.ReportMetric(cp.Seconds()/n, "controlplane-s")
	b.ReportMetric(lib.Seconds()/cp.Seconds(), "library/controlplane")
	b.ReportMetric(virt.Hours()/lib.Seconds(), "virtual-h/wall-s")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkCredentialExpiry runs the 48-hour credential-expiry scenario
// alone on a warm control plane (the goal is under 5 s).
//
// Reported: scenario-s (wall seconds, control-plane reset included) and
// virtual-h/wall-s.
func BenchmarkCredentialExpiry(b *testing.B) {
	sc, err := scenario.Load("../../scenarios/credential-expiry.yaml")
	if err != nil {
		b.Fatal(err)
	}
	r := newRunner(b, 1)
	r.Run(b.Context(), []*scenario.Scenario{sc}) // start the control plane
	var wall, virt time.Duration
	for b.Loop() {
		t0 := time.Now()
		res := r.Run(b.Context(), []*scenario.Scenario{sc})[0]
		wall += time.Since(t0)
		if !res.Passed {
			b.Fatalf("failed: %v", res.Failures)
		}
		virt += res.Virtual
	}
	b.ReportMetric(wall.Seconds()/float64(b.N), "scenario-s")
	b.ReportMetric(virt.Hours()/wall.Seconds(), "virtual-h/wall-s")
	b.ReportMetric(0, "ns/op")
}
