package policy

import (
	"strconv"
	"testing"
)

var itoa = strconv.Itoa

// TestEventLogBounded keeps the newest events of a long run and drops
// the oldest, and still hands every event to subscribers.
func TestEventLogBounded(t *testing.T) {
	var ev events
	seen := 0
	ev.subs = map[int]func(Event){0: func(Event) { seen++ }}
	total := maxEvents + maxEvents/2
	for i := range total {
		ev.emit(Event{ResourceID: string(rune('a' + i%26)), State: "x", Remediation: itoa(i)})
	}
	if seen != total {
		t.Errorf("subscribers saw %d of %d events", seen, total)
	}
	if n := len(ev.log); n < maxEvents || n >= maxEvents+maxEvents/10 {
		t.Fatalf("log holds %d events, want between %d and %d", n, maxEvents, maxEvents+maxEvents/10)
	}
	if last := ev.log[len(ev.log)-1].Remediation; last != itoa(total-1) {
		t.Errorf("newest event %s, want %d", last, total-1)
	}
	if first := ev.log[0].Remediation; first == itoa(0) {
		t.Error("the oldest events are kept")
	}
}
