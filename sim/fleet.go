package sim

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"sync"

	"github.com/gitopsim/gitopsim/sim/agent"
	"github.com/gitopsim/gitopsim/sim/cluster"
)

// FleetOptions describes many connected clusters onboarded at once, each
// with its own agent: on the simulator's Kubernetes API (the shared
// backend: every agent touches only its own objects, but cluster-scoped
// objects and namespaces of the same name are the same object for all),
// or each on its own API (Dedicated).
type FleetOptions struct {
	// Count is how many clusters to connect.
	Count int
	// NamePattern names cluster n (from 1): "{n}" is replaced by the
	// number, "{n:03}" by the number padded with zeros to 3 digits.
	// Default "cluster-{n:03}".
	NamePattern string
	// ResourceGroups receive the clusters in turn (cluster n goes to
	// ResourceGroups[(n-1) % len]); default the simulator's default
	// resource group.
	ResourceGroups []string
	// Location defaults to eastus.
	Location string
	// Profile and Intervals override the simulator's agent settings.
	Profile   string
	Intervals agent.Intervals
	// Dedicated gives each cluster its own Kubernetes API: a
	// kube-apiserver and minimal kube-controller-manager of its own on the
	// simulator's fleet etcd (cluster.Fleet; envtest binaries, about 120
	// MB and 3 s of a core per cluster), instead of the shared one.
	Dedicated bool
	// Parallel is how many clusters connect at once; default 8, or twice the
	// number of cores with Dedicated.
	Parallel int
	// Progress, when set, is called after each cluster has connected,
	// from the goroutine that connected it.
	Progress func(done, total int)
}

// DefaultFleetPattern names a fleet's clusters when FleetOptions does not.
const DefaultFleetPattern = "cluster-{n:03}"

var fleetNumberRE = regexp.MustCompile(`\{n(?::0([1-9]))?\}`)

// FleetName is the name NamePattern gives cluster n. A pattern without
// "{n}" is an error: every cluster would have the same name.
func FleetName(pattern string, n int) (string, error) {
	if !fleetNumberRE.MatchString(pattern) {
		return "", fmt.Errorf("name pattern %q has no {n} (or {n:03}) for the cluster's number", pattern)
	}
	return fleetNumberRE.ReplaceAllStringFunc(pattern, func(m string) string {
		w := fleetNumberRE.FindStringSubmatch(m)[1]
		if w == "" {
			return strconv.Itoa(n)
		}
		width, _ := strconv.Atoi(w)
		return fmt.Sprintf("%0*d", width, n)
	}), nil
}

// OnboardFleet connects opts.Count clusters, Parallel at a time, and
// returns them in number order. On the first error it stops connecting
// and returns it; the clusters already connected stay (their agents stop
// with the simulator).
func (s *Sim) OnboardFleet(ctx context.Context, opts FleetOptions) ([]*Connected, error) {
	if opts.Count < 1 {
		return nil, fmt.Errorf("sim: fleet of %d clusters: at least one", opts.Count)
	}
	if opts.NamePattern == "" {
		opts.NamePattern = DefaultFleetPattern
	}
	if len(opts.ResourceGroups) == 0 {
		opts.ResourceGroups = []string{DefaultResourceGroup}
	}
	if opts.Parallel < 1 {
		opts.Parallel = 8
		if opts.Dedicated {
			// Starting an API server is mostly CPU, partly waiting on
			// etcd and on readiness polls: twice the cores measured
			// 1.4 s per cluster on 2 cores, against 1.65 s at one per
			// core; more only slows each start down.
			opts.Parallel = 2 * runtime.NumCPU()
		}
	}
	names := make([]string, opts.Count)
	for i := range names {
		name, err := FleetName(opts.NamePattern, i+1)
		if err != nil {
			return nil, fmt.Errorf("sim: fleet: %w", err)
		}
		names[i] = name
	}
	if opts.Dedicated {
		// The fleet's etcd first, once, before the clusters race for it.
		if _, err := s.dedicatedFleet(ctx); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	out := make([]*Connected, opts.Count)
	var (
		mu       sync.Mutex
		firstErr error
		done     int
		wg       sync.WaitGroup
	)
	sem := make(chan struct{}, opts.Parallel)
	for i, name := range names {
		sem <- struct{}{}
		mu.Lock()
		failed := firstErr != nil
		mu.Unlock()
		if failed || ctx.Err() != nil {
			<-sem
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			o := OnboardOptions{
				Name: name, ResourceGroup: opts.ResourceGroups[i%len(opts.ResourceGroups)], Location: opts.Location,
				Profile: opts.Profile, Intervals: opts.Intervals,
			}
			var err error
			if opts.Dedicated {
				o.Backend, err = s.FleetAPI(ctx, name)
			}
			var c *Connected
			if err == nil {
				c, err = s.Onboard(ctx, o)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = fmt.Errorf("sim: fleet: cluster %s: %w", name, err)
					cancel()
				}
				return
			}
			out[i] = c
			done++
			if opts.Progress != nil {
				opts.Progress(done, opts.Count)
			}
		}()
	}
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = fmt.Errorf("sim: fleet: %w", ctx.Err())
	}
	if firstErr != nil {
		return nil, firstErr
	}
	s.inNumberOrder(out)
	return out, nil
}

// inNumberOrder puts a fleet's clusters, connected in whatever order
// they finished, back in number order in Connected and the endpoints
// file, where the fleet's slots are.
func (s *Sim) inNumberOrder(fleet []*Connected) {
	s.mu.Lock()
	defer s.mu.Unlock()
	member := make(map[*Connected]bool, len(fleet))
	for _, c := range fleet {
		member[c] = true
	}
	next := 0
	for i, c := range s.connected {
		if member[c] {
			s.connected[i] = fleet[next]
			next++
		}
	}
}

// dedicatedFleet returns the simulator's fleet of Kubernetes APIs,
// starting its etcd the first time; it stops with the simulator, after
// the agents that use it.
func (s *Sim) dedicatedFleet(ctx context.Context) (*cluster.Fleet, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fleet != nil {
		return s.fleet, nil
	}
	if s.lock == nil {
		return nil, errors.New("sim: not started")
	}
	fo := s.opts.Fleet
	if fo.Workdir == "" {
		fo.Workdir = filepath.Join(s.workdir, "fleet")
	}
	if fo.AssetsDir == "" {
		fo.AssetsDir = s.opts.Cluster.AssetsDir
	}
	if fo.Logger == nil {
		fo.Logger = s.log
	}
	f, err := cluster.NewFleet(fo)
	if err != nil {
		return nil, err
	}
	if err := f.Start(ctx); err != nil {
		return nil, fmt.Errorf("sim: fleet: %w", err)
	}
	s.fleet = f
	s.running = append(s.running, component{"fleet", func(ctx context.Context) error {
		s.fleet = nil
		return f.Stop(ctx)
	}})
	return f, nil
}

// FleetAPI starts a Kubernetes API of its own for a connected cluster
// named name, on the simulator's fleet etcd (see FleetOptions.Dedicated),
// for OnboardOptions.Backend. It stops with the simulator.
func (s *Sim) FleetAPI(ctx context.Context, name string) (cluster.Backend, error) {
	f, err := s.dedicatedFleet(ctx)
	if err != nil {
		return nil, err
	}
	return f.Add(ctx, name)
}
