package odb

import (
	"container/list"
	"sync"

	"github.com/go-git/go-git/v5/plumbing"
)

// Cache keeps decoded objects, least recently used out first, up to a
// byte budget. Objects are immutable and named by their content, so one
// Cache serves any number of repositories, and readers share the bytes.
type Cache struct {
	mu    sync.Mutex
	max   int
	bytes int
	ll    *list.List
	items map[plumbing.Hash]*list.Element
}

type cached struct {
	id   plumbing.Hash
	typ  plumbing.ObjectType
	data []byte
}

// NewCache makes a cache of up to maxBytes of decoded objects.
func NewCache(maxBytes int) *Cache {
	return &Cache{max: maxBytes, ll: list.New(), items: map[plumbing.Hash]*list.Element{}}
}

func (c *Cache) get(h plumbing.Hash) (plumbing.ObjectType, []byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[h]
	if !ok {
		return 0, nil, false
	}
	c.ll.MoveToFront(e)
	v := e.Value.(*cached)
	return v.typ, v.data, true
}

// put keeps an object unless it alone would take more than an eighth of
// the budget (a big blob would flush everything a walk needs).
func (c *Cache) put(h plumbing.Hash, t plumbing.ObjectType, data []byte) {
	size := len(data) + 64
	if size > c.max/8 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.items[h]; ok {
		return
	}
	c.items[h] = c.ll.PushFront(&cached{h, t, data})
	c.bytes += size
	for c.bytes > c.max {
		e := c.ll.Back()
		v := e.Value.(*cached)
		c.ll.Remove(e)
		delete(c.items, v.id)
		c.bytes -= len(v.data) + 64
	}
}
