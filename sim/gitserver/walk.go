package gitserver

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage"
)

// packRequest is what an upload-pack client asked for, after negotiation.
type packRequest struct {
	wants []plumbing.Hash
	// haves are the client's objects that this repo also has.
	haves []plumbing.Hash
	// depth limits the commit walk from the wants (deepen <n>); 0 means
	// the whole history.
	depth int
	// clientShallow are the client's shallow commits: it has them but not
	// their parents.
	clientShallow map[plumbing.Hash]bool
	includeTag    bool
	// commitsOnly walks commits for the shallow boundary, without trees.
	commitsOnly bool
}

// packPlan is what to send: the objects, and the shallow boundary changes.
type packPlan struct {
	objects   []plumbing.Hash
	shallow   []plumbing.Hash
	unshallow []plumbing.Hash
}

// planPack finds the objects reachable from the wants that the client does
// not have, walking commits no deeper than the requested depth. The
// client's shallow commits bound what it has: it lacks their parents.
func planPack(st storage.Storer, req *packRequest) (*packPlan, error) {
	w := &walker{st: st, seen: map[plumbing.Hash]bool{}, ignore: map[plumbing.Hash]bool{}}
	haveCommits, err := w.commitClosure(req.haves, req.clientShallow)
	if err != nil {
		return nil, err
	}
	for h := range haveCommits {
		w.ignore[h] = true
	}
	// Trees and blobs the client has, so they are not sent again.
	for h := range haveCommits {
		if req.commitsOnly {
			break
		}
		c, err := object.GetCommit(st, h)
		if err != nil {
			return nil, err
		}
		if err := w.markTree(c.TreeHash); err != nil {
			return nil, err
		}
	}
	plan := &packPlan{}
	type item struct {
		h     plumbing.Hash
		depth int
	}
	var queue []item
	visited := map[plumbing.Hash]bool{}
	for _, want := range req.wants {
		target, err := w.peelInto(want, plan)
		if err != nil {
			return nil, err
		}
		if target != plumbing.ZeroHash && !visited[target] {
			visited[target] = true
			queue = append(queue, item{target, 1})
		}
	}
	sent := map[plumbing.Hash]bool{}
	for len(queue) > 0 {
		it := queue[0]
		queue = queue[1:]
		c, err := object.GetCommit(st, it.h)
		if err != nil {
			return nil, fmt.Errorf("commit %s: %w", it.h, err)
		}
		// The client's shallow commits are its own, whether or not it named
		// them as haves.
		has := haveCommits[c.Hash] || req.clientShallow[c.Hash]
		if has && !req.clientShallow[c.Hash] {
			continue // the client has it and all its history
		}
		atLimit := req.depth > 0 && it.depth >= req.depth
		if !has {
			plan.objects = append(plan.objects, c.Hash)
			sent[c.Hash] = true
			if !req.commitsOnly {
				if err := w.addTree(c.TreeHash, plan); err != nil {
					return nil, err
				}
			}
			if atLimit && c.NumParents() > 0 && !req.clientShallow[c.Hash] {
				plan.shallow = append(plan.shallow, c.Hash)
			}
		} else if atLimit {
			continue // a shallow commit of the client that stays shallow
		} else {
			plan.unshallow = append(plan.unshallow, c.Hash)
		}
		if atLimit {
			continue
		}
		for _, p := range c.ParentHashes {
			if !visited[p] {
				visited[p] = true
				queue = append(queue, item{p, it.depth + 1})
			}
		}
	}
	if req.includeTag {
		if err := w.includeTags(sent, plan); err != nil {
			return nil, err
		}
	}
	return plan, nil
}

type walker struct {
	st     storage.Storer
	seen   map[plumbing.Hash]bool // objects already in the plan
	ignore map[plumbing.Hash]bool // objects the client has
}

// commitClosure returns the commits reachable from roots, not following
// the parents of shallow commits. Roots that are tags are peeled; roots
// that are missing or not commits are skipped.
func (w *walker) commitClosure(roots []plumbing.Hash, shallow map[plumbing.Hash]bool) (map[plumbing.Hash]bool, error) {
	out := map[plumbing.Hash]bool{}
	stack := []plumbing.Hash{}
	for _, r := range roots {
		if h, ok := w.peelCommit(r); ok {
			stack = append(stack, h)
		}
	}
	for len(stack) > 0 {
		h := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if out[h] {
			continue
		}
		c, err := object.GetCommit(w.st, h)
		if err != nil {
			continue // a have we do not fully know: count only what we have
		}
		out[h] = true
		if shallow[h] {
			continue
		}
		stack = append(stack, c.ParentHashes...)
	}
	return out, nil
}

func (w *walker) peelCommit(h plumbing.Hash) (plumbing.Hash, bool) {
	for range 10 {
		o, err := w.st.EncodedObject(plumbing.AnyObject, h)
		if err != nil {
			return plumbing.ZeroHash, false
		}
		switch o.Type() {
		case plumbing.CommitObject:
			return h, true
		case plumbing.TagObject:
			t, err := object.DecodeTag(w.st, o)
			if err != nil {
				return plumbing.ZeroHash, false
			}
			h = t.Target
		default:
			return plumbing.ZeroHash, false
		}
	}
	return plumbing.ZeroHash, false
}

