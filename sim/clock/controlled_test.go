package clock_test

import (
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gitopsim/gitopsim/sim/clock"
)

func paused(t *testing.T) *clock.Controlled {
	t.Helper()
	c, err := clock.NewControlled(clock.ControlledOptions{Start: clock.Epoch, Paused: true})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// A jump runs one-shot timers exactly as Virtual.Advance does: same
// runs, same order, Now at each due time, timers scheduled by timers
// included. Random schedules and jumps, seeded (the seed is printed).
func TestControlledJumpMatchesVirtual(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	for round := range 200 {
		r := rand.New(rand.NewPCG(seed, uint64(round)))
		type op struct {
			jump  time.Duration
			after time.Duration // a new timer, when jump is 0
			chain time.Duration // what that timer schedules when it runs, or 0
			stop  int           // stop the timer made this many ops ago, when > 0
		}
		var ops []op
		for range 1 + r.IntN(40) {
			switch r.IntN(4) {
			case 0:
				ops = append(ops, op{jump: time.Duration(1+r.IntN(120)) * time.Minute})
			case 1:
				ops = append(ops, op{stop: 1 + r.IntN(5)})
			default:
				o := op{after: time.Duration(r.IntN(90)) * time.Minute}
				if r.IntN(3) == 0 {
					o.chain = time.Duration(r.IntN(30)) * time.Minute
				}
				ops = append(ops, o)
			}
		}
		ops = append(ops, op{jump: 24 * time.Hour})
		play := func(c clock.Clock, jump func(time.Duration)) []string {
			var mu sync.Mutex
			var log []string
			note := func(name string) {
				mu.Lock()
				defer mu.Unlock()
				log = append(log, name+"@"+c.Since(clock.Epoch).String())
			}
			var timers []clock.Timer
			for i, o := range ops {
				switch {
				case o.jump > 0:
					jump(o.jump)
				case o.stop > 0:
					if n := len(timers) - o.stop; n >= 0 {
						timers[n].Stop()
					}
				default:
					name := "t" + strconv.Itoa(i)
					timers = append(timers, c.AfterFunc(o.after, func() {
						note(name)
						if o.chain > 0 {
							c.AfterFunc(o.chain, func() { note(name + "'") })
						}
					}))
				}
			}
			return log
		}
		v := clock.NewVirtual(clock.Epoch)
		want := play(v, func(d time.Duration) { v.Advance(d) })
		c := paused(t)
		got := play(c, func(d time.Duration) {
			if _, err := c.Jump(d); err != nil {
				t.Fatal(err)
			}
		})
		if !slices.Equal(got, want) {
			t.Fatalf("seed %d round %d: jumps ran\n %v\nVirtual ran\n %v", seed, round, got, want)
		}
	}
}

// Periodic tasks run once per jump, at its end, and go on from there.
func TestControlledJumpCoalescesPeriodic(t *testing.T) {
	c := paused(t)
	var mu sync.Mutex
	runs := map[string][]time.Duration{}
	every := func(name string, d time.Duration) {
		c.Every(d, func() {
			mu.Lock()
			defer mu.Unlock()
			runs[name] = append(runs[name], c.Since(clock.Epoch))
		})
	}
	every("poll", 30*time.Second)
	every("heartbeat", 5*time.Minute)
	every("daily", 24*time.Hour)
	var oneShot time.Duration
	c.AfterFunc(15*time.Minute, func() { oneShot = c.Since(clock.Epoch) })

	n, err := c.Jump(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("a 1h jump made %d runs, want 3 (the 15m timer, poll and heartbeat once each)", n)
	}
	if oneShot != 15*time.Minute {
		t.Errorf("the 15m timer ran at %v", oneShot)
	}
	// The next runs are one period after the end of the jump.
	if _, err := c.Jump(5 * time.Minute); err != nil {
		t.Fatal(err)
	}
	want := map[string][]time.Duration{
		"poll":      {time.Hour, time.Hour + 5*time.Minute},
		"heartbeat": {time.Hour, time.Hour + 5*time.Minute},
	}
	for name, w := range want {
		if !slices.Equal(runs[name], w) {
			t.Errorf("%s ran at %v, want %v", name, runs[name], w)
		}
	}
	if len(runs["daily"]) != 0 {
		t.Errorf("daily task ran at %v before its first day", runs["daily"])
	}
	if got := c.Since(clock.Epoch); got != time.Hour+5*time.Minute {
		t.Errorf("paused clock at %v after the jumps", got)
	}
}

// Same-instant tasks of a jump overlap with Workers (each waits at a
// barrier for the others, which would hang if they ran one by one).
func TestControlledJumpWorkers(t *testing.T) {
	c, err := clock.NewControlled(clock.ControlledOptions{Start: clock.Epoch, Paused: true, Workers: 3})
	if err != nil {
		t.Fatal(err)
	}
	var barrier sync.WaitGroup
	barrier.Add(3)
	for range 3 {
		c.Every(time.Minute, func() { barrier.Done(); barrier.Wait() })
	}
	done := make(chan int)
	go func() { n, _ := c.Jump(time.Hour); done <- n }()
	select {
	case n := <-done:
		if n != 3 {
			t.Errorf("ran %d, want 3", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("same-instant tasks of a jump did not run at once")
	}
}

func TestControlledPauseResumeScale(t *testing.T) {
	c := paused(t)
	fired := make(chan time.Time, 1)
	c.AfterFunc(time.Hour, func() { fired <- c.Now() })
	if err := c.SetScale(clock.MaxScale); err != nil {
		t.Fatal(err)
	}
	// Paused: a day a second would fire the hour in 42ms; it must not.
	select {
	case <-fired:
		t.Fatal("a timer fired on a paused clock")
	case <-time.After(200 * time.Millisecond):
	}
	if got := c.Since(clock.Epoch); got != 0 {
		t.Fatalf("paused clock moved %v", got)
	}
	var states []clock.State
	var mu sync.Mutex
	c.OnChange(func(s clock.State) { mu.Lock(); states = append(states, s); mu.Unlock() })
	c.Resume()
	select {
	case at := <-fired:
		if at.Sub(clock.Epoch) < time.Hour {
			t.Errorf("1h timer read %v", at.Sub(clock.Epoch))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("1h timer did not fire within 10s at a day a second")
	}
	c.Pause()
	frozen := c.Now()
	if err := c.SetScale(1); err != nil {
		t.Fatal(err)
	}
	if !c.Now().Equal(frozen) || !c.State().Paused {
		t.Error("SetScale moved or resumed a paused clock")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(states) != 3 || states[0].Paused || !states[1].Paused || states[2].Scale != 1 {
		t.Errorf("OnChange saw %+v, want resume, pause, scale 1", states)
	}
}

// A running clock fires periodic tasks on wall time at its scale and
// drops ticks while a run has not returned.
func TestControlledRunningTicker(t *testing.T) {
	c, err := clock.NewControlled(clock.ControlledOptions{Scale: 600})
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int32
	release := make(chan struct{})
	done := make(chan struct{})
	tk := c.Every(time.Minute, func() { // every 100ms
		if n.Add(1) == 1 {
			<-release
			close(done)
		}
	})
	defer tk.Stop()
	select {
	case <-time.After(500 * time.Millisecond): // 5 ticks' worth
	case <-done:
		t.Fatal("released early")
	}
	if got := n.Load(); got != 1 {
		t.Fatalf("%d runs while the first had not returned, want 1", got)
	}
	close(release)
	<-done
	deadline := time.After(10 * time.Second)
	for n.Load() < 3 {
		select {
		case <-deadline:
			t.Fatalf("only %d runs", n.Load())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func TestControlledRejects(t *testing.T) {
	c := paused(t)
	for _, k := range []float64{0, -1, math.NaN(), math.Inf(1), clock.MaxScale + 1} {
		if err := c.SetScale(k); err == nil {
			t.Errorf("SetScale(%v) accepted", k)
		}
	}
	for _, d := range []time.Duration{0, -time.Minute, clock.MaxJump + time.Second} {
		if _, err := c.Jump(d); err == nil {
			t.Errorf("Jump(%v) accepted", d)
		}
	}
	if c.State().Scale != 1 || !c.Now().Equal(clock.Epoch) {
		t.Errorf("rejected controls changed the clock: %+v", c.State())
	}
	var _ clock.Controller = c
}

// A loop (a task that schedules its own next run with Again) runs once
// at the end of a jump, like a periodic task; on Virtual, Again is
// AfterFunc and the loop runs at every step.
func TestControlledJumpCoalescesLoops(t *testing.T) {
	loop := func(c clock.Clock) *[]time.Duration {
		var runs []time.Duration
		var step func()
		step = func() {
			runs = append(runs, c.Since(clock.Epoch))
			clock.Again(c, 30*time.Second, step)
		}
		clock.Again(c, 30*time.Second, step)
		return &runs
	}
	c := paused(t)
	runs := loop(c)
	if _, err := c.Jump(time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Jump(time.Minute); err != nil {
		t.Fatal(err)
	}
	if want := []time.Duration{time.Hour, time.Hour + time.Minute}; !slices.Equal(*runs, want) {
		t.Errorf("loop ran at %v over jumps of 1h and 1m, want %v", *runs, want)
	}
	v := clock.NewVirtual(clock.Epoch)
	vruns := loop(v)
	v.Advance(time.Hour)
	if len(*vruns) != 120 {
		t.Errorf("on Virtual the loop ran %d times in an hour, want 120", len(*vruns))
	}
}

// After a jump, periodic tasks go back to their own ticks, so tickers
// that were spread out stay spread out.
func TestControlledJumpKeepsPhase(t *testing.T) {
	c := paused(t)
	var mu sync.Mutex
	runs := map[string][]time.Duration{}
	every := func(name string) {
		c.Every(5*time.Minute, func() {
			mu.Lock()
			defer mu.Unlock()
			runs[name] = append(runs[name], c.Since(clock.Epoch))
		})
	}
	every("a") // ticks at 5m, 10m, …
	if _, err := c.Jump(2 * time.Minute); err != nil {
		t.Fatal(err)
	}
	every("b")                                   // ticks at 7m, 12m, …
	if _, err := c.Jump(time.Hour); err != nil { // to 1h2m
		t.Fatal(err)
	}
	for _, d := range []time.Duration{3 * time.Minute, 2 * time.Minute} { // to 1h5m, 1h7m
		if _, err := c.Jump(d); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string][]time.Duration{
		"a": {62 * time.Minute, 65 * time.Minute},
		"b": {62 * time.Minute, 67 * time.Minute},
	}
	for name, w := range want {
		if !slices.Equal(runs[name], w) {
			t.Errorf("%s ran at %v, want %v", name, runs[name], w)
		}
	}
}

// A loop that asks to run again at once, at the end of a jump, runs
// once per jump and again after it, instead of for ever within it.
func TestControlledJumpLoopAtOnce(t *testing.T) {
	c := paused(t)
	var n atomic.Int32
	var step func()
	step = func() {
		n.Add(1)
		clock.Again(c, 0, step)
	}
	clock.Again(c, time.Minute, step)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := c.Jump(time.Hour); err != nil {
			t.Error(err)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("the jump did not end: the loop ran %d times in it", n.Load())
	}
	if got := n.Load(); got != 1 {
		t.Errorf("the loop ran %d times in the jump, want 1", got)
	}
}
