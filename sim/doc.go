// Package sim wires gitopsim's components into one simulator: a Kubernetes
// API (sim/cluster) now, and the ARM provider, the git server and the Arc
// agent as they arrive. Sim starts them in dependency order, stops them in
// reverse, and describes them in an Endpoints value that `gitopsim up`
// writes to <workdir>/endpoints.json for real clients.
//
// It is also the entry point for other people's test suites:
//
//	s, err := sim.New(sim.Options{Workdir: dir})
//	...
//	if err := s.Start(ctx); err != nil { ... }
//	defer s.Stop(context.Background())
//	cfg := s.Cluster().AdminConfig()
//
// Only this package knows all components; they meet through small
// interfaces declared by their consumers.
package sim
