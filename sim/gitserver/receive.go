package gitserver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/gitopsim/gitopsim/sim/gitserver/internal/odb"
	"github.com/go-git/go-git/v5/plumbing"
)

// refCommand is one line of a push.
type refCommand struct {
	old, new plumbing.Hash
	name     plumbing.ReferenceName
}

func (c refCommand) isDelete() bool { return c.new.IsZero() }

// PushEvent records one ref changed by a push, a commit or SetRef.
type PushEvent struct {
	Repo string
	Ref  string
	Old  string
	New  string
	// Time is on the simulator's clock.
	Time string
	// Who is the identity that pushed ("" for the control API).
	Who string
}

// receivePack serves one receive-pack exchange: commands, pack, the
// connectivity check, updates with compare-and-swap, and the status
// report. The advertisement was already sent (SSH) or came with info/refs
// (HTTP). The pack is stored with no lock held; only the ref updates take
// the repo's write lock.
func (s *Server) receivePack(ctx context.Context, repo *Repo, in io.Reader, out io.Writer, who string) error {
	br := bufio.NewReaderSize(in, 64<<10)
	pr := newPktReader(br)
	pw := pktWriter{out}
	var cmds []refCommand
	caps := map[string]bool{}
	clientShallow := map[plumbing.Hash]bool{}
	for {
		line, flush, err := pr.next()
		if errors.Is(err, io.EOF) && len(cmds) == 0 {
			return nil // nothing to push
		}
		if err != nil {
			return err
		}
		if flush {
			break
		}
		s := trimLF(line)
		if h, ok := strings.CutPrefix(s, "shallow "); ok {
			// A push from a shallow clone: its history may stop short.
			if id, ok := parseHash(h); ok {
				clientShallow[id] = true
			}
			continue
		}
		if i := strings.IndexByte(s, 0); i >= 0 {
			for _, c := range strings.Fields(s[i+1:]) {
				caps[c] = true
			}
			s = s[:i]
		}
		f := strings.Fields(s)
		if len(f) != 3 {
			return sendErr(pw, protoErr("protocol error: bad command %q", s))
		}
		o, ok1 := parseHash(f[0])
		n, ok2 := parseHash(f[1])
		if !ok1 || !ok2 {
			return sendErr(pw, protoErr("protocol error: bad command %q", s))
		}
		cmds = append(cmds, refCommand{old: o, new: n, name: plumbing.ReferenceName(f[2])})
	}
	if len(cmds) == 0 {
		return nil
	}
	allDeletes := !slices.ContainsFunc(cmds, func(c refCommand) bool { return !c.isDelete() })

	var unpackErr error
	var fresh []plumbing.Hash
	if !allDeletes {
		// The pack is the rest of the stream; the stream itself must stay
		// open for the report, so hide any Close.
		ids, err := repo.st.StorePack(struct{ io.Reader }{br})
		if err != nil {
			unpackErr = &unpackError{err}
		}
		fresh = ids
	}
	results := make([]string, len(cmds))
	var events []PushEvent
	if unpackErr != nil {
		for i := range cmds {
			results[i] = "unpacker error"
		}
	} else {
		// What the pack brought must be whole down to what the repo held
		// before (git's check_connected); objects are only ever added, so
		// this needs no lock.
		conn := &connectivity{st: repo.st, fresh: map[plumbing.Hash]bool{}, clientShallow: clientShallow, seen: map[plumbing.Hash]bool{}}
		for _, id := range fresh {
			conn.fresh[id] = true
		}
		for i, c := range cmds {
			if !c.isDelete() {
				results[i] = conn.check(c.new)
			}
		}
		repo.mu.Lock()
		existing := refNames(repo)
		for i, c := range cmds {
			if results[i] == "" {
				results[i] = s.checkCommand(repo, c, existing, cmds)
			}
		}
		failed := slices.ContainsFunc(results, func(r string) bool { return r != "" })
		if caps["atomic"] && failed {
			for i, r := range results {
				if r == "" {
					results[i] = "atomic push failure"
				}
			}
		}
		for i, c := range cmds {
			if results[i] != "" {
				continue
			}
			var err error
			if c.isDelete() {
				err = repo.st.RemoveReference(c.name)
			} else {
				err = repo.st.SetReference(plumbing.NewHashReference(c.name, c.new))
			}
			if err != nil {
				results[i] = "failed to update ref: " + err.Error()
				continue
			}
			events = append(events, PushEvent{Repo: repo.name, Ref: c.name.String(), Old: c.old.String(), New: c.new.String(), Who: who})
		}
		if len(events) > 0 {
			fixHead(repo)
			repo.version++
		}
		repo.mu.Unlock()
	}
	s.publish(events)

	if !caps["report-status"] {
		return unpackErr
	}
	// Each status is one pkt-line; a reason too long for it is cut (ref
	// names are bounded by refnameTooLong or by the command's own line).
	status := "unpack ok"
	if unpackErr != nil {
		status = "unpack " + oneLine(unpackErr.(*unpackError).err.Error())
	}
	if err := pw.line(truncLine(status, maxPktData-1) + "\n"); err != nil {
		return err
	}
	for i, c := range cmds {
		line := "ok " + c.name.String()
		if results[i] != "" {
			line = "ng " + c.name.String() + " " + oneLine(results[i])
		}
		if err := pw.line(truncLine(line, maxPktData-1) + "\n"); err != nil {
			return err
		}
	}
	if err := pw.flush(); err != nil {
		return err
	}
	return unpackErr
}

