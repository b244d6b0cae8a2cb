package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/gitopsim/gitopsim/sim"
)

// TestUpStateDirSurvivesAFreshWorkdir is issue 20's story: up with a state
// dir, a configuration created with HTTPS credentials in its protected
// settings, stop, remove the work dir (make clean), start again. Everything
// comes back: the configuration, its protected settings, the repo, and
// the admin token those settings carry, so the new cluster is synced
// again. While the first up runs, a second on the same state dir is
// refused.
func TestUpStateDirSurvivesAFreshWorkdir(t *testing.T) {
	base, state := t.TempDir(), t.TempDir()
	first := filepath.Join(base, "first")
	cmd := gitopsim(t, "up", "--workdir", first, "--state-dir", state, "--no-ui", "--profile", "fast")
	path, exited, errb := startUp(t, cmd, first)
	e, err := sim.ReadEndpoints(path)
	if err != nil {
		t.Fatal(err)
	}
	userFlow(t, e)

	_, stderr, code := runGitopsim(t, "up", "--workdir", filepath.Join(base, "other"), "--state-dir", state, "--no-ui")
	if code == 0 || !strings.Contains(stderr, "is used by another gitopsim (pid") {
		t.Errorf("a second up on the same state dir: exit %d, stderr:\n%s", code, stderr)
	}
	interruptUp(t, cmd, exited, errb, first)
	if err := os.RemoveAll(first); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(state, "state.key")); err != nil {
		t.Errorf("the key is not kept with the state: %v", err)
	}

	second := filepath.Join(base, "second")
	cmd = gitopsim(t, "up", "--workdir", second, "--state-dir", state, "--no-ui", "--profile", "fast")
	path, exited, errb = startUp(t, cmd, second)
	defer interruptUp(t, cmd, exited, errb, second)
	e, err = sim.ReadEndpoints(path)
	if err != nil {
		t.Fatal(err)
	}
	cc := e.ConnectedClusters[0]
	_, err = configsClient(t, e).Get(t.Context(), cc.ResourceGroup, "Microsoft.Kubernetes", "connectedClusters", cc.Name, "demo", nil)
	if err != nil {
		t.Fatalf("the configuration after a restart with a fresh work dir: %v", err)
	}
	// The new envtest starts empty: the agent installs the operator again
	// from the configuration, with the credentials of the first run.
	cfg, err := clientcmd.BuildConfigFromFlags("", cc.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	kube := kubernetes.NewForConfigOrDie(cfg)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	for {
		_, err := kube.CoreV1().ConfigMaps("demo").Get(ctx, "hello", metav1.GetOptions{})
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the repo was not synced again with the first run's credentials: %v\n%s", err, errb.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
