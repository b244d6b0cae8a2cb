package gitserver

import (
	"errors"
	"fmt"
	"os"
	"path"
	"slices"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage"
	"golang.org/x/tools/txtar"
)

// RepoOptions shape a new repo.
type RepoOptions struct {
	// Public repos can be read anonymously over HTTPS (and by any known
	// SSH key).
	Public bool
	// DefaultBranch is where HEAD points; default Options.DefaultBranch.
	DefaultBranch string
}

// CreateRepo makes an empty repository.
func (s *Server) CreateRepo(name string, o RepoOptions) (*Repo, error) {
	n, err := CleanRepoName(name)
	if err != nil {
		return nil, err
	}
	branch := o.DefaultBranch
	if branch == "" {
		branch = s.opts.DefaultBranch
	}
	r, err := s.store.Create(n, branch)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.meta[n] = repoMeta{public: o.Public}
	// Only the public flag is an identity-file matter; the repo itself is
	// on disk already.
	if o.Public {
		return r, s.persistLocked()
	}
	return r, nil
}

// DeleteRepo removes a repository and its data.
func (s *Server) DeleteRepo(name string) error {
	if err := s.store.Delete(name); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	wasPublic := s.meta[name].public
	delete(s.meta, name)
	if wasPublic {
		return s.persistLocked()
	}
	return nil
}

