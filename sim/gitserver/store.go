package gitserver

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/go-git/go-billy/v5"
	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-billy/v5/util"
	"github.com/go-git/go-git/v5/plumbing"

	"github.com/gitopsim/gitopsim/sim/gitserver/internal/odb"
)

// Errors of the repo store.
var (
	ErrRepoNotFound = errors.New("repository not found")
	ErrRepoExists   = errors.New("repository already exists")
	ErrBadRepoName  = errors.New("invalid repository name")
	// ErrBadRefName is a ref name git would refuse (check_refname_format),
	// or too long for a filesystem to hold.
	ErrBadRefName = errors.New("invalid ref name: use refs/<kind>/<name> without '..', '@{', spaces, control characters or any of ~^:?*[\\")
)

// Repo is one repository: its go-git storage and the lock that guards it.
// Readers (upload-pack, Ref) hold the read lock; writers (receive-pack,
// Commit, SetRef) the write lock: go-git's storages are not safe for
// concurrent writes.
type Repo struct {
	name string
	dir  string // on disk, or "" in memory
	st   *odb.DB

	mu      sync.RWMutex
	version uint64 // bumped by every change, keys the pack cache
	// gen tells this repo from one of the same name deleted before it:
	// it keys the pack cache too.
	gen uint64
}

// Name is the repo's path, e.g. "team/app".
func (r *Repo) Name() string { return r.name }

// Dir is the bare repository's directory, or "" for an in-memory repo.
func (r *Repo) Dir() string { return r.dir }

// Store holds repositories by name.
type Store interface {
	Get(name string) (*Repo, bool)
	Create(name, defaultBranch string) (*Repo, error)
	Delete(name string) error
	Names() []string
	// Dir is where repos live on disk, or "" for memory.
	Dir() string
}

var repoNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*){0,3}$`)

// CleanRepoName turns a URL path ("/team/app.git") into a repo name
// ("team/app") and checks it.
func CleanRepoName(p string) (string, error) {
	n := strings.TrimSuffix(strings.Trim(p, "/"), "/")
	n = strings.TrimSuffix(n, ".git")
	if !repoNameRE.MatchString(n) || strings.Contains(n, "..") || strings.HasSuffix(n, ".git") || strings.HasSuffix(n, ".") {
		return "", fmt.Errorf("%w %q: use path segments of letters, digits, '.', '_' and '-', like team/app", ErrBadRepoName, p)
	}
	return n, nil
}

// repoMap is the name index both stores keep.
type repoMap struct {
	mu    sync.Mutex
	repos map[string]*Repo
	gen   uint64 // the last Repo.gen handed out
}

// add indexes r under a new generation; m.mu held.
func (m *repoMap) add(r *Repo) {
	m.gen++
	r.gen = m.gen
	m.repos[r.name] = r
}

func (m *repoMap) Get(name string) (*Repo, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.repos[name]
	return r, ok
}

func (m *repoMap) Names() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]string, 0, len(m.repos))
	for n := range m.repos {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// remove drops a repo from the index and returns it; m.mu held.
func (m *repoMap) removeLocked(name string) (*Repo, error) {
	r, ok := m.repos[name]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrRepoNotFound, name)
	}
	delete(m.repos, name)
	return r, nil
}

// newMemoryStore keeps repositories in memory; c caches decoded objects
// for all of them (nil: a cache of its own).
func newMemoryStore(c *odb.Cache) Store {
	return &memStore{repoMap{repos: map[string]*Repo{}}, c}
}

type memStore struct {
	repoMap
	cache *odb.Cache
}

func (m *memStore) Dir() string { return "" }

func (m *memStore) Create(name, defaultBranch string) (*Repo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.repos[name]; ok {
		return nil, fmt.Errorf("%w: %s", ErrRepoExists, name)
	}
	// A bare repository on an in-memory filesystem: pushed packs are kept
	// as they came, compressed, and served by copying.
	st, err := initRepo(odb.NewMemoryFS(), defaultBranch, m.cache)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", name, err)
	}
	r := &Repo{name: name, st: st}
	m.add(r)
	return r, nil
}

func (m *memStore) Delete(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.removeLocked(name)
	if err != nil {
		return err
	}
	return r.st.Close()
}

// initRepo lays out an empty bare repository in fs, as git init --bare
// does, with HEAD at the default branch.
func initRepo(fs billy.Filesystem, defaultBranch string, c *odb.Cache) (*odb.DB, error) {
	for _, sub := range []string{"objects/pack", "objects/info", "refs/heads", "refs/tags"} {
		if err := fs.MkdirAll(sub, 0o755); err != nil {
			return nil, err
		}
	}
	if err := util.WriteFile(fs, "config", []byte("[core]\n\trepositoryformatversion = 0\n\tbare = true\n"), 0o644); err != nil {
		return nil, err
	}
	st, err := odb.Open(fs, odb.Options{Cache: c})
	if err != nil {
		return nil, err
	}
	if err := st.SetReference(plumbing.NewSymbolicReference(plumbing.HEAD, plumbing.NewBranchReferenceName(defaultBranch))); err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}

// newDiskStore keeps bare repositories under dir (<dir>/<name>.git), so
// pushes survive a restart; existing ones are opened. c caches decoded
// objects (nil: a cache of its own).
func newDiskStore(dir string, c *odb.Cache) (Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("git store: %w", err)
	}
	d := &diskStore{dir: abs, repoMap: repoMap{repos: map[string]*Repo{}}, cache: c}
	err = filepath.WalkDir(abs, func(p string, e fs.DirEntry, err error) error {
		if err != nil || !e.IsDir() || !strings.HasSuffix(p, ".git") {
			return err
		}
		if _, err := os.Stat(filepath.Join(p, "HEAD")); err != nil {
			return nil
		}
		rel, _ := filepath.Rel(abs, p)
		name := strings.TrimSuffix(filepath.ToSlash(rel), ".git")
		st, err := odb.Open(osfs.New(p), odb.Options{Cache: c})
		if err != nil {
			return fmt.Errorf("open %s: %w", name, err)
		}
		d.add(&Repo{name: name, dir: p, st: st})
		return filepath.SkipDir
	})
	if err != nil {
		return nil, fmt.Errorf("git store: %w", err)
	}
	return d, nil
}

type diskStore struct {
	dir string
	repoMap
	cache *odb.Cache
}

func (d *diskStore) Dir() string { return d.dir }

func (d *diskStore) Create(name, defaultBranch string) (*Repo, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.repos[name]; ok {
		return nil, fmt.Errorf("%w: %s", ErrRepoExists, name)
	}
	p := filepath.Join(d.dir, filepath.FromSlash(name)+".git")
	st, err := initRepo(osfs.New(p), defaultBranch, d.cache)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", name, err)
	}
	r := &Repo{name: name, dir: p, st: st}
	d.add(r)
	return r, nil
}

func (d *diskStore) Delete(name string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	r, err := d.removeLocked(name)
	if err != nil {
		return err
	}
	return errors.Join(r.st.Close(), os.RemoveAll(r.dir))
}
