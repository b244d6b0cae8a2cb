package e2e_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/go-cmp/cmp"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/gitopsim/gitopsim/sim/agent"
	"github.com/gitopsim/gitopsim/sim/cluster"
)

// The divergence harness runs a corpus fixture through the real kubectl
// that Flux v1's image ships (kubectl v1.21.14, built by `make tools` from
// tools/fluxkubectl) and compares what it applied with what gitopsim's
// operator applied. kubectl gets what a user would type to apply the same
// directories by hand, "kubectl apply -R -f <git-path>", on a fresh API
// server built and configured like the operator's (same binaries, same
// flags), with the operator's default namespace as its context namespace.
//
// Objects are compared without what the server or a controller fills in
// (uid, resourceVersion, timestamps, managedFields, status, allocated IPs)
// and without the last-applied annotation and fluxd's own label and
// annotation. Where fluxd's loading skips what kubectl applies (or the
// reverse), the row lists the IDs; anything else that differs fails.

// kubectlSide is the oracle's cluster.
type kubectlSide struct {
	b          cluster.Backend
	kubeconfig string
	baseline   map[string]bool
	checkout   string
}

// fluxKubectl is the kubectl binary the Flux image runs, as `make tools`
// builds it: its version is tools/fluxkubectl's k8s.io/kubectl.
func fluxKubectl() string {
	GinkgoHelper()
	mod, err := os.ReadFile(filepath.Join("..", "tools", "fluxkubectl", "go.mod"))
	Expect(err).NotTo(HaveOccurred())
	m := regexp.MustCompile(`(?m)^\s*k8s\.io/kubectl v0\.(\d+\.\d+)`).FindSubmatch(mod)
	Expect(m).NotTo(BeNil(), "tools/fluxkubectl/go.mod requires k8s.io/kubectl")
	bin, err := filepath.Abs(filepath.Join("..", "bin", "kubectl", "v1."+string(m[1]), "kubectl"))
	Expect(err).NotTo(HaveOccurred())
	_, err = os.Stat(bin)
	Expect(err).NotTo(HaveOccurred(), "Flux's kubectl is not built: run `make tools`")
	return bin
}

// kubectl runs Flux's kubectl in dir against the oracle's cluster.
func (k *kubectlSide) kubectl(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, fluxKubectl(), append([]string{"--kubeconfig", k.kubeconfig}, args...)...)
	cmd.Dir = dir
	cmd.Env = []string{"HOME=" + filepath.Dir(k.kubeconfig), "PATH=" + os.Getenv("PATH")}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// diverge applies the repo's head with kubectl on the oracle's cluster
