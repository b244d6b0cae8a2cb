package e2e_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/tools/txtar"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"

	"github.com/gitopsim/gitopsim/sim/cluster"
)

// The corpus: repos laid out as real users lay them out
// (fixtures/repos/corpus), each synced by a cluster-scoped Flux operator
// on a fresh envtest of its own, so that a row sees only what its fixture
// did. A row says what the cluster, the compliance message and the
// agent's events look like after each step, and names the upstream
// function (fluxcd/flux v1.25.4) that decides it. Rows marked diff also
// run the divergence harness (divergence_test.go) after each step.

// corpusCase is one row of the corpus table.
type corpusCase struct {
	// fixture is fixtures/repos/corpus/<fixture>.txtar.
	fixture string
	// gitPaths become --git-path; none means the whole repo.
	gitPaths []string
	// params are more operatorParams.
	params string
	// helm enables the Helm operator.
	helm bool
	// generate returns files added to the first commit: content too big
	// to keep in a fixture.
	generate func() map[string]string
	// diff runs the divergence harness after every step.
	diff  bool
	steps []corpusStep
}

// corpusStep is a change and what follows from it. The first step of a row
// is the push of its fixture.
type corpusStep struct {
	what string
	// upstream names the upstream code that decides the outcome.
	upstream string
	// commit changes files ("" deletes one); nil commits nothing.
	commit map[string]string
	// act runs before the step is checked (an admin's kubectl, a new PUT).
	act func(ctx context.Context, r *corpusRun)
	// hold lets this much virtual time pass before the check, for steps
	// where nothing is supposed to happen.
	hold time.Duration
	want corpusWant
}

type corpusWant struct {
	// level is the compliance messageLevel; the state is always
	// Installed (the operator is; syncs report through the message).
	level string
	// message holds substrings of the operator message, which names the
	// head commit unless behind is set (a sync that cannot proceed).
	message []string
	behind  bool
	present []objCheck
	absent  []string
	// events are "Reason: substring" of the configuration's agent events.
	events []string
	// onlyOperator and onlyKubectl are the IDs the divergence harness
	// expects on one side only; every other object must be equal.
	onlyOperator, onlyKubectl []string
}

// objCheck is an object that must exist, by fluxd ID ("ns:kind/name",
// "<cluster>:kind/name") with its group, and checks on it.
type objCheck struct {
	group, id string
	checks    []func(g Gomega, u *unstructured.Unstructured)
}

// obj is an objCheck for a core or group kind: gk is "Kind" or
// "Kind.group".
func obj(gk, nsName string, checks ...func(Gomega, *unstructured.Unstructured)) objCheck {
	kind, group, _ := strings.Cut(gk, ".")
	ns, name, ok := strings.Cut(nsName, "/")
	if !ok {
		ns, name = "<cluster>", nsName
	}
	return objCheck{group: group, id: ns + ":" + strings.ToLower(kind) + "/" + name, checks: checks}
}

// field checks a field by dotted path.
func field(path string, want any) func(Gomega, *unstructured.Unstructured) {
	return func(g Gomega, u *unstructured.Unstructured) {
		v, found, err := unstructured.NestedFieldNoCopy(u.Object, strings.Split(path, ".")...)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(found).To(BeTrue(), "%s has %s", u.GetName(), path)
		g.Expect(v).To(BeEquivalentTo(want), "%s %s", u.GetName(), path)
	}
}

// corpusRun is a row in progress.
type corpusRun struct {
	tc      corpusCase
	a       *arc
	backend cluster.Backend
	git     *gitCLI
	work    string // the pushing user's work tree
	repo    string
	head    string
	mapper  *restmapper.DeferredDiscoveryRESTMapper
	dyn     dynamic.Interface
	kubectl *kubectlSide
}

const corpusConfig = "corpus"

