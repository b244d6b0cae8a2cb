package sim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/gitopsim/gitopsim/sim/agent"
	"github.com/gitopsim/gitopsim/sim/arm"
	"github.com/gitopsim/gitopsim/sim/clock"
	"github.com/gitopsim/gitopsim/sim/cluster"
	"github.com/gitopsim/gitopsim/sim/gitserver"
	"github.com/gitopsim/gitopsim/sim/helmrepo"
	"github.com/gitopsim/gitopsim/sim/internal/azclient"
	"github.com/gitopsim/gitopsim/sim/internal/pki"
	"github.com/gitopsim/gitopsim/sim/policy"
	"github.com/gitopsim/gitopsim/sim/statedir"
)

// ErrWorkdirInUse means another simulator holds the work dir.
var ErrWorkdirInUse = errors.New("workdir in use")

// Options configures a Sim.
type Options struct {
	// Workdir holds everything the simulator writes: endpoints.json,
	// kubeconfig, certificates, logs. Required; made if missing.
	Workdir string
	// Cluster chooses and configures the Kubernetes backend. Its Workdir
	// and Logger are filled from these Options when empty.
	Cluster cluster.Options
	// SharedCluster, when set, is an already started Kubernetes backend
	// that this Sim uses instead of its own (Cluster is then ignored). The
	// Sim neither starts nor stops it, so several Sims, one scenario each,
	// can share one control plane.
	SharedCluster cluster.Backend
	// ARM configures the ARM provider. Workdir, Clock, Logger and the CA
	// are filled from these Options when empty.
	ARM arm.Options
	// Git configures the git server, filled the same way.
	Git gitserver.Options
	// Helm configures the Helm chart repository, filled the same way.
	Helm helmrepo.Options
	// Fleet configures the Kubernetes APIs of dedicated clusters
	// (OnboardFleet with Dedicated, FleetAPI): Workdir defaults to
	// Workdir/fleet, AssetsDir to Cluster's and Logger to Logger. With
	// Keep and a Workdir of its own, the fleet's data outlives the
	// simulator; EtcdURL puts it on an etcd the simulator did not start.
	Fleet cluster.FleetOptions
	// State, when set, is an open state dir: ARM, the git server and the
	// Helm repository keep what users create under it (arm, git and helm),
	// encrypted with its key. It fills those components' StateDir and
	// StateKey where they are empty; the caller closes it after Stop.
	State *statedir.Dir
	// Clock drives gitopsim's own components; nil means clock.Real().
	Clock clock.Clock
	// Logger receives progress and diagnostics; nil discards them.
	Logger *slog.Logger
	// Local is the connected cluster onboarded at Start and bound to the
	// cluster backend, with its agent.
	Local LocalCluster
	// AgentProfile and AgentIntervals configure every agent the simulator
	// starts (see agent.ProfileIntervals); Onboard can override them.
	AgentProfile   string
	AgentIntervals agent.Intervals
	// PolicyTiming is how long Azure Policy takes to evaluate and deploy;
	// nil is policy.DefaultTiming (the documented delays), and
	// policy.ImmediateTiming() is the test mode.
	PolicyTiming *policy.Timing
}

// LocalCluster names the connected cluster Start onboards.
type LocalCluster struct {
	// Name defaults to "local", ResourceGroup to "gitopsim".
	Name, ResourceGroup string
	// Disabled skips onboarding: no connected cluster, no agent.
	Disabled bool
}

// Defaults of LocalCluster and Onboard.
const (
	DefaultClusterName   = "local"
	DefaultResourceGroup = "gitopsim"
	DefaultLocation      = "eastus"
)

