// Package up is the `gitopsim up` command: start the whole stack, write
// the endpoints file once it is ready, and run until interrupted.
package up

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"k8s.io/klog/v2"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/gitopsim/gitopsim/cmd/gitopsim/app/cli"
	"github.com/gitopsim/gitopsim/sim"
	"github.com/gitopsim/gitopsim/sim/agent"
	"github.com/gitopsim/gitopsim/sim/arm"
	"github.com/gitopsim/gitopsim/sim/clock"
	"github.com/gitopsim/gitopsim/sim/cluster"
	"github.com/gitopsim/gitopsim/sim/gitserver"
	"github.com/gitopsim/gitopsim/sim/helmrepo"
	"github.com/gitopsim/gitopsim/sim/policy"
	"github.com/gitopsim/gitopsim/sim/statedir"
	"github.com/gitopsim/gitopsim/sim/ui"
)

// stopTimeout bounds a clean shutdown.
const stopTimeout = time.Minute

type flags struct {
	workdir       string
	cluster       string
	kubeconfig    string
	context       string
	assetsDir     string
	apiserverPort int
	kindName      string
	kindImage     string
	timeScale     float64
	stateDir      string
	stateKey      string
	armPort       int
	gitSSHPort    int
	gitHTTPSPort  int
	helmPort      int
	gitBackend    string
	profile       string
	clusterName   string
	resourceGroup string
	noAgent       bool
	policyTiming  string
	clusters      int
	namePattern   string
	fleetGroups   []string
	fleetBackend  string
	fleetEtcd     string
	uiPort        int
	noUI          bool
	uiChanges     string
}

