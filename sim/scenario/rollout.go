package scenario

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Rollout is how one configuration reached a fleet: when each cluster's
// operator first synced it (the agent's Synced event), over virtual
// time. A cluster that is offline gets the configuration only after it
// reconnects, so the curve's tail is the offline clusters.
type Rollout struct {
	Configuration string `json:"configuration"`
	// Clusters are the scenario's connected clusters at the end; Synced
	// how many of them synced the configuration.
	Clusters int    `json:"clusters"`
	Synced   int    `json:"synced"`
	First    string `json:"first"`
	Last     string `json:"last"`
	// Curve has a point at each virtual time the count grew.
	Curve []RolloutPoint `json:"curve"`
}

// RolloutPoint is how many clusters had synced at a virtual time.
type RolloutPoint struct {
	At     string `json:"at"`
	Synced int    `json:"synced"`
}

// rolloutRows is at most how many lines the text curve has; a longer
// curve is sampled at even intervals.
const rolloutRows = 10

// rolloutReport adds a rollout curve for each configuration that more
// than one cluster synced, and prints it under the timeline.
func (r *run) rolloutReport() {
	connected := r.env.sim.Connected()
	if len(connected) < 2 {
		return
	}
	first := map[string][]time.Time{} // configuration -> each cluster's first sync
	for _, c := range connected {
		seen := map[string]bool{}
		for _, e := range c.Agent.Events() {
			if e.Reason != "Synced" || seen[e.Configuration] || e.Time.Before(r.start) {
				continue
			}
			seen[e.Configuration] = true
			first[e.Configuration] = append(first[e.Configuration], e.Time)
		}
	}
	names := make([]string, 0, len(first))
	for n, ts := range first {
		if len(ts) > 1 {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for _, n := range names {
		ts := first[n]
		slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
		ro := Rollout{Configuration: n, Clusters: len(connected), Synced: len(ts), First: r.offset(ts[0]), Last: r.offset(ts[len(ts)-1])}
		for i, t := range ts {
			p := RolloutPoint{At: r.offset(t), Synced: i + 1}
			if k := len(ro.Curve) - 1; k >= 0 && ro.Curve[k].At == p.At {
				ro.Curve[k] = p
				continue
			}
			ro.Curve = append(ro.Curve, p)
		}
		r.res.Rollouts = append(r.res.Rollouts, ro)
		r.printf("%s", ro.text())
	}
}

// text draws the curve: one line per point, or per sample of a long
// curve, each with a bar of synced clusters out of all.
func (ro Rollout) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "  rollout of %s: %d of %d clusters synced, first %s, last %s\n", ro.Configuration, ro.Synced, ro.Clusters, ro.First, ro.Last)
	for _, p := range ro.sample(rolloutRows) {
		const width = 40
		n := p.Synced * width / max(ro.Clusters, 1)
		fmt.Fprintf(&b, "    %-12s %s%s %d\n", p.At, strings.Repeat("#", n), strings.Repeat(".", width-n), p.Synced)
	}
	return b.String()
}

// sample returns the curve, or for more than rows points the count at
// rows evenly spaced times from the first point to the last.
func (ro Rollout) sample(rows int) []RolloutPoint {
	if len(ro.Curve) <= rows {
		return ro.Curve
	}
	at := make([]time.Duration, len(ro.Curve))
	for i, p := range ro.Curve {
		at[i], _ = parseOffset(p.At)
	}
	out := make([]RolloutPoint, 0, rows)
	for i := range rows {
		t := at[0] + (at[len(at)-1]-at[0])*time.Duration(i)/time.Duration(rows-1)
		// The last point at or before t.
		j, found := slices.BinarySearchFunc(at, t, cmp.Compare[time.Duration])
		if !found {
			j--
		}
		out = append(out, RolloutPoint{At: FormatOffset(t), Synced: ro.Curve[j].Synced})
	}
	return out
}
