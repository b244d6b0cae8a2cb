package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/gitopsim/gitopsim/sim"
)

// TestBuiltBinaryComesUp runs a real `go build` of gitopsim, not the test
// binary: libraries behave differently in test binaries (the Azure SDK
// allows sub-second polling only there), and `make up` runs the real one.
func TestBuiltBinaryComesUp(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	bin := filepath.Join(t.TempDir(), "gitopsim")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	workdir := filepath.Join(t.TempDir(), "wd")
	cmd := exec.Command(bin, "up", "--workdir", workdir)
	path, exited, errb := startUp(t, cmd, workdir)
	e, err := sim.ReadEndpoints(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(e.ConnectedClusters) != 1 {
		t.Errorf("connected clusters: %+v", e.ConnectedClusters)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := <-exited; err != nil {
		t.Errorf("exit after SIGINT: %v\n%s", err, errb.String())
	}
}
