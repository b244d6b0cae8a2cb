package gitserver

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/sideband"
)

// Service names, as in the protocol.
const (
	UploadPack  = "git-upload-pack"
	ReceivePack = "git-receive-pack"
	agent       = "agent=gitopsim/1"
)

var (
	uploadCaps  = []string{"multi_ack_detailed", "side-band", "side-band-64k", "ofs-delta", "shallow", "no-progress", "include-tag"}
	receiveCaps = []string{"report-status", "delete-refs", "ofs-delta", "no-thin", "atomic", "quiet", agent}
)

// protocolError is sent to the client as an ERR pkt-line.
type protocolError struct{ msg string }

func (e *protocolError) Error() string { return e.msg }

func protoErr(format string, args ...any) error {
	return &protocolError{msg: fmt.Sprintf(format, args...)}
}

// advertise writes the ref advertisement of service for repo (v0).
// Upload-pack also lists peeled tags, so clients auto-follow them.
func advertise(w io.Writer, repo *Repo, service string) error {
	repo.mu.RLock()
	refs, head, err := listRefs(repo)
	repo.mu.RUnlock()
	if err != nil {
		return err
	}
	caps := receiveCaps
	if service == UploadPack {
		caps = append(slices.Clone(uploadCaps), "symref=HEAD:"+head.Target().String(), agent)
	}
	pw := pktWriter{w}
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
			return err
		}
	}
	for _, r := range refs {
		if err := emit(r.hash, r.name); err != nil {
			return err
		}
		if service == UploadPack && r.peeled != plumbing.ZeroHash {
			if err := pw.linef("%s %s^{}\n", r.peeled, r.name); err != nil {
				return err
			}
		}
	}
	return pw.flush()
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
		if r.Name().IsTag() {
			if t, err := object.GetTag(repo.st, r.Hash()); err == nil {
				a.peeled = t.Target
			}
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

// uploadRequest is the client's side of upload-pack before negotiation.
type uploadRequest struct {
	wants   []plumbing.Hash
	caps    map[string]bool
	shallow map[plumbing.Hash]bool
	depth   int
}

// readUploadRequest reads wants, shallows and deepen up to the flush. It
// returns nil for a flush-only request or a client that hung up: nothing
// wanted (ls-remote, up-to-date fetch, clone of an empty repo).
func readUploadRequest(pr *pktReader) (*uploadRequest, error) {
	req := &uploadRequest{caps: map[string]bool{}, shallow: map[plumbing.Hash]bool{}}
	for {
		line, flush, err := pr.next()
		if errors.Is(err, io.EOF) && len(req.wants) == 0 {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		if flush {
			break
		}
		s := trimLF(line)
		switch {
		case strings.HasPrefix(s, "want "):
			fields := strings.Fields(s[5:])
			if len(fields) == 0 {
				return nil, protoErr("protocol error: empty want")
			}
			h, ok := parseHash(fields[0])
			if !ok {
				return nil, protoErr("protocol error: bad want %q", fields[0])
			}
			req.wants = append(req.wants, h)
			if len(req.wants) == 1 {
				for _, c := range fields[1:] {
					req.caps[c] = true
				}
			}
		case strings.HasPrefix(s, "shallow "):
			h, ok := parseHash(s[8:])
			if !ok {
				return nil, protoErr("protocol error: bad shallow %q", s[8:])
			}
			req.shallow[h] = true
		case strings.HasPrefix(s, "deepen "):
			n, err := strconv.Atoi(s[7:])
			if err != nil || n <= 0 {
				return nil, protoErr("protocol error: bad deepen %q", s[7:])
			}
			req.depth = n
		case strings.HasPrefix(s, "deepen-since ") || strings.HasPrefix(s, "deepen-not "):
			return nil, protoErr("%s is not supported by this server; use --depth", strings.Fields(s)[0])
		default:
			return nil, protoErr("protocol error: unexpected line %q", s)
		}
	}
	if len(req.wants) == 0 {
		return nil, nil
	}
	if req.depth >= 1<<30 {
		req.depth = 0 // --unshallow sends a huge depth: the whole history
	}
	return req, nil
}

func parseHash(s string) (plumbing.Hash, bool) {
	s = strings.TrimSpace(s)
	if len(s) != 40 {
		return plumbing.ZeroHash, false
	}
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return plumbing.ZeroHash, false
		}
	}
	return plumbing.NewHash(s), true
}

