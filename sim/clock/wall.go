package clock

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"
)

// minTick keeps a heavily scaled periodic task from spinning a core.
const minTick = time.Millisecond

// Real returns the wall clock.
func Real() Clock { return &wall{factor: 1} }

// Scaled returns a clock that starts at the current wall time and runs k
// virtual seconds per real second (k=3600: an hour a second). k must be
// positive and finite; Scaled(1) behaves like Real.
func Scaled(k float64) (Clock, error) {
	if !(k > 0) || math.IsInf(k, 0) {
		return nil, fmt.Errorf("time scale %v: must be a positive number", k)
	}
	if k == 1 {
		return Real(), nil
	}
	now := time.Now()
	return &wall{factor: k, wallStart: now, virtStart: now}, nil
}

// wall fires timers on the wall clock, with virtual durations divided by
// factor.
type wall struct {
	factor               float64
	wallStart, virtStart time.Time
}

func (w *wall) Now() time.Time {
	if w.factor == 1 {
		return time.Now()
	}
	return w.virtStart.Add(time.Duration(float64(time.Since(w.wallStart)) * w.factor))
}

func (w *wall) Since(t time.Time) time.Duration { return w.Now().Sub(t) }

// real converts a virtual duration to the wall duration that covers it.
func (w *wall) real(d time.Duration) time.Duration {
	if w.factor == 1 || d <= 0 {
		return d
	}
	return time.Duration(math.Ceil(float64(d) / w.factor))
}

func (w *wall) AfterFunc(d time.Duration, f func()) Timer {
	return &wallTimer{w: w, t: time.AfterFunc(w.real(d), f)}
}

func (w *wall) Every(interval time.Duration, f func()) Ticker {
	mustPositive(interval)
	k := &wallTicker{w: w, f: f, reset: make(chan time.Duration, 1), stop: make(chan struct{})}
	go k.loop(interval)
	return k
}

func (w *wall) After(d time.Duration) <-chan time.Time { return after(w, d) }

func (w *wall) Sleep(ctx context.Context, d time.Duration) error { return sleep(ctx, w, d) }

type wallTimer struct {
	w *wall
	t *time.Timer
}

func (t *wallTimer) Stop() bool                 { return t.t.Stop() }
func (t *wallTimer) Reset(d time.Duration) bool { return t.t.Reset(t.w.real(d)) }

type wallTicker struct {
	w        *wall
	f        func()
	reset    chan time.Duration
	stop     chan struct{}
	stopOnce sync.Once
}

func (k *wallTicker) period(interval time.Duration) time.Duration {
	return max(k.w.real(interval), minTick)
}

// loop runs f on one goroutine, so runs never overlap; ticks that fall due
// while f runs are dropped, as with time.Ticker.
func (k *wallTicker) loop(interval time.Duration) {
	t := time.NewTicker(k.period(interval))
	defer t.Stop()
	for {
		select {
		case <-k.stop:
			return
		case d := <-k.reset:
			t.Reset(k.period(d))
		case <-t.C:
			select {
			case <-k.stop:
				return
			default:
			}
			k.f()
		}
	}
}

func (k *wallTicker) Stop() { k.stopOnce.Do(func() { close(k.stop) }) }

func (k *wallTicker) Reset(interval time.Duration) {
	mustPositive(interval)
	// Never block: f may reset its own ticker from inside the loop.
	for {
		select {
		case k.reset <- interval:
			return
		case <-k.stop:
			return
		default:
			select {
			case <-k.reset: // drop a reset the loop has not taken yet
			default:
			}
		}
	}
}
