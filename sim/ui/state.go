package ui

import (
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gitopsim/gitopsim/sim"
	"github.com/gitopsim/gitopsim/sim/agent"
	"github.com/gitopsim/gitopsim/sim/clock"
)

// ClusterRow is one connected cluster in the view.
type ClusterRow struct {
	Key            string      `json:"key"`
	Name           string      `json:"name"`
	ResourceGroup  string      `json:"resourceGroup"`
	ID             string      `json:"id"`
	Connectivity   string      `json:"connectivity"`
	LastHeartbeat  *time.Time  `json:"lastHeartbeat,omitempty"`
	LinksOffline   bool        `json:"linksOffline"`
	Configurations []ConfigRow `json:"configurations"`
}

// ConfigRow is one configuration of a cluster in the view.
type ConfigRow struct {
	Name          string `json:"name"`
	State         string `json:"state"`
	Level         string `json:"level"`
	Message       string `json:"message"`
	Revision      string `json:"revision,omitempty"`
	RepositoryURL string `json:"repositoryUrl"`
	Scope         string `json:"scope"`
	Namespace     string `json:"namespace"`
}

// RepoRow is one repository of the git server.
type RepoRow struct {
	Name     string            `json:"name"`
	Down     bool              `json:"down"`
	Branches map[string]string `json:"branches"`
}

// ClockView is the clock as the page shows it.
type ClockView struct {
	Now          time.Time `json:"now"`
	Scale        float64   `json:"scale"`
	Paused       bool      `json:"paused"`
	Controllable bool      `json:"controllable"`
	Reason       string    `json:"reason,omitempty"`
	// Ran is how many timers a jump ran.
	Ran *int `json:"ran,omitempty"`
}

// State is everything the page draws (GET /api/state), and one report
// of an HTML report.
type State struct {
	Mode           string        `json:"mode"`
	Clock          ClockView     `json:"clock"`
	Clusters       []ClusterRow  `json:"clusters"`
	Repos          []RepoRow     `json:"repos"`
	GitDown        bool          `json:"gitDown"`
	ResourceGroups []string      `json:"resourceGroups"`
	Events         []Event       `json:"events"`
	Spans          []Span        `json:"spans"`
	Scenario       *ScenarioInfo `json:"scenario"`
	// Details are each cluster's objects and last events, by key: in
	// reports, which cannot ask for them.
	Details map[string]ClusterDetail `json:"details,omitempty"`
}

// Object is one manifest of a configuration's last sync.
type Object struct {
	Configuration string `json:"configuration"`
	ID            string `json:"id"`
	Source        string `json:"source"`
	Status        string `json:"status"`
	Error         string `json:"error,omitempty"`
}

// ClusterDetail is what GET /api/clusters/{rg}/{name} adds to a row.
type ClusterDetail struct {
	Objects []Object      `json:"objects"`
	Events  []agent.Event `json:"events"`
}

// clusterDetail reads a cluster's objects and its agent's last events.
func clusterDetail(c *sim.Connected, maxEvents int) ClusterDetail {
	d := ClusterDetail{Objects: []Object{}}
	for _, cs := range c.Agent.Configurations() {
		for _, o := range cs.Objects {
			d.Objects = append(d.Objects, Object{cs.Configuration, o.ID, o.Source, o.Status, o.Error})
		}
	}
	d.Events = c.Agent.Events()
	if len(d.Events) > maxEvents {
		d.Events = d.Events[len(d.Events)-maxEvents:]
	}
	return d
}

