package clock_test

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gitopsim/gitopsim/sim/clock"
)

func TestVirtualPeriodicTaskOver48Hours(t *testing.T) {
	v := clock.NewVirtual(time.Time{})
	start := v.Now()

	var log []string
	var last time.Time
	polls := 0
	v.Every(5*time.Minute, func() {
		now := v.Now()
		if !last.IsZero() && now.Sub(last) != 5*time.Minute {
			t.Errorf("poll %d at %v, %v after the previous one", polls+1, now.Sub(start), now.Sub(last))
		}
		last = now
		polls++
		if polls == 1 || polls == 2 || polls == 12 || polls == 13 {
			log = append(log, fmt.Sprintf("poll@%v", now.Sub(start)))
		}
	})
	// Timers between and on top of the periodic runs.
	v.AfterFunc(7*time.Minute, func() { log = append(log, fmt.Sprintf("t7m@%v", v.Since(start))) })
	v.AfterFunc(time.Hour, func() { log = append(log, fmt.Sprintf("t1h@%v", v.Since(start))) })
	v.AfterFunc(48*time.Hour+time.Second, func() { log = append(log, "too late") })

	ran := v.Advance(48 * time.Hour)

	if polls != 576 {
		t.Fatalf("periodic task ran %d times in 48h, want 576", polls)
	}
	if ran != 578 {
		t.Errorf("Advance reported %d runs, want 578 (576 polls + 2 timers)", ran)
	}
	// Ties go to whatever was scheduled first: the 1h timer was scheduled at
	// 0s, the 12th poll only when the 11th ran at 55m.
	want := []string{"poll@5m0s", "t7m@7m0s", "poll@10m0s", "t1h@1h0m0s", "poll@1h0m0s", "poll@1h5m0s"}
	if !slices.Equal(log, want) {
		t.Errorf("order:\n got %v\nwant %v", log, want)
	}
	if got := v.Since(start); got != 48*time.Hour {
		t.Errorf("clock at %v after Advance(48h)", got)
	}
	if v.Pending() != 2 {
		t.Errorf("pending = %d, want the periodic task and the late timer", v.Pending())
	}
}

func TestVirtualIsDeterministic(t *testing.T) {
	run := func() []string {
		v := clock.NewVirtual(time.Time{})
		var out []string
		for i := range 20 {
			d := time.Duration((i*7)%5) * time.Minute // many ties
			v.AfterFunc(d, func() {
				out = append(out, fmt.Sprintf("a%d", i))
				// Work scheduled from inside a task joins the same Advance.
				v.AfterFunc(time.Duration(i%3)*time.Minute, func() { out = append(out, fmt.Sprintf("b%d", i)) })
			})
		}
		v.Every(90*time.Second, func() { out = append(out, "tick") })
		v.Advance(10 * time.Minute)
		return out
	}
	first := run()
	for range 50 {
		if got := run(); !slices.Equal(got, first) {
			t.Fatalf("runs differ:\n%v\n%v", first, got)
		}
	}
}

func TestVirtualStopResetAndSelfScheduling(t *testing.T) {
	v := clock.NewVirtual(time.Time{})
	var runs []time.Duration
	start := v.Now()
	var tk clock.Ticker
	tk = v.Every(time.Minute, func() {
		runs = append(runs, v.Since(start))
		if len(runs) == 2 {
			tk.Reset(10 * time.Minute) // from inside its own run
		}
		if len(runs) == 4 {
			tk.Stop()
		}
	})
	fired := false
	tm := v.AfterFunc(time.Minute, func() { fired = true })
	if !tm.Stop() {
		t.Fatal("Stop of a pending timer reported false")
	}
	if tm.Stop() {
		t.Fatal("second Stop reported true")
	}
	v.Advance(time.Hour)
	if fired {
		t.Error("stopped timer fired")
	}
	want := []time.Duration{time.Minute, 2 * time.Minute, 12 * time.Minute, 22 * time.Minute}
	if !slices.Equal(runs, want) {
		t.Errorf("runs at %v, want %v", runs, want)
	}
	if v.Pending() != 0 {
		t.Errorf("pending = %d after stopping everything", v.Pending())
	}
	tm.Reset(time.Second)
	if v.Advance(time.Second); !fired {
		t.Error("reset timer did not fire")
	}
}

