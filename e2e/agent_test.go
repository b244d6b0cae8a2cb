package e2e_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/hybridkubernetes/armhybridkubernetes"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/kubernetesconfiguration/armkubernetesconfiguration/v2"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/crypto/ssh"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	"github.com/gitopsim/gitopsim/sim"
	"github.com/gitopsim/gitopsim/sim/agent"
	"github.com/gitopsim/gitopsim/sim/arm/armtest"
	"github.com/gitopsim/gitopsim/sim/azsdk"
	"github.com/gitopsim/gitopsim/sim/cluster"
	"github.com/gitopsim/gitopsim/sim/gitserver"
)

var clusterSeq atomic.Int64

// arc is one onboarded cluster seen from a user's side: the official SDK
// clients for ARM, and the cluster's agent for network faults.
type arc struct {
	*sim.Connected
	configs *armkubernetesconfiguration.SourceControlConfigurationsClient
	ccs     *armhybridkubernetes.ConnectedClusterClient
}

// onboard makes a fresh connected cluster on the suite's envtest, with its
// own agent, stopped when the spec ends.
func onboard(ctx context.Context, prefix string) *arc {
	GinkgoHelper()
	return onboardOn(ctx, prefix, nil)
}

// onboardOn is onboard on a Kubernetes API of the caller's (nil: the
// suite's).
func onboardOn(ctx context.Context, prefix string, backend cluster.Backend) *arc {
	GinkgoHelper()
	c, err := stack.Onboard(ctx, sim.OnboardOptions{Name: fmt.Sprintf("%s-%d", prefix, clusterSeq.Add(1)), ResourceGroup: "e2e-agent", Backend: backend})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func(ctx SpecContext) { Expect(c.Agent.Stop(ctx)).To(Succeed()) })
	az, err := azsdk.New(stack.Endpoints().ARM)
	Expect(err).NotTo(HaveOccurred())
	a := &arc{Connected: c}
	a.configs, err = armkubernetesconfiguration.NewSourceControlConfigurationsClient(az.SubscriptionID, az.Credential, az.Options)
	Expect(err).NotTo(HaveOccurred())
	a.ccs, err = armhybridkubernetes.NewConnectedClusterClient(az.SubscriptionID, az.Credential, az.Options)
	Expect(err).NotTo(HaveOccurred())
	return a
}

type configSpec struct {
	url, namespace, instance, scope, params string
	knownHosts                              string
	protected                               map[string]string
	// helm enables the Helm operator with these helmOperatorProperties.
	helm                      bool
	chartVersion, chartValues string
}

func (a *arc) put(ctx context.Context, name string, c configSpec) {
	GinkgoHelper()
	scope := armkubernetesconfiguration.OperatorScopeTypeNamespace
	if c.scope == "cluster" {
		scope = armkubernetesconfiguration.OperatorScopeTypeCluster
	}
	props := &armkubernetesconfiguration.SourceControlConfigurationProperties{
		RepositoryURL: to.Ptr(c.url), OperatorNamespace: to.Ptr(c.namespace), OperatorInstanceName: to.Ptr(c.instance),
		OperatorType: to.Ptr(armkubernetesconfiguration.OperatorTypeFlux), OperatorScope: to.Ptr(scope), OperatorParams: to.Ptr(c.params),
	}
	if c.helm {
		props.EnableHelmOperator = to.Ptr(true)
		props.HelmOperatorProperties = &armkubernetesconfiguration.HelmOperatorProperties{ChartVersion: to.Ptr(c.chartVersion), ChartValues: to.Ptr(c.chartValues)}
	}
	if c.knownHosts != "" {
		props.SSHKnownHostsContents = to.Ptr(base64.StdEncoding.EncodeToString([]byte(c.knownHosts)))
	}
	if len(c.protected) > 0 {
		props.ConfigurationProtectedSettings = map[string]*string{}
		for k, v := range c.protected {
			props.ConfigurationProtectedSettings[k] = to.Ptr(base64.StdEncoding.EncodeToString([]byte(v)))
		}
	}
	_, err := a.configs.CreateOrUpdate(ctx, a.ResourceGroup, "Microsoft.Kubernetes", "connectedClusters", a.Name, name,
		armkubernetesconfiguration.SourceControlConfiguration{Properties: props}, nil)
	Expect(err).NotTo(HaveOccurred())
}

// compliance is a configuration's complianceStatus and repositoryPublicKey
// as the SDK returns them, with the message's JSON unpacked.
type compliance struct {
	State, Level, PublicKey       string
	OperatorMessage, ClusterState string
}

func (a *arc) compliance(ctx context.Context, name string) compliance {
	GinkgoHelper()
	got, err := a.configs.Get(ctx, a.ResourceGroup, "Microsoft.Kubernetes", "connectedClusters", a.Name, name, nil)
	Expect(err).NotTo(HaveOccurred())
	cs := got.Properties.ComplianceStatus
	var msg struct {
		OperatorMessage, ClusterState *string
	}
	Expect(json.Unmarshal([]byte(*cs.Message), &msg)).To(Succeed(), "message is JSON in a string: %q", *cs.Message)
	c := compliance{State: string(*cs.ComplianceState), Level: string(*cs.MessageLevel), PublicKey: *got.Properties.RepositoryPublicKey}
	if msg.OperatorMessage != nil {
		c.OperatorMessage = *msg.OperatorMessage
	}
	if msg.ClusterState != nil {
		c.ClusterState = *msg.ClusterState
	}
	return c
}

