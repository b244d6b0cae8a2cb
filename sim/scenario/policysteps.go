package scenario

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/policyinsights/armpolicyinsights"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armpolicy"

	"github.com/gitopsim/gitopsim/sim/policy"
	"github.com/gitopsim/gitopsim/sim/policy/engine"
)

// api-versions the policy steps speak: those of the newest Go SDKs for
// assignments and role assignments, and of the docs (and az) for
// PolicyInsights.
const (
	policyAPIVersion      = "2025-03-01"
	roleAPIVersion        = "2022-04-01"
	insightsAPIVersion    = "2019-10-01"
	remediationAPIVersion = "2021-10-01"
)

// definitions are the short names assignPolicy accepts for the built-ins.
var definitions = map[string]string{
	"gitops-no-secrets": engine.BuiltInGitOpsNoSecrets,
	"gitops-ssh":        engine.BuiltInGitOpsSSH,
	"gitops-https":      engine.BuiltInGitOpsHTTPS,
}

// roles are the short names grantRole accepts.
var roles = map[string]string{
	"Contributor": policy.RoleContributor,
	"Owner":       policy.RoleOwner,
	"Reader":      policy.RoleReader,
}

// assignmentRef is an assignment a step created.
type assignmentRef struct {
	name, id, scope, principalID string
	// at is when it was first written, for the timeline's delays.
	at time.Time
}

// scopePath is the subscription, or a resource group of it.
func (r *run) scopePath(rg string) string {
	s := "/subscriptions/" + r.az.SubscriptionID
	if rg != "" {
		s += "/resourceGroups/" + rg
	}
	return s
}

// scopeName is how the timeline names a scope.
func scopeName(rg string) string {
	if rg == "" {
		return "subscription"
	}
	return "resource group " + rg
}

// assignPolicy steps: PUT of a policy assignment.
func summaryAssignPolicy(r *run, s *Step) string {
	a := s.AssignPolicy
	def := a.Definition
	if def == "" {
		def = "gitops-no-secrets"
	}
	out := fmt.Sprintf("assign policy %s (%s) to the %s", a.Name, def, scopeName(a.ResourceGroup))
	if len(a.NotScopes) > 0 {
		out += " except " + strings.Join(a.NotScopes, ", ")
	}
	if a.EnforcementMode != "" && a.EnforcementMode != "Default" {
		out += ", " + a.EnforcementMode
	}
	if a.Identity == "none" {
		out += ", no identity"
	}
	return out
}

func doAssignPolicy(r *run, s *Step) (string, error) {
	a := s.AssignPolicy
	def := a.Definition
	if def == "" {
		def = "gitops-no-secrets"
	}
	if id, ok := definitions[def]; ok {
		def = "/providers/Microsoft.Authorization/policyDefinitions/" + id
	}
	params := map[string]any{}
	for k, v := range a.Parameters {
		params[k] = map[string]any{"value": r.expandAny(jsonable(v))}
	}
	props := map[string]any{"policyDefinitionId": r.expand(def), "parameters": params}
	if a.EnforcementMode != "" {
		props["enforcementMode"] = a.EnforcementMode
	}
	if len(a.NotScopes) > 0 {
		var ns []string
		for _, n := range a.NotScopes {
			if !strings.HasPrefix(n, "/") {
				n = r.scopePath(n)
			}
			ns = append(ns, r.expand(n))
		}
		props["notScopes"] = ns
	}
	loc := a.Location
	if loc == "" {
		loc = "eastus"
	}
	body := map[string]any{"properties": props}
	if a.Identity != "none" {
		body["location"] = loc
		body["identity"] = map[string]any{"type": "SystemAssigned"}
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return "", err
	}
	path := r.scopePath(a.ResourceGroup) + "/providers/Microsoft.Authorization/policyAssignments/" + a.Name
	var detail string
	var resp []byte
	if a.APIVersion != "" {
		// An older api-version than the SDK's: the request as written.
		detail, resp, err = r.armCallBody(http.MethodPut, path, a.APIVersion, raw, a.Expect)
	} else {
		// The official client, as a user's program would make it.
		detail, resp, err = r.sdkCall(http.MethodPut, path, a.Expect, func(ctx context.Context) error {
			var assignment armpolicy.Assignment
			if err := json.Unmarshal(raw, &assignment); err != nil {
				return err
			}
			c, err := armpolicy.NewAssignmentsClient(r.az.SubscriptionID, r.az.Credential, r.az.Options)
			if err != nil {
				return err
			}
			_, err = c.Create(ctx, r.scopePath(a.ResourceGroup), a.Name, assignment, nil)
			return err
		})
	}
	if err != nil || a.Expect.Status >= 300 {
		return detail, err
	}
	var got struct {
		ID       string `json:"id"`
		Identity *struct {
			PrincipalID string `json:"principalId"`
		} `json:"identity"`
	}
	if json.Unmarshal(resp, &got) != nil || got.ID == "" {
		return detail, failf("PUT %s: the answer has no id: %.200s", path, resp)
	}
	ref := r.assignments[a.Name]
	if ref == nil {
		ref = &assignmentRef{name: a.Name, at: r.env.clk.Now()}
		r.assignments[a.Name] = ref
		r.assignOrder = append(r.assignOrder, a.Name)
	}
	ref.id, ref.scope = got.ID, r.scopePath(a.ResourceGroup)
	ref.principalID = ""
	if got.Identity != nil {
		ref.principalID = got.Identity.PrincipalID
	}
	return detail, nil
}

