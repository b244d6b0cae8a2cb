package policy

import (
	"fmt"
	"maps"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gitopsim/gitopsim/sim/arm"
	"github.com/gitopsim/gitopsim/sim/policy/engine"
)

// Remediation provisioning states. The swagger lists "Evaluating,
// Canceled, Cancelling, Failed, Complete, or Succeeded" and its examples
// answer a create with Accepted (azure-policy-spec §2.5); a task here is
// Accepted when created, Evaluating while it discovers and deploys, and
// ends Succeeded, Failed or Canceled.
const (
	RemediationAccepted   = "Accepted"
	RemediationEvaluating = "Evaluating"
	RemediationCancelling = "Cancelling"
	RemediationCanceled   = "Canceled"
	RemediationFailed     = "Failed"
	RemediationSucceeded  = "Succeeded"
)

// Remediation limits and defaults (remediation-structure.md, armpolicyinsights
// v0.10.0 models.go).
const (
	defaultResourceCount       = 500
	maxResourceCount           = 50000
	defaultParallelDeployments = 10
	maxParallelDeployments     = 30
	maxFilterResourceIDs       = 100
)

// Error codes of remediation requests. InvalidCreateRemediationRequest is
// the service's code for a conflicting task (a lab transcript, §2.5); the
// other validation failures use it too (inferred).
const (
	CodeInvalidCreateRemediation = "InvalidCreateRemediationRequest"
	CodeInvalidCancelRemediation = "InvalidCancelRemediationRequest"
	CodeRemediationNotFound      = "RemediationNotFound"
)

const remediationType = "Microsoft.PolicyInsights/remediations"

// remediation is a remediation task as the API shows it.
type remediation struct {
	ID         string           `json:"id"`
	Name       string           `json:"name"`
	Type       string           `json:"type"`
	SystemData *systemData      `json:"systemData,omitempty"`
	Properties remediationProps `json:"properties"`
}

type remediationProps struct {
	PolicyAssignmentID          string              `json:"policyAssignmentId"`
	PolicyDefinitionReferenceID string              `json:"policyDefinitionReferenceId,omitempty"`
	ResourceDiscoveryMode       string              `json:"resourceDiscoveryMode,omitempty"`
	Filters                     *remediationFilters `json:"filters,omitempty"`
	ResourceCount               *int32              `json:"resourceCount,omitempty"`
	ParallelDeployments         *int32              `json:"parallelDeployments,omitempty"`
	FailureThreshold            *failureThreshold   `json:"failureThreshold,omitempty"`
	ProvisioningState           string              `json:"provisioningState,omitempty"`
	CreatedOn                   *time.Time          `json:"createdOn,omitempty"`
	LastUpdatedOn               *time.Time          `json:"lastUpdatedOn,omitempty"`
	DeploymentStatus            *deploymentSummary  `json:"deploymentStatus,omitempty"`
	StatusMessage               string              `json:"statusMessage,omitempty"`
	CorrelationID               string              `json:"correlationId,omitempty"`
}

type remediationFilters struct {
	Locations   []string `json:"locations,omitempty"`
	ResourceIDs []string `json:"resourceIds,omitempty"`
}

type failureThreshold struct {
	Percentage *float64 `json:"percentage,omitempty"`
}

type deploymentSummary struct {
	TotalDeployments      int32 `json:"totalDeployments"`
	SuccessfulDeployments int32 `json:"successfulDeployments"`
	FailedDeployments     int32 `json:"failedDeployments"`
}

// remediationDeployment is one record of listDeployments.
type remediationDeployment struct {
	RemediatedResourceID string           `json:"remediatedResourceId"`
	DeploymentID         string           `json:"deploymentId,omitempty"`
	Status               string           `json:"status"`
	ResourceLocation     string           `json:"resourceLocation,omitempty"`
	Error                *deploymentError `json:"error,omitempty"`
	CreatedOn            time.Time        `json:"createdOn"`
	LastUpdatedOn        time.Time        `json:"lastUpdatedOn"`
}

type deploymentError struct {
	Code    string `json:"code,omitempty"`
	Message string `json:"message"`
}

// storedRemediation is a task with its progress, as persisted.
type storedRemediation struct {
	Resource remediation `json:"resource"`
	// Scope is the scope the task was created at.
	Scope       string                  `json:"scope"`
	Deployments []remediationDeployment `json:"deployments"`
	// Pending are the resources still to deploy, in order.
	Pending []string `json:"pending"`
	// Discovered is set once the resources to deploy are known.
	Discovered bool `json:"discovered"`
}

