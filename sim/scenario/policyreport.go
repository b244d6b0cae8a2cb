package scenario

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gitopsim/gitopsim/sim/policy"
)

// PolicyMilestones are the delays of one policy assignment that a
// presenter points at: from the assignment to its taking effect, to the
// deployments, to the last cluster turning Compliant. Times are virtual
// offsets from the scenario's start; empty when it did not happen.
type PolicyMilestones struct {
	Assignment string `json:"assignment"`
	Scope      string `json:"scope"`
	Assigned   string `json:"assigned"`
	Effective  string `json:"effective,omitempty"`
	// Deployments are the DeployIfNotExists runs, per remediation task
	// and automatic ones, in the order they started.
	Deployments []DeploymentMilestones `json:"deployments,omitempty"`
	// Evaluated clusters and how many of them are Compliant at the end.
	Evaluated      int    `json:"evaluated"`
	Compliant      int    `json:"compliant"`
	FirstCompliant string `json:"firstCompliant,omitempty"`
	// AllCompliant is when the last evaluated cluster turned Compliant,
	// if all of them are at the end.
	AllCompliant string `json:"allCompliant,omitempty"`
}

// DeploymentMilestones are the deployments of one remediation task, or
// the automatic ones after cluster writes.
type DeploymentMilestones struct {
	// By is "remediation <name>" or "automatic".
	By     string `json:"by"`
	First  string `json:"first"`
	Last   string `json:"last"`
	Count  int    `json:"count"`
	Failed int    `json:"failed,omitempty"`
}

// milestones derives an assignment's milestones from the provider's
// events.
func (r *run) milestones(a *assignmentRef, events []policy.Event) PolicyMilestones {
	m := PolicyMilestones{Assignment: a.name, Scope: "subscription", Assigned: r.offset(a.at)}
	if _, rg := policy.ScopeParts(a.scope); rg != "" {
		m.Scope = "resource group " + rg
	}
	var firstOK time.Time
	final := map[string]string{}
	turned := map[string]time.Time{} // when each resource last turned Compliant
	waves := map[string]int{}        // index in m.Deployments
	for _, e := range events {
		if !strings.EqualFold(e.AssignmentID, a.id) || e.Time.Before(a.at) {
			continue
		}
		switch e.Kind {
		case policy.EventAssignmentEffective:
			if m.Effective == "" {
				m.Effective = r.offset(e.Time)
			}
		case policy.EventDeployment:
			by := "automatic"
			if e.Remediation != "" {
				// The event names the task by id.
				by = "remediation " + e.Remediation[strings.LastIndex(e.Remediation, "/")+1:]
			}
			i, ok := waves[by]
			if !ok {
				i = len(m.Deployments)
				waves[by] = i
				m.Deployments = append(m.Deployments, DeploymentMilestones{By: by, First: r.offset(e.Time)})
			}
			w := &m.Deployments[i]
			w.Last = r.offset(e.Time)
			w.Count++
			if e.Error != "" {
				w.Failed++
			}
		case policy.EventCompliance:
			k := strings.ToLower(e.ResourceID)
			final[k] = e.State
			if e.State == "Compliant" {
				turned[k] = e.Time
				if firstOK.IsZero() {
					firstOK = e.Time
				}
			}
		}
	}
	if !firstOK.IsZero() {
		m.FirstCompliant = r.offset(firstOK)
	}
	var last time.Time
	for k, st := range final {
		m.Evaluated++
		if st == "Compliant" {
			m.Compliant++
			if turned[k].After(last) {
				last = turned[k]
			}
		}
	}
	if m.Evaluated > 0 && m.Compliant == m.Evaluated {
		m.AllCompliant = r.offset(last)
	}
	return m
}

// policyReport adds each assignment's milestones to the result and prints
// them under the timeline.
func (r *run) policyReport() {
	if len(r.assignOrder) == 0 || r.env.sim.Policy() == nil {
		return
	}
	events := r.env.sim.Policy().Events()
	for _, name := range r.assignOrder {
		a := r.assignments[name]
		m := r.milestones(a, events)
		r.res.Policy = append(r.res.Policy, m)
		r.printf("%s", m.text())
	}
}

// text is the milestones as timeline lines in time order, each with its
// delay since the assignment.
func (m PolicyMilestones) text() string {
	type line struct {
		at          time.Duration
		when, what  string
		note, delay string
	}
	assigned, _ := parseOffset(m.Assigned)
	var lines []line
	add := func(at, what, note string) {
		d, err := parseOffset(at)
		if at == "" || err != nil {
			return
		}
		l := line{at: d, when: at, what: what, note: note}
		if d > assigned {
			l.delay = "+" + fmtDur(d-assigned)
		}
		lines = append(lines, l)
	}
	add(m.Assigned, "assigned", "")
	add(m.Effective, "in effect", "")
	for _, w := range m.Deployments {
		failed := ""
		if w.Failed > 0 {
			failed = fmt.Sprintf(", %d failed", w.Failed)
		}
		if w.Count == 1 {
			add(w.First, "deployment", w.By+failed)
			continue
		}
		add(w.First, "first deployment", w.By)
		add(w.Last, "last deployment", fmt.Sprintf("%s (%s%s)", w.By, plural(w.Count, "deployment"), failed))
	}
	if m.AllCompliant != m.FirstCompliant {
		add(m.FirstCompliant, "first cluster Compliant", "")
	}
	add(m.AllCompliant, "last cluster Compliant", fmt.Sprintf("(all %d)", m.Compliant))
	slices.SortStableFunc(lines, func(a, b line) int { return cmp.Compare(a.at, b.at) })
	var b strings.Builder
	fmt.Fprintf(&b, "  policy %s on the %s: %s evaluated, %d Compliant at the end\n", m.Assignment, m.Scope, plural(m.Evaluated, "cluster"), m.Compliant)
	for _, l := range lines {
		fmt.Fprintf(&b, "%s\n", strings.TrimRight(fmt.Sprintf("    %-12s %-24s %-8s %s", l.when, l.what, l.delay, l.note), " "))
	}
	return b.String()
}

// parseOffset reads FormatOffset's output back.
func parseOffset(s string) (time.Duration, error) {
	var days time.Duration
	if i := strings.IndexByte(s, 'd'); i >= 0 {
		var n int
		if _, err := fmt.Sscanf(s[:i], "%d", &n); err != nil {
			return 0, err
		}
		days, s = time.Duration(n)*24*time.Hour, s[i+1:]
	}
	var h, m int
	var sec float64
	if _, err := fmt.Sscanf(s, "%d:%d:%f", &h, &m, &sec); err != nil {
		return 0, err
	}
	return days + time.Duration(h)*time.Hour + time.Duration(m)*time.Minute + time.Duration(sec*float64(time.Second)), nil
}

// plural is "1 cluster", "2 clusters".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
