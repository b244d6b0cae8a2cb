package e2e_test

import (
	"context"
	"fmt"
	"sort"
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
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"github.com/gitopsim/gitopsim/sim/agent"
	"github.com/gitopsim/gitopsim/sim/gitserver"
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

// helloRelease is a HelmRelease of the repository chart hello in ns, with
// extra spec lines (indented two spaces) before its values.
func helloRelease(ns, name, extra string) string {
	return fmt.Sprintf(`apiVersion: helm.fluxcd.io/v1
kind: HelmRelease
metadata:
  name: %s
  namespace: %s
spec:
  releaseName: %s
  chart:
    repository: %s
    name: hello
    version: 0.1.0
%s  values:
    replicaCount: 2
`, name, ns, name, stack.HelmRepo().URL(), extra)
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

// condition is the HelmRelease status condition of type typ as
// "<status> <reason>: <message>", or "".
func condition(st map[string]any, typ string) string {
	conds, _ := st["conditions"].([]any)
	for _, c := range conds {
		if m, _ := c.(map[string]any); m["type"] == typ {
			return fmt.Sprintf("%v %v: %v", m["status"], m["reason"], m["message"])
		}
	}
	return ""
}

// hrEvents are the Events on a HelmRelease as `kubectl describe hr`
// lists them: "<type> <reason> <source>: <message>", oldest first.
func hrEvents(g Gomega, ns, name string) []string {
	list, err := admin.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{FieldSelector: "involvedObject.kind=HelmRelease,involvedObject.name=" + name})
	g.Expect(err).NotTo(HaveOccurred())
	sort.SliceStable(list.Items, func(i, j int) bool { return list.Items[i].FirstTimestamp.Before(&list.Items[j].FirstTimestamp) })
	var out []string
	for _, e := range list.Items {
		out = append(out, fmt.Sprintf("%s %s %s: %s", e.Type, e.Reason, e.Source.Component, e.Message))
	}
	return out
}

// applyHR creates or replaces a HelmRelease as a cluster admin would with
// kubectl, outside git.
func applyHR(ctx context.Context, doc string) {
	GinkgoHelper()
	var obj unstructured.Unstructured
	Expect(yaml.Unmarshal([]byte(doc), &obj.Object)).To(Succeed())
	_, err := adminDynamic().Resource(agent.HelmReleaseGVR).Namespace(obj.GetNamespace()).Apply(ctx, obj.GetName(), &obj, metav1.ApplyOptions{FieldManager: "kubectl", Force: true})
	Expect(err).NotTo(HaveOccurred())
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
			helm:   true, chartVersion: "1.4.4", chartValues: "--set helm.versions=v3",
		}
	}

	It("installs releases from a chart repository and from git, upgrades them on changes, and uninstalls removed ones", func(ctx SpecContext) {
		repo := helmRepo(ns)
		a.put(ctx, "apps", helmConfig(repo))

		By("the operator release, the CRD, and both HelmReleases released")
		where := func(rel string) string { return fmt.Sprintf("Helm release '%s' in '%s'.", rel, ns) }
		withinVirtual(10*time.Minute, 10*time.Second, func(g Gomega) {
			rels := releases(g, ns)
			g.Expect(rels).To(HaveKey("flux-helm-"+ns), "the Helm operator is a Helm release")
			g.Expect(rels["flux-helm-"+ns].Chart.Metadata.Version).To(Equal("1.4.4"))
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
			// pkg/status/conditions.go: Deployed from the install, Released
			// from the sync, fixed sentences.
			g.Expect(condition(st, "Deployed")).To(Equal("True Deployed: Installation or upgrade succeeded for " + where("hello")))
			g.Expect(condition(st, "Released")).To(Equal("True Succeeded: Release was successful for " + where("hello")))
			g.Expect(condition(st, "ChartFetched")).To(Equal("True ChartFetched: Chart fetch was successful for " + where("hello")))
			// The git chart has rollback.enable, so helm-operator waits for
			// its resources (a ConfigMap: ready at once) before Succeeded.
			g.Expect(hrStatus(g, ns, "greeter")).To(HaveKeyWithValue("phase", agent.PhaseSucceeded))
			g.Expect(hrEvents(g, ns, "hello")).To(ContainElement("Normal ReleaseSynced helm-operator: managed release 'hello' in namespace '" + ns + "' synchronized"))
		})
		dep, err := admin.AppsV1().Deployments(ns).Get(ctx, "hello", metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(*dep.Spec.Replicas).To(BeEquivalentTo(2), "spec.values over the chart's values")
		Expect(dep.Annotations).To(HaveKeyWithValue("helm.fluxcd.io/antecedent", ns+":helmrelease/hello"))
		cm, err := admin.CoreV1().ConfigMaps(ns).Get(ctx, ns+"-greeter", metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(cm.Annotations).To(HaveKeyWithValue("helm.fluxcd.io/antecedent", ns+":helmrelease/greeter"))
		Expect(a.compliance(ctx, "apps").Level).To(Equal("Information"))

		By("the operator as the chart makes it: image and app version 1.4.4, its own ServiceAccount, the chart's CRD")
		op, err := admin.AppsV1().Deployments(ns).Get(ctx, "flux-helm-"+ns+"-helm-operator", metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(op.Spec.Template.Spec.Containers[0].Image).To(Equal("docker.io/fluxcd/helm-operator:1.4.4"))
		Expect(op.Spec.Template.Spec.ServiceAccountName).To(Equal("flux-helm-" + ns + "-helm-operator"))
		Expect(op.Spec.Template.Spec.Containers[0].Args).To(ContainElements("--enabled-helm-versions=v3", "--allow-namespace="+ns, "--charts-sync-interval=3m0s"))
		Expect(releases(Default, ns)["flux-helm-"+ns].Chart.Metadata.AppVersion).To(Equal("1.4.4"))
		crd, err := adminDynamic().Resource(schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}).Get(ctx, "helmreleases.helm.fluxcd.io", metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
		Expect(versions).To(HaveLen(1))
		cols, _, _ := unstructured.NestedSlice(versions[0].(map[string]any), "additionalPrinterColumns")
		var names []string
		for _, c := range cols {
			names = append(names, c.(map[string]any)["name"].(string))
		}
		Expect(names).To(Equal([]string{"Release", "Phase", "ReleaseStatus", "Message", "Age"}))
		_, found, _ := unstructured.NestedMap(versions[0].(map[string]any), "schema", "openAPIV3Schema", "properties", "spec", "properties", "rollback", "properties", "maxRetries")
		Expect(found).To(BeTrue(), "the chart's full schema")
		var typo unstructured.Unstructured
		Expect(yaml.Unmarshal([]byte(strings.Replace(helloRelease(ns, "typo", ""), "  values:\n", "  maxHistory: ten\n  values:\n", 1)), &typo.Object)).To(Succeed())
		_, err = adminDynamic().Resource(agent.HelmReleaseGVR).Namespace(ns).Create(ctx, &typo, metav1.CreateOptions{})
		Expect(err).To(MatchError(ContainSubstring(`spec.maxHistory: Invalid value: "string": spec.maxHistory in body must be of type integer`)), "the schema rejects a mistyped field")
		// The git chart's first sync comes before its mirror is cloned.
		Expect(hrEvents(Default, ns, "greeter")).To(ContainElement(fmt.Sprintf("Warning FailedReleaseSync helm-operator: synchronization of release '%s-greeter' in namespace '%s' failed: failed to prepare chart for release: chart not ready: no existing git mirror found", ns, ns)))

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

	It("refuses to upgrade a release whose upgrade failed, whatever changes, until it is rolled back (7.1)", func(ctx SpecContext) {
		repo := helmRepo(ns)
		a.put(ctx, "apps", helmConfig(repo))
		withinVirtual(10*time.Minute, 10*time.Second, func(g Gomega) {
			g.Expect(hrStatus(g, ns, "hello")).To(HaveKeyWithValue("phase", agent.PhaseSucceeded))
		})
		hello := helmFixture(repo, ns)["releases/hello.yaml"]

		By("an upgrade the API server refuses, without rollback: DeployFailed, the error only in the Event")
		commit(repo, "bad port", map[string]string{"releases/hello.yaml": strings.Replace(hello, "  values:\n", "  values:\n    service:\n      port: 99999\n", 1)})
		withinVirtual(15*time.Minute, 10*time.Second, func(g Gomega) {
			st := hrStatus(g, ns, "hello")
			g.Expect(st).To(HaveKeyWithValue("phase", agent.PhaseDeployFailed))
			g.Expect(condition(st, "Released")).To(Equal(fmt.Sprintf("False DeployFailed: Installation or upgrade failed for Helm release 'hello' in '%s'.", ns)))
			g.Expect(condition(st, "Deployed")).To(HavePrefix("False DeployFailed: "))
			g.Expect(history(g, ns, "hello")).To(Equal([]string{"1:deployed", "2:failed"}))
			g.Expect(hrEvents(g, ns, "hello")).To(ContainElement(SatisfyAll(
				HavePrefix(fmt.Sprintf("Warning FailedReleaseSync helm-operator: synchronization of release 'hello' in namespace '%s' failed: upgrade failed: ", ns)),
				ContainSubstring("99999"))))
		})

		By("a fix in git is refused while the last release is failed")
		commit(repo, "fix", map[string]string{"releases/hello.yaml": strings.Replace(hello, "replicaCount: 2", "replicaCount: 3", 1)})
		refused := fmt.Sprintf("Warning FailedReleaseSync helm-operator: synchronization of release 'hello' in namespace '%s' failed: failed to determine sync action for release: status 'failed' of release does not allow a safe upgrade", ns)
		withinVirtual(15*time.Minute, 10*time.Second, func(g Gomega) {
			st := hrStatus(g, ns, "hello")
			g.Expect(st).To(HaveKeyWithValue("phase", agent.PhaseFailed))
			g.Expect(condition(st, "Released")).To(Equal(fmt.Sprintf("False Failed: Release failed for Helm release 'hello' in '%s'.", ns)))
			g.Expect(hrEvents(g, ns, "hello")).To(ContainElement(refused))
			g.Expect(a.compliance(ctx, "apps").OperatorMessage).To(ContainSubstring("helmrelease " + ns + "/hello: Failed: failed to determine sync action for release: status 'failed' of release does not allow a safe upgrade"))
		})

		By("restarting the operator (a configuration change) does not retry it either")
		c := helmConfig(repo)
		c.params += " --sync-interval=4m"
		a.put(ctx, "apps", c)
		clk.Advance(20 * time.Minute)
		Expect(history(Default, ns, "hello")).To(Equal([]string{"1:deployed", "2:failed"}))

		By("after a manual helm rollback the next sync upgrades to what git says")
		Expect(action.NewRollback(helmAction(Default, ns)).Run("hello")).To(Succeed())
		withinVirtual(10*time.Minute, 10*time.Second, func(g Gomega) {
			g.Expect(history(g, ns, "hello")).To(Equal([]string{"1:superseded", "2:failed", "3:superseded", "4:deployed"}))
			g.Expect(hrStatus(g, ns, "hello")).To(HaveKeyWithValue("phase", agent.PhaseSucceeded))
		})
		dep, err := admin.AppsV1().Deployments(ns).Get(ctx, "hello", metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(*dep.Spec.Replicas).To(BeEquivalentTo(3))
	})

	It("reconciles every HelmRelease in its namespace, whoever made it, once per Helm operator (7.3)", func(ctx SpecContext) {
		repo := helmRepo(ns)
		a.put(ctx, "apps", helmConfig(repo))
		// A second configuration in the same namespace, its repo without
		// HelmReleases: its Helm operator watches the same namespace.
		other := newRepo("helm-empty", true, map[string]string{"releases/README.md": "nothing here\n"})
		c := helmConfig(other)
		c.instance = "flux-b"
		a.put(ctx, "other", c)
		withinVirtual(10*time.Minute, 10*time.Second, func(g Gomega) {
			g.Expect(hrStatus(g, ns, "hello")).To(HaveKeyWithValue("phase", agent.PhaseSucceeded))
			g.Expect(releases(g, ns)).To(HaveKey("flux-b-helm-" + ns))
		})

		By("a HelmRelease made with kubectl is installed")
		applyHR(ctx, helloRelease(ns, "by-hand", ""))
		withinVirtual(10*time.Minute, 10*time.Second, func(g Gomega) {
			g.Expect(releases(g, ns)).To(HaveKey("by-hand"))
			g.Expect(hrStatus(g, ns, "by-hand")).To(HaveKeyWithValue("phase", agent.PhaseSucceeded))
		})

		By("both Helm operators sync the HelmReleases fluxd applied: each records its own Event")
		withinVirtual(10*time.Minute, 10*time.Second, func(g Gomega) {
			synced := 0
			for _, e := range hrEvents(g, ns, "hello") {
				if strings.HasPrefix(e, "Normal ReleaseSynced") {
					synced++
				}
			}
			g.Expect(synced).To(Equal(2), "one Event per operator (each dedups its own repeats)")
		})

		By("deleting the HelmRelease with kubectl uninstalls its release")
		Expect(adminDynamic().Resource(agent.HelmReleaseGVR).Namespace(ns).Delete(ctx, "by-hand", metav1.DeleteOptions{})).To(Succeed())
		withinVirtual(10*time.Minute, 10*time.Second, func(g Gomega) {
			g.Expect(releases(g, ns)).NotTo(HaveKey("by-hand"))
			g.Expect(cmData(g, ns, "by-hand", "greeting")).To(Equal("<absent>"))
		})
	})

	It("forgets HelmReleases deleted while it was not running: their releases stay (section 8, item 9)", func(ctx SpecContext) {
		repo := helmRepo(ns)
		a.put(ctx, "apps", helmConfig(repo))
		withinVirtual(10*time.Minute, 10*time.Second, func(g Gomega) {
			g.Expect(releases(g, ns)).To(HaveKey(ns + "-greeter"))
		})
		c := helmConfig(repo)
		c.helm = false
		a.put(ctx, "apps", c)
		withinVirtual(5*time.Minute, 10*time.Second, func(g Gomega) {
			g.Expect(releases(g, ns)).NotTo(HaveKey("flux-helm-" + ns))
		})
		commit(repo, "drop greeter", map[string]string{"releases/greeter.yaml": ""})
		withinVirtual(15*time.Minute, 10*time.Second, func(g Gomega) {
			_, err := adminDynamic().Resource(agent.HelmReleaseGVR).Namespace(ns).Get(ctx, "greeter", metav1.GetOptions{})
			g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "fluxd collected it")
		})
		a.put(ctx, "apps", helmConfig(repo))
		withinVirtual(5*time.Minute, 10*time.Second, func(g Gomega) {
			g.Expect(releases(g, ns)).To(HaveKey("flux-helm-" + ns))
		})
		clk.Advance(10 * time.Minute)
		Expect(releases(Default, ns)).To(HaveKey(ns+"-greeter"), "helm-operator has no finalizer: nobody saw the delete")
	})

	It("upgrades when the HelmRelease's spec changes, and only then (7.4)", func(ctx SpecContext) {
		repo := helmRepo(ns)
		a.put(ctx, "apps", helmConfig(repo))
		withinVirtual(10*time.Minute, 10*time.Second, func(g Gomega) {
			g.Expect(hrStatus(g, ns, "hello")).To(HaveKeyWithValue("phase", agent.PhaseSucceeded))
		})
		clk.Advance(10 * time.Minute)
		Expect(history(Default, ns, "hello")).To(Equal([]string{"1:deployed"}), "resyncs run a dry-run and find nothing")

		By("a new generation with the same chart and values is upgraded")
		commit(repo, "longer timeout", map[string]string{"releases/hello.yaml": strings.Replace(helmFixture(repo, ns)["releases/hello.yaml"], "  values:\n", "  timeout: 200\n  values:\n", 1)})
		withinVirtual(15*time.Minute, 10*time.Second, func(g Gomega) {
			g.Expect(history(g, ns, "hello")).To(Equal([]string{"1:superseded", "2:deployed"}))
		})

		By("a change on the cluster is seen by the dry-run compare (Helm values) and undone by an upgrade")
		// helm upgrade by hand with other values: the next resync's
		// dry-run differs from the release and upgrades back.
		up := action.NewUpgrade(helmAction(Default, ns))
		up.Namespace, up.ReuseValues = ns, true
		rel := releases(Default, ns)["hello"]
		_, err := up.Run("hello", rel.Chart, map[string]any{"replicaCount": 5})
		Expect(err).NotTo(HaveOccurred())
		withinVirtual(10*time.Minute, 10*time.Second, func(g Gomega) {
			g.Expect(history(g, ns, "hello")).To(HaveLen(4))
			dep, err := admin.AppsV1().Deployments(ns).Get(ctx, "hello", metav1.GetOptions{})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(*dep.Spec.Replicas).To(BeEquivalentTo(2))
		})
	})

	It("reports failures in Events and fixed condition sentences, and rolls back a failed upgrade (7.5, 7.6)", func(ctx SpecContext) {
		repo := helmRepo(ns)
		commit(repo, "a broken chart, a missing chart version, and rollback on hello", map[string]string{
			"charts/broken/Chart.yaml":        "apiVersion: v2\nname: broken\nversion: 0.0.1\n",
			"charts/broken/templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: broken\ndata:\n  x: {{ .Values.x | nosuchfunc }}\n",
			"releases/broken.yaml":            fmt.Sprintf("apiVersion: helm.fluxcd.io/v1\nkind: HelmRelease\nmetadata:\n  name: broken\n  namespace: %s\nspec:\n  chart:\n    git: %s\n    ref: main\n    path: charts/broken\n", ns, httpsURL(repo)),
			"releases/missing.yaml":           strings.Replace(helloRelease(ns, "missing", ""), "version: 0.1.0", "version: 9.9.9", 1),
			// wait: false, or rollback.enable would make Helm wait for
			// pods that never run on envtest.
			"releases/hello.yaml": strings.Replace(helmFixture(repo, ns)["releases/hello.yaml"], "  values:\n", "  wait: false\n  rollback:\n    enable: true\n  values:\n", 1),
		})
		a.put(ctx, "apps", helmConfig(repo))
		where := func(rel string) string { return fmt.Sprintf("Helm release '%s' in '%s'.", rel, ns) }
		withinVirtual(10*time.Minute, 10*time.Second, func(g Gomega) {
			st := hrStatus(g, ns, "broken")
			g.Expect(st).To(HaveKeyWithValue("phase", agent.PhaseDeployFailed))
			g.Expect(condition(st, "Released")).To(Equal("False DeployFailed: Installation or upgrade failed for " + where(ns+"-broken")))
			g.Expect(condition(st, "Deployed")).To(Equal("False DeployFailed: Installation or upgrade failed for " + where(ns+"-broken")))
			g.Expect(hrEvents(g, ns, "broken")).To(ContainElement(SatisfyAll(
				HavePrefix("Warning FailedReleaseSync helm-operator: synchronization of release '"+ns+"-broken' in namespace '"+ns+"' failed: installation failed: "),
				ContainSubstring(`function "nosuchfunc" not defined`))))
			st = hrStatus(g, ns, "missing")
			g.Expect(st).To(HaveKeyWithValue("phase", agent.PhaseChartFetchFailed))
			g.Expect(condition(st, "ChartFetched")).To(Equal("False ChartFetchFailed: Chart fetch failed for " + where("missing")))
			g.Expect(condition(st, "Released")).To(Equal("False ChartFetchFailed: Chart fetch failed for " + where("missing")))
			g.Expect(hrEvents(g, ns, "missing")).To(ContainElement(ContainSubstring(`failed: failed to prepare chart for release: chart unavailable: chart "hello" version "9.9.9" not found`)))
			g.Expect(hrStatus(g, ns, "hello")).To(HaveKeyWithValue("phase", agent.PhaseSucceeded))
			c := a.compliance(ctx, "apps")
			g.Expect(c.OperatorMessage).To(ContainSubstring("helmrelease " + ns + "/broken: DeployFailed: installation failed"))
		})
		Expect(releases(Default, ns)).NotTo(HaveKey(ns+"-broken"), "a failed install is removed")

		By("an upgrade the API server refuses (a Service port out of range) rolling back")
		hello := helmFixture(repo, ns)["releases/hello.yaml"]
		hello = strings.Replace(hello, "  values:\n", "  wait: false\n  rollback:\n    enable: true\n    force: true\n  values:\n    service:\n      port: 99999\n", 1)
		commit(repo, "bad port", map[string]string{"releases/hello.yaml": hello})
		withinVirtual(15*time.Minute, 10*time.Second, func(g Gomega) {
			st := hrStatus(g, ns, "hello")
			g.Expect(st).To(HaveKeyWithValue("phase", agent.PhaseRolledBack))
			g.Expect(st).To(HaveKeyWithValue("rollbackCount", BeNumerically("==", 1)))
			g.Expect(condition(st, "RolledBack")).To(Equal("True RolledBack: Rolled back " + where("hello")))
			g.Expect(condition(st, "Released")).To(Equal("False DeployFailed: Installation or upgrade failed for " + where("hello")))
			g.Expect(history(g, ns, "hello")).To(Equal([]string{"1:superseded", "2:failed", "3:deployed"}))
			g.Expect(hrEvents(g, ns, "hello")).To(ContainElement(ContainSubstring("failed: upgrade failed: ")))
		})
		svc, err := admin.CoreV1().Services(ns).Get(ctx, "hello", metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(svc.Spec.Ports[0].Port).To(BeEquivalentTo(80), "the rollback restored revision 1")
		// Rolled back, the same upgrade is not retried on every sync.
		clk.Advance(10 * time.Minute)
		Expect(history(Default, ns, "hello")).To(HaveLen(3))
		Expect(hrStatus(Default, ns, "hello")).To(HaveKeyWithValue("phase", agent.PhaseRolledBack))
	})

	It("refuses a release another HelmRelease's resources are annotated for (7.7)", func(ctx SpecContext) {
		repo := helmRepo(ns)
		commit(repo, "a second HelmRelease for release hello", map[string]string{
			"releases/copy.yaml": strings.Replace(helloRelease(ns, "copy", ""), "releaseName: copy", "releaseName: hello", 1),
		})
		a.put(ctx, "apps", helmConfig(repo))
		withinVirtual(10*time.Minute, 10*time.Second, func(g Gomega) {
			// Whichever syncs first installs hello; the other is refused.
			owner := cmAnnotation(g, ns, "hello")
			g.Expect(owner).To(BeElementOf(ns+":helmrelease/hello", ns+":helmrelease/copy"))
			loser := "copy"
			if owner == ns+":helmrelease/copy" {
				loser = "hello"
			}
			g.Expect(hrEvents(g, ns, loser)).To(ContainElement(HaveSuffix("failed: failed to determine sync action for release: release appears to be managed by '" + owner + "'")))
			g.Expect(hrStatus(g, ns, loser)).To(HaveKeyWithValue("phase", agent.PhaseFailed))
		})
	})

	It("takes chartValues as the upstream chart does: its RBAC, and Helm's values rules (7.8)", func(ctx SpecContext) {
		repo := helmRepo(ns)
		user := fmt.Sprintf("charts-%d", helmSeq.Load())
		Expect(stack.Git().AddUser(user, false)).To(Succeed())
		private := newRepo("helm-private", false, map[string]string{
			"charts/private/Chart.yaml":        "apiVersion: v2\nname: private\nversion: 1.0.0\n",
			"charts/private/templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\ndata:\n  a: {{ .Values.a | quote }}\n  b: {{ .Values.b | quote }}\n",
			"charts/private/values.yaml":       "a: chart\nb: chart\n",
			"charts/private/values-extra.yaml": "b: from a chart file\n",
			// A dependency helm dependency update brings in from a path.
			"charts/private/requirements.yaml": "dependencies:\n- name: sub\n  version: 0.1.0\n  repository: file://../sub\n",
			"charts/sub/Chart.yaml":            "apiVersion: v1\nname: sub\nversion: 0.1.0\n",
			"charts/sub/templates/cm.yaml":     "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-sub\ndata:\n  from: sub\n",
		})
		Expect(stack.Git().Grant(user, private, false)).To(Succeed())
		token, err := stack.Git().AddToken(user, gitserver.TokenOptions{})
		Expect(err).NotTo(HaveOccurred())
		privateHR := fmt.Sprintf(`apiVersion: helm.fluxcd.io/v1
kind: HelmRelease
metadata:
  name: private
  namespace: %s
spec:
  resetValues: false
  chart:
    git: %s
    ref: main
    path: charts/private
    secretRef:
      name: chart-creds
  valuesFrom:
    - configMapKeyRef:
        name: broken-values
        optional: true
    - chartFileRef:
        path: values-extra.yaml
  values:
    a: from git
`, ns, httpsURL(private))
		commit(repo, "intruder, private chart, optional broken values", map[string]string{
			"releases/intruder.yaml":      strings.Replace(helloRelease(ns, "intruder", "  targetNamespace: default\n"), "  releaseName: intruder\n", "", 1),
			"releases/creds.yaml":         fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata:\n  name: chart-creds\n  namespace: %s\nstringData:\n  username: %s\n  password: %s\n", ns, user, token),
			"releases/private.yaml":       privateHR,
			"releases/broken-values.yaml": fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: broken-values\n  namespace: %s\ndata:\n  values.yaml: 'a: [1'\n", ns),
		})
		a.put(ctx, "apps", helmConfig(repo))

		By("the operator's ClusterRole lets a namespace-scoped HelmRelease install into another namespace")
		withinVirtual(10*time.Minute, 10*time.Second, func(g Gomega) {
			g.Expect(releases(g, "default")).To(HaveKey(ns + "-default-intruder"))
		})
		DeferCleanup(func() { _, _ = action.NewUninstall(helmAction(Default, "default")).Run(ns + "-default-intruder") })

		By("chart.secretRef credentials, a dependency update, an optional valuesFrom that is not YAML skipped, a chartFileRef")
		withinVirtual(10*time.Minute, 10*time.Second, func(g Gomega) {
			g.Expect(hrStatus(g, ns, "private")).To(HaveKeyWithValue("phase", agent.PhaseSucceeded))
			g.Expect(cmData(g, ns, ns+"-private", "a")).To(Equal("from git"))
			g.Expect(cmData(g, ns, ns+"-private", "b")).To(Equal("from a chart file"))
			g.Expect(cmData(g, ns, ns+"-private-sub", "from")).To(Equal("sub"), "the dependency was updated")
		})

		By("resetValues: false: an upgrade keeps values git no longer gives")
		commit(repo, "drop a", map[string]string{"releases/private.yaml": strings.Replace(privateHR, "  values:\n    a: from git\n", "  values:\n    c: new\n", 1)})
		withinVirtual(15*time.Minute, 10*time.Second, func(g Gomega) {
			g.Expect(history(g, ns, ns+"-private")).To(HaveLen(2))
			g.Expect(cmData(g, ns, ns+"-private", "a")).To(Equal("from git"), "reused from the previous release")
		})

		By("clusterRole.create=false confines the operator to a Role in its namespace")
		c := helmConfig(repo)
		c.chartValues = "--set helm.versions=v3 --set clusterRole.create=false"
		commit(repo, "intruder 2", map[string]string{"releases/intruder2.yaml": strings.Replace(helloRelease(ns, "intruder2", "  targetNamespace: default\n"), "  releaseName: intruder2\n", "", 1)})
		a.put(ctx, "apps", c)
		withinVirtual(10*time.Minute, 10*time.Second, func(g Gomega) {
			g.Expect(hrEvents(g, ns, "intruder2")).To(ContainElement(SatisfyAll(
				HavePrefix(fmt.Sprintf("Warning FailedReleaseSync helm-operator: synchronization of release '%s-default-intruder2' in namespace 'default' failed: failed to determine sync action for release: failed to retrieve Helm release: ", ns)),
				ContainSubstring(`cannot list resource "secrets" in API group "" in the namespace "default"`))))
			// Sync writes this Failed phase through the target namespace's
			// client, which the API server refuses: the phase never shows.
			g.Expect(hrStatus(g, ns, "intruder2")).NotTo(HaveKeyWithValue("phase", agent.PhaseFailed))
			g.Expect(a.compliance(ctx, "apps").OperatorMessage).To(ContainSubstring("helmrelease " + ns + "/intruder2: "))
		})
		Expect(releases(Default, "default")).NotTo(HaveKey(ns + "-default-intruder2"))
	})

	It("installs the chart version asked for, or fails as Helm does (version story)", func(ctx SpecContext) {
		repo := helmRepo(ns)
		c := helmConfig(repo)
		c.chartVersion = "1.2.0"
		a.put(ctx, "old", c)
		withinVirtual(5*time.Minute, 10*time.Second, func(g Gomega) {
			got := a.compliance(ctx, "old")
			g.Expect(got.State).To(Equal("Failed"))
			g.Expect(got.OperatorMessage).To(ContainSubstring(`failed to install CRD crds/helmrelease.yaml`))
			g.Expect(got.OperatorMessage).To(ContainSubstring(`no matches for kind "CustomResourceDefinition" in version "apiextensions.k8s.io/v1beta1"`))
		})

		By("no chartVersion: the default chart 1.4.0, its image 1.4.0, and Helm 2 enabled as in its values.yaml")
		c.chartVersion, c.chartValues = "", ""
		a.put(ctx, "old", c)
		withinVirtual(5*time.Minute, 10*time.Second, func(g Gomega) {
			got := a.compliance(ctx, "old")
			g.Expect(got.State).To(Equal("Installed"))
			g.Expect(got.OperatorMessage).To(ContainSubstring(`helm operator not started: errored creating Helm 2 client`))
			rel := releases(g, ns)["flux-helm-"+ns]
			g.Expect(rel).NotTo(BeNil())
			g.Expect(rel.Chart.Metadata.Version).To(Equal("1.4.0"))
			op, err := admin.AppsV1().Deployments(ns).Get(ctx, "flux-helm-"+ns+"-helm-operator", metav1.GetOptions{})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(op.Spec.Template.Spec.Containers[0].Image).To(Equal("docker.io/fluxcd/helm-operator:1.4.0"))
			g.Expect(op.Spec.Template.Spec.Containers[0].Args).To(ContainElement("--enabled-helm-versions=v2,v3"))
		})
		clk.Advance(5 * time.Minute)
		Expect(hrStatus(Default, ns, "hello")).To(BeEmpty(), "an operator stuck on Tiller reconciles nothing")
	})

	It("waits for a release's resources when rollback is enabled, on the simulation clock, and fails it after spec.timeout (7.2)", func(ctx SpecContext) {
		if stack.Cluster().Name() != "envtest" {
			Skip("needs a control plane without kubelets, where pods never become ready")
		}
		repo := helmRepo(ns)
		hello := helmFixture(repo, ns)["releases/hello.yaml"]
		hello = strings.Replace(hello, "  values:\n", "  rollback:\n    enable: true\n  timeout: 120\n  values:\n", 1)
		commit(repo, "rollback on hello", map[string]string{"releases/hello.yaml": hello, "releases/greeter.yaml": ""})
		a.put(ctx, "apps", helmConfig(repo))
		withinVirtual(5*time.Minute, 10*time.Second, func(g Gomega) {
			st := hrStatus(g, ns, "hello")
			g.Expect(st).To(HaveKeyWithValue("phase", agent.PhaseInstalling))
			g.Expect(condition(st, "Deployed")).To(Equal(fmt.Sprintf("Unknown Installing: Running installation for Helm release 'hello' in '%s'.", ns)))
			g.Expect(st).To(HaveKeyWithValue("releaseStatus", "pending-install"), "Helm keeps the release pending while it waits")
		})
		start := clk.Now()
		withinVirtual(5*time.Minute, 10*time.Second, func(g Gomega) {
			st := hrStatus(g, ns, "hello")
			g.Expect(st).To(HaveKeyWithValue("phase", agent.PhaseDeployFailed))
			g.Expect(hrEvents(g, ns, "hello")).To(ContainElement(HaveSuffix("failed: installation failed: timed out waiting for the condition")))
		})
		// Two replicas never become ready without kubelets: the wait ends
		// at the timeout, in virtual time, not before.
		Expect(clk.Since(start)).To(BeNumerically(">=", 60*time.Second))
		Expect(clk.Since(start)).To(BeNumerically("<=", 150*time.Second))
		Expect(releases(Default, ns)).NotTo(HaveKey("hello"), "a failed install is uninstalled")
	})
})

// cmAnnotation is the helm.fluxcd.io/antecedent annotation of a ConfigMap.
func cmAnnotation(g Gomega, ns, name string) string {
	cm, err := admin.CoreV1().ConfigMaps(ns).Get(context.Background(), name, metav1.GetOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	return cm.Annotations["helm.fluxcd.io/antecedent"]
}
