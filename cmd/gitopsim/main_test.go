package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gitopsim/gitopsim/internal/syncbuf"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/gitopsim/gitopsim/cmd/gitopsim/app"
	"github.com/gitopsim/gitopsim/sim"
	"github.com/gitopsim/gitopsim/sim/cluster"
)

// The test binary doubles as gitopsim: with this variable set it runs the
// real main, so the tests drive the command as a user would (a process,
// signals, exit codes) without a separate build.
const beGitopsim = "GITOPSIM_TEST_BE_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(beGitopsim) == "1" {
		os.Exit(app.Main(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func gitopsim(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), beGitopsim+"=1")
	return cmd
}

// runGitopsim runs a command that is expected to end by itself, within two
// minutes: a hang is a failure, not a stuck test run.
func runGitopsim(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), beGitopsim+"=1")
	// On a hang, SIGQUIT makes the Go runtime print every goroutine's
	// stack to stderr, which the failure then shows: a hang in CI is
	// diagnosable from the log alone.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGQUIT) }
	cmd.WaitDelay = 20 * time.Second
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("gitopsim %v did not end within 4 minutes\nstdout:\n%s\nstderr (with the goroutine dump):\n%s", args, out.String(), errb.String())
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

func TestUpServesAndStopsCleanlyOnSIGINT(t *testing.T) {
	workdir := filepath.Join(t.TempDir(), "wd")
	cmd := gitopsim(t, "up", "--workdir", workdir, "--profile", "fast")
	var out syncbuf.Buffer
	cmd.Stdout = &out
	path, exited, errb := startUp(t, cmd, workdir)

	e, err := sim.ReadEndpoints(path)
	if err != nil {
		t.Fatal(err)
	}
	if e.Workdir != workdir || e.Cluster.Backend != "envtest" || !filepath.IsAbs(e.Cluster.Kubeconfig) {
		t.Errorf("endpoints = %+v", e)
	}
	if !strings.HasPrefix(e.ARM.URL, "https://127.0.0.1:") || e.ARM.CAFile == "" || e.ARM.ClientSecret == "" || e.ARM.SubscriptionID == "" {
		t.Errorf("arm endpoints = %+v", e.ARM)
	}
	if !strings.HasPrefix(e.Git.SSHURL, "ssh://git@127.0.0.1:") || !strings.HasPrefix(e.Git.HTTPSURL, "https://127.0.0.1:") || e.Git.HTTPSToken == "" {
		t.Errorf("git endpoints = %+v", e.Git)
	}
	if !strings.HasPrefix(e.Helm.RepositoryURL, "https://127.0.0.1:") || e.Helm.CAFile != e.ARM.CAFile {
		t.Errorf("helm endpoints = %+v", e.Helm)
	}
	for _, f := range []string{e.Git.KnownHostsFile, e.Git.SSHPrivateKeyFile, e.Git.CAFile} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("endpoint file: %v", err)
		}
	}
	if len(e.ConnectedClusters) != 1 {
		t.Fatalf("connectedClusters = %+v, want the local cluster", e.ConnectedClusters)
	}
	if cc := e.ConnectedClusters[0]; cc.Name != "local" || cc.ResourceGroup != "gitopsim" || cc.Kubeconfig != e.Cluster.Kubeconfig ||
		!strings.HasSuffix(cc.ID, "/resourceGroups/gitopsim/providers/Microsoft.Kubernetes/connectedClusters/local") {
		t.Errorf("local connected cluster = %+v", cc)
	}
	// Progress went to stderr, the summary to stdout. The summary follows
	// the endpoints file, so on a loaded machine it may not be there yet.
	for deadline := time.After(30 * time.Second); !strings.Contains(out.String(), e.Cluster.Kubeconfig); {
		select {
		case <-deadline:
		case <-time.After(20 * time.Millisecond):
			continue
		}
		break
	}
	if !strings.Contains(out.String(), path) || !strings.Contains(out.String(), e.Cluster.Kubeconfig) {
		t.Errorf("summary on stdout does not name the endpoints file and kubeconfig:\n%s", out.String())
	}
	if !strings.Contains(errb.String(), "starting etcd and kube-apiserver") {
		t.Errorf("no start-up progress on stderr:\n%s", errb.String())
	}

	cfg, err := clientcmd.BuildConfigFromFlags("", e.Cluster.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	nss, err := kubernetes.NewForConfigOrDie(cfg).CoreV1().Namespaces().List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list namespaces through the written kubeconfig: %v", err)
	}
	if len(nss.Items) == 0 {
		t.Error("no namespaces listed")
	}
	userFlow(t, e)
	webView(t, e)

	// A second up on the same workdir must not disturb the first.
	_, stderr, code := runGitopsim(t, "up", "--workdir", workdir)
	if code == 0 || !strings.Contains(stderr, "used by another gitopsim") {
		t.Errorf("second up on the same workdir: exit %d, stderr:\n%s", code, stderr)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("second up removed the first one's endpoints file: %v", err)
	}

	interruptUp(t, cmd, exited, errb, workdir)
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("endpoints file still there after shutdown: %v", err)
	}
}

