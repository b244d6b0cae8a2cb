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
	// What every API server does on a timer against the shared etcd,
	// which a hundred of them turn into the etcd's main load: counting
	// each resource's keys every minute and reading the database size
	// every 30 s (both only for metrics), renewing an identity lease
	// every 10 s, and a master lease with the default "kubernetes"
	// Service's endpoints every 10 s. Off, 20 idle members measured etcd
	// at 2.3% of a core instead of 9.3%, and the API servers at 1.6%
	// each instead of 2.1%. What a member lacks for it: no
	// kube-apiserver-* leases in kube-system and no endpoints for the
	// "kubernetes" Service (nothing runs in a simulated cluster that
	// would call it).
	"etcd-count-metric-poll-period": "0",
	"etcd-db-metric-poll-interval":  "0",
	"endpoint-reconciler-type":      "none",
	"feature-gates":                 "APIServerIdentity=false",
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
	// EtcdURL, when set, is an etcd (http://host:port) the fleet uses
	// instead of starting its own: the layout of a fleet larger than one
	// machine, where API servers on several machines share one etcd
	// cluster. The fleet neither starts nor stops it; it removes its
	// members' keys on Stop unless Keep.
	EtcdURL string
	// EtcdPrefix is where the members' keys live, each under
	// EtcdPrefix/<name>; default "/fleet". Fleets sharing an etcd need
	// prefixes of their own.
	EtcdPrefix string
	// Keep keeps the fleet's data on Stop (its etcd's data directory in
	// Workdir, or its members' keys in EtcdURL) and reuses it at the next
	// Start: a member added again under the same name finds its
	// namespaces, CRDs and objects as it left them. Its certificates and
	// service-account signing key are new at each start, so tokens issued
	// before do not survive.
	Keep bool
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
	started bool
	etcdURL *url.URL      // the fleet's etcd, its own or EtcdURL
	etcd    *envtest.Etcd // its own etcd; nil with EtcdURL
	etcdLog *os.File      // its own etcd's output
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
	if opts.EtcdPrefix == "" {
		opts.EtcdPrefix = "/fleet"
	}
	if !strings.HasPrefix(opts.EtcdPrefix, "/") || strings.HasSuffix(opts.EtcdPrefix, "/") {
		return nil, fmt.Errorf("cluster: fleet etcd prefix %q: want /a/path without a trailing /", opts.EtcdPrefix)
	}
	if opts.EtcdURL != "" {
		u, err := url.Parse(opts.EtcdURL)
		if err != nil || u.Scheme != "http" || u.Host == "" {
			return nil, fmt.Errorf("cluster: fleet etcd %q: want http://host:port (TLS to etcd is not supported yet)", opts.EtcdURL)
		}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Fleet{opts: opts, log: opts.Logger.With("component", "cluster", "backend", "fleet"), members: map[string]*envtestBackend{}}, nil
}

