// Package agent simulates the Azure Arc agents of one connected cluster:
// config-agent (heartbeats, desired configurations, compliance reports),
// the controller-manager that installs an operator per configuration, and
// the Flux v1 operators themselves, which pull git and apply manifests
// with their own ServiceAccount's credentials so that the real API server's
// RBAC enforces multi-tenancy (spec §3 and §4).
//
// The agent only talks to ARM through the data-plane client and to git
// through plain remotes (SSH or HTTPS), both across sim/netfault links, so
// "the cluster is offline" is a network failure it has to live with. All
// periodic work runs on the injected clock: on a Virtual clock each due
// poll, install and sync runs to completion inside Advance.
package agent

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"

	"github.com/gitopsim/gitopsim/sim/arm"
	"github.com/gitopsim/gitopsim/sim/clock"
	"github.com/gitopsim/gitopsim/sim/netfault"
)

// Version is the agent version reported in heartbeats.
const Version = "1.0.0-gitopsim"

// Profiles accepted by ProfileIntervals, the default first.
var Profiles = []string{"realistic", "fast"}

// Intervals are the agent's and its operators' periods. Zero fields take
// the profile's value.
type Intervals struct {
	// Heartbeat is how often config-agent reports the cluster to ARM.
	Heartbeat time.Duration
	// ConfigPoll is how often config-agent pulls desired configurations.
	ConfigPoll time.Duration
	// GitPoll is fluxd's default --git-poll-interval.
	GitPoll time.Duration
	// Sync is fluxd's default --sync-interval.
	Sync time.Duration
	// Retry is how soon a git repo that is not ready is tried again.
	Retry time.Duration
	// ChartsSync is the Helm operator's default --charts-sync-interval
	// (chartValues' chartsSyncInterval overrides it).
	ChartsSync time.Duration
}

// ProfileIntervals returns a profile's intervals: realistic keeps the
// documented ones (config poll 30 s, fluxd git poll and sync 5 min, retry
// 10 s), fast shrinks them to about a second.
func ProfileIntervals(profile string) (Intervals, error) {
	switch profile {
	case "", "realistic":
		return Intervals{Heartbeat: time.Minute, ConfigPoll: 30 * time.Second, GitPoll: 5 * time.Minute, Sync: 5 * time.Minute, Retry: 10 * time.Second, ChartsSync: 3 * time.Minute}, nil
	case "fast":
		return Intervals{Heartbeat: time.Second, ConfigPoll: time.Second, GitPoll: 500 * time.Millisecond, Sync: time.Second, Retry: time.Second, ChartsSync: time.Second}, nil
	}
	return Intervals{}, fmt.Errorf("unknown agent profile %q: valid profiles are %s", profile, strings.Join(Profiles, ", "))
}

// Options configures an Agent.
type Options struct {
	// ClusterID is the connected cluster's ARM resource id.
	ClusterID string
	// Key is the private half of the cluster's agentPublicKeyCertificate.
	Key crypto.Signer
	// ARMURL is the ARM provider's base URL.
	ARMURL string
	// CAPEM holds the CA certificates the agent trusts for ARM and for
	// HTTPS git remotes (the gitopsim CA), PEM.
	CAPEM []byte
	// GitKnownHosts is the SSH trust the operators ship with, in
	// known_hosts format: the gitopsim git host, the way Flux's image
	// trusts well-known hosts. sshKnownHostsContents replaces it.
	GitKnownHosts string
	// Kube is a cluster-admin config for the cluster the agent runs in.
	Kube *rest.Config
	// Profile picks default intervals, see ProfileIntervals.
	Profile string
	// Intervals override the profile's, field by field.
	Intervals Intervals
	// Clock drives every loop; required (the simulator's clock).
	Clock clock.Clock
	// Logger receives the agent's log; nil discards it.
	Logger *slog.Logger
	// Cache is shared by the agents of clusters that share an API server
	// (see ServerCache); nil gives the agent a cache of its own.
	Cache *ServerCache
	// OnEvent, when set, is called with every event as it is recorded,
	// on the goroutine that records it; it must return quickly.
	OnEvent func(Event)
}

// Agent is the Arc agent set of one connected cluster.
type Agent struct {
	opts      Options
	iv        Intervals
	clk       clock.Clock
	log       *slog.Logger
	armLink   *netfault.Link
	gitLink   *netfault.Link
	arm       *arm.AgentClient
	kube      kubernetes.Interface
	dyn       dynamic.Interface
	disco     discovery.CachedDiscoveryInterface
	mapper    *restmapper.DeferredDiscoveryRESTMapper
	cache     *ServerCache
	oapi      *openAPISource
	clusterID string
	hash      string

	ctx    context.Context
	cancel context.CancelFunc

	mu        sync.Mutex
	started   bool
	tickers   []clock.Ticker
	instances map[string]*instance
	// gitConfigs names every configuration this agent may have a GitConfig
	// of, as of its last list of them (see removeMissing); nil until the
	// first list after Start.
	gitConfigs  map[string]bool
	kubeVersion string
	armDown     bool

	evMu   sync.Mutex
	events []Event
}

