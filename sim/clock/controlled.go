package clock

import (
	"container/heap"
	"context"
	"fmt"
	"math"
	"sync"
	"time"
)

// Limits of a Controlled clock.
const (
	// MaxScale is the fastest a Controlled clock runs: a day a second.
	MaxScale = 86400
	// MaxJump is the longest single Jump: longer jumps are almost always a
	// typo, and a month of one-shot timers is already a lot of work.
	MaxJump = 31 * 24 * time.Hour
)

// Controller is a clock a person steers: a presenter pauses it, speeds it
// up and jumps ahead. Controlled implements it.
type Controller interface {
	Clock
	// Pause stops time; timers wait. Pausing a paused clock does nothing.
	Pause()
	// Resume starts time again at the current scale.
	Resume()
	// SetScale sets how many virtual seconds pass per wall second.
	SetScale(k float64) error
	// Jump moves time ahead by d and returns how many task runs it made.
	Jump(d time.Duration) (int, error)
	// State describes the clock now.
	State() State
	// OnChange calls f after every Pause, Resume, SetScale and Jump, with
	// the state after it; f must return quickly.
	OnChange(f func(State))
}

// State is what a Controller shows.
type State struct {
	Now    time.Time `json:"now"`
	Scale  float64   `json:"scale"`
	Paused bool      `json:"paused"`
}

// ControlledOptions configure a Controlled clock.
type ControlledOptions struct {
	// Start is the virtual time at creation; zero means the wall time.
	Start time.Time
	// Scale is virtual seconds per wall second; 0 means 1.
	Scale float64
	// Paused starts the clock paused.
	Paused bool
	// Workers is how many tasks due at the same instant of a Jump run at
	// once; 0 means 1. While running, every task has its own goroutine.
	Workers int
}

// Controlled runs at Scale virtual seconds per wall second, like Scaled,
// and can be paused, rescaled and jumped ahead while timers are pending.
//
// While it runs, each due task runs on its own goroutine, as time.AfterFunc
// does; a periodic task whose previous run has not returned skips the tick,
// as a time.Ticker drops ticks for a slow reader.
//
// A Jump is a suspend and resume of the whole simulated world. Time stops;
// every one-shot timer due within the jump runs, in (time, scheduling
// order), with Now at its due time, as on Virtual; every periodic task
// (Every) and every loop (Again) due within the jump runs once, at the end
// of it, the way a machine waking
// from suspend delivers one tick per ticker instead of the ticks it missed.
// So a one-hour jump costs one poll per agent, not 120, and a cluster
// that was online before the jump heartbeats at its end, while the
// timers that model delays (a policy evaluation after 15 minutes, an
// operation that completes after 5) fire at their own times. Code that
// reads the clock between two of its own periodic runs sees the gap. A
// periodic task goes back to its own ticks after a jump; a loop goes on
// from the end of the jump.
//
// A task that runs in a jump must not wait on this clock (Sleep, After,
// a timer's channel): the jump waits for it, and what it waits for can
// only come after, so both would wait for ever.
type Controlled struct {
	// jumping serializes Jumps.
	jumping sync.Mutex

	mu       sync.Mutex
	wallBase time.Time // wall instant of the last rebase
	virtBase time.Time // virtual time at wallBase, or the frozen time
	scale    float64
	paused   bool
	// frozen holds time still during a Jump (with Now at virtBase) up to
	// target; heldLoops wait for the jump to end (again).
	frozen    bool
	target    time.Time
	heldLoops []*ctask
	workers   int
	queue     queue[*ctask]
	seq       uint64
	// looping is whether the scheduler goroutine runs; it runs while
	// tasks are queued and exits when there are none.
	looping   bool
	wake      chan struct{}
	listeners []func(State)
}

// NewControlled returns a Controlled clock.
func NewControlled(o ControlledOptions) (*Controlled, error) {
	if o.Scale == 0 {
		o.Scale = 1
	}
	if err := validScale(o.Scale); err != nil {
		return nil, err
	}
	wallNow := time.Now()
	if o.Start.IsZero() {
		o.Start = wallNow
	}
	return &Controlled{
		wallBase: wallNow, virtBase: o.Start, scale: o.Scale, paused: o.Paused,
		workers: max(o.Workers, 1), wake: make(chan struct{}, 1),
	}, nil
}