// startCmd starts cmd, kills it at the end of the test if it still runs,
// and returns its exit.
func startCmd(t *testing.T, cmd *exec.Cmd) <-chan error {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	return exited
}

// startUp starts a `gitopsim up` command, kills it at the end of the test
// if it still runs, and waits for its endpoints file. It returns the
// file's path, the command's exit and its stderr, which it captures; the
// test fails if up exits first or is not ready within 2 minutes.
func startUp(t *testing.T, cmd *exec.Cmd, workdir string) (string, <-chan error, *syncbuf.Buffer) {
	t.Helper()
	errb := &syncbuf.Buffer{}
	cmd.Stderr = errb
	exited := startCmd(t, cmd)
	const limit = 2 * time.Minute
	path := filepath.Join(workdir, sim.EndpointsFile)
	deadline := time.Now().Add(limit)
	for {
		if _, err := os.Stat(path); err == nil {
			return path, exited, errb
		}
		select {
		case err := <-exited:
			t.Fatalf("gitopsim up exited before it was ready (%v):\n%s", err, errb.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s after %v; stderr:\n%s", path, limit, errb.String())
		}
	}
}

func TestUpRejectsUnknownCluster(t *testing.T) {
	_, stderr, code := runGitopsim(t, "up", "--workdir", t.TempDir(), "--cluster", "minikube")
	if code != 2 {
		t.Errorf("exit code %d, want 2", code)
	}
	if !strings.Contains(stderr, `"minikube"`) || !strings.Contains(stderr, "envtest, kind, kubeconfig") {
		t.Errorf("stderr does not list the valid backends:\n%s", stderr)
	}
}

func TestUpMissingAssetsSaysHowToBuild(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-binaries")
	_, stderr, code := runGitopsim(t, "up", "--workdir", t.TempDir(), "--assets-dir", missing)
	if code == 0 {
		t.Fatal("up succeeded without binaries")
	}
	for _, want := range []string{missing, "make tools"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not mention %q:\n%s", want, stderr)
		}
	}
}

func TestUpReportsOccupiedPorts(t *testing.T) {
	for _, flag := range []string{"--apiserver-port", "--arm-port", "--git-ssh-port", "--git-https-port"} {
		t.Run(flag, func(t *testing.T) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
			workdir := t.TempDir()
			_, stderr, code := runGitopsim(t, "up", "--workdir", workdir, flag, port)
			if code == 0 {
				t.Fatal("up succeeded on an occupied port")
			}
			for _, want := range []string{"127.0.0.1:" + port, "already in use", flag} {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr does not say %q:\n%s", want, stderr)
				}
			}
			if left, _ := cluster.Leftovers(workdir); len(left) > 0 {
				t.Errorf("processes left behind: %v", left)
			}
		})
	}
}