func runCorpus(ctx SpecContext, tc corpusCase) {
	r := &corpusRun{tc: tc, git: newGitCLI()}
	r.backend = freshEnvtest(ctx)
	r.a = onboardOn(ctx, "corpus", r.backend)
	disc, err := discovery.NewDiscoveryClientForConfig(r.backend.AdminConfig())
	Expect(err).NotTo(HaveOccurred())
	r.mapper = restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disc))
	r.dyn, err = dynamic.NewForConfig(r.backend.AdminConfig())
	Expect(err).NotTo(HaveOccurred())

	r.pushFixture(ctx)
	r.a.put(ctx, corpusConfig, r.config())
	for i, st := range tc.steps {
		By(fmt.Sprintf("step %d: %s (%s)", i+1, st.what, st.upstream))
		if i > 0 && st.commit != nil {
			r.commit(ctx, st.what, st.commit)
		}
		if st.act != nil {
			st.act(ctx, r)
		}
		for end := clk.Now().Add(st.hold); clk.Now().Before(end); {
			clk.Advance(15 * time.Second)
		}
		r.await(ctx, st.want)
		if tc.diff {
			r.diverge(ctx, st.want)
		}
	}
}

func (r *corpusRun) config() configSpec {
	params := "--git-branch=main"
	if len(r.tc.gitPaths) > 0 {
		params += " --git-path=" + strings.Join(r.tc.gitPaths, ",")
	}
	if r.tc.params != "" {
		params += " " + r.tc.params
	}
	c := configSpec{url: httpsURL(r.repo), namespace: "cluster-config", instance: "cluster-config", scope: "cluster", params: params}
	if r.tc.helm {
		c.helm, c.chartVersion, c.chartValues = true, "1.4.0", "--set helm.versions=v3"
	}
	return c
}

// pushFixture pushes the row's fixture with the git CLI, as a user
// would: symbolic links ("symlink: PATH -> TARGET" lines of the archive's
// comment) and generated files included.
func (r *corpusRun) pushFixture(ctx context.Context) {
	GinkgoHelper()
	r.repo = fmt.Sprintf("corpus/%s-%d", r.tc.fixture, repoSeq.Add(1))
	ar, err := txtar.ParseFile(filepath.Join("..", "fixtures", "repos", "corpus", r.tc.fixture+".txtar"))
	Expect(err).NotTo(HaveOccurred())
	r.work = r.git.initRepo(ctx)
	files := map[string]string{}
	for _, f := range ar.Files {
		files[f.Name] = strings.ReplaceAll(string(f.Data), "${repo.self.httpsUrl}", httpsURL(r.repo))
	}
	if r.tc.generate != nil {
		for name, content := range r.tc.generate() {
			files[name] = content
		}
	}
	r.writeFiles(files)
	var msg []string
	for _, line := range strings.Split(string(ar.Comment), "\n") {
		link, ok := strings.CutPrefix(line, "symlink: ")
		if !ok {
			msg = append(msg, line)
			continue
		}
		from, to, ok := strings.Cut(link, " -> ")
		Expect(ok).To(BeTrue(), "symlink line %q", line)
		p := filepath.Join(r.work, from)
		Expect(os.MkdirAll(filepath.Dir(p), 0o755)).To(Succeed())
		Expect(os.Symlink(to, p)).To(Succeed())
	}
	r.git.run(ctx, r.work, "add", "-A")
	r.git.run(ctx, r.work, "commit", "-q", "-m", strings.TrimSpace(strings.Join(msg, "\n")))
	r.git.run(ctx, r.work, "push", "-q", r.git.ep.Git.SSHURL+"/"+r.repo+".git", "main")
	Expect(stack.Git().SetPublic(r.repo, true)).To(Succeed())
	r.head = r.git.run(ctx, r.work, "rev-parse", "HEAD")
}

func (r *corpusRun) writeFiles(files map[string]string) {
	GinkgoHelper()
	for name, content := range files {
		p := filepath.Join(r.work, name)
		if content == "" {
			Expect(os.Remove(p)).To(Succeed())
			continue
		}
		Expect(os.MkdirAll(filepath.Dir(p), 0o755)).To(Succeed())
		Expect(os.WriteFile(p, []byte(content), 0o644)).To(Succeed())
	}
}

func (r *corpusRun) commit(ctx context.Context, msg string, files map[string]string) {
	GinkgoHelper()
	r.writeFiles(files)
	r.git.run(ctx, r.work, "add", "-A")
	r.git.run(ctx, r.work, "commit", "-q", "-m", msg)
	r.git.run(ctx, r.work, "push", "-q", r.git.ep.Git.SSHURL+"/"+r.repo+".git", "main")
	r.head = r.git.run(ctx, r.work, "rev-parse", "HEAD")
}