func validScale(k float64) error {
	if !(k > 0) || math.IsInf(k, 0) || k > MaxScale {
		return fmt.Errorf("time scale %v: must be a number above 0 and at most %d", k, MaxScale)
	}
	return nil
}

// Now returns the virtual time.
func (c *Controlled) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nowLocked(time.Now())
}

func (c *Controlled) nowLocked(wall time.Time) time.Time {
	if c.paused || c.frozen {
		return c.virtBase
	}
	return c.virtBase.Add(time.Duration(float64(wall.Sub(c.wallBase)) * c.scale))
}

// rebaseLocked pins the virtual time now, so that a change of scale or a
// resume starts from here.
func (c *Controlled) rebaseLocked() {
	wall := time.Now()
	c.virtBase = c.nowLocked(wall)
	c.wallBase = wall
}

// Since returns the virtual time elapsed since t.
func (c *Controlled) Since(t time.Time) time.Duration { return c.Now().Sub(t) }

// AfterFunc runs f once, d of virtual time from now.
func (c *Controlled) AfterFunc(d time.Duration, f func()) Timer {
	t := &ctask{clock: c, f: f}
	c.mu.Lock()
	c.scheduleLocked(t, c.nowLocked(time.Now()).Add(max(d, 0)))
	c.mu.Unlock()
	return t
}

// again is AfterFunc for the next run of a loop (see Again).
func (c *Controlled) again(d time.Duration, f func()) Timer {
	t := &ctask{clock: c, f: f, loop: true}
	c.mu.Lock()
	defer c.mu.Unlock()
	at := c.nowLocked(time.Now()).Add(max(d, 0))
	if c.frozen && !at.After(c.target) && !c.virtBase.Before(c.target) {
		// A loop that ran at the end of a jump and asks to run again
		// within it waits for the jump to end: it runs once per jump.
		t.held, t.slot.at = true, at
		c.heldLoops = append(c.heldLoops, t)
		return t
	}
	c.scheduleLocked(t, at)
	return t
}

// Every runs f every interval of virtual time until stopped.
func (c *Controlled) Every(interval time.Duration, f func()) Ticker {
	mustPositive(interval)
	t := &ctask{clock: c, f: f, period: interval}
	c.mu.Lock()
	c.scheduleLocked(t, c.nowLocked(time.Now()).Add(interval))
	c.mu.Unlock()
	return cticker{t}
}

// After returns a channel that receives the virtual time once d has passed.
func (c *Controlled) After(d time.Duration) <-chan time.Time { return after(c, d) }

// Sleep blocks until d of virtual time has passed, or ctx ends.
func (c *Controlled) Sleep(ctx context.Context, d time.Duration) error { return sleep(ctx, c, d) }

// Pause stops virtual time.
func (c *Controlled) Pause() {
	c.mu.Lock()
	if !c.paused {
		c.rebaseLocked()
		c.paused = true
	}
	c.mu.Unlock()
	c.changed()
}

// Resume starts virtual time again.
func (c *Controlled) Resume() {
	c.mu.Lock()
	if c.paused {
		c.wallBase = time.Now()
		c.paused = false
		c.kickLocked()
	}
	c.mu.Unlock()
	c.changed()
}

// SetScale sets how many virtual seconds pass per wall second, from now.
func (c *Controlled) SetScale(k float64) error {
	if err := validScale(k); err != nil {
		return err
	}
	c.mu.Lock()
	c.rebaseLocked()
	c.scale = k
	c.kickLocked()
	c.mu.Unlock()
	c.changed()
	return nil
}

// State describes the clock now.
func (c *Controlled) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return State{Now: c.nowLocked(time.Now()), Scale: c.scale, Paused: c.paused}
}

// OnChange registers f to be called after every control.
func (c *Controlled) OnChange(f func(State)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.listeners = append(c.listeners, f)
}

