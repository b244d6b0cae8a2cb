package scenario_test

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gitopsim/gitopsim/sim/cluster"
	"github.com/gitopsim/gitopsim/sim/scenario"
)

var (
	update = flag.Bool("update", false, "rewrite scenarios/*.golden from this run")
	only   = flag.String("scenario", "", "run only scenarios whose file name contains this")
)

// TestLibrary runs every scenario in scenarios/ on envtest and compares
// each transcript with its golden file.
func TestLibrary(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the scenario library on envtest")
	}
	files, err := scenario.Files([]string{"../../scenarios"})
	if err != nil {
		t.Fatal(err)
	}
	if *only != "" {
		var keep []string
		for _, f := range files {
			if strings.Contains(filepath.Base(f), *only) {
				keep = append(keep, f)
			}
		}
		files = keep
	}
	var timeline strings.Builder
	r := newRunner(t, scenario.Options{Parallel: 2, Golden: true, UpdateGolden: *update, Out: &timeline})
	results, err := r.RunFiles(t.Context(), files)
	if err != nil {
		t.Fatal(err)
	}
	for _, res := range results {
		t.Run(res.Name, func(t *testing.T) {
			if !res.Passed {
				// The agent's events explain most failures (a git error, a
				// retry that shifted a time); the bundle itself goes with
				// the test's temporary directory.
				events, _ := os.ReadFile(filepath.Join(res.Diagnostics, "agent-events.txt"))
				t.Errorf("%s failed:\n%s\n%s\nagent events:\n%s", res.File, strings.Join(res.Failures, "\n"), res.Timeline, events)
			}
		})
	}
}

// newRunner makes a runner on envtest whose control planes stop with the
// test; it fails the test when envtest cannot run here.
func newRunner(t *testing.T, o scenario.Options) *scenario.Runner {
	t.Helper()
	o.Cluster = cluster.Options{Backend: cluster.Envtest}
	o.Workdir = t.TempDir()
	r, err := scenario.New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Available(); err != nil {
		t.Fatalf("envtest cannot start here (run `make tools`): %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := r.Close(ctx); err != nil {
			t.Error(err)
		}
	})
	return r
}

// TestFleetWithConcurrentTasks runs the 50-cluster policy baseline with
// same-instant tasks on four workers, as `gitopsim run --concurrent-tasks
// 4` does: the agents, ARM and Azure Policy run concurrently (under -race
// in make test) and the scenario's expectations hold, though its
// transcript may differ from the golden within an instant.
func TestFleetWithConcurrentTasks(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a 50-cluster scenario on envtest")
	}
	r := newRunner(t, scenario.Options{ConcurrentTasks: 4})
	results, err := r.RunFiles(t.Context(), []string{"../../scenarios/policy-baseline.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 1 || !results[0].Passed {
		t.Fatalf("policy-baseline with concurrent tasks: %+v", results)
	}
}

// TestFleetBackend runs two clusters of a group on the fleet backend:
// the same ConfigMap from two repos stays two objects. (On the shared
// backend the scenario fails: the later apply overwrites the earlier.)
func TestFleetBackend(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two kube-apiservers")
	}
	r := newRunner(t, scenario.Options{})
	results, err := r.RunFiles(t.Context(), []string{"testdata/fleet-backend.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 1 || !results[0].Passed {
		t.Fatalf("fleet-backend: %+v", results)
	}
}
