package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/gitopsim/gitopsim/sim/clock"
)

// saClient acts as the operator's ServiceAccount, with a token from the
// TokenRequest API, so the API server's RBAC decides what it may do.
type saClient struct {
	a        *Agent
	ns, name string
	cfg      *rest.Config
	dyn      dynamic.Interface

	mu    sync.Mutex
	token string
	at    time.Time // wall time the token was issued
}

// tokenRefresh is how old (wall time) a token may get before it is
// renewed; the API server's tokens live an hour.
const tokenRefresh = 30 * time.Minute

func newSAClient(a *Agent, ns, name string) *saClient {
	c := &saClient{a: a, ns: ns, name: name}
	cfg := rest.AnonymousClientConfig(a.opts.Kube)
	cfg.QPS, cfg.Burst = 1000, 2000
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			tok, err := c.bearer(req.Context())
			if err != nil {
				return nil, err
			}
			req = req.Clone(req.Context())
			req.Header.Set("Authorization", "Bearer "+tok)
			return rt.RoundTrip(req)
		})
	}
	c.cfg = cfg
	c.dyn = dynamic.NewForConfigOrDie(cfg)
	return c
}

// restConfig is a client config acting as the ServiceAccount, for the
// Helm SDK and kubectl.
func (c *saClient) restConfig() *rest.Config { return rest.CopyConfig(c.cfg) }

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func (c *saClient) bearer(ctx context.Context) (string, error) {
	wall := clock.Real()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != "" && wall.Since(c.at) < tokenRefresh {
		return c.token, nil
	}
	tr, err := c.a.kube.CoreV1().ServiceAccounts(c.ns).CreateToken(ctx, c.name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("token for serviceaccount %s/%s: %w", c.ns, c.name, err)
	}
	c.token, c.at = tr.Status.Token, wall.Now()
	return c.token, nil
}

// annotateSecret sets an annotation on a Secret of the operator's
// namespace.
func (c *saClient) annotateSecret(ctx context.Context, name, key, value string) error {
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{key: value}}})
	_, err := c.dyn.Resource(gvrSecret).Namespace(c.ns).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "flux"})
	return err
}
