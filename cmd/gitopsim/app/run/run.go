// Package run is the `gitopsim run` command: run scenario files and report
// a timeline, JUnit XML and deterministic transcripts.
package run

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"k8s.io/klog/v2"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/gitopsim/gitopsim/cmd/gitopsim/app/cli"
	"github.com/gitopsim/gitopsim/sim/cluster"
	"github.com/gitopsim/gitopsim/sim/scenario"
)

// ErrFailed is returned when a scenario failed; the reports say which.
var ErrFailed = errors.New("scenarios failed")

type flags struct {
	parallel     int
	clock        string
	tasks        int
	junit        string
	transcript   string
	reportDir    string
	workdir      string
	cluster      string
	kubeconfig   string
	assetsDir    string
	kindName     string
	kindImage    string
	golden       bool
	updateGolden bool
	html         string
	ui           bool
	uiPort       int
}

// NewCommand returns the run command.
func NewCommand(s *cli.Streams) *cobra.Command {
	f := &flags{}
	cmd := &cobra.Command{
		Use:   "run FILE|DIR... ",
		Short: "Run scenario files and report a timeline, JUnit XML and transcripts",
		Long: `Run scenario files (apiVersion gitopsim.dev/v1alpha1, kind Scenario; see
scenarios/README.md). Every file is checked before anything runs. Each scenario gets
its own ARM subscription, git server, connected clusters and agents; Kubernetes control
planes are pooled and reset between scenarios. Time is virtual unless --clock says
otherwise: "48 hours later" costs only the work done in it.

The timeline goes to stdout. The exit code is 0 only if every scenario passed.`,
		Example: `  gitopsim run scenarios/
  gitopsim run -p 2 --junit out/junit.xml scenarios/*.yaml
  gitopsim run --clock scaled:60 scenarios/offline-agent.yaml
  gitopsim run --golden scenarios/          # compare with scenarios/*.golden
  gitopsim run --update-golden scenarios/   # refresh them`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.parallel < 1 {
				return &cli.UsageError{Command: cmd.CommandPath(), Err: fmt.Errorf("invalid -p %d: run at least one scenario at a time", f.parallel)}
			}
			if f.tasks < 1 {
				return &cli.UsageError{Command: cmd.CommandPath(), Err: fmt.Errorf("invalid --concurrent-tasks %d: at least 1", f.tasks)}
			}
			if !cluster.ValidBackend(f.cluster) {
				return &cli.UsageError{Command: cmd.CommandPath(), Err: fmt.Errorf("invalid --cluster %q: valid values are %s", f.cluster, strings.Join(cluster.Backends, ", "))}
			}
			for flag, backend := range map[string]string{"kubeconfig": cluster.KubeconfigKind, "assets-dir": cluster.Envtest, "kind-name": cluster.Kind, "kind-image": cluster.Kind} {
				if cmd.Flags().Changed(flag) && f.cluster != backend {
					return &cli.UsageError{Command: cmd.CommandPath(), Err: fmt.Errorf("--%s only applies to --cluster %s (this run uses %s)", flag, backend, f.cluster)}
				}
			}
			if f.ui && f.parallel > 1 {
				return &cli.UsageError{Command: cmd.CommandPath(), Err: errors.New("--ui shows one scenario at a time: use -p 1")}
			}
			if cmd.Flags().Changed("ui-port") && !f.ui {
				return &cli.UsageError{Command: cmd.CommandPath(), Err: errors.New("--ui-port goes with --ui")}
			}
			if f.uiPort < 0 || f.uiPort > 65535 {
				return &cli.UsageError{Command: cmd.CommandPath(), Err: fmt.Errorf("invalid --ui-port %d: must be 0-65535", f.uiPort)}
			}
			if f.cluster == cluster.KubeconfigKind && f.parallel > 1 {
				return &cli.UsageError{Command: cmd.CommandPath(), Err: errors.New("--cluster kubeconfig has one cluster: use -p 1")}
			}
			return run(cmd.Context(), s, f, args)
		},
	}
	fl := cmd.Flags()
	fl.IntVarP(&f.parallel, "parallel", "p", 1, "scenarios run at once, each on its own control plane")
	fl.StringVar(&f.clock, "clock", "virtual", "virtual (nothing sleeps), real, or scaled:<k> (k virtual seconds per second)")
	fl.IntVar(&f.tasks, "concurrent-tasks", 1, "on the virtual clock, run up to N tasks due at the same instant at once (agents of a fleet); above 1 transcripts are no longer byte-for-byte reproducible")
	fl.StringVar(&f.junit, "junit", "", "write JUnit XML here (one testcase per scenario)")
	fl.StringVar(&f.transcript, "transcript", "", "write the deterministic JSON transcript(s) here")
	fl.StringVar(&f.reportDir, "report-dir", "", "diagnostics bundles of failed scenarios go to DIR/<scenario>/ (default <workdir>/reports)")
	fl.StringVar(&f.workdir, "workdir", "", "scenario state and control planes (default: a temporary directory, removed at the end)")
	fl.StringVar(&f.cluster, "cluster", cluster.Envtest, "Kubernetes backend: envtest, kind (one cluster per -p, <kind-name>-1, -2, …) or kubeconfig")
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig of an existing cluster (with --cluster kubeconfig)")
	fl.StringVar(&f.assetsDir, "assets-dir", "", "directory with kube-apiserver, etcd and kube-controller-manager (envtest)")
	fl.StringVar(&f.kindName, "kind-name", "gitopsim-run", "prefix of the kind clusters' names (with --cluster kind): <prefix>-1 … are reused when they exist and reset after the run, created otherwise and deleted after it")
	cli.KindImageFlag(cmd, &f.kindImage)
	fl.BoolVar(&f.golden, "golden", false, "fail a scenario whose transcript differs from its .golden file")
	fl.BoolVar(&f.updateGolden, "update-golden", false, "rewrite each scenario's .golden file from this run")
	fl.StringVar(&f.html, "html", "", "write the timeline of every scenario, with its measured delays and failed steps, as one self-contained HTML page here")
	fl.BoolVar(&f.ui, "ui", false, "serve the web view of the scenario running now (with --clock scaled:<k> its clock can be paused and jumped), then the run's report until Ctrl-C")
	fl.IntVar(&f.uiPort, "ui-port", 0, "web view port on 127.0.0.1 with --ui (0 picks a free one)")
	return cmd
}

