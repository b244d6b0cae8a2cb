package scenario

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestRolloutSample draws long curves (random growth at random times,
// seeded) as at most rolloutRows lines that start at the first point,
// end at the last and never go down.
func TestRolloutSample(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
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
		if len(ro.text()) == 0 {
			t.Fatal("no text")
		}
	}
}