// connectivity checks that a pushed tip is whole: every object under it is
// in the new pack or was in the repo before. What the repo held before is
// whole already, so the walk only goes through the pack's objects.
type connectivity struct {
	st            *odb.DB
	fresh         map[plumbing.Hash]bool
	clientShallow map[plumbing.Hash]bool
	seen          map[plumbing.Hash]bool
}

// check returns "" or the reason git gives: "missing necessary objects"
// (receive-pack.c, set_connectivity_errors), or "shallow update not
// allowed" when what is missing is the history behind one of the
// client's shallow commits (update_shallow_info; receive.shallowUpdate is
// off by default).
func (c *connectivity) check(tip plumbing.Hash) string {
	type item struct {
		id     plumbing.Hash
		parent plumbing.Hash // the commit whose parent this is, if any
	}
	stack := []item{{id: tip}}
	for len(stack) > 0 {
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if c.seen[it.id] {
			continue
		}
		if !c.fresh[it.id] {
			if c.st.HasEncodedObject(it.id) != nil {
				if c.clientShallow[it.parent] {
					return "shallow update not allowed"
				}
				return "missing necessary objects"
			}
			c.seen[it.id] = true
			continue
		}
		c.seen[it.id] = true
		// A blob has no links: its type comes from the pack's headers,
		// without inflating it.
		if t, err := c.st.Type(it.id); err != nil || t == plumbing.BlobObject {
			if err != nil {
				return "missing necessary objects"
			}
			continue
		}
		t, data, err := c.st.Read(it.id)
		if err != nil {
			return "missing necessary objects"
		}
		switch t {
		case plumbing.CommitObject:
			tree, parents, err := odb.CommitLinks(data)
			if err != nil {
				return "missing necessary objects"
			}
			stack = append(stack, item{id: tree})
			for _, p := range parents {
				stack = append(stack, item{id: p, parent: it.id})
			}
		case plumbing.TreeObject:
			err := odb.EachTreeEntry(data, func(mode uint32, id plumbing.Hash) error {
				if mode != odb.ModeSubmodule {
					stack = append(stack, item{id: id})
				}
				return nil
			})
			if err != nil {
				return "missing necessary objects"
			}
		case plumbing.TagObject:
			target, _, err := odb.TagTarget(data)
			if err != nil {
				return "missing necessary objects"
			}
			stack = append(stack, item{id: target})
		}
	}
	return ""
}

