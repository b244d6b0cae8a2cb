package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/gitopsim/gitopsim/sim/clock"
	"github.com/gitopsim/gitopsim/sim/internal/atomicfile"
	"github.com/gitopsim/gitopsim/sim/internal/pki"
)

// ErrPortInUse means a port asked for explicitly is taken.
var ErrPortInUse = errors.New("port already in use")

const (
	startTimeout = time.Minute
	stopTimeout  = 20 * time.Second
	// kcmReadyTimeout bounds the wait for the controller-manager's first
	// visible work (the default ServiceAccount).
	kcmReadyTimeout = time.Minute
	adminUser       = "gitopsim-admin"
)

// envtestBackend runs etcd and kube-apiserver through controller-runtime's
// envtest, and kube-controller-manager beside them.
type envtestBackend struct {
	opts Options
	log  *slog.Logger
	// wall is for certificates and process timeouts: the API server checks
	// both against the wall clock whatever clock the simulation runs on.
	wall clock.Clock

	assetsOnce sync.Once
	assets     *Assets
	assetsErr  error

	adminAccess

	// etcdURL and etcdPrefix are set for a member of a Fleet: its API
	// server keeps its data under its own prefix of the fleet's etcd, and
	// only the API server and controller-manager are its own.
	etcdURL    *url.URL
	etcdPrefix string
	// startLimit replaces startTimeout for a member: its start shares the
	// cores with every member already running.
	startLimit time.Duration
	// goEnv is the Go runtime's environment (GOGC=...) for a member's
	// kube-apiserver and kube-controller-manager; empty leaves gitopsim's.
	goEnv []string

	mu       sync.Mutex
	plane    *envtest.ControlPlane
	authn    *caAuthn
	kcm      *exec.Cmd
	kcmDone  chan struct{}
	kcmErr   error
	logFiles []*os.File
	// apiStopped says StopAPIServer stopped the API server (restart.go).
	apiStopped bool
}

func newEnvtest(opts Options) (*envtestBackend, error) {
	if opts.APIServerPort < 0 || opts.APIServerPort > 65535 {
		return nil, fmt.Errorf("cluster: kube-apiserver port %d out of range 0-65535", opts.APIServerPort)
	}
	return &envtestBackend{opts: opts, log: opts.Logger.With("component", "cluster", "backend", Envtest), wall: clock.Real()}, nil
}

func (b *envtestBackend) Name() string { return Envtest }

// Available reports whether the control-plane binaries can be found.
func (b *envtestBackend) Available() error {
	_, err := b.findAssets()
	return err
}

func (b *envtestBackend) findAssets() (*Assets, error) {
	b.assetsOnce.Do(func() { b.assets, b.assetsErr = FindAssets(b.opts.AssetsDir) })
	return b.assets, b.assetsErr
}

