package soak

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"
	"weak"

	azarm "github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	azpolicy "github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/kubernetesconfiguration/armkubernetesconfiguration/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armpolicy"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/gitopsim/gitopsim/sim"
	"github.com/gitopsim/gitopsim/sim/arm"
	"github.com/gitopsim/gitopsim/sim/azsdk"
	"github.com/gitopsim/gitopsim/sim/clock"
	"github.com/gitopsim/gitopsim/sim/cluster"
	"github.com/gitopsim/gitopsim/sim/gitserver"
	"github.com/gitopsim/gitopsim/sim/helmrepo"
	"github.com/gitopsim/gitopsim/sim/statedir"
)

// world is the soak's simulator and what the soak knows it should hold:
// the model that the invariants compare the simulator with.
type world struct {
	t   *testing.T
	ctx context.Context
	rng *rand.Rand
	cfg settings
	clk *clock.Virtual
	// start is the virtual time the soak began.
	start time.Time
	dir   string

	backend cluster.Backend
	kube    kubernetes.Interface
	dyn     dynamic.Interface

	state   *statedir.Dir
	s       *sim.Sim
	workdir string
	logFile *os.File
	// addrs are the servers' addresses, chosen at the first start and kept
	// across restarts: stored configurations carry the git server's URL.
	armAddr, sshAddr, httpsAddr, helmAddr string
	az                                    *azsdk.Clients
	configs                               *armkubernetesconfiguration.SourceControlConfigurationsClient
	defs                                  *armpolicy.DefinitionsClient
	assigns                               *armpolicy.AssignmentsClient
	conns                                 map[string]*sim.Connected

	clusters []string
	// live and gone are the configurations ARM acknowledged creating and
	// deleting, by cluster/name.
	live, gone map[string]*configuration
	// assignments are the policy assignments acknowledged, by name;
	// defined says the soak's definition was.
	assignments map[string]bool
	defined     bool
	seq         int
	faults      []*fault
	// secrets are every protected value and token handed out; none may
	// reach a log.
	secrets []string
	stats   stats
	samples []sample
	// stopped are the simulators stopped so far: once stopped, nothing
	// may keep one reachable.
	stopped []weak.Pointer[sim.Sim]
}

// configuration is one configuration the soak made, with its repo.
type configuration struct {
	cluster, name, ns, repo string
	https                   bool
	body                    armkubernetesconfiguration.SourceControlConfiguration
	// head is the repo's head commit, and good whether it holds valid
	// manifests; rev is the last good content's number.
	head string
	good bool
	rev  int
}

func (c *configuration) key() string { return c.cluster + "/" + c.name }

// resourceGroup holds every soak cluster.
const resourceGroup = "soak"

func newWorld(t *testing.T, cfg settings) *world {
	dir := cfg.dir
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "gitopsim-soak-"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if !t.Failed() {
				_ = os.RemoveAll(dir)
			}
		})
	}
	w := &world{
		t: t, ctx: t.Context(), cfg: cfg, dir: dir,
		rng:  rand.New(rand.NewPCG(cfg.seed, cfg.seed^0x9e3779b97f4a7c15)),
		clk:  clock.NewVirtual(time.Time{}),
		live: map[string]*configuration{}, gone: map[string]*configuration{}, assignments: map[string]bool{},
		stats: stats{ops: map[string]int{}, refused: map[string]int{}, faults: map[faultKind]int{}},
	}
	w.start = w.clk.Now()
	for i := range cfg.clusters {
		w.clusters = append(w.clusters, fmt.Sprintf("edge-%d", i))
	}
	// client-go logs through klog, to stderr unless told; its lines go
	// with the others, and are searched for secrets too.
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	klogFile, err := os.Create(filepath.Join(dir, "logs", "client-go.log"))
	if err != nil {
		t.Fatal(err)
	}
	// Left set, and the file open, until the process ends: client-go may
	// still log from goroutines winding down after the last cleanup.
	klog.SetSlogLogger(slog.New(slog.NewTextHandler(klogFile, nil)))
	// One Kubernetes API for the whole soak, as a real cluster outlives
	// the Azure service's restarts; its API server restarts on its own.
	b, err := cluster.New(cluster.Options{Workdir: filepath.Join(dir, "cluster"), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Available(); err != nil {
		t.Fatalf("the soak needs the envtest binaries (make tools): %v", err)
	}
	if err := b.Start(w.ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Stop(context.Background()) })
	w.backend = b
	w.kube = kubernetes.NewForConfigOrDie(b.AdminConfig())
	w.dyn = dynamic.NewForConfigOrDie(b.AdminConfig())
	w.startSim(true)
	t.Cleanup(w.stopSim)
	for range cfg.clusters {
		w.create()
	}
	return w
}

// elapsed is the virtual time since the soak began.
func (w *world) elapsed() time.Duration { return w.clk.Now().Sub(w.start) }

