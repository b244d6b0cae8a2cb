package gitserver

import (
	"fmt"

	"github.com/gitopsim/gitopsim/sim/gitserver/internal/odb"
	"github.com/go-git/go-git/v5/plumbing"
)

// infiniteDepth is what git fetch --unshallow sends ("deepen 2147483647",
// INFINITE_DEPTH in git's shallow.h).
const infiniteDepth = 0x7fffffff

// deepenResult is the shallow section of an upload-pack response and what
// it does to the pack walk.
type deepenResult struct {
	// shallow and unshallow are sent to the client, in that order.
	shallow, unshallow []plumbing.Hash
	// extraWants are the parents of unshallowed commits: their history
	// goes out. extraHaves are the unshallowed commits themselves, which
	// the client holds.
	extraWants, extraHaves []plumbing.Hash
	// registered is every commit the walk treats as having no parents: the
	// new shallow commits and all of the client's.
	registered map[plumbing.Hash]bool
}

// deepen is git's upload-pack deepen() for "deepen <depth>" (upload-pack.c):
// get_shallow_commits finds the commits at depth from the wants
// (shallow.c, get_shallows_or_depth), send_shallow names those the client
// does not already have as shallow and that no shorter path reaches, and
// send_unshallow releases the client's shallow commits that are now within
// depth. clientShallow keeps the client's order, which the unshallow lines
// follow.
func deepen(st *odb.DB, wants, clientShallow []plumbing.Hash, depth int) (*deepenResult, error) {
	res := &deepenResult{registered: map[plumbing.Hash]bool{}}
	isClient := map[plumbing.Hash]bool{}
	for _, h := range clientShallow {
		isClient[h] = true
	}
	notShallow := map[plumbing.Hash]bool{}
	if depth == infiniteDepth {
		for _, h := range clientShallow {
			notShallow[h] = true
		}
	} else {
		result, ns, err := shallowsAtDepth(st, wants, depth)
		if err != nil {
			return nil, err
		}
		notShallow = ns
		for _, h := range result {
			if !isClient[h] && !notShallow[h] {
				res.shallow = append(res.shallow, h)
				res.registered[h] = true
			}
		}
	}
	for _, h := range clientShallow {
		res.registered[h] = true
		if !notShallow[h] {
			continue
		}
		_, parents, err := (&walker{st: st}).commit(h)
		if err != nil {
			return nil, fmt.Errorf("shallow %s: %w", h, err)
		}
		res.unshallow = append(res.unshallow, h)
		res.extraWants = append(res.extraWants, parents...)
		res.extraHaves = append(res.extraHaves, h)
	}
	return res, nil
}

// shallowsAtDepth is git's get_shallows_or_depth for a depth: a
// depth-first walk from each head that records the depth at which it
// first, or more shallowly, reaches each commit. Commits reached at the
// depth are results (in the order git lists them: last found first);
// commits reached above it are not shallow, even if another path found
// them at the depth.
func shallowsAtDepth(st *odb.DB, heads []plumbing.Hash, depth int) ([]plumbing.Hash, map[plumbing.Hash]bool, error) {
	depthOf := map[plumbing.Hash]int{}
	notShallow := map[plumbing.Hash]bool{}
	w := &walker{st: st}
	var result, stack []plumbing.Hash
	var cur plumbing.Hash
	have, curDepth, i := false, 0, 0
	for have || i < len(heads) || len(stack) > 0 {
		if !have {
			if i < len(heads) {
				h, ok := w.peelCommit(heads[i])
				i++
				if !ok {
					continue
				}
				cur, have, curDepth = h, true, 0
				depthOf[h] = 0
			} else {
				cur, have = stack[len(stack)-1], true
				stack = stack[:len(stack)-1]
				curDepth = depthOf[cur]
			}
		}
		_, parents, err := w.commit(cur)
		if err != nil {
			return nil, nil, err
		}
		curDepth++
		if curDepth >= depth {
			result = append([]plumbing.Hash{cur}, result...)
			have = false
			continue
		}
		notShallow[cur] = true
		have = false
		for j, p := range parents {
			if d, seen := depthOf[p]; seen && curDepth >= d {
				continue
			}
			depthOf[p] = curDepth
			if j < len(parents)-1 {
				stack = append(stack, p)
			} else {
				cur, have = p, true // at the depth just recorded for it
			}
		}
	}
	return result, notShallow, nil
}