// NewCommand returns the up command.
func NewCommand(s *cli.Streams) *cobra.Command {
	f := &flags{}
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start the simulator and run until interrupted",
		Long: `Start the simulator: a Kubernetes API (envtest by default: kube-apiserver, etcd and
kube-controller-manager, no Docker needed), and the ARM provider, Git server and Arc
agent as they become available. When everything is ready, up prints a summary and
writes <workdir>/endpoints.json for clients; Ctrl-C (SIGINT) or SIGTERM stops it cleanly
and removes the file.`,
		Example: `  gitopsim up
  gitopsim up --workdir /tmp/demo --time-scale 60
  gitopsim up --cluster kubeconfig --kubeconfig ~/.kube/config
  gitopsim up --cluster kind --kind-image gitopsim/kind-node:` + cluster.KubernetesVersion + `   # after make kind-image`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.validate(cmd); err != nil {
				return &cli.UsageError{Command: cmd.CommandPath(), Err: err}
			}
			return run(s, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.workdir, "workdir", ".gitopsim", "directory for endpoints.json, kubeconfig, certificates and logs")
	fl.StringVar(&f.cluster, "cluster", cluster.Envtest, "Kubernetes backend: "+strings.Join(cluster.Backends, ", "))
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig of an existing cluster (with --cluster kubeconfig)")
	fl.StringVar(&f.context, "context", "", "context in --kubeconfig (default: its current context)")
	fl.StringVar(&f.assetsDir, "assets-dir", "", "directory with kube-apiserver, etcd and kube-controller-manager (envtest; default: $KUBEBUILDER_ASSETS, the setup-envtest store, then bin/k8s/"+cluster.KubernetesVersion+")")
	fl.IntVar(&f.apiserverPort, "apiserver-port", 0, "kube-apiserver port on 127.0.0.1 (envtest; 0 picks a free one)")
	fl.StringVar(&f.kindName, "kind-name", "gitopsim", "kind cluster name (with --cluster kind): reused when it exists and left in place; created otherwise and deleted when up stops")
	cli.KindImageFlag(cmd, &f.kindImage)
	fl.StringVar(&f.stateDir, "state-dir", "", "keep everything created through an API here across restarts, even with a fresh --workdir: ARM resources (encrypted), git repos, users, keys and tokens (encrypted); one gitopsim at a time (default: in memory only)")
	fl.StringVar(&f.stateKey, "state-key", "", "the 32-byte key that encrypts --state-dir's secrets, kept apart from it as a vault would keep it; made when missing (default: DIR/state.key)")
	fl.IntVar(&f.armPort, "arm-port", 0, "ARM provider port on 127.0.0.1 (0 picks a free one)")
	fl.IntVar(&f.gitSSHPort, "git-ssh-port", 0, "git SSH port on 127.0.0.1 (0 picks a free one)")
	fl.IntVar(&f.gitHTTPSPort, "git-https-port", 0, "git HTTPS port on 127.0.0.1 (0 picks a free one)")
	fl.IntVar(&f.helmPort, "helm-port", 0, "Helm chart repository port on 127.0.0.1 (0 picks a free one)")
	fl.StringVar(&f.gitBackend, "git-backend", gitserver.Native, "git service: native (Go) or reference (the git binaries)")
	fl.StringVar(&f.profile, "profile", "realistic", "agent intervals: realistic (config poll 30s, git poll and sync 5m) or fast (about a second)")
	fl.StringVar(&f.clusterName, "connected-cluster", sim.DefaultClusterName, "name of the connected cluster onboarded for the cluster backend")
	fl.StringVar(&f.resourceGroup, "resource-group", sim.DefaultResourceGroup, "resource group of the connected cluster")
	fl.BoolVar(&f.noAgent, "no-agent", false, "do not onboard a connected cluster or start its agent")
	fl.IntVar(&f.clusters, "clusters", 1, "connected clusters to onboard, each with its agent; above 1 they are named by --cluster-name-pattern and share the Kubernetes API (their cluster-scoped objects and namespaces of one name are one object)")
	fl.StringVar(&f.namePattern, "cluster-name-pattern", sim.DefaultFleetPattern, "names of the clusters with --clusters above 1: {n} is the number, {n:03} the number padded to 3 digits")
	fl.StringVar(&f.fleetBackend, "fleet-backend", "shared", "Kubernetes API of the clusters of --clusters: shared (the one API, labelled separation) or dedicated (a kube-apiserver and controller-manager per cluster on one etcd, about 120 MB each)")
	fl.StringVar(&f.fleetEtcd, "fleet-etcd", "", "with --fleet-backend dedicated: an etcd (http://host:port) the clusters' API servers use instead of one gitopsim starts; their keys live under /fleet/<cluster> and stay there with --state-dir")
	fl.StringSliceVar(&f.fleetGroups, "fleet-resource-groups", nil, "resource groups the clusters of --clusters go to in turn (default fleet-1, fleet-2, … one per 50 clusters)")
	fl.StringVar(&f.policyTiming, "policy-timing", policy.TimingDocumented, "Azure Policy delays: documented (5m assignment, 10m deployment, 15m evaluation, 24h cycle) or immediate (test mode)")
	fl.Float64Var(&f.timeScale, "time-scale", 1, "virtual seconds per real second for gitopsim's own timers (60: a minute a second); the web view can change it, pause and jump")
	fl.IntVar(&f.uiPort, "ui-port", 0, "web view port on 127.0.0.1 (0 picks a free one)")
	fl.BoolVar(&f.noUI, "no-ui", false, "do not serve the web view")
	fl.StringVar(&f.uiChanges, "ui-changes", "", "a directory of changes prepared for a demo, pushed from the web view with one click: NAME/ (files written into the repo) or NAME.txtar (its comment is the commit message; a file named -PATH deletes PATH)")
	return cmd
}

