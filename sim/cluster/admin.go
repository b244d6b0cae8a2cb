package cluster

import (
	"sync"

	"k8s.io/client-go/rest"
)

// adminAccess holds a started backend's admin credentials. Backends embed
// it for AdminConfig and Kubeconfig; its own lock keeps the accessors
// answering while a backend holds its lock through a long Start.
type adminAccess struct {
	mu         sync.Mutex
	admin      *rest.Config
	kubeconfig string
}

// AdminConfig returns a copy of the admin client config, or nil before
// Start and after Stop.
func (a *adminAccess) AdminConfig() *rest.Config {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.admin == nil {
		return nil
	}
	return rest.CopyConfig(a.admin)
}

// Kubeconfig returns the admin kubeconfig path, or "" when not started.
func (a *adminAccess) Kubeconfig() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.kubeconfig
}

func (a *adminAccess) setAdmin(cfg *rest.Config, kubeconfig string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.admin, a.kubeconfig = cfg, kubeconfig
}
