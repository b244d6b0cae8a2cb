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

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/storage"
	"github.com/go-git/go-git/v5/storage/filesystem"
	"github.com/go-git/go-git/v5/storage/memory"
)

// Errors of the repo store.
var (
	ErrRepoNotFound = errors.New("repository not found")
	ErrRepoExists   = errors.New("repository already exists")
	ErrBadRepoName  = errors.New("invalid repository name")
)

// Repo is one repository: its go-git storage and the lock that guards it.
// Readers (upload-pack, Ref) hold the read lock; writers (receive-pack,
// Commit, SetRef) the write lock: go-git's storages are not safe for
// concurrent writes.
type Repo struct {
	name string
	dir  string // on disk, or "" in memory
	st   storage.Storer

	mu      sync.RWMutex
	version uint64 // bumped by every change, keys the pack cache
	packs   packCache
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

// NewMemoryStore keeps repositories in memory.
func NewMemoryStore() Store { return &memStore{repoMap{repos: map[string]*Repo{}}} }

type memStore struct{ repoMap }

func (m *memStore) Dir() string { return "" }

func (m *memStore) Create(name, defaultBranch string) (*Repo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.repos[name]; ok {
		return nil, fmt.Errorf("%w: %s", ErrRepoExists, name)
	}
	st := memory.NewStorage()
	if err := st.SetReference(plumbing.NewSymbolicReference(plumbing.HEAD, plumbing.NewBranchReferenceName(defaultBranch))); err != nil {
		return nil, err
	}
	r := &Repo{name: name, st: st}
	m.repos[name] = r
	return r, nil
}

func (m *memStore) Delete(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, err := m.removeLocked(name)
	return err
}

// NewDiskStore keeps bare repositories under dir (<dir>/<name>.git), so
// pushes survive a restart; existing ones are opened.
func NewDiskStore(dir string) (Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("git store: %w", err)
	}
	d := &diskStore{dir: abs, repoMap: repoMap{repos: map[string]*Repo{}}}
	err = filepath.WalkDir(abs, func(p string, e fs.DirEntry, err error) error {
		if err != nil || !e.IsDir() || !strings.HasSuffix(p, ".git") {
			return err
		}
		if _, err := os.Stat(filepath.Join(p, "HEAD")); err != nil {
			return nil
		}
		rel, _ := filepath.Rel(abs, p)
		name := strings.TrimSuffix(filepath.ToSlash(rel), ".git")
		d.repos[name] = &Repo{name: name, dir: p, st: openDisk(p)}
		return filepath.SkipDir
	})
	if err != nil {
		return nil, fmt.Errorf("git store: %w", err)
	}
	return d, nil
}

func openDisk(dir string) storage.Storer {
	return filesystem.NewStorage(osfs.New(dir), cache.NewObjectLRUDefault())
}

type diskStore struct {
	dir string
	repoMap
}

func (d *diskStore) Dir() string { return d.dir }

func (d *diskStore) Create(name, defaultBranch string) (*Repo, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.repos[name]; ok {
		return nil, fmt.Errorf("%w: %s", ErrRepoExists, name)
	}
	p := filepath.Join(d.dir, filepath.FromSlash(name)+".git")
	for _, sub := range []string{"objects/pack", "objects/info", "refs/heads", "refs/tags"} {
		if err := os.MkdirAll(filepath.Join(p, sub), 0o755); err != nil {
			return nil, fmt.Errorf("create %s: %w", name, err)
		}
	}
	cfg := "[core]\n\trepositoryformatversion = 0\n\tbare = true\n"
	if err := os.WriteFile(filepath.Join(p, "config"), []byte(cfg), 0o644); err != nil {
		return nil, fmt.Errorf("create %s: %w", name, err)
	}
	st := openDisk(p)
	if err := st.SetReference(plumbing.NewSymbolicReference(plumbing.HEAD, plumbing.NewBranchReferenceName(defaultBranch))); err != nil {
		return nil, fmt.Errorf("create %s: %w", name, err)
	}
	r := &Repo{name: name, dir: p, st: st}
	d.repos[name] = r
	return r, nil
}

func (d *diskStore) Delete(name string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	r, err := d.removeLocked(name)
	if err != nil {
		return err
	}
	return os.RemoveAll(r.dir)
}