// Sim is a running (or runnable) simulator.
type Sim struct {
	workdir string
	clock   clock.Clock
	log     *slog.Logger
	cluster cluster.Backend
	arm     *arm.Server
	policy  *policy.Provider
	git     *gitserver.Server
	helm    *helmrepo.Server
	caFile  string
	opts    Options
	// agentCache is shared by every agent: agents on one API server
	// parse its OpenAPI schema once and count its nodes together.
	agentCache *agent.ServerCache
	// fleet holds the dedicated Kubernetes APIs of a fleet, once one
	// asked for them (OnboardFleet with Dedicated).
	fleet *cluster.Fleet

	// agentWatchers are called with every agent event (WatchAgents);
	// appended to, never changed in place.
	watchMu       sync.Mutex
	agentWatchers []func(clusterID string, e agent.Event)

	mu        sync.Mutex
	uiURL     string
	lock      *os.File
	running   []component
	connected []*Connected
}

// component is one started part, remembered so Stop can undo Start in
// reverse order.
type component struct {
	name string
	stop func(context.Context) error
}

// New validates opts and builds the components without starting them.
func New(opts Options) (*Sim, error) {
	if opts.Workdir == "" {
		return nil, errors.New("sim: workdir is required")
	}
	wd, err := filepath.Abs(opts.Workdir)
	if err != nil {
		return nil, fmt.Errorf("sim: workdir: %w", err)
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real()
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	copts := opts.Cluster
	if copts.Workdir == "" {
		copts.Workdir = wd
	}
	if copts.Logger == nil {
		copts.Logger = opts.Logger
	}
	backend := opts.SharedCluster
	if backend == nil {
		if backend, err = cluster.New(copts); err != nil {
			return nil, err
		}
	}
	// One CA for every gitopsim server, kept in the work dir so that
	// clients that trusted it once keep trusting it.
	caFile := filepath.Join(wd, "ca.crt")
	ca, err := pki.LoadOrCreateCA(caFile, filepath.Join(wd, "ca.key"), "gitopsim CA", clock.Real().Now())
	if err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	// Components share the work dir, the clock, the logger and the CA
	// unless their own Options say otherwise.
	shared := func(workdir *string, clk *clock.Clock, log **slog.Logger, c **pki.CA, cf *string) {
		if *workdir == "" {
			*workdir = wd
		}
		if *clk == nil {
			*clk = opts.Clock
		}
		if *log == nil {
			*log = opts.Logger
		}
		if *c == nil {
			*c, *cf = ca, caFile
		}
	}
	aopts, gopts, hopts := opts.ARM, opts.Git, opts.Helm
	if st := opts.State; st != nil {
		// A component given a state dir of its own keeps its own key too.
		fill := func(dir *string, name string) bool {
			if *dir != "" {
				return false
			}
			*dir = st.Sub(name)
			return true
		}
		if fill(&aopts.StateDir, "arm") && aopts.StateKey == nil {
			aopts.StateKey, aopts.StateKeyFile = st.Key(), st.KeyFile()
		}
		if fill(&gopts.StateDir, "git") && gopts.StateKey == nil {
			gopts.StateKey = st.Key()
		}
		fill(&hopts.StateDir, "helm")
	}
	shared(&aopts.Workdir, &aopts.Clock, &aopts.Logger, &aopts.CA, &aopts.CAFile)
	shared(&gopts.Workdir, &gopts.Clock, &gopts.Logger, &gopts.CA, &gopts.CAFile)
	armServer, err := arm.New(aopts)
	if err != nil {
		return nil, err
	}
	// Azure Policy and RBAC are a provider of their own, hosted by the ARM
	// server before it starts so that their state is restored with it.
	policyProvider, err := policy.New(policy.Options{ARM: armServer, Clock: aopts.Clock, Logger: aopts.Logger, Timing: opts.PolicyTiming})
	if err != nil {
		return nil, err
	}
	if err := armServer.Host(policyProvider); err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	if err := armServer.Host(policyProvider.Insights(policy.InsightsOptions{})); err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	gitServer, err := gitserver.New(gopts)
	if err != nil {
		return nil, err
	}
	var unusedCAFile string
	shared(&hopts.Workdir, &hopts.Clock, &hopts.Logger, &hopts.CA, &unusedCAFile)
	helmServer, err := helmrepo.New(hopts)
	if err != nil {
		return nil, err
	}
	if _, err := agent.ProfileIntervals(opts.AgentProfile); err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	return &Sim{workdir: wd, clock: opts.Clock, log: opts.Logger, cluster: backend, arm: armServer, policy: policyProvider, git: gitServer, helm: helmServer, caFile: caFile, opts: opts, agentCache: agent.NewServerCache()}, nil
}

// Available reports, before anything starts, why the simulator cannot run
// here, or nil.
func (s *Sim) Available() error { return s.cluster.Available() }

// Start starts every component in dependency order and returns once all
// are ready. If one fails, those already started are stopped again.
func (s *Sim) Start(ctx context.Context) (err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lock != nil {
		return errors.New("sim: already started")
	}
	if err := os.MkdirAll(s.workdir, 0o755); err != nil {
		return fmt.Errorf("sim: workdir: %w", err)
	}
	if err := s.lockWorkdir(); err != nil {
		return err
	}
	// A stale endpoints file from an earlier run must not be read as ours.
	_ = os.Remove(s.EndpointsPath())
	defer func() {
		if err != nil {
			s.stopLocked(context.WithoutCancel(ctx))
		}
	}()

	if err := s.cluster.Available(); err != nil {
		return err
	}
	if err := s.arm.Start(ctx); err != nil {
		return fmt.Errorf("start ARM provider: %w", err)
	}
	s.running = append(s.running, component{"arm", s.arm.Stop})
	if err := s.policy.Start(ctx); err != nil {
		return fmt.Errorf("start Azure Policy: %w", err)
	}
	s.running = append(s.running, component{"policy", func(context.Context) error { s.policy.Stop(); return nil }})
	if err := s.git.Start(ctx); err != nil {
		return fmt.Errorf("start git server: %w", err)
	}
	s.running = append(s.running, component{"git", s.git.Stop})
	if err := s.helm.Start(ctx); err != nil {
		return fmt.Errorf("start Helm chart repository: %w", err)
	}
	s.running = append(s.running, component{"helm", s.helm.Stop})
	// The local cluster's ARM registration needs only ARM: it runs while
	// the Kubernetes API starts, and its agent starts after.
	type registered struct {
		ob  *azclient.Onboarded
		err error
	}
	var local OnboardOptions
	reg := make(chan registered, 1)
	if !s.opts.Local.Disabled {
		local = s.onboardDefaults(OnboardOptions{Name: s.opts.Local.Name, ResourceGroup: s.opts.Local.ResourceGroup})
		go func() {
			ob, err := s.register(ctx, local)
			reg <- registered{ob, err}
		}()
	}
	var clusterErr error
	if s.opts.SharedCluster == nil {
		clusterErr = s.cluster.Start(ctx)
	}
	if clusterErr == nil && s.opts.SharedCluster == nil {
		s.running = append(s.running, component{"cluster", s.cluster.Stop})
	}
	if !s.opts.Local.Disabled {
		r := <-reg // always joined, so nothing outlives a failed Start
		if clusterErr == nil && r.err != nil {
			return fmt.Errorf("onboard local cluster: %w", r.err)
		}
		if clusterErr == nil {
			c, err := s.startAgent(ctx, local, r.ob)
			if err != nil {
				return fmt.Errorf("onboard local cluster: %w", err)
			}
			s.addConnectedLocked(c)
		}
	}
	if clusterErr != nil {
		return fmt.Errorf("start cluster: %w", clusterErr)
	}
	return nil
}

// Stop stops the components in reverse start order and joins their
// errors. It is safe to call after a failed Start and more than once.
func (s *Sim) Stop(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopLocked(ctx)
}

func (s *Sim) stopLocked(ctx context.Context) error {
	var errs []error
	for i := len(s.running) - 1; i >= 0; i-- {
		c := s.running[i]
		s.log.Debug("stopping", "component", c.name)
		if err := c.stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop %s: %w", c.name, err))
		}
	}
	s.running = nil
	s.connected = nil
	// A component whose Start failed cleaned up after itself (the
	// lifecycle contract), so only those that started are stopped.
	_ = os.Remove(s.EndpointsPath())
	s.unlockWorkdir()
	return errors.Join(errs...)
}

