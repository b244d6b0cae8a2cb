package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/gitopsim/gitopsim/sim/cluster"
)

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// startEnvtest starts an envtest backend in a fresh workdir and stops it at
// the end of the test. Missing binaries fail the test: `make test` builds
// them first, and a skip would hide a broken build.
func startEnvtest(t *testing.T, opts cluster.Options) (cluster.Backend, string) {
	t.Helper()
	if opts.Workdir == "" {
		opts.Workdir = t.TempDir()
	}
	opts.Logger = testLogger(t)
	b, err := cluster.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Available(); err != nil {
		t.Fatalf("envtest backend unavailable (run `make tools`): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := b.Start(ctx); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Stop(context.Background()); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return b, opts.Workdir
}

func TestEnvtestBackend(t *testing.T) {
	b, workdir := startEnvtest(t, cluster.Options{})
	ctx := t.Context()
	admin := kubernetes.NewForConfigOrDie(b.AdminConfig())

	t.Run("admin kubeconfig file works", func(t *testing.T) {
		if want := filepath.Join(workdir, "kubeconfig"); b.Kubeconfig() != want {
			t.Errorf("Kubeconfig() = %q, want %q", b.Kubeconfig(), want)
		}
		cfg, err := clientcmd.BuildConfigFromFlags("", b.Kubeconfig())
		if err != nil {
			t.Fatal(err)
		}
		nss, err := kubernetes.NewForConfigOrDie(cfg).CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !hasNamespace(nss.Items, "kube-system") {
			t.Errorf("kube-system missing from %d namespaces", len(nss.Items))
		}
	})

	t.Run("NewUser is confined by RBAC", func(t *testing.T) {
		exerciseRBAC(t, b)
	})

	t.Run("namespace deletion completes", func(t *testing.T) {
		ns := createNamespace(t, admin, "doomed")
		if _, err := admin.CoreV1().ConfigMaps(ns).Create(ctx, configMap("cm", nil), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := admin.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		// The namespace controller waits a hard-coded 5s before it empties a
		// namespace; without a controller-manager it never goes.
		eventually(t, 60*time.Second, "namespace "+ns+" to disappear", func() (bool, error) {
			_, err := admin.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
			return apierrors.IsNotFound(err), ignoreNotFound(err)
		})
	})

	t.Run("owner references are garbage-collected", func(t *testing.T) {
		ns := createNamespace(t, admin, "gc")
		parent, err := admin.CoreV1().ConfigMaps(ns).Create(ctx, configMap("parent", nil), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		owner := []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: parent.Name, UID: parent.UID}}
		if _, err := admin.CoreV1().ConfigMaps(ns).Create(ctx, configMap("child", owner), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := admin.CoreV1().ConfigMaps(ns).Delete(ctx, "parent", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, 60*time.Second, "the child ConfigMap to be collected", func() (bool, error) {
			_, err := admin.CoreV1().ConfigMaps(ns).Get(ctx, "child", metav1.GetOptions{})
			return apierrors.IsNotFound(err), ignoreNotFound(err)
		})
	})

	t.Run("kubeconfig backend on the same cluster", func(t *testing.T) {
		kb, err := cluster.New(cluster.Options{Backend: cluster.KubeconfigKind, Kubeconfig: b.Kubeconfig(), Workdir: t.TempDir(), Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		if err := kb.Available(); err != nil {
			t.Fatal(err)
		}
		if err := kb.Start(ctx); err != nil {
			t.Fatal(err)
		}
		defer kb.Stop(ctx)
		// NewUser goes through a real CertificateSigningRequest here, signed
		// by the controller-manager.
		exerciseRBAC(t, kb)
	})

	t.Run("the API server restarts with its objects, address and certificates", func(t *testing.T) {
		r, ok := b.(cluster.APIServerRestarter)
		if !ok {
			t.Fatal("the envtest backend is not an APIServerRestarter")
		}
		if _, err := admin.CoreV1().ConfigMaps("default").Create(ctx, configMap("before-restart", nil), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := r.StartAPIServer(ctx); err == nil {
			t.Error("StartAPIServer while it runs succeeded")
		}
		if err := r.StopAPIServer(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := admin.CoreV1().ConfigMaps("default").Get(ctx, "before-restart", metav1.GetOptions{}); err == nil {
			t.Fatal("the API answered while stopped")
		}
		if err := r.StartAPIServer(ctx); err != nil {
			t.Fatal(err)
		}
		// The client made before the restart still trusts and reaches it.
		cm, err := admin.CoreV1().ConfigMaps("default").Get(ctx, "before-restart", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("after the restart: %v", err)
		}
		if cm.Data["k"] != "v" {
			t.Errorf("data after the restart = %v", cm.Data)
		}
	})

	t.Run("stop leaves no process behind", func(t *testing.T) {
		if err := b.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		assertNoProcesses(t, workdir)
		if _, err := os.Stat(filepath.Join(workdir, "kubeconfig")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("kubeconfig of a stopped cluster still there: %v", err)
		}
		if err := b.Stop(ctx); err != nil {
			t.Errorf("second Stop: %v", err)
		}
	})
}

// exerciseRBAC checks that a user from NewUser can create a ConfigMap where
// a RoleBinding allows it and gets 403 elsewhere.
func exerciseRBAC(t *testing.T, b cluster.Backend) {
	t.Helper()
	ctx := t.Context()
	admin := kubernetes.NewForConfigOrDie(b.AdminConfig())
	nsA := createNamespace(t, admin, "ns-a")
	nsB := createNamespace(t, admin, "ns-b")
	user := fmt.Sprintf("alice-%d", time.Now().UnixNano())
	u, err := b.NewUser(ctx, user, []string{"team-a"})
	if err != nil {
		t.Fatal(err)
	}
	as := kubernetes.NewForConfigOrDie(u.Config)

	// Nothing is allowed before the binding.
	_, err = as.CoreV1().ConfigMaps(nsA).Create(ctx, configMap("before", nil), metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("create before any RoleBinding: err = %v, want 403", err)
	}
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "configmaps", Namespace: nsA},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list", "create"}}},
	}
	if _, err := admin.RbacV1().Roles(nsA).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "configmaps", Namespace: nsA},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "configmaps"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}},
	}
	if _, err := admin.RbacV1().RoleBindings(nsA).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the RoleBinding to take effect", func() (bool, error) {
		_, err := as.CoreV1().ConfigMaps(nsA).Create(ctx, configMap("allowed", nil), metav1.CreateOptions{})
		if apierrors.IsForbidden(err) {
			return false, nil
		}
		return err == nil, err
	})
	_, err = as.CoreV1().ConfigMaps(nsB).Create(ctx, configMap("denied", nil), metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("create in %s: err = %v, want 403", nsB, err)
	}
	if !strings.Contains(err.Error(), `User "`+user+`"`) {
		t.Errorf("403 does not name the user: %v", err)
	}

	// The kubeconfig carries the same identity.
	cfg, err := clientcmd.RESTConfigFromKubeConfig(u.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kubernetes.NewForConfigOrDie(cfg).CoreV1().ConfigMaps(nsB).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("list in %s with the user's kubeconfig: err = %v, want 403", nsB, err)
	}
}

