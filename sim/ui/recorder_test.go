package ui

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gitopsim/gitopsim/sim/agent"
	"github.com/gitopsim/gitopsim/sim/arm"
	"github.com/gitopsim/gitopsim/sim/gitserver"
	"github.com/gitopsim/gitopsim/sim/policy"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

const (
	sub       = "/subscriptions/00000000-0000-0000-0000-000000000001"
	clusterID = sub + "/resourceGroups/stores/providers/Microsoft.Kubernetes/connectedClusters/edge"
	configID  = clusterID + "/providers/Microsoft.KubernetesConfiguration/sourceControlConfigurations/baseline"
)

// newTestRecorder answers the recorder's two questions to ARM itself.
func newTestRecorder(lastHB *time.Time) *Recorder {
	r := NewRecorder(RecorderOptions{})
	r.lastHeartbeat = func(string) time.Time { return *lastHB }
	r.tracked = func() []arm.ClusterOverview {
		return []arm.ClusterOverview{{ID: clusterID, Name: "edge", ResourceGroup: "stores", Configs: []arm.ConfigOverview{
			{Name: "baseline", RepositoryURL: "ssh://git@127.0.0.1:2222/fleet.git", OperatorParams: "--git-readonly --git-branch=main"},
			{Name: "other", RepositoryURL: "https://127.0.0.1/other.git"},
		}}}
	}
	return r
}

func at(d time.Duration) time.Time { return t0.Add(d) }

// The presenter's story: the cluster goes dark, a change is pushed, the
// cluster comes back 1h52m later and syncs. The timeline has the
// offline span Azure showed and a late delivery span with both delays.
func TestRecorderDeliveryThroughOutage(t *testing.T) {
	lastHB := at(0)
	r := newTestRecorder(&lastHB)
	r.armChange(arm.ResourceChange{ID: configID, Method: http.MethodPut, Status: http.StatusCreated, Time: at(0)})
	r.agentEvent(clusterID, agent.Event{Time: at(90 * time.Second), Configuration: "baseline", Reason: "Installed"})
	r.agentEvent(clusterID, agent.Event{Time: at(2 * time.Minute), Reason: "ARMUnreachable"})
	rev := strings.Repeat("ab", 20)
	r.push(gitserver.PushEvent{Repo: "fleet", Ref: "refs/heads/main", Old: strings.Repeat("0", 40), New: rev, Time: at(5 * time.Minute).Format(time.RFC3339Nano)})
	r.push(gitserver.PushEvent{Repo: "fleet", Ref: "refs/heads/other-branch", New: strings.Repeat("cd", 20), Time: at(6 * time.Minute).Format(time.RFC3339Nano)})
	r.Tick(at(20 * time.Minute))
	open := r.Spans()
	if got := kinds(open); got != "install delivery offline" {
		t.Fatalf("spans while offline: %s", got)
	}
	if open[2].End != nil || !open[2].Start.Equal(at(15*time.Minute)) {
		t.Errorf("offline span %+v: want open from 15m after the last heartbeat", open[2])
	}
	r.agentEvent(clusterID, agent.Event{Time: at(115 * time.Minute), Reason: "ARMReachable"})
	r.agentEvent(clusterID, agent.Event{Time: at(117 * time.Minute), Configuration: "baseline", Reason: "Synced", Revision: rev})

	spans := r.Spans()
	byKind := map[string]Span{}
	for _, s := range spans {
		byKind[s.Kind] = s
	}
	if s := byKind[SpanInstall]; s.Duration != "1m30s" || s.Cluster != "stores/edge" {
		t.Errorf("install span %+v", s)
	}
	if s := byKind[SpanOffline]; s.Duration != "1h40m" {
		t.Errorf("offline span %+v, want 15m → 1h55m", s)
	}
	d := byKind[SpanDelivery]
	if d.Duration != "1h52m" || !d.Late || d.Revision != rev {
		t.Errorf("delivery span %+v, want 1h52m, late", d)
	}
	if want := "baseline reached edge 1h52m after the push of ababab"; !strings.HasPrefix(d.Message, want) || !strings.Contains(d.Message, "could not reach Azure for 1h50m of it") {
		t.Errorf("delivery message %q", d.Message)
	}
	var actions []string
	for _, e := range r.Events(0) {
		actions = append(actions, e.Kind+":"+e.Action)
	}
	want := "config:created agent:Installed cluster:heartbeat lost push:pushed push:pushed cluster:offline cluster:heartbeat regained agent:Synced"
	if got := strings.Join(actions, " "); got != want {
		t.Errorf("events\n got %s\nwant %s", got, want)
	}
}