// peelInto adds a wanted object to the plan: tags (with what they point
// at), trees and blobs directly; it returns the commit to walk from, if any.
func (w *walker) peelInto(h plumbing.Hash, plan *packPlan) (plumbing.Hash, error) {
	for range 10 {
		o, err := w.st.EncodedObject(plumbing.AnyObject, h)
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("want %s: %w", h, err)
		}
		switch o.Type() {
		case plumbing.CommitObject:
			return h, nil
		case plumbing.TagObject:
			if !w.seen[h] && !w.ignore[h] {
				w.seen[h] = true
				plan.objects = append(plan.objects, h)
			}
			t, err := object.DecodeTag(w.st, o)
			if err != nil {
				return plumbing.ZeroHash, err
			}
			h = t.Target
		case plumbing.TreeObject:
			return plumbing.ZeroHash, w.addTree(h, plan)
		default:
			if !w.seen[h] && !w.ignore[h] {
				w.seen[h] = true
				plan.objects = append(plan.objects, h)
			}
			return plumbing.ZeroHash, nil
		}
	}
	return plumbing.ZeroHash, fmt.Errorf("want %s: tag chain too long", h)
}

// markTree records a tree and everything under it as held by the client.
func (w *walker) markTree(h plumbing.Hash) error {
	if w.ignore[h] {
		return nil
	}
	w.ignore[h] = true
	t, err := object.GetTree(w.st, h)
	if err != nil {
		return err
	}
	for _, e := range t.Entries {
		switch e.Mode {
		case filemode.Submodule:
		case filemode.Dir:
			if err := w.markTree(e.Hash); err != nil {
				return err
			}
		default:
			w.ignore[e.Hash] = true
		}
	}
	return nil
}

// addTree adds a tree and what is under it, minus what the client has.
func (w *walker) addTree(h plumbing.Hash, plan *packPlan) error {
	if w.seen[h] || w.ignore[h] {
		return nil
	}
	w.seen[h] = true
	plan.objects = append(plan.objects, h)
	t, err := object.GetTree(w.st, h)
	if err != nil {
		return err
	}
	for _, e := range t.Entries {
		switch e.Mode {
		case filemode.Submodule:
		case filemode.Dir:
			if err := w.addTree(e.Hash, plan); err != nil {
				return err
			}
		default:
			if !w.seen[e.Hash] && !w.ignore[e.Hash] {
				w.seen[e.Hash] = true
				plan.objects = append(plan.objects, e.Hash)
			}
		}
	}
	return nil
}

// includeTags adds annotated tags that point at commits being sent
// (include-tag), so clients get them without a second fetch.
func (w *walker) includeTags(sent map[plumbing.Hash]bool, plan *packPlan) error {
	iter, err := w.st.IterReferences()
	if err != nil {
		return err
	}
	defer iter.Close()
	return iter.ForEach(func(ref *plumbing.Reference) error {
		if !ref.Name().IsTag() || ref.Type() != plumbing.HashReference {
			return nil
		}
		h := ref.Hash()
		if w.seen[h] || w.ignore[h] {
			return nil
		}
		tag, err := object.GetTag(w.st, h)
		if err != nil {
			return nil // a lightweight tag: nothing to include
		}
		if target, ok := w.peelCommit(tag.Target); ok && sent[target] {
			w.seen[h] = true
			plan.objects = append(plan.objects, h)
		}
		return nil
	})
}

// encodePack writes a pack of the objects with ofs-deltas.
func encodePack(st storage.Storer, objects []plumbing.Hash, out io.Writer) error {
	enc := packfile.NewEncoder(out, st, false)
	_, err := enc.Encode(objects, 10)
	return err
}

// packCache keeps generated packs of a repo for repeated identical
// requests (the clones of a reconcile loop); a repo change empties it.
type packCache struct {
	mu      sync.Mutex
	version uint64
	order   []string
	entries map[string]*cachedPack
	bytes   int
}

type cachedPack struct {
	plan *packPlan
	pack []byte
}

const (
	maxCachedPacks     = 32
	maxCachedPackBytes = 64 << 20
)

func cacheKey(req *packRequest) string {
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
	for x := range req.clientShallow {
		sh = append(sh, x)
	}
	sorted("s", sh)
	io.WriteString(h, "d"+strconv.Itoa(req.depth)+"t"+strconv.FormatBool(req.includeTag))
	return hex.EncodeToString(h.Sum(nil))
}

func (c *packCache) get(version uint64, key string) *cachedPack {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.version != version {
		return nil
	}
	return c.entries[key]
}

func (c *packCache) put(version uint64, key string, p *cachedPack) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.version != version || c.entries == nil {
		c.version, c.entries, c.order, c.bytes = version, map[string]*cachedPack{}, nil, 0
	}
	if len(p.pack) > maxCachedPackBytes/4 {
		return
	}
	if _, ok := c.entries[key]; ok {
		return
	}
	for len(c.order) >= maxCachedPacks || c.bytes+len(p.pack) > maxCachedPackBytes {
		old := c.order[0]
		c.order = c.order[1:]
		c.bytes -= len(c.entries[old].pack)
		delete(c.entries, old)
	}
	c.entries[key] = p
	c.order = append(c.order, key)
	c.bytes += len(p.pack)
}