// SetPublic makes a repo readable without credentials, or private again.
func (s *Server) SetPublic(name string, public bool) error {
	if _, ok := s.store.Get(name); !ok {
		return fmt.Errorf("%w: %s", ErrRepoNotFound, name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.meta[name]
	m.public = public
	s.meta[name] = m
	return s.persistLocked()
}

// Repos lists repository names.
func (s *Server) Repos() []string { return s.store.Names() }

// Ref returns what a ref ("main", "refs/tags/v1", "HEAD") points at, fully
// resolved; a "^{}" suffix peels annotated tags to the commit, as in git.
func (s *Server) Ref(repo, ref string) (plumbing.Hash, error) {
	r, ok := s.store.Get(repo)
	if !ok {
		return plumbing.ZeroHash, fmt.Errorf("%w: %s", ErrRepoNotFound, repo)
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	name, peel := strings.CutSuffix(ref, "^{}")
	h, err := resolveRef(r.st, name)
	if err != nil || !peel {
		return h, err
	}
	for range 5 {
		t, err := object.GetTag(r.st, h)
		if err != nil {
			return h, nil // not a tag object: already peeled
		}
		h = t.Target
	}
	return h, nil
}

// HeadBranch is the branch a repo's HEAD points at (whether or not it
// exists yet), as a clone would check out.
func (s *Server) HeadBranch(repo string) (string, error) {
	r, ok := s.store.Get(repo)
	if !ok {
		return "", fmt.Errorf("%w: %s", ErrRepoNotFound, repo)
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	head, err := r.st.Reference(plumbing.HEAD)
	if err != nil {
		return "", err
	}
	if head.Type() != plumbing.SymbolicReference || !head.Target().IsBranch() {
		return "", fmt.Errorf("%s: HEAD is detached", repo)
	}
	return head.Target().Short(), nil
}

// Refs lists a repo's refs (without HEAD) and what they point at.
func (s *Server) Refs(repo string) (map[string]plumbing.Hash, error) {
	r, ok := s.store.Get(repo)
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrRepoNotFound, repo)
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	it, err := r.st.IterReferences()
	if err != nil {
		return nil, err
	}
	out := map[string]plumbing.Hash{}
	err = it.ForEach(func(rf *plumbing.Reference) error {
		if rf.Type() == plumbing.HashReference {
			out[rf.Name().String()] = rf.Hash()
		}
		return nil
	})
	return out, err
}

func resolveRef(st storage.Storer, ref string) (plumbing.Hash, error) {
	for _, name := range refCandidates(ref) {
		if rf, err := st.Reference(name); err == nil {
			for range 5 {
				if rf.Type() == plumbing.HashReference {
					return rf.Hash(), nil
				}
				if rf, err = st.Reference(rf.Target()); err != nil {
					break
				}
			}
		}
	}
	return plumbing.ZeroHash, fmt.Errorf("ref %q not found", ref)
}

func refCandidates(ref string) []plumbing.ReferenceName {
	if ref == "HEAD" || strings.HasPrefix(ref, "refs/") {
		return []plumbing.ReferenceName{plumbing.ReferenceName(ref)}
	}
	return []plumbing.ReferenceName{plumbing.NewBranchReferenceName(ref), plumbing.NewTagReferenceName(ref)}
}

// SetRef moves (or, with a zero hash, deletes) a ref, e.g. to move a
// branch back in a scenario.
func (s *Server) SetRef(repo, ref string, to plumbing.Hash) error {
	r, ok := s.store.Get(repo)
	if !ok {
		return fmt.Errorf("%w: %s", ErrRepoNotFound, repo)
	}
	name := plumbing.ReferenceName(ref)
	if !strings.HasPrefix(ref, "refs/") {
		name = plumbing.NewBranchReferenceName(ref)
	}
	// The rules a push meets, so every ref can be advertised and fetched.
	if !validRefname(name.String(), to.IsZero()) || refnameTooLong(name.String()) {
		return fmt.Errorf("set %s in %s: %w", ref, repo, ErrBadRefName)
	}
	r.mu.Lock()
	old := plumbing.ZeroHash
	if cur, err := r.st.Reference(name); err == nil {
		old = cur.Hash()
	}
	var err error
	if to.IsZero() {
		err = r.st.RemoveReference(name)
	} else if _, err = r.st.EncodedObject(plumbing.AnyObject, to); err == nil {
		err = r.st.SetReference(plumbing.NewHashReference(name, to))
	}
	if err == nil {
		r.version++
	}
	r.mu.Unlock()
	if err != nil {
		return fmt.Errorf("set %s in %s: %w", ref, repo, err)
	}
	s.publish([]PushEvent{{Repo: repo, Ref: name.String(), Old: old.String(), New: to.String()}})
	return nil
}

// Tag makes an annotated tag of what ref points at.
func (s *Server) Tag(repo, tag, ref, message string) (plumbing.Hash, error) {
	r, ok := s.store.Get(repo)
	if !ok {
		return plumbing.ZeroHash, fmt.Errorf("%w: %s", ErrRepoNotFound, repo)
	}
	r.mu.Lock()
	target, err := resolveRef(r.st, ref)
	var h plumbing.Hash
	if err == nil {
		t := &object.Tag{Name: tag, Tagger: s.signature(), Message: message + "\n", TargetType: plumbing.CommitObject, Target: target}
		obj := r.st.NewEncodedObject()
		if err = t.Encode(obj); err == nil {
			if h, err = r.st.SetEncodedObject(obj); err == nil {
				err = r.st.SetReference(plumbing.NewHashReference(plumbing.NewTagReferenceName(tag), h))
				r.version++
			}
		}
	}
	r.mu.Unlock()
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("tag %s in %s: %w", tag, repo, err)
	}
	s.publish([]PushEvent{{Repo: repo, Ref: "refs/tags/" + tag, Old: plumbing.ZeroHash.String(), New: h.String()}})
	return h, nil
}

// Commit writes files (path → content) on top of branch and moves it; a
// nil content deletes the file. The repo is created (private) if missing.
func (s *Server) Commit(repo, branch, message string, files map[string]*string) (plumbing.Hash, error) {
	if branch != "" {
		if name := plumbing.NewBranchReferenceName(branch).String(); !validRefname(name, false) || refnameTooLong(name) {
			return plumbing.ZeroHash, fmt.Errorf("commit to %s: %q is not a valid branch name", repo, branch)
		}
	}
	r, ok := s.store.Get(repo)
	if !ok {
		var err error
		if r, err = s.CreateRepo(repo, RepoOptions{}); err != nil {
			return plumbing.ZeroHash, err
		}
	}
	if branch == "" {
		branch = s.opts.DefaultBranch
	}
	ref := plumbing.NewBranchReferenceName(branch)
	r.mu.Lock()
	old := plumbing.ZeroHash
	var tree map[string]treeFile
	if cur, err := r.st.Reference(ref); err == nil {
		old = cur.Hash()
		c, err := object.GetCommit(r.st, old)
		if err != nil {
			r.mu.Unlock()
			return plumbing.ZeroHash, err
		}
		if tree, err = flattenTree(r.st, c.TreeHash); err != nil {
			r.mu.Unlock()
			return plumbing.ZeroHash, err
		}
	} else {
		tree = map[string]treeFile{}
	}
	h, err := s.writeCommit(r.st, tree, files, old, message)
	if err == nil {
		err = r.st.SetReference(plumbing.NewHashReference(ref, h))
	}
	if err == nil {
		fixHead(r)
		r.version++
	}
	r.mu.Unlock()
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("commit to %s/%s: %w", repo, branch, err)
	}
	s.publish([]PushEvent{{Repo: repo, Ref: ref.String(), Old: old.String(), New: h.String()}})
	return h, nil
}

// CommitTxtar commits the files of a txtar archive (the fixture format).
func (s *Server) CommitTxtar(repo, branch, archivePath string) (plumbing.Hash, error) {
	b, err := os.ReadFile(archivePath)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	ar := txtar.Parse(b)
	files := map[string]*string{}
	for _, f := range ar.Files {
		content := string(f.Data)
		files[f.Name] = &content
	}
	msg := strings.TrimSpace(string(ar.Comment))
	if msg == "" {
		msg = "seed from " + path.Base(archivePath)
	}
	return s.Commit(repo, branch, msg, files)
}

type treeFile struct {
	mode filemode.FileMode
	hash plumbing.Hash
}

func flattenTree(st storage.Storer, h plumbing.Hash) (map[string]treeFile, error) {
	t, err := object.GetTree(st, h)
	if err != nil {
		return nil, err
	}
	out := map[string]treeFile{}
	walker := object.NewTreeWalker(t, true, nil)
	defer walker.Close()
	for {
		name, e, err := walker.Next()
		if err != nil {
			break
		}
		if e.Mode != filemode.Dir {
			out[name] = treeFile{mode: e.Mode, hash: e.Hash}
		}
	}
	return out, nil
}

func (s *Server) writeCommit(st storage.Storer, tree map[string]treeFile, files map[string]*string, parent plumbing.Hash, message string) (plumbing.Hash, error) {
	for p, content := range files {
		p = strings.Trim(path.Clean("/"+p), "/")
		if p == "" || p == "." {
			return plumbing.ZeroHash, errors.New("empty file path")
		}
		for _, part := range strings.Split(p, "/") {
			if strings.EqualFold(part, ".git") {
				// git refuses such paths in any directory and any case
				// (read-cache.c, verify_dotfile: ".git" followed by NUL
				// or a slash, matched case-insensitively).
				return plumbing.ZeroHash, fmt.Errorf("file path %q: .git is reserved", p)
			}
		}
		if content == nil {
			delete(tree, p)
			continue
		}
		obj := st.NewEncodedObject()
		obj.SetType(plumbing.BlobObject)
		w, err := obj.Writer()
		if err != nil {
			return plumbing.ZeroHash, err
		}
		if _, err := w.Write([]byte(*content)); err != nil {
			return plumbing.ZeroHash, err
		}
		w.Close()
		h, err := st.SetEncodedObject(obj)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		tree[p] = treeFile{mode: filemode.Regular, hash: h}
	}
	for p := range tree {
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			if _, isFile := tree[d]; isFile {
				return plumbing.ZeroHash, fmt.Errorf("file path %q: %s is a file", p, d)
			}
		}
	}
	root, err := buildTree(st, tree, "")
	if err != nil {
		return plumbing.ZeroHash, err
	}
	sig := s.signature()
	c := &object.Commit{Author: sig, Committer: sig, Message: message + "\n", TreeHash: root}
	if !parent.IsZero() {
		c.ParentHashes = []plumbing.Hash{parent}
	}
	obj := st.NewEncodedObject()
	if err := c.Encode(obj); err != nil {
		return plumbing.ZeroHash, err
	}
	return st.SetEncodedObject(obj)
}