func (b *envtestBackend) Start(ctx context.Context) (err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.plane != nil {
		return errors.New("envtest: already started")
	}
	assets, err := b.findAssets()
	if err != nil {
		return err
	}
	if p := b.opts.APIServerPort; p != 0 {
		if err := checkPortFree(p); err != nil {
			return fmt.Errorf("kube-apiserver port 127.0.0.1:%d: %w (pick another with --apiserver-port, or 0 for any free port)", p, err)
		}
	}
	dir := clusterDir(b.opts.Workdir)
	if killed := killLeftovers(b.opts.Workdir); len(killed) > 0 {
		b.log.Warn("killed control-plane processes left by an earlier run in this workdir", "processes", killed)
	}
	// A fresh control plane every start: envtest reuses certificates it
	// finds in CertDir and then cannot tell its CA.
	for _, sub := range []string{"apiserver", "etcd"} {
		if err := os.RemoveAll(filepath.Join(dir, sub)); err != nil {
			return fmt.Errorf("envtest: clean %s: %w", sub, err)
		}
	}
	defer func() {
		if err != nil {
			b.stopLocked()
		}
	}()

	apiLog, err := b.openLog("kube-apiserver")
	if err != nil {
		return err
	}
	etcdLog, err := b.openLog("etcd")
	if err != nil {
		return err
	}
	ca, err := pki.NewCA("gitopsim-cluster-client-ca", b.wall.Now())
	if err != nil {
		return fmt.Errorf("envtest: %w", err)
	}
	b.authn = &caAuthn{ca: ca, now: b.wall.Now}
	limit := startTimeout
	if b.startLimit > 0 {
		limit = b.startLimit
	}
	api := &envtest.APIServer{
		Path:         assets.APIServer(),
		CertDir:      filepath.Join(dir, "apiserver"),
		StartTimeout: limit,
		StopTimeout:  stopTimeout,
		Out:          apiLog,
		Err:          apiLog,
	}
	api.SecureServing.Authn = b.authn
	if b.opts.APIServerPort != 0 {
		api.SecureServing.ListenAddr = envtest.ListenAddr{Address: "127.0.0.1", Port: strconv.Itoa(b.opts.APIServerPort)}
	}
	for _, d := range []string{api.CertDir, filepath.Join(dir, "etcd")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("envtest: %w", err)
		}
	}
	if b.etcdURL != nil {
		wrapper, err := dyingWrapper(filepath.Join(dir, "kube-apiserver.sh"), assets.APIServer(), b.goEnv, b.log)
		if err != nil {
			return fmt.Errorf("envtest: %w", err)
		}
		api.Path = wrapper
		api.EtcdURL = b.etcdURL
		api.Configure().Set("etcd-prefix", b.etcdPrefix)
		for k, v := range fleetAPIServerFlags {
			api.Configure().Set(k, v)
		}
		b.plane = &envtest.ControlPlane{APIServer: api}
		b.log.Info("starting kube-apiserver on the fleet's etcd", "binaries", assets.Dir, "prefix", b.etcdPrefix)
		if err := runWithContext(ctx, api.Start); err != nil {
			return fmt.Errorf("start kube-apiserver (logs in %s): %w", filepath.Join(dir, "logs"), err)
		}
		return b.afterAPIServer(ctx, assets)
	}
	// Both die with gitopsim, even when it is killed outright (SIGKILL):
	// envtest itself starts them with no death signal.
	apiPath, err := dyingWrapper(filepath.Join(dir, "kube-apiserver.sh"), assets.APIServer(), nil, b.log)
	if err != nil {
		return fmt.Errorf("envtest: %w", err)
	}
	etcdPath, err := dyingWrapper(filepath.Join(dir, "etcd.sh"), assets.Etcd(), nil, b.log)
	if err != nil {
		return fmt.Errorf("envtest: %w", err)
	}
	api.Path = apiPath
	b.plane = &envtest.ControlPlane{
		APIServer: api,
		Etcd: &envtest.Etcd{
			Path:         etcdPath,
			DataDir:      filepath.Join(dir, "etcd"),
			StartTimeout: startTimeout,
			StopTimeout:  stopTimeout,
			Out:          etcdLog,
			Err:          etcdLog,
		},
	}

	b.log.Info("starting etcd and kube-apiserver", "binaries", assets.Dir, "from", assets.Source)
	if err := runWithContext(ctx, b.plane.Start); err != nil {
		return fmt.Errorf("start etcd and kube-apiserver (logs in %s): %w", filepath.Join(dir, "logs"), err)
	}
	return b.afterAPIServer(ctx, assets)
}

// afterAPIServer makes the admin user, waits for the API, starts the
// controller-manager and writes the kubeconfig; b.mu held.
func (b *envtestBackend) afterAPIServer(ctx context.Context, assets *Assets) error {
	admin, err := b.plane.AddUser(envtest.User{Name: adminUser, Groups: []string{"system:masters"}}, fastClient())
	if err != nil {
		return fmt.Errorf("envtest: admin user: %w", err)
	}
	cfg := admin.Config()
	if err := waitForDefaultNamespace(ctx, cfg); err != nil {
		return err
	}
	b.log.Info("kube-apiserver is serving", "url", cfg.Host)

	if assets.ControllerManager == "" {
		b.log.Warn("kube-controller-manager not found: namespaces will not finish deleting and owner references will not be collected; " + buildHint)
	} else if err := b.startControllerManager(ctx, assets.ControllerManager, cfg); err != nil {
		return err
	}

	path := filepath.Join(b.opts.Workdir, "kubeconfig")
	if err := writeKubeconfig(path, cfg, adminUser); err != nil {
		return fmt.Errorf("envtest: %w", err)
	}
	b.setAdmin(cfg, path)
	return nil
}

