package e2e_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/gitopsim/gitopsim/internal/syncbuf"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"helm.sh/helm/v3/pkg/release"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	kindcluster "sigs.k8s.io/kind/pkg/cluster"

	"github.com/gitopsim/gitopsim/sim/agent"
	"github.com/gitopsim/gitopsim/sim/cluster"
	"github.com/gitopsim/gitopsim/sim/gitserver"
)

// The kind specs need what envtest has not: a kubelet that runs pods, a
// scheduler, a container runtime. `make e2e-kind` runs them on a kind
// cluster made from the node image `make kind-image` builds offline; every
// image they run is one that image preloads, so nothing is pulled.
var _ = Describe("on a kind cluster", Label("kind"), func() {
	BeforeEach(func() {
		if stack.Cluster().Name() != cluster.Kind {
			Skip("needs GITOPSIM_E2E_CLUSTER=kind (make e2e-kind): pods run only where there are kubelets")
		}
	})

	It("waits for a Deployment chart's pods to become Ready, and the release with wait succeeds", func(ctx SpecContext) {
		a := onboard(ctx, "kindhelm")
		ns := fmt.Sprintf("kind-helm-%d", helmSeq.Add(1))
		// The chart's nginx cannot be pulled here; pause is in the node
		// image, runs anything, and is Ready as soon as it runs.
		hr := helloRelease(ns, "hello", "  wait: true\n  timeout: 3600\n") +
			"    image:\n      repository: registry.k8s.io/pause\n      tag: \"3.10\"\n"
		repo := newRepo("kindhelm", true, map[string]string{"releases/hello.yaml": hr})
		a.put(ctx, "apps", configSpec{
			url: httpsURL(repo), namespace: ns, instance: "flux", scope: "namespace",
			params: "--git-branch=main --git-path=releases",
			helm:   true, chartVersion: "1.4.4", chartValues: "--set helm.versions=v3",
		})
		withinReal(4*time.Minute, func(g Gomega) {
			dep, err := admin.AppsV1().Deployments(ns).Get(ctx, "hello", metav1.GetOptions{})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(dep.Status.ReadyReplicas).To(BeEquivalentTo(2), "the kubelet runs both replicas: %s", podStates(ctx, ns))
			st := hrStatus(g, ns, "hello")
			g.Expect(st).To(HaveKeyWithValue("phase", agent.PhaseSucceeded), "Helm's wait ends when the pods are Ready")
			g.Expect(st).To(HaveKeyWithValue("releaseStatus", "deployed"))
			g.Expect(releases(g, ns)["hello"].Info.Status).To(Equal(release.StatusDeployed))
		})
	})

	It("runs the operator Deployment the agent installs, scaled up: scheduled, its Secret and ServiceAccount found, Ready", func(ctx SpecContext) {
		a := onboard(ctx, "kindop")
		n := clusterSeq.Load()
		ns := fmt.Sprintf("kind-op-%d", n)
		repo := newRepo("kindop", false, map[string]string{"cm.yaml": cmYAML(ns, "app", "v1")})
		user := fmt.Sprintf("kindop-%d", n)
		Expect(stack.Git().AddUser(user, false)).To(Succeed())
		Expect(stack.Git().Grant(user, repo, false)).To(Succeed())
		token, err := stack.Git().AddToken(user, gitserver.TokenOptions{})
		Expect(err).NotTo(HaveOccurred())
		a.put(ctx, "op", configSpec{url: httpsURL(repo), namespace: ns, instance: "flux", scope: "namespace",
			params: "--git-branch=main", protected: map[string]string{"httpsUser": user, "httpsKey": token}})
		withinVirtual(2*time.Minute, 5*time.Second, func(g Gomega) {
			g.Expect(cmValue(g, ns, "app")).To(Equal("v1"))
		})

		// The operator runs inside gitopsim, so the agent installs its
		// Deployment with no replicas. A copy with one replica shows that
		// a real fluxd could run from it: the scheduler places it, the
		// kubelet finds its ServiceAccount and the Secret its environment
		// reads. fluxd's image cannot be pulled here, so the node gets a
		// local image under its name (pause, which ignores fluxd's flags).
		op, err := admin.AppsV1().Deployments(ns).Get(ctx, "flux", metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(*op.Spec.Replicas).To(BeZero())
		Expect(op.Spec.Template.Spec.Containers[0].Env).NotTo(BeEmpty(), "the https credentials come from the operator's Secret")
		tagInNode(ctx, "registry.k8s.io/pause:3.10", agent.FluxImage)
		probe := &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "flux-probe", Namespace: ns},
			Spec:       *op.Spec.DeepCopy(),
		}
		probe.Spec.Replicas = new(int32(1))
		probe.Spec.Selector.MatchLabels["probe"] = "true"
		probe.Spec.Template.Labels["probe"] = "true"
		_, err = admin.AppsV1().Deployments(ns).Create(ctx, probe, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		withinReal(2*time.Minute, func(g Gomega) {
			dep, err := admin.AppsV1().Deployments(ns).Get(ctx, "flux-probe", metav1.GetOptions{})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(dep.Status.ReadyReplicas).To(BeEquivalentTo(1), "%s", podStates(ctx, ns))
		})
		for _, e := range podEvents(ctx, ns) {
			Expect(e.Type).To(Equal(corev1.EventTypeNormal), "%s %s: %s", e.Reason, e.InvolvedObject.Name, e.Message)
		}
		clk.Advance(5 * time.Minute)
		op, err = admin.AppsV1().Deployments(ns).Get(ctx, "flux", metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(*op.Spec.Replicas).To(BeZero(), "the agent's own Deployment stays at zero replicas")
	})

	It("gitopsim up --cluster kind creates a cluster and deletes it on stop, and reuses an existing one and leaves it", func(ctx SpecContext) {
		image := os.Getenv("GITOPSIM_E2E_KIND_IMAGE")
		bin := buildGitopsim(ctx)
		provider := kindcluster.NewProvider(kindcluster.ProviderWithDocker())
		name := fmt.Sprintf("gitopsim-e2e-up-%d", os.Getpid())
		DeferCleanup(func() { _ = provider.Delete(name, "") })

		By("no cluster of that name: up creates it, answers on it, and deletes it on SIGTERM")
		up := startUp(ctx, bin, name, image)
		Expect(up.stderr()).To(ContainSubstring("creating kind cluster"))
		Expect(kindClusters(provider)).To(ContainElement(name))
		Expect(up.nodeReady(ctx)).To(Succeed())
		Expect(up.stop()).To(Succeed())
		Expect(kindClusters(provider)).NotTo(ContainElement(name), "a cluster up created goes when up stops")

		By("a cluster made with kind beforehand: up reuses it and leaves it running")
		opts := []kindcluster.CreateOption{kindcluster.CreateWithWaitForReady(3 * time.Minute)}
		if image != "" {
			opts = append(opts, kindcluster.CreateWithNodeImage(image))
		}
		Expect(provider.Create(name, opts...)).To(Succeed())
		up = startUp(ctx, bin, name, image)
		Expect(up.stderr()).To(ContainSubstring("reusing kind cluster"))
		Expect(up.nodeReady(ctx)).To(Succeed())
		Expect(up.stop()).To(Succeed())
		Expect(kindClusters(provider)).To(ContainElement(name), "a cluster up did not create stays")
	})

	It("gitopsim run --cluster kind runs scenarios to their golden transcripts on a kind cluster it creates, and deletes it after", func(ctx SpecContext) {
		bin := buildGitopsim(ctx)
		prefix := fmt.Sprintf("gitopsim-e2e-run-%d", os.Getpid())
		provider := kindcluster.NewProvider(kindcluster.ProviderWithDocker())
		DeferCleanup(func() {
			// A plane whose reset failed is replaced by the next number.
			for _, c := range kindClusters(provider) {
				if strings.HasPrefix(c, prefix+"-") {
					_ = provider.Delete(c, "")
				}
			}
		})
		args := []string{"run", "--cluster", "kind", "--kind-name", prefix, "--golden", "--workdir", GinkgoT().TempDir(),
			"../scenarios/offline-agent.yaml", "../scenarios/multi-tenancy.yaml"}
		if image := os.Getenv("GITOPSIM_E2E_KIND_IMAGE"); image != "" {
			args = append(args, "--kind-image", image)
		}
		out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), "%s", out)
		Expect(string(out)).To(ContainSubstring("2 scenarios: 2 passed, 0 failed"))
		Expect(kindClusters(provider)).NotTo(ContainElement(prefix+"-1"), "the run's cluster is deleted after it")
	})
})