func (a *arc) delete(ctx context.Context, name string) {
	GinkgoHelper()
	p, err := a.configs.BeginDelete(ctx, a.ResourceGroup, "Microsoft.Kubernetes", "connectedClusters", a.Name, name, nil)
	Expect(err).NotTo(HaveOccurred())
	_, err = p.PollUntilDone(ctx, nil)
	Expect(err).NotTo(HaveOccurred())
}

func (a *arc) connectivity(ctx context.Context) string {
	GinkgoHelper()
	got, err := a.ccs.Get(ctx, a.ResourceGroup, a.Name, nil)
	Expect(err).NotTo(HaveOccurred())
	return string(*got.Properties.ConnectivityStatus)
}

// withinVirtual advances the suite's virtual clock a step at a time until
// check passes, and fails if it still does not after d of virtual time.
func withinVirtual(d, step time.Duration, check func(g Gomega)) {
	GinkgoHelper()
	deadline := clk.Now().Add(d)
	for {
		msg := try(check)
		if msg == "" {
			return
		}
		if !clk.Now().Before(deadline) {
			Fail(fmt.Sprintf("not within %v of virtual time: %s", d, msg))
		}
		clk.Advance(step)
	}
}

// try runs check and returns its first failure, or "".
func try(check func(g Gomega)) (msg string) {
	g := NewGomega(func(m string, _ ...int) { msg = m; panic(stopCheck{}) })
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(stopCheck); !ok {
				panic(r)
			}
		}
	}()
	check(g)
	return ""
}

type stopCheck struct{}

// keyPair is a new SSH key: PEM private half and authorized_keys public half.
func keyPair() (string, string) {
	priv := armtest.SSHKeyPEM()
	signer, err := ssh.ParsePrivateKey([]byte(priv))
	Expect(err).NotTo(HaveOccurred())
	return priv, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))
}

var repoSeq atomic.Int64

// newRepo creates a repo holding files on main and returns its name.
func newRepo(prefix string, public bool, files map[string]string) string {
	GinkgoHelper()
	name := fmt.Sprintf("agent/%s-%d", prefix, repoSeq.Add(1))
	_, err := stack.Git().CreateRepo(name, gitserver.RepoOptions{Public: public, DefaultBranch: "main"})
	Expect(err).NotTo(HaveOccurred())
	commit(name, "initial manifests", files)
	return name
}

func commit(repo, message string, files map[string]string) string {
	GinkgoHelper()
	m := map[string]*string{}
	for k, v := range files {
		if v == "" {
			m[k] = nil
		} else {
			m[k] = to.Ptr(v)
		}
	}
	h, err := stack.Git().Commit(repo, "main", message, m)
	Expect(err).NotTo(HaveOccurred())
	return h.String()
}

func sshURL(repo string) string   { return stack.Git().SSHURL() + "/" + repo + ".git" }
func httpsURL(repo string) string { return stack.Git().HTTPSURL() + "/" + repo + ".git" }

func cmYAML(ns, name, value string, annotations ...string) string {
	ann := ""
	if len(annotations) > 0 {
		ann = "\n  annotations:\n"
		for i := 0; i+1 < len(annotations); i += 2 {
			ann += fmt.Sprintf("    %s: %q\n", annotations[i], annotations[i+1])
		}
		ann = strings.TrimSuffix(ann, "\n")
	}
	nsLine := ""
	if ns != "" {
		nsLine = "\n  namespace: " + ns
	}
	return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s%s%s\ndata:\n  value: %q\n", name, nsLine, ann, value)
}

// cmValue returns a ConfigMap's data.value, or "<absent>".
func cmValue(g Gomega, ns, name string) string { return cmData(g, ns, name, "value") }

func exists(g Gomega, get func() error) bool {
	err := get()
	if apierrors.IsNotFound(err) {
		return false
	}
	g.Expect(err).NotTo(HaveOccurred())
	return true
}

