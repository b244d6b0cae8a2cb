package scenario

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/gitopsim/gitopsim/sim/agent"
	"github.com/gitopsim/gitopsim/sim/clock"
	"github.com/gitopsim/gitopsim/sim/cluster"
)

// resetTimeout bounds the wait for a scenario's namespaces and objects to
// be gone before the control plane serves the next scenario.
const resetTimeout = 2 * time.Minute

// pool hands out Kubernetes control planes, one scenario at a time each.
// Starting kube-apiserver and etcd costs seconds; deleting what a
// scenario created costs much less, so planes are reset and reused.
type pool struct {
	opts cluster.Options
	dir  string
	log  *slog.Logger

	mu   sync.Mutex
	free []*plane
	all  []*plane
	n    int
}

// plane is one control plane and what existed on it before any scenario.
type plane struct {
	backend  cluster.Backend
	baseline map[objKey]bool
	// dirty means a scenario ran on it since the last reset. Planes are
	// reset when next acquired, not when released, so that the last
	// scenario of a run does not pay for a reset nobody needs.
	dirty bool
}

// kind is one resource type from discovery.
type kind struct {
	gvr        schema.GroupVersionResource
	namespaced bool
	verbs      []string
}

func (k kind) can(verb string) bool { return slices.Contains(k.verbs, verb) }

// kinds asks discovery once for every preferred resource type; the
// inventory and the namespace emptying both work from its answer.
func kinds(b cluster.Backend) ([]kind, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(b.AdminConfig())
	if err != nil {
		return nil, err
	}
	lists, err := dc.ServerPreferredResources()
	if err != nil && len(lists) == 0 {
		return nil, err
	}
	var out []kind
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			continue
		}
		for _, res := range l.APIResources {
			out = append(out, kind{gvr: gv.WithResource(res.Name), namespaced: res.Namespaced, verbs: res.Verbs})
		}
	}
	return out, nil
}

// emptyNamespaces does what the namespace controller does, without its
// back-off: with each namespace already Terminating (so nothing new can
// be created in it), delete every object at once, check nothing is left,
// and drop the namespace's finalizer. Left to kube-controller-manager the
// same takes about five seconds per scenario. If anything is left (an
// object with its own finalizer), the controller finishes the job.
func emptyNamespaces(ctx context.Context, b cluster.Backend, dyn dynamic.Interface, all []kind, names []string) error {
	var nsKinds []schema.GroupVersionResource
	for _, k := range all {
		if k.namespaced && k.can("deletecollection") && k.can("list") {
			nsKinds = append(nsKinds, k.gvr)
		}
	}
	cs, err := kubernetes.NewForConfig(b.AdminConfig())
	if err != nil {
		return err
	}
	zero := int64(0)
	bg := metav1.DeletePropagationBackground
	var wg sync.WaitGroup
	for _, ns := range names {
		for _, gvr := range nsKinds {
			wg.Go(func() {
				_ = dyn.Resource(gvr).Namespace(ns).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &zero, PropagationPolicy: &bg}, metav1.ListOptions{})
			})
		}
	}
	wg.Wait()
	for _, ns := range names {
		left := false
		for _, gvr := range nsKinds {
			l, err := dyn.Resource(gvr).Namespace(ns).List(ctx, metav1.ListOptions{Limit: 1})
			if err == nil && len(l.Items) > 0 {
				left = true
				break
			}
		}
		if left {
			continue
		}
		n, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if err != nil {
			continue
		}
		n.Spec.Finalizers = nil
		_, _ = cs.CoreV1().Namespaces().Finalize(ctx, n, metav1.UpdateOptions{})
	}
	return nil
}

type objKey struct {
	gvr             schema.GroupVersionResource
	namespace, name string
}