// await checks w until it holds, moving virtual time 15 s per failed
// check, for up to a minute of real time: some of what a step waits for
// runs on the API server's clock (a namespace's contents deleted).
func (r *corpusRun) await(ctx context.Context, w corpusWant) {
	GinkgoHelper()
	// Each poll moves the virtual clock on; the deadline is real time,
	// because kubectl and the API server work on the wall clock.
	first := true
	Eventually(func(g Gomega) {
		if !first {
			clk.Advance(15 * time.Second)
		}
		first = false
		r.check(ctx, g, w)
	}).WithTimeout(time.Minute).WithPolling(20 * time.Millisecond).Should(Succeed())
}

func (r *corpusRun) check(ctx context.Context, g Gomega, w corpusWant) {
	c := r.a.compliance(ctx, corpusConfig)
	g.Expect(c.State).To(Equal("Installed"))
	if w.behind {
		g.Expect(c.OperatorMessage).NotTo(ContainSubstring(r.head[:7]))
	} else {
		g.Expect(c.OperatorMessage).To(ContainSubstring(r.head[:7]))
	}
	for _, m := range w.message {
		g.Expect(c.OperatorMessage).To(ContainSubstring(m))
	}
	g.Expect(c.Level).To(Equal(w.level), "message: %s", c.OperatorMessage)
	for _, p := range w.present {
		u := r.get(g, p.group, p.id)
		g.Expect(u).NotTo(BeNil(), "%s exists", p.id)
		for _, check := range p.checks {
			check(g, u)
		}
	}
	for _, id := range w.absent {
		group, id, _ := strings.Cut(id, " ")
		if id == "" {
			group, id = "", group
		}
		g.Expect(r.get(g, group, id)).To(BeNil(), "%s does not exist", id)
	}
	var seen []string
	for _, ev := range r.a.Agent.Events() {
		if ev.Configuration == corpusConfig {
			seen = append(seen, ev.Reason+": "+ev.Message)
		}
	}
	for _, want := range w.events {
		reason, text, _ := strings.Cut(want, ": ")
		g.Expect(seen).To(ContainElement(And(HavePrefix(reason+": "), ContainSubstring(text))))
	}
}

