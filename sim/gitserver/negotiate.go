package gitserver

import (
	"bytes"
	"strconv"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/gitopsim/gitopsim/sim/gitserver/internal/odb"
)

// negotiator keeps what the client has told it has, as git's upload-pack
// does with its THEY_HAVE flags (upload-pack.c, do_got_oid): a have we
// hold is known, and so are its parents; the oldest have bounds the
// search for a common base (ok_to_give_up).
type negotiator struct {
	st       *odb.DB
	wants    []plumbing.Hash
	theyHave map[plumbing.Hash]bool
	// haves are the haves we hold that were not known yet, in order: what
	// v2 acknowledges, and the negative side of the pack walk.
	haves  []plumbing.Hash
	oldest int64
}

func newNegotiator(st *odb.DB, wants []plumbing.Hash) *negotiator {
	return &negotiator{st: st, wants: wants, theyHave: map[plumbing.Hash]bool{}, oldest: -1}
}

// have records a have line: it reports whether we hold the object, and
// whether it was news (not known through an earlier have's parents).
// Repo read lock held.
func (n *negotiator) have(h plumbing.Hash) (ours, fresh bool) {
	t, data, err := n.st.Read(h)
	if err != nil {
		return false, false
	}
	if t != plumbing.CommitObject {
		n.haves = append(n.haves, h)
		return true, true
	}
	known := n.theyHave[h]
	n.theyHave[h] = true
	if ct := commitTime(data); n.oldest < 0 || ct < n.oldest {
		n.oldest = ct
	}
	if _, parents, err := odb.CommitLinks(data); err == nil {
		for _, p := range parents {
			n.theyHave[p] = true
		}
	}
	if known {
		return true, false
	}
	n.haves = append(n.haves, h)
	return true, true
}

// okToGiveUp is git's ok_to_give_up: there is at least one have, and each
// wanted commit reaches a commit the client has, through parents no
// older than the oldest have (commit-reach.c,
// can_all_from_reach_with_flag, which tests a parent's flag before its
// date). Repo read lock held.
func (n *negotiator) okToGiveUp() bool {
	if len(n.haves) == 0 {
		return false
	}
	w := &walker{st: n.st}
	for _, want := range n.wants {
		c, ok := w.peelCommit(want)
		if !ok || n.theyHave[c] {
			continue
		}
		if !n.reaches(c) {
			return false
		}
	}
	return true
}

func (n *negotiator) reaches(from plumbing.Hash) bool {
	seen := map[plumbing.Hash]bool{from: true}
	stack := []plumbing.Hash{from}
	for len(stack) > 0 {
		h := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		_, data, err := n.st.Read(h)
		if err != nil {
			continue
		}
		_, parents, err := odb.CommitLinks(data)
		if err != nil {
			continue
		}
		for _, p := range parents {
			if n.theyHave[p] {
				return true
			}
			if seen[p] {
				continue
			}
			seen[p] = true
			if _, pd, err := n.st.Read(p); err != nil || commitTime(pd) < n.oldest {
				continue
			}
			stack = append(stack, p)
		}
	}
	return false
}

// commitTime is a commit's committer time, or 0.
func commitTime(data []byte) int64 {
	for len(data) > 0 {
		line, rest, _ := bytes.Cut(data, []byte{'\n'})
		if len(line) == 0 {
			break
		}
		if r, ok := bytes.CutPrefix(line, []byte("committer ")); ok {
			if i := bytes.LastIndexByte(r, '>'); i >= 0 {
				f := bytes.Fields(r[i+1:])
				if len(f) > 0 {
					t, _ := strconv.ParseInt(string(f[0]), 10, 64)
					return t
				}
			}
			return 0
		}
		data = rest
	}
	return 0
}
