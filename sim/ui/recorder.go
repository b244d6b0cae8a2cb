package ui

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gitopsim/gitopsim/sim"
	"github.com/gitopsim/gitopsim/sim/agent"
	"github.com/gitopsim/gitopsim/sim/arm"
	"github.com/gitopsim/gitopsim/sim/gitserver"
	"github.com/gitopsim/gitopsim/sim/policy"
)

// Event kinds (Event.Kind).
const (
	KindPush    = "push"
	KindConfig  = "config"
	KindCluster = "cluster"
	KindAgent   = "agent"
	KindPolicy  = "policy"
	KindLink    = "link"
	KindGit     = "git"
	KindClock   = "clock"
)

// Event levels.
const (
	LevelInfo  = "info"
	LevelWarn  = "warn"
	LevelError = "error"
)

// Event is one entry of the timeline, on the simulator's clock.
type Event struct {
	Seq           int64     `json:"seq"`
	Time          time.Time `json:"time"`
	Kind          string    `json:"kind"`
	Action        string    `json:"action,omitempty"`
	Cluster       string    `json:"cluster,omitempty"`
	Configuration string    `json:"configuration,omitempty"`
	Repo          string    `json:"repo,omitempty"`
	Ref           string    `json:"ref,omitempty"`
	Revision      string    `json:"revision,omitempty"`
	Reason        string    `json:"reason,omitempty"`
	Level         string    `json:"level"`
	Message       string    `json:"message"`
}

// RecorderOptions configure a Recorder.
type RecorderOptions struct {
	// Logger receives the recorder's warnings; nil discards them.
	Logger *slog.Logger
	// MaxEvents bounds the timeline (oldest dropped first); 0 is 20,000.
	MaxEvents int
}

// Recorder turns what the simulator's parts report (ARM writes, pushes,
// agent events, policy deployments, the presenter's controls) into a
// timeline and the delays measured on it (spans). It is what the web view
// and the HTML report draw.
type Recorder struct {
	log       *slog.Logger
	maxEvents int

	mu     sync.Mutex
	seq    int64
	events []Event
	spans  spanBook
	subs   map[*subscriber]struct{}
	// announced are the offline spans whose start is on the timeline.
	announced map[string]bool
	// lastHeartbeat and tracked answer, for a cluster, when it last
	// heartbeat and which configurations follow which repo: set by
	// Attach from the ARM server.
	lastHeartbeat func(clusterID string) time.Time
	tracked       func() []arm.ClusterOverview
}

// NewRecorder returns an empty Recorder.
func NewRecorder(o RecorderOptions) *Recorder {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxEvents <= 0 {
		o.MaxEvents = 20000
	}
	return &Recorder{
		log: o.Logger.With("component", "ui"), maxEvents: o.MaxEvents,
		spans: newSpanBook(), subs: map[*subscriber]struct{}{}, announced: map[string]bool{},
		lastHeartbeat: func(string) time.Time { return time.Time{} },
		tracked:       func() []arm.ClusterOverview { return nil },
	}
}

// Attach subscribes the recorder to a simulator's ARM server, git server,
// Azure Policy and agents. Call it before the simulator starts to see
// everything from the first event; the returned function detaches what
// can be detached (the git subscription).
func (r *Recorder) Attach(sm *sim.Sim) (detach func()) {
	a := sm.ARM()
	r.mu.Lock()
	r.lastHeartbeat = a.LastHeartbeat
	r.tracked = a.Overview
	r.mu.Unlock()
	a.Watch(r.armChange)
	a.WatchNotices(r.armNotice)
	sm.WatchAgents(r.agentEvent)
	cancelPolicy := sm.Policy().Subscribe(r.policyEvent)
	pushes, cancelGit := sm.Git().Subscribe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for p := range pushes {
			r.push(p)
		}
	}()
	return func() {
		cancelPolicy()
		cancelGit()
		<-done
	}
}

// Events returns the timeline events with a sequence number above after.
func (r *Recorder) Events(after int64) []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	i := len(r.events)
	for i > 0 && r.events[i-1].Seq > after {
		i--
	}
	return append([]Event(nil), r.events[i:]...)
}

// Spans returns every span, in the order they began.
func (r *Recorder) Spans() []Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.spans.all()
}

// Add records an event (Seq is assigned; Level defaults to info) and
// sends it to subscribers.
func (r *Recorder) Add(e Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.addLocked(e)
}

func (r *Recorder) addLocked(e Event) {
	r.seq++
	e.Seq = r.seq
	if e.Level == "" {
		e.Level = LevelInfo
	}
	if len(r.events) >= r.maxEvents {
		drop := len(r.events) - r.maxEvents + 1
		r.events = append(r.events[:0], r.events[drop:]...)
	}
	r.events = append(r.events, e)
	r.publishLocked(msgTimeline, e, e.Seq)
}

