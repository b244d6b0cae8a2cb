package agent

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gitopsim/gitopsim/sim/clock"
)

// ServerCache holds what the agents of simulated clusters that share one
// Kubernetes API server can share, by API server: the parsed OpenAPI v2
// schema their operators' kubectl works with, and the node count their
// heartbeats report. Agents given the same cache share it; an agent
// without one has its own.
//
// The OpenAPI schema is still fetched by each kubectl factory when it
// first needs it, as kubectl does; the ETag the server sends (a hash of
// the document: kube-openapi's handler, answered by http.ServeContent)
// says whether it is the document already parsed, which is then reused.
// Parsed, the schema of a bare control plane weighs about 8 MiB and takes
// tens of milliseconds to build, which a fleet of agents on one API
// server would otherwise pay once per operator.
type ServerCache struct {
	mu      sync.Mutex
	openAPI map[string]cachedOpenAPI // by /openapi/v2 URL
	nodes   map[string]nodeCount     // by API server URL
}

// nodeCount is a node and core count and when (wall time) it was taken.
type nodeCount struct {
	nodes, cores int
	at           time.Time
}

// nodesMaxAge is how long (wall time) a node count is reused: a virtual
// clock may ask for thousands of heartbeats in one Advance.
const nodesMaxAge = 10 * time.Second

// NewServerCache returns an empty cache.
func NewServerCache() *ServerCache {
	return &ServerCache{openAPI: map[string]cachedOpenAPI{}, nodes: map[string]nodeCount{}}
}

// nodes counts the API server's nodes and cores, at most every
// nodesMaxAge of wall time for all the agents sharing the cache; a failed
// count is 0, 0 and not kept.
func (a *Agent) nodes(ctx context.Context) (int, int) {
	wall := clock.Real()
	c, host := a.cache, a.opts.Kube.Host
	c.mu.Lock()
	n, ok := c.nodes[host]
	c.mu.Unlock()
	if ok && wall.Since(n.at) < nodesMaxAge {
		return n.nodes, n.cores
	}
	list, err := a.kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return 0, 0
	}
	n = nodeCount{nodes: len(list.Items), at: wall.Now()}
	for _, node := range list.Items {
		if q, ok := node.Status.Capacity[corev1.ResourceCPU]; ok {
			n.cores += int(q.Value())
		}
	}
	c.mu.Lock()
	c.nodes[host] = n
	c.mu.Unlock()
	return n.nodes, n.cores
}