// and compares.
func (r *corpusRun) diverge(ctx context.Context, w corpusWant) {
	GinkgoHelper()
	By("comparing with Flux's kubectl (" + filepath.Base(filepath.Dir(fluxKubectl())) + ") apply -R on an API server of its own")
	if r.kubectl == nil {
		r.kubectl = r.newKubectlSide(ctx)
	}
	k := r.kubectl
	if k.checkout == "" {
		k.checkout = filepath.Join(GinkgoT().TempDir(), "checkout")
		r.git.run(ctx, filepath.Dir(k.checkout), "clone", "-q", r.git.HTTPSAuth+"/"+r.repo+".git", k.checkout)
	} else {
		r.git.run(ctx, k.checkout, "pull", "-q", "--ff-only")
	}
	paths := r.tc.gitPaths
	if len(paths) == 0 {
		paths = []string{"."}
	}
	args := []string{"apply", "-R"}
	for _, p := range paths {
		args = append(args, "-f", p)
	}
	// Twice, as fluxd applies again every sync interval: kinds whose CRD
	// the first run created are served by the second.
	for i := range 2 {
		out, err := k.kubectl(ctx, k.checkout, args...)
		fmt.Fprintf(GinkgoWriter, "kubectl %s (run %d): %v\n%s\n", strings.Join(args, " "), i+1, err, out)
	}

	// The mark is fluxd's, but controllers copy a Service's labels to
	// its Endpoints and EndpointSlices.
	ours := snapshot(r.backend.AdminConfig(), func(u *unstructured.Unstructured) bool {
		_, marked := u.GetLabels()[agent.LabelGCMark]
		return marked && !clusterMade(u)
	})
	theirs := snapshot(k.b.AdminConfig(), func(u *unstructured.Unstructured) bool { return !k.baseline[fluxID(u)] && !clusterMade(u) })
	var onlyOurs, onlyTheirs, diffs []string
	for id, u := range ours {
		t, ok := theirs[id]
		if !ok {
			onlyOurs = append(onlyOurs, id)
			continue
		}
		if d := cmp.Diff(normalize(t).Object, normalize(u).Object); d != "" {
			diffs = append(diffs, fmt.Sprintf("%s (-kubectl +gitopsim):\n%s", id, d))
		}
	}
	for id := range theirs {
		if _, ok := ours[id]; !ok {
			onlyTheirs = append(onlyTheirs, id)
		}
	}
	slices.Sort(onlyOurs)
	slices.Sort(onlyTheirs)
	slices.Sort(diffs)
	want := func(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }
	Expect(onlyOurs).To(Equal(want(w.onlyOperator)), "objects only gitopsim's operator applied")
	Expect(onlyTheirs).To(Equal(want(w.onlyKubectl)), "objects only kubectl applied")
	Expect(diffs).To(BeEmpty(), "objects that differ")
	Expect(len(ours)).To(BeNumerically(">", 0), "the comparison compared something")
}

