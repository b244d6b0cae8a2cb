package odb

import (
	"os"
	"sync"

	"github.com/go-git/go-billy/v5"
	"github.com/go-git/go-billy/v5/memfs"
)

// NewMemoryFS is an in-memory filesystem for a repository that readers
// may use while a writer adds files. go-billy's memfs keeps its names in
// a plain map: a pack being streamed to a client opens loose objects
// while a push or a commit creates files, and a map read racing a write
// is fatal in Go. Reading an opened file is safe on its own (memfs locks
// each file's content), but a file's size is read unlocked by Stat and
// ReadDir: name operations and writes to files take the lock.
func NewMemoryFS() billy.Filesystem {
	return &lockedFS{fs: memfs.New(), mu: &sync.RWMutex{}}
}

type lockedFS struct {
	fs billy.Filesystem
	mu *sync.RWMutex
}

func (l *lockedFS) Create(name string) (billy.File, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.wrap(l.fs.Create(name))
}

func (l *lockedFS) Open(name string) (billy.File, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.wrap(l.fs.Open(name))
}

// OpenFile takes the write lock: with O_CREATE it adds a name.
func (l *lockedFS) OpenFile(name string, flag int, perm os.FileMode) (billy.File, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.wrap(l.fs.OpenFile(name, flag, perm))
}

func (l *lockedFS) wrap(f billy.File, err error) (billy.File, error) {
	if err != nil {
		return nil, err
	}
	return &lockedFile{File: f, mu: l.mu}, nil
}

// lockedFile writes under the filesystem's lock, so a Stat or ReadDir
// never reads a size while it changes.
type lockedFile struct {
	billy.File
	mu *sync.RWMutex
}

func (f *lockedFile) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.File.Write(p)
}

func (f *lockedFile) Truncate(size int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.File.Truncate(size)
}

func (l *lockedFS) Stat(name string) (os.FileInfo, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.fs.Stat(name)
}

func (l *lockedFS) Rename(from, to string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fs.Rename(from, to)
}

func (l *lockedFS) Remove(name string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fs.Remove(name)
}

func (l *lockedFS) Join(elem ...string) string { return l.fs.Join(elem...) }

func (l *lockedFS) TempFile(dir, prefix string) (billy.File, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.wrap(l.fs.TempFile(dir, prefix))
}

func (l *lockedFS) ReadDir(path string) ([]os.FileInfo, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.fs.ReadDir(path)
}

func (l *lockedFS) MkdirAll(name string, perm os.FileMode) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fs.MkdirAll(name, perm)
}

func (l *lockedFS) Lstat(name string) (os.FileInfo, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.fs.Lstat(name)
}

func (l *lockedFS) Symlink(target, link string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fs.Symlink(target, link)
}

func (l *lockedFS) Readlink(link string) (string, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.fs.Readlink(link)
}

// Chroot shares the lock: the view and the whole guard the same names.
func (l *lockedFS) Chroot(path string) (billy.Filesystem, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	sub, err := l.fs.Chroot(path)
	if err != nil {
		return nil, err
	}
	return &lockedFS{fs: sub, mu: l.mu}, nil
}

func (l *lockedFS) Root() string { return l.fs.Root() }

// Capabilities are memfs's.
func (l *lockedFS) Capabilities() billy.Capability { return billy.Capabilities(l.fs) }
