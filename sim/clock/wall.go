package clock

import (
	"context"
	"sync"
	"time"
)

// Real returns the wall clock.
func Real() Clock { return wall{} }

// Scaled returns a clock that starts at the current wall time and runs k
// virtual seconds per real second (k=3600: an hour a second). k must be
// positive and at most MaxScale; Scaled(1) is Real. It is a Controlled
// clock nobody steers.
func Scaled(k float64) (Clock, error) {
	if err := validScale(k); err != nil {
		return nil, err
	}
	if k == 1 {
		return Real(), nil
	}
	return NewControlled(ControlledOptions{Scale: k})
}

// wall fires timers on the wall clock.
type wall struct{}

func (wall) Now() time.Time                  { return time.Now() }
func (wall) Since(t time.Time) time.Duration { return time.Since(t) }

func (wall) AfterFunc(d time.Duration, f func()) Timer {
	return wallTimer{time.AfterFunc(d, f)}
}

func (wall) Every(interval time.Duration, f func()) Ticker {
	mustPositive(interval)
	k := &wallTicker{f: f, reset: make(chan time.Duration, 1), stop: make(chan struct{})}
	go k.loop(interval)
	return k
}

func (w wall) After(d time.Duration) <-chan time.Time { return after(w, d) }

func (w wall) Sleep(ctx context.Context, d time.Duration) error { return sleep(ctx, w, d) }

type wallTimer struct{ t *time.Timer }

func (t wallTimer) Stop() bool                 { return t.t.Stop() }
func (t wallTimer) Reset(d time.Duration) bool { return t.t.Reset(d) }

type wallTicker struct {
	f        func()
	reset    chan time.Duration
	stop     chan struct{}
	stopOnce sync.Once
}

// loop runs f on one goroutine, so runs never overlap; ticks that fall due
// while f runs are dropped, as with time.Ticker.
func (k *wallTicker) loop(interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-k.stop:
			return
		case d := <-k.reset:
			t.Reset(d)
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
