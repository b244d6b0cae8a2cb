package cluster_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/gitopsim/gitopsim/sim/cluster"
)

// TestFleet runs three members on one etcd: each has its own namespaces
// and cluster-scoped objects, users its RBAC confines, and a
// controller-manager that finishes namespace deletion; Stop leaves no
// process behind.
func TestFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three kube-apiservers")
	}
	workdir := t.TempDir()
	f, err := cluster.NewFleet(cluster.FleetOptions{Workdir: workdir, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	if err := f.Start(ctx); err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = f.Stop(context.Background())
		}
	})
	names := []string{"edge-1", "edge-2", "edge-3"}
	members := make([]cluster.Backend, len(names))
	var wg sync.WaitGroup
	errs := make([]error, len(names))
	for i, n := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			members[i], errs[i] = f.Add(ctx, n)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("add %s: %v", names[i], err)
		}
	}
	if _, err := f.Add(ctx, "edge-1"); err == nil {
		t.Error("a second member named edge-1")
	}
	if _, err := f.Add(ctx, "Edge_1"); err == nil {
		t.Error("a member name Kubernetes would refuse")
	}
	// Each member's processes: an API server and a controller-manager
	// with the fleet's controllers, both under the fleet's memory limit.
	procs, err := cluster.Leftovers(workdir)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, p := range procs {
		env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", p.PID))
		if err != nil {
			continue // gone meanwhile
		}
		raw, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p.PID))
		cmdline := strings.ReplaceAll(string(raw), "\x00", " ")
		switch {
		case strings.Contains(p.Command, "kube-controller-manager"):
			counts["kcm"]++
			if strings.Contains(cmdline, "--controllers=*") || !strings.Contains(cmdline, "--controllers=namespace,garbagecollector") {
				t.Errorf("controller-manager without the fleet's controllers: %s", cmdline)
			}
		case strings.Contains(p.Command, "kube-apiserver"):
			counts["apiserver"]++
			if !strings.Contains(cmdline, "--etcd-prefix=/fleet/") || !strings.Contains(cmdline, "--watch-cache=false") {
				t.Errorf("API server not on its prefix or not trimmed: %s", cmdline)
			}
		default:
			continue
		}
		if !strings.Contains(string(env), "GOGC=30") {
			t.Errorf("pid %d runs without the fleet's GOGC: %s", p.PID, p.Command)
		}
	}
	if counts["kcm"] != 3 || counts["apiserver"] != 3 {
		t.Errorf("processes %v, want 3 API servers and 3 controller-managers", counts)
	}

	admin := func(i int) *kubernetes.Clientset {
		return kubernetes.NewForConfigOrDie(members[i].AdminConfig())
	}
	if members[0].AdminConfig().Host == members[1].AdminConfig().Host {
		t.Fatal("two members share an API server")
	}

	// Namespaces and cluster-scoped objects are each member's own.
	if _, err := admin(0).CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "only-on-edge-1"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < 3; i++ {
		if _, err := admin(i).CoreV1().Namespaces().Get(ctx, "only-on-edge-1", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("%s sees edge-1's namespace: %v", names[i], err)
		}
	}

	// A member serves what GitOps repos apply (NetworkPolicies, Jobs,
	// autoscalers, disruption budgets) and not the groups left out to
	// save memory.
	groups, err := admin(2).Discovery().ServerGroups()
	if err != nil {
		t.Fatal(err)
	}
	served := map[string]bool{}
	for _, g := range groups.Groups {
		for _, v := range g.Versions {
			served[v.GroupVersion] = true
		}
	}
	for _, gv := range []string{"v1", "apps/v1", "batch/v1", "autoscaling/v2", "policy/v1", "networking.k8s.io/v1", "apiextensions.k8s.io/v1", "rbac.authorization.k8s.io/v1"} {
		if !served[gv] {
			t.Errorf("a member does not serve %s", gv)
		}
	}
	for _, gv := range []string{"storage.k8s.io/v1", "flowcontrol.apiserver.k8s.io/v1", "node.k8s.io/v1", "scheduling.k8s.io/v1"} {
		if served[gv] {
			t.Errorf("a member serves %s, left out to save memory", gv)
		}
	}

	// A user has only what RBAC gives it, on its own member.
	u, err := members[1].NewUser(ctx, "auditor", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kubernetes.NewForConfigOrDie(u.Config).CoreV1().Namespaces().List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("a user without roles lists namespaces: %v", err)
	}

	// The member's controller-manager finishes a namespace deletion.
	if err := admin(0).CoreV1().Namespaces().Delete(ctx, "only-on-edge-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); ; {
		_, err := admin(0).CoreV1().Namespaces().Get(ctx, "only-on-edge-1", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("namespace still there a minute after its deletion: %v", err)
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}

	stopped = true
	if err := f.Stop(context.Background()); err != nil {
		t.Errorf("stop: %v", err)
	}
	if left, _ := cluster.Leftovers(workdir); len(left) > 0 {
		t.Errorf("processes left behind: %v", fmt.Sprint(left))
	}
}