func (s *storedRemediation) terminal() bool {
	switch s.Resource.Properties.ProvisioningState {
	case RemediationSucceeded, RemediationFailed, RemediationCanceled:
		return true
	}
	return false
}

// Remediation is a remediation task's state, for tests and reports.
type Remediation struct {
	ID                 string
	PolicyAssignmentID string
	ProvisioningState  string
	Total, Successful  int
	Failed             int
	StatusMessage      string
}

// Remediations returns the remediation tasks, ordered by id.
func (in *Insights) Remediations() []Remediation {
	in.mu.Lock()
	defer in.mu.Unlock()
	var out []Remediation
	for _, k := range slices.Sorted(maps.Keys(in.remediations)) {
		s := in.remediations[k]
		p := s.Resource.Properties
		r := Remediation{ID: s.Resource.ID, PolicyAssignmentID: p.PolicyAssignmentID, ProvisioningState: p.ProvisioningState, StatusMessage: p.StatusMessage}
		if p.DeploymentStatus != nil {
			r.Total, r.Successful, r.Failed = int(p.DeploymentStatus.TotalDeployments), int(p.DeploymentStatus.SuccessfulDeployments), int(p.DeploymentStatus.FailedDeployments)
		}
		out = append(out, r)
	}
	return out
}

// Remediations returns the remediation tasks of the provider's
// Microsoft.PolicyInsights, ordered by id; none before Insights is called.
func (p *Provider) Remediations() []Remediation {
	if p.insights == nil {
		return nil
	}
	return p.insights.Remediations()
}

// remediationRoutes are the remediations routes at subscription,
// resource group and resource scope. Management groups are not
// simulated.
func (in *Insights) remediationRoutes() []arm.Route {
	const (
		pi  = "/providers/Microsoft.PolicyInsights/remediations"
		sub = "subscriptions/{sub}"
		rg  = sub + "/resourceGroups/{rg}"
		res = rg + "/providers/{ns}/{type}/{res}"
	)
	var routes []arm.Route
	for _, scope := range []string{sub, rg, res} {
		routes = append(routes,
			arm.Route{Name: "remediations@" + scope, Pattern: scope + pi,
				Methods: map[string]arm.Handler{http.MethodGet: in.listRemediations}},
			arm.Route{Name: "remediation@" + scope, Pattern: scope + pi + "/{name}",
				Methods: map[string]arm.Handler{http.MethodGet: in.getRemediation, http.MethodPut: in.putRemediation, http.MethodDelete: in.deleteRemediation}},
			arm.Route{Name: "remediationCancel@" + scope, Pattern: scope + pi + "/{name}/cancel",
				Methods: map[string]arm.Handler{http.MethodPost: in.cancelRemediation}},
			arm.Route{Name: "remediationListDeployments@" + scope, Pattern: scope + pi + "/{name}/listDeployments",
				Methods: map[string]arm.Handler{http.MethodPost: in.listRemediationDeployments, http.MethodGet: in.listRemediationDeployments}},
		)
	}
	return routes
}

// remediationID spells a task's id as the service does: resource groups
// and the provider in lower case (every example of the 2024-10-01 spec).
func remediationID(scope, name string) string {
	s := scope
	if i := strings.Index(strings.ToLower(s), "/resourcegroups/"); i >= 0 {
		s = s[:i] + "/resourcegroups/" + s[i+len("/resourcegroups/"):]
	}
	return s + "/providers/microsoft.policyinsights/remediations/" + name
}

func (in *Insights) lookupRemediation(r *arm.Request) (*storedRemediation, *arm.Error) {
	id := remediationID(scopeOf(r), r.Var("name"))
	s := in.remediations[key(id)]
	if s == nil {
		return nil, notFound(CodeRemediationNotFound, "The remediation '%s' could not be found.", r.Var("name"))
	}
	return s, nil
}

func (in *Insights) getRemediation(r *arm.Request) *arm.Error {
	in.mu.Lock()
	defer in.mu.Unlock()
	s, e := in.lookupRemediation(r)
	if e != nil {
		return e
	}
	r.JSON(http.StatusOK, s.view())
	return nil
}

