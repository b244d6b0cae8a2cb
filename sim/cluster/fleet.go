package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	envtest "sigs.k8s.io/controller-runtime/pkg/envtest"
)

// fleetAPIServerFlags trim a fleet member's kube-apiserver where that
// costs the agent nothing (fleet-backends.md, section B): no watch cache
// (the fleet's etcd serves every list), no priority and fairness, smaller
// in-flight limits, no profiling, and only the API groups of
// fleetAPIGroups.
var fleetAPIServerFlags = map[string]string{
	"watch-cache":                    "false",
	"enable-priority-and-fairness":   "false",
	"max-requests-inflight":          "50",
	"max-mutating-requests-inflight": "25",
	"profiling":                      "false",
	"runtime-config":                 "api/all=false," + strings.Join(fleetAPIGroups, "=true,") + "=true",
	// These admission plugins wait for informers of the groups left out
	// below; with them on, /readyz never passes.
	"disable-admission-plugins": "Priority,DefaultStorageClass,RuntimeClass,PersistentVolumeClaimResize,StorageObjectInUseProtection",
}

// fleetAPIGroups are the API group versions a fleet member serves: what
// the agent, the operator and the controller-manager use, and what
// GitOps repos commonly apply (workloads, jobs, autoscalers, network
// policies and ingresses, disruption budgets, webhooks, CRDs). Left out,
// to save about 20 MB per member: flowcontrol (priority and fairness is
// off), node (RuntimeClass), scheduling (PriorityClass) and storage
// (StorageClass, CSIDriver). A repo that applies those kinds fails on a
// fleet member as it would on a cluster without those APIs ("no matches
// for kind"); give that cluster a backend of its own.
var fleetAPIGroups = []string{
	"api/v1", "apps/v1", "batch/v1", "autoscaling/v1", "autoscaling/v2", "policy/v1",
	"networking.k8s.io/v1", "rbac.authorization.k8s.io/v1", "apiextensions.k8s.io/v1",
	"apiregistration.k8s.io/v1", "authentication.k8s.io/v1", "authorization.k8s.io/v1",
	"coordination.k8s.io/v1", "admissionregistration.k8s.io/v1", "certificates.k8s.io/v1",
	"discovery.k8s.io/v1", "events.k8s.io/v1",
}

// fleetControllers are the controllers a fleet member's
// kube-controller-manager runs: what namespaces, owner references,
// service accounts, aggregated roles and CSRs need (fleet-backends.md,
// section B, "kcm min").
const fleetControllers = "--controllers=namespace,garbagecollector,serviceaccount,serviceaccount-token,clusterrole-aggregation,root-ca-cert-publisher,csrsigning,csrapproving,csrcleaner"

// fleetGoEnv is the Go runtime setting of a member's kube-apiserver and
// kube-controller-manager. A memory limit (GOMEMLIMIT=100MiB, as first
// measured) is a cliff: a trimmed API server's runtime memory at idle is
// about 100 MiB (88 MiB heap spans, 8 MiB stacks), so its collector ran
// all the time, 13% of a core per idle member and 3.9 s of CPU per start
// against 1.5% and 1.4 s without, which is why a hundred members never
// came up. GOGC=30 collects earlier at any heap size and has no cliff:
// measured 116 MB PSS per API server (158 with the default 100), 1% of a
// core at idle, 1.5 s of CPU per start.
var fleetGoEnv = []string{"GOGC=30"}

// fleetStartTimeout bounds a member's start: on a machine whose cores the
// running members already use, a start takes well over envtest's minute.
const fleetStartTimeout = 5 * time.Minute

// FleetOptions configure a Fleet.
type FleetOptions struct {
	// Workdir holds the fleet's etcd and, under it, each member's
	// certificates, kubeconfig and logs. Required.
	Workdir string
	// AssetsDir is where kube-apiserver, etcd and kube-controller-manager
	// are; empty means search, see FindAssets.
	AssetsDir string
	// Logger receives progress and diagnostics; nil discards them.
	Logger *slog.Logger
}

// Fleet is many Kubernetes APIs on one etcd: each member is a Backend
// with its own kube-apiserver (its data under its own etcd prefix) and
// its own minimal kube-controller-manager, so that namespaces, RBAC,
// CRDs and cluster-scoped objects are its own, as on a real cluster.
// This is the hosted-control-plane pattern: it grows past one machine by
// running API servers elsewhere against an etcd cluster.
type Fleet struct {
	opts FleetOptions
	log  *slog.Logger

	mu      sync.Mutex
	etcd    *envtest.Etcd
	members map[string]*envtestBackend
}