// uploadPack serves one upload-pack exchange. Stateful (SSH): the
// advertisement was sent, and negotiation runs over as many rounds as the
// client needs. Stateless (HTTP): in holds one round; without "done" the
// answer is only ACK/NAK and the client comes back with another request.
func (s *Server) uploadPack(ctx context.Context, repo *Repo, in io.Reader, out io.Writer, stateless bool) error {
	pr := newPktReader(in)
	pw := pktWriter{out}
	req, err := readUploadRequest(pr)
	if err != nil || req == nil {
		return sendErr(pw, err)
	}
	if req.caps["deepen-since"] || req.caps["deepen-not"] {
		return sendErr(pw, protoErr("deepen-since and deepen-not are not supported"))
	}
	repo.mu.RLock()
	for _, w := range req.wants {
		if _, err := repo.st.EncodedObject(plumbing.AnyObject, w); err != nil {
			repo.mu.RUnlock()
			return sendErr(pw, protoErr("upload-pack: not our ref %s", w))
		}
	}
	version := repo.version
	var boundary *packPlan
	if req.depth > 0 || len(req.shallow) > 0 {
		// The shallow update depends on the wants and the depth only, and
		// goes out before negotiation.
		boundary, err = planPack(repo.st, &packRequest{wants: req.wants, depth: req.depth, clientShallow: req.shallow, commitsOnly: true})
	}
	repo.mu.RUnlock()
	if err != nil {
		return sendErr(pw, err)
	}
	if boundary != nil {
		for _, h := range boundary.shallow {
			if err := pw.linef("shallow %s\n", h); err != nil {
				return err
			}
		}
		for _, h := range boundary.unshallow {
			if err := pw.linef("unshallow %s\n", h); err != nil {
				return err
			}
		}
		if err := pw.flush(); err != nil {
			return err
		}
	}

	// Negotiation. With multi_ack_detailed (what git asks for, and what
	// stateless HTTP needs): "ACK <oid> common" for each new common object,
	// NAK at every flush, and after "done" an ACK of the last common object
	// (or NAK). Basic mode, for clients that ask for neither: ACK the first
	// common object, NAK a flush while none is known, NAK after "done" if
	// none.
	detailed := req.caps["multi_ack_detailed"]
	var common []plumbing.Hash
	commonSet := map[plumbing.Hash]bool{}
	for done := false; !done; {
		line, flush, err := pr.next()
		if errors.Is(err, io.EOF) {
			return nil // the client hung up, or a stateless round ended
		}
		if err != nil {
			return sendErr(pw, err)
		}
		if flush {
			if detailed || len(common) == 0 {
				if err := pw.line("NAK\n"); err != nil {
					return err
				}
			}
			if stateless {
				return nil
			}
			continue
		}
		s := trimLF(line)
		switch {
		case s == "done":
			done = true
		case strings.HasPrefix(s, "have "):
			h, ok := parseHash(s[5:])
			if !ok {
				return sendErr(pw, protoErr("protocol error: bad have %q", s[5:]))
			}
			repo.mu.RLock()
			_, err := repo.st.EncodedObject(plumbing.AnyObject, h)
			repo.mu.RUnlock()
			if err != nil || commonSet[h] {
				continue
			}
			commonSet[h] = true
			common = append(common, h)
			switch {
			case detailed:
				err = pw.linef("ACK %s common\n", h)
			case len(common) == 1:
				err = pw.linef("ACK %s\n", h)
			}
			if err != nil {
				return err
			}
		default:
			return sendErr(pw, protoErr("protocol error: unexpected line %q", s))
		}
	}
	var err2 error
	switch {
	case len(common) == 0:
		err2 = pw.line("NAK\n")
	case detailed:
		err2 = pw.linef("ACK %s\n", common[len(common)-1])
	}
	if err2 != nil {
		return err2
	}
	return s.sendPack(ctx, repo, version, req, common, out)
}