// grantRole steps: a role for an assignment's managed identity.
func summaryGrantRole(r *run, s *Step) string {
	g := s.GrantRole
	role := g.Role
	if role == "" {
		role = "Contributor"
	}
	scope := "the assignment's scope"
	if g.ResourceGroup != "" {
		scope = scopeName(g.ResourceGroup)
	}
	return fmt.Sprintf("grant %s on %s to the identity of %s", role, scope, g.Assignment)
}

func doGrantRole(r *run, s *Step) (string, error) {
	g := s.GrantRole
	a := r.assignments[g.Assignment]
	if a == nil {
		return "", failf("assignment %q was not created (its assignPolicy step failed or did not run)", g.Assignment)
	}
	// The principal comes from the assignment, as `az role assignment
	// create --assignee-object-id $(az policy assignment show ...)` does.
	status, b, err := r.armDo(http.MethodGet, a.id, policyAPIVersion, nil)
	if err != nil {
		return "", err
	}
	var got struct {
		Identity *struct {
			PrincipalID string `json:"principalId"`
		} `json:"identity"`
	}
	if status != http.StatusOK || json.Unmarshal(b, &got) != nil {
		return "", failf("GET %s: %d", a.id, status)
	}
	if got.Identity == nil || got.Identity.PrincipalID == "" {
		return "", failf("assignment %s has no managed identity to grant a role to", g.Assignment)
	}
	role := g.Role
	if role == "" {
		role = "Contributor"
	}
	if id, ok := roles[role]; ok {
		role = id
	}
	scope := a.scope
	if g.ResourceGroup != "" {
		scope = r.scopePath(g.ResourceGroup)
	}
	body, err := json.Marshal(map[string]any{"properties": map[string]any{
		"roleDefinitionId": "/subscriptions/" + r.az.SubscriptionID + "/providers/Microsoft.Authorization/roleDefinitions/" + role,
		"principalId":      got.Identity.PrincipalID,
		"principalType":    "ServicePrincipal",
	}})
	if err != nil {
		return "", err
	}
	// A stable name keeps transcripts and request logs reproducible.
	name := stableUUID("role-assignment/" + a.id + "/" + scope + "/" + role)
	return r.armCall(http.MethodPut, scope+"/providers/Microsoft.Authorization/roleAssignments/"+name, roleAPIVersion, body, g.Expect)
}

// remediate steps: a remediation task.
func summaryRemediate(r *run, s *Step) string {
	m := s.Remediate
	out := fmt.Sprintf("remediate %s: task %s", m.Assignment, m.Name)
	if m.ResourceGroup != "" {
		out += " in " + scopeName(m.ResourceGroup)
	}
	if m.Mode != "" {
		out += ", " + m.Mode
	}
	if m.ParallelDeployments > 0 {
		out += fmt.Sprintf(", %d in parallel", m.ParallelDeployments)
	}
	return out
}

func doRemediate(r *run, s *Step) (string, error) {
	m := s.Remediate
	a := r.assignments[m.Assignment]
	if a == nil {
		return "", failf("assignment %q was not created (its assignPolicy step failed or did not run)", m.Assignment)
	}
	props := map[string]any{"policyAssignmentId": a.id}
	if m.Mode != "" {
		props["resourceDiscoveryMode"] = m.Mode
	}
	if len(m.Locations) > 0 {
		props["filters"] = map[string]any{"locations": m.Locations}
	}
	if m.ResourceCount > 0 {
		props["resourceCount"] = m.ResourceCount
	}
	if m.ParallelDeployments > 0 {
		props["parallelDeployments"] = m.ParallelDeployments
	}
	if m.FailureThreshold != nil {
		props["failureThreshold"] = map[string]any{"percentage": *m.FailureThreshold}
	}
	body, err := json.Marshal(map[string]any{"properties": props})
	if err != nil {
		return "", err
	}
	// The task's resource group: the step's, or the assignment's when it
	// is scoped to one; "" is the subscription.
	rg := r.expand(m.ResourceGroup)
	if rg == "" {
		_, rg = policy.ScopeParts(a.scope)
	}
	scope := r.scopePath(rg)
	id := scope + "/providers/Microsoft.PolicyInsights/remediations/" + m.Name
	// The official client, as a user's program would make it.
	detail, _, err := r.sdkCall(http.MethodPut, id, m.Expect, func(ctx context.Context) error {
		var rem armpolicyinsights.Remediation
		if err := json.Unmarshal(body, &rem); err != nil {
			return err
		}
		c, err := armpolicyinsights.NewRemediationsClient(r.az.SubscriptionID, r.az.Credential, r.az.Options)
		if err != nil {
			return err
		}
		if rg != "" {
			_, err = c.CreateOrUpdateAtResourceGroup(ctx, rg, m.Name, rem, nil)
		} else {
			_, err = c.CreateOrUpdateAtSubscription(ctx, m.Name, rem, nil)
		}
		return err
	})
	if err == nil && m.Expect.Status < 300 {
		r.remediations[m.Name] = id
	}
	return detail, err
}

