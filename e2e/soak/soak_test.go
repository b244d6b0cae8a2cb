package soak

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"
)

// settings are the soak's knobs, from the environment (make soak sets
// them from SOAK_SEED, SOAK_HOURS and SOAK_CLUSTERS).
type settings struct {
	seed     uint64
	hours    float64
	clusters int
	// dir keeps the run's files; empty means a temporary one, removed
	// when the run passes and kept (and named) when it fails.
	dir string
}

func readSettings(t *testing.T) settings {
	s := settings{hours: 2, clusters: 3, dir: os.Getenv("GITOPSIM_SOAK_DIR")}
	num := func(name string, into func(string) error) {
		if v := os.Getenv(name); v != "" {
			if err := into(v); err != nil {
				t.Fatalf("%s=%q: %v", name, v, err)
			}
		}
	}
	num("GITOPSIM_SOAK_SEED", func(v string) (err error) { s.seed, err = strconv.ParseUint(v, 10, 64); return })
	num("GITOPSIM_SOAK_HOURS", func(v string) (err error) { s.hours, err = strconv.ParseFloat(v, 64); return })
	num("GITOPSIM_SOAK_CLUSTERS", func(v string) (err error) { s.clusters, err = strconv.Atoi(v); return })
	if s.seed == 0 {
		s.seed = rand.Uint64()
	}
	if !(s.hours > 0) || s.clusters < 1 {
		t.Fatalf("GITOPSIM_SOAK_HOURS must be above 0 and GITOPSIM_SOAK_CLUSTERS at least 1 (got %v, %d)", s.hours, s.clusters)
	}
	return s
}

// round is how much virtual time passes between two batches of work;
// calmEvery is how often the faults end and the invariants are checked.
const (
	round     = 5 * time.Minute
	calmEvery = 30 * time.Minute
)

// TestSoak is the soak and fault suite. It runs only when
// GITOPSIM_SOAK=1 (make soak), not in make test.
func TestSoak(t *testing.T) {
	if os.Getenv("GITOPSIM_SOAK") != "1" {
		t.Skip("the soak runs with make soak (GITOPSIM_SOAK=1)")
	}
	cfg := readSettings(t)
	t.Logf("soak seed %d (GITOPSIM_SOAK_SEED=%d repeats this run), %v hours of virtual time, %d clusters", cfg.seed, cfg.seed, cfg.hours, cfg.clusters)
	w := newWorld(t, cfg)
	began := time.Now()
	defer func() {
		if t.Failed() {
			t.Logf("soak failed with seed %d after %v of virtual time; its files are in %s", cfg.seed, w.elapsed(), w.dir)
		}
	}()
	total := time.Duration(cfg.hours * float64(time.Hour))
	for w.elapsed() < total && !t.Failed() {
		calmAt := w.elapsed() + calmEvery
		for w.elapsed() < calmAt && w.elapsed() < total && !t.Failed() {
			w.doRound()
		}
		if t.Failed() {
			break
		}
		w.calm()
	}
	if t.Failed() {
		return
	}
	w.checkLeaks()
	w.checkSecrets()
	w.stopSim()
	if !t.Failed() {
		t.Log(w.figures(time.Since(began)))
		fmt.Println(w.figures(time.Since(began)))
	}
}