func run(ctx context.Context, s *cli.Streams, f *flags, args []string) error {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := s.Logger()
	ctrllog.SetLogger(logr.FromSlogHandler(log.Handler()))
	// client-go logs through klog, to stderr unless told: an API server
	// that goes away would print raw lines over gitopsim's log.
	klog.SetSlogLogger(log.With("component", "client-go"))
	files, err := scenario.Files(args)
	if err != nil {
		return err
	}
	views, err := newViews(s, f, log)
	if err != nil {
		return err
	}
	r, err := scenario.New(scenario.Options{
		Cluster: cluster.Options{Backend: f.cluster, Kubeconfig: f.kubeconfig, AssetsDir: f.assetsDir,
			KindClusterName: f.kindName, KindNodeImage: f.kindImage},
		Parallel: f.parallel, Clock: f.clock, ConcurrentTasks: f.tasks, Workdir: f.workdir, ReportDir: f.reportDir,
		Out: s.Out, Logger: log, Golden: f.golden, UpdateGolden: f.updateGolden, View: views.view(),
	})
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if err := r.Close(cctx); err != nil {
			log.Warn("stopping control planes", "err", err)
		}
	}()
	if err := r.Available(); err != nil {
		return fmt.Errorf("cannot run scenarios here: %w", err)
	}
	results, err := r.RunFiles(ctx, files)
	if err != nil {
		return err
	}
	if f.junit != "" {
		if err := scenario.WriteJUnitFile(f.junit, results); err != nil {
			return fmt.Errorf("write junit: %w", err)
		}
	}
	if f.transcript != "" {
		if err := scenario.WriteTranscripts(f.transcript, results); err != nil {
			return fmt.Errorf("write transcript: %w", err)
		}
	}
	if f.html != "" {
		if err := views.writeReport(f.html); err != nil {
			return fmt.Errorf("write html report: %w", err)
		}
		fmt.Fprintf(s.Out, "HTML report: %s\n", f.html)
	}
	failed := 0
	for _, res := range results {
		if !res.Passed {
			failed++
		}
	}
	fmt.Fprintf(s.Out, "\n%d scenarios: %d passed, %d failed\n", len(results), len(results)-failed, failed)
	for _, res := range results {
		if !res.Passed {
			fmt.Fprintf(s.Out, "  FAIL %s (%s)\n", res.Name, res.File)
			for _, msg := range res.Failures {
				fmt.Fprintf(s.Out, "%s\n", indent(msg))
			}
			if res.Diagnostics != "" {
				fmt.Fprintf(s.Out, "    diagnostics: %s\n", res.Diagnostics)
			}
		}
	}
	if f.ui && ctx.Err() == nil {
		// The run is over, the view stays: a run on virtual time is done
		// in seconds, so its report is what a presenter shows.
		if err := views.serveReport(ctx); err != nil {
			log.Warn("web view: cannot serve the run's report", "err", err)
		}
	}
	if failed > 0 {
		return fmt.Errorf("%w: %d of %d", ErrFailed, failed, len(results))
	}
	return nil
}

func indent(s string) string { return "    " + strings.ReplaceAll(s, "\n", "\n    ") }
