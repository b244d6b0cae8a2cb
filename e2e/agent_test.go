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
	"k8s.io/client-go/dynamic"

	"github.com/gitopsim/gitopsim/sim"
	"github.com/gitopsim/gitopsim/sim/agent"
	"github.com/gitopsim/gitopsim/sim/arm/armtest"
	"github.com/gitopsim/gitopsim/sim/azsdk"
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
	c, err := stack.Onboard(ctx, sim.OnboardOptions{Name: fmt.Sprintf("%s-%d", prefix, clusterSeq.Add(1)), ResourceGroup: "e2e-agent"})
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
	protected                               map[string]string
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
		var msg string
		g := NewGomega(func(m string, _ ...int) { msg = m; panic(stopCheck{}) })
		func() {
			defer func() {
				if r := recover(); r != nil {
					if _, ok := r.(stopCheck); !ok {
						panic(r)
					}
				}
			}()
			check(g)
		}()
		if msg == "" {
			return
		}
		if !clk.Now().Before(deadline) {
			Fail(fmt.Sprintf("not within %v of virtual time: %s", d, msg))
		}
		clk.Advance(step)
	}
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
func cmValue(g Gomega, ns, name string) string {
	cm, err := admin.CoreV1().ConfigMaps(ns).Get(context.Background(), name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "<absent>"
	}
	g.Expect(err).NotTo(HaveOccurred())
	return cm.Data["value"]
}

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
		Expect(dep.ManagedFields).To(ContainElement(HaveField("Manager", "flux")), "server-side apply as field manager flux")

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
})
