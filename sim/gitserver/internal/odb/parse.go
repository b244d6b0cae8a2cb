package odb

import (
	"bytes"
	"encoding/hex"
	"errors"

	"github.com/go-git/go-git/v5/plumbing"
)

// The walks of a fetch read every commit and tree they pass; these parse
// just the links out of the raw bytes, with no allocation per entry, where
// go-git's decoders build whole objects.

var errParse = errors.New("malformed object")

// Tree entry modes that matter to a walk.
const (
	ModeDir       = 0o40000
	ModeSubmodule = 0o160000
)

// EachTreeEntry calls fn for each entry of a tree object: its mode and
// the id it names. The name is not decoded.
func EachTreeEntry(data []byte, fn func(mode uint32, id plumbing.Hash) error) error {
	for len(data) > 0 {
		var mode uint32
		i := 0
		for ; i < len(data) && data[i] != ' '; i++ {
			c := data[i]
			if c < '0' || c > '7' || i > 7 {
				return errParse
			}
			mode = mode<<3 | uint32(c-'0')
		}
		if i == 0 || i >= len(data) {
			return errParse
		}
		nul := bytes.IndexByte(data[i+1:], 0)
		if nul < 1 {
			return errParse
		}
		start := i + 1 + nul + 1
		if start+20 > len(data) {
			return errParse
		}
		var id plumbing.Hash
		copy(id[:], data[start:start+20])
		if err := fn(mode, id); err != nil {
			return err
		}
		data = data[start+20:]
	}
	return nil
}

// CommitLinks returns a commit's tree and parents.
func CommitLinks(data []byte) (tree plumbing.Hash, parents []plumbing.Hash, err error) {
	line, rest, ok := bytes.Cut(data, []byte{'\n'})
	if !ok || !parseIDLine(line, "tree ", &tree) {
		return tree, nil, errParse
	}
	for {
		line, rest, ok = bytes.Cut(rest, []byte{'\n'})
		var p plumbing.Hash
		if !ok || !parseIDLine(line, "parent ", &p) {
			return tree, parents, nil
		}
		parents = append(parents, p)
	}
}

// TagTarget returns what a tag object points at, and its type.
func TagTarget(data []byte) (plumbing.Hash, plumbing.ObjectType, error) {
	var id plumbing.Hash
	line, rest, ok := bytes.Cut(data, []byte{'\n'})
	if !ok || !parseIDLine(line, "object ", &id) {
		return id, 0, errParse
	}
	line, _, _ = bytes.Cut(rest, []byte{'\n'})
	name, ok := bytes.CutPrefix(line, []byte("type "))
	if !ok {
		return id, 0, errParse
	}
	t, err := plumbing.ParseObjectType(string(name))
	if err != nil {
		return id, 0, errParse
	}
	return id, t, nil
}

func parseIDLine(line []byte, prefix string, id *plumbing.Hash) bool {
	h, ok := bytes.CutPrefix(line, []byte(prefix))
	if !ok || len(h) != 40 {
		return false
	}
	_, err := hex.Decode(id[:], h)
	return err == nil
}

// Read returns an object's type and content. The bytes may be shared
// with other readers and must not be changed.
func (db *DB) Read(h plumbing.Hash) (plumbing.ObjectType, []byte, error) {
	return db.read(h)
}

// Type returns an object's type without inflating it when it is packed:
// a delta's type is its base's, found by following headers alone.
func (db *DB) Type(h plumbing.Hash) (plumbing.ObjectType, error) {
	if t, _, ok := db.cache.get(h); ok {
		return t, nil
	}
	l, ok := db.lookup(h)
	if !ok {
		t, _, err := db.readLoose(h)
		return t, err
	}
	for range maxChain {
		hdr, err := l.header()
		if err != nil {
			return 0, err
		}
		switch hdr.typ {
		case plumbing.OFSDeltaObject:
			if l, ok = l.p.at(hdr.baseOff); !ok {
				return 0, errCorrupt
			}
		case plumbing.REFDeltaObject:
			if l, ok = db.lookup(hdr.baseID); !ok {
				t, _, err := db.readLoose(hdr.baseID)
				return t, err
			}
		default:
			return hdr.typ, nil
		}
	}
	return 0, errCorrupt
}
