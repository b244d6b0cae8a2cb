package e2e_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/tools/txtar"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/release"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/dynamic"

	"github.com/gitopsim/gitopsim/sim/agent"
)

var helmSeq atomic.Int64

// helmFixture reads fixtures/repos/helm-releases.txtar with its
// placeholders filled for repo and its HelmReleases moved to namespace ns.
func helmFixture(repo, ns string) map[string]string {
	GinkgoHelper()
	a, err := txtar.ParseFile("../fixtures/repos/helm-releases.txtar")
	Expect(err).NotTo(HaveOccurred())
	files := map[string]string{}
	for _, f := range a.Files {
		s := strings.ReplaceAll(string(f.Data), "${helm.repositoryUrl}", stack.HelmRepo().URL())
		s = strings.ReplaceAll(s, "${repo.self.httpsUrl}", httpsURL(repo))
		files[f.Name] = strings.ReplaceAll(s, "namespace: apps", "namespace: "+ns)
	}
	return files
}

// helmRepo creates a public repo holding the Helm fixture for namespace ns.
func helmRepo(ns string) string {
	GinkgoHelper()
	name := newRepo("helm", true, map[string]string{"README.md": "placeholder\n"})
	commit(name, "helm releases", helmFixture(name, ns))
	return name
}

// helmAction is a Helm SDK configuration for namespace ns, as the
// `helm` CLI with the suite's admin kubeconfig would have.
func helmAction(g Gomega, ns string) *action.Configuration {
	kubeconfig := stack.Cluster().Kubeconfig()
	cf := genericclioptions.NewConfigFlags(false)
	cf.KubeConfig, cf.Namespace = &kubeconfig, &ns
	cfg := new(action.Configuration)
	g.Expect(cfg.Init(cf, ns, "secret", func(string, ...any) {})).To(Succeed())
	return cfg
}

// releases lists the Helm releases in ns as `helm list -a` would.
func releases(g Gomega, ns string) map[string]*release.Release {
	l := action.NewList(helmAction(g, ns))
	l.All = true
	l.SetStateMask()
	rels, err := l.Run()
	g.Expect(err).NotTo(HaveOccurred())
	out := map[string]*release.Release{}
	for _, r := range rels {
		out[r.Name] = r
	}
	return out
}

func history(g Gomega, ns, name string) []string {
	h, err := action.NewHistory(helmAction(g, ns)).Run(name)
	g.Expect(err).NotTo(HaveOccurred())
	var out []string
	for _, r := range h {
		out = append(out, fmt.Sprintf("%d:%s", r.Version, r.Info.Status))
	}
	return out
}

// adminDynamic is made once: specs poll HelmRelease status many times.
var adminDynamic = sync.OnceValue(func() dynamic.Interface {
	return dynamic.NewForConfigOrDie(stack.Cluster().AdminConfig())
})