// putRemediation creates a task (201) or re-runs a finished one with new
// settings (200); the call is synchronous and the task starts on the
// clock (§2.5).
func (in *Insights) putRemediation(r *arm.Request) *arm.Error {
	if e := in.p.checkScope(r); e != nil {
		return e
	}
	var req struct {
		Properties *remediationProps `json:"properties"`
	}
	if e := readBody(r, &req); e != nil {
		return e
	}
	name := r.Var("name")
	if req.Properties == nil {
		return badRequest(arm.CodeInvalidRequestContent, "The request content was invalid and could not be deserialized: the property 'properties' is required.")
	}
	props := *req.Properties
	if e := in.checkRemediation(name, scopeOf(r), &props); e != nil {
		return e
	}
	id := remediationID(scopeOf(r), name)
	now := r.Now().UTC()

	in.mu.Lock()
	old := in.remediations[key(id)]
	if old != nil && !old.terminal() {
		in.mu.Unlock()
		return badRequest(CodeInvalidCreateRemediation, "The remediation '%s' is running; its settings can't be changed until it has finished or been canceled.", name)
	}
	for _, o := range in.remediations {
		if o.terminal() || key(o.Resource.ID) == key(id) {
			continue
		}
		op := o.Resource.Properties
		if key(op.PolicyAssignmentID) == key(props.PolicyAssignmentID) &&
			strings.EqualFold(op.PolicyDefinitionReferenceID, props.PolicyDefinitionReferenceID) &&
			(within(o.Scope, scopeOf(r)) || within(scopeOf(r), o.Scope)) {
			in.mu.Unlock()
			return badRequest(CodeInvalidCreateRemediation, "The following remediations: '%s' are already running for policy assignment '%s', definition reference ID '%s' on a scope conflicting with requested scope.",
				o.Resource.Name, props.PolicyAssignmentID, props.PolicyDefinitionReferenceID)
		}
	}
	props.ProvisioningState = RemediationAccepted
	props.CreatedOn, props.LastUpdatedOn = &now, &now
	props.DeploymentStatus = &deploymentSummary{}
	props.StatusMessage = ""
	props.CorrelationID = guidFor("remediation:" + id + ":" + now.Format(time.RFC3339Nano))
	s := &storedRemediation{Resource: remediation{ID: id, Name: name, Type: remediationType, Properties: props}, Scope: scopeOf(r)}
	status := http.StatusCreated
	if old != nil {
		status = http.StatusOK
		s.Resource.ID, s.Resource.Name = old.Resource.ID, old.Resource.Name
		s.Resource.SystemData = touched(old.SystemData(), r.Caller(), now)
	} else {
		s.Resource.SystemData = touched(nil, r.Caller(), now)
	}
	in.remediations[key(id)] = s
	body := s.view()
	in.mu.Unlock()
	if e := in.p.srv.Persist(); e != nil {
		// Not stored after all: put back what was there.
		in.mu.Lock()
		if old != nil {
			in.remediations[key(id)] = old
		} else {
			delete(in.remediations, key(id))
		}
		in.mu.Unlock()
		return e
	}
	in.p.ev.emit(Event{Time: now, Kind: EventRemediation, AssignmentID: props.PolicyAssignmentID, ResourceID: body.ID, State: RemediationAccepted})
	in.p.clk.AfterFunc(in.p.eval.timing.RemediationStart, func() { in.discover(key(id), s) })
	r.JSON(status, body)
	return nil
}

// view is the task as the API shows it, safe to encode after in.mu is
// released: the counters are copied; in.mu held.
func (s *storedRemediation) view() remediation {
	r := s.Resource
	if ds := r.Properties.DeploymentStatus; ds != nil {
		c := *ds
		r.Properties.DeploymentStatus = &c
	}
	return r
}

// SystemData returns the task's record of creation.
func (s *storedRemediation) SystemData() *systemData { return s.Resource.SystemData }