func (c *Controlled) changed() {
	c.mu.Lock()
	ls := append([]func(State){}, c.listeners...)
	st := State{Now: c.nowLocked(time.Now()), Scale: c.scale, Paused: c.paused}
	c.mu.Unlock()
	for _, f := range ls {
		f(st)
	}
}

// Jump moves virtual time ahead by d (see Controlled for what runs) and
// returns once everything due has run, with how many task runs it made.
// Time stands still during the jump, paused or not; a paused clock stays
// paused at the end of it.
func (c *Controlled) Jump(d time.Duration) (int, error) {
	if d <= 0 || d > MaxJump {
		return 0, fmt.Errorf("jump of %v: must be above 0 and at most %v", d, MaxJump)
	}
	c.jumping.Lock()
	defer c.jumping.Unlock()
	c.mu.Lock()
	c.rebaseLocked()
	target := c.virtBase.Add(d)
	c.frozen, c.target = true, target
	c.mu.Unlock()

	ran := 0
	for {
		batch := c.popJumpBatch(target)
		if len(batch) == 0 {
			break
		}
		ran += c.runBatch(batch)
	}
	c.mu.Lock()
	c.virtBase, c.wallBase = target, time.Now()
	c.frozen = false
	for _, t := range c.heldLoops {
		if t.held {
			t.held = false
			c.scheduleLocked(t, t.at)
		}
	}
	c.heldLoops = nil
	c.kickLocked()
	c.mu.Unlock()
	c.changed()
	return ran, nil
}

// popJumpBatch takes every task due at the earliest instant up to target,
// moves the frozen time there and re-arms the periodic ones. A periodic
// task due before target is moved to target first: it runs once, at the
// end of the jump.
func (c *Controlled) popJumpBatch(target time.Time) []*ctask {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.queue) > 0 && c.queue[0].coalesced() && c.queue[0].at.Before(target) {
		c.coalesceLocked(c.queue[0], target)
	}
	if len(c.queue) == 0 || c.queue[0].at.After(target) {
		return nil
	}
	at := c.queue[0].at
	var batch []*ctask
	for len(c.queue) > 0 && c.queue[0].at.Equal(at) {
		if t := c.queue[0]; t.coalesced() && t.at.Before(target) {
			c.coalesceLocked(t, target)
			continue
		}
		t := heap.Pop(&c.queue).(*ctask)
		if t.period > 0 {
			next := at.Add(t.period)
			if !t.phase.IsZero() {
				// Back on the ticks it had before the jump, so that a
				// fleet's tickers do not all beat at once from now on.
				next = t.phase.Add((target.Sub(t.phase)/t.period + 1) * t.period)
				t.phase = time.Time{}
			}
			c.scheduleLocked(t, next)
			if t.running {
				continue // its run from before the jump is still going
			}
		}
		t.due = true
		batch = append(batch, t)
	}
	if at.After(c.virtBase) {
		c.virtBase = at
	}
	return batch
}

// coalesceLocked moves a periodic task or loop due within a jump to its
// end, remembering a periodic task's phase.
func (c *Controlled) coalesceLocked(t *ctask, target time.Time) {
	if t.period > 0 && t.phase.IsZero() {
		t.phase = t.at
	}
	c.scheduleLocked(t, target)
}

// runBatch runs the tasks of one instant of a jump on up to workers
// goroutines and waits for them; a task stopped by another before it
// started does not run.
func (c *Controlled) runBatch(batch []*ctask) int {
	c.mu.Lock()
	workers := c.workers
	c.mu.Unlock()
	return runAtOnce(len(batch), workers, func(i int) bool {
		t := batch[i]
		c.mu.Lock()
		defer c.mu.Unlock()
		live := t.due
		t.due = false
		if live && t.period > 0 {
			t.running = true
		}
		return live
	}, func(i int) { c.run(batch[i]) })
}

// run runs one task and clears its running mark (set, under the lock,
// for periodic tasks only).
func (c *Controlled) run(t *ctask) {
	defer func() {
		c.mu.Lock()
		t.running = false
		c.mu.Unlock()
	}()
	t.f()
}