// sendPack plans and writes the pack, through side-band when asked,
// reusing a cached pack for an identical request on an unchanged repo.
func (s *Server) sendPack(ctx context.Context, repo *Repo, version uint64, req *uploadRequest, common []plumbing.Hash, out io.Writer) error {
	preq := &packRequest{wants: req.wants, haves: common, depth: req.depth, clientShallow: req.shallow, includeTag: req.caps["include-tag"]}
	key := cacheKey(preq)
	var cached *cachedPack
	if !s.opts.DisablePackCache {
		cached = repo.packs.get(version, key)
	}
	if cached == nil {
		var buf bytes.Buffer
		repo.mu.RLock()
		plan, err := planPack(repo.st, preq)
		if err == nil {
			err = encodePack(repo.st, plan.objects, &buf)
		}
		current := repo.version
		repo.mu.RUnlock()
		if err != nil {
			return sendErr(pktWriter{out}, fmt.Errorf("pack objects: %w", err))
		}
		cached = &cachedPack{plan: plan, pack: buf.Bytes()}
		if current == version && !s.opts.DisablePackCache {
			repo.packs.put(version, key, cached)
		}
	}
	var w io.Writer = out
	var mux *sideband.Muxer
	switch {
	case req.caps["side-band-64k"]:
		mux = sideband.NewMuxer(sideband.Sideband64k, out)
	case req.caps["side-band"]:
		mux = sideband.NewMuxer(sideband.Sideband, out)
	}
	if mux != nil {
		w = mux
		if !req.caps["no-progress"] {
			msg := fmt.Sprintf("Enumerating objects: %d, done.\nTotal %d (gitopsim)\n", len(cached.plan.objects), len(cached.plan.objects))
			if _, err := mux.WriteChannel(sideband.ProgressMessage, []byte(msg)); err != nil {
				return err
			}
		}
	}
	if _, err := w.Write(cached.pack); err != nil {
		return err
	}
	if mux != nil {
		return pktWriter{out}.flush()
	}
	return nil
}

// sendErr reports a protocol error to the client as an ERR line, and
// returns err for the caller's log and exit code.
func sendErr(pw pktWriter, err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	var pe *protocolError
	if !errors.As(err, &pe) {
		msg = "internal error: " + msg
	}
	_ = pw.linef("ERR %s\n", msg)
	return err
}

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

// receivePack serves one receive-pack exchange: commands, pack, updates
// with compare-and-swap, and the status report. The advertisement was
// already sent (SSH) or came with info/refs (HTTP).
func (s *Server) receivePack(ctx context.Context, repo *Repo, in io.Reader, out io.Writer, who string) error {
	br := bufio.NewReaderSize(in, 64<<10)
	pr := newPktReader(br)
	pw := pktWriter{out}
	var cmds []refCommand
	caps := map[string]bool{}
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
		if strings.HasPrefix(s, "shallow ") {
			continue // a push from a shallow clone: its history is our concern only through the pack
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
	allDeletes := true
	for _, c := range cmds {
		if !c.isDelete() {
			allDeletes = false
		}
	}

	repo.mu.Lock()
	unpackErr := error(nil)
	if !allDeletes {
		// The pack is the rest of the stream; the stream itself must stay
		// open for the report, so hide any Close.
		unpackErr = packfile.UpdateObjectStorage(repo.st, struct{ io.Reader }{br})
	}
	results := make([]string, len(cmds))
	var events []PushEvent
	if unpackErr != nil {
		for i := range cmds {
			results[i] = "unpacker error"
		}
	} else {
		for i, c := range cmds {
			results[i] = s.checkCommand(repo, c)
		}
		failed := slices.ContainsFunc(results, func(r string) bool { return r != "" })
		if caps["atomic"] && failed {
			for i, r := range results {
				if r == "" {
					results[i] = "atomic push failed"
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
	}
	repo.mu.Unlock()
	s.publish(events)

	if !caps["report-status"] {
		return unpackErr
	}
	status := "unpack ok\n"
	if unpackErr != nil {
		status = "unpack " + strings.ReplaceAll(unpackErr.Error(), "\n", " ") + "\n"
	}
	if err := pw.line(status); err != nil {
		return err
	}
	for i, c := range cmds {
		if results[i] == "" {
			if err := pw.linef("ok %s\n", c.name); err != nil {
				return err
			}
		} else if err := pw.linef("ng %s %s\n", c.name, results[i]); err != nil {
			return err
		}
	}
	if err := pw.flush(); err != nil {
		return err
	}
	return unpackErr
}

// checkCommand validates one ref update against the repo; "" means go.
// Repo write lock held.
func (s *Server) checkCommand(repo *Repo, c refCommand) string {
	if !strings.HasPrefix(c.name.String(), "refs/") || strings.Contains(c.name.String(), "..") {
		return "funny refname"
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
		return ""
	}
	o, err := repo.st.EncodedObject(plumbing.AnyObject, c.new)
	if err != nil {
		return "missing necessary objects"
	}
	if c.name.IsBranch() && o.Type() != plumbing.CommitObject {
		return "branch must point at a commit, not a " + o.Type().String()
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