// Workdir is the absolute work dir.
func (s *Sim) Workdir() string { return s.workdir }

// Clock is the clock gitopsim's components run on.
func (s *Sim) Clock() clock.Clock { return s.clock }

// Cluster is the Kubernetes backend.
func (s *Sim) Cluster() cluster.Backend { return s.cluster }

// ARM is the ARM provider.
func (s *Sim) ARM() *arm.Server { return s.arm }

// Policy returns the Microsoft.Authorization provider (policy and RBAC)
// hosted by the ARM server.
func (s *Sim) Policy() *policy.Provider { return s.policy }

// Git is the git server.
func (s *Sim) Git() *gitserver.Server { return s.git }

// HelmRepo is the Helm chart repository.
func (s *Sim) HelmRepo() *helmrepo.Server { return s.helm }

// CAFile is the gitopsim CA certificate that every gitopsim server's
// certificate chains to.
func (s *Sim) CAFile() string { return s.caFile }

// EndpointsPath is where WriteEndpoints puts the endpoints file.
func (s *Sim) EndpointsPath() string { return filepath.Join(s.workdir, EndpointsFile) }

// Endpoints describes the running components.
func (s *Sim) Endpoints() Endpoints {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.endpointsLocked()
}

// armEndpoint is the arm section of the endpoints; it reads only
// immutable state, so it needs no lock.
func (s *Sim) armEndpoint() ARMEndpoint {
	return ARMEndpoint{
		URL:            s.arm.URL(),
		CAFile:         s.arm.CAFile(),
		TenantID:       s.arm.TenantID(),
		SubscriptionID: s.arm.SubscriptionID(),
		AuthorityHost:  s.arm.AuthorityHost(),
		ClientID:       s.arm.ClientID(),
		ClientSecret:   s.arm.ClientSecret(),
	}
}

