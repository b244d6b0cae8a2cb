package scenario

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// Policy expectations ask Azure as a client would (PolicyInsights and
// remediations over REST), except policyDeployment: what a
// DeployIfNotExists run did to one resource shows in Azure only in the
// activity log, which gitopsim does not serve, so it reads the provider's
// record.

func summaryPolicyCompliance(r *run, e *Expect) string {
	c := e.PolicyCompliance
	return fmt.Sprintf("policy %s on %s %s", c.Assignment, r.who(c.Cluster), c.State)
}

// who names a cluster, or a group with its size: "stores (90 clusters)".
func (r *run) who(name string) string {
	if g := r.groups[name]; len(g) > 0 {
		return fmt.Sprintf("%s (%s)", name, plural(len(g), "cluster"))
	}
	return name
}

// members are the clusters a cluster-or-group name stands for.
func (r *run) members(name string) []*clusterDecl {
	if g := r.groups[name]; len(g) > 0 {
		return g
	}
	if d, ok := r.decls[name]; ok {
		return []*clusterDecl{d}
	}
	return nil
}

// policyStates reads the latest compliance state of each resource an
// assignment evaluated (only resourceID's with it set), by lower-case
// resource id.
func (r *run) policyStates(a *assignmentRef, resourceID string) (map[string]string, string) {
	kv := []string{"$top", "1000"}
	if resourceID != "" {
		kv = append(kv, "$filter", "resourceId eq "+escapeOData(resourceID))
	}
	next := query(a.id+"/providers/Microsoft.PolicyInsights/policyStates/latest/queryResults", kv...)
	out := map[string]string{}
	for next != "" {
		resp, err := r.armRequest(http.MethodPost, next, insightsAPIVersion, nil)
		if err != nil {
			return nil, err.Error()
		}
		var page struct {
			Value []struct {
				ResourceID      string `json:"resourceId"`
				ComplianceState string `json:"complianceState"`
			} `json:"value"`
			NextLink string `json:"@odata.nextLink"`
		}
		if resp.status != http.StatusOK || json.Unmarshal(resp.body, &page) != nil {
			return nil, fmt.Sprintf("POST %s: %d %.200s", next, resp.status, resp.body)
		}
		for _, v := range page.Value {
			out[strings.ToLower(v.ResourceID)] = v.ComplianceState
		}
		next = page.NextLink
		if u, err := url.Parse(next); err == nil && next != "" {
			next = u.RequestURI()
		}
	}
	return out, ""
}

func checkPolicyCompliance(r *run, e *Expect) check {
	c := e.PolicyCompliance
	return func() string {
		a := r.assignments[c.Assignment]
		if a == nil {
			return fmt.Sprintf("assignment %q was not created (its assignPolicy step failed or did not run)", c.Assignment)
		}
		members := r.members(c.Cluster)
		single := ""
		if len(members) == 1 {
			single = r.clusterPath(members[0].Name)
		}
		states, msg := r.policyStates(a, single)
		if msg != "" {
			return msg
		}
		var bad []string
		for _, d := range members {
			got, ok := states[strings.ToLower(r.clusterPath(d.Name))]
			if !ok {
				got = "none"
			}
			if !strings.EqualFold(got, c.State) {
				bad = append(bad, fmt.Sprintf("%s is %s", d.Name, got))
			}
		}
		switch {
		case len(bad) == 0:
			return ""
		case len(members) == 1:
			return fmt.Sprintf("policy %s: expected %s, %s", c.Assignment, c.State, bad[0])
		}
		total, more := len(bad), ""
		if total > 3 {
			more, bad = fmt.Sprintf(" and %d more", total-3), bad[:3]
		}
		return fmt.Sprintf("policy %s: expected %s (%s) %s, %d are not: %s%s", c.Assignment, c.Cluster, plural(len(members), "cluster"), c.State,
			total, strings.Join(bad, ", "), more)
	}
}

func summaryPolicySummary(r *run, e *Expect) string {
	p := e.PolicySummary
	out := "policy summary of the " + scopeName(p.ResourceGroup)
	if p.Assignment != "" {
		out += " for " + p.Assignment
	}
	var counts []string
	if p.Compliant != nil {
		counts = append(counts, fmt.Sprintf("compliant %d", *p.Compliant))
	}
	if p.NonCompliant != nil {
		counts = append(counts, fmt.Sprintf("nonCompliant %d", *p.NonCompliant))
	}
	if len(counts) > 0 {
		out += ": " + strings.Join(counts, ", ")
	}
	return out
}

