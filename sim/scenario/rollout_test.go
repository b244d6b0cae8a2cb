package scenario

import (
	"flag"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

var rolloutSeed = flag.Uint64("rollout.seed", 0, "seed of TestRolloutSample (0: random, printed)")

// TestRolloutSample draws long curves (random growth at random times,
// seeded) as at most rolloutRows lines that start at the first point,
// end at the last, never go down, and at each row's time show what the
// curve had then.
func TestRolloutSample(t *testing.T) {
	seed := *rolloutSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (rerun with -rollout.seed=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	for range 200 {
		n := 1 + rng.IntN(300)
		var ro Rollout
		at, synced := time.Duration(0), 0
		for range n {
			at += time.Duration(1+rng.IntN(600)) * time.Second
			synced += 1 + rng.IntN(5)
			ro.Curve = append(ro.Curve, RolloutPoint{At: FormatOffset(at), Synced: synced})
		}
		ro.Clusters = synced
		got := ro.sample(rolloutRows)
		want := min(n, rolloutRows)
		if len(got) != want {
			t.Fatalf("seed %d: %d points drawn as %d lines, want %d", seed, n, len(got), want)
		}
		if got[0] != ro.Curve[0] || got[len(got)-1].Synced != synced || got[len(got)-1].At != ro.Curve[n-1].At {
			t.Fatalf("seed %d: lines %v do not span the curve %v … %v", seed, got, ro.Curve[0], ro.Curve[n-1])
		}
		for i := 1; i < len(got); i++ {
			if got[i].Synced < got[i-1].Synced {
				t.Fatalf("seed %d: the curve goes down: %v", seed, got)
			}
		}
		for _, row := range got {
			at, err := parseOffset(row.At)
			if err != nil {
				t.Fatal(err)
			}
			want := 0 // brute force: the last point at or before the row
			for _, p := range ro.Curve {
				if pat, _ := parseOffset(p.At); pat <= at {
					want = p.Synced
				}
			}
			if row.Synced != want {
				t.Fatalf("seed %d: row at %s shows %d synced, the curve had %d", seed, row.At, row.Synced, want)
			}
		}
		if lines := strings.Count(ro.text(), "\n"); lines != len(got)+1 {
			t.Fatalf("seed %d: text has %d lines for %d rows and a header", seed, lines, len(got))
		}
	}
}
