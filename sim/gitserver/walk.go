package gitserver

import (
	"fmt"
	"maps"
	"slices"

	"github.com/gitopsim/gitopsim/sim/gitserver/internal/odb"
	"github.com/go-git/go-git/v5/plumbing"
)

// packRequest is what an upload-pack client asked for, after negotiation
// and the shallow section: an ordinary walk (git's rev-list --objects)
// from the wants, not into what the haves reach, not past shallow commits.
type packRequest struct {
	wants []plumbing.Hash
	// haves are the client's objects that this repo also has.
	haves []plumbing.Hash
	// shallow commits are walked as if they had no parents (git's
	// register_shallow): the client's, and those of this response.
	shallow    map[plumbing.Hash]bool
	includeTag bool
}

// packPlan is what to send.
type packPlan struct {
	objects []plumbing.Hash
	// has holds objects the client is known to have: the bases a thin
	// pack may use.
	has map[plumbing.Hash]bool
}

// planPack finds the objects reachable from the wants that the client does
// not have.
//
// Like git's rev-list --objects, it takes the client's trees to be those
// of the edge commits (the commits the client has that are parents of
// commits being sent) and of its haves, not of its whole history
// (list-objects.c, mark_edges_uninteresting): an old object that comes
// back in a later commit may be sent again, and in exchange an
// incremental fetch does not cost a walk of every tree ever made.
func planPack(st *odb.DB, req *packRequest) (*packPlan, error) {
	w := &walker{st: st, state: map[plumbing.Hash]uint8{}}
	haveCommits, err := w.commitClosure(req.haves, req.shallow)
	if err != nil {
		return nil, err
	}
	for h := range haveCommits {
		w.state[h] |= held
	}
	plan := &packPlan{}
	var queue []plumbing.Hash
	visited := map[plumbing.Hash]bool{}
	for _, want := range req.wants {
		target, err := w.peelInto(want, plan)
		if err != nil {
			return nil, err
		}
		if target != plumbing.ZeroHash && !visited[target] {
			visited[target] = true
			queue = append(queue, target)
		}
	}
	var sentTrees []plumbing.Hash
	edges := map[plumbing.Hash]bool{}
	for _, h := range req.haves {
		if c, ok := w.peelCommit(h); ok {
			edges[c] = true
		}
	}
	for len(queue) > 0 {
		h := queue[0]
		queue = queue[1:]
		if haveCommits[h] {
			continue
		}
		tree, parents, err := w.commit(h)
		if err != nil {
			return nil, err
		}
		plan.objects = append(plan.objects, h)
		w.state[h] |= planned
		sentTrees = append(sentTrees, tree)
		if req.shallow[h] {
			continue
		}
		for _, p := range parents {
			if haveCommits[p] {
				edges[p] = true
			}
			if !visited[p] {
				visited[p] = true
				queue = append(queue, p)
			}
		}
	}
	for _, h := range slices.SortedFunc(maps.Keys(edges), func(a, b plumbing.Hash) int { return slices.Compare(a[:], b[:]) }) {
		tree, _, err := w.commit(h)
		if err != nil {
			continue // a have we do not hold whole
		}
		if err := w.markTree(tree); err != nil {
			return nil, err
		}
	}
	for _, t := range sentTrees {
		if err := w.addTree(t, plan); err != nil {
			return nil, err
		}
	}
	if req.includeTag {
		if err := w.includeTags(plan); err != nil {
			return nil, err
		}
	}
	plan.has = map[plumbing.Hash]bool{}
	for h, s := range w.state {
		if s&held != 0 {
			plan.has[h] = true
		}
	}
	return plan, nil
}

// Walk states of an object.
const (
	planned uint8 = 1 << iota // in the plan
	held                      // the client has it
)

type walker struct {
	st    *odb.DB
	state map[plumbing.Hash]uint8
}

// commit reads a commit's tree and parents.
func (w *walker) commit(h plumbing.Hash) (plumbing.Hash, []plumbing.Hash, error) {
	t, data, err := w.st.Read(h)
	if err == nil && t != plumbing.CommitObject {
		err = fmt.Errorf("a %s, not a commit", t)
	}
	if err != nil {
		return plumbing.ZeroHash, nil, fmt.Errorf("commit %s: %w", h, err)
	}
	tree, parents, err := odb.CommitLinks(data)
	if err != nil {
		return plumbing.ZeroHash, nil, fmt.Errorf("commit %s: %w", h, err)
	}
	return tree, parents, nil
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
		_, parents, err := w.commit(h)
		if err != nil {
			continue // a have we do not fully know: count only what we have
		}
		out[h] = true
		if shallow[h] {
			continue
		}
		stack = append(stack, parents...)
	}
	return out, nil
}