// armChange records writes to clusters, configurations and policy.
func (r *Recorder) armChange(ch arm.ResourceChange) {
	id := parseID(ch.ID)
	r.mu.Lock()
	defer r.mu.Unlock()
	verb := writeVerb(ch)
	switch {
	case id.config != "":
		r.addLocked(Event{Time: ch.Time, Kind: KindConfig, Action: verb, Cluster: id.cluster, Configuration: id.config,
			Message: fmt.Sprintf("configuration %s %s on %s", id.config, verb, id.clusterName)})
		if verb == "deleted" {
			r.spans.configGone(id.cluster, id.config, ch.Time)
		} else {
			r.spans.configWritten(id.cluster, id.config, ch.Time)
		}
	case id.cluster != "" && id.rest == "":
		r.addLocked(Event{Time: ch.Time, Kind: KindCluster, Action: verb, Cluster: id.cluster,
			Message: fmt.Sprintf("connected cluster %s %s", id.clusterName, verb)})
	case id.typ == "policyassignments":
		action := map[string]string{"created": "assigned", "changed": "assignment changed", "deleted": "unassigned"}[verb]
		r.addLocked(Event{Time: ch.Time, Kind: KindPolicy, Action: action, Message: fmt.Sprintf("policy assignment %s %s", id.name, verb)})
	case id.typ == "remediations":
		r.addLocked(Event{Time: ch.Time, Kind: KindPolicy, Action: "remediation " + verb, Message: fmt.Sprintf("remediation %s %s", id.name, verb)})
	}
}

// writeVerb tells what a write did: ARM answers a PUT that created with 201.
func writeVerb(ch arm.ResourceChange) string {
	switch {
	case ch.Method == http.MethodDelete:
		return "deleted"
	case ch.Method == http.MethodPut && ch.Status == http.StatusCreated:
		return "created"
	}
	return "changed"
}

// armNotice records the 48-hour purge of protected settings.
func (r *Recorder) armNotice(n arm.Notice) {
	if n.Kind != arm.NoticeProtectedSettingsPurged {
		return
	}
	id := parseID(n.ID)
	e := Event{Time: n.Time, Kind: KindConfig, Action: "purged", Cluster: id.cluster, Configuration: id.config,
		Message: fmt.Sprintf("Azure deleted the protected settings of %s on %s, 48h after they were written", id.config, id.clusterName)}
	if !n.Fetched {
		e.Level = LevelError
		e.Message += ", before the agent fetched them: the configuration fails"
	}
	r.Add(e)
}