func (f *flags) validate(cmd *cobra.Command) error {
	if !cluster.ValidBackend(f.cluster) {
		return fmt.Errorf("invalid --cluster %q: valid values are %s", f.cluster, strings.Join(cluster.Backends, ", "))
	}
	changed := cmd.Flags().Changed
	if f.cluster == cluster.KubeconfigKind && f.kubeconfig == "" {
		return errors.New("--cluster kubeconfig needs --kubeconfig FILE")
	}
	for flag, backend := range map[string]string{
		"kubeconfig": cluster.KubeconfigKind, "context": cluster.KubeconfigKind,
		"assets-dir": cluster.Envtest, "apiserver-port": cluster.Envtest, "kind-name": cluster.Kind, "kind-image": cluster.Kind,
	} {
		if changed(flag) && f.cluster != backend {
			return fmt.Errorf("--%s only applies to --cluster %s (this run uses %s)", flag, backend, f.cluster)
		}
	}
	if changed("state-key") && f.stateDir == "" {
		return errors.New("--state-key goes with --state-dir")
	}
	if f.gitBackend != gitserver.Native && f.gitBackend != gitserver.Reference {
		return fmt.Errorf("invalid --git-backend %q: valid values are %s, %s", f.gitBackend, gitserver.Native, gitserver.Reference)
	}
	if f.noUI && (changed("ui-port") || changed("ui-changes")) {
		return errors.New("--ui-port and --ui-changes configure the web view; drop them or --no-ui")
	}
	if f.uiChanges != "" {
		if st, err := os.Stat(f.uiChanges); err != nil || !st.IsDir() {
			return fmt.Errorf("invalid --ui-changes %q: not a directory", f.uiChanges)
		}
	}
	for flag, port := range map[string]int{"ui-port": f.uiPort, "apiserver-port": f.apiserverPort, "arm-port": f.armPort, "git-ssh-port": f.gitSSHPort, "git-https-port": f.gitHTTPSPort, "helm-port": f.helmPort} {
		if port < 0 || port > 65535 {
			return fmt.Errorf("invalid --%s %d: must be 0-65535", flag, port)
		}
	}
	if _, err := agent.ProfileIntervals(f.profile); err != nil {
		return fmt.Errorf("invalid --profile %q: valid values are %s", f.profile, strings.Join(agent.Profiles, ", "))
	}
	if f.noAgent && (changed("connected-cluster") || changed("resource-group") || changed("profile")) {
		return errors.New("--connected-cluster, --resource-group and --profile configure the agent; drop them or --no-agent")
	}
	if f.clusters < 1 {
		return fmt.Errorf("invalid --clusters %d: at least 1 (--no-agent connects none)", f.clusters)
	}
	if f.clusters > 1 {
		if f.noAgent {
			return errors.New("--clusters and --no-agent contradict each other")
		}
		if changed("connected-cluster") || changed("resource-group") {
			return errors.New("with --clusters above 1 the clusters are named by --cluster-name-pattern and spread over --fleet-resource-groups; drop --connected-cluster and --resource-group")
		}
		if _, err := sim.FleetName(f.namePattern, 1); err != nil {
			return fmt.Errorf("invalid --cluster-name-pattern: %w", err)
		}
		if f.fleetBackend != "shared" && f.fleetBackend != "dedicated" {
			return fmt.Errorf("invalid --fleet-backend %q: valid values are shared, dedicated", f.fleetBackend)
		}
		if f.fleetEtcd != "" && f.fleetBackend != "dedicated" {
			return errors.New("--fleet-etcd goes with --fleet-backend dedicated")
		}
		if f.fleetEtcd != "" {
			o := fleetOptions(f)
			o.Workdir = f.workdir
			if _, err := cluster.NewFleet(o); err != nil {
				return fmt.Errorf("invalid --fleet-etcd: %w", err)
			}
		}
		if f.fleetBackend == "dedicated" && f.cluster != cluster.Envtest {
			return fmt.Errorf("--fleet-backend dedicated runs envtest's binaries; it cannot go with --cluster %s", f.cluster)
		}
	} else if changed("cluster-name-pattern") || changed("fleet-resource-groups") || changed("fleet-backend") || changed("fleet-etcd") {
		return errors.New("--cluster-name-pattern, --fleet-resource-groups, --fleet-backend and --fleet-etcd apply with --clusters above 1")
	}
	if _, err := policy.TimingProfile(f.policyTiming); err != nil {
		return fmt.Errorf("invalid --policy-timing: %w", err)
	}
	if !(f.timeScale > 0) || f.timeScale > clock.MaxScale {
		return fmt.Errorf("invalid --time-scale %v: must be a number above 0 and at most %d (1 is real time)", f.timeScale, clock.MaxScale)
	}
	return nil
}

