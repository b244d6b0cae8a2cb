package ui

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gitopsim/gitopsim/sim/internal/durfmt"

	"github.com/gitopsim/gitopsim/sim/arm"
)

// Span kinds.
const (
	// SpanDelivery runs from a push to the sync of that revision (or a
	// later one) by one configuration of one cluster.
	SpanDelivery = "delivery"
	// SpanInstall runs from a configuration's PUT to its Installed event.
	SpanInstall = "install"
	// SpanOffline is the time Azure showed a cluster Offline: from 15
	// minutes after its last heartbeat to its next one.
	SpanOffline = "offline"
)

// Span is a measured delay, drawn as a bar on the timeline.
type Span struct {
	ID            string     `json:"id"`
	Kind          string     `json:"kind"`
	Cluster       string     `json:"cluster"`
	Configuration string     `json:"configuration,omitempty"`
	Revision      string     `json:"revision,omitempty"`
	Start         time.Time  `json:"start"`
	End           *time.Time `json:"end,omitempty"`
	Seconds       float64    `json:"seconds"`
	Duration      string     `json:"duration,omitempty"`
	// Late marks a delivery that overlapped a time the cluster could not
	// reach Azure: its agent's calls failed, or its links were cut.
	Late    bool   `json:"late,omitempty"`
	Message string `json:"message"`
}

// interval is a closed stretch of time.
type interval struct{ from, to time.Time }

// down is a cluster whose agent cannot reach Azure: since its links were
// cut or its first failed call, whichever came first.
type down struct {
	lastHeartbeat, since time.Time
	// agentSaw is set once the agent itself reported Azure unreachable:
	// then only its report of Azure reachable again ends the outage.
	agentSaw bool
}

// spanBook derives spans from events. Not safe for concurrent use: the
// Recorder's lock guards it.
type spanBook struct {
	byID    map[string]*Span
	order   []string
	changed []string
	// pushes is when each revision was last pushed (to any branch): a
	// revision fast-forwarded to another branch, or pushed again over a
	// newer one, is delivered from that push on.
	pushes map[string]time.Time
	// installWait is when each cluster/configuration was last written
	// and not Installed since.
	installWait map[string]time.Time
	// openDelivery are the open delivery spans of a cluster/configuration.
	openDelivery map[string][]string
	// down are clusters that cannot reach Azure now; downs the times
	// they could not before; offline their open offline span.
	down    map[string]down
	downs   map[string][]interval
	offline map[string]string
}

func newSpanBook() spanBook {
	return spanBook{
		byID: map[string]*Span{}, pushes: map[string]time.Time{}, installWait: map[string]time.Time{},
		openDelivery: map[string][]string{}, down: map[string]down{}, downs: map[string][]interval{}, offline: map[string]string{},
	}
}

func ck(cluster, config string) string { return cluster + "\x00" + strings.ToLower(config) }

// maxSpans bounds the book: past it the oldest closed spans go (open
// ones stay until they close).
const maxSpans = 20000

// put adds or replaces a span and marks it changed.
func (b *spanBook) put(s *Span) {
	if _, ok := b.byID[s.ID]; !ok {
		b.order = append(b.order, s.ID)
		if len(b.order) > maxSpans {
			b.prune()
		}
	}
	b.byID[s.ID] = s
	b.changed = append(b.changed, s.ID)
}

// close ends a span at t.
func (b *spanBook) close(s *Span, t time.Time) {
	end := t
	s.End = &end
	d := t.Sub(s.Start)
	s.Seconds, s.Duration = d.Seconds(), fmtDur(d)
	b.changed = append(b.changed, s.ID)
}

// prune drops the oldest closed spans down to nine tenths of maxSpans.
func (b *spanBook) prune() {
	drop := len(b.order) - maxSpans*9/10
	kept := b.order[:0]
	for _, id := range b.order {
		if drop > 0 && b.byID[id].End != nil {
			delete(b.byID, id)
			drop--
			continue
		}
		kept = append(kept, id)
	}
	b.order = kept
	b.changed = slices.DeleteFunc(b.changed, func(id string) bool { return b.byID[id] == nil })
}

func (b *spanBook) all() []Span {
	out := make([]Span, 0, len(b.order))
	for _, id := range b.order {
		out = append(out, *b.byID[id])
	}
	return out
}

// takeChanged returns copies of the spans changed since the last call.
func (b *spanBook) takeChanged() []Span {
	if len(b.changed) == 0 {
		return nil
	}
	seen := map[string]bool{}
	var out []Span
	for _, id := range b.changed {
		if !seen[id] {
			seen[id] = true
			out = append(out, *b.byID[id])
		}
	}
	b.changed = b.changed[:0]
	return out
}

func (b *spanBook) configWritten(cluster, config string, t time.Time) {
	b.installWait[ck(cluster, config)] = t
}

// configGone ends what waited on a deleted configuration.
func (b *spanBook) configGone(cluster, config string, t time.Time) {
	k := ck(cluster, config)
	delete(b.installWait, k)
	for _, id := range b.openDelivery[k] {
		s := b.byID[id]
		s.Message = fmt.Sprintf("%s was deleted from %s before it synced %s", config, clusterName(cluster), short(s.Revision))
		b.close(s, t)
	}
	delete(b.openDelivery, k)
}

