package clock

import (
	"container/heap"
	"context"
	"sync"
	"time"
)

// Epoch is the default start of a Virtual clock: a fixed instant, so that
// transcripts of virtual runs are byte-for-byte reproducible.
var Epoch = time.Date(2026, time.January, 1, 0, 0, 0, 0, time.UTC)

// Virtual is a discrete-event clock. Time stands still until Advance moves
// it; Advance runs every due task in (time, scheduling order) order, each to
// completion on the caller's goroutine, before moving on.
//
// Tasks may schedule, stop and reset other tasks and read Now, which is the
// task's due time while it runs. Tasks must not call Advance.
type Virtual struct {
	// advancing serializes Advance calls so that two goroutines cannot
	// interleave runs of the same schedule.
	advancing sync.Mutex

	mu    sync.Mutex
	now   time.Time
	seq   uint64
	queue queue[*vtask]
	runs  uint64
	// workers is how many tasks due at the same instant may run at once;
	// 0 and 1 run them one by one.
	workers int
}

// SetWorkers lets up to n tasks that fall due at the same instant run at
// once, as independent agents would on a real clock, where every timer
// fires on its own goroutine; the tasks must then be safe to run
// concurrently, as they are under the Real clock. Tasks due at different
// instants still run in time order, and a task stopped or reset by
// another before it started does not run. The order of same-instant
// tasks, and so what they observe of each other, is then no longer
// reproducible: keep 1 (the default) where runs must be replayed byte for
// byte. Call it before Advance.
func (v *Virtual) SetWorkers(n int) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.workers = n
}

// NewVirtual returns a Virtual clock that starts at start, or at Epoch if
// start is zero.
func NewVirtual(start time.Time) *Virtual {
	if start.IsZero() {
		start = Epoch
	}
	return &Virtual{now: start}
}

// Now returns the virtual time.
func (v *Virtual) Now() time.Time {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.now
}

// Since returns the virtual time elapsed since t.
func (v *Virtual) Since(t time.Time) time.Duration { return v.Now().Sub(t) }

// AfterFunc runs f once when the virtual time reaches now+d.
func (v *Virtual) AfterFunc(d time.Duration, f func()) Timer {
	t := &vtask{clock: v, f: f}
	v.mu.Lock()
	v.schedule(t, v.now.Add(max(d, 0)))
	v.mu.Unlock()
	return t
}

// Every runs f at now+interval, now+2·interval, ... until stopped.
func (v *Virtual) Every(interval time.Duration, f func()) Ticker {
	mustPositive(interval)
	t := &vtask{clock: v, f: f, period: interval}
	v.mu.Lock()
	v.schedule(t, v.now.Add(interval))
	v.mu.Unlock()
	return vticker{t}
}

// After returns a channel that receives the virtual time once d has passed.
func (v *Virtual) After(d time.Duration) <-chan time.Time { return after(v, d) }

// Sleep blocks until another goroutine advances the clock by d, or ctx ends.
func (v *Virtual) Sleep(ctx context.Context, d time.Duration) error { return sleep(ctx, v, d) }

// Advance moves the clock forward by d, running every task that falls due
// on the way, and returns how many task runs it made. A negative d is
// treated as zero.
func (v *Virtual) Advance(d time.Duration) int {
	return v.AdvanceTo(v.Now().Add(max(d, 0)))
}

// AdvanceTo moves the clock forward to t (never backwards), running every
// task due at or before t, and returns how many task runs it made.
func (v *Virtual) AdvanceTo(t time.Time) int {
	v.advancing.Lock()
	defer v.advancing.Unlock()
	ran := 0
	for {
		v.mu.Lock()
		workers := v.workers
		v.mu.Unlock()
		if workers > 1 {
			n := v.runBatch(t, workers)
			if n < 0 {
				return ran
			}
			ran += n
			continue
		}
		task := v.popDue(t)
		if task == nil {
			return ran
		}
		task.f()
		ran++
	}
}

