package sim

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/gitopsim/gitopsim/sim/agent"
	"github.com/gitopsim/gitopsim/sim/cluster"
	"github.com/gitopsim/gitopsim/sim/internal/azclient"
)

// OnboardOptions describes a connected cluster to create.
type OnboardOptions struct {
	// Name and ResourceGroup of the connected cluster; defaults "local"
	// and "gitopsim". The resource group is created when missing.
	Name, ResourceGroup string
	// Location defaults to eastus.
	Location string
	// Backend is the Kubernetes API the agent works on, started by the
	// caller; nil means the simulator's own cluster. Several connected
	// clusters may share one backend: each agent only touches its own
	// objects.
	Backend cluster.Backend
	// Profile and Intervals override the simulator's agent settings.
	Profile   string
	Intervals agent.Intervals
}

// Connected is an onboarded cluster with its running agent.
type Connected struct {
	Name, ResourceGroup, ID string
	Backend                 cluster.Backend
	Agent                   *agent.Agent
}

// Onboard creates a connected cluster through the public ARM API, the way
// `az connectedk8s connect` does (a fresh agent key pair, a long-running
// PUT), and starts its agent. The agent stops with the simulator.
//
// Onboard may be called from several goroutines: registration and the
// agent's start run outside the simulator's lock, so a fleet connects in
// parallel, as real clusters do.
func (s *Sim) Onboard(ctx context.Context, o OnboardOptions) (*Connected, error) {
	s.mu.Lock()
	started := s.lock != nil
	s.mu.Unlock()
	if !started {
		return nil, errors.New("sim: not started")
	}
	o = s.onboardDefaults(o)
	ob, err := s.register(ctx, o)
	if err != nil {
		return nil, err
	}
	c, err := s.startAgent(ctx, o, ob)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lock == nil {
		// Stopped meanwhile: the agent must not outlive the simulator.
		_ = c.Agent.Stop(ctx)
		return nil, fmt.Errorf("onboard %s: %w", o.Name, errors.New("sim: stopped while onboarding"))
	}
	s.addConnectedLocked(c)
	return c, nil
}

func (s *Sim) onboardDefaults(o OnboardOptions) OnboardOptions {
	if o.Name == "" {
		o.Name = DefaultClusterName
	}
	if o.ResourceGroup == "" {
		o.ResourceGroup = DefaultResourceGroup
	}
	if o.Location == "" {
		o.Location = DefaultLocation
	}
	if o.Backend == nil {
		o.Backend = s.cluster
	}
	if o.Profile == "" {
		o.Profile = s.opts.AgentProfile
	}
	if o.Intervals == (agent.Intervals{}) {
		o.Intervals = s.opts.AgentIntervals
	}
	return o
}

// register creates the connected cluster in ARM; it needs only ARM, so
// Start runs it while the Kubernetes API comes up.
func (s *Sim) register(ctx context.Context, o OnboardOptions) (*azclient.Onboarded, error) {
	az, err := azclient.New(azclient.Endpoint(s.armEndpoint()))
	if err != nil {
		return nil, err
	}
	return az.Onboard(ctx, o.ResourceGroup, o.Name, o.Location)
}

// startAgent starts the agent of a registered cluster; its backend must be
// running. It reads only what does not change once the simulator started,
// so it needs no lock; addConnectedLocked then records the cluster.
func (s *Sim) startAgent(ctx context.Context, o OnboardOptions, ob *azclient.Onboarded) (*Connected, error) {
	caPEM, err := os.ReadFile(s.caFile)
	if err != nil {
		return nil, fmt.Errorf("onboard %s: %w", o.Name, err)
	}
	ag, err := agent.New(agent.Options{
		ClusterID: ob.ID, Key: ob.Key, ARMURL: s.arm.URL(), CAPEM: caPEM,
		GitKnownHosts: s.git.KnownHosts(), Kube: o.Backend.AdminConfig(),
		Profile: o.Profile, Intervals: o.Intervals, Clock: s.clock, Logger: s.log, Cache: s.agentCache,
		OnEvent: func(e agent.Event) { s.agentEvent(ob.ID, e) },
	})
	if err != nil {
		return nil, fmt.Errorf("onboard %s: %w", o.Name, err)
	}
	if err := ag.Start(ctx); err != nil {
		return nil, fmt.Errorf("onboard %s: start agent: %w", o.Name, err)
	}
	return &Connected{Name: o.Name, ResourceGroup: o.ResourceGroup, ID: ob.ID, Backend: o.Backend, Agent: ag}, nil
}

// WatchAgents calls f with every event of every agent the simulator
// starts from now on, and the ARM id of its cluster; f runs on the
// agent's goroutine and must return quickly. Register it before Start to
// see the local cluster's first events.
func (s *Sim) WatchAgents(f func(clusterID string, e agent.Event)) {
	s.watchMu.Lock()
	defer s.watchMu.Unlock()
	s.agentWatchers = append(s.agentWatchers, f)
}

func (s *Sim) agentEvent(clusterID string, e agent.Event) {
	s.watchMu.Lock()
	ws := s.agentWatchers
	s.watchMu.Unlock()
	for _, f := range ws {
		f(clusterID, e)
	}
}

// addConnectedLocked records a started cluster, whose agent then stops
// with the simulator.
func (s *Sim) addConnectedLocked(c *Connected) {
	s.connected = append(s.connected, c)
	s.running = append(s.running, component{"agent " + c.Name, c.Agent.Stop})
	s.log.Info("connected cluster onboarded", "name", c.Name, "resourceGroup", c.ResourceGroup, "id", c.ID)
}

// Connected returns the onboarded clusters, the local one first.
func (s *Sim) Connected() []*Connected {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Connected(nil), s.connected...)
}

func (s *Sim) connectedEndpoints() []ConnectedCluster {
	out := []ConnectedCluster{}
	for _, c := range s.connected {
		out = append(out, ConnectedCluster{Name: c.Name, ResourceGroup: c.ResourceGroup, ID: c.ID, Kubeconfig: c.Backend.Kubeconfig()})
	}
	return out
}
