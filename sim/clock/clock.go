package clock

import (
	"context"
	"time"
)

// Clock tells the time and runs work later. Implementations are safe for
// concurrent use.
type Clock interface {
	// Now returns the current time of this clock.
	Now() time.Time
	// Since returns the time elapsed since t on this clock.
	Since(t time.Time) time.Duration
	// AfterFunc runs f once, d from now. A d of zero or less means "as soon
	// as possible" (on Virtual: at the next Advance, even Advance(0)).
	AfterFunc(d time.Duration, f func()) Timer
	// Every runs f every interval, first one interval from now, until the
	// returned Ticker is stopped. Runs never overlap. It panics if interval
	// is not positive, as time.NewTicker does: that is a programming error,
	// and callers validate user-supplied intervals first.
	Every(interval time.Duration, f func()) Ticker
	// After returns a channel that receives the clock's time once d has
	// passed.
	After(d time.Duration) <-chan time.Time
	// Sleep blocks until d has passed on this clock or ctx ends, in which
	// case it returns the context's error.
	Sleep(ctx context.Context, d time.Duration) error
}

// Timer is a single scheduled run of a function.
type Timer interface {
	// Stop cancels the run. It reports whether the call stopped it, false if
	// it had already run or been stopped.
	Stop() bool
	// Reset schedules the run again, d from now, whether or not it ran. It
	// reports whether the timer was pending before the call.
	Reset(d time.Duration) bool
}

// Ticker is a periodic task.
type Ticker interface {
	// Stop ends the task; a run in progress completes.
	Stop()
	// Reset changes the interval; the next run is one new interval from now.
	Reset(interval time.Duration)
}

// Again schedules the next run of a loop: a task that, each time it runs,
// schedules its own next run. It is AfterFunc, except on a Controlled
// clock, whose Jump runs such a loop once at the end of the jump instead
// of at every step, as it runs a periodic task (an agent that polls git
// every 5 minutes polls once after a two-day jump, not 576 times).
func Again(c Clock, d time.Duration, f func()) Timer {
	if l, ok := c.(looper); ok {
		return l.again(d, f)
	}
	return c.AfterFunc(d, f)
}

// looper is a clock that treats loops apart (Controlled).
type looper interface {
	again(d time.Duration, f func()) Timer
}

func sleep(ctx context.Context, c Clock, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	done := make(chan struct{})
	t := c.AfterFunc(d, func() { close(done) })
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		t.Stop()
		return ctx.Err()
	}
}

func after(c Clock, d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	c.AfterFunc(d, func() { ch <- c.Now() })
	return ch
}

func mustPositive(interval time.Duration) {
	if interval <= 0 {
		panic("clock: non-positive interval for Every")
	}
}
