package cluster

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"
)

// TestPrefixEnd checks etcd's range [p, prefixEnd(p)) against
// bytes.HasPrefix on random binary prefixes and keys (0xff bytes
// included, where the end carries), seeded and printed on failure.
func TestPrefixEnd(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 0))
	alphabet := []byte{0x00, 0x2f, 0x30, 0x61, 0xfe, 0xff}
	gen := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		return b
	}
	for range 20000 {
		p := gen(1 + rng.IntN(4))
		k := gen(rng.IntN(6))
		if rng.IntN(2) == 0 {
			k = append(bytes.Clone(p), k...)
		}
		end := prefixEnd(p)
		inRange := bytes.Compare(k, p) >= 0 && (bytes.Equal(end, []byte{0}) || bytes.Compare(k, end) < 0)
		if inRange != bytes.HasPrefix(k, p) {
			t.Fatalf("seed %d: prefix %x, end %x, key %x: in range %v, has prefix %v", seed, p, end, k, inRange, !inRange)
		}
	}
}
