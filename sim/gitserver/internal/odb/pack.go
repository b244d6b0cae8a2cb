package odb

import (
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/go-git/go-billy/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/idxfile"
)

// packFile is one pack and its entries in offset order.
type packFile struct {
	name plumbing.Hash // the pack's checksum, as in pack-<name>.pack
	f    billy.File
	size int64
	offs []int64 // entry offsets, ascending
	ids  []plumbing.Hash
}

// loc is where an object is stored: entry i of pack p.
type loc struct {
	p *packFile
	i int32
}

func (l loc) start() int64 { return l.p.offs[l.i] }

// end is where the entry's compressed data ends: the next entry, or the
// pack's trailing checksum.
func (l loc) end() int64 {
	if int(l.i)+1 < len(l.p.offs) {
		return l.p.offs[l.i+1]
	}
	return l.p.size - 20
}

// openPack reads pack-<name>.idx and opens pack-<name>.pack for ReadAt.
func openPack(fs billy.Filesystem, dir string, name plumbing.Hash) (*packFile, error) {
	base := fs.Join(dir, "pack-"+name.String())
	idxF, err := fs.Open(base + ".idx")
	if err != nil {
		return nil, err
	}
	defer idxF.Close()
	idx := idxfile.NewMemoryIndex()
	if err := idxfile.NewDecoder(idxF).Decode(idx); err != nil {
		return nil, fmt.Errorf("pack %s: index: %w", name, err)
	}
	if plumbing.Hash(idx.PackfileChecksum) != name {
		return nil, fmt.Errorf("pack %s: index is of pack %x", name, idx.PackfileChecksum)
	}
	st, err := fs.Stat(base + ".pack")
	if err != nil {
		return nil, err
	}
	f, err := fs.Open(base + ".pack")
	if err != nil {
		return nil, err
	}
	p := &packFile{name: name, f: f, size: st.Size()}
	it, err := idx.EntriesByOffset()
	if err != nil {
		f.Close()
		return nil, err
	}
	defer it.Close()
	for {
		e, err := it.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			f.Close()
			return nil, err
		}
		p.offs = append(p.offs, int64(e.Offset))
		p.ids = append(p.ids, e.Hash)
	}
	if len(p.offs) > 0 && (p.offs[0] < 12 || p.offs[len(p.offs)-1] >= p.size-20) {
		f.Close()
		return nil, fmt.Errorf("pack %s: index offsets outside the pack", name)
	}
	return p, nil
}

// at finds the entry that starts at off.
func (p *packFile) at(off int64) (loc, bool) {
	i, ok := slices.BinarySearch(p.offs, off)
	return loc{p, int32(i)}, ok
}

// entryHeader is a pack entry's header.
type entryHeader struct {
	typ  plumbing.ObjectType // commit, tree, blob, tag, or a delta type
	size int64               // inflated size (of the delta, for deltas)
	// baseOff is the base's offset for an ofs-delta; baseID the base of a
	// ref-delta.
	baseOff int64
	baseID  plumbing.Hash
	n       int // header length in bytes
}

func (h entryHeader) isDelta() bool {
	return h.typ == plumbing.OFSDeltaObject || h.typ == plumbing.REFDeltaObject
}

var errCorrupt = errors.New("corrupt pack entry")

// parseHeader decodes the header of the entry at off from b, the first
// bytes of the entry.
func parseHeader(b []byte, off int64) (entryHeader, error) {
	var h entryHeader
	if len(b) == 0 {
		return h, errCorrupt
	}
	c := b[0]
	h.typ = plumbing.ObjectType((c >> 4) & 7)
	h.size = int64(c & 15)
	shift, i := 4, 1
	for c&0x80 != 0 {
		if i >= len(b) || shift > 56 {
			return h, errCorrupt
		}
		c = b[i]
		h.size |= int64(c&0x7f) << shift
		shift += 7
		i++
	}
	switch h.typ {
	case plumbing.CommitObject, plumbing.TreeObject, plumbing.BlobObject, plumbing.TagObject:
	case plumbing.OFSDeltaObject:
		// Git's offset encoding: big-endian groups of 7 bits, each
		// continuation adding one (pack-format.txt).
		if i >= len(b) {
			return h, errCorrupt
		}
		c = b[i]
		i++
		rel := int64(c & 0x7f)
		for c&0x80 != 0 {
			if i >= len(b) || rel > 1<<50 {
				return h, errCorrupt
			}
			c = b[i]
			i++
			rel = ((rel + 1) << 7) | int64(c&0x7f)
		}
		if rel <= 0 || rel > off {
			return h, errCorrupt
		}
		h.baseOff = off - rel
	case plumbing.REFDeltaObject:
		if i+20 > len(b) {
			return h, errCorrupt
		}
		copy(h.baseID[:], b[i:i+20])
		i += 20
	default:
		return h, errCorrupt
	}
	h.n = i
	return h, nil
}

// maxHeader bounds an entry header: type and size (up to 10 bytes), then
// a 20-byte base id or an offset of up to 10 bytes.
const maxHeader = 32

// header reads and decodes the header of the entry at l.
func (l loc) header() (entryHeader, error) {
	var buf [maxHeader]byte
	n := min(int64(maxHeader), l.end()-l.start())
	if _, err := l.p.f.ReadAt(buf[:n], l.start()); err != nil && !errors.Is(err, io.EOF) {
		return entryHeader{}, err
	}
	h, err := parseHeader(buf[:n], l.start())
	if err != nil {
		return h, fmt.Errorf("%w at offset %d of pack %s", err, l.start(), l.p.name)
	}
	return h, nil
}

// appendHeader encodes a type and size as a pack entry header.
func appendHeader(b []byte, t plumbing.ObjectType, size int64) []byte {
	c := byte(t)<<4 | byte(size&15)
	size >>= 4
	for size > 0 {
		b = append(b, c|0x80)
		c = byte(size & 0x7f)
		size >>= 7
	}
	return append(b, c)
}

// appendOfs encodes an ofs-delta's distance to its base.
func appendOfs(b []byte, rel int64) []byte {
	var tmp [10]byte
	i := len(tmp) - 1
	tmp[i] = byte(rel & 0x7f)
	for rel >>= 7; rel > 0; rel >>= 7 {
		rel--
		i--
		tmp[i] = 0x80 | byte(rel&0x7f)
	}
	return append(b, tmp[i:]...)
}