func run(s *cli.Streams, f *flags) error {
	began := time.Now()
	log := s.Logger()
	// envtest logs through controller-runtime's global logger; route it to
	// ours, or it prints a warning that it was never set.
	ctrllog.SetLogger(logr.FromSlogHandler(log.Handler()))
	// client-go logs through klog, to stderr unless told: an API server
	// that goes away would print raw lines over gitopsim's log.
	klog.SetSlogLogger(log.With("component", "client-go"))
	// A clock the web view can pause, speed up and jump. Same-instant
	// work of a jump (every agent's poll at its end) runs a few at a time.
	clk, err := clock.NewControlled(clock.ControlledOptions{Scale: f.timeScale, Workers: 2 * runtime.NumCPU()})
	if err != nil {
		return err
	}
	timing, err := policy.TimingProfile(f.policyTiming)
	if err != nil {
		return err
	}
	// The state dir is locked for this process, and holds its own key.
	var state *statedir.Dir
	if f.stateDir != "" {
		state, err = statedir.Open(statedir.Options{
			Dir: f.stateDir, KeyFile: f.stateKey, Logger: log,
			// Before state format 1 the key lived in the work dir.
			LegacyKey: filepath.Join(f.workdir, "arm", "state.key"),
		})
		if err != nil {
			return err
		}
		defer state.Close()
		rememberedPorts(state, f, log)
	}
	sm, err := sim.New(sim.Options{
		Workdir: f.workdir,
		Clock:   clk,
		Logger:  log,
		Cluster: cluster.Options{
			Backend:         f.cluster,
			AssetsDir:       f.assetsDir,
			APIServerPort:   f.apiserverPort,
			KindClusterName: f.kindName,
			KindNodeImage:   f.kindImage,
			Kubeconfig:      f.kubeconfig,
			Context:         f.context,
		},
		State: state,
		ARM: arm.Options{
			Addr: loopback(f.armPort),
			// Clients time tokens on the wall clock; the simulated one
			// jumps.
			TokenClock: clock.Real(),
		},
		Helm:         helmrepo.Options{Addr: loopback(f.helmPort)},
		Fleet:        fleetOptions(f),
		Local:        sim.LocalCluster{Name: f.clusterName, ResourceGroup: f.resourceGroup, Disabled: f.noAgent || f.clusters > 1},
		AgentProfile: f.profile,
		PolicyTiming: &timing,
		Git: gitserver.Options{
			SSHAddr:   loopback(f.gitSSHPort),
			HTTPSAddr: loopback(f.gitHTTPSPort),
			Backend:   f.gitBackend,
		},
	})
	if err != nil {
		return err
	}
	if err := sm.Available(); err != nil {
		return err
	}

	// Signals: the first one stops the stack in order; later ones are
	// reported and ignored, because dying half way would orphan the
	// control-plane processes.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		sig, ok := <-sigs
		if !ok {
			return
		}
		log.Info("stopping", "signal", sig.String())
		cancel()
		for sig := range sigs {
			log.Warn("already stopping; waiting for the control plane to exit", "signal", sig.String())
		}
	}()

	// The recorder listens before anything starts, so the timeline has
	// the local cluster's first events.
	var rec *ui.Recorder
	if !f.noUI {
		rec = ui.NewRecorder(ui.RecorderOptions{Logger: log})
		defer rec.Attach(sm)()
	}

	log.Info("starting gitopsim", "workdir", sm.Workdir(), "cluster", f.cluster)
	if err := sm.Start(ctx); err != nil {
		if ctx.Err() != nil {
			log.Info("interrupted during start-up; everything started has been stopped")
			return nil
		}
		return err
	}
	if f.clusters > 1 {
		if err := onboardFleet(ctx, s, sm, f); err != nil {
			stopErr := sm.Stop(context.Background())
			if ctx.Err() != nil {
				log.Info("interrupted while connecting the fleet; everything started has been stopped")
				return stopErr
			}
			return errors.Join(err, stopErr)
		}
	}
	var view *ui.Server
	if rec != nil {
		if view, err = startUI(ctx, sm, rec, f, log); err != nil {
			return errors.Join(err, sm.Stop(context.Background()))
		}
	}
	if err := sm.WriteEndpoints(); err != nil {
		stopErr := sm.Stop(context.Background())
		return errors.Join(err, stopErr)
	}
	if state != nil {
		e := sm.Endpoints()
		savePorts(state, f, &e, log)
	}
	printSummary(s, sm, f, time.Since(began))

	<-ctx.Done()
	stopCtx, stopCancel := context.WithTimeout(context.Background(), stopTimeout)
	defer stopCancel()
	if view != nil {
		if err := view.Stop(stopCtx); err != nil {
			log.Warn("stopping the web view", "err", err)
		}
	}
	if err := sm.Stop(stopCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}