func TestEnvtestStartFailureCleansUp(t *testing.T) {
	workdir := t.TempDir()
	b, err := cluster.New(cluster.Options{
		Workdir: workdir,
		Logger:  testLogger(t),
		// The controller-manager refuses this and exits after etcd and the
		// API server are already running.
		ControllerManagerArgs: []string{"--no-such-flag"},
	})
	if err != nil {
		t.Fatal(err)
	}
	err = b.Start(t.Context())
	if err == nil {
		b.Stop(context.Background())
		t.Fatal("Start succeeded with a broken controller-manager flag")
	}
	if !strings.Contains(err.Error(), "kube-controller-manager exited") || !strings.Contains(err.Error(), "no-such-flag") {
		t.Errorf("error does not explain the failure: %v", err)
	}
	assertNoProcesses(t, workdir)
	if err := b.Stop(context.Background()); err != nil {
		t.Errorf("Stop after a failed Start: %v", err)
	}
}

func TestEnvtestPortInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	workdir := t.TempDir()
	b, err := cluster.New(cluster.Options{Workdir: workdir, APIServerPort: port, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	err = b.Start(t.Context())
	if !errors.Is(err, cluster.ErrPortInUse) {
		t.Fatalf("Start on a taken port: err = %v, want ErrPortInUse", err)
	}
	if want := "127.0.0.1:" + strconv.Itoa(port); !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not name %s", err, want)
	}
	assertNoProcesses(t, workdir)
}

