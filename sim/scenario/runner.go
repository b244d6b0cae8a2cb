package scenario

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gitopsim/gitopsim/sim"
	"github.com/gitopsim/gitopsim/sim/arm"
	"github.com/gitopsim/gitopsim/sim/clock"
	"github.com/gitopsim/gitopsim/sim/cluster"
	"github.com/gitopsim/gitopsim/sim/policy"
)

// Options configure a Runner.
type Options struct {
	// Cluster configures the pooled Kubernetes control planes (backend
	// envtest by default, or kubeconfig). Scenarios share them one at a
	// time: a control plane is reset between scenarios, not restarted.
	Cluster cluster.Options
	// Parallel is how many scenarios run at once, each on its own control
	// plane; default 1.
	Parallel int
	// Clock is "virtual" (default: nothing sleeps, transcripts are
	// deterministic), "real", or "scaled:<k>" (k virtual seconds per real
	// second, for demos).
	Clock string
	// ConcurrentTasks lets up to that many tasks due at the same instant
	// of the virtual clock run at once (clock.Virtual.SetWorkers), which
	// is what makes a fleet of agents fast on several cores; 0 and 1 run
	// them one by one and keep transcripts reproducible.
	ConcurrentTasks int
	// Workdir holds each scenario's simulator state; default a temporary
	// directory removed by Close.
	Workdir string
	// ReportDir receives a diagnostics bundle per failed scenario:
	// <ReportDir>/<scenario>/. Default <Workdir>/reports, or
	// .gitopsim/reports when Workdir is temporary (it outlives the run).
	ReportDir string
	// Out receives the human timeline; nil discards it.
	Out io.Writer
	// Logger is for the runner's own messages; nil discards.
	Logger *slog.Logger
	// View, when set, is called with each scenario's simulator before it
	// starts (to attach a ui.Recorder, serve a web view); the function it
	// returns is called with the result once the scenario ran, before the
	// simulator stops.
	View func(name string, s *sim.Sim) (done func(*Result))
	// Golden compares each transcript with the file beside the scenario
	// (see GoldenPath) and fails the scenario on a difference; with
	// UpdateGolden the files are rewritten instead.
	Golden, UpdateGolden bool
}

// Runner runs scenario files on pooled control planes.
type Runner struct {
	opts    Options
	pool    *pool
	tmp     bool
	outMu   sync.Mutex
	seqMu   sync.Mutex
	seq     int
	scaled  float64
	closeMu sync.Mutex
}