// refNames lists the repo's refs; repo lock held.
func refNames(repo *Repo) map[string]bool {
	names := map[string]bool{}
	iter, err := repo.st.IterReferences()
	if err != nil {
		return names
	}
	_ = iter.ForEach(func(r *plumbing.Reference) error {
		names[r.Name().String()] = true
		return nil
	})
	iter.Close()
	return names
}

// checkCommand validates one ref update against the repo; "" means go.
// existing are the repo's refs and all the push's commands. Repo write
// lock held.
func (s *Server) checkCommand(repo *Repo, c refCommand, existing map[string]bool, all []refCommand) string {
	name := c.name.String()
	if !validRefname(name, c.isDelete()) {
		return "funny refname"
	}
	if refnameTooLong(name) {
		return "failed to lock: ref name too long"
	}
	cur := plumbing.ZeroHash
	if r, err := repo.st.Reference(c.name); err == nil {
		cur = r.Hash()
	}
	if cur != c.old {
		// Another push moved the ref since the client read it.
		return fmt.Sprintf("failed to update ref: it moved (expected %s, found %s); fetch and try again", short(c.old), short(cur))
	}
	if c.isDelete() {
		// receive-pack.c, update: receive.denyDeleteCurrent refuses by
		// default, in bare repositories too.
		if head, err := repo.st.Reference(plumbing.HEAD); err == nil && head.Type() == plumbing.SymbolicReference && head.Target() == c.name {
			return "deletion of the current branch prohibited"
		}
		return ""
	}
	t, _, err := repo.st.Read(c.new)
	if err != nil {
		// receive-pack.c, update: "unpack should have generated %s".
		return "bad pack"
	}
	if c.name.IsBranch() && t != plumbing.CommitObject {
		return "branch must point at a commit, not a " + t.String()
	}
	// A ref cannot be both a file and a directory: refs/heads/a and
	// refs/heads/a/b (refs.c, refs_verify_refname_available). Refs the
	// push deletes do not count.
	deleted := map[string]bool{}
	for _, o := range all {
		if o.isDelete() {
			deleted[o.name.String()] = true
		}
	}
	conflict := func(other string) bool {
		return other != name && !deleted[other] && (strings.HasPrefix(name, other+"/") || strings.HasPrefix(other, name+"/"))
	}
	for other := range existing {
		if conflict(other) {
			return "failed to update ref: '" + other + "' exists; cannot create '" + name + "'"
		}
	}
	for _, o := range all {
		if !o.isDelete() && conflict(o.name.String()) {
			return "failed to update ref: '" + o.name.String() + "' is pushed too; cannot create '" + name + "'"
		}
	}
	return ""
}

func short(h plumbing.Hash) string {
	if h.IsZero() {
		return "nothing"
	}
	return h.String()[:7]
}

// fixHead points HEAD at a branch that exists when its own target does
// not, so that the first push to an empty repo makes a cloneable HEAD (as
// the big forges do). Repo write lock held.
func fixHead(repo *Repo) {
	head, err := repo.st.Reference(plumbing.HEAD)
	if err != nil || head.Type() != plumbing.SymbolicReference {
		return
	}
	if _, err := repo.st.Reference(head.Target()); err == nil {
		return
	}
	iter, err := repo.st.IterReferences()
	if err != nil {
		return
	}
	var branches []string
	_ = iter.ForEach(func(r *plumbing.Reference) error {
		if r.Name().IsBranch() {
			branches = append(branches, r.Name().String())
		}
		return nil
	})
	iter.Close()
	if len(branches) == 0 {
		return
	}
	slices.Sort(branches)
	pick := branches[0]
	for _, b := range branches {
		if b == "refs/heads/main" || b == "refs/heads/master" {
			pick = b
			break
		}
	}
	_ = repo.st.SetReference(plumbing.NewSymbolicReference(plumbing.HEAD, plumbing.ReferenceName(pick)))
}