// checkRemediation validates a task's settings against the limits of
// §2.5 and the assignment it remediates, and fills in the discovery
// mode's default.
func (in *Insights) checkRemediation(name, scope string, p *remediationProps) *arm.Error {
	if p.PolicyAssignmentID == "" {
		return badRequest(CodeInvalidCreateRemediation, "The remediation '%s' request is invalid: the property 'policyAssignmentId' is required.", name)
	}
	switch {
	case p.ResourceDiscoveryMode == "":
		p.ResourceDiscoveryMode = "ExistingNonCompliant"
	case strings.EqualFold(p.ResourceDiscoveryMode, "ExistingNonCompliant"):
		p.ResourceDiscoveryMode = "ExistingNonCompliant"
	case strings.EqualFold(p.ResourceDiscoveryMode, "ReEvaluateCompliance"):
		p.ResourceDiscoveryMode = "ReEvaluateCompliance"
	default:
		return badRequest(CodeInvalidCreateRemediation, "The remediation '%s' request is invalid: the resource discovery mode '%s' is not supported. Supported modes are 'ExistingNonCompliant' and 'ReEvaluateCompliance'.", name, p.ResourceDiscoveryMode)
	}
	if p.ResourceCount != nil && (*p.ResourceCount < 1 || *p.ResourceCount > maxResourceCount) {
		return badRequest(CodeInvalidCreateRemediation, "The remediation '%s' request is invalid: 'resourceCount' must be between 1 and %d.", name, maxResourceCount)
	}
	if p.ParallelDeployments != nil && (*p.ParallelDeployments < 1 || *p.ParallelDeployments > maxParallelDeployments) {
		return badRequest(CodeInvalidCreateRemediation, "The remediation '%s' request is invalid: 'parallelDeployments' must be between 1 and %d.", name, maxParallelDeployments)
	}
	if ft := p.FailureThreshold; ft != nil && ft.Percentage != nil && (*ft.Percentage < 0 || *ft.Percentage > 1 || math.IsNaN(*ft.Percentage)) {
		return badRequest(CodeInvalidCreateRemediation, "The remediation '%s' request is invalid: 'failureThreshold.percentage' must be between 0.0 and 1.0.", name)
	}
	if f := p.Filters; f != nil && f.ResourceIDs != nil {
		switch {
		case len(f.ResourceIDs) == 0:
			return badRequest(CodeInvalidCreateRemediation, "The remediation '%s' request is invalid: 'filters.resourceIds' must not be empty when given.", name)
		case len(f.ResourceIDs) > maxFilterResourceIDs:
			return badRequest(CodeInvalidCreateRemediation, "The remediation '%s' request is invalid: 'filters.resourceIds' may name at most %d resources.", name, maxFilterResourceIDs)
		case p.ResourceDiscoveryMode == "ReEvaluateCompliance":
			return badRequest(CodeInvalidCreateRemediation, "The remediation '%s' request is invalid: the 'resourceIds' filter cannot be used with the resource discovery mode 'ReEvaluateCompliance'.", name)
		}
	}
	a, ok := in.p.assignmentByID(p.PolicyAssignmentID)
	if !ok {
		return notFound(CodePolicyAssignmentNotFound, "The policy assignment '%s' could not be found.", p.PolicyAssignmentID)
	}
	if !within(scope, a.Scope) && !within(a.Scope, scope) {
		return badRequest(CodeInvalidCreateRemediation, "The remediation '%s' request is invalid: the scope '%s' is outside the scope '%s' of policy assignment '%s'.", name, scope, a.Scope, a.ID)
	}
	members, err := in.p.compiled(a)
	if err != nil {
		return badRequest(CodeInvalidCreateRemediation, "The remediation '%s' request is invalid: the policy assignment '%s' cannot be evaluated: %v.", name, a.ID, err)
	}
	set := members[0].setID != ""
	switch {
	case set && p.PolicyDefinitionReferenceID == "":
		return badRequest(CodeInvalidCreateRemediation, "The remediation '%s' request is invalid: the policy assignment '%s' assigns a policy set definition; 'policyDefinitionReferenceId' is required.", name, a.ID)
	case !set && p.PolicyDefinitionReferenceID != "":
		return badRequest(CodeInvalidCreateRemediation, "The remediation '%s' request is invalid: the policy assignment '%s' does not assign a policy set definition; 'policyDefinitionReferenceId' must be empty.", name, a.ID)
	}
	m, ok := memberByRef(members, p.PolicyDefinitionReferenceID)
	if !ok {
		return badRequest(CodeInvalidCreateRemediation, "The remediation '%s' request is invalid: the policy set definition of assignment '%s' has no definition with reference ID '%s'.", name, a.ID, p.PolicyDefinitionReferenceID)
	}
	if !m.def.CanDeploy() {
		return badRequest(CodeInvalidCreateRemediation, "The remediation '%s' request is invalid: policy definition '%s' does not have a 'DeployIfNotExists' or 'Modify' effect.", name, m.definitionID)
	}
	return nil
}

func memberByRef(members []evalMember, ref string) (evalMember, bool) {
	for _, m := range members {
		if strings.EqualFold(m.referenceID, ref) {
			return m, true
		}
	}
	return evalMember{}, false
}