func TestUpFlagMistakes(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--cluster", "kubeconfig"}, "needs --kubeconfig"},
		{[]string{"--kubeconfig", "x"}, "--kubeconfig only applies to --cluster kubeconfig"},
		{[]string{"--time-scale", "0"}, "invalid --time-scale"},
		{[]string{"--time-scale", "1e6"}, "at most 86400"},
		{[]string{"--no-ui", "--ui-port", "8080"}, "drop them or --no-ui"},
		{[]string{"--state-key", "k"}, "--state-key goes with --state-dir"},
		{[]string{"--ui-changes", "/no/such/dir"}, "invalid --ui-changes \"/no/such/dir\": not a directory"},
		{[]string{"--ui-port", "-1"}, "invalid --ui-port -1"},
		{[]string{"--profile", "turbo"}, "invalid --profile \"turbo\": valid values are realistic, fast"},
		{[]string{"--no-agent", "--connected-cluster", "x"}, "drop them or --no-agent"},
		{[]string{"--apiserver-port", "70000"}, "invalid --apiserver-port"},
		{[]string{"--clusters", "0"}, "invalid --clusters 0"},
		{[]string{"--clusters", "3", "--no-agent"}, "contradict"},
		{[]string{"--clusters", "3", "--connected-cluster", "x"}, "drop --connected-cluster"},
		{[]string{"--clusters", "3", "--cluster-name-pattern", "edge"}, "has no {n}"},
		{[]string{"--cluster-name-pattern", "edge-{n}"}, "apply with --clusters above 1"},
		{[]string{"--clusters", "3", "--fleet-backend", "kcp"}, "invalid --fleet-backend \"kcp\""},
		{[]string{"--clusters", "3", "--fleet-etcd", "http://127.0.0.1:2379"}, "--fleet-etcd goes with --fleet-backend dedicated"},
		{[]string{"--clusters", "3", "--fleet-backend", "dedicated", "--fleet-etcd", "https://etcd:2379"}, "invalid --fleet-etcd: cluster: fleet etcd \"https://etcd:2379\": want http://host:port"},
		{[]string{"--fleet-etcd", "http://127.0.0.1:2379"}, "apply with --clusters above 1"},
		{[]string{"--policy-timing", "fast"}, "invalid --policy-timing: unknown policy timing \"fast\": valid values are documented, immediate"},
		{[]string{"--no-such-flag"}, "unknown flag: --no-such-flag"},
	} {
		_, stderr, code := runGitopsim(t, append([]string{"up", "--workdir", t.TempDir()}, tc.args...)...)
		if code != 2 || !strings.Contains(stderr, tc.want) || !strings.Contains(stderr, "--help") {
			t.Errorf("up %v: exit %d, stderr:\n%s\nwant exit 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
}

func TestUpKindUnavailableHere(t *testing.T) {
	b, err := cluster.New(cluster.Options{Backend: cluster.Kind, Workdir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if b.Available() == nil {
		t.Skip("a Docker engine answers here; this test covers machines without one")
	}
	_, stderr, code := runGitopsim(t, "up", "--workdir", t.TempDir(), "--cluster", "kind")
	if code == 0 || !strings.Contains(stderr, "Docker") || !strings.Contains(stderr, "--cluster envtest") {
		t.Errorf("exit %d, stderr:\n%s", code, stderr)
	}
}

// TestUpKindImageNotPullable: a node image that is neither in Docker nor
// pullable stops up with what to do, naming the image make kind-image
// builds.
func TestUpKindImageNotPullable(t *testing.T) {
	b, err := cluster.New(cluster.Options{Backend: cluster.Kind, Workdir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Available(); err != nil {
		t.Skip("needs a Docker engine: ", err)
	}
	_, stderr, code := runGitopsim(t, "up", "--workdir", t.TempDir(), "--no-ui", "--cluster", "kind",
		// A registry on a closed local port: the pull fails here whatever
		// the network, and no image from elsewhere can ever run.
		"--kind-name", "gitopsim-test-nopull", "--kind-image", "127.0.0.1:9/gitopsim/no-such-node:v0")
	for _, want := range []string{"node image 127.0.0.1:9/gitopsim/no-such-node:v0 is not in Docker and could not be pulled", "make kind-image", cluster.LocalKindImage} {
		if code == 0 || !strings.Contains(stderr, want) {
			t.Errorf("exit %d, stderr lacks %q:\n%s", code, want, stderr)
		}
	}
}

func TestUpKindFlagsNeedKind(t *testing.T) {
	for _, flag := range []string{"--kind-image", "--kind-name"} {
		_, stderr, code := runGitopsim(t, "up", "--workdir", t.TempDir(), flag, "x")
		if want := flag + " only applies to --cluster kind (this run uses envtest)"; code != 2 || !strings.Contains(stderr, want) {
			t.Errorf("%s: exit %d, stderr:\n%s\nwant exit 2 and %q", flag, code, stderr, want)
		}
	}
}

func TestVersionAndHelp(t *testing.T) {
	stdout, _, code := runGitopsim(t, "version")
	if code != 0 || !strings.Contains(stdout, "gitopsim ") || !strings.Contains(stdout, cluster.KubernetesVersion) {
		t.Errorf("version: exit %d, stdout:\n%s", code, stdout)
	}
	for _, args := range [][]string{{"--help"}, {"up", "--help"}, {"version", "--help"}} {
		stdout, _, code := runGitopsim(t, args...)
		if code != 0 || !strings.Contains(stdout, "Usage:") {
			t.Errorf("%v: exit %d, stdout:\n%s", args, code, stdout)
		}
	}
	// --kind-image's help names the offline image and says whether it is
	// built here (Docker is asked only for help).
	for _, cmd := range []string{"up", "run"} {
		stdout, _, _ := runGitopsim(t, cmd, "--help")
		present := cluster.LocalKindImagePresent(context.Background())
		want := "it is not built here yet"
		if present {
			want = "it is present here: --kind-image " + cluster.LocalKindImage
		}
		if !strings.Contains(stdout, "--kind-image image") || !strings.Contains(stdout, "make kind-image builds "+cluster.LocalKindImage) || !strings.Contains(stdout, want) {
			t.Errorf("%s --help: want --kind-image with %q:\n%s", cmd, want, stdout)
		}
	}
	stdout, _, _ = runGitopsim(t, "up", "--help")
	for _, flag := range []string{"--workdir", "--cluster", "--kubeconfig", "--assets-dir", "--time-scale", "--verbose"} {
		if !strings.Contains(stdout, flag) {
			t.Errorf("up --help does not document %s", flag)
		}
	}
}

// TestUpFleet connects a fleet with --clusters: every cluster in ARM and
// in endpoints.json in number order, spread over the resource groups in
// turn, each with its agent heartbeating; the summary names a few and
// the endpoints file for the rest; SIGINT stops them all.
func TestUpFleet(t *testing.T) {
	workdir := filepath.Join(t.TempDir(), "wd")
	cmd := gitopsim(t, "up", "--workdir", workdir, "--clusters", "12", "--cluster-name-pattern", "store-{n:02}", "--fleet-resource-groups", "east,west,north")
	upFleet(t, cmd, workdir, 12, func(i int) (string, string) {
		return fmt.Sprintf("store-%02d", i+1), []string{"east", "west", "north"}[i%3]
	}, false)
}

// TestUpDedicatedFleet gives each of three clusters its own API server on
// one etcd: endpoints.json names a kubeconfig per cluster, and a
// namespace made through one is not in another. With --state-dir the
// fleet's data outlives the run: the next `up` finds the namespace.
func TestUpDedicatedFleet(t *testing.T) {
	workdir, state := filepath.Join(t.TempDir(), "wd"), t.TempDir()
	args := []string{"up", "--workdir", workdir, "--state-dir", state, "--clusters", "3", "--fleet-backend", "dedicated"}
	upFleet(t, gitopsim(t, args...), workdir, 3, func(i int) (string, string) {
		return fmt.Sprintf("cluster-%03d", i+1), "fleet-1"
	}, true)

	cmd := gitopsim(t, args...)
	path, exited, errb := startUp(t, cmd, workdir)
	e, err := sim.ReadEndpoints(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", e.ConnectedClusters[0].Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kubernetes.NewForConfigOrDie(cfg).CoreV1().Namespaces().Get(t.Context(), "first-only", metav1.GetOptions{}); err != nil {
		t.Errorf("the fleet's data did not survive a restart with --state-dir: %v", err)
	}
	interruptUp(t, cmd, exited, errb, workdir)
}

// upFleet runs a fleet `gitopsim up` and checks its endpoints (want
// names cluster i and its group), on dedicated APIs or the shared one,
// then interrupts it.
func upFleet(t *testing.T, cmd *exec.Cmd, workdir string, n int, want func(i int) (name, rg string), dedicated bool) {
	t.Helper()
	var out syncbuf.Buffer
	cmd.Stdout = &out
	path, exited, errb := startUp(t, cmd, workdir)
	e, err := sim.ReadEndpoints(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(e.ConnectedClusters) != n {
		t.Fatalf("%d connected clusters, want %d: %+v", len(e.ConnectedClusters), n, e.ConnectedClusters)
	}
	kubeconfigs := map[string]bool{}
	for i, c := range e.ConnectedClusters {
		name, rg := want(i)
		if c.Name != name || c.ResourceGroup != rg || (c.Kubeconfig == e.Cluster.Kubeconfig) == dedicated ||
			!strings.HasSuffix(c.ID, "/resourceGroups/"+rg+"/providers/Microsoft.Kubernetes/connectedClusters/"+name) {
			t.Errorf("cluster %d = %+v, want %s in %s (dedicated %v)", i+1, c, name, rg, dedicated)
		}
		kubeconfigs[c.Kubeconfig] = true
	}
	if dedicated {
		if len(kubeconfigs) != n {
			t.Errorf("%d kubeconfigs for %d dedicated clusters", len(kubeconfigs), n)
		}
		cs := func(i int) *kubernetes.Clientset {
			cfg, err := clientcmd.BuildConfigFromFlags("", e.ConnectedClusters[i].Kubeconfig)
			if err != nil {
				t.Fatal(err)
			}
			return kubernetes.NewForConfigOrDie(cfg)
		}
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "first-only"}}
		if _, err := cs(0).CoreV1().Namespaces().Create(t.Context(), ns, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := cs(1).CoreV1().Namespaces().Get(t.Context(), "first-only", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("the second cluster sees the first one's namespace: %v", err)
		}
	}
	if !strings.Contains(errb.String(), fmt.Sprintf("connected %d of %d clusters", n, n)) {
		t.Errorf("no fleet progress on stderr:\n%s", errb.String())
	}
	for deadline := time.After(30 * time.Second); !strings.Contains(out.String(), "Press Ctrl-C"); {
		select {
		case <-deadline:
			t.Errorf("no summary:\n%s", out.String())
		case <-time.After(20 * time.Millisecond):
			continue
		}
		break
	}
	if n > 3 && !strings.Contains(out.String(), fmt.Sprintf("and %d more", n-3)) {
		t.Errorf("the summary does not list three clusters and the rest:\n%s", out.String())
	}
	interruptUp(t, cmd, exited, errb, workdir)
}

// interruptUp sends SIGINT to a running `gitopsim up` and checks that it
// exits cleanly within a minute, leaving no process behind.
func interruptUp(t *testing.T, cmd *exec.Cmd, exited <-chan error, errb *syncbuf.Buffer, workdir string) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("gitopsim up after SIGINT: %v; stderr:\n%s", err, errb.String())
		}
	case <-time.After(time.Minute):
		t.Fatal("gitopsim up did not exit within 1m of SIGINT")
	}
	left, err := cluster.Leftovers(workdir)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Errorf("processes left behind after SIGINT: %v", left)
	}
}