// buildGitopsim builds the gitopsim command into a temporary directory.
func buildGitopsim(ctx context.Context) string {
	GinkgoHelper()
	bin := filepath.Join(GinkgoT().TempDir(), "gitopsim")
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "../cmd/gitopsim").CombinedOutput()
	Expect(err).NotTo(HaveOccurred(), "%s", out)
	return bin
}

// withinReal polls check on the wall clock while moving the suite's virtual
// clock two seconds a poll, so that the operators' timers (polls, Helm's
// wait) keep firing while the kubelet works in real time.
func withinReal(d time.Duration, check func(g Gomega)) {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		clk.Advance(2 * time.Second)
		check(g)
	}).WithTimeout(d).WithPolling(500 * time.Millisecond).Should(Succeed())
}

// podStates describes the pods of ns, for failure messages.
func podStates(ctx context.Context, ns string) string {
	pods, err := admin.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, p := range pods.Items {
		fmt.Fprintf(&b, "\n  pod %s: %s", p.Name, p.Status.Phase)
		for _, c := range p.Status.Conditions {
			if c.Status != corev1.ConditionTrue {
				fmt.Fprintf(&b, " %s=%s(%s)", c.Type, c.Status, c.Message)
			}
		}
		for _, c := range p.Status.ContainerStatuses {
			if w := c.State.Waiting; w != nil {
				fmt.Fprintf(&b, " %s waiting: %s %s", c.Name, w.Reason, w.Message)
			}
		}
	}
	// Warnings of every object: a ReplicaSet that cannot make its pods
	// (no ServiceAccount) says so on itself.
	events, err := admin.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("type", corev1.EventTypeWarning).String()})
	if err != nil {
		return b.String() + "\n  events: " + err.Error()
	}
	for _, e := range events.Items {
		fmt.Fprintf(&b, "\n  event %s %s %s/%s: %s", e.Type, e.Reason, e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Message)
	}
	return b.String()
}

