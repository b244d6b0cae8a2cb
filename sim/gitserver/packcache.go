package gitserver

import (
	"container/list"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"slices"
	"strconv"
	"sync"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/gitopsim/gitopsim/sim/gitserver/internal/odb"
)

// packCache keeps the packs of recent fetches, for the identical requests
// of reconcile loops: the plan (what to send) always, the pack's bytes too
// when it is small. It is one cache for the whole server, bounded in
// bytes, and every client of an entry shares it: a big pack is streamed
// from storage to each client, never held once per client.
type packCache struct {
	mu    sync.Mutex
	max   int
	bytes int
	ll    *list.List
	items map[string]*list.Element
}

// cachedPack is a planned pack, and its bytes when they were kept.
type cachedPack struct {
	key   string
	plan  *packPlan
	stats odb.PackStats
	pack  []byte // nil when the pack was too big to keep
	size  int
}

func newPackCache(maxBytes int) *packCache {
	return &packCache{max: maxBytes, ll: list.New(), items: map[string]*list.Element{}}
}

// maxKeptPack is the largest pack whose bytes are kept, as a share of the
// cache: bigger ones keep only their plan.
func (c *packCache) maxKeptPack() int { return c.max / 16 }

func (c *packCache) get(key string) *cachedPack {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[key]
	if !ok {
		return nil
	}
	c.ll.MoveToFront(e)
	return e.Value.(*cachedPack)
}

// put keeps p, which nobody may change afterwards.
func (c *packCache) put(p *cachedPack) {
	// A hash is 20 bytes in the object list; an entry of the thin-pack
	// set costs about 64 in a map.
	size := len(p.pack) + 20*len(p.plan.objects) + 64*len(p.plan.has) + 256
	if size > c.max/4 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.items[p.key]; ok {
		return
	}
	p.size = size
	c.items[p.key] = c.ll.PushFront(p)
	c.bytes += p.size
	for c.bytes > c.max {
		e := c.ll.Back()
		old := e.Value.(*cachedPack)
		c.ll.Remove(e)
		delete(c.items, old.key)
		c.bytes -= old.size
	}
}

// usage is the cache's size in bytes and entries.
func (c *packCache) usage() (int, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes, len(c.items)
}

// packKey names a pack: the repo (its generation: a repo deleted and
// made again under its name is another) at a version, the request, and
// how the client takes packs.
func packKey(repo *Repo, version uint64, req *packRequest, ofsDelta, thin bool) string {
	h := sha256.New()
	sorted := func(tag string, hs []plumbing.Hash) {
		s := slices.Clone(hs)
		slices.SortFunc(s, func(a, b plumbing.Hash) int { return slices.Compare(a[:], b[:]) })
		for _, x := range s {
			io.WriteString(h, tag+x.String())
		}
	}
	sorted("w", req.wants)
	sorted("h", req.haves)
	var sh []plumbing.Hash
	for x := range req.shallow {
		sh = append(sh, x)
	}
	sorted("s", sh)
	io.WriteString(h, "t"+strconv.FormatBool(req.includeTag)+
		"o"+strconv.FormatBool(ofsDelta)+"n"+strconv.FormatBool(thin))
	return repo.name + "\x00" + strconv.FormatUint(repo.gen, 10) + "\x00" + strconv.FormatUint(version, 10) + "\x00" + hex.EncodeToString(h.Sum(nil))
}
