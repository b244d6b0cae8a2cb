package odb

import (
	"compress/zlib"
	"context"
	"crypto/sha1"
	"encoding/binary"
	"fmt"
	"hash"
	"io"
	"sync"

	"github.com/go-git/go-git/v5/plumbing"
)

// PackOptions says what the receiving client accepts.
type PackOptions struct {
	// OfsDelta: the client asked for ofs-delta; otherwise reused deltas
	// name their base by id (ref-delta).
	OfsDelta bool
	// Has, when set, makes a thin pack: a stored delta whose base the
	// client holds (Has returns true) is sent as a ref-delta against it.
	// Only for clients that asked for thin-pack.
	Has func(plumbing.Hash) bool
}

// PackStats counts how each object went out.
type PackStats struct {
	Objects int
	// Copied entries were sent byte for byte as stored (whole objects).
	Copied int
	// Deltas were stored deltas sent as deltas (base in the pack, or held
	// by the client for a thin pack).
	Deltas, ThinDeltas int
	// Deflated objects had to be compressed anew (loose objects, deltas
	// whose base does not go out).
	Deflated int
	Bytes    int64
}

// WritePack writes a pack (version 2) of the objects to w, each once, in
// an order where every ofs-delta follows its base.
func (db *DB) WritePack(ctx context.Context, w io.Writer, ids []plumbing.Hash, o PackOptions) (PackStats, error) {
	pw := &packWriter{
		db: db, o: o, ctx: ctx,
		out:   &hashWriter{w: w, h: sha1.New()},
		index: make(map[plumbing.Hash]int32, len(ids)),
	}
	for _, id := range ids {
		if _, dup := pw.index[id]; !dup {
			pw.index[id] = int32(len(pw.slots))
			pw.slots = append(pw.slots, slot{state: pending})
		}
	}
	var hdr [12]byte
	copy(hdr[:], "PACK")
	binary.BigEndian.PutUint32(hdr[4:], 2)
	binary.BigEndian.PutUint32(hdr[8:], uint32(len(pw.slots)))
	if _, err := pw.out.Write(hdr[:]); err != nil {
		return pw.stats, err
	}
	for i, id := range ids {
		if i%256 == 0 {
			if err := ctx.Err(); err != nil {
				return pw.stats, err
			}
		}
		if err := pw.write(id); err != nil {
			return pw.stats, err
		}
	}
	sum := pw.out.h.Sum(nil)
	if _, err := w.Write(sum); err != nil {
		return pw.stats, err
	}
	pw.stats.Objects = len(pw.slots)
	pw.stats.Bytes = pw.out.n + int64(len(sum))
	return pw.stats, nil
}

const (
	pending int8 = iota + 1
	writing
	written
)

type packWriter struct {
	db    *DB
	o     PackOptions
	ctx   context.Context
	out   *hashWriter
	index map[plumbing.Hash]int32 // into slots
	slots []slot
	stats PackStats
	hbuf  []byte
}

// slot is an object of the pack: how far it is, and where it went.
type slot struct {
	state int8
	at    int64 // output offset once written
}

// write sends id, after its delta base when that goes out too. A base
// already being written up the stack (two packs holding the same objects
// as deltas of each other) breaks the cycle: this object goes whole.
func (pw *packWriter) write(id plumbing.Hash) error {
	i, ok := pw.index[id]
	if !ok || pw.slots[i].state != pending {
		return nil
	}
	sl := &pw.slots[i]
	sl.state = writing
	defer func() { pw.slots[i].state = written }()
	l, packed := pw.db.lookup(id)
	if !packed {
		return pw.whole(id, sl)
	}
	hdr, err := l.header()
	if err != nil {
		return err
	}
	if !hdr.isDelta() {
		sl.at = pw.out.n
		pw.stats.Copied++
		return pw.copyRaw(l, l.start())
	}
	base := hdr.baseID
	if hdr.typ == plumbing.OFSDeltaObject {
		bl, ok := l.p.at(hdr.baseOff)
		if !ok {
			return pw.whole(id, sl)
		}
		base = l.p.ids[bl.i]
	}
	bi, inPack := pw.index[base]
	switch {
	case inPack && pw.slots[bi].state != writing:
		if err := pw.write(base); err != nil {
			return err
		}
		sl = &pw.slots[i]
		sl.at = pw.out.n
		h := pw.hbuf[:0]
		if pw.o.OfsDelta {
			h = appendHeader(h, plumbing.OFSDeltaObject, hdr.size)
			h = appendOfs(h, pw.out.n-pw.slots[bi].at)
		} else {
			h = appendHeader(h, plumbing.REFDeltaObject, hdr.size)
			h = append(h, base[:]...)
		}
		pw.hbuf = h
		pw.stats.Deltas++
		if _, err := pw.out.Write(h); err != nil {
			return err
		}
		return pw.copyRaw(l, l.start()+int64(hdr.n))
	case !inPack && pw.o.Has != nil && pw.o.Has(base):
		sl.at = pw.out.n
		h := appendHeader(pw.hbuf[:0], plumbing.REFDeltaObject, hdr.size)
		h = append(h, base[:]...)
		pw.hbuf = h
		pw.stats.ThinDeltas++
		if _, err := pw.out.Write(h); err != nil {
			return err
		}
		return pw.copyRaw(l, l.start()+int64(hdr.n))
	}
	return pw.whole(id, sl)
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// copyRaw copies the stored bytes of entry l from off to its end.
func (pw *packWriter) copyRaw(l loc, off int64) error {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	_, err := io.CopyBuffer(pw.out, io.NewSectionReader(l.p.f, off, l.end()-off), *bp)
	return err
}

var zlibWriters = sync.Pool{New: func() any {
	zw, _ := zlib.NewWriterLevel(io.Discard, zlib.DefaultCompression)
	return zw
}}

// whole reads the object and deflates it into the pack.
func (pw *packWriter) whole(id plumbing.Hash, sl *slot) error {
	typ, data, err := pw.db.read(id)
	if err != nil {
		return fmt.Errorf("odb: pack object %s: %w", id, err)
	}
	sl.at = pw.out.n
	pw.stats.Deflated++
	pw.hbuf = appendHeader(pw.hbuf[:0], typ, int64(len(data)))
	if _, err := pw.out.Write(pw.hbuf); err != nil {
		return err
	}
	zw := zlibWriters.Get().(*zlib.Writer)
	defer zlibWriters.Put(zw)
	zw.Reset(pw.out)
	if _, err := zw.Write(data); err != nil {
		return err
	}
	return zw.Close()
}

// hashWriter hashes and counts what goes through.
type hashWriter struct {
	w io.Writer
	h hash.Hash
	n int64
}

func (hw *hashWriter) Write(p []byte) (int, error) {
	n, err := hw.w.Write(p)
	hw.h.Write(p[:n])
	hw.n += int64(n)
	return n, err
}