// runBatch pops every task due at the earliest instant up to limit and
// runs them on up to workers goroutines; -1 when nothing was due.
func (v *Virtual) runBatch(limit time.Time, workers int) int {
	first := v.popDue(limit)
	if first == nil {
		return -1
	}
	batch := []*vtask{first}
	v.mu.Lock()
	for len(v.queue) > 0 && v.queue[0].at.Equal(v.now) {
		t := heap.Pop(&v.queue).(*vtask)
		if t.period > 0 {
			v.schedule(t, t.at.Add(t.period))
		}
		v.runs++
		batch = append(batch, t)
	}
	if len(batch) == 1 {
		v.mu.Unlock()
		first.f()
		return 1
	}
	for _, t := range batch {
		t.due = true
	}
	v.mu.Unlock()
	return runAtOnce(len(batch), workers, func(i int) bool {
		v.mu.Lock()
		defer v.mu.Unlock()
		live := batch[i].due
		batch[i].due = false
		return live
	}, func(i int) { batch[i].f() })
}

// RunNext jumps to the next scheduled task, runs everything due at that
// instant, and reports whether there was anything to run. It lets a caller
// wait for "the next thing that happens" without guessing a duration.
func (v *Virtual) RunNext() bool {
	next, ok := v.NextAt()
	if !ok {
		return false
	}
	v.AdvanceTo(next)
	return true
}

// NextAt returns when the earliest pending task is due.
func (v *Virtual) NextAt() (time.Time, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.queue) == 0 {
		return time.Time{}, false
	}
	return v.queue[0].at, true
}

// Pending returns the number of scheduled timers and periodic tasks.
func (v *Virtual) Pending() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.queue)
}

// Runs returns how many task runs this clock has made in total.
func (v *Virtual) Runs() uint64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.runs
}

// popDue removes the earliest task due at or before limit, moves the clock to
// its due time and re-arms it if it is periodic. With nothing due it moves
// the clock to limit and returns nil.
func (v *Virtual) popDue(limit time.Time) *vtask {
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.queue) == 0 || v.queue[0].at.After(limit) {
		if limit.After(v.now) {
			v.now = limit
		}
		return nil
	}
	t := heap.Pop(&v.queue).(*vtask)
	if t.at.After(v.now) {
		v.now = t.at
	}
	if t.period > 0 {
		// Re-arm before running so that a task that stops itself wins.
		v.schedule(t, t.at.Add(t.period))
	}
	v.runs++
	return t
}

// schedule (re)inserts t at the given time; v.mu must be held.
func (v *Virtual) schedule(t *vtask, at time.Time) {
	if t.queued {
		heap.Remove(&v.queue, t.index)
	}
	v.seq++
	t.at, t.seq, t.queued = at, v.seq, true
	heap.Push(&v.queue, t)
}

// unschedule removes t if queued and reports whether it was; v.mu must be held.
func (v *Virtual) unschedule(t *vtask) bool {
	if !t.queued {
		return false
	}
	heap.Remove(&v.queue, t.index)
	return true
}

// vtask is a timer (period 0) or a periodic task on a Virtual clock.
type vtask struct {
	clock  *Virtual
	f      func()
	period time.Duration
	slot
	// due marks a task popped with a batch of same-instant tasks that has
	// not started yet (SetWorkers); Stop and Reset clear it.
	due bool
}

func (t *vtask) Stop() bool {
	t.clock.mu.Lock()
	defer t.clock.mu.Unlock()
	was := t.due
	t.due = false
	return t.clock.unschedule(t) || was
}

func (t *vtask) Reset(d time.Duration) bool {
	t.clock.mu.Lock()
	defer t.clock.mu.Unlock()
	was := t.queued || t.due
	t.due = false
	t.clock.schedule(t, t.clock.now.Add(max(d, 0)))
	return was
}

// vticker is the Ticker face of a periodic vtask.
type vticker struct{ t *vtask }

func (k vticker) Stop() { k.t.Stop() }

func (k vticker) Reset(interval time.Duration) {
	mustPositive(interval)
	v := k.t.clock
	v.mu.Lock()
	defer v.mu.Unlock()
	k.t.period = interval
	k.t.due = false
	v.schedule(k.t, v.now.Add(interval))
}

func (t *vtask) place() *slot { return &t.slot }