// deleteRemediation deletes a task, canceling it if it runs: 200 with
// the task, or 204 when there was none.
func (in *Insights) deleteRemediation(r *arm.Request) *arm.Error {
	in.mu.Lock()
	s, e := in.lookupRemediation(r)
	if e != nil {
		in.mu.Unlock()
		r.Empty(http.StatusNoContent)
		return nil
	}
	delete(in.remediations, key(s.Resource.ID))
	body := s.view()
	running := !s.terminal()
	in.mu.Unlock()
	if e := in.p.srv.Persist(); e != nil {
		return e
	}
	if running {
		// A running task that is deleted stops where it is.
		in.p.ev.emit(Event{Time: r.Now(), Kind: EventRemediation, AssignmentID: body.Properties.PolicyAssignmentID, ResourceID: body.ID, State: RemediationCanceled})
	}
	r.JSON(http.StatusOK, body)
	return nil
}

// cancelRemediation asks a running task to stop: it answers with the task
// Cancelling and stops before its next deployments.
func (in *Insights) cancelRemediation(r *arm.Request) *arm.Error {
	in.mu.Lock()
	s, e := in.lookupRemediation(r)
	if e != nil {
		in.mu.Unlock()
		return e
	}
	if s.terminal() {
		in.mu.Unlock()
		return badRequest(CodeInvalidCancelRemediation, "The remediation '%s' has already finished with state '%s' and cannot be canceled.", s.Resource.Name, s.Resource.Properties.ProvisioningState)
	}
	in.setStateLocked(s, RemediationCancelling, r.Now())
	body := s.view()
	in.mu.Unlock()
	if e := in.p.srv.Persist(); e != nil {
		return e
	}
	in.p.ev.emit(Event{Time: r.Now(), Kind: EventRemediation, AssignmentID: body.Properties.PolicyAssignmentID, ResourceID: body.ID, State: RemediationCancelling})
	r.JSON(http.StatusOK, body)
	return nil
}

// listRemediations lists the tasks at and below the request's scope;
// $filter takes PolicyAssignmentId and PolicyDefinitionReferenceId.
func (in *Insights) listRemediations(r *arm.Request) *arm.Error {
	f, e := parseFilter(r, "PolicyAssignmentId", "PolicyDefinitionReferenceId")
	if e != nil {
		return e
	}
	scope := scopeOf(r)
	in.mu.Lock()
	var items []any
	for _, k := range slices.Sorted(maps.Keys(in.remediations)) {
		s := in.remediations[k]
		p := s.Resource.Properties
		if !within(s.Scope, scope) {
			continue
		}
		if v, ok := f.eq["policyassignmentid"]; ok && key(v) != key(p.PolicyAssignmentID) {
			continue
		}
		if v, ok := f.eq["policydefinitionreferenceid"]; ok && !strings.EqualFold(v, p.PolicyDefinitionReferenceID) {
			continue
		}
		items = append(items, s.view())
	}
	in.mu.Unlock()
	return page(r, items)
}

// listRemediationDeployments is listDeployments: POST for the first page,
// GET for the next ones.
func (in *Insights) listRemediationDeployments(r *arm.Request) *arm.Error {
	in.mu.Lock()
	s, e := in.lookupRemediation(r)
	if e != nil {
		in.mu.Unlock()
		return e
	}
	items := make([]any, 0, len(s.Deployments))
	for _, d := range s.Deployments {
		items = append(items, d)
	}
	in.mu.Unlock()
	return page(r, items)
}

// setStateLocked changes a task's provisioning state; in.mu held.
func (in *Insights) setStateLocked(s *storedRemediation, state string, now time.Time) {
	now = now.UTC()
	s.Resource.Properties.ProvisioningState = state
	s.Resource.Properties.LastUpdatedOn = &now
}

// ---- running a task on the clock

// activeLocked returns task s, scheduled under key k, if it is to go on,
// with in.mu held. A task that is gone, replaced by a new one of the same
// name, or finished gives nil, and one being canceled ends Canceled and
// gives nil; in.mu is released for nil.
func (in *Insights) activeLocked(k string, s *storedRemediation) *storedRemediation {
	in.mu.Lock()
	if in.remediations[k] != s || s.terminal() {
		in.mu.Unlock()
		return nil
	}
	if s.Resource.Properties.ProvisioningState == RemediationCancelling {
		in.finishLocked(s, RemediationCanceled, "")
		in.mu.Unlock()
		in.persistAndEmit(s)
		return nil
	}
	return s
}

