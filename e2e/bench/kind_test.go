package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	kindcluster "sigs.k8s.io/kind/pkg/cluster"

	"github.com/gitopsim/gitopsim/sim/cluster"
)

// BenchmarkKind measures `gitopsim up --cluster kind` against `kind create
// cluster` alone with the same node image in the same iteration, and the
// memory of a kind node against the envtest stack of a plain `gitopsim up`.
//
// The image is $GITOPSIM_BENCH_KIND_IMAGE, by default the one `make
// kind-image` builds; the benchmark skips, saying why, without Docker or
// without that image.
//
// Reported: kind-create-s (kind's library, create and wait for a Ready
// node), up-kind-s (exec to "gitopsim is up", which includes creating the
// cluster), up-kind/kind-create (the ratio: what gitopsim adds), kind-node-MB
// (the node container's memory as docker stats counts it, usage less
// inactive file cache, once every kube-system pod is Ready), envtest-MB (resident memory of
// kube-apiserver, etcd and kube-controller-manager under a plain up) and
// kind-node/envtest.
func BenchmarkKind(b *testing.B) {
	image := os.Getenv("GITOPSIM_BENCH_KIND_IMAGE")
	if image == "" {
		image = cluster.LocalKindImage
	}
	if err := exec.Command("docker", "info").Run(); err != nil {
		b.Skip("no Docker engine answers (make kind-image starts one): ", err)
	}
	if err := exec.Command("docker", "image", "inspect", image).Run(); err != nil {
		b.Skipf("node image %s is not in Docker: build it with make kind-image", image)
	}
	bin := filepath.Join(b.TempDir(), "gitopsim")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/gitopsim").CombinedOutput(); err != nil {
		b.Fatalf("build gitopsim: %v\n%s", err, out)
	}
	provider := kindcluster.NewProvider(kindcluster.ProviderWithDocker())
	// Clusters left by an interrupted run would be reused, and creation
	// not measured: each iteration starts without them, and none is left.
	const kindName, upName = "gitopsim-bench-kind", "gitopsim-bench-up"
	clean := func() {
		_ = provider.Delete(kindName, "")
		_ = provider.Delete(upName, "")
	}
	b.Cleanup(clean)
	var kindTotal, upTotal time.Duration
	var nodeMB, envtestMB float64
	b.ResetTimer()
	for range b.N {
		clean()
		t0 := time.Now()
		if err := provider.Create(kindName, kindcluster.CreateWithNodeImage(image), kindcluster.CreateWithWaitForReady(5*time.Minute),
			kindcluster.CreateWithKubeconfigPath(filepath.Join(b.TempDir(), "kubeconfig"))); err != nil {
			b.Fatalf("kind create cluster: %v", err)
		}
		kindTotal += time.Since(t0)
		if err := provider.Delete(kindName, ""); err != nil {
			b.Fatalf("kind delete cluster: %v", err)
		}

		d, mb := upOnKind(b, bin, upName, image)
		upTotal += d
		nodeMB += mb

		_, mem := gitopsimUp(b, bin)
		for proc, mb := range mem {
			// /proc truncates command names to 15 bytes: "kube-controller".
			if proc == "kube-apiserver" || proc == "etcd" || strings.HasPrefix(proc, "kube-controller") {
				envtestMB += mb
			}
		}
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(kindTotal.Seconds()/n, "kind-create-s")
	b.ReportMetric(upTotal.Seconds()/n, "up-kind-s")
	b.ReportMetric(upTotal.Seconds()/kindTotal.Seconds(), "up-kind/kind-create")
	b.ReportMetric(nodeMB/n, "kind-node-MB")
	b.ReportMetric(envtestMB/n, "envtest-MB")
	b.ReportMetric(nodeMB/envtestMB, "kind-node/envtest")
}

// upOnKind starts gitopsim up on a new kind cluster, returns the time to
// its "is up" line and the node container's memory then, and stops it
// (which deletes the cluster).
func upOnKind(b *testing.B, bin, name, image string) (time.Duration, float64) {
	b.Helper()
	workdir := b.TempDir()
	up, d := startUp(b, bin, nil, "--workdir", workdir, "-q", "--no-ui", "--cluster", "kind", "--kind-name", name, "--kind-image", image)
	// The node's memory once it has settled: every kube-system pod Ready.
	if err := systemPodsReady(filepath.Join(workdir, "kubeconfig")); err != nil {
		b.Error(err)
	}
	mb, err := containerMB(name + "-control-plane")
	if err != nil {
		b.Error(err)
	}
	stopUp(b, up)
	return d, mb
}

// containerMB is a container's memory as docker stats shows it: its cgroup's
// usage less the inactive file cache (cgroup v1 or v2).
func containerMB(container string) (float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", "inspect", "-f", "{{.Id}}", container).Output()
	if err != nil {
		return 0, err
	}
	id := strings.TrimSpace(string(out))
	// cgroup v1 (cgroupfs driver), then v2 with the systemd or the
	// cgroupfs driver.
	for _, c := range []struct{ usage, stat, inactive string }{
		{"/sys/fs/cgroup/memory/docker/" + id + "/memory.usage_in_bytes", "/sys/fs/cgroup/memory/docker/" + id + "/memory.stat", "total_inactive_file"},
		{"/sys/fs/cgroup/system.slice/docker-" + id + ".scope/memory.current", "/sys/fs/cgroup/system.slice/docker-" + id + ".scope/memory.stat", "inactive_file"},
		{"/sys/fs/cgroup/docker/" + id + "/memory.current", "/sys/fs/cgroup/docker/" + id + "/memory.stat", "inactive_file"},
	} {
		u, err := os.ReadFile(c.usage)
		if err != nil {
			continue
		}
		usage, err := strconv.ParseFloat(strings.TrimSpace(string(u)), 64)
		if err != nil {
			return 0, err
		}
		stat, _ := os.ReadFile(c.stat)
		for _, line := range strings.Split(string(stat), "\n") {
			if v, ok := strings.CutPrefix(line, c.inactive+" "); ok {
				f, _ := strconv.ParseFloat(v, 64)
				usage -= f
			}
		}
		return usage / (1 << 20), nil
	}
	return 0, os.ErrNotExist
}

// systemPodsReady waits until every pod in kube-system is Ready.
func systemPodsReady(kubeconfig string) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	var last string
	err = wait.PollUntilContextTimeout(context.Background(), time.Second, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		pods, err := cs.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		for _, p := range pods.Items {
			if !slices.ContainsFunc(p.Status.Conditions, func(c corev1.PodCondition) bool {
				return c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue
			}) {
				last = "pod " + p.Name + " is not Ready"
				return false, nil
			}
		}
		return len(pods.Items) > 0, nil
	})
	if err != nil {
		return fmt.Errorf("kube-system pods: %w (%s)", err, last)
	}
	return nil
}
