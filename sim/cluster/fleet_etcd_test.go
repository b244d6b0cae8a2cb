package cluster_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	envtest "sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/gitopsim/gitopsim/sim/cluster"
)

// TestFleetExternalEtcd stands a second etcd process in for an etcd
// cluster the fleet did not start, as when API servers run on several
// machines: a member's data lives under the fleet's prefix there, a
// fleet in another workdir (another machine) with Keep finds it, a fleet
// without Keep starts the member empty and removes its keys on Stop, and
// keys outside the prefix and the etcd itself are left alone.
func TestFleetExternalEtcd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and three kube-apiservers")
	}
	assets, err := cluster.FindAssets("")
	if err != nil {
		t.Skip(err)
	}
	ext := &envtest.Etcd{Path: assets.Etcd(), DataDir: t.TempDir(), StartTimeout: time.Minute, StopTimeout: time.Minute}
	if err := ext.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ext.Stop() })
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	gw := etcdGateway{t: t, u: ext.URL}
	gw.put("/other/owner", "someone else")

	// run starts a fleet on the external etcd in a fresh workdir, adds
	// edge-1, runs fn with its client and stops the fleet.
	run := func(keep bool, fn func(*kubernetes.Clientset)) {
		t.Helper()
		workdir := t.TempDir()
		f, c := startEdge1(ctx, t, cluster.FleetOptions{Workdir: workdir, Logger: testLogger(t), EtcdURL: ext.URL.String(), EtcdPrefix: "/fleets/a", Keep: keep})
		fn(c)
		if err := f.Stop(context.Background()); err != nil {
			t.Errorf("stop: %v", err)
		}
		if left, _ := cluster.Leftovers(workdir); len(left) > 0 {
			t.Errorf("processes left behind: %v", left)
		}
	}
	run(true, func(c *kubernetes.Clientset) {
		if _, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kept"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	})
	if n := gw.count("/fleets/a/edge-1/namespaces/kept"); n != 1 {
		t.Errorf("the member's namespace is not under the fleet's prefix in the external etcd (%d keys)", n)
	}
	run(true, func(c *kubernetes.Clientset) {
		if _, err := c.CoreV1().Namespaces().Get(ctx, "kept", metav1.GetOptions{}); err != nil {
			t.Errorf("a member restarted elsewhere with Keep lost its namespace: %v", err)
		}
	})
	run(false, func(c *kubernetes.Clientset) {
		if _, err := c.CoreV1().Namespaces().Get(ctx, "kept", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("a member started without Keep found old data: %v", err)
		}
	})
	if n := gw.count("/fleets/a/"); n != 0 {
		t.Errorf("%d keys of the fleet left in the external etcd after a Stop without Keep", n)
	}
	if n := gw.count("/other/owner"); n != 1 {
		t.Error("the fleet removed a key outside its prefix")
	}
}

// TestFleetKeep restarts a fleet on its own etcd with Keep: the etcd
// comes back on its data directory and a member finds its objects.
func TestFleetKeep(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two kube-apiservers")
	}
	workdir := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	for i, want := range []bool{false, true} {
		f, c := startEdge1(ctx, t, cluster.FleetOptions{Workdir: workdir, Logger: testLogger(t), Keep: true})
		ns := c.CoreV1().Namespaces()
		_, err := ns.Get(ctx, "kept", metav1.GetOptions{})
		if got := err == nil; got != want {
			t.Errorf("start %d: namespace there %v, want %v (%v)", i+1, got, want, err)
		}
		if !want {
			if _, err := ns.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kept"}}, metav1.CreateOptions{}); err != nil {
				t.Error(err)
			}
		}
		if err := f.Stop(context.Background()); err != nil {
			t.Errorf("stop: %v", err)
		}
	}
	if left, _ := cluster.Leftovers(workdir); len(left) > 0 {
		t.Errorf("processes left behind: %v", left)
	}
}

// startEdge1 starts a fleet with opts and its member edge-1, and returns
// the fleet and the member's admin client.
func startEdge1(ctx context.Context, t *testing.T, opts cluster.FleetOptions) (*cluster.Fleet, *kubernetes.Clientset) {
	t.Helper()
	f, err := cluster.NewFleet(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Start(ctx); err != nil {
		t.Fatal(err)
	}
	m, err := f.Add(ctx, "edge-1")
	if err != nil {
		_ = f.Stop(context.Background())
		t.Fatal(err)
	}
	return f, kubernetes.NewForConfigOrDie(m.AdminConfig())
}

// etcdGateway reads and writes an etcd through its JSON gateway, for the
// tests' own look at the keys.
type etcdGateway struct {
	t *testing.T
	u *url.URL
}

func (g etcdGateway) call(path string, in map[string]any, out any) {
	g.t.Helper()
	b, _ := json.Marshal(in)
	resp, err := http.Post(g.u.JoinPath(path).String(), "application/json", bytes.NewReader(b))
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		g.t.Fatalf("etcd %s: %s", path, resp.Status)
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			g.t.Fatal(err)
		}
	}
}

func (g etcdGateway) put(key, value string) {
	g.call("v3/kv/put", map[string]any{"key": b64(key), "value": b64(value)}, nil)
}

// count is how many keys key names: itself, or with a trailing / every
// key under it.
func (g etcdGateway) count(key string) int {
	req := map[string]any{"key": b64(key), "count_only": true}
	if key[len(key)-1] == '/' {
		req["range_end"] = b64(key[:len(key)-1] + "0")
	}
	var out struct {
		Count string `json:"count"`
	}
	g.call("v3/kv/range", req, &out)
	if out.Count == "" {
		return 0
	}
	n, err := strconv.Atoi(out.Count)
	if err != nil {
		g.t.Fatal(fmt.Errorf("count %q: %w", out.Count, err))
	}
	return n
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