// startControllerManager runs kube-controller-manager as a child process
// and waits until it does visible work.
func (b *envtestBackend) startControllerManager(ctx context.Context, bin string, admin *rest.Config) error {
	dir := clusterDir(b.opts.Workdir)
	certDir := b.plane.APIServer.CertDir
	kcmCfg, err := b.authn.AddUser(envtest.User{Name: "system:kube-controller-manager", Groups: []string{"system:masters"}}, admin)
	if err != nil {
		return fmt.Errorf("kube-controller-manager credentials: %w", err)
	}
	kubeconfig := filepath.Join(certDir, "kube-controller-manager.kubeconfig")
	if err := writeKubeconfig(kubeconfig, kcmCfg, "system:kube-controller-manager"); err != nil {
		return err
	}
	caCert, caKey, err := b.authn.writeCA(certDir)
	if err != nil {
		return err
	}
	logf, err := b.openLog("kube-controller-manager")
	if err != nil {
		return err
	}
	args := []string{
		"--kubeconfig=" + kubeconfig,
		"--leader-elect=false",
		"--secure-port=0",
		// Legacy token Secrets need the key that signs service-account tokens.
		"--service-account-private-key-file=" + filepath.Join(certDir, "sa-signer.key"),
		// Signing with the client CA the API server trusts makes
		// CertificateSigningRequests work as on a real cluster.
		"--cluster-signing-cert-file=" + caCert,
		"--cluster-signing-key-file=" + caKey,
	}
	// pflag appends repeated list flags, so the default set of
	// controllers goes in only when the caller names none.
	if !slices.ContainsFunc(b.opts.ControllerManagerArgs, func(a string) bool { return strings.HasPrefix(a, "--controllers=") }) {
		args = append(args, "--controllers=*")
	}
	args = append(args, b.opts.ControllerManagerArgs...)
	cmd := exec.Command(bin, args...)
	if len(b.goEnv) > 0 {
		cmd.Env = append(os.Environ(), b.goEnv...)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, so a Ctrl-C at the terminal reaches gitopsim
	// only and shutdown happens in order; Pdeathsig so it dies with us even
	// when gitopsim is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	b.log.Info("starting kube-controller-manager", "binary", bin)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start kube-controller-manager: %w", err)
	}
	b.kcm = cmd
	b.kcmDone = make(chan struct{})
	go func() {
		b.kcmErr = cmd.Wait()
		close(b.kcmDone)
	}()

	cs, err := kubernetes.NewForConfig(admin)
	if err != nil {
		return err
	}
	logPath := filepath.Join(dir, "logs", "kube-controller-manager.log")
	err = wait.PollUntilContextTimeout(ctx, 25*time.Millisecond, kcmReadyTimeout, true, func(ctx context.Context) (bool, error) {
		select {
		case <-b.kcmDone:
			return false, fmt.Errorf("kube-controller-manager exited during start-up (%v); last lines of %s:\n%s", b.kcmErr, logPath, tail(logPath, 10))
		default:
		}
		_, err := cs.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	})
	if err != nil {
		return fmt.Errorf("wait for kube-controller-manager: %w", err)
	}
	return nil
}

func (b *envtestBackend) Stop(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stopLocked()
}

// stopControllerManagerLocked stops kube-controller-manager, killing it
// when it does not exit in time; b.mu held.
func (b *envtestBackend) stopControllerManagerLocked() {
	if b.kcm == nil {
		return
	}
	_ = b.kcm.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.kcmDone:
	case <-b.wall.After(stopTimeout):
		_ = b.kcm.Process.Kill()
		<-b.kcmDone
	}
	b.kcm = nil
}

// stopLocked stops the controller-manager first (it would otherwise retry
// against a vanished API server), then the API server and etcd.
func (b *envtestBackend) stopLocked() error {
	var errs []error
	b.stopControllerManagerLocked()
	b.apiStopped = false
	if b.plane != nil {
		if err := b.plane.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("stop etcd and kube-apiserver: %w", err))
		}
		b.plane = nil
		dir := clusterDir(b.opts.Workdir)
		for _, sub := range []string{"apiserver", "etcd"} {
			if err := os.RemoveAll(filepath.Join(dir, sub)); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if path := b.Kubeconfig(); path != "" {
		// A kubeconfig for a stopped cluster only misleads.
		_ = os.Remove(path)
	}
	b.setAdmin(nil, "")
	for _, f := range b.logFiles {
		_ = f.Close()
	}
	b.logFiles = nil
	return errors.Join(errs...)
}

