package cluster

import (
	"context"
	"errors"
	"fmt"
)

// APIServerRestarter is a Backend whose kube-apiserver can be stopped and
// started again while its storage keeps running, as when a control
// plane's API server is upgraded or crashes: the objects, the address and
// the certificates stay, so clients made before the restart work after it
// without being told. The envtest backend (and so every fleet member)
// is one; kind and kubeconfig clusters are not.
type APIServerRestarter interface {
	// StopAPIServer stops the kube-apiserver; requests fail (connection
	// refused) until StartAPIServer.
	StopAPIServer(ctx context.Context) error
	// StartAPIServer starts it again and returns once it answers.
	StartAPIServer(ctx context.Context) error
}

var _ APIServerRestarter = (*envtestBackend)(nil)

// StopAPIServer stops the controller-manager and the kube-apiserver;
// etcd keeps running with the data. The controller-manager goes first,
// as in Stop: while its watches are open the API server's graceful
// shutdown does not end.
func (b *envtestBackend) StopAPIServer(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.plane == nil {
		return errors.New("envtest: not started")
	}
	b.stopControllerManagerLocked()
	if b.apiStopped {
		return nil
	}
	if err := b.plane.APIServer.Stop(); err != nil {
		return fmt.Errorf("envtest: stop kube-apiserver: %w", err)
	}
	b.apiStopped = true
	b.log.Info("kube-apiserver stopped; etcd keeps the data")
	return nil
}

// StartAPIServer starts the stopped kube-apiserver on its old port with
// its old certificates (envtest keeps both once chosen, because the
// certificate directory is ours and outlives the process), then the
// controller-manager.
func (b *envtestBackend) StartAPIServer(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.plane == nil {
		return errors.New("envtest: not started")
	}
	if !b.apiStopped {
		// Starting it again would orphan the running one.
		return errors.New("envtest: kube-apiserver is running")
	}
	if err := runWithContext(ctx, b.plane.APIServer.Start); err != nil {
		return fmt.Errorf("envtest: start kube-apiserver again: %w", err)
	}
	b.apiStopped = false
	admin := b.AdminConfig()
	b.log.Info("kube-apiserver started again", "url", admin.Host)
	assets, err := b.findAssets()
	if err != nil || assets.ControllerManager == "" {
		return err
	}
	return b.startControllerManager(ctx, assets.ControllerManager, admin)
}