func kinds(spans []Span) string {
	var k []string
	for _, s := range spans {
		k = append(k, s.Kind)
	}
	return strings.Join(k, " ")
}

// A sync covers every push up to its revision, not later ones; a
// short outage (under 15 minutes) leaves no offline span.
func TestRecorderSyncCoversEarlierPushes(t *testing.T) {
	lastHB := at(0)
	r := newTestRecorder(&lastHB)
	revs := []string{strings.Repeat("1", 40), strings.Repeat("2", 40), strings.Repeat("3", 40)}
	for i, rev := range revs {
		r.push(gitserver.PushEvent{Repo: "fleet", Ref: "refs/heads/main", New: rev, Time: at(time.Duration(i) * time.Minute).Format(time.RFC3339Nano)})
	}
	r.agentEvent(clusterID, agent.Event{Time: at(3 * time.Minute), Reason: "ARMUnreachable"})
	r.agentEvent(clusterID, agent.Event{Time: at(10 * time.Minute), Reason: "ARMReachable"})
	r.agentEvent(clusterID, agent.Event{Time: at(11 * time.Minute), Configuration: "baseline", Reason: "Synced", Revision: revs[1]})
	var closed, open int
	for _, s := range r.Spans() {
		switch {
		case s.Kind == SpanOffline:
			t.Errorf("a 7-minute outage made an offline span: %+v", s)
		case s.End == nil:
			open++
			if s.Revision != revs[2] {
				t.Errorf("open span for %s; only the third push is not synced", short(s.Revision))
			}
		default:
			closed++
			if !s.Late {
				t.Errorf("%s: delivered across an outage but not late", s.ID)
			}
		}
	}
	if closed != 2 || open != 1 {
		t.Errorf("closed %d, open %d; want 2 and 1", closed, open)
	}
}

// Subscribers get every event and span in order; a subscriber that
// stops reading is dropped, not waited for.
func TestRecorderStreamsAndDropsSlowSubscribers(t *testing.T) {
	lastHB := at(0)
	r := newTestRecorder(&lastHB)
	sub, cancel := r.subscribe()
	defer cancel()
	r.Add(Event{Time: at(0), Kind: KindClock, Message: "one"})
	m := <-sub.ch
	if m.event != msgTimeline || m.id != "1" || !bytes.Contains(m.data, []byte(`"one"`)) {
		t.Fatalf("first message %s %s %s", m.event, m.id, m.data)
	}
	for i := range subBuffer + 1 {
		r.Add(Event{Time: at(time.Duration(i)), Kind: KindClock, Message: "flood"})
	}
	select {
	case <-sub.gone:
	default:
		t.Fatal("a subscriber that fell a whole buffer behind was not dropped")
	}
	if r.hasSubscribers() {
		t.Error("dropped subscriber still counted")
	}
}

func TestRecorderEventLogBounded(t *testing.T) {
	r := NewRecorder(RecorderOptions{MaxEvents: 10})
	for i := range 25 {
		r.Add(Event{Time: at(time.Duration(i)), Kind: KindClock, Message: fmt.Sprint(i)})
	}
	evs := r.Events(0)
	if len(evs) != 10 || evs[0].Seq != 16 || evs[9].Seq != 25 {
		t.Fatalf("kept seq %d..%d (%d)", evs[0].Seq, evs[len(evs)-1].Seq, len(evs))
	}
	if got := r.Events(20); len(got) != 5 || got[0].Seq != 21 {
		t.Errorf("Events(20) = %d events from %d", len(got), got[0].Seq)
	}
}

func TestPolicyAndPurgeEvents(t *testing.T) {
	r := NewRecorder(RecorderOptions{})
	assignment := sub + "/providers/Microsoft.Authorization/policyAssignments/baseline"
	r.armChange(arm.ResourceChange{ID: assignment, Method: http.MethodPut, Status: http.StatusCreated, Time: at(0)})
	r.policyEvent(policy.Event{Time: at(10 * time.Minute), Kind: policy.EventDeployment, AssignmentID: assignment, ResourceID: configID})
	r.policyEvent(policy.Event{Time: at(11 * time.Minute), Kind: policy.EventCompliance, AssignmentID: assignment, ResourceID: clusterID, State: "Compliant"})
	r.armNotice(arm.Notice{ID: configID, Kind: arm.NoticeProtectedSettingsPurged, Time: at(48 * time.Hour)})
	evs := r.Events(0)
	if len(evs) != 3 {
		t.Fatalf("%d events (compliance results are left out): %+v", len(evs), evs)
	}
	if evs[1].Message != "policy baseline deployed configuration baseline on edge" || evs[1].Cluster != "stores/edge" {
		t.Errorf("deployment event %+v", evs[1])
	}
	if evs[2].Action != "purged" || evs[2].Level != LevelError {
		t.Errorf("purge before fetch %+v: want an error", evs[2])
	}
}