// Event is something the agent did or saw, for timelines and scenario
// expectations.
type Event struct {
	Time time.Time `json:"time"`
	// Configuration is the configuration the event is about, or empty.
	Configuration string `json:"configuration,omitempty"`
	// Reason is a CamelCase word: Heartbeat, ARMUnreachable, Installed,
	// InstallFailed, Synced, SyncFailed, GitNotReady, Removed, ...
	Reason  string `json:"reason"`
	Message string `json:"message"`
	// Revision is the revision synced (full hash), for Synced and
	// SyncFailed.
	Revision string `json:"revision,omitempty"`
}

const maxEvents = 10000

// New validates opts; the agent does nothing until Start.
func New(opts Options) (*Agent, error) {
	installGitHTTPS()
	if opts.ClusterID == "" || opts.Key == nil || opts.ARMURL == "" || opts.Kube == nil || opts.Clock == nil {
		return nil, errors.New("agent: ClusterID, Key, ARMURL, Kube and Clock are required")
	}
	iv, err := ProfileIntervals(opts.Profile)
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	for _, f := range []struct {
		dst *time.Duration
		v   time.Duration
	}{{&iv.Heartbeat, opts.Intervals.Heartbeat}, {&iv.ConfigPoll, opts.Intervals.ConfigPoll}, {&iv.GitPoll, opts.Intervals.GitPoll}, {&iv.Sync, opts.Intervals.Sync}, {&iv.Retry, opts.Intervals.Retry}, {&iv.ChartsSync, opts.Intervals.ChartsSync}} {
		if f.v < 0 {
			return nil, fmt.Errorf("agent: negative interval %v", f.v)
		}
		if f.v > 0 {
			*f.dst = f.v
		}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Cache == nil {
		opts.Cache = NewServerCache()
	}
	name := opts.ClusterID[strings.LastIndex(opts.ClusterID, "/")+1:]
	log := opts.Logger.With("component", "agent", "cluster", name)
	pool := x509.NewCertPool()
	if len(opts.CAPEM) > 0 && !pool.AppendCertsFromPEM(opts.CAPEM) {
		return nil, errors.New("agent: CAPEM holds no certificate")
	}
	a := &Agent{
		opts: opts, iv: iv, clk: opts.Clock, log: log, clusterID: opts.ClusterID,
		armLink:   netfault.New(name+"/arm", netfault.Options{Logger: opts.Logger}),
		gitLink:   netfault.New(name+"/git", netfault.Options{Logger: opts.Logger}),
		instances: map[string]*instance{}, cache: opts.Cache,
	}
	sum := sha256.Sum256([]byte(strings.ToLower(opts.ClusterID)))
	a.hash = hex.EncodeToString(sum[:8])
	hc := &http.Client{Transport: a.armLink.HTTPTransport(&http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
	}), Timeout: 30 * time.Second}
	a.arm, err = arm.NewAgentClient(arm.AgentClientOptions{URL: opts.ARMURL, HTTPClient: hc, ClusterID: opts.ClusterID, Key: opts.Key, Clock: opts.Clock})
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	kcfg := rest.CopyConfig(opts.Kube)
	// The agent applies many objects in bursts; client-go's default 5 QPS
	// would make a sync take seconds.
	kcfg.QPS, kcfg.Burst = 1000, 2000
	if a.kube, err = kubernetes.NewForConfig(kcfg); err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	if a.dyn, err = dynamic.NewForConfig(kcfg); err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	// One discovery cache for the agent; reset when a sync applies CRDs.
	a.disco = memory.NewMemCacheClient(a.kube.Discovery())
	a.mapper = restmapper.NewDeferredDiscoveryRESTMapper(a.disco)
	if a.oapi, err = newOpenAPISource(opts.Cache, kcfg); err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	return a, nil
}

// ClusterID is the connected cluster's resource id.
func (a *Agent) ClusterID() string { return a.clusterID }

// ARMLink is the agent's network path to ARM, for faults.
func (a *Agent) ARMLink() *netfault.Link { return a.armLink }

// GitLink is the operators' network path to git remotes, for faults.
func (a *Agent) GitLink() *netfault.Link { return a.gitLink }

// Intervals are the agent's effective intervals.
func (a *Agent) Intervals() Intervals { return a.iv }

