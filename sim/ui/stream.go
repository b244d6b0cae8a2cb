package ui

import (
	"encoding/json"
	"strconv"
)

// Server-sent event names (see API.md).
const (
	msgTimeline = "timeline"
	msgSpans    = "spans"
	msgClusters = "clusters"
	msgClock    = "clock"
	msgRepos    = "repos"
)

// subBuffer is how many messages a subscriber may fall behind before it
// is dropped; the page then reconnects and reloads the state.
const subBuffer = 4096

// message is one server-sent event.
type message struct {
	event string
	id    string
	data  []byte
}

// subscriber is one open stream.
type subscriber struct {
	ch chan message
	// gone is closed when the subscriber was dropped for falling behind.
	gone chan struct{}
}

// subscribe opens a stream; cancel closes it.
func (r *Recorder) subscribe() (*subscriber, func()) {
	s := &subscriber{ch: make(chan message, subBuffer), gone: make(chan struct{})}
	r.mu.Lock()
	r.subs[s] = struct{}{}
	r.mu.Unlock()
	return s, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.dropLocked(s)
	}
}

func (r *Recorder) dropLocked(s *subscriber) {
	if _, ok := r.subs[s]; ok {
		delete(r.subs, s)
		close(s.gone)
	}
}

// publish sends a message to every subscriber.
func (r *Recorder) publish(event string, v any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.publishLocked(event, v, 0)
}

// publishLocked sends a message; a subscriber too far behind is dropped
// rather than allowed to slow the simulator down.
func (r *Recorder) publishLocked(event string, v any, seq int64) {
	if len(r.subs) == 0 {
		return
	}
	data, err := json.Marshal(v)
	if err != nil {
		r.log.Error("cannot encode a message for the web view", "event", event, "err", err)
		return
	}
	m := message{event: event, data: data}
	if seq > 0 {
		m.id = strconv.FormatInt(seq, 10)
	}
	for s := range r.subs {
		select {
		case s.ch <- m:
		default:
			r.log.Warn("a web view fell behind and was disconnected; it reconnects and reloads", "buffer", subBuffer)
			r.dropLocked(s)
		}
	}
}

func (r *Recorder) hasSubscribers() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.subs) > 0
}

// publishRaw sends an already encoded message.
func (r *Recorder) publishRaw(event string, data []byte) {
	r.publish(event, json.RawMessage(data))
}