// discover finds the resources a task deploys to, after the start delay:
// the non-compliant ones of the latest evaluation (ExistingNonCompliant)
// or of a fresh one (ReEvaluateCompliance), narrowed by the task's scope
// and filters and cut at resourceCount.
func (in *Insights) discover(k string, task *storedRemediation) {
	s := in.activeLocked(k, task)
	if s == nil {
		return
	}
	p := s.Resource.Properties
	scope := s.Scope
	in.setStateLocked(s, RemediationEvaluating, in.p.clk.Now())
	in.mu.Unlock()
	in.p.ev.emit(Event{Time: in.p.clk.Now(), Kind: EventRemediation, AssignmentID: p.PolicyAssignmentID, ResourceID: s.Resource.ID, State: RemediationEvaluating})

	a, ok := in.p.assignmentByID(p.PolicyAssignmentID)
	if !ok {
		in.fail(k, s, fmt.Sprintf("The policy assignment '%s' no longer exists.", p.PolicyAssignmentID))
		return
	}
	if p.ResourceDiscoveryMode == "ReEvaluateCompliance" {
		for _, cl := range in.p.eval.clustersIn(scope) {
			in.p.eval.evaluate(a, cl, false)
		}
	}
	var targets []string
	evaluated := false
	for _, st := range in.p.States() {
		if key(st.PolicyAssignmentID) != key(a.ID) || !strings.EqualFold(st.PolicyDefinitionReferenceID, p.PolicyDefinitionReferenceID) {
			continue
		}
		evaluated = true
		if st.ComplianceState != engine.NonCompliant || !within(st.ResourceID, scope) || !covers(a, st.ResourceID) || !p.Filters.match(st) {
			continue
		}
		targets = append(targets, st.ResourceID)
	}
	if !evaluated && p.ResourceDiscoveryMode != "ReEvaluateCompliance" {
		// Azure's answer when there is no evaluation to work from
		// (Azure/Enterprise-Scale#990). A re-evaluation that found
		// nothing in scope has nothing to deploy.
		in.fail(k, s, "No policy evaluation result was found. The policy assignment's exclusions may have changed or it no longer exists. Please retry the remediation with 'ResourceDiscoveryMode' set to 'ReEvaluateCompliance'.")
		return
	}
	limit := defaultResourceCount
	if p.ResourceCount != nil {
		limit = int(*p.ResourceCount)
	}
	if len(targets) > limit {
		targets = targets[:limit]
	}
	in.mu.Lock()
	if in.remediations[k] != s {
		in.mu.Unlock()
		return
	}
	s.Pending, s.Discovered = targets, true
	s.Resource.Properties.DeploymentStatus.TotalDeployments = int32(len(targets))
	in.mu.Unlock()
	in.persist()
	in.p.clk.AfterFunc(0, func() { in.runBatch(k, s) })
}

// match reports whether a state's resource passes the task's filters.
func (f *remediationFilters) match(st State) bool {
	if f == nil {
		return true
	}
	if len(f.Locations) > 0 && !slices.ContainsFunc(f.Locations, func(l string) bool { return strings.EqualFold(normLocation(l), normLocation(st.ResourceLocation)) }) {
		return false
	}
	if len(f.ResourceIDs) > 0 && !slices.ContainsFunc(f.ResourceIDs, func(id string) bool { return key(id) == key(st.ResourceID) }) {
		return false
	}
	return true
}

func normLocation(l string) string { return strings.ReplaceAll(strings.ToLower(l), " ", "") }

// runBatch starts up to parallelDeployments deployments; they finish
// RemediationDeployment later, and the next batch follows.
func (in *Insights) runBatch(k string, task *storedRemediation) {
	s := in.activeLocked(k, task)
	if s == nil {
		return
	}
	if len(s.Pending) == 0 {
		in.completeLocked(s)
		in.mu.Unlock()
		in.persistAndEmit(s)
		return
	}
	n := defaultParallelDeployments
	if pd := s.Resource.Properties.ParallelDeployments; pd != nil {
		n = int(*pd)
	}
	n = min(n, len(s.Pending))
	batch := slices.Clone(s.Pending[:n])
	s.Pending = s.Pending[n:]
	now := in.p.clk.Now().UTC()
	first := len(s.Deployments)
	for _, id := range batch {
		s.Deployments = append(s.Deployments, remediationDeployment{RemediatedResourceID: id, Status: "Running", CreatedOn: now, LastUpdatedOn: now})
	}
	in.mu.Unlock()
	in.p.clk.AfterFunc(in.p.eval.timing.RemediationDeployment, func() { in.finishBatch(k, s, first, batch) })
}