func (b *spanBook) installed(cluster, config string, t time.Time) {
	k := ck(cluster, config)
	from, ok := b.installWait[k]
	if !ok {
		return
	}
	delete(b.installWait, k)
	s := &Span{ID: fmt.Sprintf("%s/%s/%s/%d", SpanInstall, cluster, config, from.UnixNano()), Kind: SpanInstall, Cluster: cluster, Configuration: config, Start: from}
	b.close(s, t)
	s.Message = fmt.Sprintf("%s Installed on %s %s after it was written", config, clusterName(cluster), s.Duration)
	b.put(s)
}

// pushed opens a delivery span for each follower of the pushed branch.
func (b *spanBook) pushed(rev string, t time.Time, followers []follower) {
	if t.After(b.pushes[rev]) {
		b.pushes[rev] = t
	}
	for _, f := range followers {
		id := fmt.Sprintf("%s/%s/%s/%s/%d", SpanDelivery, f.cluster, f.config, rev, t.UnixNano())
		if _, ok := b.byID[id]; ok {
			continue
		}
		k := ck(f.cluster, f.config)
		b.openDelivery[k] = append(b.openDelivery[k], id)
		b.put(&Span{ID: id, Kind: SpanDelivery, Cluster: f.cluster, Configuration: f.config, Revision: rev, Start: t,
			Message: fmt.Sprintf("%s pushed; waiting for %s on %s", short(rev), f.config, clusterName(f.cluster))})
	}
}

// synced closes the delivery spans that the synced revision covers:
// its own and those of earlier pushes.
func (b *spanBook) synced(cluster, config, rev string, t time.Time) {
	pushedAt, known := b.pushes[rev]
	if !known {
		return // older than anything open
	}
	k := ck(cluster, config)
	var still []string
	for _, id := range b.openDelivery[k] {
		s := b.byID[id]
		if s.Start.After(pushedAt) {
			still = append(still, id)
			continue
		}
		b.close(s, t)
		lost := b.overlap(cluster, s.Start, t)
		s.Late = lost > 0
		s.Message = fmt.Sprintf("%s reached %s %s after the push of %s", config, clusterName(cluster), s.Duration, short(s.Revision))
		if rev != s.Revision {
			s.Message += fmt.Sprintf(" (synced as part of %s)", short(rev))
		}
		if s.Late {
			s.Message += fmt.Sprintf("; the cluster could not reach Azure for %s of it", fmtDur(lost))
		}
	}
	if len(still) == 0 {
		delete(b.openDelivery, k)
	} else {
		b.openDelivery[k] = still
	}
}

// overlap is how much of [from, to] the cluster spent unable to reach
// Azure.
func (b *spanBook) overlap(cluster string, from, to time.Time) time.Duration {
	ivs := b.downs[cluster]
	if d, ok := b.down[cluster]; ok {
		ivs = append(ivs[:len(ivs):len(ivs)], interval{d.since, to})
	}
	var sum time.Duration
	for _, iv := range ivs {
		lo, hi := maxTime(iv.from, from), minTime(iv.to, to)
		if hi.After(lo) {
			sum += hi.Sub(lo)
		}
	}
	return sum
}

// unreachable starts (or confirms) a cluster's outage: from its agent
// (fromAgent) or from its links being cut.
func (b *spanBook) unreachable(cluster string, lastHeartbeat, t time.Time, fromAgent bool) {
	if d, ok := b.down[cluster]; ok {
		d.agentSaw = d.agentSaw || fromAgent
		b.down[cluster] = d
		return
	}
	if lastHeartbeat.IsZero() {
		lastHeartbeat = t
	}
	b.down[cluster] = down{lastHeartbeat: lastHeartbeat, since: t, agentSaw: fromAgent}
}

// linksRestored ends an outage the agent never noticed (links cut and
// restored between two of its calls).
func (b *spanBook) linksRestored(cluster string, t time.Time) {
	if d, ok := b.down[cluster]; ok && !d.agentSaw {
		b.reachable(cluster, t)
	}
}

// reachable ends a cluster's time down, with the offline span Azure
// showed if it was down long enough.
func (b *spanBook) reachable(cluster string, t time.Time) {
	d, ok := b.down[cluster]
	if !ok {
		return
	}
	delete(b.down, cluster)
	b.downs[cluster] = append(b.downs[cluster], interval{d.since, t})
	start := d.lastHeartbeat.Add(arm.OfflineAfter)
	if t.Before(start) {
		return
	}
	s := b.openOffline(cluster, start)
	delete(b.offline, cluster)
	b.close(s, t)
	s.Message = fmt.Sprintf("Azure showed %s Offline for %s (no heartbeat since %s)", clusterName(cluster), s.Duration, d.lastHeartbeat.UTC().Format("15:04:05"))
}

// tick opens the offline spans of clusters whose silence passed 15
// minutes by now.
func (b *spanBook) tick(now time.Time) {
	for cluster, d := range b.down {
		if start := d.lastHeartbeat.Add(arm.OfflineAfter); !now.Before(start) {
			b.openOffline(cluster, start)
		}
	}
}

func (b *spanBook) openOffline(cluster string, start time.Time) *Span {
	if id, ok := b.offline[cluster]; ok {
		return b.byID[id]
	}
	s := &Span{ID: fmt.Sprintf("%s/%s/%d", SpanOffline, cluster, start.UnixNano()), Kind: SpanOffline, Cluster: cluster, Start: start,
		Message: fmt.Sprintf("Azure shows %s Offline", clusterName(cluster))}
	b.offline[cluster] = s.ID
	b.put(s)
	return s
}

// fmtDur prints a duration to the second without zero tails: 1h52m, 31s.
func fmtDur(d time.Duration) string { return durfmt.Short(d, time.Second) }

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
