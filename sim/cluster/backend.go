package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"

	"k8s.io/client-go/rest"
)

// Backend names accepted by New and by `gitopsim up --cluster`.
const (
	Envtest        = "envtest"
	Kind           = "kind"
	KubeconfigKind = "kubeconfig"
)

// Backends lists the valid backend names, the default first.
var Backends = []string{Envtest, Kind, KubeconfigKind}

// Backend is a Kubernetes API that gitopsim can start, use and stop.
type Backend interface {
	// Name is the backend's name, one of Backends.
	Name() string
	// Available reports, before anything starts, why this backend cannot
	// run here (one line), or nil.
	Available() error
	// Start brings the cluster up and returns once its API answers. If it
	// fails half way, it stops what it started.
	Start(ctx context.Context) error
	// Stop tears down what Start started; it is safe to call more than once
	// and after a failed Start.
	Stop(ctx context.Context) error
	// AdminConfig is a cluster-admin client config, valid after Start.
	AdminConfig() *rest.Config
	// Kubeconfig is the path of an admin kubeconfig file, valid after Start.
	Kubeconfig() string
	// NewUser returns credentials that authenticate as name in groups, with
	// no permissions of their own: RBAC decides what they may do.
	NewUser(ctx context.Context, name string, groups []string) (*User, error)
}

// User is an identity made by Backend.NewUser.
type User struct {
	Name   string
	Groups []string
	// Config authenticates as the user.
	Config *rest.Config
	// Kubeconfig holds the same credentials as a kubeconfig file.
	Kubeconfig []byte
}

// Options chooses and configures a backend.
type Options struct {
	// Backend is one of Backends; empty means envtest.
	Backend string
	// Workdir holds the admin kubeconfig, logs and (for envtest) the
	// control plane's certificates and data. Required.
	Workdir string
	// Logger receives progress and diagnostics; nil discards them.
	Logger *slog.Logger

	// AssetsDir is where kube-apiserver, etcd and kube-controller-manager
	// are (envtest). Empty means search, see FindAssets.
	AssetsDir string
	// APIServerPort is the kube-apiserver's port on 127.0.0.1 (envtest);
	// 0 picks a free one.
	APIServerPort int
	// ControllerManagerArgs are extra kube-controller-manager flags
	// (envtest), appended after gitopsim's own.
	ControllerManagerArgs []string

	// KindClusterName names the kind cluster (kind); default "gitopsim".
	KindClusterName string
	// KindNodeImage is the node image of a cluster the kind backend creates;
	// empty means the one kind pins (DefaultKindImage). LocalKindImage is
	// the one `make kind-image` builds without a registry.
	KindNodeImage string

	// Kubeconfig is the kubeconfig file of an existing cluster (kubeconfig).
	Kubeconfig string
	// Context selects a context in Kubeconfig; empty means current.
	Context string
}

// ErrUnknownBackend is returned for a backend name not in Backends.
var ErrUnknownBackend = errors.New("unknown cluster backend")

// New validates opts and returns the chosen backend, not yet started.
func New(opts Options) (Backend, error) {
	if opts.Backend == "" {
		opts.Backend = Envtest
	}
	if opts.Workdir == "" {
		return nil, errors.New("cluster: workdir is required")
	}
	wd, err := filepath.Abs(opts.Workdir)
	if err != nil {
		return nil, fmt.Errorf("cluster: workdir: %w", err)
	}
	opts.Workdir = wd
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	switch opts.Backend {
	case Envtest:
		return newEnvtest(opts)
	case Kind:
		return newKind(opts)
	case KubeconfigKind:
		return newKubeconfig(opts)
	}
	return nil, fmt.Errorf("%w %q (valid: %s)", ErrUnknownBackend, opts.Backend, strings.Join(Backends, ", "))
}

// ValidBackend reports whether name is one of Backends.
func ValidBackend(name string) bool { return slices.Contains(Backends, name) }
