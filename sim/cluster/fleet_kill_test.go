package cluster_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gitopsim/gitopsim/sim/cluster"
)

// fleetChildEnv makes this test binary a process that starts a fleet
// with one member in the workdir the variable names, says "ready" and
// waits to be killed.
const fleetChildEnv = "GITOPSIM_TEST_FLEET_CHILD"

func init() {
	wd := os.Getenv(fleetChildEnv)
	if wd == "" {
		return
	}
	ctx := context.Background()
	f, err := cluster.NewFleet(cluster.FleetOptions{Workdir: wd})
	if err == nil {
		err = f.Start(ctx)
	}
	if err == nil {
		_, err = f.Add(ctx, "edge-1")
	}
	if err != nil {
		os.Stdout.WriteString("error: " + err.Error() + "\n")
		os.Exit(1)
	}
	os.Stdout.WriteString("ready\n")
	select {}
}

// TestFleetDiesWithGitopsim kills a process running a fleet outright
// (SIGKILL: no Stop, no signal handler): its members' API servers and
// controller-managers die with it, and so does nothing else.
func TestFleetDiesWithGitopsim(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a kube-apiserver")
	}
	if _, err := cluster.FindAssets(""); err != nil {
		t.Skip(err)
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("no setpriv (util-linux): the fleet's processes cannot be told to die with gitopsim here")
	}
	wd := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fleetChildEnv+"="+wd)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		// A failure here must not leave processes for the next test.
		left, _ := cluster.Leftovers(wd)
		for _, p := range left {
			_ = syscall.Kill(p.PID, syscall.SIGKILL)
		}
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		t.Fatalf("the fleet process did not start its fleet: %q %v", line, err)
	}
	if left, _ := cluster.Leftovers(wd); len(left) != 3 {
		t.Fatalf("processes of the fleet %v, want etcd, an API server and a controller-manager", left)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	var left []cluster.Process
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		if left, _ = cluster.Leftovers(wd); len(left) == 0 {
			return
		}
		select {
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Errorf("processes that outlived the killed gitopsim: %v", left)
}
