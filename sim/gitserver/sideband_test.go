package gitserver

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
)

// demux splits a side-band stream into its bands, checking that every
// packet fits the limit of its kind and that it ends with a flush.
func demux(t *testing.T, stream []byte, packetMax int) map[byte][]byte {
	t.Helper()
	out := map[byte][]byte{}
	for len(stream) > 0 {
		n, err := strconv.ParseUint(string(stream[:4]), 16, 16)
		if err != nil {
			t.Fatalf("bad length %q", stream[:4])
		}
		if n == 0 {
			if len(stream) != 4 {
				t.Fatalf("%d bytes after the flush", len(stream)-4)
			}
			return out
		}
		if int(n) > packetMax {
			t.Fatalf("packet of %d bytes, limit %d", n, packetMax)
		}
		if n < 5 {
			t.Fatalf("packet of %d bytes has no band", n)
		}
		band := stream[4]
		out[band] = append(out[band], stream[5:n]...)
		stream = stream[n:]
	}
	t.Fatal("no flush at the end")
	return nil
}

// Any mix of writes, of any sizes, comes out as the same bytes on band 1
// in packets within the limit: 65520 bytes for side-band-64k, 1000 for
// side-band (git's LARGE_PACKET_MAX and DEFAULT_PACKET_MAX).
func TestSidebandPacketsFitTheirLimit(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 1))
	for _, large := range []bool{true, false} {
		limit := map[bool]int{true: 65520, false: 1000}[large]
		for round := range 50 {
			var stream, want, progress bytes.Buffer
			sb := newSidebandWriter(&stream, large)
			for range r.IntN(20) {
				size := []int{0, 1, 994, 995, 996, 65514, 65515, 65516, 65520, 200_000}[r.IntN(10)] + r.IntN(3)
				b := make([]byte, size)
				for i := range b {
					b[i] = byte(r.Uint32())
				}
				if _, err := sb.Write(b); err != nil {
					t.Fatal(err)
				}
				want.Write(b)
				if r.IntN(4) == 0 {
					msg := fmt.Sprintf("progress %d %s\n", round, bytes.Repeat([]byte("x"), r.IntN(3000)))
					if err := sb.Progress(msg); err != nil {
						t.Fatal(err)
					}
					progress.WriteString(msg)
				}
			}
			if err := sb.Flush(); err != nil {
				t.Fatal(err)
			}
			stream.WriteString("0000")
			bands := demux(t, stream.Bytes(), limit)
			if !bytes.Equal(bands[bandData], want.Bytes()) {
				t.Fatalf("seed %d large=%v round %d: band 1 carried %d bytes, want %d", seed, large, round, len(bands[bandData]), want.Len())
			}
			if !bytes.Equal(bands[bandProgress], progress.Bytes()) {
				t.Fatalf("seed %d large=%v round %d: progress differs", seed, large, round)
			}
		}
	}
}

// Full packets: the payload is as large as git's own (packet_max-5), so
// a pack takes no more packets than git would send.
func TestSidebandFillsPackets(t *testing.T) {
	for _, large := range []bool{true, false} {
		var stream bytes.Buffer
		sb := newSidebandWriter(&stream, large)
		max := map[bool]int{true: 65515, false: 995}[large]
		sb.Write(make([]byte, 3*max))
		sb.Flush()
		if got, want := stream.Len(), 3*(max+5); got != want {
			t.Errorf("large=%v: 3 full packets took %d bytes, want %d", large, got, want)
		}
	}
}

func TestTruncLine(t *testing.T) {
	long := string(bytes.Repeat([]byte("é"), 40000)) // 80,000 bytes
	got := truncLine(long, maxPktData-5)
	if len(got) > maxPktData-5 {
		t.Fatalf("truncated to %d bytes", len(got))
	}
	if !bytes.HasSuffix([]byte(got), []byte("...")) {
		t.Fatal("no ellipsis")
	}
	for _, r := range got[:len(got)-3] {
		if r != 'é' {
			t.Fatalf("cut inside a rune: %q", r)
		}
	}
	if truncLine("short", 10) != "short" {
		t.Fatal("a short line changed")
	}
}

// A long error reaches the client as one valid ERR pkt-line.
func TestLongErrorIsOnePktLine(t *testing.T) {
	var out bytes.Buffer
	sendErr(pktWriter{&out}, protoErr("%s", bytes.Repeat([]byte("y"), 100_000)))
	pr := newPktReader(&out)
	line, _, err := pr.next()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(line, []byte("ERR yyy")) || out.Len() != 0 {
		t.Fatalf("got %d bytes, %d left over", len(line), out.Len())
	}
}