// startUI serves the web view and records its URL for endpoints.json.
func startUI(ctx context.Context, sm *sim.Sim, rec *ui.Recorder, f *flags, log *slog.Logger) (*ui.Server, error) {
	view, err := ui.New(ui.Options{Addr: loopback(f.uiPort), Sim: sm, Recorder: rec, Logger: log, Changes: f.uiChanges})
	if err != nil {
		return nil, err
	}
	if err := view.Start(ctx); err != nil {
		return nil, fmt.Errorf("start the web view: %w", err)
	}
	sm.SetUI(view.URL())
	return view, nil
}

// onboardFleet connects the clusters of --clusters, reporting progress
// on stderr about every tenth of the way.
func onboardFleet(ctx context.Context, s *cli.Streams, sm *sim.Sim, f *flags) error {
	groups := f.fleetGroups
	if len(groups) == 0 {
		for i := range (f.clusters + 49) / 50 {
			groups = append(groups, fmt.Sprintf("fleet-%d", i+1))
		}
	}
	began := time.Now()
	step := max(f.clusters/10, 1)
	_, err := sm.OnboardFleet(ctx, sim.FleetOptions{
		Count: f.clusters, NamePattern: f.namePattern, ResourceGroups: groups, Profile: f.profile, Dedicated: f.fleetBackend == "dedicated",
		Progress: func(done, total int) {
			if done%step == 0 || done == total {
				fmt.Fprintf(s.Err, "connected %d of %d clusters (%.1fs)\n", done, total, time.Since(began).Seconds())
			}
		},
	})
	return err
}

