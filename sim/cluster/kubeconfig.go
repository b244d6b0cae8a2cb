package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

const reachTimeout = 15 * time.Second

// kubeconfigBackend uses an existing cluster. It starts and stops nothing.
type kubeconfigBackend struct {
	opts Options
	log  *slog.Logger
	path string

	adminAccess
}

func newKubeconfig(opts Options) (*kubeconfigBackend, error) {
	path := opts.Kubeconfig
	if path == "" {
		return nil, errors.New("cluster: the kubeconfig backend needs a kubeconfig file (--kubeconfig)")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("cluster: kubeconfig %s: %w", path, err)
	}
	return &kubeconfigBackend{opts: opts, log: opts.Logger.With("component", "cluster", "backend", KubeconfigKind), path: abs}, nil
}

func (b *kubeconfigBackend) Name() string { return KubeconfigKind }

// Available checks that the kubeconfig loads; whether the cluster answers
// is Start's business.
func (b *kubeconfigBackend) Available() error {
	_, err := b.load()
	return err
}

func (b *kubeconfigBackend) load() (*rest.Config, error) {
	if _, err := os.Stat(b.path); err != nil {
		return nil, fmt.Errorf("kubeconfig backend: %w", err)
	}
	rules := &clientcmd.ClientConfigLoadingRules{ExplicitPath: b.path}
	overrides := &clientcmd.ConfigOverrides{CurrentContext: b.opts.Context}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig backend: load %s: %w", b.path, err)
	}
	cfg.QPS, cfg.Burst = 1000, 2000
	return cfg, nil
}

func (b *kubeconfigBackend) Start(ctx context.Context) error {
	cfg, err := b.load()
	if err != nil {
		return err
	}
	dc, err := discovery.NewDiscoveryClientForConfig(rest.CopyConfig(cfg))
	if err != nil {
		return fmt.Errorf("kubeconfig backend: %w", err)
	}
	reach := make(chan error, 1)
	go func() {
		v, err := dc.ServerVersion()
		if err == nil {
			b.log.Info("using existing cluster", "server", cfg.Host, "version", v.GitVersion)
		}
		reach <- err
	}()
	ctx, cancel := context.WithTimeout(ctx, reachTimeout)
	defer cancel()
	select {
	case err := <-reach:
		if err != nil {
			return fmt.Errorf("kubeconfig backend: cluster at %s does not answer: %w", cfg.Host, err)
		}
	case <-ctx.Done():
		return fmt.Errorf("kubeconfig backend: cluster at %s does not answer within %v", cfg.Host, reachTimeout)
	}
	b.setAdmin(cfg, b.path)
	return nil
}

func (b *kubeconfigBackend) Stop(context.Context) error {
	b.setAdmin(nil, "")
	return nil
}

func (b *kubeconfigBackend) NewUser(ctx context.Context, name string, groups []string) (*User, error) {
	admin := b.AdminConfig()
	if admin == nil {
		return nil, errors.New("kubeconfig backend: NewUser before Start")
	}
	return csrUser(ctx, admin, name, groups)
}
