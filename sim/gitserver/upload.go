package gitserver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/gitopsim/gitopsim/sim/gitserver/internal/odb"
)

// uploadRequest is the client's side of upload-pack before negotiation.
type uploadRequest struct {
	wants []plumbing.Hash
	caps  map[string]bool
	// shallow are the client's shallow commits, in its order.
	shallow []plumbing.Hash
	depth   int
	// deepenSince and deepenNot are requests this server refuses.
	deepenSince, deepenNot bool
}

// readUploadRequest reads wants, shallows and deepen up to the flush. It
// returns nil for a flush-only request or a client that hung up: nothing
// wanted (ls-remote, up-to-date fetch, clone of an empty repo).
func readUploadRequest(pr *pktReader) (*uploadRequest, error) {
	req := &uploadRequest{caps: map[string]bool{}}
	seen := map[plumbing.Hash]bool{}
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
			if len(req.wants) == 0 {
				for _, c := range fields[1:] {
					req.caps[c] = true
				}
			}
			if !seen[h] {
				seen[h] = true
				req.wants = append(req.wants, h)
			}
		case strings.HasPrefix(s, "shallow "):
			h, ok := parseHash(s[8:])
			if !ok {
				return nil, protoErr("protocol error: bad shallow %q", s[8:])
			}
			if !slices.Contains(req.shallow, h) {
				req.shallow = append(req.shallow, h)
			}
		case strings.HasPrefix(s, "deepen "):
			n, err := strconv.Atoi(s[7:])
			if err != nil || n <= 0 {
				return nil, protoErr("protocol error: bad deepen %q", s[7:])
			}
			req.depth = n
		case strings.HasPrefix(s, "deepen-since "):
			req.deepenSince = true
		case strings.HasPrefix(s, "deepen-not "):
			req.deepenNot = true
		default:
			return nil, protoErr("protocol error: unexpected line %q", s)
		}
	}
	if len(req.wants) == 0 {
		return nil, nil
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

// checkWants refuses what git's v0 upload-pack refuses (receive_needs,
// check_non_tip): over SSH a want must be an id the advertisement named;
// over stateless HTTP, where the advertisement came from another request,
// it may also be a commit reachable from a current ref. Anything else is
// "not our ref", so a commit force-pushed away is not fetchable by id.
// (v2 takes any object, as git's parse_want does.)
func (s *Server) checkWants(repo *Repo, wants []plumbing.Hash, stateless bool, advertised map[plumbing.Hash]bool) error {
	tips := advertised
	repo.mu.RLock()
	defer repo.mu.RUnlock()
	if stateless {
		refs, _, err := listRefs(repo)
		if err != nil {
			return &internalError{err}
		}
		tips = map[plumbing.Hash]bool{}
		for _, r := range refs {
			tips[r.hash] = true
		}
	}
	var others []plumbing.Hash
	for _, w := range wants {
		if !tips[w] {
			others = append(others, w)
		}
	}
	if len(others) == 0 {
		return nil
	}
	if stateless {
		w := &walker{st: repo.st}
		var roots []plumbing.Hash
		for h := range tips {
			roots = append(roots, h)
		}
		reach, err := w.commitClosure(roots, nil)
		if err != nil {
			return &internalError{err}
		}
		others = slices.DeleteFunc(others, func(h plumbing.Hash) bool { return reach[h] })
		if len(others) == 0 {
			return nil
		}
	}
	return protoErr("upload-pack: not our ref %s", others[0])
}

// prepareWalk checks a request's wants and shallow lines against the repo
// and turns its deepen request into the shallow lines to send (dr, nil
// without one) and the walk that makes the pack. Both protocol versions
// share it.
func (s *Server) prepareWalk(repo *Repo, req *uploadRequest) (uint64, *packRequest, *deepenResult, error) {
	// git changed what deepen-relative means in 2.54 (shallow.c,
	// get_shallows_depth); neither it nor the rev-list cuts are served.
	switch {
	case req.deepenSince || req.deepenNot:
		return 0, nil, nil, protoErr("deepen-since and deepen-not (--shallow-since, --shallow-exclude) are not supported by gitopsim's git server; use --depth")
	case req.caps["deepen-relative"]:
		return 0, nil, nil, protoErr("deepen-relative (--deepen) is not supported by gitopsim's git server; use --depth")
	}
	repo.mu.RLock()
	defer repo.mu.RUnlock()
	for _, w := range req.wants {
		if err := repo.st.HasEncodedObject(w); err != nil {
			return 0, nil, nil, protoErr("upload-pack: not our ref %s", w)
		}
	}
	// The client's shallow commits that we hold; git ignores the others
	// and refuses one that is not a commit (upload-pack.c, process_shallow).
	var clientShallow []plumbing.Hash
	for _, h := range req.shallow {
		t, _, err := repo.st.Read(h)
		if err != nil {
			continue
		}
		if t != plumbing.CommitObject {
			return 0, nil, nil, protoErr("upload-pack: invalid shallow object %s", h)
		}
		clientShallow = append(clientShallow, h)
	}
	walk := &packRequest{wants: req.wants, shallow: map[plumbing.Hash]bool{}, includeTag: req.caps["include-tag"]}
	for _, h := range clientShallow {
		walk.shallow[h] = true
	}
	if req.depth == 0 {
		return repo.version, walk, nil, nil
	}
	dr, err := deepen(repo.st, req.wants, clientShallow, req.depth)
	if err != nil {
		return 0, nil, nil, &internalError{err}
	}
	walk.wants = append(slices.Clone(walk.wants), dr.extraWants...)
	walk.haves = dr.extraHaves
	walk.shallow = dr.registered
	return repo.version, walk, dr, nil
}

func writeShallowLines(pw pktWriter, dr *deepenResult) error {
	for _, h := range dr.shallow {
		if err := pw.linef("shallow %s\n", h); err != nil {
			return err
		}
	}
	for _, h := range dr.unshallow {
		if err := pw.linef("unshallow %s\n", h); err != nil {
			return err
		}
	}
	return nil
}

// uploadPack serves one v0/v1 upload-pack exchange. Stateful (SSH): the
// advertisement was sent (advertised holds the ids it named), and
// negotiation runs over as many rounds as the client needs. Stateless
// (HTTP): in holds one round; without "done" the answer is only ACK/NAK
// and the client comes back with another request.
func (s *Server) uploadPack(ctx context.Context, repo *Repo, in io.Reader, out io.Writer, stateless bool, advertised map[plumbing.Hash]bool) error {
	pr := newPktReader(in)
	pw := pktWriter{out}
	req, err := readUploadRequest(pr)
	if err != nil || req == nil {
		return sendErr(pw, err)
	}
	if err := s.checkWants(repo, req.wants, stateless, advertised); err != nil {
		return sendErr(pw, err)
	}
	version, walk, dr, err := s.prepareWalk(repo, req)
	if err != nil {
		return sendErr(pw, err)
	}
	// A shallow section goes out only for a deepen request; a shallow
	// client fetching without one does not read it (upload-pack.c,
	// receive_needs and send_shallow_list).
	if dr != nil {
		if err := writeShallowLines(pw, dr); err != nil {
			return err
		}
		if err := pw.flush(); err != nil {
			return err
		}
	}

	// Negotiation, as git's get_common_commits (upload-pack.c). With
	// multi_ack_detailed (what git asks for, and what stateless HTTP
	// needs): "ACK <oid> common" for each have we hold, "ACK <oid> ready"
	// once every want reaches a have, NAK at every flush, and after
	// "done" an ACK of the last common object (or NAK). multi_ack says
	// "continue" where detailed says "common" and "ready". Basic mode
	// (go-git): ACK the first common object only, NAK a flush while none
	// is known, NAK after "done" if none.
	detailed := req.caps["multi_ack_detailed"]
	multiAck := detailed || req.caps["multi_ack"]
	neg := newNegotiator(repo.st, walk.wants)
	var last plumbing.Hash
	gotCommon, gotOther := false, false
	for done := false; !done; {
		line, flush, err := pr.next()
		if errors.Is(err, io.EOF) {
			return nil // the client hung up, or a stateless round ended
		}
		if err != nil {
			return sendErr(pw, err)
		}
		if flush {
			repo.mu.RLock()
			ready := detailed && gotCommon && !gotOther && neg.okToGiveUp()
			repo.mu.RUnlock()
			if ready {
				if err := pw.linef("ACK %s ready\n", last); err != nil {
					return err
				}
			}
			if len(neg.haves) == 0 || multiAck {
				if err := pw.line("NAK\n"); err != nil {
					return err
				}
			}
			if stateless {
				return nil
			}
			gotCommon, gotOther = false, false
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
			ours, _ := neg.have(h)
			ready := !ours && multiAck && neg.okToGiveUp()
			repo.mu.RUnlock()
			var err error
			switch {
			case !ours:
				gotOther = true
				if ready && detailed {
					err = pw.linef("ACK %s ready\n", h)
				} else if ready {
					err = pw.linef("ACK %s continue\n", h)
				}
			case detailed:
				gotCommon, last = true, h
				err = pw.linef("ACK %s common\n", h)
			case multiAck:
				gotCommon, last = true, h
				err = pw.linef("ACK %s continue\n", h)
			default:
				gotCommon, last = true, h
				if len(neg.haves) == 1 {
					err = pw.linef("ACK %s\n", h)
				}
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
	case len(neg.haves) == 0:
		err2 = pw.line("NAK\n")
	case multiAck:
		err2 = pw.linef("ACK %s\n", last)
	}
	if err2 != nil {
		return err2
	}
	walk.haves = append(walk.haves, neg.haves...)
	return s.sendPack(ctx, repo, version, req, walk, out)
}

// sendPack plans and writes the pack, through side-band when asked. An
// identical request on an unchanged repo reuses the cached plan, and the
// cached bytes when the pack is small; otherwise the pack streams from
// storage as it is written.
func (s *Server) sendPack(ctx context.Context, repo *Repo, version uint64, req *uploadRequest, preq *packRequest, out io.Writer) error {
	ofsDelta, thin := req.caps["ofs-delta"], req.caps["thin-pack"]
	key := packKey(repo, version, preq, ofsDelta, thin)
	var entry *cachedPack
	if !s.opts.DisablePackCache {
		entry = s.packs.get(key)
	}
	var sb *sidebandWriter
	var w io.Writer
	var bw *bufio.Writer
	if req.caps["side-band-64k"] || req.caps["side-band"] {
		sb = newSidebandWriter(out, req.caps["side-band-64k"])
		w = sb
	} else {
		bw = bufio.NewWriterSize(out, 64<<10)
		w = bw
	}
	// fail reports a failure after the negotiation: on band 3 when there
	// is one (git's upload-pack does the same when pack-objects dies),
	// else as an ERR line if nothing of the pack went out yet.
	fail := func(err error, started bool) error {
		switch {
		case sb != nil:
			_ = sb.Fatal("upload-pack: " + oneLine(err.Error()) + "\n")
		case !started:
			_ = sendErr(pktWriter{out}, err)
		}
		return err
	}
	progress := func(msg string) error {
		if sb == nil || req.caps["no-progress"] {
			return nil
		}
		return sb.Progress(msg)
	}
	fromCache := entry != nil
	if entry == nil {
		repo.mu.RLock()
		plan, err := planPack(repo.st, preq)
		current := repo.version
		repo.mu.RUnlock()
		if err != nil {
			return fail(&internalError{fmt.Errorf("plan pack: %w", err)}, false)
		}
		if !thin {
			plan.has = nil
		}
		entry = &cachedPack{key: key, plan: plan}
		if current != version || s.opts.DisablePackCache {
			entry.key = ""
		}
	}
	if err := progress(fmt.Sprintf("Enumerating objects: %d, done.\n", len(entry.plan.objects))); err != nil {
		return err
	}
	st := entry.stats
	if entry.pack != nil {
		if _, err := w.Write(entry.pack); err != nil {
			return err
		}
	} else {
		// Objects are never removed from a repo, so the pack can be
		// written without the repo's lock: a slow client holds no push.
		opts := odb.PackOptions{OfsDelta: ofsDelta}
		if has := entry.plan.has; thin {
			opts.Has = func(h plumbing.Hash) bool { return has[h] }
		}
		var keep *cappedBuffer
		dst := w
		if entry.key != "" && !fromCache {
			keep = &cappedBuffer{max: s.packs.maxKeptPack()}
			dst = io.MultiWriter(w, keep)
		}
		stats, err := repo.st.WritePack(ctx, dst, entry.plan.objects, opts)
		if err != nil {
			var we *clientWriteError
			if errors.As(err, &we) || ctx.Err() != nil {
				return err
			}
			return fail(&internalError{fmt.Errorf("write pack: %w", err)}, true)
		}
		// A cached entry is shared and never changed: only a new one
		// takes the stats and bytes before it goes into the cache.
		st = stats
		if entry.key != "" && !fromCache {
			entry.stats = stats
			if !keep.over {
				entry.pack = keep.buf
			}
			s.packs.put(entry)
		}
	}
	deltas := st.Deltas + st.ThinDeltas
	if err := progress(fmt.Sprintf("Total %d (delta %d), reused %d (delta %d), pack-reused 0\n", st.Objects, deltas, st.Copied+deltas, deltas)); err != nil {
		return err
	}
	if bw != nil {
		return bw.Flush()
	}
	if err := sb.Flush(); err != nil {
		return err
	}
	return pktWriter{out}.flush()
}

// cappedBuffer keeps what is written up to max bytes, then gives up.
type cappedBuffer struct {
	buf  []byte
	max  int
	over bool
}

func (c *cappedBuffer) Write(p []byte) (int, error) {
	if !c.over {
		if len(c.buf)+len(p) > c.max {
			c.over, c.buf = true, nil
		} else {
			c.buf = append(c.buf, p...)
		}
	}
	return len(p), nil
}