func TestEnvtestMissingAssets(t *testing.T) {
	empty := t.TempDir()
	b, err := cluster.New(cluster.Options{Workdir: t.TempDir(), AssetsDir: empty})
	if err != nil {
		t.Fatal(err)
	}
	err = b.Available()
	if !errors.Is(err, cluster.ErrAssetsNotFound) {
		t.Fatalf("Available = %v, want ErrAssetsNotFound", err)
	}
	for _, want := range []string{"make tools", empty, "kube-apiserver"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q: %v", want, err)
		}
	}
	if err := b.Start(t.Context()); !errors.Is(err, cluster.ErrAssetsNotFound) {
		t.Errorf("Start = %v, want ErrAssetsNotFound", err)
	}
}

// TestKindBackend runs the RBAC checks on a kind cluster it creates from the
// node image make kind-image builds, or from kind's own where that image is
// missing and kind's can be had; it skips, saying why, otherwise.
func TestKindBackend(t *testing.T) {
	image := ""
	if cluster.LocalKindImagePresent(t.Context()) {
		image = cluster.LocalKindImage
	}
	b, err := cluster.New(cluster.Options{Backend: cluster.Kind, Workdir: t.TempDir(), KindClusterName: "gitopsim-test", KindNodeImage: image, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Available(); err != nil {
		if !strings.Contains(err.Error(), "Docker") || strings.Contains(err.Error(), "\n") {
			t.Errorf("reason is not one clear line about Docker: %q", err)
		}
		t.Skip(err.Error())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := b.Start(ctx); err != nil {
		if image == "" && strings.Contains(err.Error(), "could not be pulled") {
			t.Skip("no kind node image here (make kind-image builds one): ", err)
		}
		t.Fatal(err)
	}
	defer b.Stop(context.Background())
	exerciseRBAC(t, b)
}

func TestUnknownBackend(t *testing.T) {
	_, err := cluster.New(cluster.Options{Backend: "minikube", Workdir: t.TempDir()})
	if !errors.Is(err, cluster.ErrUnknownBackend) {
		t.Fatalf("err = %v, want ErrUnknownBackend", err)
	}
	if !strings.Contains(err.Error(), "envtest, kind, kubeconfig") {
		t.Errorf("error does not list the valid backends: %v", err)
	}
}

func TestKubeconfigBackendBadFile(t *testing.T) {
	if _, err := cluster.New(cluster.Options{Backend: cluster.KubeconfigKind, Workdir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "--kubeconfig") {
		t.Errorf("no kubeconfig: err = %v, want a hint at --kubeconfig", err)
	}
	missing := filepath.Join(t.TempDir(), "nope")
	b, err := cluster.New(cluster.Options{Backend: cluster.KubeconfigKind, Kubeconfig: missing, Workdir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Available(); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("Available = %v, want an error naming %s", err, missing)
	}
}

func createNamespace(t *testing.T, cs kubernetes.Interface, prefix string) string {
	t.Helper()
	ns, err := cs.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

func configMap(name string, owners []metav1.OwnerReference) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, OwnerReferences: owners}, Data: map[string]string{"k": "v"}}
}

func hasNamespace(items []corev1.Namespace, name string) bool {
	for _, ns := range items {
		if ns.Name == name {
			return true
		}
	}
	return false
}

func ignoreNotFound(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, err := cond()
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

// assertNoProcesses fails if any control-plane process of workdir is alive
// or if this test process still has live children.
func assertNoProcesses(t *testing.T, workdir string) {
	t.Helper()
	left, err := cluster.Leftovers(workdir)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Errorf("processes left behind: %v", left)
	}
	if kids := liveChildren(os.Getpid()); len(kids) > 0 {
		t.Errorf("live child processes after stop: %v", kids)
	}
}

// liveChildren lists non-zombie processes whose parent is pid.
func liveChildren(pid int) []string {
	entries, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(stat)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(s[i+1:])
		if len(fields) < 2 || fields[0] == "Z" || fields[1] != strconv.Itoa(pid) {
			continue
		}
		out = append(out, e.Name()+" "+s[strings.IndexByte(s, '(')+1:i])
	}
	return out
}