// New validates opts. Nothing starts until Run.
func New(opts Options) (*Runner, error) {
	if opts.Parallel <= 0 {
		opts.Parallel = 1
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	r := &Runner{opts: opts}
	switch k, scaled := strings.CutPrefix(opts.Clock, "scaled:"); {
	case opts.Clock == "" || opts.Clock == "virtual" || opts.Clock == "real":
	case scaled:
		f, err := strconv.ParseFloat(k, 64)
		if err == nil {
			_, err = clock.Scaled(f)
		}
		if err != nil {
			return nil, fmt.Errorf("scenario: clock %q: the scale must be a number above 0 and at most %d, as in scaled:60", opts.Clock, clock.MaxScale)
		}
		r.scaled = f
	default:
		return nil, fmt.Errorf("scenario: clock %q: want virtual, real or scaled:<k>", opts.Clock)
	}
	if r.opts.Workdir == "" {
		d, err := os.MkdirTemp("", "gitopsim-run-")
		if err != nil {
			return nil, fmt.Errorf("scenario: workdir: %w", err)
		}
		r.opts.Workdir, r.tmp = d, true
	}
	if r.opts.ReportDir == "" {
		r.opts.ReportDir = filepath.Join(r.opts.Workdir, "reports")
		if r.tmp {
			r.opts.ReportDir = filepath.Join(".gitopsim", "reports")
		}
	}
	copts := opts.Cluster
	if copts.Logger == nil {
		copts.Logger = opts.Logger
	}
	r.pool = &pool{opts: copts, dir: filepath.Join(r.opts.Workdir, "control-planes"), log: opts.Logger}
	return r, nil
}

// Available says why the control planes cannot start here, or nil.
func (r *Runner) Available() error {
	b, err := cluster.New(r.poolOptions("probe"))
	if err != nil {
		return err
	}
	return b.Available()
}

func (r *Runner) poolOptions(name string) cluster.Options {
	o := r.pool.opts
	o.Workdir = filepath.Join(r.pool.dir, name)
	return o
}

// Close stops the pooled control planes and removes a temporary workdir.
func (r *Runner) Close(ctx context.Context) error {
	r.closeMu.Lock()
	defer r.closeMu.Unlock()
	err := r.pool.close(ctx)
	if r.tmp {
		_ = os.RemoveAll(r.opts.Workdir)
	}
	return err
}

// RunFiles loads every file first (all problems reported at once, nothing
// runs if one is broken), then runs them.
func (r *Runner) RunFiles(ctx context.Context, files []string) ([]*Result, error) {
	var scs []*Scenario
	var errs []error
	names := map[string]string{}
	for _, f := range files {
		sc, err := Load(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if other, dup := names[sc.Metadata.Name]; dup {
			errs = append(errs, &Error{Pos: sc.Metadata.Pos, Field: "metadata.name", Msg: fmt.Sprintf("%q is also the name of %s: names must be unique in one run", sc.Metadata.Name, other)})
			continue
		}
		names[sc.Metadata.Name] = f
		scs = append(scs, sc)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return r.Run(ctx, scs), nil
}

// Run runs scenarios, Parallel at a time, and returns their results in
// the order given.
func (r *Runner) Run(ctx context.Context, scs []*Scenario) []*Result {
	results := make([]*Result, len(scs))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(r.opts.Parallel, len(scs)) {
		wg.Go(func() {
			for i := range next {
				results[i] = r.runOne(ctx, scs[i])
			}
		})
	}
	for i := range scs {
		next <- i
	}
	close(next)
	wg.Wait()
	return results
}

func (r *Runner) clock() clock.Clock {
	switch {
	case r.opts.Clock == "real":
		return clock.Real()
	case r.scaled > 0:
		c, _ := clock.Scaled(r.scaled) // validated in New
		return c
	}
	v := clock.NewVirtual(clock.Epoch)
	v.SetWorkers(r.opts.ConcurrentTasks)
	return v
}

// runOne runs a scenario on a pooled control plane with its own ARM, git
// server and agents.
func (r *Runner) runOne(ctx context.Context, sc *Scenario) *Result {
	var out bytes.Buffer
	tl := io.Writer(&out)
	if r.opts.Parallel == 1 {
		// One at a time: stream the timeline as it happens.
		tl = io.MultiWriter(&out, lockedWriter{&r.outMu, r.opts.Out})
	}
	wall := clock.Real()
	t0 := wall.Now()
	fmt.Fprintf(tl, "=== %s (%s)\n", sc.Metadata.Name, sc.Pos.File)
	res := r.execute(ctx, sc, tl)
	res.Wall = wall.Since(t0)
	verdict := "PASS"
	if !res.Passed {
		verdict = "FAIL"
	}
	fmt.Fprintf(tl, "--- %s %s: %d steps, virtual %s, wall %s\n", verdict, sc.Metadata.Name, len(res.Steps), FormatOffset(res.Virtual), roundWall(res.Wall))
	if res.Diagnostics != "" {
		fmt.Fprintf(tl, "    diagnostics: %s\n", res.Diagnostics)
	}
	res.Timeline = out.String()
	if res.Diagnostics != "" {
		_ = os.WriteFile(filepath.Join(res.Diagnostics, "timeline.txt"), out.Bytes(), 0o644)
		_ = os.WriteFile(filepath.Join(res.Diagnostics, "transcript.json"), res.Transcript(), 0o644)
	}
	if r.opts.Parallel > 1 {
		r.outMu.Lock()
		_, _ = r.opts.Out.Write(out.Bytes())
		r.outMu.Unlock()
	}
	return res
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (r *Runner) execute(ctx context.Context, sc *Scenario, tl io.Writer) *Result {
	fail := func(err error) *Result {
		fmt.Fprintf(tl, "  setup failed: %v\n", err)
		return &Result{Name: sc.Metadata.Name, File: sc.Pos.File, Failures: []string{"setup: " + err.Error()}}
	}
	plane, err := r.pool.acquire(ctx)
	if err != nil {
		return fail(err)
	}
	r.seqMu.Lock()
	r.seq++
	wd := filepath.Join(r.opts.Workdir, fmt.Sprintf("%03d-%s", r.seq, sc.Metadata.Name))
	r.seqMu.Unlock()
	var dedicated []cluster.Backend
	defer func() {
		for _, b := range dedicated {
			_ = b.Stop(context.WithoutCancel(ctx))
		}
		r.pool.release(plane)
	}()
	if err := os.MkdirAll(wd, 0o755); err != nil {
		return fail(err)
	}
	logFile, err := os.Create(filepath.Join(wd, "gitopsim.log"))
	if err != nil {
		return fail(err)
	}
	defer logFile.Close()
	s, err := NewSim(wd, sc.Metadata.Name, r.clock(), slog.New(slog.NewTextHandler(logFile, nil)), plane.backend, policyTiming(sc.Spec.Policy))
	if err != nil {
		return fail(err)
	}
	viewDone := func(*Result) {}
	if r.opts.View != nil {
		viewDone = r.opts.View(sc.Metadata.Name, s)
	}
	if err := s.Start(ctx); err != nil {
		viewDone(nil)
		return fail(fmt.Errorf("start simulator: %w", err))
	}
	e := env{sim: s, clk: s.Clock(), timeline: tl, newBackend: func(ctx context.Context, name string) (cluster.Backend, error) {
		o := r.pool.opts
		o.Backend, o.Workdir = cluster.Envtest, filepath.Join(wd, "cluster-"+name)
		b, err := cluster.New(o)
		if err != nil {
			return nil, err
		}
		if err := b.Start(ctx); err != nil {
			return nil, fmt.Errorf("start dedicated control plane: %w", err)
		}
		dedicated = append(dedicated, b)
		return b, nil
	}}
	res := execute(ctx, e, sc)
	// The golden comparison comes before the diagnostics, so that a
	// transcript that drifted (a timing that is not deterministic) is
	// explained by the agent's events and log like any other failure.
	if r.opts.Golden || r.opts.UpdateGolden {
		if err := CheckGolden(res, r.opts.UpdateGolden); err != nil {
			res.Passed = false
			res.Failures = append(res.Failures, err.Error())
			fmt.Fprintf(tl, "  golden: %v\n", err)
		}
	}
	viewDone(res)
	if !res.Passed {
		dir := filepath.Join(r.opts.ReportDir, sc.Metadata.Name)
		if err := writeDiagnostics(ctx, dir, wd, s, sc, res); err != nil {
			fmt.Fprintf(tl, "  diagnostics incomplete: %v\n", err)
		}
		res.Diagnostics = dir
	}
	if err := s.Stop(context.WithoutCancel(ctx)); err != nil {
		res.Passed = false
		res.Failures = append(res.Failures, "cleanup: stop simulator: "+err.Error())
	}
	return res
}

// NewSim makes the simulator one scenario runs on: its own ARM (with a
// subscription derived from the scenario's name, so ids and transcripts
// are stable), git server and clock, on a shared Kubernetes backend, with
// Azure Policy timed as timing says (nil: as documented).
func NewSim(workdir, name string, clk clock.Clock, log *slog.Logger, backend cluster.Backend, timing *policy.Timing) (*sim.Sim, error) {
	return sim.New(sim.Options{
		Workdir: workdir, Clock: clk, Logger: log, PolicyTiming: timing,
		Local:         sim.LocalCluster{Disabled: true},
		SharedCluster: backend,
		ARM: arm.Options{
			SubscriptionID: stableUUID("subscription/" + name),
			TenantID:       stableUUID("tenant/" + name),
			// Tokens outlive the virtual months a scenario may skip over.
			TokenLifetime: 10 * 365 * 24 * time.Hour,
		},
	})
}

// stableUUID is a version-4-shaped UUID derived from s.
func stableUUID(s string) string {
	h := sha256.Sum256([]byte(s))
	h[6] = h[6]&0x0f | 0x40
	h[8] = h[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

// Run loads a scenario file and runs it on s, a started simulator: the
// way to use a scenario from your own Ginkgo suite. The scenario's
// clusters join s (on s's cluster backend), its repos are created on s's
// git server, and time moves on s's clock (advanced if it is virtual).
// Its timeline goes to timeline when not nil.
func Run(ctx context.Context, s *sim.Sim, file string, timeline io.Writer) (*Result, error) {
	sc, err := Load(file)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	w := io.Writer(&buf)
	if timeline != nil {
		w = io.MultiWriter(&buf, timeline)
	}
	res := execute(ctx, env{sim: s, clk: s.Clock(), timeline: w}, sc)
	res.Timeline = buf.String()
	return res, nil
}