func loopback(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// statePort is a port a state dir remembers: its flag, and where the
// running stack says it listens.
type statePort struct {
	flag string
	port *int
	url  func(e *sim.Endpoints) string
}

func statePorts(f *flags) []statePort {
	return []statePort{
		{"arm-port", &f.armPort, func(e *sim.Endpoints) string { return e.ARM.URL }},
		{"git-ssh-port", &f.gitSSHPort, func(e *sim.Endpoints) string { return e.Git.SSHURL }},
		{"git-https-port", &f.gitHTTPSPort, func(e *sim.Endpoints) string { return e.Git.HTTPSURL }},
		{"helm-port", &f.helmPort, func(e *sim.Endpoints) string { return e.Helm.RepositoryURL }},
	}
}

// rememberedPorts gives each port flag left at 0 the port of the state
// dir's last run, when it is free: configurations stored there carry the
// git server's URLs, and clients the ARM and Helm ones.
func rememberedPorts(state *statedir.Dir, f *flags, log *slog.Logger) {
	last, err := state.Ports()
	if err != nil {
		log.Warn("the ports of the state dir's last run cannot be read; choosing new ones", "err", err)
	}
	for _, sp := range statePorts(f) {
		want := last[sp.flag]
		if *sp.port != 0 || want == 0 {
			continue
		}
		l, err := net.Listen("tcp", loopback(want))
		if err != nil {
			log.Warn("the port of the state dir's last run is taken; URLs stored with the old port (repository URLs of configurations) will not reach this run",
				"flag", "--"+sp.flag, "port", want, "err", err)
			continue
		}
		_ = l.Close()
		*sp.port = want
	}
}

// savePorts records the ports this run listens on in the state dir.
func savePorts(state *statedir.Dir, f *flags, e *sim.Endpoints, log *slog.Logger) {
	ports := map[string]int{}
	for _, sp := range statePorts(f) {
		if u, err := url.Parse(sp.url(e)); err == nil {
			if p, err := strconv.Atoi(u.Port()); err == nil {
				ports[sp.flag] = p
			}
		}
	}
	if err := state.SavePorts(ports); err != nil {
		log.Warn("record this run's ports in the state dir; the next run picks new ones", "err", err)
	}
}

// fleetOptions place the dedicated fleet's data: with --state-dir it is
// kept there (or, with --fleet-etcd, in that etcd) for the next run.
func fleetOptions(f *flags) cluster.FleetOptions {
	return cluster.FleetOptions{Workdir: subdir(f.stateDir, "fleet"), Keep: f.stateDir != "", EtcdURL: f.fleetEtcd}
}

func subdir(dir, name string) string {
	if dir == "" {
		return ""
	}
	return filepath.Join(dir, name)
}

func printSummary(s *cli.Streams, sm *sim.Sim, f *flags, took time.Duration) {
	e := sm.Endpoints()
	w := s.Out
	fmt.Fprintf(w, "gitopsim is up (ready in %.1fs)\n", took.Seconds())
	fmt.Fprintf(w, "  cluster     %s\n", e.Cluster.Backend)
	fmt.Fprintf(w, "  kubeconfig  %s\n", e.Cluster.Kubeconfig)
	fmt.Fprintf(w, "  arm         %s (subscription %s)\n", e.ARM.URL, e.ARM.SubscriptionID)
	fmt.Fprintf(w, "  git         %s  %s\n", e.Git.SSHURL, e.Git.HTTPSURL)
	fmt.Fprintf(w, "  helm repo   %s\n", e.Helm.RepositoryURL)
	const listed = 3
	for i, c := range e.ConnectedClusters {
		if i == listed {
			fmt.Fprintf(w, "  connected   … and %d more (all in %s)\n", len(e.ConnectedClusters)-listed, sm.EndpointsPath())
			break
		}
		fmt.Fprintf(w, "  connected   %s (resource group %s, agent profile %s)\n", c.Name, c.ResourceGroup, f.profile)
	}
	if e.UI != nil {
		fmt.Fprintf(w, "  web view    %s\n", e.UI.URL)
	}
	fmt.Fprintf(w, "  ca          %s\n", e.ARM.CAFile)
	fmt.Fprintf(w, "  endpoints   %s\n", sm.EndpointsPath())
	if f.timeScale != 1 {
		fmt.Fprintf(w, "  time        %gx (%s of virtual time per real minute)\n", f.timeScale, time.Duration(f.timeScale*float64(time.Minute)))
	}
	fmt.Fprintf(w, "Try: kubectl --kubeconfig %s get namespaces\n", e.Cluster.Kubeconfig)
	fmt.Fprintf(w, "     GIT_SSH_COMMAND='ssh -i %s -o UserKnownHostsFile=%s' git clone %s/<repo>.git\n", e.Git.SSHPrivateKeyFile, e.Git.KnownHostsFile, e.Git.SSHURL)
	fmt.Fprintf(w, "     helm repo add gitopsim %s --ca-file %s\n", e.Helm.RepositoryURL, e.Helm.CAFile)
	fmt.Fprintln(w, "Press Ctrl-C to stop.")
}