func (b *envtestBackend) NewUser(ctx context.Context, name string, groups []string) (*User, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	admin := b.AdminConfig()
	if admin == nil {
		return nil, errors.New("envtest: NewUser before Start")
	}
	if name == "" {
		return nil, errors.New("envtest: NewUser: empty user name")
	}
	cfg, err := b.authn.AddUser(envtest.User{Name: name, Groups: groups}, admin)
	if err != nil {
		return nil, err
	}
	kc, err := kubeconfigBytes(cfg, name)
	if err != nil {
		return nil, err
	}
	return &User{Name: name, Groups: groups, Config: cfg, Kubeconfig: kc}, nil
}

func (b *envtestBackend) openLog(name string) (*os.File, error) {
	dir := filepath.Join(clusterDir(b.opts.Workdir), "logs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("envtest: %w", err)
	}
	path := filepath.Join(dir, name+".log")
	// A component started again (the controller-manager after an API
	// server restart) goes on writing the same log.
	for _, f := range b.logFiles {
		if f.Name() == path {
			return f, nil
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("envtest: %w", err)
	}
	b.logFiles = append(b.logFiles, f)
	return f, nil
}

// caAuthn is envtest's client-certificate authentication with a CA whose key
// we keep, so kube-controller-manager can sign CSRs with it too.
type caAuthn struct {
	ca     *pki.CA
	now    func() time.Time
	caCert string
}

func (a *caAuthn) Configure(workDir string, args *envtest.Arguments) error {
	a.caCert = filepath.Join(workDir, "client-ca.crt")
	args.Set("client-ca-file", a.caCert)
	return nil
}

func (a *caAuthn) Start() error {
	return atomicfile.WriteFile(a.caCert, a.ca.CertPEM, 0o644)
}

func (a *caAuthn) AddUser(u envtest.User, base *rest.Config) (*rest.Config, error) {
	leaf, err := a.ca.IssueClient(u.Name, u.Groups, a.now())
	if err != nil {
		return nil, fmt.Errorf("issue client certificate for %s: %w", u.Name, err)
	}
	cfg := rest.CopyConfig(base)
	cfg.CertData, cfg.KeyData = leaf.CertPEM, leaf.KeyPEM
	cfg.CertFile, cfg.KeyFile, cfg.BearerToken = "", "", ""
	return cfg, nil
}

func (a *caAuthn) Stop() error { return nil }

// writeCA writes the CA key beside its certificate for the controller-manager.
func (a *caAuthn) writeCA(dir string) (cert, key string, err error) {
	key = filepath.Join(dir, "client-ca.key")
	if err := atomicfile.WriteFile(key, a.ca.KeyPEM, 0o600); err != nil {
		return "", "", err
	}
	return a.caCert, key, nil
}

// fastClient is the base client config: no client-side throttling against
// our own local API server.
func fastClient() *rest.Config { return &rest.Config{QPS: 1000, Burst: 2000} }

func waitForDefaultNamespace(ctx context.Context, cfg *rest.Config) error {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	err = wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, startTimeout, true, func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().Namespaces().Get(ctx, corev1.NamespaceDefault, metav1.GetOptions{})
		return err == nil, nil
	})
	if err != nil {
		return fmt.Errorf("wait for the default namespace: %w", err)
	}
	return nil
}

// runWithContext runs a blocking start function that takes no context; if
// ctx ends first it still waits for f, so that the caller can clean up what
// f started.
func runWithContext(ctx context.Context, f func() error) error {
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		if err := <-done; err != nil {
			return err
		}
		return ctx.Err()
	}
}

func checkPortFree(port int) error {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return ErrPortInUse
		}
		return err
	}
	return l.Close()
}

// tail returns the last n lines of a file, indented, for error messages.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "  (" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  " + strings.Join(lines, "\n  ")
}
