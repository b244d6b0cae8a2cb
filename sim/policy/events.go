package policy

import (
	"maps"
	"slices"
	"sync"
	"time"
)

// EventKind is what an Event reports.
type EventKind string

// The kinds of Event.
const (
	// EventAssignmentEffective: an assignment created or changed has
	// applied to its scope (Timing.Assignment after the write).
	EventAssignmentEffective EventKind = "AssignmentEffective"
	// EventCompliance: a resource's compliance state for an assignment
	// changed, or it was evaluated for the first time.
	EventCompliance EventKind = "Compliance"
	// EventDeployment: a DeployIfNotExists deployment ran, automatically
	// after a resource write or for a remediation task.
	EventDeployment EventKind = "Deployment"
	// EventRemediation: a remediation task changed its provisioning
	// state.
	EventRemediation EventKind = "Remediation"
)

// Event is one thing Azure Policy did, on the simulator's clock, for
// timelines and reports. Events never carry secrets.
type Event struct {
	Time         time.Time
	Kind         EventKind
	AssignmentID string
	// ResourceID is the evaluated or deployed resource; for
	// EventRemediation the remediation's id.
	ResourceID string
	// State is the compliance state (EventCompliance) or the
	// remediation's provisioning state (EventRemediation).
	State string
	// Remediation is the remediation task a deployment belongs to, "" for
	// an automatic one.
	Remediation string
	// Error is why a deployment or remediation failed.
	Error string
}

// events keeps the provider's event log and its subscribers.
type events struct {
	mu   sync.Mutex
	log  []Event
	subs map[int]func(Event)
	next int
}

// emit records an event and hands it to the subscribers, outside the
// lock so that they may call back into the provider.
func (ev *events) emit(e Event) {
	ev.mu.Lock()
	ev.log = append(ev.log, e)
	if len(ev.log) >= maxEvents+maxEvents/10 {
		// Dropped in batches, so that a long run does not copy the log
		// at every event.
		ev.log = slices.Delete(ev.log, 0, len(ev.log)-maxEvents)
	}
	subs := make([]func(Event), 0, len(ev.subs))
	for _, k := range slices.Sorted(maps.Keys(ev.subs)) {
		subs = append(subs, ev.subs[k])
	}
	ev.mu.Unlock()
	for _, fn := range subs {
		fn(e)
	}
}

// maxEvents bounds the event log: a fleet's changes over weeks of
// virtual time would otherwise grow it without end. Compliance events
// come only with changes, so this is months of a 1,000-cluster fleet.
const maxEvents = 100_000

// Events returns the events so far, oldest first: at least the last
// maxEvents (100,000).
func (p *Provider) Events() []Event {
	p.ev.mu.Lock()
	defer p.ev.mu.Unlock()
	return slices.Clone(p.ev.log)
}

// Subscribe calls fn with every later event, in order, on the goroutine
// that produced it (the clock's, usually); fn must not block. cancel
// ends the subscription.
func (p *Provider) Subscribe(fn func(Event)) (cancel func()) {
	p.ev.mu.Lock()
	defer p.ev.mu.Unlock()
	if p.ev.subs == nil {
		p.ev.subs = map[int]func(Event){}
	}
	id := p.ev.next
	p.ev.next++
	p.ev.subs[id] = fn
	return func() {
		p.ev.mu.Lock()
		defer p.ev.mu.Unlock()
		delete(p.ev.subs, id)
	}
}