// NewFleet validates opts. Nothing starts until Start.
func NewFleet(opts FleetOptions) (*Fleet, error) {
	if opts.Workdir == "" {
		return nil, errors.New("cluster: fleet workdir is required")
	}
	wd, err := filepath.Abs(opts.Workdir)
	if err != nil {
		return nil, fmt.Errorf("cluster: fleet workdir: %w", err)
	}
	opts.Workdir = wd
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Fleet{opts: opts, log: opts.Logger.With("component", "cluster", "backend", "fleet"), members: map[string]*envtestBackend{}}, nil
}

// Start starts the fleet's etcd, after killing what an earlier run in
// the same workdir left behind.
func (f *Fleet) Start(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.etcd != nil {
		return errors.New("cluster: fleet already started")
	}
	assets, err := FindAssets(f.opts.AssetsDir)
	if err != nil {
		return err
	}
	if killed := killLeftovers(f.opts.Workdir); len(killed) > 0 {
		f.log.Warn("killed control-plane processes left by an earlier run in this workdir", "processes", killed)
	}
	dir := filepath.Join(clusterDir(f.opts.Workdir), "etcd")
	if err := os.RemoveAll(clusterDir(f.opts.Workdir)); err != nil {
		return fmt.Errorf("cluster: fleet: clean: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("cluster: fleet: %w", err)
	}
	logf, err := os.Create(filepath.Join(clusterDir(f.opts.Workdir), "etcd.log"))
	if err != nil {
		return fmt.Errorf("cluster: fleet: %w", err)
	}
	etcd := &envtest.Etcd{Path: assets.Etcd(), DataDir: dir, StartTimeout: startTimeout, StopTimeout: stopTimeout, Out: logf, Err: logf}
	f.log.Info("starting the fleet's etcd", "binaries", assets.Dir)
	if err := runWithContext(ctx, etcd.Start); err != nil {
		_ = logf.Close()
		return fmt.Errorf("cluster: fleet: start etcd: %w", err)
	}
	f.etcd = etcd
	return nil
}

var memberNameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

// Add starts a member named name (lower-case letters, digits and '-')
// and returns it as a started Backend. Members may be added from several
// goroutines; each start takes about 3 seconds of one core.
func (f *Fleet) Add(ctx context.Context, name string) (Backend, error) {
	if !memberNameRE.MatchString(name) {
		return nil, fmt.Errorf("cluster: fleet member name %q: lower-case letters, digits and '-', at most 63", name)
	}
	f.mu.Lock()
	if f.etcd == nil {
		f.mu.Unlock()
		return nil, errors.New("cluster: fleet not started")
	}
	if _, dup := f.members[name]; dup {
		f.mu.Unlock()
		return nil, fmt.Errorf("cluster: fleet member %q exists", name)
	}
	b, err := newEnvtest(Options{
		Backend: Envtest, Workdir: filepath.Join(clusterDir(f.opts.Workdir), "members", name),
		Logger: f.log.With("member", name), AssetsDir: f.opts.AssetsDir,
		ControllerManagerArgs: []string{fleetControllers},
	})
	if err != nil {
		f.mu.Unlock()
		return nil, err
	}
	b.etcdURL, b.etcdPrefix, b.goEnv, b.startLimit = cloneURL(f.etcd.URL), "/fleet/"+name, fleetGoEnv, fleetStartTimeout
	f.members[name] = b
	f.mu.Unlock()
	if err := os.MkdirAll(b.opts.Workdir, 0o700); err != nil {
		return nil, fmt.Errorf("cluster: fleet member %s: %w", name, err)
	}
	if err := b.Start(ctx); err != nil {
		f.mu.Lock()
		delete(f.members, name)
		f.mu.Unlock()
		return nil, fmt.Errorf("cluster: fleet member %s: %w", name, err)
	}
	return b, nil
}

func cloneURL(u *url.URL) *url.URL {
	c := *u
	return &c
}

// Members returns the names of the started members.
func (f *Fleet) Members() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, 0, len(f.members))
	for n := range f.members {
		out = append(out, n)
	}
	return out
}

// Stop stops every member (in parallel), then etcd, and removes the
// fleet's data.
func (f *Fleet) Stop(ctx context.Context) error {
	f.mu.Lock()
	members := f.members
	f.members = map[string]*envtestBackend{}
	etcd := f.etcd
	f.etcd = nil
	f.mu.Unlock()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for name, b := range members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := b.Stop(ctx); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("fleet member %s: %w", name, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if etcd != nil {
		if err := etcd.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("fleet etcd: %w", err))
		}
	}
	// Anything a failed start left behind.
	killLeftovers(f.opts.Workdir)
	if err := os.RemoveAll(clusterDir(f.opts.Workdir)); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