// parseID finds the cluster and configuration of any id shape ARM
// accepts: any case, with or without a leading slash, nested below.
func TestParseIDGenerated(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rnd := rand.New(rand.NewPCG(seed, 2))
	word := func() string {
		const letters = "abcdefghijklmnopqrstuvwxyzABCXYZ0123456789-_."
		b := make([]byte, 1+rnd.IntN(12))
		for i := range b {
			b[i] = letters[rnd.IntN(len(letters))]
		}
		return string(b)
	}
	flip := func(s string) string {
		b := []byte(s)
		for i := range b {
			if rnd.IntN(2) == 0 {
				b[i] = bytes.ToUpper(b[i : i+1])[0]
			}
		}
		return string(b)
	}
	for range 2000 {
		rg, name, cfg := word(), word(), word()
		id := flip("/subscriptions/") + word() + flip("/resourceGroups/") + rg + flip("/providers/Microsoft.Kubernetes/connectedClusters/") + name
		withCfg := rnd.IntN(2) == 0
		if withCfg {
			id += flip("/providers/Microsoft.KubernetesConfiguration/sourceControlConfigurations/") + cfg
		}
		if rnd.IntN(2) == 0 {
			id = strings.TrimPrefix(id, "/")
		}
		got := parseID(id)
		if got.cluster != strings.ToLower(rg+"/"+name) || got.clusterName != name {
			t.Fatalf("seed %d: %s: cluster %q", seed, id, got.cluster)
		}
		if withCfg && got.config != cfg || !withCfg && (got.config != "" || got.rest != "") {
			t.Fatalf("seed %d: %s: config %q rest %q", seed, id, got.config, got.rest)
		}
	}
}

func TestRepoPathAndBranch(t *testing.T) {
	for url, want := range map[string]string{
		"ssh://git@127.0.0.1:2222/fleet.git": "fleet", "git@127.0.0.1:fleet": "fleet",
		"https://127.0.0.1:8443/org/fleet/": "org/fleet", "https://h/fleet.git/": "fleet",
		"git@h:team/demo.git": "team/demo",
	} {
		if got := repoPath(url); got != want {
			t.Errorf("repoPath(%q) = %q, want %q", url, got, want)
		}
	}
	for params, want := range map[string]string{
		"": "master", "--git-branch=main": "main", "--git-readonly --git-branch dev --sync-garbage-collection": "dev",
		"--no-such-flag": "master", // fluxd would not start
	} {
		if got := agent.GitBranch(params); got != want {
			t.Errorf("GitBranch(%q) = %q", params, got)
		}
	}
}

// The report is one file: script, style and data inline, nothing loaded
// from elsewhere, and text from the simulation cannot end the data
// element early.
func TestReportPageSelfContained(t *testing.T) {
	st := State{Clusters: []ClusterRow{}, Events: []Event{{Seq: 1, Kind: KindAgent, Message: `</script><script>alert(1)</script>`}}}
	page, err := ReportPage([]State{st}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(page), "</script>"); n != 2 {
		t.Errorf("%d </script> tags, want the script's and the data's", n)
	}
	if m := regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?(https?:|//|[a-z0-9_./-]+\.(js|css))`).FindString(string(page)); m != "" {
		t.Errorf("the report loads something: %s", m)
	}
	data := regexp.MustCompile(`(?s)<script type="application/json" id="gitopsim-data">(.*?)</script>`).FindSubmatch(page)
	if data == nil {
		t.Fatal("no data element")
	}
	var back struct {
		Mode    string  `json:"mode"`
		Reports []State `json:"reports"`
	}
	if err := json.Unmarshal(data[1], &back); err != nil {
		t.Fatal(err)
	}
	if back.Mode != "report" || back.Reports[0].Events[0].Message != st.Events[0].Message || back.Reports[0].Clock.Controllable {
		t.Errorf("data round trip: %+v", back)
	}
}

