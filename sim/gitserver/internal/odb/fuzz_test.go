package odb

import (
	"bytes"
	"compress/zlib"
	"slices"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	gitobject "github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/memory"
)

// FuzzApplyDelta: no panic on any delta, and agreement with go-git's
// decoder whenever the base is not empty (go-git refuses an empty base).
func FuzzApplyDelta(f *testing.F) {
	f.Add([]byte("hello world"), packfile.DiffDelta([]byte("hello world"), []byte("hello there world")))
	f.Add([]byte("abc"), []byte{3, 3, 0x90, 3})
	f.Add([]byte(""), []byte{0, 2, 2, 'h', 'i'})
	f.Add([]byte("x"), []byte{1, 0x80, 0x80})
	f.Fuzz(func(t *testing.T, base, delta []byte) {
		got, err := applyDelta(base, delta)
		// go-git allocates what the delta announces: ask it only about
		// deltas of modest targets.
		_, dst, _, serr := deltaSizes(delta)
		if len(base) == 0 || len(delta) < 4 || serr != nil || dst > 1<<20 {
			return
		}
		want, werr := packfile.PatchDelta(base, delta)
		if err == nil && werr == nil && !bytes.Equal(got, want) {
			t.Fatalf("applyDelta gave %q, go-git %q", got, want)
		}
		if err == nil && werr != nil {
			t.Fatalf("applyDelta took a delta go-git refuses (%v): %q", werr, got)
		}
	})
}

// FuzzEntryHeader: headers round-trip, and no bytes make the decoder
// panic or produce a base offset outside the pack.
func FuzzEntryHeader(f *testing.F) {
	f.Add([]byte{0x95, 0x0a}, int64(100))
	f.Add([]byte{0x6f, 0x81, 0x00}, int64(1000))
	f.Add(append([]byte{0x7f}, bytes.Repeat([]byte{0xab}, 20)...), int64(12))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, int64(1<<40))
	f.Fuzz(func(t *testing.T, b []byte, off int64) {
		if off < 0 {
			off = -off
		}
		h, err := parseHeader(b, off)
		if err != nil {
			return
		}
		if h.n > len(b) || h.size < 0 {
			t.Fatalf("header %+v from %d bytes", h, len(b))
		}
		if h.typ == plumbing.OFSDeltaObject && (h.baseOff < 0 || h.baseOff >= off) {
			t.Fatalf("base offset %d for an entry at %d", h.baseOff, off)
		}
		// Encoding what was decoded decodes to the same.
		enc := appendHeader(nil, h.typ, h.size)
		switch h.typ {
		case plumbing.OFSDeltaObject:
			enc = appendOfs(enc, off-h.baseOff)
		case plumbing.REFDeltaObject:
			enc = append(enc, h.baseID[:]...)
		}
		h2, err := parseHeader(enc, off)
		h2.n, h.n = 0, 0
		if err != nil || h2 != h {
			t.Fatalf("re-encoded %+v as %x, decoded %+v (%v)", h, enc, h2, err)
		}
	})
}

// FuzzInflate: any compressed stream and announced size either inflates
// to exactly that many bytes or fails; it never panics.
func FuzzInflate(f *testing.F) {
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write([]byte("some object content"))
	zw.Close()
	f.Add(z.Bytes(), int64(19))
	f.Add(z.Bytes(), int64(18))
	f.Add([]byte{0x78, 0x9c}, int64(0))
	f.Fuzz(func(t *testing.T, src []byte, size int64) {
		if size < 0 || size > 1<<20 {
			return
		}
		out, err := inflate(src, size)
		if err == nil && int64(len(out)) != size {
			t.Fatalf("inflated %d bytes, announced %d", len(out), size)
		}
	})
}

// FuzzObjectLinks: the walk's parsers agree with go-git's decoders on
// what a commit, tree or tag links to, and never panic.
func FuzzObjectLinks(f *testing.F) {
	f.Add([]byte("tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nparent 0123456789012345678901234567890123456789\nauthor a <a> 1 +0000\ncommitter a <a> 1 +0000\n\nmsg\n"))
	f.Add([]byte("100644 a\x00" + string(bytes.Repeat([]byte{1}, 20)) + "40000 dir\x00" + string(bytes.Repeat([]byte{2}, 20))))
	f.Add([]byte("object 4b825dc642cb6eb9a060e54bf8d69288fbee4904\ntype tree\ntag t\ntagger a <a> 1 +0000\n\nm\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		st := memory.NewStorage()
		obj := func(t plumbing.ObjectType) plumbing.EncodedObject {
			o := st.NewEncodedObject()
			o.SetType(t)
			w, _ := o.Writer()
			w.Write(data)
			w.Close()
			return o
		}
		// git requires a header ended by a blank line (commit.c,
		// parse_commit_buffer wants "\n" after each id); go-git does
		// not: compare only objects git would read.
		whole := bytes.Contains(data, []byte("\n\n"))
		if tree, parents, err := CommitLinks(data); err == nil && whole {
			o := obj(plumbing.CommitObject)
			var c gitobject.Commit
			if err := c.Decode(o); err == nil && (c.TreeHash != tree || !slices.Equal(c.ParentHashes, parents)) {
				t.Fatalf("commit links %s %v, go-git %s %v", tree, parents, c.TreeHash, c.ParentHashes)
			}
		}
		var entries []plumbing.Hash
		if err := EachTreeEntry(data, func(mode uint32, id plumbing.Hash) error {
			entries = append(entries, id)
			return nil
		}); err == nil {
			o := obj(plumbing.TreeObject)
			var tr gitobject.Tree
			if err := tr.Decode(o); err == nil {
				if len(tr.Entries) != len(entries) {
					t.Fatalf("%d entries, go-git %d", len(entries), len(tr.Entries))
				}
				for i, e := range tr.Entries {
					if e.Hash != entries[i] {
						t.Fatalf("entry %d: %s, go-git %s", i, entries[i], e.Hash)
					}
				}
			}
		}
		if target, typ, err := TagTarget(data); err == nil && whole {
			o := obj(plumbing.TagObject)
			var tg gitobject.Tag
			if err := tg.Decode(o); err == nil && (tg.Target != target || tg.TargetType != typ) {
				t.Fatalf("tag target %s %s, go-git %s %s", target, typ, tg.Target, tg.TargetType)
			}
		}
	})
}
