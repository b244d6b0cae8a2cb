package gitserver

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/gitopsim/gitopsim/sim/gitserver/internal/odb"
	"github.com/go-git/go-git/v5/plumbing"
)

// Service names, as in the protocol.
const (
	UploadPack  = "git-upload-pack"
	ReceivePack = "git-receive-pack"
	agent       = "agent=gitopsim/1"
)

var (
	// git's own, less deepen-since, deepen-not and deepen-relative
	// (upload-pack.c, write_v0_ref).
	uploadCaps  = []string{"multi_ack", "thin-pack", "side-band", "side-band-64k", "ofs-delta", "shallow", "no-progress", "include-tag", "multi_ack_detailed"}
	receiveCaps = []string{"report-status", "delete-refs", "ofs-delta", "no-thin", "atomic", "quiet", agent}
)

// protocolError is sent to the client as an ERR pkt-line.
type protocolError struct{ msg string }

func (e *protocolError) Error() string { return e.msg }

func protoErr(format string, args ...any) error {
	return &protocolError{msg: fmt.Sprintf(format, args...)}
}

// advertise writes the ref advertisement of service for repo (v0, or v1
// with its version line first) and returns the ids it named, which are
// what an SSH client may want (upload-pack.c, mark_our_ref). Upload-pack
// lists HEAD, with symref= when HEAD is a branch that exists, and peeled
// tags so clients auto-follow them; receive-pack lists neither (git's
// write_head_info).
func advertise(w io.Writer, repo *Repo, service string, v1 bool) (map[plumbing.Hash]bool, error) {
	repo.mu.RLock()
	refs, head, err := listRefs(repo)
	repo.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	caps := receiveCaps
	if service == UploadPack {
		caps = slices.Clone(uploadCaps)
		if len(refs) > 0 && refs[0].name == "HEAD" && head.Type() == plumbing.SymbolicReference {
			caps = append(caps, "symref=HEAD:"+head.Target().String())
		}
		caps = append(caps, "object-format=sha1", agent)
	} else if len(refs) > 0 && refs[0].name == "HEAD" {
		refs = refs[1:]
	}
	pw := pktWriter{w}
	if v1 {
		if err := pw.line("version 1\n"); err != nil {
			return nil, err
		}
	}
	tips := map[plumbing.Hash]bool{}
	first := true
	emit := func(h plumbing.Hash, name string) error {
		if first {
			first = false
			return pw.linef("%s %s\x00%s\n", h, name, strings.Join(caps, " "))
		}
		return pw.linef("%s %s\n", h, name)
	}
	if len(refs) == 0 {
		if err := emit(plumbing.ZeroHash, "capabilities^{}"); err != nil {
			return nil, err
		}
	}
	for _, r := range refs {
		tips[r.hash] = true
		if err := emit(r.hash, r.name); err != nil {
			return nil, err
		}
		if service == UploadPack && r.peeled != plumbing.ZeroHash {
			if err := pw.linef("%s %s^{}\n", r.peeled, r.name); err != nil {
				return nil, err
			}
		}
	}
	return tips, pw.flush()
}

type advRef struct {
	name   string
	hash   plumbing.Hash
	peeled plumbing.Hash // target of an annotated tag
}

// listRefs returns HEAD (when it resolves) and then every ref by name;
// repo read lock held.
func listRefs(repo *Repo) ([]advRef, *plumbing.Reference, error) {
	head, err := repo.st.Reference(plumbing.HEAD)
	if err != nil {
		head = plumbing.NewSymbolicReference(plumbing.HEAD, plumbing.Master)
	}
	iter, err := repo.st.IterReferences()
	if err != nil {
		return nil, nil, err
	}
	var refs []advRef
	err = iter.ForEach(func(r *plumbing.Reference) error {
		if r.Name() == plumbing.HEAD || r.Type() != plumbing.HashReference {
			return nil
		}
		a := advRef{name: r.Name().String(), hash: r.Hash()}
		// Any ref to a tag is peeled, all the way through tags of tags,
		// as git's reference_get_peeled_oid does.
		for h, i := r.Hash(), 0; i < 10; i++ {
			t, data, err := repo.st.Read(h)
			if err != nil || t != plumbing.TagObject {
				break
			}
			if h, _, err = odb.TagTarget(data); err != nil {
				break
			}
			a.peeled = h
		}
		refs = append(refs, a)
		return nil
	})
	iter.Close()
	if err != nil {
		return nil, nil, err
	}
	slices.SortFunc(refs, func(a, b advRef) int { return strings.Compare(a.name, b.name) })
	if head.Type() == plumbing.SymbolicReference {
		if t, err := repo.st.Reference(head.Target()); err == nil {
			refs = append([]advRef{{name: "HEAD", hash: t.Hash()}}, refs...)
		}
	} else {
		refs = append([]advRef{{name: "HEAD", hash: head.Hash()}}, refs...)
	}
	return refs, head, nil
}

// sendErr reports a protocol error to the client as an ERR line, and
// returns err for the caller's log and exit code.
func sendErr(pw pktWriter, err error) error {
	if err == nil {
		return nil
	}
	msg := oneLine(err.Error())
	var pe *protocolError
	if !errors.As(err, &pe) {
		msg = "internal error: " + msg
	}
	// An ERR line is one pkt-line: a long message is cut, never split.
	_ = pw.line("ERR " + truncLine(msg, maxPktData-len("ERR \n")) + "\n")
	return err
}
