package odb

import (
	"bytes"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/go-git/go-billy/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// Options configures a DB.
type Options struct {
	// Cache keeps decoded objects (commits, trees, delta bases); nil
	// makes one of DefaultCacheBytes for this DB alone.
	Cache *Cache
}

// DefaultCacheBytes is the budget of a cache made by Open.
const DefaultCacheBytes = 32 << 20

// DB is a repository's storage: go-git's filesystem storage, whose object
// reads it replaces. It is safe for concurrent readers; writers (objects,
// references, packs) must be serialised by the caller, as with any go-git
// storage.
type DB struct {
	*filesystem.Storage
	fs    billy.Filesystem
	cache *Cache

	mu    sync.RWMutex
	packs map[plumbing.Hash]*packFile
	index map[plumbing.Hash]loc

	// wmu serialises what touches go-git's own bookkeeping of packs (its
	// index map): starting a pack writer and closing one.
	wmu sync.Mutex
}

const (
	objectsDir = "objects"
	packDir    = "objects/pack"
)

// Open opens the repository in fs (a bare repository's directory, on disk
// or in memory) and indexes its packs.
func Open(fs billy.Filesystem, o Options) (*DB, error) {
	if o.Cache == nil {
		o.Cache = NewCache(DefaultCacheBytes)
	}
	db := &DB{
		// go-git's own cache only serves its writes here.
		Storage: filesystem.NewStorage(fs, cache.NewObjectLRU(1<<20)),
		fs:      fs,
		cache:   o.Cache,
		packs:   map[plumbing.Hash]*packFile{},
		index:   map[plumbing.Hash]loc{},
	}
	if err := db.Refresh(); err != nil {
		return nil, err
	}
	return db, nil
}

// Refresh indexes packs written since the last call (by a push, or by
// git itself on disk).
func (db *DB) Refresh() error {
	_, err := db.refresh()
	return err
}

// refresh indexes new packs and returns them.
func (db *DB) refresh() ([]*packFile, error) {
	entries, err := db.fs.ReadDir(packDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("odb: %w", err)
	}
	var fresh []*packFile
	for _, e := range entries {
		n, ok := strings.CutPrefix(e.Name(), "pack-")
		if n, ok = strings.CutSuffix(n, ".idx"); !ok || len(n) != 40 {
			continue
		}
		name := plumbing.NewHash(n)
		db.mu.RLock()
		_, known := db.packs[name]
		db.mu.RUnlock()
		if known {
			continue
		}
		if _, err := db.fs.Stat(db.fs.Join(packDir, "pack-"+n+".pack")); err != nil {
			continue // an index whose pack is still being written
		}
		p, err := openPack(db.fs, packDir, name)
		if err != nil {
			return nil, fmt.Errorf("odb: %w", err)
		}
		fresh = append(fresh, p)
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	added := fresh[:0]
	for _, p := range fresh {
		if _, ok := db.packs[p.name]; ok {
			p.f.Close() // indexed by a concurrent refresh
			continue
		}
		db.packs[p.name] = p
		for i, id := range p.ids {
			if _, ok := db.index[id]; !ok {
				db.index[id] = loc{p, int32(i)}
			}
		}
		added = append(added, p)
	}
	return added, nil
}

// StorePack reads a pack from r to its end and keeps it as it came
// (go-git indexes it as git index-pack would); it returns the ids of the
// objects in it. Nothing is locked while the pack arrives: a slow pusher
// holds up neither readers nor other pushes.
func (db *DB) StorePack(r io.Reader) ([]plumbing.Hash, error) {
	db.wmu.Lock()
	w, err := db.Storage.PackfileWriter()
	db.wmu.Unlock()
	if err != nil {
		return nil, err
	}
	tail := &tailReader{r: r}
	if _, err := io.Copy(w, tail); err != nil {
		db.wmu.Lock()
		w.Close()
		db.wmu.Unlock()
		return nil, err
	}
	db.wmu.Lock()
	err = w.Close()
	db.wmu.Unlock()
	if err != nil {
		return nil, err
	}
	fresh, err := db.refresh()
	if err != nil {
		return nil, err
	}
	// The pack is named by its trailing checksum: its own ids, whatever
	// a concurrent refresh indexed first.
	db.mu.RLock()
	p, ok := db.packs[tail.checksum()]
	db.mu.RUnlock()
	if ok {
		return slices.Clone(p.ids), nil
	}
	var ids []plumbing.Hash // an empty pack (no file), or bytes after it
	for _, p := range fresh {
		ids = append(ids, p.ids...)
	}
	return ids, nil
}

// tailReader remembers the last 20 bytes read: a pack's checksum.
type tailReader struct {
	r    io.Reader
	last [20]byte
	n    int
}

func (t *tailReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n >= 20 {
		copy(t.last[:], p[n-20:n])
	} else if n > 0 {
		copy(t.last[:], t.last[n:])
		copy(t.last[20-n:], p[:n])
	}
	t.n += n
	return n, err
}

func (t *tailReader) checksum() plumbing.Hash {
	if t.n < 20 {
		return plumbing.ZeroHash
	}
	return plumbing.Hash(t.last)
}

// PackfileWriter is go-git's, for callers that store a pack through the
// storer interface; the pack is indexed here when the writer is closed.
// StorePack is the way for pushes.
func (db *DB) PackfileWriter() (io.WriteCloser, error) {
	db.wmu.Lock()
	defer db.wmu.Unlock()
	w, err := db.Storage.PackfileWriter()
	if err != nil {
		return nil, err
	}
	return &refreshOnClose{WriteCloser: w, db: db}, nil
}

type refreshOnClose struct {
	io.WriteCloser
	db *DB
}

func (r *refreshOnClose) Close() error {
	r.db.wmu.Lock()
	err := r.WriteCloser.Close()
	r.db.wmu.Unlock()
	if err != nil {
		return err
	}
	return r.db.Refresh()
}

func (db *DB) lookup(h plumbing.Hash) (loc, bool) {
	db.mu.RLock()
	defer db.mu.RUnlock()
	l, ok := db.index[h]
	return l, ok
}

// Stats counts what the DB holds.
type Stats struct {
	Packs, PackedObjects int
	PackBytes            int64
}

// Stats reports the packs and packed objects.
func (db *DB) Stats() Stats {
	db.mu.RLock()
	defer db.mu.RUnlock()
	s := Stats{Packs: len(db.packs), PackedObjects: len(db.index)}
	for _, p := range db.packs {
		s.PackBytes += p.size
	}
	return s
}

// EncodedObject reads an object, resolving deltas; t may be AnyObject.
func (db *DB) EncodedObject(t plumbing.ObjectType, h plumbing.Hash) (plumbing.EncodedObject, error) {
	typ, data, err := db.read(h)
	if err != nil {
		return nil, err
	}
	if t != plumbing.AnyObject && t != typ {
		return nil, plumbing.ErrObjectNotFound
	}
	return &object{id: h, typ: typ, data: data}, nil
}

// HasEncodedObject says whether the object is stored (nil) or not
// (plumbing.ErrObjectNotFound).
func (db *DB) HasEncodedObject(h plumbing.Hash) error {
	if _, ok := db.lookup(h); ok {
		return nil
	}
	if _, err := db.fs.Stat(loosePath(db.fs, h)); err == nil {
		return nil
	}
	return plumbing.ErrObjectNotFound
}

// EncodedObjectSize is the object's inflated size.
func (db *DB) EncodedObjectSize(h plumbing.Hash) (int64, error) {
	if l, ok := db.lookup(h); ok {
		if hdr, err := l.header(); err == nil && !hdr.isDelta() {
			return hdr.size, nil
		}
	}
	_, data, err := db.read(h)
	return int64(len(data)), err
}

// read returns an object's type and content.
func (db *DB) read(h plumbing.Hash) (plumbing.ObjectType, []byte, error) {
	if t, data, ok := db.cache.get(h); ok {
		return t, data, nil
	}
	if l, ok := db.lookup(h); ok {
		return db.readPacked(l, h)
	}
	return db.readLoose(h)
}

// maxChain bounds a delta chain; git writes at most 50 (pack.depth) and
// reads up to 10,000 before calling a pack corrupt.
const maxChain = 10000

// readPacked resolves the entry at l: it follows the delta chain down to
// a base it has (cached or whole), then applies the deltas back up,
// caching each result.
func (db *DB) readPacked(l loc, id plumbing.Hash) (plumbing.ObjectType, []byte, error) {
	type link struct {
		l   loc
		id  plumbing.Hash
		hdr entryHeader
	}
	var chain []link
	var typ plumbing.ObjectType
	var base []byte
	for {
		hdr, err := l.header()
		if err != nil {
			return 0, nil, err
		}
		if !hdr.isDelta() {
			if base, err = inflateEntry(l, hdr); err != nil {
				return 0, nil, err
			}
			typ = hdr.typ
			db.cache.put(id, typ, base)
			break
		}
		chain = append(chain, link{l, id, hdr})
		if len(chain) > maxChain {
			return 0, nil, fmt.Errorf("odb: delta chain of %s longer than %d", chain[0].id, maxChain)
		}
		var next loc
		var ok bool
		if hdr.typ == plumbing.OFSDeltaObject {
			next, ok = l.p.at(hdr.baseOff)
			if !ok {
				return 0, nil, fmt.Errorf("odb: %w: no entry at base offset %d in pack %s", errCorrupt, hdr.baseOff, l.p.name)
			}
			id = l.p.ids[next.i]
		} else {
			id = hdr.baseID
		}
		if t, data, hit := db.cache.get(id); hit {
			typ, base = t, data
			break
		}
		if hdr.typ == plumbing.REFDeltaObject {
			if next, ok = db.lookup(id); !ok {
				// A base stored loose (a thin pack completed by hand).
				if typ, base, err = db.readLoose(id); err != nil {
					return 0, nil, fmt.Errorf("odb: base %s of a ref-delta: %w", id, err)
				}
				break
			}
		}
		l = next
	}
	for i := len(chain) - 1; i >= 0; i-- {
		c := chain[i]
		delta, err := inflateEntry(c.l, c.hdr)
		if err != nil {
			return 0, nil, err
		}
		if base, err = applyDelta(base, delta); err != nil {
			return 0, nil, fmt.Errorf("odb: object %s: %w", c.id, err)
		}
		db.cache.put(c.id, typ, base)
	}
	return typ, base, nil
}

var zlibReaders sync.Pool

// inflate decompresses src into exactly size bytes.
func inflate(src []byte, size int64) ([]byte, error) {
	// Deflate cannot shrink data by more than about 1032 to 1: a larger
	// announced size is a corrupt header, not a reason to allocate it.
	if size < 0 || size > int64(len(src))*1032+64 || size > maxObject {
		return nil, fmt.Errorf("inflate: %d bytes cannot come from %d compressed", size, len(src))
	}
	br := bytes.NewReader(src)
	var zr io.ReadCloser
	if v := zlibReaders.Get(); v != nil {
		zr = v.(io.ReadCloser)
		if err := zr.(zlib.Resetter).Reset(br, nil); err != nil {
			return nil, err
		}
	} else {
		var err error
		if zr, err = zlib.NewReader(br); err != nil {
			return nil, err
		}
	}
	defer zlibReaders.Put(zr)
	out := make([]byte, size)
	if _, err := io.ReadFull(zr, out); err != nil {
		return nil, fmt.Errorf("inflate: %w", err)
	}
	// The stream must end here: one more byte means the size lied.
	var one [1]byte
	if n, _ := zr.Read(one[:]); n != 0 {
		return nil, fmt.Errorf("inflate: more data than the %d bytes announced", size)
	}
	return out, nil
}

// inflateEntry reads the compressed data of the entry at l.
func inflateEntry(l loc, hdr entryHeader) ([]byte, error) {
	start, end := l.start()+int64(hdr.n), l.end()
	if end < start {
		return nil, errCorrupt
	}
	buf := make([]byte, end-start)
	if _, err := l.p.f.ReadAt(buf, start); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	out, err := inflate(buf, hdr.size)
	if err != nil {
		return nil, fmt.Errorf("odb: entry at %d of pack %s: %w", l.start(), l.p.name, err)
	}
	return out, nil
}

func loosePath(fs billy.Filesystem, h plumbing.Hash) string {
	s := h.String()
	return fs.Join(objectsDir, s[:2], s[2:])
}

// readLoose reads objects/xx/yyyy: zlib of "<type> <size>\0<content>".
func (db *DB) readLoose(h plumbing.Hash) (plumbing.ObjectType, []byte, error) {
	f, err := db.fs.Open(loosePath(db.fs, h))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil, plumbing.ErrObjectNotFound
	}
	if err != nil {
		return 0, nil, err
	}
	defer f.Close()
	zr, err := zlib.NewReader(f)
	if err != nil {
		return 0, nil, fmt.Errorf("odb: loose object %s: %w", h, err)
	}
	defer zr.Close()
	raw, err := io.ReadAll(zr)
	if err != nil {
		return 0, nil, fmt.Errorf("odb: loose object %s: %w", h, err)
	}
	head, body, ok := bytes.Cut(raw, []byte{0})
	typName, sizeStr, ok2 := strings.Cut(string(head), " ")
	size, err := strconv.ParseInt(sizeStr, 10, 64)
	if !ok || !ok2 || err != nil || size != int64(len(body)) {
		return 0, nil, fmt.Errorf("odb: loose object %s: bad header %q", h, head)
	}
	typ, err := plumbing.ParseObjectType(typName)
	if err != nil {
		return 0, nil, fmt.Errorf("odb: loose object %s: %w", h, err)
	}
	db.cache.put(h, typ, body)
	return typ, body, nil
}

// object is a decoded object; its bytes may be shared with the cache and
// are never written.
type object struct {
	id   plumbing.Hash
	typ  plumbing.ObjectType
	data []byte
}

func (o *object) Hash() plumbing.Hash           { return o.id }
func (o *object) Type() plumbing.ObjectType     { return o.typ }
func (o *object) SetType(t plumbing.ObjectType) { o.typ = t }
func (o *object) Size() int64                   { return int64(len(o.data)) }
func (o *object) SetSize(int64)                 {}
func (o *object) Reader() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(o.data)), nil
}
func (o *object) Writer() (io.WriteCloser, error) {
	return nil, errors.New("odb: objects read from storage are read-only")
}