// Start installs the GitConfig CRD, makes a first heartbeat and poll
// attempt (failures are tolerated: the cluster may be offline), and
// schedules the loops on the clock. ctx bounds only the start-up.
func (a *Agent) Start(ctx context.Context) error {
	a.mu.Lock()
	if a.started {
		a.mu.Unlock()
		return errors.New("agent: already started")
	}
	a.started = true
	a.gitConfigs = nil
	a.mu.Unlock()
	if err := a.gitLink.Start(ctx); err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	a.ctx, a.cancel = context.WithCancel(context.WithoutCancel(ctx))
	if err := a.installCRD(ctx); err != nil {
		a.cancel()
		_ = a.gitLink.Stop(ctx)
		return fmt.Errorf("agent: install GitConfig CRD: %w", err)
	}
	if v, err := a.kube.Discovery().ServerVersion(); err == nil {
		a.kubeVersion = v.GitVersion
	}
	a.heartbeat()
	a.poll()
	a.mu.Lock()
	a.tickers = append(a.tickers, a.clk.Every(a.iv.Heartbeat, a.heartbeat), a.clk.Every(a.iv.ConfigPoll, a.poll))
	a.mu.Unlock()
	a.log.Info("agent started", "heartbeat", a.iv.Heartbeat, "configPoll", a.iv.ConfigPoll, "gitPoll", a.iv.GitPoll, "sync", a.iv.Sync)
	return nil
}

// Stop ends every loop and operator. Objects in the cluster stay, as they
// would if the agent's pods stopped.
func (a *Agent) Stop(ctx context.Context) error {
	a.mu.Lock()
	if !a.started {
		a.mu.Unlock()
		return nil
	}
	a.started = false
	tickers := a.tickers
	a.tickers = nil
	var ops []*operator
	for _, in := range a.instances {
		if in.op != nil {
			ops = append(ops, in.op)
		}
	}
	a.mu.Unlock()
	for _, t := range tickers {
		t.Stop()
	}
	for _, op := range ops {
		op.stop()
	}
	if a.cancel != nil {
		a.cancel()
	}
	return a.gitLink.Stop(ctx)
}

// event records and logs an event.
func (a *Agent) event(config, reason, format string, args ...any) {
	a.record(Event{Configuration: config, Reason: reason, Message: fmt.Sprintf(format, args...)})
}

// record stamps, keeps, logs and hands on an event.
func (a *Agent) record(ev Event) {
	config, reason, msg := ev.Configuration, ev.Reason, ev.Message
	ev.Time = a.clk.Now()
	a.evMu.Lock()
	if len(a.events) >= maxEvents {
		a.events = slices.Delete(a.events, 0, len(a.events)-maxEvents+1)
	}
	a.events = append(a.events, ev)
	a.evMu.Unlock()
	if a.opts.OnEvent != nil {
		a.opts.OnEvent(ev)
	}
	level := slog.LevelInfo
	if IsFailure(reason) {
		level = slog.LevelWarn
	}
	a.log.Log(a.ctx, level, msg, "configuration", config, "reason", reason)
}

// failureReasons are the events that report something not done; they
// are logged at WARN so that a failure never hides among INFO lines.
var failureReasons = map[string]bool{
	"InstallFailed": true, "SyncFailed": true, "GitNotReady": true, "ProtectedSettingsExpired": true,
	"SyncStateConflict": true, "OperatorWarning": true, "HelmReleaseFailed": true, "HelmUninstallFailed": true,
	"HelmGitAuthError": true, "HelmOperatorWaitingForTiller": true, "ARMUnreachable": true,
}

// IsFailure reports whether an event reason says something was not done
// (the agent logs those at WARN).
func IsFailure(reason string) bool { return failureReasons[reason] }

// Events returns the events so far, oldest first (the last 10000).
func (a *Agent) Events() []Event {
	a.evMu.Lock()
	defer a.evMu.Unlock()
	return slices.Clone(a.events)
}

// heartbeat reports the cluster's metadata; it is what keeps the connected
// cluster Connected.
func (a *Agent) heartbeat() {
	hb := arm.Heartbeat{AgentVersion: Version, KubernetesVersion: a.kubeVersion}
	ctx, cancel := context.WithTimeout(a.ctx, 30*time.Second)
	defer cancel()
	hb.TotalNodeCount, hb.TotalCoreCount = a.nodes(ctx)
	if _, err := a.arm.Heartbeat(ctx, hb); err != nil {
		a.armUnreachable(err)
		return
	}
	a.armReachable()
}

func (a *Agent) armUnreachable(err error) {
	a.mu.Lock()
	first := !a.armDown
	a.armDown = true
	a.mu.Unlock()
	if first {
		a.event("", "ARMUnreachable", "cannot reach Azure: %v", err)
	}
}

func (a *Agent) armReachable() {
	a.mu.Lock()
	was := a.armDown
	a.armDown = false
	a.mu.Unlock()
	if was {
		a.event("", "ARMReachable", "connection to Azure restored")
	}
}
