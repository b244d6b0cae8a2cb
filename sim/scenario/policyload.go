package scenario

import (
	"strconv"
	"strings"
)

// Validation of the policy and cluster-lifecycle parts of a scenario.

func (v *validator) policySpec(p *PolicySpec) {
	if !oneOf(p.Timing, "", "documented", "immediate") {
		v.fail(p.Pos, "spec.policy.timing", "must be documented or immediate, got %q", p.Timing)
	}
}

// resourceGroupRef checks a scope given as a resource group name.
func (v *validator) resourceGroupRef(rg string, p Pos, field string) {
	if rg != "" && (!resourceGroupRE.MatchString(rg) || strings.HasSuffix(rg, ".")) {
		v.fail(p, field, "not a resource group name (letters, digits, '-', '_', '.', '(', ')', at most 90): %q", rg)
	}
}

// assignment checks a reference to an assignment an earlier step made.
func (v *validator) assignment(name string, p Pos, field string) {
	switch {
	case name == "":
		v.fail(p, field, "required: the name of an assignment an earlier assignPolicy step creates")
	case !v.assignments[name]:
		v.fail(p, field, "no earlier assignPolicy step creates assignment %q", name)
	}
}

func (v *validator) policyStep(s *Step, f string) {
	switch {
	case s.Onboard != nil:
		o := s.Onboard
		g := f + ".onboard.cluster"
		v.clusterOrGroup(o.Cluster, o.Pos, g)
		for i := range v.sc.Spec.Clusters {
			c := &v.sc.Spec.Clusters[i]
			if o.Cluster != "" && (c.Name == o.Cluster || (c.Count > 0 && c.NamePattern != "" && v.memberOf(c, o.Cluster))) && c.Onboard != "later" {
				v.fail(o.Pos, g, "cluster %q is onboarded before the first step: declare it with onboard: later", o.Cluster)
			}
		}
	case s.UpdateCluster != nil:
		u := s.UpdateCluster
		v.ref(v.clusters, u.Cluster, u.Pos, f+".updateCluster.cluster", "cluster")
		if len(u.Tags) == 0 {
			v.fail(u.Pos, f+".updateCluster.tags", "required: the tags the PATCH sets")
		}
		v.armStatus(u.Expect, f+".updateCluster.expect")
	case s.AssignPolicy != nil:
		a := s.AssignPolicy
		g := f + ".assignPolicy"
		if a.Name == "" || len(a.Name) > 64 || strings.ContainsAny(a.Name, "<>*%&:\\?.+/ ") {
			v.fail(a.Pos, g+".name", "required: 1 to 64 characters without <>*%%&:\\?.+/ or spaces, got %q", a.Name)
		} else {
			v.assignments[a.Name] = true
		}
		v.resourceGroupRef(a.ResourceGroup, a.Pos, g+".resourceGroup")
		if _, ok := definitions[a.Definition]; !ok && a.Definition != "" && !strings.HasPrefix(a.Definition, "/") {
			v.fail(a.Pos, g+".definition", "must be gitops-no-secrets, gitops-ssh, gitops-https or a definition id (/providers/...), got %q", a.Definition)
		}
		if !oneOf(a.EnforcementMode, "", "Default", "DoNotEnforce") {
			v.fail(a.Pos, g+".enforcementMode", "must be Default or DoNotEnforce, got %q", a.EnforcementMode)
		}
		if !oneOf(a.Identity, "", "systemAssigned", "none") {
			v.fail(a.Pos, g+".identity", "must be systemAssigned or none, got %q", a.Identity)
		}
		for i, n := range a.NotScopes {
			if !strings.HasPrefix(n, "/") {
				v.resourceGroupRef(n, a.Pos, g+".notScopes["+itoa(i)+"]")
			}
		}
		v.armStatus(a.Expect, g+".expect")
	case s.GrantRole != nil:
		gr := s.GrantRole
		g := f + ".grantRole"
		v.assignment(gr.Assignment, gr.Pos, g+".assignment")
		if _, ok := roles[gr.Role]; !ok && gr.Role != "" && !guidLike(gr.Role) {
			v.fail(gr.Pos, g+".role", "must be Contributor, Owner, Reader or a role definition GUID, got %q", gr.Role)
		}
		v.resourceGroupRef(gr.ResourceGroup, gr.Pos, g+".resourceGroup")
		v.armStatus(gr.Expect, g+".expect")
	case s.Remediate != nil:
		m := s.Remediate
		g := f + ".remediate"
		if m.Name == "" {
			v.fail(m.Pos, g+".name", "required: the task's name")
		} else {
			v.remediations[m.Name] = true
		}
		v.assignment(m.Assignment, m.Pos, g+".assignment")
		v.resourceGroupRef(m.ResourceGroup, m.Pos, g+".resourceGroup")
		if !oneOf(m.Mode, "", "ExistingNonCompliant", "ReEvaluateCompliance") {
			v.fail(m.Pos, g+".mode", "must be ExistingNonCompliant or ReEvaluateCompliance, got %q", m.Mode)
		}
		if m.ParallelDeployments < 0 || m.ParallelDeployments > 30 {
			v.fail(m.Pos, g+".parallelDeployments", "must be between 1 and 30, got %d", m.ParallelDeployments)
		}
		if m.ResourceCount < 0 || m.ResourceCount > 50000 {
			v.fail(m.Pos, g+".resourceCount", "must be between 1 and 50000, got %d", m.ResourceCount)
		}
		if m.FailureThreshold != nil && (*m.FailureThreshold < 0 || *m.FailureThreshold > 1) {
			v.fail(m.Pos, g+".failureThreshold", "is a fraction between 0 and 1, got %v", *m.FailureThreshold)
		}
		v.armStatus(m.Expect, g+".expect")
	case s.CancelRemediation != nil:
		c := s.CancelRemediation
		if !v.remediations[c.Name] {
			v.fail(c.Pos, f+".cancelRemediation.name", "no earlier remediate step creates remediation %q", c.Name)
		}
		v.armStatus(c.Expect, f+".cancelRemediation.expect")
	case s.PolicyScan != nil:
		v.resourceGroupRef(s.PolicyScan.ResourceGroup, s.PolicyScan.Pos, f+".policyScan.resourceGroup")
	}
}