// newKubectlSide starts the oracle's API server, gives it the CRDs the
// agent installed on the operator's (GitConfig, HelmRelease), and writes
// a kubeconfig whose context namespace is the operator's default
// namespace, as the Flux image's kubeconfig names "default".
func (r *corpusRun) newKubectlSide(ctx context.Context) *kubectlSide {
	GinkgoHelper()
	k := &kubectlSide{b: freshEnvtest(ctx)}
	dir := GinkgoT().TempDir()
	k.kubeconfig = filepath.Join(dir, "kubeconfig")
	src, err := os.ReadFile(k.b.Kubeconfig())
	Expect(err).NotTo(HaveOccurred())
	Expect(os.WriteFile(k.kubeconfig, src, 0o600)).To(Succeed())
	out, err := k.kubectl(ctx, dir, "config", "set-context", "--current", "--namespace=default")
	Expect(err).NotTo(HaveOccurred(), out)

	crds := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	from, err := dynamic.NewForConfig(r.backend.AdminConfig())
	Expect(err).NotTo(HaveOccurred())
	to, err := dynamic.NewForConfig(k.b.AdminConfig())
	Expect(err).NotTo(HaveOccurred())
	list, err := from.Resource(crds).List(ctx, metav1.ListOptions{})
	Expect(err).NotTo(HaveOccurred())
	for _, crd := range list.Items {
		if _, fromGit := crd.GetLabels()[agent.LabelGCMark]; fromGit {
			continue
		}
		c := crd.DeepCopy()
		unstructured.RemoveNestedField(c.Object, "status")
		c.SetResourceVersion("")
		c.SetUID("")
		c.SetManagedFields(nil)
		_, err := to.Resource(crds).Create(ctx, c, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		Eventually(func(g Gomega) {
			got, err := to.Resource(crds).Get(ctx, c.GetName(), metav1.GetOptions{})
			g.Expect(err).NotTo(HaveOccurred())
			conds, _, _ := unstructured.NestedSlice(got.Object, "status", "conditions")
			g.Expect(conds).To(ContainElement(And(HaveKeyWithValue("type", "Established"), HaveKeyWithValue("status", "True"))))
		}).WithTimeout(30 * time.Second).Should(Succeed())
	}
	k.baseline = map[string]bool{}
	for id := range snapshot(k.b.AdminConfig(), func(*unstructured.Unstructured) bool { return true }) {
		k.baseline[id] = true
	}
	return k
}

// clusterMade tells what the cluster made itself from what was applied:
// objects owned by others, per-namespace defaults, events, leases, the
// aggregator's APIServices for CRD groups.
func clusterMade(u *unstructured.Unstructured) bool {
	if len(u.GetOwnerReferences()) > 0 {
		return true
	}
	switch u.GetNamespace() {
	case "kube-system", "kube-public", "kube-node-lease":
		return true
	}
	switch u.GetKind() {
	case "Event", "Endpoints", "EndpointSlice", "Lease", "APIService":
		return true
	case "ServiceAccount":
		return u.GetName() == "default"
	case "ConfigMap":
		return u.GetName() == "kube-root-ca.crt"
	}
	return false
}

// fluxID is fluxd's resource ID of a live object.
func fluxID(u *unstructured.Unstructured) string {
	ns := u.GetNamespace()
	if ns == "" {
		ns = "<cluster>"
	}
	return ns + ":" + strings.ToLower(u.GetKind()) + "/" + u.GetName()
}

// snapshot lists every object of every listable kind (preferred
// versions) that keep accepts, by fluxd ID.
func snapshot(cfg *rest.Config, keep func(*unstructured.Unstructured) bool) map[string]*unstructured.Unstructured {
	GinkgoHelper()
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	Expect(err).NotTo(HaveOccurred())
	dyn, err := dynamic.NewForConfig(cfg)
	Expect(err).NotTo(HaveOccurred())
	lists, err := disc.ServerPreferredResources()
	Expect(err).NotTo(HaveOccurred())
	out := map[string]*unstructured.Unstructured{}
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		Expect(err).NotTo(HaveOccurred())
		for _, res := range l.APIResources {
			if !slices.Contains(res.Verbs, "list") || strings.Contains(res.Name, "/") {
				continue
			}
			// The same objects again under another group.
			if gv.Group == "events.k8s.io" {
				continue
			}
			items, err := dyn.Resource(gv.WithResource(res.Name)).List(context.Background(), metav1.ListOptions{})
			if apierrors.IsNotFound(err) || apierrors.IsMethodNotSupported(err) {
				continue
			}
			Expect(err).NotTo(HaveOccurred(), "list %s", res.Name)
			for i := range items.Items {
				u := &items.Items[i]
				if keep(u) {
					out[fluxID(u)] = u
				}
			}
		}
	}
	return out
}

// normalize drops what the server, controllers, kubectl's bookkeeping and
// fluxd's marks put on an object, leaving what was applied.
func normalize(u *unstructured.Unstructured) *unstructured.Unstructured {
	c := u.DeepCopy()
	for _, f := range []string{"uid", "resourceVersion", "creationTimestamp", "generation", "managedFields", "selfLink"} {
		unstructured.RemoveNestedField(c.Object, "metadata", f)
	}
	unstructured.RemoveNestedField(c.Object, "status")
	ann := c.GetAnnotations()
	for _, a := range []string{"kubectl.kubernetes.io/last-applied-configuration", agent.AnnSyncChecksum, "deployment.kubernetes.io/revision"} {
		delete(ann, a)
	}
	if len(ann) == 0 {
		unstructured.RemoveNestedField(c.Object, "metadata", "annotations")
	} else {
		c.SetAnnotations(ann)
	}
	labels := c.GetLabels()
	delete(labels, agent.LabelGCMark)
	if len(labels) == 0 {
		unstructured.RemoveNestedField(c.Object, "metadata", "labels")
	} else {
		c.SetLabels(labels)
	}
	if c.GetKind() == "Service" {
		// Allocated by each API server on its own.
		unstructured.RemoveNestedField(c.Object, "spec", "clusterIP")
		unstructured.RemoveNestedField(c.Object, "spec", "clusterIPs")
	}
	return c
}