// peelCommit follows tags from h to a commit.
func (w *walker) peelCommit(h plumbing.Hash) (plumbing.Hash, bool) {
	for range 10 {
		t, data, err := w.st.Read(h)
		if err != nil {
			return plumbing.ZeroHash, false
		}
		switch t {
		case plumbing.CommitObject:
			return h, true
		case plumbing.TagObject:
			if h, _, err = odb.TagTarget(data); err != nil {
				return plumbing.ZeroHash, false
			}
		default:
			return plumbing.ZeroHash, false
		}
	}
	return plumbing.ZeroHash, false
}

func (w *walker) plan(h plumbing.Hash, plan *packPlan) bool {
	if w.state[h]&(planned|held) != 0 {
		return false
	}
	w.state[h] |= planned
	plan.objects = append(plan.objects, h)
	return true
}

// peelInto adds a wanted object to the plan: tags (with what they point
// at), trees and blobs directly; it returns the commit to walk from, if any.
func (w *walker) peelInto(h plumbing.Hash, plan *packPlan) (plumbing.Hash, error) {
	for range 10 {
		t, data, err := w.st.Read(h)
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("want %s: %w", h, err)
		}
		switch t {
		case plumbing.CommitObject:
			return h, nil
		case plumbing.TagObject:
			w.plan(h, plan)
			if h, _, err = odb.TagTarget(data); err != nil {
				return plumbing.ZeroHash, fmt.Errorf("tag %s: %w", h, err)
			}
		case plumbing.TreeObject:
			return plumbing.ZeroHash, w.addTree(h, plan)
		default:
			w.plan(h, plan)
			return plumbing.ZeroHash, nil
		}
	}
	return plumbing.ZeroHash, fmt.Errorf("want %s: tag chain too long", h)
}

// eachEntry reads tree h and calls fn on its entries that are objects of
// this repo (submodule commits are not).
func (w *walker) eachEntry(h plumbing.Hash, fn func(dir bool, id plumbing.Hash) error) error {
	t, data, err := w.st.Read(h)
	if err == nil && t != plumbing.TreeObject {
		err = fmt.Errorf("a %s, not a tree", t)
	}
	if err != nil {
		return fmt.Errorf("tree %s: %w", h, err)
	}
	return odb.EachTreeEntry(data, func(mode uint32, id plumbing.Hash) error {
		if mode == odb.ModeSubmodule {
			return nil
		}
		return fn(mode == odb.ModeDir, id)
	})
}

// markTree records a tree and everything under it as held by the client.
func (w *walker) markTree(h plumbing.Hash) error {
	if w.state[h]&held != 0 {
		return nil
	}
	w.state[h] |= held
	return w.eachEntry(h, func(dir bool, id plumbing.Hash) error {
		if dir {
			return w.markTree(id)
		}
		w.state[id] |= held
		return nil
	})
}

// addTree adds a tree and what is under it, minus what the client has.
func (w *walker) addTree(h plumbing.Hash, plan *packPlan) error {
	if !w.plan(h, plan) {
		return nil
	}
	return w.eachEntry(h, func(dir bool, id plumbing.Hash) error {
		if dir {
			return w.addTree(id, plan)
		}
		w.plan(id, plan)
		return nil
	})
}

// includeTags adds the annotated tags (refs/tags/*) whose peeled object
// goes out in this pack, with the whole chain of a tag of a tag, as git's
// include-tag does (pack-objects.c, add_ref_tag and add_tag_chain): the
// inner tags may have no ref of their own.
func (w *walker) includeTags(plan *packPlan) error {
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
		peeled, ok := w.peel(h)
		if !ok || peeled == h || w.state[peeled]&planned == 0 {
			return nil // a lightweight tag, or one whose object stays home
		}
		for range 10 {
			if !w.plan(h, plan) {
				return nil
			}
			t, data, err := w.st.Read(h)
			if err != nil || t != plumbing.TagObject {
				return nil
			}
			next, typ, err := odb.TagTarget(data)
			if err != nil || typ != plumbing.TagObject {
				return nil
			}
			h = next
		}
		return nil
	})
}

// peel follows tags from h to the first object that is not a tag.
func (w *walker) peel(h plumbing.Hash) (plumbing.Hash, bool) {
	for range 10 {
		t, data, err := w.st.Read(h)
		if err != nil {
			return plumbing.ZeroHash, false
		}
		if t != plumbing.TagObject {
			return h, true
		}
		if h, _, err = odb.TagTarget(data); err != nil {
			return plumbing.ZeroHash, false
		}
	}
	return plumbing.ZeroHash, false
}