func TestVirtualRunNextAndSleep(t *testing.T) {
	v := clock.NewVirtual(time.Time{})
	if v.RunNext() {
		t.Fatal("RunNext with nothing scheduled")
	}
	start := v.Now()
	woke := make(chan time.Duration)
	go func() {
		if err := v.Sleep(context.Background(), 3*time.Hour); err != nil {
			t.Error(err)
		}
		woke <- v.Since(start)
	}()
	// Wait for the sleeper to register its timer, then jump straight to it.
	deadline := time.Now().Add(5 * time.Second)
	for v.Pending() == 0 && time.Now().Before(deadline) {
		runtime.Gosched()
	}
	if !v.RunNext() {
		t.Fatal("RunNext found no sleeper")
	}
	if got := <-woke; got != 3*time.Hour {
		t.Errorf("sleeper woke at %v, want 3h", got)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := v.Sleep(ctx, time.Hour); err != context.Canceled {
		t.Errorf("Sleep with a cancelled context = %v", err)
	}
}

func TestVirtualConcurrentUse(t *testing.T) {
	v := clock.NewVirtual(time.Time{})
	var n atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				v.AfterFunc(time.Second, func() { n.Add(1) })
				_ = v.Now()
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 100 {
			v.Advance(100 * time.Millisecond)
		}
	}()
	wg.Wait()
	v.Advance(time.Hour)
	if n.Load() != 800 {
		t.Errorf("%d of 800 timers ran", n.Load())
	}
}

func TestScaledFiresOnScaledWallTime(t *testing.T) {
	c, err := clock.Scaled(3600)
	if err != nil {
		t.Fatal(err)
	}
	wallStart := time.Now()
	virtStart := c.Now()
	fired := make(chan time.Time, 1)
	c.AfterFunc(time.Hour, func() { fired <- c.Now() })
	select {
	case virt := <-fired:
		wall := time.Since(wallStart)
		// One virtual hour is one real second: not instantly, and well
		// within a few seconds.
		if wall < 900*time.Millisecond || wall > 4*time.Second {
			t.Errorf("1h timer fired after %v of wall time, want about 1s", wall)
		}
		if got := virt.Sub(virtStart); got < time.Hour {
			t.Errorf("clock read %v at the 1h timer", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("1h timer on Scaled(3600) did not fire within 10s")
	}
}

func TestScaledTicker(t *testing.T) {
	c, err := clock.Scaled(600) // a minute per 100ms
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	done := make(chan struct{})
	tk := c.Every(time.Minute, func() {
		if n.Add(1) == 3 {
			close(done)
		}
	})
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("ticker ran %d times in 10s", n.Load())
	}
	tk.Stop()
}

func TestScaledRejectsBadFactors(t *testing.T) {
	for _, k := range []float64{0, -1} {
		if _, err := clock.Scaled(k); err == nil {
			t.Errorf("Scaled(%v) accepted", k)
		}
	}
}

func TestRealClock(t *testing.T) {
	c := clock.Real()
	before := time.Now()
	if now := c.Now(); now.Before(before) {
		t.Fatalf("Real().Now() = %v before time.Now() = %v", now, before)
	}
	select {
	case <-c.After(10 * time.Millisecond):
	case <-time.After(5 * time.Second):
		t.Fatal("Real().After(10ms) did not fire")
	}
}

// TestVirtualWorkers runs same-instant tasks at once with SetWorkers:
// they overlap (each waits for the others at a barrier, which would hang
// if they ran one by one), instants still go in order, and a task stopped
// or reset by another of its batch before it started does not run.
func TestVirtualWorkers(t *testing.T) {
	v := clock.NewVirtual(time.Time{})
	v.SetWorkers(4)
	var mu sync.Mutex
	var order []string
	note := func(s string) {
		mu.Lock()
		defer mu.Unlock()
		order = append(order, s)
	}
	var barrier sync.WaitGroup
	barrier.Add(3)
	for i := range 3 {
		v.AfterFunc(time.Minute, func() {
			barrier.Done()
			barrier.Wait()
			note(fmt.Sprintf("a%d", i))
		})
	}
	v.AfterFunc(2*time.Minute, func() { note("b") })
	done := make(chan int)
	go func() { done <- v.Advance(3 * time.Minute) }()
	select {
	case n := <-done:
		if n != 4 {
			t.Errorf("ran %d tasks, want 4", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("same-instant tasks did not run at once")
	}
	if len(order) != 4 || order[3] != "b" {
		t.Errorf("order %v: the later instant must come last", order)
	}

	// Two workers: the first two tasks fill them, and the first stops the
	// third before a worker is free for it, so the third never runs.
	v.SetWorkers(2)
	var third clock.Timer
	var ran atomic.Int32
	gate := make(chan struct{})
	v.AfterFunc(time.Minute, func() { third.Stop(); close(gate); ran.Add(1) })
	v.AfterFunc(time.Minute, func() { <-gate; ran.Add(1) })
	third = v.AfterFunc(time.Minute, func() { ran.Add(100) })
	v.Advance(time.Minute)
	if got := ran.Load(); got != 2 {
		t.Errorf("ran %d, want the two tasks and not the stopped one", got)
	}
}
