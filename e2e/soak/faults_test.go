package soak

import (
	"net/http"
	"time"

	"github.com/gitopsim/gitopsim/sim/arm"
)

// faultKind is a kind of fault the soak injects and later ends.
type faultKind string

const (
	faultLink    faultKind = "agent link down"
	faultGitDown faultKind = "git server down"
	faultGitSlow faultKind = "git server slow"
	faultARM     faultKind = "ARM answers 503"
)

// faultMessage is the message of the 503s the soak injects, by which it
// tells them from gitopsim's own.
const faultMessage = "injected by the soak"

// fault is one injected fault and when it ends (on virtual time).
type fault struct {
	kind  faultKind
	until time.Time
	// cluster and link (all, arm or git) for faultLink.
	cluster, link string
	// latency for faultGitSlow; route and times for faultARM.
	latency time.Duration
	route   string
	times   int
	remove  func()
}

// apply turns the fault on or off on the running gitopsim.
func (f *fault) apply(w *world, on bool) {
	switch f.kind {
	case faultLink:
		c := w.conns[f.cluster]
		if f.link != "git" {
			c.Agent.ARMLink().SetOffline(on)
		}
		if f.link != "arm" {
			c.Agent.GitLink().SetOffline(on)
		}
	case faultGitDown:
		w.s.Git().SetDown(on)
	case faultGitSlow:
		lat := time.Duration(0)
		if on {
			lat = f.latency
		}
		w.s.Git().SetLatency(lat)
	case faultARM:
		if on {
			f.remove = w.s.ARM().InjectFault(arm.Fault{Route: f.route, Status: http.StatusServiceUnavailable, Code: "ServiceUnavailable", Message: faultMessage, Times: f.times})
		} else if f.remove != nil {
			f.remove()
		}
	}
}

// active reports whether a fault of kind (on cluster, for links) is on.
func (w *world) active(kind faultKind, cluster string) bool {
	for _, f := range w.faults {
		if f.kind == kind && f.cluster == cluster {
			return true
		}
	}
	return false
}

// inject starts f for d of virtual time.
func (w *world) inject(f *fault, d time.Duration) {
	f.until = w.clk.Now().Add(d)
	f.apply(w, true)
	w.faults = append(w.faults, f)
	w.stats.faults[f.kind]++
}

// endFaults ends the faults whose time is up, or all of them.
func (w *world) endFaults(all bool) {
	now := w.clk.Now()
	kept := w.faults[:0]
	for _, f := range w.faults {
		if all || !now.Before(f.until) {
			f.apply(w, false)
			continue
		}
		kept = append(kept, f)
	}
	w.faults = kept
}