func hrStatus(g Gomega, ns, name string) map[string]any {
	hr, err := adminDynamic().Resource(agent.HelmReleaseGVR).Namespace(ns).Get(context.Background(), name, metav1.GetOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	st, _, _ := unstructured.NestedMap(hr.Object, "status")
	return st
}

// releasedMessage is the HelmRelease's Released condition message.
func releasedMessage(st map[string]any) string {
	conds, _ := st["conditions"].([]any)
	for _, c := range conds {
		if m, _ := c.(map[string]any); m["type"] == "Released" || m["type"] == "RolledBack" {
			return fmt.Sprint(m["message"])
		}
	}
	return ""
}

// cmData returns a ConfigMap's data[key], or "<absent>".
func cmData(g Gomega, ns, name, key string) string {
	cm, err := admin.CoreV1().ConfigMaps(ns).Get(context.Background(), name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "<absent>"
	}
	g.Expect(err).NotTo(HaveOccurred())
	return cm.Data[key]
}

var _ = Describe("the Helm operator", Label("helm"), func() {
	var (
		a  *arc
		ns string
	)
	BeforeEach(func(ctx SpecContext) {
		a = onboard(ctx, "helm")
		ns = fmt.Sprintf("helm-%d", helmSeq.Add(1))
	})

	helmConfig := func(repo string) configSpec {
		return configSpec{
			url: httpsURL(repo), namespace: ns, instance: "flux", scope: "namespace",
			params: "--git-branch=main --git-path=releases --sync-garbage-collection",
			helm:   true, chartVersion: "1.2.0", chartValues: "--set helm.versions=v3",
		}
	}

	It("installs releases from a chart repository and from git, upgrades them on changes, and uninstalls removed ones", func(ctx SpecContext) {
		repo := helmRepo(ns)
		a.put(ctx, "apps", helmConfig(repo))

		By("the operator release, the CRD, and both HelmReleases released")
		withinVirtual(10*time.Minute, 10*time.Second, func(g Gomega) {
			rels := releases(g, ns)
			g.Expect(rels).To(HaveKey("flux-helm-"+ns), "the Helm operator is a Helm release")
			g.Expect(rels["flux-helm-"+ns].Chart.Metadata.Version).To(Equal("1.2.0"))
			g.Expect(rels).To(HaveKey("hello"))
			g.Expect(rels).To(HaveKey(ns + "-greeter"))
			g.Expect(rels["hello"].Info.Status).To(Equal(release.StatusDeployed))
			g.Expect(rels["hello"].Version).To(Equal(1))
			g.Expect(cmData(g, ns, "hello", "greeting")).To(Equal("hello from a ConfigMap"), "valuesFrom a ConfigMap")
			g.Expect(cmData(g, ns, ns+"-greeter", "message")).To(Equal("hello from git"))
			st := hrStatus(g, ns, "hello")
			g.Expect(st).To(HaveKeyWithValue("phase", agent.PhaseSucceeded))
			g.Expect(st).To(HaveKeyWithValue("releaseStatus", "deployed"))
			g.Expect(st).To(HaveKeyWithValue("revision", "0.1.0"))
		})
		_, err := admin.Discovery().ServerResourcesForGroupVersion("helm.fluxcd.io/v1")
		Expect(err).NotTo(HaveOccurred())
		dep, err := admin.AppsV1().Deployments(ns).Get(ctx, "hello", metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(*dep.Spec.Replicas).To(BeEquivalentTo(2), "spec.values over the chart's values")
		Expect(a.compliance(ctx, "apps").Level).To(Equal("Information"))

		By("a values change in git upgrading the git-sourced release to revision 2")
		commit(repo, "new message", map[string]string{"releases/greeter.yaml": strings.Replace(helmFixture(repo, ns)["releases/greeter.yaml"], "hello from git", "changed in git", 1)})
		withinVirtual(15*time.Minute, 10*time.Second, func(g Gomega) {
			g.Expect(releases(g, ns)[ns+"-greeter"].Version).To(Equal(2))
			g.Expect(cmData(g, ns, ns+"-greeter", "message")).To(Equal("changed in git"))
		})

		By("a new chart version in the repository, referenced from git, upgrading the repository release")
		Expect(stack.HelmRepo().Bump("hello", "0.2.0")).To(Succeed())
		commit(repo, "hello 0.2.0", map[string]string{"releases/hello.yaml": strings.Replace(helmFixture(repo, ns)["releases/hello.yaml"], "version: 0.1.0", "version: 0.2.0", 1)})
		withinVirtual(15*time.Minute, 10*time.Second, func(g Gomega) {
			rel := releases(g, ns)["hello"]
			g.Expect(rel.Version).To(Equal(2))
			g.Expect(rel.Chart.Metadata.Version).To(Equal("0.2.0"))
			g.Expect(cmData(g, ns, "hello", "chartVersion")).To(Equal("0.2.0"))
			g.Expect(hrStatus(g, ns, "hello")).To(HaveKeyWithValue("revision", "0.2.0"))
		})

		By("the HelmRelease removed from git: Flux collects it and the release is uninstalled")
		commit(repo, "drop greeter", map[string]string{"releases/greeter.yaml": ""})
		withinVirtual(15*time.Minute, 10*time.Second, func(g Gomega) {
			g.Expect(releases(g, ns)).NotTo(HaveKey(ns + "-greeter"))
			g.Expect(cmData(g, ns, ns+"-greeter", "message")).To(Equal("<absent>"))
		})
		Expect(releases(Default, ns)).To(HaveKey("hello"))

		By("a PUT-replace without enableHelmOperator removing the operator")
		c := helmConfig(repo)
		c.helm = false
		a.put(ctx, "apps", c)
		withinVirtual(5*time.Minute, 10*time.Second, func(g Gomega) {
			g.Expect(releases(g, ns)).NotTo(HaveKey("flux-helm-" + ns))
		})
		Expect(releases(Default, ns)).To(HaveKey("hello"), "releases the operator made stay")
	})

	It("confines a namespace-scoped operator: a release into another namespace is forbidden, the others install", func(ctx SpecContext) {
		repo := helmRepo(ns)
		commit(repo, "a release outside the namespace", map[string]string{"releases/intruder.yaml": fmt.Sprintf(`apiVersion: helm.fluxcd.io/v1
kind: HelmRelease
metadata:
  name: intruder
  namespace: %s
spec:
  targetNamespace: default
  chart:
    repository: %s
    name: hello
    version: 0.1.0
`, ns, stack.HelmRepo().URL())})
		a.put(ctx, "apps", helmConfig(repo))
		withinVirtual(10*time.Minute, 10*time.Second, func(g Gomega) {
			g.Expect(releases(g, ns)).To(HaveKey("hello"))
			st := hrStatus(g, ns, "intruder")
			// helm-operator fails before deploying: it cannot even read
			// the release history (Secrets) in the target namespace.
			g.Expect(st).To(HaveKeyWithValue("phase", agent.PhaseFailed))
			g.Expect(st).To(HaveKeyWithValue("releaseName", ns+"-default-intruder"), "default name with a target namespace")
			g.Expect(releasedMessage(st)).To(ContainSubstring("forbidden"))
			g.Expect(releasedMessage(st)).To(ContainSubstring(`resource "secrets" in API group "" in the namespace "default"`))
			c := a.compliance(ctx, "apps")
			g.Expect(c.Level).To(Equal("Error"))
			g.Expect(c.OperatorMessage).To(ContainSubstring("helmrelease " + ns + "/intruder: Failed: failed to determine sync action"))
			g.Expect(c.OperatorMessage).To(ContainSubstring("forbidden"))
		})
		Expect(releases(Default, "default")).NotTo(HaveKey(ns + "-default-intruder"))
	})

	It("fails a configuration whose Helm operator release name would exceed 53 characters", func(ctx SpecContext) {
		repo := helmRepo(ns)
		c := helmConfig(repo)
		c.instance = "flux-with-a-long-name1" // 22 + "-helm-" + 26 = 54
		c.namespace = ns + strings.Repeat("x", 26-len(ns))
		a.put(ctx, "long", c)
		name := c.instance + "-helm-" + c.namespace
		withinVirtual(5*time.Minute, 10*time.Second, func(g Gomega) {
			got := a.compliance(ctx, "long")
			g.Expect(got.State).To(Equal("Failed"))
			g.Expect(got.ClusterState).To(Equal("Installing the operator"))
			g.Expect(got.OperatorMessage).To(Equal(fmt.Sprintf(`Error: {failed to install chart from path [helm-operator] for release [%s]: err [release name %q exceeds max length of 53]} occurred while doing the operation : {Installing the operator} on the config`, name, name)))
		})
	})

	It("reports a broken chart as DeployFailed with Helm's error, and rolls back a failed upgrade", func(ctx SpecContext) {
		repo := helmRepo(ns)
		commit(repo, "a broken chart and rollback on hello", map[string]string{
			"charts/broken/Chart.yaml":        "apiVersion: v2\nname: broken\nversion: 0.0.1\n",
			"charts/broken/templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: broken\ndata:\n  x: {{ .Values.x | nosuchfunc }}\n",
			"releases/broken.yaml":            fmt.Sprintf("apiVersion: helm.fluxcd.io/v1\nkind: HelmRelease\nmetadata:\n  name: broken\n  namespace: %s\nspec:\n  chart:\n    git: %s\n    ref: main\n    path: charts/broken\n", ns, httpsURL(repo)),
			"releases/hello.yaml":             strings.Replace(helmFixture(repo, ns)["releases/hello.yaml"], "  values:\n", "  rollback:\n    enable: true\n  values:\n", 1),
		})
		a.put(ctx, "apps", helmConfig(repo))
		withinVirtual(10*time.Minute, 10*time.Second, func(g Gomega) {
			st := hrStatus(g, ns, "broken")
			g.Expect(st).To(HaveKeyWithValue("phase", agent.PhaseDeployFailed))
			g.Expect(releasedMessage(st)).To(ContainSubstring(`function "nosuchfunc" not defined`))
			g.Expect(hrStatus(g, ns, "hello")).To(HaveKeyWithValue("phase", agent.PhaseSucceeded))
			c := a.compliance(ctx, "apps")
			g.Expect(c.OperatorMessage).To(ContainSubstring("helmrelease " + ns + "/broken: DeployFailed: installation failed"))
		})
		Expect(releases(Default, ns)).NotTo(HaveKey(ns+"-broken"), "a failed install is removed")

		By("an upgrade the API server refuses (a Service port out of range) rolling back")
		hello := helmFixture(repo, ns)["releases/hello.yaml"]
		hello = strings.Replace(hello, "  values:\n", "  rollback:\n    enable: true\n  values:\n    service:\n      port: 99999\n", 1)
		commit(repo, "bad port", map[string]string{"releases/hello.yaml": hello})
		withinVirtual(15*time.Minute, 10*time.Second, func(g Gomega) {
			st := hrStatus(g, ns, "hello")
			g.Expect(st).To(HaveKeyWithValue("phase", agent.PhaseRolledBack))
			g.Expect(st).To(HaveKeyWithValue("rollbackCount", BeNumerically("==", 1)))
			g.Expect(releasedMessage(st)).To(ContainSubstring("upgrade failed"))
			g.Expect(history(g, ns, "hello")).To(Equal([]string{"1:superseded", "2:failed", "3:deployed"}))
		})
		svc, err := admin.CoreV1().Services(ns).Get(ctx, "hello", metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(svc.Spec.Ports[0].Port).To(BeEquivalentTo(80), "the rollback restored revision 1")
		// Rolled back, the same upgrade is not retried on every sync.
		clk.Advance(10 * time.Minute)
		Expect(history(Default, ns, "hello")).To(HaveLen(3))
	})

	It("waits for a release's resources on the simulation clock and fails it after spec.timeout", func(ctx SpecContext) {
		if stack.Cluster().Name() != "envtest" {
			Skip("needs a control plane without kubelets, where pods never become ready")
		}
		repo := helmRepo(ns)
		hello := helmFixture(repo, ns)["releases/hello.yaml"]
		hello = strings.Replace(hello, "  values:\n", "  wait: true\n  timeout: 120\n  values:\n", 1)
		commit(repo, "wait for hello", map[string]string{"releases/hello.yaml": hello, "releases/greeter.yaml": ""})
		a.put(ctx, "apps", helmConfig(repo))
		withinVirtual(5*time.Minute, 10*time.Second, func(g Gomega) {
			g.Expect(hrStatus(g, ns, "hello")).To(HaveKeyWithValue("phase", agent.PhaseInstalling))
		})
		start := clk.Now()
		withinVirtual(5*time.Minute, 10*time.Second, func(g Gomega) {
			st := hrStatus(g, ns, "hello")
			g.Expect(st).To(HaveKeyWithValue("phase", agent.PhaseDeployFailed))
			g.Expect(st).To(HaveKeyWithValue("releaseStatus", "failed"))
			g.Expect(releasedMessage(st)).To(ContainSubstring("installation failed: timed out waiting for the condition"))
		})
		// Two replicas never become ready without kubelets: the wait ends
		// at the timeout, in virtual time, not before.
		Expect(clk.Since(start)).To(BeNumerically(">=", 100*time.Second))
		Expect(clk.Since(start)).To(BeNumerically("<=", 150*time.Second))
	})
})