// scheduleLocked (re)inserts t at the given time and makes sure the
// scheduler runs.
func (c *Controlled) scheduleLocked(t *ctask, at time.Time) {
	if t.queued {
		heap.Remove(&c.queue, t.index)
	}
	c.seq++
	t.at, t.seq, t.queued = at, c.seq, true
	heap.Push(&c.queue, t)
	c.kickLocked()
}

// kickLocked wakes the scheduler, starting it if it is not running.
func (c *Controlled) kickLocked() {
	if !c.looping {
		if len(c.queue) == 0 {
			return
		}
		c.looping = true
		go c.loop()
		return
	}
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// loop fires due tasks while time runs; it exits when nothing is queued.
func (c *Controlled) loop() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		c.mu.Lock()
		if len(c.queue) == 0 {
			c.looping = false
			c.mu.Unlock()
			return
		}
		wait := time.Duration(-1) // until woken
		if !c.paused && !c.frozen {
			wall := time.Now()
			now := c.nowLocked(wall)
			next := c.queue[0]
			if !next.at.After(now) {
				c.fireLocked(now)
				c.mu.Unlock()
				continue
			}
			wait = time.Duration(math.Ceil(float64(next.at.Sub(now)) / c.scale))
			if next.period > 0 {
				wait = max(wait, minTick)
			}
		}
		c.mu.Unlock()
		if wait >= 0 {
			timer.Reset(wait)
			select {
			case <-c.wake:
			case <-timer.C:
			}
			timer.Stop()
		} else {
			<-c.wake
		}
	}
}

// fireLocked pops the earliest task, re-arms it if periodic (skipping the
// ticks it is behind) and starts its run on its own goroutine.
func (c *Controlled) fireLocked(now time.Time) {
	t := heap.Pop(&c.queue).(*ctask)
	if t.period > 0 {
		behind := now.Sub(t.at) / t.period
		c.scheduleLocked(t, t.at.Add((behind+1)*t.period))
		if t.running {
			return // the last run is still going: drop this tick
		}
		t.running = true
	}
	go c.run(t)
}

// ctask is a timer (period 0) or a periodic task on a Controlled clock.
type ctask struct {
	clock  *Controlled
	f      func()
	period time.Duration
	slot
	// due marks a task popped in a jump batch that has not started.
	due bool
	// running marks a periodic task whose run has not returned.
	running bool
	// loop marks the next run of a loop (Again).
	loop bool
	// phase is where a periodic task's ticks were before a jump moved it.
	phase time.Time
	// held is a loop rescheduled at the last instant of a jump, waiting
	// for the jump to end.
	held bool
}

// coalesced tasks run once at the end of a jump (see Controlled).
func (t *ctask) coalesced() bool { return t.period > 0 || t.loop }

func (t *ctask) Stop() bool {
	c := t.clock
	c.mu.Lock()
	defer c.mu.Unlock()
	was := t.due || t.queued || t.held
	t.due, t.held = false, false
	if t.queued {
		heap.Remove(&c.queue, t.index)
	}
	return was
}

func (t *ctask) Reset(d time.Duration) bool {
	c := t.clock
	c.mu.Lock()
	defer c.mu.Unlock()
	was := t.queued || t.due || t.held
	t.due, t.held = false, false
	c.scheduleLocked(t, c.nowLocked(time.Now()).Add(max(d, 0)))
	return was
}

// cticker is the Ticker face of a periodic ctask.
type cticker struct{ t *ctask }

func (k cticker) Stop() { k.t.Stop() }

func (k cticker) Reset(interval time.Duration) {
	mustPositive(interval)
	c := k.t.clock
	c.mu.Lock()
	defer c.mu.Unlock()
	k.t.period = interval
	k.t.due = false
	c.scheduleLocked(k.t, c.nowLocked(time.Now()).Add(interval))
}

func (t *ctask) place() *slot { return &t.slot }

// minTick keeps a heavily scaled periodic task from spinning a core.
const minTick = time.Millisecond