func (p *pool) acquire(ctx context.Context) (*plane, error) {
	for {
		p.mu.Lock()
		n := len(p.free)
		if n == 0 {
			p.mu.Unlock()
			break
		}
		pl := p.free[n-1]
		p.free = p.free[:n-1]
		p.mu.Unlock()
		if !pl.dirty {
			return pl, nil
		}
		t := clock.Real().Now()
		err := pl.reset(ctx)
		p.log.Debug("control plane reset", "took", clock.Real().Since(t), "err", err)
		if err == nil {
			pl.dirty = false
			return pl, nil
		}
		if ctx.Err() != nil {
			p.mu.Lock()
			p.free = append(p.free, pl)
			p.mu.Unlock()
			return nil, err
		}
		p.log.Warn("control plane reset failed; it is replaced", "err", err)
		p.drop(ctx, pl)
	}
	p.mu.Lock()
	p.n++
	o := p.opts
	o.Workdir = filepath.Join(p.dir, fmt.Sprintf("cp-%d", p.n))
	if o.Backend == cluster.Kind {
		// One kind cluster per plane: KindClusterName is their prefix.
		o.KindClusterName = fmt.Sprintf("%s-%d", cmp.Or(o.KindClusterName, "gitopsim-run"), p.n)
	}
	p.mu.Unlock()
	b, err := cluster.New(o)
	if err != nil {
		return nil, err
	}
	if err := b.Start(ctx); err != nil {
		return nil, fmt.Errorf("start control plane: %w", err)
	}
	pl := &plane{backend: b}
	if _, _, pl.baseline, err = snapshot(ctx, b); err != nil {
		_ = b.Stop(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("control plane inventory: %w", err)
	}
	p.mu.Lock()
	p.all = append(p.all, pl)
	p.mu.Unlock()
	return pl, nil
}

// release returns a plane to the pool, to be reset by the next acquire.
func (p *pool) release(pl *plane) {
	p.mu.Lock()
	pl.dirty = true
	p.free = append(p.free, pl)
	p.mu.Unlock()
}

// drop stops a plane that cannot be reset; the next acquire starts a new
// one.
func (p *pool) drop(ctx context.Context, pl *plane) {
	p.mu.Lock()
	p.all = slices.DeleteFunc(p.all, func(x *plane) bool { return x == pl })
	p.mu.Unlock()
	if err := pl.backend.Stop(ctx); err != nil {
		p.log.Warn("stop control plane", "err", err)
	}
}

// close stops every plane. A started control plane goes away with what
// is in it; a cluster that is only borrowed (kubeconfig, or a kind cluster that
// existed before) is reset first, so that no scenario leaves its namespaces behind.
func (p *pool) close(ctx context.Context) error {
	p.mu.Lock()
	all := p.all
	p.all, p.free = nil, nil
	p.mu.Unlock()
	var errs []error
	for _, pl := range all {
		if pl.dirty && borrowed(pl.backend) {
			errs = append(errs, pl.reset(ctx))
		}
		errs = append(errs, pl.backend.Stop(ctx))
	}
	return errors.Join(errs...)
}

// borrowed says whether a plane's cluster outlives the run: a kubeconfig
// cluster, or a kind cluster that existed before (one the run created is
// deleted, so resetting it first would only cost time).
func borrowed(b cluster.Backend) bool {
	if c, ok := b.(interface{ Created() bool }); ok {
		return !c.Created()
	}
	return b.Name() == cluster.KubeconfigKind
}

// systemNamespaces are the control plane's own; objects in them are never
// touched by a reset (the control plane keeps creating some).
var systemNamespaces = []string{"kube-system", "kube-public", "kube-node-lease"}

// skipResources are never inventoried: noise the control plane writes all
// the time.
// API services are registered by the API server itself for CRD groups.
var skipResources = []string{"events", "leases", "apiservices"}

// inventory lists every deletable object of every listable kind.
func inventory(ctx context.Context, dyn dynamic.Interface, all []kind) map[objKey]bool {
	out := map[objKey]bool{}
	for _, k := range all {
		if !k.can("list") || !k.can("delete") || slices.Contains(skipResources, k.gvr.Resource) {
			continue
		}
		items, err := dyn.Resource(k.gvr).List(ctx, metav1.ListOptions{})
		if err != nil {
			continue // a kind going away while we list is fine
		}
		for _, it := range items.Items {
			if slices.Contains(systemNamespaces, it.GetNamespace()) {
				continue
			}
			out[objKey{k.gvr, it.GetNamespace(), it.GetName()}] = true
		}
	}
	return out
}

// snapshot discovers the plane's kinds once and inventories it.
func snapshot(ctx context.Context, b cluster.Backend) ([]kind, dynamic.Interface, map[objKey]bool, error) {
	ks, err := kinds(b)
	if err != nil {
		return nil, nil, nil, err
	}
	dyn, err := dynamic.NewForConfig(b.AdminConfig())
	if err != nil {
		return nil, nil, nil, err
	}
	return ks, dyn, inventory(ctx, dyn, ks), nil
}

// reset deletes what scenarios added since the baseline (namespaces with
// everything in them, cluster-scoped objects, objects in pre-existing
// namespaces) and waits until it is gone, so that the next scenario can
// create the same names. The agent's GitConfig CRD stays: every scenario
// needs it and deleting a CRD is slow.
func (pl *plane) reset(ctx context.Context) error {
	ks, dyn, now, err := snapshot(ctx, pl.backend)
	if err != nil {
		return err
	}
	gitConfigCRD := agent.GitConfigGVR.Resource + "." + agent.GitConfigGVR.Group
	newNS := map[string]bool{}
	for k := range now {
		if k.gvr.Resource == "namespaces" && !pl.baseline[k] {
			newNS[k.name] = true
		}
	}
	var gone []objKey
	bg := metav1.DeletePropagationBackground
	for k := range now {
		if pl.baseline[k] || newNS[k.namespace] || (k.gvr.Resource == "customresourcedefinitions" && k.name == gitConfigCRD) {
			continue
		}
		var ri dynamic.ResourceInterface = dyn.Resource(k.gvr)
		if k.namespace != "" {
			ri = dyn.Resource(k.gvr).Namespace(k.namespace)
		}
		if err := ri.Delete(ctx, k.name, metav1.DeleteOptions{PropagationPolicy: &bg}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("reset: delete %s %s/%s: %w", k.gvr.Resource, k.namespace, k.name, err)
		}
		gone = append(gone, k)
	}
	nsList := make([]string, 0, len(newNS))
	for ns := range newNS {
		nsList = append(nsList, ns)
	}
	if err := emptyNamespaces(ctx, pl.backend, dyn, ks, nsList); err != nil {
		return fmt.Errorf("reset: %w", err)
	}
	// Wait on wall time: the API server and its controllers do the work.
	wall := clock.Real()
	deadline := wall.Now().Add(resetTimeout)
	for _, k := range gone {
		var ri dynamic.ResourceInterface = dyn.Resource(k.gvr)
		if k.namespace != "" {
			ri = dyn.Resource(k.gvr).Namespace(k.namespace)
		}
		for {
			_, err := ri.Get(ctx, k.name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				break
			}
			if wall.Now().After(deadline) {
				return fmt.Errorf("reset: %s %s/%s still there after %s", k.gvr.Resource, k.namespace, k.name, resetTimeout)
			}
			if err := wall.Sleep(ctx, 20*time.Millisecond); err != nil {
				return err
			}
		}
	}
	return nil
}