// Start starts the fleet's etcd, after killing what an earlier run in
// the same workdir left behind, or checks that EtcdURL answers.
func (f *Fleet) Start(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.started {
		return errors.New("cluster: fleet already started")
	}
	assets, err := FindAssets(f.opts.AssetsDir)
	if err != nil {
		return err
	}
	if killed := killLeftovers(f.opts.Workdir); len(killed) > 0 {
		f.log.Warn("killed control-plane processes left by an earlier run in this workdir", "processes", killed)
	}
	dir := clusterDir(f.opts.Workdir)
	if !f.opts.Keep {
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("cluster: fleet: clean: %w", err)
		}
	}
	// Member directories hold only certificates, kubeconfigs and logs,
	// which every start writes anew.
	if err := os.RemoveAll(filepath.Join(dir, "members")); err != nil {
		return fmt.Errorf("cluster: fleet: clean: %w", err)
	}
	if f.opts.EtcdURL != "" {
		u, _ := url.Parse(f.opts.EtcdURL)
		if err := etcdHealthy(ctx, u); err != nil {
			return fmt.Errorf("cluster: fleet: etcd %s: %w", f.opts.EtcdURL, err)
		}
		f.log.Info("the fleet uses an etcd it did not start", "etcd", u.Redacted(), "prefix", f.opts.EtcdPrefix, "keep", f.opts.Keep)
		f.etcdURL, f.started = u, true
		return nil
	}
	dataDir := filepath.Join(dir, "etcd")
	_, statErr := os.Stat(filepath.Join(dataDir, "member"))
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("cluster: fleet: %w", err)
	}
	logf, err := os.OpenFile(filepath.Join(dir, "etcd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("cluster: fleet: %w", err)
	}
	etcdPath, err := dyingWrapper(filepath.Join(dir, "etcd.sh"), assets.Etcd(), nil, f.log)
	if err != nil {
		_ = logf.Close()
		return fmt.Errorf("cluster: fleet: %w", err)
	}
	etcd := &envtest.Etcd{Path: etcdPath, DataDir: dataDir, StartTimeout: startTimeout, StopTimeout: stopTimeout, Out: logf, Err: logf}
	f.log.Info("starting the fleet's etcd", "binaries", assets.Dir, "data", dataDir, "reused", statErr == nil)
	if err := runWithContext(ctx, etcd.Start); err != nil {
		_ = logf.Close()
		return fmt.Errorf("cluster: fleet: start etcd (log in %s): %w", filepath.Join(dir, "etcd.log"), err)
	}
	f.etcd, f.etcdURL, f.etcdLog, f.started = etcd, etcd.URL, logf, true
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
	if !f.started {
		f.mu.Unlock()
		return nil, errors.New("cluster: fleet not started")
	}
	if _, dup := f.members[name]; dup {
		f.mu.Unlock()
		return nil, fmt.Errorf("cluster: fleet member %q exists", name)
	}
	b, err := newEnvtest(Options{
		Backend: Envtest, Workdir: filepath.Join(clusterDir(f.opts.Workdir), "members", name),
		Logger: f.opts.Logger.With("member", name), AssetsDir: f.opts.AssetsDir,
		ControllerManagerArgs: []string{fleetControllers},
	})
	if err != nil {
		f.mu.Unlock()
		return nil, err
	}
	b.etcdURL, b.etcdPrefix, b.goEnv, b.startLimit = cloneURL(f.etcdURL), f.memberPrefix(name), fleetGoEnv, fleetStartTimeout
	f.members[name] = b
	external := f.etcd == nil
	f.mu.Unlock()
	if err := os.MkdirAll(b.opts.Workdir, 0o700); err != nil {
		f.forget(name)
		return nil, fmt.Errorf("cluster: fleet member %s: %w", name, err)
	}
	if external && !f.opts.Keep {
		// A run that died left its keys in an etcd the fleet did not
		// start; this member starts empty, as Keep=false promises.
		if err := etcdDeletePrefix(ctx, b.etcdURL, b.etcdPrefix+"/"); err != nil {
			f.forget(name)
			return nil, fmt.Errorf("cluster: fleet member %s: clear its keys: %w", name, err)
		}
	}
	if err := b.Start(ctx); err != nil {
		f.forget(name)
		return nil, fmt.Errorf("cluster: fleet member %s: %w", name, err)
	}
	return b, nil
}

func (f *Fleet) forget(name string) {
	f.mu.Lock()
	delete(f.members, name)
	f.mu.Unlock()
}

// memberPrefix is the etcd prefix of member name's keys.
func (f *Fleet) memberPrefix(name string) string { return f.opts.EtcdPrefix + "/" + name }

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

// Stop stops every member (in parallel), then the fleet's own etcd, and
// removes the fleet's data unless Keep.
func (f *Fleet) Stop(ctx context.Context) error {
	f.mu.Lock()
	members := f.members
	f.members = map[string]*envtestBackend{}
	etcd, etcdURL, etcdLog := f.etcd, f.etcdURL, f.etcdLog
	f.etcd, f.etcdURL, f.etcdLog, f.started = nil, nil, nil, false
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
		_ = etcdLog.Close()
	} else if etcdURL != nil && !f.opts.Keep {
		for name := range members {
			if err := etcdDeletePrefix(ctx, etcdURL, f.memberPrefix(name)+"/"); err != nil {
				errs = append(errs, fmt.Errorf("fleet member %s: remove its keys: %w", name, err))
			}
		}
	}
	// Anything a failed start left behind.
	killLeftovers(f.opts.Workdir)
	dir := clusterDir(f.opts.Workdir)
	if f.opts.Keep {
		dir = filepath.Join(dir, "members")
	}
	if err := os.RemoveAll(dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