func (s *Sim) endpointsLocked() Endpoints {
	return Endpoints{
		Workdir: s.workdir,
		Cluster: ClusterEndpoint{Backend: s.cluster.Name(), Kubeconfig: s.cluster.Kubeconfig()},
		ARM:     s.armEndpoint(),
		Git: GitEndpoint{
			SSHURL:            s.git.SSHURL(),
			HTTPSURL:          s.git.HTTPSURL(),
			CAFile:            s.git.CAFile(),
			KnownHostsFile:    s.git.KnownHostsFile(),
			SSHPrivateKeyFile: s.git.AdminKeyFile(),
			HTTPSUser:         gitserver.AdminUser,
			HTTPSToken:        s.git.AdminToken(),
		},
		Helm:              HelmEndpoint{RepositoryURL: s.helm.URL(), CAFile: s.caFile},
		ConnectedClusters: s.connectedEndpoints(),
		UI:                s.uiEndpoint(),
	}
}

func (s *Sim) uiEndpoint() *UIEndpoint {
	if s.uiURL == "" {
		return nil
	}
	return &UIEndpoint{URL: s.uiURL}
}

// SetUI records the web view's URL for Endpoints; "" removes it.
func (s *Sim) SetUI(url string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.uiURL = url
}

// WriteEndpoints writes Endpoints to EndpointsPath atomically. Call it once
// Start has returned, so that the file's existence means "ready".
func (s *Sim) WriteEndpoints() error {
	return WriteEndpoints(s.EndpointsPath(), s.Endpoints())
}

// lockWorkdir takes an exclusive lock on the work dir, so that two
// simulators never share (and tear down) each other's files.
func (s *Sim) lockWorkdir() error {
	path := filepath.Join(s.workdir, ".lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("sim: lock workdir: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		who := ""
		if pid := strings.TrimSpace(string(holder)); pid != "" {
			who = " (pid " + pid + ")"
		}
		return fmt.Errorf("%w: %s is used by another gitopsim%s; stop it or choose another --workdir", ErrWorkdirInUse, s.workdir, who)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	s.lock = f
	return nil
}

func (s *Sim) unlockWorkdir() {
	if s.lock == nil {
		return
	}
	_ = s.lock.Truncate(0)
	_ = s.lock.Close() // closing releases the flock
	s.lock = nil
}