// podEvents are the Events about pods in ns.
func podEvents(ctx context.Context, ns string) []corev1.Event {
	list, err := admin.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("involvedObject.kind", "Pod").String()})
	Expect(err).NotTo(HaveOccurred())
	return list.Items
}

// tagInNode gives an image already in the kind node's containerd a second
// name, as `kind load` would give it one.
func tagInNode(ctx context.Context, from, to string) {
	GinkgoHelper()
	nodes, err := admin.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	Expect(err).NotTo(HaveOccurred())
	for _, n := range nodes.Items {
		// A kind node's name is its container's.
		out, err := exec.CommandContext(ctx, "docker", "exec", n.Name, "ctr", "-n", "k8s.io", "images", "tag", "--force", from, to).CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), "%s", out)
	}
}

func kindClusters(p *kindcluster.Provider) []string {
	GinkgoHelper()
	names, err := p.List()
	Expect(err).NotTo(HaveOccurred())
	return names
}

// upProcess is a `gitopsim up` the spec started.
type upProcess struct {
	cmd     *exec.Cmd
	workdir string
	// exited is closed when the process has been waited for; err is
	// Wait's result then.
	exited chan struct{}
	err    error
	errBuf syncbuf.Buffer
}

func (u *upProcess) stderr() string { return u.errBuf.String() }

// startUp starts gitopsim up on kind cluster name and waits until it says
// it is up.
func startUp(ctx context.Context, bin, name, image string) *upProcess {
	GinkgoHelper()
	u := &upProcess{workdir: GinkgoT().TempDir(), exited: make(chan struct{})}
	args := []string{"up", "--cluster", "kind", "--kind-name", name, "--workdir", u.workdir, "--no-ui", "--profile", "fast"}
	if image != "" {
		args = append(args, "--kind-image", image)
	}
	u.cmd = exec.Command(bin, args...)
	u.cmd.Stderr = io.MultiWriter(&u.errBuf, GinkgoWriter)
	// A pipe of our own, not StdoutPipe: Wait runs at once in its own
	// goroutine, and must not close what the scanner still reads.
	stdout, w, err := os.Pipe()
	Expect(err).NotTo(HaveOccurred())
	u.cmd.Stdout = w
	Expect(u.cmd.Start()).To(Succeed())
	_ = w.Close()
	go func() {
		u.err = u.cmd.Wait()
		close(u.exited)
	}()
	// Whatever the spec did, the process goes: SIGTERM, so that a cluster
	// it created is deleted, then SIGKILL after two minutes.
	DeferCleanup(func() {
		_ = u.stop()
	})
	ready := make(chan bool, 1)
	go func() {
		defer stdout.Close()
		sc := bufio.NewScanner(stdout)
		up := false
		for sc.Scan() {
			if !up && strings.HasPrefix(sc.Text(), "gitopsim is up") {
				up = true
				ready <- true
			}
		}
		if !up {
			ready <- false
		}
	}()
	select {
	case ok := <-ready:
		Expect(ok).To(BeTrue(), "gitopsim up ended before it was up:\n%s", u.stderr())
	case <-time.After(7 * time.Minute):
		// kind itself waits up to 5 minutes for a Ready node.
		Fail("gitopsim up was not up within 7 minutes:\n" + u.stderr())
	case <-ctx.Done():
		Fail("interrupted")
	}
	return u
}

// nodeReady checks, with the kubeconfig up wrote, that the cluster has a
// Ready node.
func (u *upProcess) nodeReady(ctx context.Context) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(u.workdir, "kubeconfig"))
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(nodes.Items, func(n corev1.Node) bool {
		return slices.ContainsFunc(n.Status.Conditions, func(c corev1.NodeCondition) bool {
			return c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue
		})
	}) {
		return fmt.Errorf("no Ready node among %d", len(nodes.Items))
	}
	return nil
}

// stop sends SIGTERM and waits for a clean exit; a process that has
// already exited is only reported on.
func (u *upProcess) stop() error {
	select {
	case <-u.exited:
	default:
		_ = u.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-u.exited:
		case <-time.After(2 * time.Minute):
			_ = u.cmd.Process.Kill()
			<-u.exited
			return fmt.Errorf("gitopsim up did not stop within 2 minutes of SIGTERM")
		}
	}
	if u.err != nil {
		return fmt.Errorf("gitopsim up after SIGTERM: %w\n%s", u.err, u.stderr())
	}
	return nil
}
