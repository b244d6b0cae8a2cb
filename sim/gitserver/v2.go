package gitserver

import (
	"context"
	"errors"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
)

// Protocol v2 (gitprotocol-v2), for upload-pack: what git clients ask for
// by default since git 2.26, and what GitHub and Azure Repos answer.
// Clients get the same refs and objects either way, but not always the
// same tags: a shallow fetch follows tags differently in v2.

// protocolVersion reads GIT_PROTOCOL (SSH) or the Git-Protocol header
// (HTTP), "version=2:other=x", as git's determine_protocol_version_server
// does: the highest version asked for that is known, else 0.
func protocolVersion(value string) int {
	v := 0
	for _, kv := range strings.Split(value, ":") {
		if n, ok := strings.CutPrefix(kv, "version="); ok {
			if x, err := strconv.Atoi(n); err == nil && x <= 2 && x > v {
				v = x
			}
		}
	}
	return v
}

// advertiseV2 writes the capability advertisement of upload-pack v2.
// "fetch=shallow" promises the deepen arguments; those this server does
// not serve are refused with an ERR that says so.
func advertiseV2(w io.Writer) error {
	pw := pktWriter{w}
	for _, l := range []string{"version 2", agent, "ls-refs=unborn", "fetch=shallow wait-for-done", "server-option", "object-format=sha1"} {
		if err := pw.line(l + "\n"); err != nil {
			return err
		}
	}
	return pw.flush()
}

// v2Request is one command of a v2 session.
type v2Request struct {
	command string
	args    []string
}

// readV2Request reads "command=<c>", capabilities, a delim, arguments and
// the flush. It returns nil at the end of the session: a flush alone, or
// the client hanging up between commands.
func readV2Request(pr *pktReader) (*v2Request, error) {
	b, kind, err := pr.packet()
	if errors.Is(err, io.EOF) || (err == nil && kind == pktFlush) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if kind != pktData {
		return nil, protoErr("protocol error: expected a command, got a special packet")
	}
	cmd, ok := strings.CutPrefix(trimLF(b), "command=")
	if !ok {
		return nil, protoErr("protocol error: expected command=<command>, got %q", trimLF(b))
	}
	req := &v2Request{command: cmd}
	inArgs := false
	for {
		b, kind, err := pr.packet()
		if err != nil {
			return nil, err
		}
		switch kind {
		case pktFlush:
			return req, nil
		case pktDelim:
			if inArgs {
				return nil, protoErr("protocol error: a second delimiter in the request")
			}
			inArgs = true
		case pktData:
			if inArgs {
				req.args = append(req.args, trimLF(b))
			}
			// Capabilities (agent, object-format, server-option) need
			// nothing from us.
		default:
			return nil, protoErr("protocol error: unexpected response-end packet in a request")
		}
	}
}

// uploadPackV2 serves v2 commands: one per request over HTTP (stateless),
// as many as the client sends over SSH, where the capability
// advertisement was already written.
func (s *Server) uploadPackV2(ctx context.Context, repo *Repo, in io.Reader, out io.Writer, stateless bool) error {
	pr := newPktReader(in)
	pw := pktWriter{out}
	for {
		req, err := readV2Request(pr)
		if err != nil {
			return sendErr(pw, err)
		}
		if req == nil {
			return nil
		}
		switch req.command {
		case "ls-refs":
			err = s.lsRefs(repo, req.args, pw)
		case "fetch":
			err = s.fetchV2(ctx, repo, req.args, out)
		default:
			err = sendErr(pw, protoErr("invalid command '%s'", req.command))
		}
		if err != nil || stateless {
			return err
		}
	}
}