// get returns the object with a fluxd ID in group, or nil when there is
// none (or its kind is not served).
func (r *corpusRun) get(g Gomega, group, id string) *unstructured.Unstructured {
	ns, rest, _ := strings.Cut(id, ":")
	kind, name, _ := strings.Cut(rest, "/")
	gvr, ok := r.resource(group, kind)
	if !ok {
		return nil
	}
	ri := r.dyn.Resource(gvr).Namespace(ns)
	if ns == "<cluster>" {
		ri = r.dyn.Resource(gvr).Namespace("")
	}
	u, err := ri.(dynamic.ResourceInterface).Get(context.Background(), name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	g.Expect(err).NotTo(HaveOccurred())
	return u
}

// resource maps a group and lower-case kind to a served resource.
func (r *corpusRun) resource(group, kind string) (schema.GroupVersionResource, bool) {
	for range 2 {
		gvr, err := r.mapper.ResourceFor(schema.GroupVersionResource{Group: group, Resource: kind})
		if err == nil {
			return gvr, true
		}
		r.mapper.Reset() // a CRD may have arrived since
	}
	return schema.GroupVersionResource{}, false
}

// freshEnvtest starts an envtest of the row's own, stopped when the spec
// ends.
func freshEnvtest(ctx context.Context) cluster.Backend {
	GinkgoHelper()
	b, err := cluster.New(cluster.Options{Backend: cluster.Envtest, Workdir: GinkgoT().TempDir()})
	Expect(err).NotTo(HaveOccurred())
	Expect(b.Available()).To(Succeed())
	Expect(b.Start(ctx)).To(Succeed())
	DeferCleanup(func(ctx SpecContext) { Expect(b.Stop(ctx)).To(Succeed()) })
	return b
}

// A ConfigMap and a CRD each bigger than kubectl's last-applied
// annotation may be (262144 bytes), and one that fits.
func largeObjects() map[string]string {
	blob := func(n int) string {
		var b strings.Builder
		for i := 0; b.Len() < n; i++ {
			fmt.Fprintf(&b, "    line-%06d: %s\n", i, strings.Repeat("x", 64))
		}
		return b.String()
	}
	var props strings.Builder
	for i := 0; props.Len() < 300<<10; i++ {
		fmt.Fprintf(&props, "                field%04d:\n                  type: string\n                  description: %s\n", i,
			"Field "+fmt.Sprint(i)+" of the generated schema, described at length as real operators describe theirs. "+strings.Repeat("More words about it. ", 8))
	}
	return map[string]string{
		"manifests/fits.yaml":    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fits\n  namespace: bulky\ndata:\n  table.yaml: |\n" + blob(180<<10),
		"manifests/too-big.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: too-big\n  namespace: bulky\ndata:\n  table.yaml: |\n" + blob(300<<10),
		"manifests/crd.yaml": `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: certificates.bulky.example.com
spec:
  group: bulky.example.com
  scope: Namespaced
  names:
    kind: Certificate
    plural: certificates
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
` + props.String(),
	}
}

func ids(s ...string) []string { return s }

// setParams replaces the row's extra operatorParams with a PUT.
func setParams(params string) func(context.Context, *corpusRun) {
	return func(ctx context.Context, r *corpusRun) {
		r.tc.params = params
		r.a.put(ctx, corpusConfig, r.config())
	}
}

// dropFinalizers removes an object's finalizers, as the controller that
// owns them would.
func dropFinalizers(group, version, resource, ns, name string) func(context.Context, *corpusRun) {
	return func(ctx context.Context, r *corpusRun) {
		gvr := schema.GroupVersionResource{Group: group, Version: version, Resource: resource}
		_, err := r.dyn.Resource(gvr).Namespace(ns).Patch(ctx, name, types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{})
		Expect(err).NotTo(HaveOccurred())
	}
}

// version checks a ConfigMap's data.version.
func version(v string) func(Gomega, *unstructured.Unstructured) { return field("data.version", v) }

var _ = Describe("the Flux operator on a corpus of real-world repo layouts", Label("agent", "corpus", "envtest"), func() {
	DescribeTable("syncs each fixture as fluxd v1.25.4 would", runCorpus,
		Entry("a monorepo synced by infrastructure/ and apps/", corpusCase{
			fixture: "monorepo", gitPaths: []string{"infrastructure", "apps"}, diff: true,
			steps: []corpusStep{{
				what:     "everything applies but the ServiceMonitor, whose kind the cluster does not serve",
				upstream: "manifests.go setEffectiveNamespaces: ErrResourceNotFound → excluded with a warning",
				want: corpusWant{
					level:   "Warning",
					message: []string{"15 resources applied", "cannot find scope of servicemonitor/payments-api"},
					present: []objCheck{
						obj("Namespace", "storefront", field("metadata.labels.team", "web")),
						obj("ClusterRoleBinding.rbac.authorization.k8s.io", "platform-readers"),
						obj("Deployment.apps", "storefront/web", field("spec.replicas", 2)),
						obj("HorizontalPodAutoscaler.autoscaling", "storefront/web"),
						obj("Secret", "payments/api-db", field("data.password", "bm90LWEtcmVhbC1wYXNzd29yZA==")),
						obj("PodDisruptionBudget.policy", "payments/api"),
						obj("ConfigMap", "observability/alert-routes"),
					},
					absent: ids("default:configmap/example-settings"),
					events: []string{"Synced: cannot find scope of servicemonitor/payments-api"},
					// kubectl fails the ServiceMonitor ("no matches for kind") and applies the rest: the same set.
				},
			}},
		}),
		Entry("the same monorepo synced whole with --git-path=.", corpusCase{
			fixture: "monorepo", gitPaths: []string{"."}, diff: true,
			steps: []corpusStep{{
				what: "CI, tooling and docs YAML without kind is skipped; the docs example, which has one, lands in default",
				upstream: "resource.go unmarshalObject: no kind → nil; load.go Load; working.go MakeAbsolutePaths (filepath.Join); " +
					"namespacer.go NewNamespacer: the image's kubeconfig namespace \"default\"",
				want: corpusWant{
					level:   "Warning",
					message: []string{"16 resources applied"},
					present: []objCheck{obj("ConfigMap", "default/example-settings", field("data.LOG_LEVEL", "debug"))},
				},
			}},
		}),
		Entry("kustomize base and overlays read as plain YAML", corpusCase{
			fixture: "kustomize",
			steps: []corpusStep{{
				what:     "two kustomization.yaml files define the same unnamed Kustomization: the sync fails before applying anything",
				upstream: "load.go Load: duplicate definition, IDs taken before namespaces are defaulted",
				want: corpusWant{
					level: "Error",
					message: []string{"loading resources from repo: duplicate definition of '<cluster>:kustomization/' " +
						"(in base/kustomization.yaml and overlays/production/kustomization.yaml)"},
					absent: ids("<cluster>:namespace/shop", "default:deployment/storefront"),
					events: []string{"SyncFailed: duplicate definition"},
				},
			}},
		}),
		Entry("a kustomize base alone", corpusCase{
			fixture: "kustomize", gitPaths: []string{"base", "namespaces"}, diff: true,
			steps: []corpusStep{{
				what:     "the base applies into default (kustomize's namespace is not read); the Kustomization is skipped",
				upstream: "manifests.go setEffectiveNamespaces; namespacer.go EffectiveNamespace",
				want: corpusWant{
					level:   "Warning",
					message: []string{"3 resources applied", "cannot find scope of kustomization/"},
					present: []objCheck{obj("Deployment.apps", "default/storefront", field("spec.replicas", 1)), obj("Namespace", "shop")},
				},
			}},
		}),
		Entry("kustomize with --manifest-generation", corpusCase{
			fixture: "kustomize", params: "--manifest-generation=true",
			steps: []corpusStep{{
				what:     "gitopsim does not run generators: it says so instead of applying plain YAML",
				upstream: "configaware.go findConfigFilePaths (a .flux.yaml at or above the root); not simulated",
				want: corpusWant{
					level:   "Error",
					message: []string{".flux.yaml asks for manifest generation, which gitopsim does not simulate"},
					absent:  ids("<cluster>:namespace/shop"),
				},
			}},
		}),
		Entry("Arc's Helm tutorial layout: a chart next to its HelmRelease", corpusCase{
			fixture: "helm-tutorial", helm: true, diff: true,
			steps: []corpusStep{{
				what:     "the chart directory is skipped, the HelmRelease applied and released from this repo",
				upstream: "load.go newChartTracker/looksLikeChart (Chart.yaml and values.yaml)",
				want: corpusWant{
					level:   "Information",
					message: []string{"2 resources applied"},
					present: []objCheck{
						obj("HelmRelease.helm.fluxcd.io", "arc-k8s-demo/azure-arc-sample"),
						obj("Deployment.apps", "arc-k8s-demo/arc-k8s-demo-azure-arc-sample", field("spec.replicas", 1)),
					},
				},
			}},
		}),
		Entry("multi-document files, a List, .yml, JSON, YAML that is not Kubernetes, generateName, ignore annotations", corpusCase{
			fixture: "mixed-formats", diff: true,
			steps: []corpusStep{{
				what: "documents without kind and files not named .yaml/.yml are skipped; a List gives its items; " +
					"the unnamed Job fails alone; ignore: \"true\" is not applied, sync_only is",
				upstream: "load.go Load and ParseMultidoc; resource.go unmarshalKind (List); sync.go Sync (policy.Ignore) and Kubectl.apply (one by one after a failure)",
				want: corpusWant{
					level:   "Error",
					message: []string{"6 resources applied, 1 ignored", "1 resources failed: mixed:job/: running kubectl: exit status 1", "cannot use generate name with apply"},
					present: []objCheck{
						obj("ConfigMap", "mixed/from-list-b", field("data.k", "b")),
						obj("ConfigMap", "mixed/bootstrap"),
						obj("Secret", "mixed/app-token"),
					},
					absent: ids("mixed:service/exported", "mixed:configmap/legacy", "mixed:configmap/debug-settings"),
					// kubectl applies what fluxd's policy skips, and reads
					// .json files under -R.
					onlyKubectl: ids("mixed:configmap/debug-settings", "mixed:service/exported"),
				},
			}},
		}),
		Entry("CRDs committed with their custom resources", corpusCase{
			fixture: "crds-with-resources", diff: true,
			steps: []corpusStep{{
				what:     "the kinds' scopes come from the CRDs in the same commit; the CRs land once the CRDs serve",
				upstream: "manifests.go getCRDScopes; sync.go rankOfKind (CRDs first) and Kubectl.apply (failed ones again next sync)",
				want: corpusWant{
					level:   "Information",
					message: []string{"6 resources applied"},
					present: []objCheck{
						obj("Widget.example.com", "factory/big-red", field("spec.size", 10)),
						obj("Widget.example.com", "default/unplaced"),
						obj("Gadget.example.com", "lever"),
					},
				},
			}},
		}),
		Entry("objects too large for kubectl's last-applied annotation", corpusCase{
			fixture: "large-objects", generate: largeObjects, diff: true,
			steps: []corpusStep{{
				what:     "the 180 KiB ConfigMap applies; the 300 KiB ConfigMap and CRD fail as kubectl apply fails them",
				upstream: "sync.go Kubectl.apply (client-side kubectl apply writes last-applied-configuration)",
				want: corpusWant{
					level:   "Error",
					message: []string{"2 resources failed", "metadata.annotations: Too long"},
					present: []objCheck{obj("ConfigMap", "bulky/fits")},
					absent:  ids("bulky:configmap/too-big", "apiextensions.k8s.io <cluster>:customresourcedefinition/certificates.bulky.example.com"),
				},
			}},
		}),
		Entry("objects the API server refuses and kinds it no longer serves", corpusCase{
			fixture: "api-rejects", diff: true,
			steps: []corpusStep{{
				what:     "each refused object fails alone, the good ones apply, removed kinds are skipped with a warning",
				upstream: "sync.go Kubectl.apply; manifests.go setEffectiveNamespaces",
				want: corpusWant{
					level: "Error",
					message: []string{"2 resources applied", "cannot find scope of ", "podsecuritypolicy/restricted", "ingress/legacy",
						"4 resources failed", "rejects:configmap/Settings_V2", "rejects:configmap/typo", "rejects:deployment/selectorless", "rejects:service/metrics"},
					present: []objCheck{obj("ConfigMap", "rejects/fine")},
					absent:  ids("rejects:configmap/typo", "rejects:service/metrics"),
				},
			}},
		}),
		Entry("environments sharing files through symlinks", corpusCase{
			fixture: "symlinks", gitPaths: []string{"clusters/prod"}, diff: true,
			steps: []corpusStep{{
				what:     "a linked file is read through the link; a linked directory is not walked into",
				upstream: "load.go Load (filepath.Walk does not follow links; ioutil.ReadFile does)",
				want: corpusWant{
					level:   "Information",
					message: []string{"2 resources applied"},
					present: []objCheck{obj("ConfigMap", "default/settings"), obj("ConfigMap", "default/prod-marker")},
					absent:  ids("default:resourcequota/shared-quota"),
				},
			}},
		}),
		Entry("a dangling symlink", corpusCase{
			fixture: "symlinks", gitPaths: []string{"broken"},
			steps: []corpusStep{{
				what:     "reading it fails the sync as reading the file fails fluxd's",
				upstream: "load.go Load: unable to read file",
				want: corpusWant{
					level:   "Error",
					message: []string{`unable to read file at "/tmp/flux-working000000000/broken/settings.yaml": open /tmp/flux-working000000000/broken/settings.yaml: no such file or directory`},
				},
			}},
		}),
		Entry("garbage collection as files change", corpusCase{
			fixture: "gc-lifecycle", params: "--sync-garbage-collection",
			steps: []corpusStep{{
				what: "everything applies", upstream: "sync.go Sync",
				want: corpusWant{level: "Information", message: []string{"6 resources applied"},
					present: []objCheck{obj("ConfigMap", "lifecycle/held"), obj("Ingress.networking.k8s.io", "lifecycle/web")}},
			}, {
				what:     "a deleted file's object is collected; a sync_only one stays",
				upstream: "sync.go collectGarbage: ignore \"true\" and \"sync_only\" are never collected",
				commit:   map[string]string{"app/removed.yaml": "", "app/bootstrap.yaml": ""},
				want: corpusWant{level: "Information", message: []string{"1 garbage-collected (lifecycle:configmap/removed)"},
					present: []objCheck{obj("ConfigMap", "lifecycle/bootstrap")}, absent: ids("lifecycle:configmap/removed")},
			}, {
				what: "a manifest moved to a removed API version is skipped, and the live object with its ID collected",
				upstream: "manifests.go setEffectiveNamespaces leaves it out of the checksums; sync.go collectGarbage deletes " +
					"what carries the mark and is not in them",
				commit: map[string]string{"app/ingress.yaml": "apiVersion: extensions/v1beta1\nkind: Ingress\nmetadata:\n  name: web\n  namespace: lifecycle\n" +
					"spec:\n  backend:\n    serviceName: web\n    servicePort: 80\n"},
				want: corpusWant{level: "Warning", message: []string{"cannot find scope of ingress/web", "1 garbage-collected (lifecycle:ingress/web)"},
					absent: ids("networking.k8s.io lifecycle:ingress/web")},
			}, {
				what:     "an object whose finalizer nobody removes holds the sync in kubectl delete; the rest was applied first",
				upstream: "sync.go Kubectl.apply runs \"kubectl delete\", which waits (--wait defaults to true) with no timeout; fluxcd/flux#2691",
				commit:   map[string]string{"app/held.yaml": "", "app/kept.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kept\n  namespace: lifecycle\ndata:\n  version: \"2\"\n"},
				want: corpusWant{level: "Warning", message: []string{"waiting for kubectl delete: lifecycle:configmap/held still terminating"},
					present: []objCheck{obj("ConfigMap", "lifecycle/kept", version("2"))}},
			}, {
				what:     "while it waits, new commits are not synced",
				upstream: "daemon/loop.go Loop: one sync at a time",
				commit:   map[string]string{"app/kept.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kept\n  namespace: lifecycle\ndata:\n  version: \"3\"\n"},
				hold:     15 * time.Minute,
				want: corpusWant{level: "Warning", behind: true, message: []string{"waiting for kubectl delete"},
					present: []objCheck{obj("ConfigMap", "lifecycle/kept", version("2"))}},
			}, {
				what:     "once the finalizer is gone the sync finishes and the next one applies the new head",
				upstream: "daemon/loop.go Loop",
				act:      dropFinalizers("", "v1", "configmaps", "lifecycle", "held"),
				want: corpusWant{level: "Warning", message: []string{"synced revision"},
					present: []objCheck{obj("ConfigMap", "lifecycle/kept", version("3"))}, absent: ids("lifecycle:configmap/held"),
					events: []string{"Synced: garbage-collected (lifecycle:configmap/held)"}},
			}},
		}),
		Entry("garbage collection with --k8s-allow-namespace on a cluster-scoped configuration", corpusCase{
			fixture: "allow-list", params: "--sync-garbage-collection --k8s-allow-namespace=team-a,team-b",
			steps: []corpusStep{{
				what:     "objects outside the allowed namespaces are not applied",
				upstream: "sync.go Sync and IsAllowedResource",
				want: corpusWant{level: "Warning", message: []string{"5 resources applied", "excluded by namespace constraints: kube-public:configmap/settings"},
					present: []objCheck{obj("ConfigMap", "team-b/settings"), obj("ClusterRole.rbac.authorization.k8s.io", "team-reader")},
					absent:  ids("kube-public:configmap/settings")},
			}, {
				what:     "cluster-scoped kinds are listed cluster-wide, so a cluster role removed from git is collected",
				upstream: "sync.go listAllowedResources: only namespaced kinds are confined to the allowed namespaces",
				commit:   map[string]string{"cluster/reader.yaml": ""},
				want: corpusWant{level: "Warning", message: []string{"1 garbage-collected (<cluster>:clusterrole/team-reader)"},
					absent: ids("rbac.authorization.k8s.io <cluster>:clusterrole/team-reader")},
			}, {
				what:     "a namespace taken out of the allow-list is no longer synced, so it is collected, with all it holds",
				upstream: "sync.go Sync records checksums only for allowed resources; collectGarbage",
				act:      setParams("--sync-garbage-collection --k8s-allow-namespace=team-a"),
				want: corpusWant{level: "Warning", message: []string{"excluded by namespace constraints: <cluster>:namespace/team-b"},
					events: []string{"Synced: garbage-collected (<cluster>:namespace/team-b)"},
					absent: ids("<cluster>:namespace/team-b", "team-b:configmap/settings"), present: []objCheck{obj("ConfigMap", "team-a/settings")}},
			}},
		}),
	)
})
