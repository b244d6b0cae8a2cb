package scenario

import (
	"fmt"
	"strings"
)

// network steps: faults on an agent's links.
func summaryNetwork(r *run, s *Step) string {
	n := s.Network
	link := n.Link
	if link == "" {
		link = "all"
	}
	var what []string
	if n.Offline != nil {
		what = append(what, map[bool]string{true: "offline", false: "online"}[*n.Offline])
	}
	if n.Delay != nil {
		what = append(what, "delay "+fmtDur(n.Delay.D()))
	}
	if n.Flaky != nil {
		what = append(what, fmt.Sprintf("flaky 1/%d", *n.Flaky))
	}
	return fmt.Sprintf("network %s %s links: %s", r.who(n.Cluster), link, strings.Join(what, ", "))
}

// doNetwork changes the links of a cluster, or of every cluster of a
// group.
func doNetwork(r *run, s *Step) (string, error) {
	n := s.Network
	var targets []linkSetter
	for _, d := range r.members(n.Cluster) {
		c, ok := r.clusters[d.Name]
		if !ok {
			return "", failf("%s", notOnboarded(d.Name))
		}
		if n.Link == "" || n.Link == "all" || n.Link == "arm" {
			targets = append(targets, c.Agent.ARMLink())
		}
		if n.Link == "" || n.Link == "all" || n.Link == "git" {
			targets = append(targets, c.Agent.GitLink())
		}
	}
	for _, l := range targets {
		if n.Offline != nil {
			l.SetOffline(*n.Offline)
		}
		if n.Delay != nil {
			l.SetDelay(n.Delay.D())
		}
		if n.Flaky != nil {
			l.SetFlaky(*n.Flaky)
		}
	}
	return "", nil
}

// advance steps: the clock moved.
func summaryAdvance(r *run, s *Step) string {
	return "advance " + fmtDur(s.Advance.D())
}

func doAdvance(r *run, s *Step) (string, error) {
	return "", r.advance(s.Advance.D())
}

// expect steps: an expectation checked.
func summaryExpect(r *run, s *Step) string {
	return r.expectSummary(s.Expect)
}

func doExpect(r *run, s *Step) (string, error) {
	return r.expect(s.Expect)
}

// try steps: a try block (run by run.try).
func summaryTry(r *run, s *Step) string {
	return "try"
}
