package e2e_test

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/gitopsim/gitopsim/sim"
)

func newNamespace(ctx SpecContext, prefix string) string {
	ns, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}, metav1.CreateOptions{})
	Expect(err).NotTo(HaveOccurred())
	return ns.Name
}

func configMap(name string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{"owner": "tenant"}}
}

var _ = Describe("the cluster", Label("envtest"), func() {
	It("confines a tenant identity to the namespace its RoleBinding covers", func(ctx SpecContext) {
		nsA, nsB := newNamespace(ctx, "ns-a"), newNamespace(ctx, "ns-b")
		user := fmt.Sprintf("tenant-%d", GinkgoRandomSeed()+int64(GinkgoParallelProcess()))
		u, err := stack.Cluster().NewUser(ctx, user, []string{"tenants"})
		Expect(err).NotTo(HaveOccurred())
		tenant := kubernetes.NewForConfigOrDie(u.Config)

		By("binding the built-in edit role in ns-a only")
		_, err = admin.RbacV1().RoleBindings(nsA).Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "tenant-edit"},
			// "edit" is an aggregated ClusterRole: it has rules only because
			// the controller-manager's aggregation controller runs.
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "edit"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}},
		}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())

		By("creating a ConfigMap in ns-a as the tenant")
		Eventually(func(g Gomega) {
			_, err := tenant.CoreV1().ConfigMaps(nsA).Create(ctx, configMap("mine"), metav1.CreateOptions{})
			g.Expect(err).NotTo(HaveOccurred())
		}).WithContext(ctx).WithTimeout(10 * time.Second).Should(Succeed())

		By("being refused in ns-b")
		_, err = tenant.CoreV1().ConfigMaps(nsB).Create(ctx, configMap("theirs"), metav1.CreateOptions{})
		Expect(apierrors.IsForbidden(err)).To(BeTrue(), "want 403, got %v", err)
		Expect(err.Error()).To(ContainSubstring(`User "` + user + `" cannot create resource "configmaps"`))
		Expect(err.Error()).To(ContainSubstring(`in the namespace "` + nsB + `"`))
	})

	It("finishes deleting a namespace and what is in it", func(ctx SpecContext) {
		ns := newNamespace(ctx, "doomed")
		_, err := admin.CoreV1().ConfigMaps(ns).Create(ctx, configMap("inside"), metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(admin.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})).To(Succeed())
		Eventually(func() bool {
			_, err := admin.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
			return apierrors.IsNotFound(err)
		}).WithContext(ctx).WithTimeout(time.Minute).WithPolling(100 * time.Millisecond).Should(BeTrue())

		By("re-creating it empty")
		_, err = admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		cms, err := admin.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
		Expect(err).NotTo(HaveOccurred())
		for _, cm := range cms.Items {
			Expect(cm.Name).NotTo(Equal("inside"), "a deleted namespace's objects came back")
		}
	}, SpecTimeout(2*time.Minute))

	It("publishes a kubeconfig in endpoints.json that real clients use", func(ctx SpecContext) {
		e, err := sim.ReadEndpoints(stack.EndpointsPath())
		Expect(err).NotTo(HaveOccurred())
		Expect(e.Cluster.Backend).To(Equal(stack.Cluster().Name()))
		cfg, err := clientcmd.BuildConfigFromFlags("", e.Cluster.Kubeconfig)
		Expect(err).NotTo(HaveOccurred())
		v, err := kubernetes.NewForConfigOrDie(cfg).Discovery().ServerVersion()
		Expect(err).NotTo(HaveOccurred())
		Expect(v.GitVersion).To(HavePrefix("v1."))
	})

	It("refuses a second simulator on the same workdir", func(ctx SpecContext) {
		other, err := sim.New(sim.Options{Workdir: stack.Workdir()})
		Expect(err).NotTo(HaveOccurred())
		err = other.Start(ctx)
		Expect(err).To(MatchError(sim.ErrWorkdirInUse))
		By("leaving the running one untouched")
		_, err = admin.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(stack.EndpointsPath()).To(BeAnExistingFile())
	})
})