var _ = Describe("the Arc agent and its Flux operators", Label("agent"), func() {
	var dyn dynamic.Interface
	BeforeEach(func() {
		var err error
		dyn, err = dynamic.NewForConfig(stack.Cluster().AdminConfig())
		Expect(err).NotTo(HaveOccurred())
	})

	It("installs a cluster-scoped operator that applies a fixture repo, follows pushes and reports Installed", func(ctx SpecContext) {
		a := onboard(ctx, "fleet")
		Expect(a.connectivity(ctx)).To(Equal("Connected"))
		repo := fmt.Sprintf("agent/fixture-%d", repoSeq.Add(1))
		_, err := stack.Git().CommitTxtar(repo, "main", "../fixtures/repos/cluster-config.txtar")
		Expect(err).NotTo(HaveOccurred())
		priv, pub := keyPair()
		_, err = stack.Git().AddDeployKey(repo, pub, false)
		Expect(err).NotTo(HaveOccurred())
		a.put(ctx, "cluster-config", configSpec{url: sshURL(repo), namespace: "cluster-config", instance: "cluster-config", scope: "cluster",
			params: "--git-branch=main --git-path=namespaces,team-a", protected: map[string]string{"sshPrivateKey": priv}})
		Expect(a.compliance(ctx, "cluster-config").State).To(Equal("Pending"))

		withinVirtual(time.Minute, 5*time.Second, func(g Gomega) {
			cm, err := admin.CoreV1().ConfigMaps("team-a").Get(ctx, "app-config", metav1.GetOptions{})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(cm.Data["greeting"]).To(Equal("hello from team-a"))
			g.Expect(cm.Labels[agent.LabelGCMark]).To(HavePrefix("sha256."))
			g.Expect(cm.Annotations[agent.AnnSyncChecksum]).To(HaveLen(40))
		})
		_, err = admin.CoreV1().Namespaces().Get(ctx, "team-b", metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred(), "the namespaces path is applied too")
		dep, err := admin.AppsV1().Deployments("team-a").Get(ctx, "web", metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		// fluxd runs "kubectl apply": client-side, with its annotation.
		Expect(dep.ManagedFields).To(ContainElement(HaveField("Manager", "kubectl-client-side-apply")))
		Expect(dep.Annotations).To(HaveKey("kubectl.kubernetes.io/last-applied-configuration"))

		c := a.compliance(ctx, "cluster-config")
		Expect(c.State).To(Equal("Installed"))
		Expect(c.ClusterState).To(Equal("Installed"))
		Expect(c.PublicKey).To(Equal(pub))
		head, err := stack.Git().Ref(repo, "refs/heads/main")
		Expect(err).NotTo(HaveOccurred())
		Expect(c.OperatorMessage).To(ContainSubstring(head.String()[:7]))

		By("installing the operator objects Arc installs")
		gc, err := dyn.Resource(agent.GitConfigGVR).Namespace("cluster-config").Get(ctx, "cluster-config", metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(gc.Object["spec"]).To(HaveKeyWithValue("giturl", sshURL(repo)))
		Expect(gc.Object["spec"]).To(HaveKeyWithValue("operatorScope", "cluster"))
		Expect(gc.Object["status"]).To(HaveKeyWithValue("publicKey", pub))
		op, err := admin.AppsV1().Deployments("cluster-config").Get(ctx, "cluster-config", metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(op.Spec.Template.Spec.ServiceAccountName).To(Equal("cluster-config"))
		Expect(op.Spec.Template.Spec.Containers[0].Args).To(ContainElement("--git-url=" + sshURL(repo)))
		crb, err := admin.RbacV1().ClusterRoleBindings().Get(ctx, "flux-cluster-config-cluster-config", metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(crb.Subjects[0].Name).To(Equal("cluster-config"))
		secret, err := admin.CoreV1().Secrets("cluster-config").Get(ctx, "cluster-config-git-deploy", metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(string(secret.Data["identity"])).To(Equal(priv), "the protected key is kept in the deploy-key secret")

		By("applying a pushed change within a git poll interval")
		rev := commit(repo, "new greeting", map[string]string{"team-a/configmap.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-config\n  namespace: team-a\ndata:\n  greeting: hello again\n"})
		withinVirtual(6*time.Minute, 30*time.Second, func(g Gomega) {
			cm, err := admin.CoreV1().ConfigMaps("team-a").Get(ctx, "app-config", metav1.GetOptions{})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(cm.Data["greeting"]).To(Equal("hello again"))
			g.Expect(a.compliance(ctx, "cluster-config").OperatorMessage).To(ContainSubstring(rev[:7]))
		})

		By("reconfiguring the operator on a PUT that replaces the configuration")
		a.put(ctx, "cluster-config", configSpec{url: sshURL(repo), namespace: "cluster-config", instance: "cluster-config", scope: "cluster",
			params: "--git-branch=main --git-path=team-b", protected: map[string]string{"sshPrivateKey": priv}})
		withinVirtual(time.Minute, 5*time.Second, func(g Gomega) {
			g.Expect(exists(g, func() error {
				_, err := admin.CoreV1().ConfigMaps("team-b").Get(ctx, "app-config", metav1.GetOptions{})
				return err
			})).To(BeTrue())
			g.Expect(a.compliance(ctx, "cluster-config").State).To(Equal("Installed"))
		})
		op, err = admin.AppsV1().Deployments("cluster-config").Get(ctx, "cluster-config", metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(op.Spec.Template.Spec.Containers[0].Args).To(ContainElement("--git-path=team-b"))
	})

	It("confines namespace-scoped tenants with the API server's RBAC while a cluster-scoped operator applies everything", func(ctx SpecContext) {
		a := onboard(ctx, "tenants")
		n := clusterSeq.Load()
		nsA, nsB, platform := fmt.Sprintf("tenant-a-%d", n), fmt.Sprintf("tenant-b-%d", n), fmt.Sprintf("platform-%d", n)
		clusterRole := fmt.Sprintf("tenant-a-wants-cluster-%d", n)
		repoA := newRepo("tenant-a", true, map[string]string{
			"app.yaml":       cmYAML(nsA, "a-config", "a1"),
			"defaulted.yaml": cmYAML("", "a-defaulted", "in my namespace"),
			"intruder.yaml":  cmYAML(nsB, "intruder", "should never land"),
			"rbac.yaml":      fmt.Sprintf("apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: %s\nrules: []\n", clusterRole),
		})
		repoB := newRepo("tenant-b", true, map[string]string{"app.yaml": cmYAML(nsB, "b-config", "b1")})
		repoP := newRepo("platform", true, map[string]string{
			"ns.yaml":  fmt.Sprintf("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s-apps\n", platform),
			"cm.yaml":  cmYAML(platform+"-apps", "shared", "p1"),
			"crb.yaml": fmt.Sprintf("apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: %s-reader\nrules: []\n", platform),
		})
		a.put(ctx, "tenant-a", configSpec{url: httpsURL(repoA), namespace: nsA, instance: "flux", scope: "namespace", params: "--git-branch=main"})
		a.put(ctx, "tenant-b", configSpec{url: httpsURL(repoB), namespace: nsB, instance: "flux", scope: "namespace", params: "--git-branch=main"})
		a.put(ctx, "platform", configSpec{url: httpsURL(repoP), namespace: platform, instance: "platform", scope: "cluster", params: "--git-branch=main"})

		withinVirtual(time.Minute, 5*time.Second, func(g Gomega) {
			g.Expect(cmValue(g, nsA, "a-config")).To(Equal("a1"))
			g.Expect(cmValue(g, nsB, "b-config")).To(Equal("b1"))
			g.Expect(cmValue(g, platform+"-apps", "shared")).To(Equal("p1"))
			g.Expect(a.compliance(ctx, "tenant-a").OperatorMessage).To(ContainSubstring("forbidden"))
		})
		// Without --k8s-default-namespace, fluxd puts them in "default"
		// (its image's kubeconfig), which the tenant may not touch.
		Expect(cmValue(Default, nsA, "a-defaulted")).To(Equal("<absent>"))
		Expect(cmValue(Default, "default", "a-defaulted")).To(Equal("<absent>"))
		Expect(cmValue(Default, nsB, "intruder")).To(Equal("<absent>"))
		_, err := admin.RbacV1().ClusterRoles().Get(ctx, clusterRole, metav1.GetOptions{})
		Expect(apierrors.IsNotFound(err)).To(BeTrue(), "tenant-a's ClusterRole must be refused, got %v", err)
		_, err = admin.RbacV1().ClusterRoles().Get(ctx, platform+"-reader", metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred(), "the cluster-scoped operator may apply ClusterRoles")

		ca := a.compliance(ctx, "tenant-a")
		Expect(ca.State).To(Equal("Installed"))
		Expect(ca.Level).To(Equal("Error"))
		// kubectl's client-side apply reads before it writes: the 403 is
		// on get, in kubectl's words, wrapped by fluxd.
		Expect(ca.OperatorMessage).To(ContainSubstring(fmt.Sprintf(`<cluster>:clusterrole/%s: running kubectl: exit status 1, stderr: Error from server (Forbidden): error when retrieving current configuration of:`, clusterRole)))
		Expect(ca.OperatorMessage).To(ContainSubstring(fmt.Sprintf(`User "system:serviceaccount:%s:flux" cannot get resource "clusterroles"`, nsA)))
		Expect(ca.OperatorMessage).To(ContainSubstring("excluded by namespace constraints: default:configmap/a-defaulted, " + nsB + ":configmap/intruder"))
		Expect(ca.OperatorMessage).To(ContainSubstring("1 resources applied"))
		cb := a.compliance(ctx, "tenant-b")
		Expect(cb.Level).To(Equal("Information"), cb.OperatorMessage)
		Expect(cb.OperatorMessage).To(ContainSubstring("1 resources applied"))
		rb, err := admin.RbacV1().RoleBindings(nsA).Get(ctx, "flux", metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(rb.RoleRef.Kind).To(Equal("Role"), "namespace scope is confined by a RoleBinding")

		By("placing un-namespaced objects with --k8s-default-namespace")
		a.put(ctx, "tenant-a", configSpec{url: httpsURL(repoA), namespace: nsA, instance: "flux", scope: "namespace", params: "--git-branch=main --k8s-default-namespace=" + nsA})
		withinVirtual(time.Minute, 5*time.Second, func(g Gomega) {
			g.Expect(cmValue(g, nsA, "a-defaulted")).To(Equal("in my namespace"))
		})
	})

	It("garbage-collects what left git only with --sync-garbage-collection, and respects fluxcd.io/ignore", func(ctx SpecContext) {
		a := onboard(ctx, "gc")
		n := clusterSeq.Load()
		files := func(ns string) map[string]string {
			return map[string]string{
				"keep.yaml":    cmYAML(ns, "keep", "v1"),
				"drop.yaml":    cmYAML(ns, "drop", "v1"),
				"ignored.yaml": cmYAML(ns, "ignored-in-git", "v1", "fluxcd.io/ignore", "true"),
			}
		}
		on, off := fmt.Sprintf("gc-on-%d", n), fmt.Sprintf("gc-off-%d", n)
		repoOn, repoOff := newRepo("gc-on", true, files(on)), newRepo("gc-off", true, files(off))
		a.put(ctx, "gc-on", configSpec{url: httpsURL(repoOn), namespace: on, instance: "flux", scope: "namespace", params: "--git-branch=main --sync-garbage-collection"})
		a.put(ctx, "gc-off", configSpec{url: httpsURL(repoOff), namespace: off, instance: "flux", scope: "namespace", params: "--git-branch=main"})
		withinVirtual(time.Minute, 5*time.Second, func(g Gomega) {
			for _, ns := range []string{on, off} {
				g.Expect(cmValue(g, ns, "keep")).To(Equal("v1"))
				g.Expect(cmValue(g, ns, "drop")).To(Equal("v1"))
			}
		})
		Expect(cmValue(Default, on, "ignored-in-git")).To(Equal("<absent>"), "fluxcd.io/ignore in git: never applied")

		By("leaving alone a live object annotated fluxcd.io/ignore")
		_, err := admin.CoreV1().ConfigMaps(on).Patch(ctx, "keep", types.MergePatchType,
			[]byte(`{"metadata":{"annotations":{"fluxcd.io/ignore":"true"}},"data":{"value":"hand-edited"}}`), metav1.PatchOptions{})
		Expect(err).NotTo(HaveOccurred())

		for _, r := range []struct{ repo, ns string }{{repoOn, on}, {repoOff, off}} {
			commit(r.repo, "drop one, change keep", map[string]string{"drop.yaml": "", "keep.yaml": cmYAML(r.ns, "keep", "v2")})
		}
		withinVirtual(6*time.Minute, 30*time.Second, func(g Gomega) {
			g.Expect(cmValue(g, on, "drop")).To(Equal("<absent>"))
			g.Expect(cmValue(g, off, "keep")).To(Equal("v2"))
		})
		Expect(cmValue(Default, off, "drop")).To(Equal("v1"), "without GC a deleted manifest's object stays")
		Expect(cmValue(Default, on, "keep")).To(Equal("hand-edited"), "an ignored live object is not synced")
		Expect(a.compliance(ctx, "gc-on").OperatorMessage).To(ContainSubstring("garbage-collected (" + on + ":configmap/drop)"))
	})

	It("moves the flux-sync tag with a read-write key, and syncs nothing when a read-only key fails the write check", func(ctx SpecContext) {
		a := onboard(ctx, "tags")
		n := clusterSeq.Load()
		rw, ro := fmt.Sprintf("sync-rw-%d", n), fmt.Sprintf("sync-ro-%d", n)
		repoRW := newRepo("rw", false, map[string]string{"cm.yaml": cmYAML(rw, "app", "v1")})
		repoRO := newRepo("ro", false, map[string]string{"cm.yaml": cmYAML(ro, "app", "v1")})
		privRW, pubRW := keyPair()
		privRO, pubRO := keyPair()
		_, err := stack.Git().AddDeployKey(repoRW, pubRW, true)
		Expect(err).NotTo(HaveOccurred())
		_, err = stack.Git().AddDeployKey(repoRO, pubRO, false)
		Expect(err).NotTo(HaveOccurred())
		// --git-user keeps Arc from adding --git-readonly.
		a.put(ctx, "rw", configSpec{url: sshURL(repoRW), namespace: rw, instance: "flux", scope: "namespace", params: "--git-branch=main --git-user=flux", protected: map[string]string{"sshPrivateKey": privRW}})
		a.put(ctx, "ro", configSpec{url: sshURL(repoRO), namespace: ro, instance: "flux", scope: "namespace", params: "--git-branch=main --git-user=flux", protected: map[string]string{"sshPrivateKey": privRO}})
		head, err := stack.Git().Ref(repoRW, "refs/heads/main")
		Expect(err).NotTo(HaveOccurred())
		tagTarget := func(g Gomega) string {
			tag, err := stack.Git().Ref(repoRW, "refs/tags/flux-sync^{}")
			if err != nil {
				return "<none>"
			}
			return tag.String()
		}
		withinVirtual(time.Minute, 5*time.Second, func(g Gomega) {
			g.Expect(cmValue(g, rw, "app")).To(Equal("v1"))
			g.Expect(tagTarget(g)).To(Equal(head.String()))
			g.Expect(a.compliance(ctx, "ro").OperatorMessage).To(ContainSubstring("attempt to push tag"))
		})
		ro1 := a.compliance(ctx, "ro")
		Expect(ro1.Level).To(Equal("Error"))
		Expect(ro1.OperatorMessage).To(ContainSubstring("git repo not ready"))
		Expect(cmValue(Default, ro, "app")).To(Equal("<absent>"), "a repo that is not ready never syncs")

		rev := commit(repoRW, "v2", map[string]string{"cm.yaml": cmYAML(rw, "app", "v2")})
		withinVirtual(6*time.Minute, 30*time.Second, func(g Gomega) {
			g.Expect(tagTarget(g)).To(Equal(rev))
		})
		Expect(cmValue(Default, rw, "app")).To(Equal("v2"))
		refs, err := stack.Git().Refs(repoRW)
		Expect(err).NotTo(HaveOccurred())
		for r := range refs {
			Expect(r).NotTo(ContainSubstring("flux-write-check"), "the write-check tag is deleted again")
		}
	})

	It("reports a generated key as repositoryPublicKey and syncs once it is added as a deploy key", func(ctx SpecContext) {
		a := onboard(ctx, "keygen")
		ns := fmt.Sprintf("keygen-%d", clusterSeq.Load())
		repo := newRepo("keygen", false, map[string]string{"cm.yaml": cmYAML(ns, "app", "v1")})
		a.put(ctx, "keygen", configSpec{url: sshURL(repo), namespace: ns, instance: "flux", scope: "namespace", params: "--git-branch=main"})
		Expect(a.compliance(ctx, "keygen").PublicKey).To(BeEmpty(), "empty until the agent reports the generated key")
		var pub string
		withinVirtual(time.Minute, 5*time.Second, func(g Gomega) {
			c := a.compliance(ctx, "keygen")
			// ssh-keygen's default, as fluxd runs it (no -t): RSA.
			g.Expect(c.PublicKey).To(HavePrefix("ssh-rsa "))
			g.Expect(c.OperatorMessage).To(ContainSubstring("git clone"))
			pub = c.PublicKey
		})
		clk.Advance(time.Minute)
		Expect(cmValue(Default, ns, "app")).To(Equal("<absent>"))
		_, err := stack.Git().AddDeployKey(repo, pub, false)
		Expect(err).NotTo(HaveOccurred())
		withinVirtual(30*time.Second, 5*time.Second, func(g Gomega) {
			g.Expect(cmValue(g, ns, "app")).To(Equal("v1"))
			g.Expect(a.compliance(ctx, "keygen").Level).To(Equal("Information"))
		})
		Expect(a.compliance(ctx, "keygen").PublicKey).To(Equal(pub), "the key survives in the deploy-key secret")
	})

	It("keeps a configuration Pending while the agent is offline, turns Offline after 15 minutes, and catches up on reconnect", func(ctx SpecContext) {
		a := onboard(ctx, "offline")
		ns := fmt.Sprintf("offline-%d", clusterSeq.Load())
		repo := newRepo("offline", true, map[string]string{"cm.yaml": cmYAML(ns, "app", "v1")})
		a.Agent.ARMLink().SetOffline(true)
		a.put(ctx, "offline", configSpec{url: httpsURL(repo), namespace: ns, instance: "flux", scope: "namespace", params: "--git-branch=main"})
		clk.Advance(14 * time.Minute)
		Expect(a.compliance(ctx, "offline").State).To(Equal("Pending"))
		Expect(a.connectivity(ctx)).To(Equal("Connected"))
		withinVirtual(2*time.Minute, 10*time.Second, func(g Gomega) {
			g.Expect(a.connectivity(ctx)).To(Equal("Offline"))
		})
		Expect(cmValue(Default, ns, "app")).To(Equal("<absent>"), "no new configurations while offline")

		a.Agent.ARMLink().SetOffline(false)
		withinVirtual(time.Minute, 5*time.Second, func(g Gomega) {
			g.Expect(a.compliance(ctx, "offline").State).To(Equal("Installed"))
			g.Expect(a.connectivity(ctx)).To(Equal("Connected"))
			g.Expect(cmValue(g, ns, "app")).To(Equal("v1"))
		})

		By("syncing git while Azure is unreachable; the last report stays until reconnect")
		before := a.compliance(ctx, "offline")
		a.Agent.ARMLink().SetOffline(true)
		rev := commit(repo, "v2", map[string]string{"cm.yaml": cmYAML(ns, "app", "v2")})
		withinVirtual(6*time.Minute, 30*time.Second, func(g Gomega) {
			g.Expect(cmValue(g, ns, "app")).To(Equal("v2"))
		})
		Expect(a.compliance(ctx, "offline")).To(Equal(before))
		synced := func(g Gomega) any {
			gc, err := dyn.Resource(agent.GitConfigGVR).Namespace(ns).Get(ctx, "offline", metav1.GetOptions{})
			g.Expect(err).NotTo(HaveOccurred())
			return gc.Object["status"].(map[string]any)["isSyncedWithAzure"]
		}
		Expect(synced(Default)).To(BeFalse(), "the GitConfig shows the report Azure has not got")
		a.Agent.ARMLink().SetOffline(false)
		withinVirtual(time.Minute, 5*time.Second, func(g Gomega) {
			g.Expect(a.compliance(ctx, "offline").OperatorMessage).To(ContainSubstring(rev[:7]))
			g.Expect(synced(g)).To(BeTrue())
		})
	})

	It("fails a configuration whose protected settings expired while offline, until it is recreated", func(ctx SpecContext) {
		a := onboard(ctx, "expiry")
		ns := fmt.Sprintf("expiry-%d", clusterSeq.Load())
		repo := newRepo("expiry", false, map[string]string{"cm.yaml": cmYAML(ns, "app", "v1")})
		priv, pub := keyPair()
		_, err := stack.Git().AddDeployKey(repo, pub, false)
		Expect(err).NotTo(HaveOccurred())
		spec := configSpec{url: sshURL(repo), namespace: ns, instance: "flux", scope: "namespace", params: "--git-branch=main", protected: map[string]string{"sshPrivateKey": priv}}
		a.Agent.ARMLink().SetOffline(true)
		a.put(ctx, "expiry", spec)
		clk.Advance(49 * time.Hour)
		a.Agent.ARMLink().SetOffline(false)
		withinVirtual(time.Minute, 5*time.Second, func(g Gomega) {
			g.Expect(a.connectivity(ctx)).To(Equal("Connected"))
		})
		c := a.compliance(ctx, "expiry")
		Expect(c.State).To(Equal("Failed"))
		Expect(c.OperatorMessage).To(ContainSubstring("48 hours"))
		_, err = admin.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		Expect(apierrors.IsNotFound(err)).To(BeTrue(), "nothing is installed without the settings")

		a.delete(ctx, "expiry")
		a.put(ctx, "expiry", spec)
		withinVirtual(time.Minute, 5*time.Second, func(g Gomega) {
			g.Expect(a.compliance(ctx, "expiry").State).To(Equal("Installed"))
			g.Expect(cmValue(g, ns, "app")).To(Equal("v1"))
		})
	})

	It("removes the operator when the configuration is deleted and leaves the workloads and the namespace", func(ctx SpecContext) {
		a := onboard(ctx, "delete")
		ns := fmt.Sprintf("delete-%d", clusterSeq.Load())
		repo := newRepo("delete", true, map[string]string{"cm.yaml": cmYAML(ns, "app", "v1")})
		a.put(ctx, "doomed", configSpec{url: httpsURL(repo), namespace: ns, instance: "flux", scope: "namespace", params: "--git-branch=main"})
		withinVirtual(time.Minute, 5*time.Second, func(g Gomega) {
			g.Expect(cmValue(g, ns, "app")).To(Equal("v1"))
		})
		_, err := admin.CoreV1().Secrets(ns).Get(ctx, "flux-git-deploy", metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred(), "the deploy-key secret exists while the configuration does")
		a.delete(ctx, "doomed")
		withinVirtual(time.Minute, 5*time.Second, func(g Gomega) {
			g.Expect(exists(g, func() error {
				_, err := dyn.Resource(agent.GitConfigGVR).Namespace(ns).Get(ctx, "doomed", metav1.GetOptions{})
				return err
			})).To(BeFalse())
		})
		for what, get := range map[string]func() error{
			"deployment": func() error {
				_, err := admin.AppsV1().Deployments(ns).Get(ctx, "flux", metav1.GetOptions{})
				return err
			},
			"serviceaccount": func() error {
				_, err := admin.CoreV1().ServiceAccounts(ns).Get(ctx, "flux", metav1.GetOptions{})
				return err
			},
			"rolebinding": func() error {
				_, err := admin.RbacV1().RoleBindings(ns).Get(ctx, "flux", metav1.GetOptions{})
				return err
			},
			"secret": func() error {
				_, err := admin.CoreV1().Secrets(ns).Get(ctx, "flux-git-deploy", metav1.GetOptions{})
				return err
			},
		} {
			Expect(apierrors.IsNotFound(get())).To(BeTrue(), "%s should be removed", what)
		}
		Expect(cmValue(Default, ns, "app")).To(Equal("v1"), "deployed workloads stay")
		_, err = admin.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred(), "the namespace stays")
		commit(repo, "after delete", map[string]string{"cm.yaml": cmYAML(ns, "app", "v2")})
		clk.Advance(10 * time.Minute)
		Expect(cmValue(Default, ns, "app")).To(Equal("v1"), "no operator syncs any more")
	})

	It("surfaces credentials that stop working in the compliance message until they are fixed", func(ctx SpecContext) {
		a := onboard(ctx, "creds")
		n := clusterSeq.Load()
		nsSSH, nsHTTPS := fmt.Sprintf("creds-ssh-%d", n), fmt.Sprintf("creds-https-%d", n)
		repoSSH := newRepo("creds-ssh", false, map[string]string{"cm.yaml": cmYAML(nsSSH, "app", "v1")})
		repoHTTPS := newRepo("creds-https", false, map[string]string{"cm.yaml": cmYAML(nsHTTPS, "app", "v1")})
		priv, pub := keyPair()
		fp, err := stack.Git().AddDeployKey(repoSSH, pub, false)
		Expect(err).NotTo(HaveOccurred())
		user := fmt.Sprintf("ci-%d", n)
		Expect(stack.Git().AddUser(user, false)).To(Succeed())
		Expect(stack.Git().Grant(user, repoHTTPS, false)).To(Succeed())
		token, err := stack.Git().AddToken(user, gitserver.TokenOptions{})
		Expect(err).NotTo(HaveOccurred())
		a.put(ctx, "ssh", configSpec{url: sshURL(repoSSH), namespace: nsSSH, instance: "flux", scope: "namespace", params: "--git-branch=main", protected: map[string]string{"sshPrivateKey": priv}})
		a.put(ctx, "https", configSpec{url: httpsURL(repoHTTPS), namespace: nsHTTPS, instance: "flux", scope: "namespace", params: "--git-branch=main", protected: map[string]string{"httpsUser": user, "httpsKey": token}})
		withinVirtual(time.Minute, 5*time.Second, func(g Gomega) {
			g.Expect(cmValue(g, nsSSH, "app")).To(Equal("v1"))
			g.Expect(cmValue(g, nsHTTPS, "app")).To(Equal("v1"))
		})
		Expect(stack.Git().RevokeKey(fp)).To(BeTrue())
		Expect(stack.Git().ExpireToken(token)).To(BeTrue())
		withinVirtual(6*time.Minute, 30*time.Second, func(g Gomega) {
			for _, name := range []string{"ssh", "https"} {
				c := a.compliance(ctx, name)
				g.Expect(c.Level).To(Equal("Error"), name)
				g.Expect(c.OperatorMessage).To(ContainSubstring("git repo not ready: fetch"), name)
			}
		})
		Expect(a.compliance(ctx, "https").OperatorMessage).NotTo(ContainSubstring(token), "the token never shows")
		for _, ev := range a.Agent.Events() {
			Expect(ev.Message).NotTo(Or(ContainSubstring(token), ContainSubstring(strings.Split(priv, "\n")[1])), "secrets in agent events")
		}
		gcObj, err := dyn.Resource(agent.GitConfigGVR).Namespace(nsHTTPS).Get(ctx, "https", metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		raw, _ := json.Marshal(gcObj.Object)
		Expect(string(raw)).NotTo(ContainSubstring(token), "secrets in the GitConfig")

		By("recovering once the key is back")
		_, err = stack.Git().AddDeployKey(repoSSH, pub, false)
		Expect(err).NotTo(HaveOccurred())
		rev := commit(repoSSH, "v2", map[string]string{"cm.yaml": cmYAML(nsSSH, "app", "v2")})
		withinVirtual(time.Minute, 5*time.Second, func(g Gomega) {
			g.Expect(cmValue(g, nsSSH, "app")).To(Equal("v2"))
			c := a.compliance(ctx, "ssh")
			g.Expect(c.Level).To(Equal("Information"))
			g.Expect(c.OperatorMessage).To(ContainSubstring(rev[:7]))
		})
		Expect(a.compliance(ctx, "https").Level).To(Equal("Error"), "the expired token still fails")
	})

	It("fails a configuration whose operatorParams fluxd would refuse, and installs it once fixed", func(ctx SpecContext) {
		a := onboard(ctx, "params")
		ns := fmt.Sprintf("params-%d", clusterSeq.Load())
		repo := newRepo("params", true, map[string]string{"cm.yaml": cmYAML(ns, "app", "v1")})
		a.put(ctx, "bad", configSpec{url: httpsURL(repo), namespace: ns, instance: "flux", scope: "namespace", params: "--git-branch=main --git-poll-intervall=1m"})
		withinVirtual(time.Minute, 5*time.Second, func(g Gomega) {
			c := a.compliance(ctx, "bad")
			g.Expect(c.State).To(Equal("Failed"))
			g.Expect(c.ClusterState).To(Equal("Failed"))
			g.Expect(c.OperatorMessage).To(ContainSubstring("fluxd: unknown flag: --git-poll-intervall"))
		})
		Expect(cmValue(Default, ns, "app")).To(Equal("<absent>"))
		By("retrying every poll, with one InstallFailed event for the same error")
		installFailed := func() int {
			n := 0
			for _, ev := range a.Agent.Events() {
				if ev.Configuration == "bad" && ev.Reason == "InstallFailed" {
					n++
				}
			}
			return n
		}
		until := clk.Now().Add(2 * time.Minute)
		withinVirtual(3*time.Minute, 10*time.Second, func(g Gomega) {
			g.Expect(clk.Now()).NotTo(BeTemporally("<", until))
		})
		Expect(installFailed()).To(Equal(1), "one event per generation and error")
		a.put(ctx, "bad", configSpec{url: httpsURL(repo), namespace: ns, instance: "flux", scope: "namespace", params: "--git-branch=main --git-poll-interval=1m"})
		withinVirtual(time.Minute, 5*time.Second, func(g Gomega) {
			g.Expect(a.compliance(ctx, "bad").State).To(Equal("Installed"))
			g.Expect(cmValue(g, ns, "app")).To(Equal("v1"))
		})
	})

	It("needs --git-branch when the repo has no master branch, as Flux v1 does", func(ctx SpecContext) {
		a := onboard(ctx, "branch")
		ns := fmt.Sprintf("branch-%d", clusterSeq.Load())
		repo := newRepo("branch", true, map[string]string{"cm.yaml": cmYAML(ns, "app", "v1")})
		a.put(ctx, "branch", configSpec{url: httpsURL(repo), namespace: ns, instance: "flux", scope: "namespace"})
		withinVirtual(time.Minute, 5*time.Second, func(g Gomega) {
			g.Expect(a.compliance(ctx, "branch").OperatorMessage).To(ContainSubstring("configured branch 'master' does not exist"))
		})
	})

	It("checks the git host key, and sshKnownHostsContents replaces the trust it ships with", func(ctx SpecContext) {
		a := onboard(ctx, "hostkey")
		ns := fmt.Sprintf("hostkey-%d", clusterSeq.Load())
		repo := newRepo("hostkey", false, map[string]string{"cm.yaml": cmYAML(ns, "app", "v1")})
		priv, pub := keyPair()
		_, err := stack.Git().AddDeployKey(repo, pub, false)
		Expect(err).NotTo(HaveOccurred())
		// A known_hosts line for the git server's address with some other key.
		addr := strings.TrimPrefix(stack.Git().SSHURL(), "ssh://git@")
		_, otherPub := keyPair()
		host, port, _ := strings.Cut(addr, ":")
		wrong := fmt.Sprintf("[%s]:%s %s\n", host, port, otherPub)
		spec := configSpec{url: sshURL(repo), namespace: ns, instance: "flux", scope: "namespace", params: "--git-branch=main", knownHosts: wrong, protected: map[string]string{"sshPrivateKey": priv}}
		a.put(ctx, "hostkey", spec)
		withinVirtual(time.Minute, 5*time.Second, func(g Gomega) {
			g.Expect(a.compliance(ctx, "hostkey").OperatorMessage).To(ContainSubstring("knownhosts: key mismatch"))
		})
		Expect(cmValue(Default, ns, "app")).To(Equal("<absent>"))
		spec.knownHosts = stack.Git().KnownHosts()
		a.put(ctx, "hostkey", spec)
		withinVirtual(time.Minute, 5*time.Second, func(g Gomega) {
			g.Expect(cmValue(g, ns, "app")).To(Equal("v1"))
		})
	})
})