func checkPolicySummary(r *run, e *Expect) check {
	p := e.PolicySummary
	return func() string {
		path := r.scopePath(p.ResourceGroup) + "/providers/Microsoft.PolicyInsights/policyStates/latest/summarize"
		if p.Assignment != "" {
			a := r.assignments[p.Assignment]
			if a == nil {
				return fmt.Sprintf("assignment %q was not created (its assignPolicy step failed or did not run)", p.Assignment)
			}
			path = query(path, "$filter", "policyAssignmentId eq "+escapeOData(a.id))
		}
		resp, err := r.armRequest(http.MethodPost, path, insightsAPIVersion, nil)
		if err != nil {
			return err.Error()
		}
		var sum struct {
			Value []struct {
				Results struct {
					ResourceDetails []struct {
						ComplianceState string `json:"complianceState"`
						Count           int    `json:"count"`
					} `json:"resourceDetails"`
				} `json:"results"`
			} `json:"value"`
		}
		if resp.status != http.StatusOK || json.Unmarshal(resp.body, &sum) != nil || len(sum.Value) == 0 {
			return fmt.Sprintf("POST %s: %d %.200s", path, resp.status, resp.body)
		}
		n := map[string]int{}
		for _, d := range sum.Value[0].Results.ResourceDetails {
			n[strings.ToLower(d.ComplianceState)] += d.Count
		}
		seen := fmt.Sprintf("(compliant %d, nonCompliant %d)", n["compliant"], n["noncompliant"])
		switch {
		case p.Compliant != nil && n["compliant"] != *p.Compliant:
			return fmt.Sprintf("compliant: expected %d resources, got %d %s", *p.Compliant, n["compliant"], seen)
		case p.NonCompliant != nil && n["noncompliant"] != *p.NonCompliant:
			return fmt.Sprintf("nonCompliant: expected %d resources, got %d %s", *p.NonCompliant, n["noncompliant"], seen)
		}
		return ""
	}
}

func summaryRemediation(r *run, e *Expect) string {
	m := e.Remediation
	out := "remediation " + m.Name
	if m.State != "" {
		out += " " + m.State
	}
	var counts []string
	for _, c := range []struct {
		name string
		v    *int
	}{{"total", m.Total}, {"succeeded", m.Succeeded}, {"failed", m.Failed}} {
		if c.v != nil {
			counts = append(counts, fmt.Sprintf("%s %d", c.name, *c.v))
		}
	}
	if len(counts) > 0 {
		out += ", deployments " + strings.Join(counts, ", ")
	}
	if m.Message != "" {
		out += fmt.Sprintf(", message ~ %q", m.Message)
	}
	return out
}

func checkRemediation(r *run, e *Expect) check {
	m := e.Remediation
	return func() string {
		id, ok := r.remediations[m.Name]
		if !ok {
			return fmt.Sprintf("remediation %q was not created (its remediate step failed or did not run)", m.Name)
		}
		fields := map[string]any{}
		if m.State != "" {
			fields["properties.provisioningState"] = m.State
		}
		for _, c := range []struct {
			field string
			v     *int
		}{{"totalDeployments", m.Total}, {"successfulDeployments", m.Succeeded}, {"failedDeployments", m.Failed}} {
			if c.v != nil {
				fields["properties.deploymentStatus."+c.field] = float64(*c.v)
			}
		}
		if msg := r.checkARM(id, remediationAPIVersion, http.StatusOK, nil, fields)(); msg != "" || m.Message == "" {
			return msg
		}
		_, doc, msg := r.getJSON(id, remediationAPIVersion)
		if msg != "" {
			return msg
		}
		got, _ := lookup(doc, "properties.statusMessage")
		if s, _ := got.(string); !strings.Contains(s, m.Message) {
			return fmt.Sprintf("properties.statusMessage: expected it to contain %q, got %s", m.Message, show(got))
		}
		return ""
	}
}

func summaryPolicyDeployment(r *run, e *Expect) string {
	d := e.PolicyDeployment
	res := d.Result
	if res == "" {
		res = "succeeded"
	}
	out := fmt.Sprintf("policy %s deployment to %s %s", d.Assignment, d.Cluster, res)
	if res == "none" {
		out = fmt.Sprintf("no policy %s deployment to %s", d.Assignment, d.Cluster)
	}
	if d.Error != "" {
		out += fmt.Sprintf(" ~ %q", d.Error)
	}
	return out
}

func checkPolicyDeployment(r *run, e *Expect) check {
	d := e.PolicyDeployment
	want := d.Result
	if want == "" {
		want = "succeeded"
	}
	return func() string {
		a := r.assignments[d.Assignment]
		if a == nil {
			return fmt.Sprintf("assignment %q was not created (its assignPolicy step failed or did not run)", d.Assignment)
		}
		id := r.clusterPath(d.Cluster)
		var n, ok int
		last := ""
		for _, dep := range r.env.sim.Policy().Deployments() {
			if !strings.EqualFold(dep.PolicyAssignmentID, a.id) || !strings.EqualFold(dep.ResourceID, id) {
				continue
			}
			n++
			last = dep.Error
			if dep.Error == "" {
				ok++
			}
		}
		switch want {
		case "none":
			if n > 0 {
				return fmt.Sprintf("expected no deployment, got %d (%d succeeded)", n, ok)
			}
		case "succeeded":
			if ok == 0 {
				if n == 0 {
					return "expected a successful deployment, there was none"
				}
				return fmt.Sprintf("expected a successful deployment, %d failed, the last with: %s", n, last)
			}
		case "failed":
			switch {
			case n == 0:
				return "expected a failed deployment, there was none"
			case last == "":
				return "expected the last deployment to fail, it succeeded"
			case !strings.Contains(last, d.Error):
				return fmt.Sprintf("expected the error to contain %q, got %q", d.Error, last)
			}
		}
		return ""
	}
}