// memberOf reports whether name is one of a group's clusters.
func (v *validator) memberOf(c *Cluster, name string) bool {
	for n := 1; n <= c.Count && n <= maxClusters; n++ {
		if expandPattern(c.NamePattern, n) == name {
			return true
		}
	}
	return false
}

func (v *validator) policyExpect(e *Expect, f string) {
	switch {
	case e.PolicyCompliance != nil:
		c := e.PolicyCompliance
		g := f + ".policyCompliance"
		v.assignment(c.Assignment, c.Pos, g+".assignment")
		v.clusterOrGroup(c.Cluster, c.Pos, g+".cluster")
		if !oneOf(c.State, "Compliant", "NonCompliant", "none") {
			v.fail(c.Pos, g+".state", "must be Compliant, NonCompliant or none, got %q", c.State)
		}
	case e.PolicySummary != nil:
		p := e.PolicySummary
		g := f + ".policySummary"
		if p.Assignment != "" {
			v.assignment(p.Assignment, p.Pos, g+".assignment")
		}
		v.resourceGroupRef(p.ResourceGroup, p.Pos, g+".resourceGroup")
		if p.Compliant == nil && p.NonCompliant == nil {
			v.fail(p.Pos, g, "give compliant, nonCompliant or both")
		}
	case e.Remediation != nil:
		m := e.Remediation
		g := f + ".remediation"
		if !v.remediations[m.Name] {
			v.fail(m.Pos, g+".name", "no earlier remediate step creates remediation %q", m.Name)
		}
		if !oneOf(m.State, "", "Accepted", "Evaluating", "Succeeded", "Failed", "Canceled", "Cancelling") {
			v.fail(m.Pos, g+".state", "must be Accepted, Evaluating, Succeeded, Failed, Cancelling or Canceled, got %q", m.State)
		}
		if m.State == "" && m.Total == nil && m.Succeeded == nil && m.Failed == nil && m.Message == "" {
			v.fail(m.Pos, g, "give state, deployment counts (total, succeeded, failed) or message")
		}
	case e.PolicyDeployment != nil:
		d := e.PolicyDeployment
		g := f + ".policyDeployment"
		v.assignment(d.Assignment, d.Pos, g+".assignment")
		v.ref(v.clusters, d.Cluster, d.Pos, g+".cluster", "cluster")
		if !oneOf(d.Result, "", "succeeded", "failed", "none") {
			v.fail(d.Pos, g+".result", "must be succeeded, failed or none, got %q", d.Result)
		}
		if d.Error != "" && d.Result != "failed" {
			v.fail(d.Pos, g+".error", "only a failed deployment has an error: add result: failed")
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// guidLike reports whether s is shaped like a GUID.
func guidLike(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
				return false
			}
		}
	}
	return true
}