// lsRefs is git's ls-refs (ls-refs.c): HEAD first, with its target for
// symrefs and as "unborn" when it points nowhere and the client asked;
// then the refs in order, filtered by prefix, with peeled tags for peel.
func (s *Server) lsRefs(repo *Repo, args []string, pw pktWriter) error {
	var peel, symrefs, unborn bool
	var prefixes []string
	for _, a := range args {
		switch {
		case a == "peel":
			peel = true
		case a == "symrefs":
			symrefs = true
		case a == "unborn":
			unborn = true
		case strings.HasPrefix(a, "ref-prefix "):
			prefixes = append(prefixes, a[len("ref-prefix "):])
		default:
			return sendErr(pw, protoErr("unexpected line: '%s'", a))
		}
	}
	// Too many prefixes and git ignores them all (TOO_MANY_PREFIXES).
	if len(prefixes) >= 65536 {
		prefixes = nil
	}
	match := func(name string) bool {
		if len(prefixes) == 0 {
			return true
		}
		for _, p := range prefixes {
			if strings.HasPrefix(name, p) {
				return true
			}
		}
		return false
	}
	repo.mu.RLock()
	refs, head, err := listRefs(repo)
	repo.mu.RUnlock()
	if err != nil {
		return sendErr(pw, &internalError{err})
	}
	// HEAD first, unborn or not (ls-refs.c, send_possibly_unborn_head).
	if (len(refs) == 0 || refs[0].name != "HEAD") && unborn && symrefs && head.Type() == plumbing.SymbolicReference && match("HEAD") {
		if err := pw.line("unborn HEAD symref-target:" + head.Target().String() + "\n"); err != nil {
			return err
		}
	}
	for _, r := range refs {
		if !match(r.name) {
			continue
		}
		line := r.hash.String() + " " + r.name
		if r.name == "HEAD" && symrefs && head.Type() == plumbing.SymbolicReference {
			line += " symref-target:" + head.Target().String()
		}
		if peel && r.peeled != plumbing.ZeroHash {
			line += " peeled:" + r.peeled.String()
		}
		if err := pw.line(line + "\n"); err != nil {
			return err
		}
	}
	return pw.flush()
}

// fetchV2 is git's upload_pack_v2 (upload-pack.c): without haves the pack
// goes at once; with haves and no "done", an acknowledgments section that
// ends the response, or says "ready" and goes on with the pack; then the
// shallow-info section when the client is or becomes shallow, and the
// packfile section, always on side-band-64k.
func (s *Server) fetchV2(ctx context.Context, repo *Repo, args []string, out io.Writer) error {
	pw := pktWriter{out}
	req := &uploadRequest{caps: map[string]bool{"side-band-64k": true}}
	var haves []plumbing.Hash
	var done, waitForDone, seenHaves bool
	seen := map[plumbing.Hash]bool{}
	for _, a := range args {
		word, rest, _ := strings.Cut(a, " ")
		switch word {
		case "want", "have", "shallow":
			h, ok := parseHash(rest)
			if !ok {
				return sendErr(pw, protoErr("protocol error: bad %s %q", word, rest))
			}
			switch word {
			case "want":
				if !seen[h] {
					seen[h] = true
					req.wants = append(req.wants, h)
				}
			case "have":
				seenHaves = true
				haves = append(haves, h)
			default:
				if !slices.Contains(req.shallow, h) {
					req.shallow = append(req.shallow, h)
				}
			}
		case "deepen":
			n, err := strconv.Atoi(rest)
			if err != nil || n <= 0 {
				return sendErr(pw, protoErr("protocol error: bad deepen %q", rest))
			}
			req.depth = n
		case "deepen-since":
			req.deepenSince = true
		case "deepen-not":
			req.deepenNot = true
		case "done":
			done = true
		case "wait-for-done":
			waitForDone = true
		case "thin-pack", "ofs-delta", "no-progress", "include-tag", "deepen-relative":
			req.caps[word] = true
		default:
			return sendErr(pw, protoErr("unexpected line: '%s'", a))
		}
	}
	if len(req.wants) == 0 && !waitForDone {
		return nil // nothing wanted, nothing said
	}
	version, walk, dr, err := s.prepareWalk(repo, req)
	if err != nil {
		return sendErr(pw, err)
	}
	neg := newNegotiator(repo.st, walk.wants)
	repo.mu.RLock()
	for _, h := range haves {
		neg.have(h)
	}
	ready := seenHaves && !done && !waitForDone && neg.okToGiveUp()
	repo.mu.RUnlock()
	if seenHaves && !done {
		// send_acks: the haves that were news, or NAK.
		if err := pw.line("acknowledgments\n"); err != nil {
			return err
		}
		if len(neg.haves) == 0 {
			if err := pw.line("NAK\n"); err != nil {
				return err
			}
		}
		for _, h := range neg.haves {
			if err := pw.linef("ACK %s\n", h); err != nil {
				return err
			}
		}
		if !ready {
			return pw.flush()
		}
		if err := pw.line("ready\n"); err != nil {
			return err
		}
		if err := pw.delim(); err != nil {
			return err
		}
	}
	if dr != nil || len(walk.shallow) > 0 {
		if err := pw.line("shallow-info\n"); err != nil {
			return err
		}
		if dr != nil {
			if err := writeShallowLines(pw, dr); err != nil {
				return err
			}
		}
		if err := pw.delim(); err != nil {
			return err
		}
	}
	if err := pw.line("packfile\n"); err != nil {
		return err
	}
	walk.haves = append(walk.haves, neg.haves...)
	return s.sendPack(ctx, repo, version, req, walk, out)
}