// clusterRows reads every connected cluster: connectivity and compliance
// from ARM (one pass), links and synced revisions from the agents.
func clusterRows(sm *sim.Sim) []ClusterRow {
	agents := map[string]*sim.Connected{}
	for _, c := range sm.Connected() {
		agents[strings.ToLower(c.ID)] = c
	}
	overview := sm.ARM().Overview()
	rows := make([]ClusterRow, 0, len(overview))
	for _, cl := range overview {
		row := ClusterRow{Key: clusterKey(cl.ResourceGroup, cl.Name), Name: cl.Name, ResourceGroup: cl.ResourceGroup, ID: cl.ID, Connectivity: cl.Connectivity, Configurations: []ConfigRow{}}
		if !cl.LastHeartbeat.IsZero() {
			hb := cl.LastHeartbeat.UTC()
			row.LastHeartbeat = &hb
		}
		var synced map[string]string
		if c := agents[strings.ToLower(cl.ID)]; c != nil {
			row.LinksOffline = c.Agent.ARMLink().Offline() || c.Agent.GitLink().Offline()
			synced = c.Agent.SyncedRevisions()
		}
		for _, cfg := range cl.Configs {
			cr := ConfigRow{Name: cfg.Name, State: cfg.Compliance.State, Level: cfg.Compliance.Level, Message: operatorMessage(cfg.Compliance.Message),
				RepositoryURL: redactURL(cfg.RepositoryURL), Scope: cfg.Scope, Namespace: cfg.Namespace}
			cr.Revision = synced[cfg.Name]
			row.Configurations = append(row.Configurations, cr)
		}
		rows = append(rows, row)
	}
	return rows
}

// redactURL hides a password written into a repository URL
// (https://user:secret@host/…): the view and its reports are shown and
// attached where the secret must not go.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	if _, has := u.User.Password(); !has {
		return raw
	}
	return u.Redacted()
}

// operatorMessage unwraps the service's JSON-in-a-string message to what
// a person reads; anything else is shown as it is.
func operatorMessage(m string) string {
	var parts struct {
		OperatorMessage *string
		ClusterState    *string
	}
	if json.Unmarshal([]byte(m), &parts) != nil {
		return m
	}
	var out []string
	for _, p := range []*string{parts.OperatorMessage, parts.ClusterState} {
		if p != nil && *p != "" {
			out = append(out, *p)
		}
	}
	return strings.Join(out, " · ")
}

// repoRows lists the git server's repositories and branch heads.
func repoRows(sm *sim.Sim) ([]RepoRow, bool) {
	g := sm.Git()
	serverDown, downRepos := g.Down()
	rows := []RepoRow{}
	for _, name := range g.Repos() {
		row := RepoRow{Name: name, Down: slices.Contains(downRepos, name), Branches: map[string]string{}}
		refs, err := g.Refs(name)
		if err == nil {
			for ref, h := range refs {
				if b, ok := strings.CutPrefix(ref, "refs/heads/"); ok {
					row.Branches[b] = h.String()
				}
			}
		}
		rows = append(rows, row)
	}
	slices.SortFunc(rows, func(a, b RepoRow) int { return strings.Compare(a.Name, b.Name) })
	return rows, serverDown
}

// resourceGroups lists the groups of rows, sorted.
func resourceGroups(rows []ClusterRow) []string {
	seen := map[string]bool{}
	out := []string{}
	for _, r := range rows {
		if !seen[r.ResourceGroup] {
			seen[r.ResourceGroup] = true
			out = append(out, r.ResourceGroup)
		}
	}
	slices.Sort(out)
	return out
}

// clockView describes a clock; a clock that is not a Controller is shown
// with why it cannot be steered.
func clockView(c clock.Clock, why string) ClockView {
	if ctl, ok := c.(clock.Controller); ok && why == "" {
		st := ctl.State()
		return ClockView{Now: st.Now.UTC(), Scale: st.Scale, Paused: st.Paused, Controllable: true}
	}
	if why == "" {
		why = "this clock cannot be controlled"
	}
	return ClockView{Now: c.Now().UTC(), Scale: 1, Controllable: false, Reason: why}
}

// Snapshot is the whole state of a simulator as the page draws it, with
// the recorder's timeline; clockReason, when set, says why the clock
// cannot be controlled.
func (r *Recorder) Snapshot(sm *sim.Sim, mode, clockReason string) State {
	r.Tick(sm.Clock().Now())
	rows := clusterRows(sm)
	repos, gitDown := repoRows(sm)
	st := State{
		Mode: mode, Clock: clockView(sm.Clock(), clockReason), Clusters: rows, Repos: repos, GitDown: gitDown,
		ResourceGroups: resourceGroups(rows), Events: r.Events(0), Spans: r.Spans(),
	}
	if mode == "report" {
		// A report keeps fewer events per cluster than the live view
		// serves: a thousand clusters' worth must stay one file.
		st.Details = map[string]ClusterDetail{}
		for _, c := range sm.Connected() {
			st.Details[clusterKey(c.ResourceGroup, c.Name)] = clusterDetail(c, 100)
		}
	}
	return st
}
