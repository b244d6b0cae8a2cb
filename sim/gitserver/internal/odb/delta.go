package odb

import (
	"errors"
)

var errDelta = errors.New("invalid delta")

// maxObject bounds the size of one object: 4 GiB, as git's own
// core.bigFileThreshold world never comes near.
const maxObject = 1 << 32

// deltaSizes reads the source and target sizes at the start of a delta.
func deltaSizes(delta []byte) (src, dst int64, rest []byte, err error) {
	src, delta, err = leb128(delta)
	if err != nil {
		return 0, 0, nil, err
	}
	dst, delta, err = leb128(delta)
	return src, dst, delta, err
}

func leb128(b []byte) (int64, []byte, error) {
	var v int64
	for i, shift := 0, 0; i < len(b) && shift < 63; i, shift = i+1, shift+7 {
		v |= int64(b[i]&0x7f) << shift
		if b[i]&0x80 == 0 {
			return v, b[i+1:], nil
		}
	}
	return 0, nil, errDelta
}

// applyDelta rebuilds an object from its base and a git delta
// (copy-from-base and insert instructions, as in git's patch-delta.c).
func applyDelta(base, delta []byte) ([]byte, error) {
	srcSize, dstSize, d, err := deltaSizes(delta)
	if err != nil {
		return nil, err
	}
	if srcSize != int64(len(base)) || dstSize < 0 || dstSize > maxObject {
		return nil, errDelta
	}
	// The announced size is checked against what the instructions make;
	// it only sizes the first allocation, within reason.
	out := make([]byte, 0, min(dstSize, 64<<20))
	for len(d) > 0 {
		cmd := d[0]
		d = d[1:]
		switch {
		case cmd&0x80 != 0:
			var off, n int64
			for i := range 4 {
				if cmd&(1<<i) != 0 {
					if len(d) == 0 {
						return nil, errDelta
					}
					off |= int64(d[0]) << (8 * i)
					d = d[1:]
				}
			}
			for i := range 3 {
				if cmd&(0x10<<i) != 0 {
					if len(d) == 0 {
						return nil, errDelta
					}
					n |= int64(d[0]) << (8 * i)
					d = d[1:]
				}
			}
			if n == 0 {
				n = 0x10000
			}
			if off+n > int64(len(base)) || int64(len(out))+n > dstSize {
				return nil, errDelta
			}
			out = append(out, base[off:off+n]...)
		case cmd != 0:
			n := int(cmd)
			if n > len(d) || int64(len(out)+n) > dstSize {
				return nil, errDelta
			}
			out = append(out, d[:n]...)
			d = d[n:]
		default:
			return nil, errDelta // reserved opcode
		}
	}
	if int64(len(out)) != dstSize {
		return nil, errDelta
	}
	return out, nil
}