// buildTree writes the tree of the files under dir ("" for the root).
func buildTree(st storage.Storer, files map[string]treeFile, dir string) (plumbing.Hash, error) {
	prefix := ""
	if dir != "" {
		prefix = dir + "/"
	}
	var entries []object.TreeEntry
	subdirs := map[string]bool{}
	for p, f := range files {
		rest, ok := strings.CutPrefix(p, prefix)
		if !ok {
			continue
		}
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			subdirs[rest[:i]] = true
			continue
		}
		entries = append(entries, object.TreeEntry{Name: rest, Mode: f.mode, Hash: f.hash})
	}
	names := make([]string, 0, len(subdirs))
	for d := range subdirs {
		names = append(names, d)
	}
	slices.Sort(names)
	for _, d := range names {
		h, err := buildTree(st, files, prefix+d)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		entries = append(entries, object.TreeEntry{Name: d, Mode: filemode.Dir, Hash: h})
	}
	sort.Sort(object.TreeEntrySorter(entries))
	t := &object.Tree{Entries: entries}
	obj := st.NewEncodedObject()
	if err := t.Encode(obj); err != nil {
		return plumbing.ZeroHash, err
	}
	return st.SetEncodedObject(obj)
}

func (s *Server) signature() object.Signature {
	return object.Signature{Name: "gitopsim", Email: "gitopsim@localhost", When: s.clock.Now()}
}