// A revision first pushed to another branch and then fast-forwarded to
// the followed one, and a rollback (an older revision pushed over a
// newer one), both close the spans they deliver.
func TestRecorderFastForwardAndRollback(t *testing.T) {
	lastHB := at(0)
	r := newTestRecorder(&lastHB)
	a, b := strings.Repeat("a", 40), strings.Repeat("b", 40)
	push := func(ref, rev string, when time.Duration) {
		r.push(gitserver.PushEvent{Repo: "fleet", Ref: ref, New: rev, Time: at(when).Format(time.RFC3339Nano)})
	}
	synced := func(rev string, when time.Duration) {
		r.agentEvent(clusterID, agent.Event{Time: at(when), Configuration: "baseline", Reason: "Synced", Revision: rev})
	}
	push("refs/heads/dev", a, time.Minute)
	push("refs/heads/main", a, 2*time.Minute) // fast-forward
	synced(a, 3*time.Minute)
	push("refs/heads/main", b, 4*time.Minute)
	push("refs/heads/main", a, 5*time.Minute) // rollback over b
	synced(a, 6*time.Minute)
	for _, s := range r.Spans() {
		if s.End == nil {
			t.Errorf("span %s still open", s.ID)
		}
	}
	if n := len(r.Spans()); n != 3 {
		t.Errorf("%d spans, want one per push to main (3)", n)
	}
}

// Links cut by the presenter start the outage at once, even when the
// agent only notices at the end of a jump; links cut and restored
// between two of its calls leave nothing.
func TestRecorderLinksCut(t *testing.T) {
	lastHB := at(0)
	r := newTestRecorder(&lastHB)
	r.LinksChanged(clusterID, true, at(time.Minute))
	r.LinksChanged(clusterID, false, at(3*time.Minute))
	r.Tick(at(time.Hour))
	if n := len(r.Spans()); n != 0 {
		t.Fatalf("a 2-minute cut left %d spans: %+v", n, r.Spans())
	}
	rev := strings.Repeat("c", 40)
	r.LinksChanged(clusterID, true, at(time.Hour))
	r.push(gitserver.PushEvent{Repo: "fleet", Ref: "refs/heads/main", New: rev, Time: at(time.Hour + time.Minute).Format(time.RFC3339Nano)})
	r.agentEvent(clusterID, agent.Event{Time: at(2 * time.Hour), Reason: "ARMUnreachable"}) // the heartbeat at the end of a jump
	r.LinksChanged(clusterID, false, at(2*time.Hour+time.Minute))
	r.agentEvent(clusterID, agent.Event{Time: at(2*time.Hour + 2*time.Minute), Reason: "ARMReachable"})
	r.agentEvent(clusterID, agent.Event{Time: at(2*time.Hour + 3*time.Minute), Configuration: "baseline", Reason: "Synced", Revision: rev})
	for _, s := range r.Spans() {
		if s.Kind == SpanDelivery && (!s.Late || !strings.Contains(s.Message, "could not reach Azure for 1h1m of it")) {
			t.Errorf("delivery %+v: want late by the 1h1m from the push to the reconnect", s)
		}
	}
}

// Ids spelled in another case are the same cluster.
func TestRecorderKeysIgnoreCase(t *testing.T) {
	lastHB := at(0)
	r := newTestRecorder(&lastHB)
	r.armChange(arm.ResourceChange{ID: strings.ToUpper(configID), Method: http.MethodPut, Status: http.StatusCreated, Time: at(0)})
	r.agentEvent(clusterID, agent.Event{Time: at(time.Minute), Configuration: "BASELINE", Reason: "Installed"})
	r.agentEvent(clusterID, agent.Event{Time: at(time.Minute), Configuration: "baseline", Reason: "Installed"})
	if spans := r.Spans(); len(spans) != 1 || spans[0].Cluster != "stores/edge" {
		t.Errorf("spans %+v, want the install on stores/edge", spans)
	}
}

func TestRedactURL(t *testing.T) {
	for raw, want := range map[string]string{
		"https://bot:s3cret@127.0.0.1/team/app.git": "https://bot:xxxxx@127.0.0.1/team/app.git",
		"https://bot@127.0.0.1/team/app.git":        "https://bot@127.0.0.1/team/app.git",
		"git@127.0.0.1:team/app.git":                "git@127.0.0.1:team/app.git",
		"ssh://git@127.0.0.1:2222/app.git":          "ssh://git@127.0.0.1:2222/app.git",
	} {
		if got := redactURL(raw); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", raw, got, want)
		}
	}
}
