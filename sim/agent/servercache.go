package agent

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gitopsim/gitopsim/sim/clock"
	"k8s.io/kubectl/pkg/util/openapi"
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
//
// Parsed documents are shared by content, not by server: the API servers
// of a fleet (cluster.Fleet) serve the same document, and a hundred of
// them would otherwise hold a hundred parsed copies.
type ServerCache struct {
	mu      sync.Mutex
	openAPI map[string]cachedOpenAPI // by /openapi/v2 URL
	docs    map[[32]byte]*sharedDoc  // by the document's SHA-256
	nodes   map[string]nodeCount     // by API server URL
}

// sharedDoc is a parsed OpenAPI document and how many servers' entries
// in ServerCache.openAPI stand for it.
type sharedDoc struct {
	res  openapi.Resources
	refs int
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
	return &ServerCache{openAPI: map[string]cachedOpenAPI{}, docs: map[[32]byte]*sharedDoc{}, nodes: map[string]nodeCount{}}
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

// parsedDoc returns the parsed document whose bytes have hash sum, if a
// server of this cache sent it before.
func (c *ServerCache) parsedDoc(sum [32]byte) (openapi.Resources, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.docs[sum]
	if !ok {
		return nil, false
	}
	return d.res, true
}

// setOpenAPI records that url serves the document with hash sum (parsed
// as res, unless a document with that hash is there already) under etag,
// and returns the parsed document to use. A document no server serves
// any more is dropped.
func (c *ServerCache) setOpenAPI(url, etag string, sum [32]byte, res openapi.Resources) openapi.Resources {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.docs[sum]
	if !ok {
		d = &sharedDoc{res: res}
		c.docs[sum] = d
	}
	if old, had := c.openAPI[url]; had {
		if old.sum == sum {
			c.openAPI[url] = cachedOpenAPI{etag: etag, sum: sum, res: d.res}
			return d.res
		}
		if od := c.docs[old.sum]; od != nil {
			if od.refs--; od.refs <= 0 {
				delete(c.docs, old.sum)
			}
		}
	}
	d.refs++
	c.openAPI[url] = cachedOpenAPI{etag: etag, sum: sum, res: d.res}
	return d.res
}