// finishBatch runs a batch's deployments as the assignment's identity and
// counts them; a failure rate above failureThreshold ends the task.
func (in *Insights) finishBatch(k string, s *storedRemediation, first int, batch []string) {
	in.mu.Lock()
	if in.remediations[k] != s {
		in.mu.Unlock()
		return
	}
	p := s.Resource.Properties
	in.mu.Unlock()
	a, assigned := in.p.assignmentByID(p.PolicyAssignmentID)
	var m evalMember
	var compileErr error
	if assigned {
		members, err := in.p.compiled(a)
		if err == nil {
			var ok bool
			if m, ok = memberByRef(members, p.PolicyDefinitionReferenceID); !ok {
				err = fmt.Errorf("the definition reference '%s' is gone from the assignment's initiative", p.PolicyDefinitionReferenceID)
			}
		}
		compileErr = err
	}
	results := make([]remediationDeployment, len(batch))
	for i, id := range batch {
		rd := remediationDeployment{RemediatedResourceID: id}
		var d Deployment
		switch cl, ok := in.p.eval.get(id, clusterAPIVersion); {
		case !assigned:
			d = Deployment{Error: fmt.Sprintf("The policy assignment '%s' no longer exists.", p.PolicyAssignmentID), Code: CodePolicyAssignmentNotFound}
		case compileErr != nil:
			d = Deployment{Error: compileErr.Error(), Code: "InvalidTemplate"}
		case !ok:
			d = Deployment{Error: fmt.Sprintf("The resource '%s' was not found.", id), Code: arm.CodeResourceNotFound}
		default:
			rd.ResourceLocation = cl.Location()
			d = in.p.eval.deploy(a, m, cl, s.Resource.ID)
		}
		rd.DeploymentID = deploymentID(id, d.Name, s.Resource.ID)
		if d.Error != "" {
			rd.Status = "Failed"
			rd.Error = &deploymentError{Code: d.Code, Message: d.Error}
		} else {
			rd.Status = "Succeeded"
		}
		results[i] = rd
	}
	now := in.p.clk.Now().UTC()
	in.mu.Lock()
	if in.remediations[k] != s {
		in.mu.Unlock()
		return
	}
	st := s.Resource.Properties.DeploymentStatus
	authFailed := ""
	for i, rd := range results {
		if first+i >= len(s.Deployments) {
			break
		}
		rd.CreatedOn = s.Deployments[first+i].CreatedOn
		rd.LastUpdatedOn = now
		s.Deployments[first+i] = rd
		if rd.Status == "Succeeded" {
			st.SuccessfulDeployments++
		} else {
			st.FailedDeployments++
			if rd.Error.Code == "AuthorizationFailed" && authFailed == "" {
				authFailed = rd.DeploymentID
			}
		}
	}
	s.Resource.Properties.LastUpdatedOn = &now
	if authFailed != "" {
		// The task's own status for an identity without the role
		// (azure-policy-spec §3.4, lab transcript).
		s.Resource.Properties.StatusMessage = fmt.Sprintf("Evaluation of DeployIfNotExists policy was unsuccessful. The policy assignment '%s' resource identity does not have the necessary permissions to create deployment '%s'.", p.PolicyAssignmentID, authFailed)
	}
	threshold := 1.0
	if ft := s.Resource.Properties.FailureThreshold; ft != nil && ft.Percentage != nil {
		threshold = *ft.Percentage
	}
	// The failure rate is of the deployments the task plans (inferred:
	// the SDK's text, "the percentage of failed deployments exceeds this
	// threshold", does not say of which), so an early failure does not
	// stop a large task at once.
	stop := st.TotalDeployments > 0 && float64(st.FailedDeployments)/float64(st.TotalDeployments) > threshold
	if stop {
		in.finishLocked(s, RemediationFailed, fmt.Sprintf("The remediation stopped: %d of %d deployments failed, above the failure threshold of %g%%.", st.FailedDeployments, st.TotalDeployments, threshold*100))
		s.Pending = nil
	}
	in.mu.Unlock()
	if stop {
		in.persistAndEmit(s)
		return
	}
	in.persist()
	in.runBatch(k, s)
}