// cancelRemediation steps: POST .../cancel.
func summaryCancelRemediation(r *run, s *Step) string {
	return "cancel remediation " + s.CancelRemediation.Name
}

func doCancelRemediation(r *run, s *Step) (string, error) {
	c := s.CancelRemediation
	id, ok := r.remediations[c.Name]
	if !ok {
		return "", failf("remediation %q was not created (its remediate step failed or did not run)", c.Name)
	}
	return r.armCall(http.MethodPost, id+"/cancel", remediationAPIVersion, nil, c.Expect)
}

// policyScan steps: an on-demand evaluation, waited for as a client
// polls its Location.
func summaryPolicyScan(r *run, s *Step) string {
	out := "policy scan of the " + scopeName(s.PolicyScan.ResourceGroup)
	if s.PolicyScan.Wait != nil && !*s.PolicyScan.Wait {
		out += ", not waiting"
	}
	return out
}

// scanTimeout bounds the wait for a scan, in virtual time.
const scanTimeout = time.Hour

func doPolicyScan(r *run, s *Step) (string, error) {
	p := s.PolicyScan
	path := r.scopePath(p.ResourceGroup) + "/providers/Microsoft.PolicyInsights/policyStates/latest/triggerEvaluation"
	resp, err := r.armRequest(http.MethodPost, path, insightsAPIVersion, nil)
	if err != nil {
		return "", err
	}
	if resp.status != http.StatusAccepted {
		return strconv.Itoa(resp.status), failf("POST %s: expected 202, got %d %.200s", path, resp.status, resp.body)
	}
	loc := resp.header.Get("Location")
	if loc == "" {
		return "202", failf("POST %s: 202 without a Location header", path)
	}
	if p.Wait != nil && !*p.Wait {
		return "202", nil
	}
	start := r.env.clk.Now()
	deadline := start.Add(scanTimeout)
	for {
		// The scan runs on the clock: let what is due now run first.
		if r.virt != nil {
			r.virt.Advance(0)
		}
		got, err := r.armRequest(http.MethodGet, loc, "", nil)
		if err != nil {
			return "202", err
		}
		switch got.status {
		case http.StatusOK:
			return "202, done after " + fmtDur(r.env.clk.Since(start)), nil
		case http.StatusAccepted:
		default:
			return "202", failf("GET %s: %d %.200s", loc, got.status, got.body)
		}
		if !r.env.clk.Now().Before(deadline) {
			return "202", failf("the scan did not finish within %s", fmtDur(scanTimeout))
		}
		wait := time.Second
		if n, err := strconv.Atoi(got.header.Get("Retry-After")); err == nil && n > 0 {
			wait = time.Duration(n) * time.Second
		}
		if err := r.advance(wait); err != nil {
			return "202", err
		}
	}
}

// policyTiming is the timing a scenario asks for; nil keeps the
// simulator's default (documented).
func policyTiming(p *PolicySpec) *policy.Timing {
	if p == nil {
		return nil
	}
	t := policy.DefaultTiming()
	if p.Timing == "immediate" {
		t = policy.ImmediateTiming()
	}
	if d := p.Delays; d != nil {
		for _, o := range []struct {
			v   *Duration
			dst *time.Duration
		}{{d.Assignment, &t.Assignment}, {d.Resource, &t.Resource}, {d.Deploy, &t.Deploy}, {d.Cycle, &t.Cycle},
			{d.RemediationStart, &t.RemediationStart}, {d.RemediationDeployment, &t.RemediationDeployment}} {
			if o.v != nil {
				*o.dst = o.v.D()
			}
		}
	}
	return &t
}

// escapeOData quotes a string literal of an OData $filter.
func escapeOData(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// query adds $filter (and more) to a path.
func query(path string, kv ...string) string {
	q := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	return path + "?" + strings.ReplaceAll(q.Encode(), "+", "%20")
}

// sortedKeys returns a map's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