// push records a ref update and opens a delivery span for every
// configuration that follows the pushed branch.
func (r *Recorder) push(p gitserver.PushEvent) {
	at, err := time.Parse(time.RFC3339Nano, p.Time)
	if err != nil {
		r.log.Warn("push event with an unreadable time", "repo", p.Repo, "time", p.Time, "err", err)
		return
	}
	deleted := strings.Trim(p.New, "0") == ""
	e := Event{Time: at, Kind: KindPush, Action: "pushed", Repo: p.Repo, Ref: p.Ref, Revision: p.New,
		Message: fmt.Sprintf("%s %s → %s", p.Repo, shortRef(p.Ref), short(p.New))}
	if deleted {
		e.Action, e.Revision, e.Message = "deleted", "", fmt.Sprintf("%s %s deleted", p.Repo, shortRef(p.Ref))
	}
	if p.Who != "" {
		e.Message += " by " + p.Who
	}
	var followers []follower
	if !deleted && strings.HasPrefix(p.Ref, "refs/heads/") {
		r.mu.Lock()
		tracked := r.tracked
		r.mu.Unlock()
		followers = followersOf(tracked(), p.Repo, strings.TrimPrefix(p.Ref, "refs/heads/"))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.addLocked(e)
	if !deleted {
		r.spans.pushed(p.New, at, followers)
		r.flushSpansLocked()
	}
}

// agentEvent records an agent event and closes the spans it ends.
func (r *Recorder) agentEvent(clusterID string, ev agent.Event) {
	id := parseID(clusterID)
	e := Event{Time: ev.Time, Kind: KindAgent, Action: ev.Reason, Reason: ev.Reason, Cluster: id.cluster,
		Configuration: ev.Configuration, Revision: ev.Revision, Level: agentLevel(ev.Reason), Message: ev.Message}
	var lastHB time.Time
	if ev.Reason == "ARMUnreachable" {
		lastHB = r.lastHeartbeatOf(clusterID)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch ev.Reason {
	case "ARMUnreachable":
		e.Kind, e.Action = KindCluster, "heartbeat lost"
		r.spans.unreachable(id.cluster, lastHB, ev.Time, true)
	case "ARMReachable":
		e.Kind, e.Action = KindCluster, "heartbeat regained"
		r.spans.reachable(id.cluster, ev.Time)
	case "Installed":
		r.spans.installed(id.cluster, ev.Configuration, ev.Time)
	case "Synced":
		r.spans.synced(id.cluster, ev.Configuration, ev.Revision, ev.Time)
	}
	r.addLocked(e)
	r.flushSpansLocked()
}

// lastHeartbeatOf asks ARM, outside the recorder's lock (ARM takes its
// own), when a cluster last heartbeat.
func (r *Recorder) lastHeartbeatOf(clusterID string) time.Time {
	r.mu.Lock()
	lh := r.lastHeartbeat
	r.mu.Unlock()
	return lh(clusterID)
}

// LinksChanged records that a cluster's links were cut or restored (a
// presenter's control): a cut starts the cluster's outage at once, not at
// its agent's next failed call, which may come only after a jump.
func (r *Recorder) LinksChanged(clusterID string, offline bool, t time.Time) {
	key := parseID(clusterID).cluster
	var lastHB time.Time
	if offline {
		lastHB = r.lastHeartbeatOf(clusterID)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if offline {
		r.spans.unreachable(key, lastHB, t, false)
	} else {
		r.spans.linksRestored(key, t)
	}
	r.flushSpansLocked()
}

// agentLevel mirrors the agent's own logging: failures are warnings.
func agentLevel(reason string) string {
	if agent.IsFailure(reason) {
		return LevelWarn
	}
	return LevelInfo
}

// policyEvent records deployments, remediations and assignments taking
// effect; compliance results are left to the grid (a fleet makes one per
// cluster per cycle).
func (r *Recorder) policyEvent(ev policy.Event) {
	id := parseID(ev.ResourceID)
	assignment := parseID(ev.AssignmentID).name
	e := Event{Time: ev.Time, Kind: KindPolicy, Cluster: id.cluster}
	switch ev.Kind {
	case policy.EventDeployment:
		e.Action = "deployed"
		e.Message = fmt.Sprintf("policy %s deployed %s", assignment, id.describe())
		if ev.Error != "" {
			e.Action, e.Level = "deployment failed", LevelError
			e.Message = fmt.Sprintf("policy %s could not deploy %s: %s", assignment, id.describe(), ev.Error)
		}
	case policy.EventRemediation:
		e.Action = "remediation " + strings.ToLower(ev.State)
		e.Message = fmt.Sprintf("remediation %s: %s", id.name, ev.State)
		if ev.Error != "" {
			e.Level, e.Message = LevelError, e.Message+": "+ev.Error
		}
	case policy.EventAssignmentEffective:
		e.Action = "effective"
		e.Message = fmt.Sprintf("policy assignment %s in effect", assignment)
	default:
		return
	}
	r.Add(e)
}

// Tick lets time-based spans catch up with the clock: an offline span
// begins 15 minutes after a cluster's last heartbeat even if nothing
// happens then. The web view calls it on every refresh, and a report
// before it is written.
func (r *Recorder) Tick(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.spans.tick(now)
	r.flushSpansLocked()
}

// flushSpansLocked sends the spans that changed since the last flush.
func (r *Recorder) flushSpansLocked() {
	changed := r.spans.takeChanged()
	if len(changed) == 0 {
		return
	}
	for _, s := range changed {
		if s.Kind == SpanOffline && !r.announced[s.ID] {
			r.announced[s.ID] = true
			r.addLocked(Event{Time: s.Start, Kind: KindCluster, Action: "offline", Cluster: s.Cluster, Level: LevelWarn,
				Message: fmt.Sprintf("Azure shows %s Offline: no heartbeat for %v", clusterName(s.Cluster), arm.OfflineAfter)})
		}
	}
	r.publishLocked(msgSpans, map[string]any{"spans": changed}, 0)
}

// short is the 7-character form of a revision.
func short(rev string) string {
	if len(rev) > 7 {
		return rev[:7]
	}
	return rev
}

func shortRef(ref string) string {
	for _, p := range []string{"refs/heads/", "refs/tags/"} {
		if s, ok := strings.CutPrefix(ref, p); ok {
			return s
		}
	}
	return ref
}

// clusterName is the name part of a cluster key "rg/name".
func clusterName(key string) string {
	_, name, _ := strings.Cut(key, "/")
	return name
}