// deploymentID is a deployment's id as listDeployments shows it, in the
// remediated resource's group.
func deploymentID(resourceID, name, remediation string) string {
	sub, rg := ScopeParts(resourceID)
	if name == "" {
		name = guidFor("deployment:" + remediation + ":" + resourceID)
	}
	return strings.ToLower("/subscriptions/"+sub+"/resourcegroups/"+rg) + "/providers/microsoft.resources/deployments/" + name
}

// completeLocked ends a task whose deployments are all done: Succeeded,
// or Failed when any failed (inferred).
func (in *Insights) completeLocked(s *storedRemediation) {
	st := s.Resource.Properties.DeploymentStatus
	if st.FailedDeployments > 0 {
		msg := s.Resource.Properties.StatusMessage
		if msg == "" {
			msg = fmt.Sprintf("%d of %d deployments failed.", st.FailedDeployments, st.TotalDeployments)
		}
		in.finishLocked(s, RemediationFailed, msg)
		return
	}
	in.finishLocked(s, RemediationSucceeded, "")
}

func (in *Insights) finishLocked(s *storedRemediation, state, msg string) {
	in.setStateLocked(s, state, in.p.clk.Now())
	if msg != "" {
		s.Resource.Properties.StatusMessage = msg
	}
}

// fail ends a task before it deployed anything.
func (in *Insights) fail(k string, s *storedRemediation, msg string) {
	in.mu.Lock()
	if in.remediations[k] != s {
		in.mu.Unlock()
		return
	}
	in.finishLocked(s, RemediationFailed, msg)
	s.Discovered = true
	in.mu.Unlock()
	in.persistAndEmit(s)
}

func (in *Insights) persist() {
	if e := in.p.srv.Persist(); e != nil {
		in.p.log.Error("cannot persist remediation state", "err", e.Message)
	}
}

// persistAndEmit persists a task that changed state and reports it.
func (in *Insights) persistAndEmit(s *storedRemediation) {
	in.persist()
	in.mu.Lock()
	p := s.Resource.Properties
	ev := Event{Time: in.p.clk.Now(), Kind: EventRemediation, AssignmentID: p.PolicyAssignmentID, ResourceID: s.Resource.ID, State: p.ProvisioningState}
	if p.ProvisioningState == RemediationFailed {
		ev.Error = p.StatusMessage
	}
	in.mu.Unlock()
	if ev.Error != "" {
		in.p.log.Warn("policy remediation failed", "remediation", ev.ResourceID, "err", ev.Error)
	} else {
		in.p.log.Info("policy remediation finished", "remediation", ev.ResourceID, "state", ev.State)
	}
	in.p.ev.emit(ev)
}

// resume continues restored tasks that had not finished; deployments
// that were running when the state was saved run again.
func (in *Insights) resume() {
	in.mu.Lock()
	type restored struct {
		k          string
		s          *storedRemediation
		discovered bool
		assignment string
	}
	var tasks []restored
	for k, s := range in.remediations {
		if s.terminal() {
			continue
		}
		tasks = append(tasks, restored{k, s, s.Discovered, s.Resource.Properties.PolicyAssignmentID})
		var again []string
		s.Deployments = slices.DeleteFunc(s.Deployments, func(d remediationDeployment) bool {
			if d.Status == "Running" {
				again = append(again, d.RemediatedResourceID)
				return true
			}
			return false
		})
		s.Pending = append(again, s.Pending...)
	}
	// Deployment names go on from the highest one restored, so that ids
	// in listDeployments stay unique across a restart.
	highest := 0
	for _, s := range in.remediations {
		for _, d := range s.Deployments {
			if _, n, ok := strings.Cut(d.DeploymentID, "/PolicyDeployment_"); ok {
				if v, err := strconv.Atoi(n); err == nil && v > highest {
					highest = v
				}
			}
		}
	}
	in.mu.Unlock()
	in.p.eval.mu.Lock()
	in.p.eval.seq = max(in.p.eval.seq, highest)
	in.p.eval.mu.Unlock()
	slices.SortFunc(tasks, func(a, b restored) int { return strings.Compare(a.k, b.k) })
	for _, t := range tasks {
		if t.discovered {
			in.p.clk.AfterFunc(0, func() { in.runBatch(t.k, t.s) })
			continue
		}
		// Policy states are not persisted: the assignment's states are
		// made again first, in the same task, so that discovery does not
		// race the evaluator's own re-evaluation after a restart.
		in.p.clk.AfterFunc(0, func() {
			in.p.eval.evaluateAssignment(t.assignment)
			in.discover(t.k, t.s)
		})
	}
}