// startSim starts gitopsim on the state dir, with a fresh work dir or the
// last one, and connects the clusters again (their agents run in
// gitopsim, so they restart with it).
func (w *world) startSim(freshWorkdir bool) {
	t := w.t
	var err error
	w.state, err = statedir.Open(statedir.Options{Dir: filepath.Join(w.dir, "state")})
	if err != nil {
		t.Fatalf("open the state dir: %v", err)
	}
	if freshWorkdir || w.workdir == "" {
		w.workdir = filepath.Join(w.dir, fmt.Sprintf("work-%d", w.stats.restarts))
	}
	if err := os.MkdirAll(filepath.Join(w.dir, "logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	w.logFile, err = os.Create(filepath.Join(w.dir, "logs", fmt.Sprintf("gitopsim-%d.log", w.stats.restarts)))
	if err != nil {
		t.Fatal(err)
	}
	// Debug: a secret must not reach the log at any level.
	log := slog.New(slog.NewTextHandler(w.logFile, &slog.HandlerOptions{Level: slog.LevelDebug}))
	addr := func(a string) string {
		if a == "" {
			return "127.0.0.1:0"
		}
		return a
	}
	s, err := sim.New(sim.Options{
		Workdir: w.workdir, Clock: w.clk, Logger: log, State: w.state,
		SharedCluster: w.backend,
		Local:         sim.LocalCluster{Disabled: true},
		AgentProfile:  "realistic",
		ARM: arm.Options{
			Addr: addr(w.armAddr),
			// Tokens outlive the hours of virtual time.
			TokenLifetime: 10 * 365 * 24 * time.Hour,
		},
		Git:  gitserver.Options{SSHAddr: addr(w.sshAddr), HTTPSAddr: addr(w.httpsAddr)},
		Helm: helmrepo.Options{Addr: addr(w.helmAddr)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(w.ctx); err != nil {
		t.Fatalf("start gitopsim (restart %d): %v", w.stats.restarts, err)
	}
	w.s = s
	e := s.Endpoints()
	w.armAddr = hostPort(t, e.ARM.URL)
	w.sshAddr = hostPort(t, e.Git.SSHURL)
	w.httpsAddr = hostPort(t, e.Git.HTTPSURL)
	w.helmAddr = hostPort(t, e.Helm.RepositoryURL)
	if w.az, err = azsdk.New(e.ARM); err != nil {
		t.Fatal(err)
	}
	if w.configs, err = armkubernetesconfiguration.NewSourceControlConfigurationsClient(w.az.SubscriptionID, w.az.Credential, w.clientOptions()); err != nil {
		t.Fatal(err)
	}
	if err := w.policyClients(); err != nil {
		t.Fatal(err)
	}
	w.conns = map[string]*sim.Connected{}
	for _, name := range w.clusters {
		c, err := s.Onboard(w.ctx, sim.OnboardOptions{Name: name, ResourceGroup: resourceGroup})
		if err != nil {
			t.Fatalf("connect %s (restart %d): %v", name, w.stats.restarts, err)
		}
		w.conns[name] = c
	}
	// A link that is down stays down across gitopsim's restart: it is the
	// cluster's network, not gitopsim's.
	for _, f := range w.faults {
		if f.kind == faultLink {
			f.apply(w, true)
		}
	}
}

// clientOptions are the SDK's, without retries: the soak's own calls are
// not retried, so a 503 is a write ARM did not make, and the model
// leaves it out.
func (w *world) clientOptions() *azarm.ClientOptions {
	opts := *w.az.Options
	opts.Retry = azpolicy.RetryOptions{MaxRetries: -1}
	return &opts
}

// stopSim stops gitopsim and closes its state dir, as a stop of up does.
func (w *world) stopSim() {
	if w.s == nil {
		return
	}
	if err := w.s.Stop(context.WithoutCancel(w.ctx)); err != nil {
		w.t.Errorf("stop gitopsim (restart %d): %v", w.stats.restarts, err)
	}
	w.stopped = append(w.stopped, weak.Make(w.s))
	w.s = nil
	if err := w.state.Close(); err != nil {
		w.t.Errorf("close the state dir: %v", err)
	}
	_ = w.logFile.Close()
}

// restartSim is a gitopsim restart: in-memory faults end with it.
func (w *world) restartSim(freshWorkdir bool) {
	w.stopSim()
	w.stats.restarts++
	kept := w.faults[:0]
	for _, f := range w.faults {
		if f.kind == faultLink {
			kept = append(kept, f)
		}
	}
	w.faults = kept
	w.startSim(freshWorkdir)
}

// advance moves virtual time by d, a minute at a time, ending the faults
// whose time is up on the way.
func (w *world) advance(d time.Duration) {
	for end := w.clk.Now().Add(d); w.clk.Now().Before(end); {
		step := min(time.Minute, end.Sub(w.clk.Now()))
		w.clk.Advance(step)
		w.endFaults(false)
	}
}

func hostPort(t *testing.T, raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		t.Fatalf("endpoint %q: %v", raw, err)
	}
	return u.Host
}
