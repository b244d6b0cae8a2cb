package policy

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gitopsim/gitopsim/sim/arm"
	"github.com/gitopsim/gitopsim/sim/clock"
	"github.com/gitopsim/gitopsim/sim/policy/engine"
)

// Timing is how long Azure Policy takes to act, as documented
// (azure-policy-spec §3.1: get-compliance-data.md,
// effect-deploy-if-not-exists.md). All delays are on the simulator's
// clock.
type Timing struct {
	// Assignment is how long a new or changed assignment takes to apply
	// to its scope, after which its scope is evaluated (no deployment).
	Assignment time.Duration
	// Resource is how long after a resource is created or updated its
	// compliance is evaluated again.
	Resource time.Duration
	// Deploy is a DeployIfNotExists rule's delay after a resource is
	// created or updated (evaluationDelay's default, PT10M).
	Deploy time.Duration
	// Cycle is the standard evaluation cycle of every assignment; 0
	// turns it off.
	Cycle time.Duration
	// RemediationStart is how long a remediation task takes from
	// creation to its first deployments (discovery of the non-compliant
	// resources; with ReEvaluateCompliance also their evaluation).
	RemediationStart time.Duration
	// RemediationDeployment is how long one deployment of a remediation
	// takes; parallelDeployments of them run at once.
	RemediationDeployment time.Duration
}

// DefaultTiming is the documented timing: 5 minutes for an assignment,
// 15 for a changed resource, 10 for a deployment, a full cycle every 24
// hours. A remediation task starts deploying after 2 minutes and each
// deployment takes 1 (inferred: the docs say a remediation "typically
// takes 10 to 20 minutes", use-azure-policy.md; with these, 50 clusters
// at the default parallelism of 10 are deployed after 7 minutes and
// evaluated Compliant 15 minutes after their deployment).
func DefaultTiming() Timing {
	return Timing{Assignment: 5 * time.Minute, Resource: 15 * time.Minute, Deploy: 10 * time.Minute, Cycle: 24 * time.Hour,
		RemediationStart: 2 * time.Minute, RemediationDeployment: time.Minute}
}

// Timing profiles by name, for flags and scenario files.
const (
	TimingDocumented = "documented"
	TimingImmediate  = "immediate"
)

// TimingProfile returns the timing a profile names: documented
// (DefaultTiming) or immediate (ImmediateTiming).
func TimingProfile(name string) (Timing, error) {
	switch name {
	case TimingDocumented:
		return DefaultTiming(), nil
	case TimingImmediate:
		return ImmediateTiming(), nil
	}
	return Timing{}, fmt.Errorf("unknown policy timing %q: valid values are %s, %s", name, TimingDocumented, TimingImmediate)
}

// ImmediateTiming is the test mode: everything happens at the next tick
// of the clock. The daily cycle stays, so that states stay within the
// one-day window queries default to.
func ImmediateTiming() Timing { return Timing{Cycle: 24 * time.Hour} }

// State is one policy state: the latest evaluation of one resource
// against one assignment (policyStates' latest record).
type State struct {
	Timestamp          time.Time
	ResourceID         string
	ResourceType       string
	ResourceLocation   string
	ResourceGroup      string
	SubscriptionID     string
	PolicyAssignmentID string
	PolicyDefinitionID string
	// PolicySetDefinitionID and PolicyDefinitionReferenceID name the
	// initiative and the definition's place in it; "" for a plain
	// assignment.
	PolicySetDefinitionID       string
	PolicyDefinitionReferenceID string
	// PolicyDefinitionAction is the effect, lower-case
	// ("deployifnotexists").
	PolicyDefinitionAction string
	ComplianceState        engine.ComplianceState
	// IfNotExistsDetails names the related resource that was checked.
	IfNotExistsDetails *engine.IfNotExistsDetails
}

// Deployment is what one DeployIfNotExists action did for one resource.
type Deployment struct {
	// Name is the deployment's name, PolicyDeployment_<n>.
	Name               string
	Time               time.Time
	PolicyAssignmentID string
	ResourceID         string
	// Remediation is the remediation task's id, "" for an automatic
	// deployment after a resource write.
	Remediation string
	// DeployedIDs are the resources it PUT.
	DeployedIDs []string
	// Error is why it failed ("" when it succeeded): a missing role, or
	// the ARM error of a PUT.
	Error string
	// Code is the error's ARM code ("" when it succeeded).
	Code string
}

// evaluator runs Azure Policy's evaluation on the clock: it reacts to
// writes on the ARM server, as Azure reacts to resource create and update
// events, and to assignment changes, and runs the daily cycle.
type evaluator struct {
	p      *Provider
	eng    *engine.Engine
	timing Timing

	mu          sync.Mutex
	states      map[string]*State // by lower-case assignment id + "|" + resource id
	deployments []Deployment
	// history is every evaluation's state, oldest first, for
	// policyStates/default.
	history []State
	seq     int // deployments made, for their names
	// effective is when each assignment (lower-case id) took effect: a
	// resource event before that deploys nothing for it.
	effective map[string]time.Time
	ticker    clock.Ticker
}

func newEvaluator(p *Provider, t Timing, eng *engine.Engine) *evaluator {
	return &evaluator{p: p, eng: eng, timing: t, states: map[string]*State{}, effective: map[string]time.Time{}}
}

// start subscribes to the ARM server's writes and starts the daily cycle.
func (e *evaluator) start() {
	e.p.srv.Watch(e.onChange)
	if e.timing.Cycle > 0 {
		e.ticker = e.p.clk.Every(e.timing.Cycle, e.cycle)
	}
	// Assignments restored from a state file are in force already.
	now := e.p.clk.Now()
	for _, a := range e.p.Assignments() {
		e.effective[strings.ToLower(a.ID)] = now
		e.p.clk.AfterFunc(0, func() { e.evaluateAssignment(a.ID) })
	}
}

func (e *evaluator) stop() {
	if e.ticker != nil {
		e.ticker.Stop()
	}
}

const (
	typeConnectedCluster = "microsoft.kubernetes/connectedclusters"
	typeManagedCluster   = "microsoft.containerservice/managedclusters"
	typeConfiguration    = "microsoft.kubernetesconfiguration/sourcecontrolconfigurations"
	typeAssignment       = "microsoft.authorization/policyassignments"
)

// onChange schedules what Azure Policy does after an acknowledged write.
func (e *evaluator) onChange(ch arm.ResourceChange) {
	id := ch.ID
	switch typ := resourceType(id); {
	case typ == typeAssignment:
		e.p.clk.AfterFunc(e.timing.Assignment, func() { e.evaluateAssignment(id) })
	case typ == typeConnectedCluster || typ == typeManagedCluster:
		if ch.Method == http.MethodDelete {
			e.forget(id)
			return
		}
		e.p.clk.AfterFunc(e.timing.Deploy, func() { e.evaluateResource(id, ch.Time) })
		e.p.clk.AfterFunc(e.timing.Resource, func() { e.evaluateResource(id, time.Time{}) })
	case typ == typeConfiguration:
		// A change of the related resource is a change of the cluster's
		// compliance, seen at the cluster's next evaluation.
		parent, _, _ := strings.Cut(strings.ToLower(id), "/providers/microsoft.kubernetesconfiguration/")
		if parent != strings.ToLower(id) {
			parent = id[:len(parent)]
			e.p.clk.AfterFunc(e.timing.Resource, func() { e.evaluateResource(parent, time.Time{}) })
		}
	}
}

// cycle is the standard evaluation cycle: every assignment, no deployment.
func (e *evaluator) cycle() {
	for _, a := range e.p.Assignments() {
		e.evaluateAssignment(a.ID)
	}
}

// evaluateAssignment evaluates every cluster in an assignment's scope; a
// deleted assignment loses its states.
func (e *evaluator) evaluateAssignment(id string) {
	a, ok := e.p.assignmentByID(id)
	e.mu.Lock()
	_, known := e.effective[strings.ToLower(id)]
	if ok && !known {
		e.effective[strings.ToLower(id)] = e.p.clk.Now()
	}
	e.mu.Unlock()
	if ok && !known {
		e.p.ev.emit(Event{Time: e.p.clk.Now(), Kind: EventAssignmentEffective, AssignmentID: a.ID})
	}
	if !ok {
		e.mu.Lock()
		delete(e.effective, strings.ToLower(id))
		for k := range e.states {
			if strings.HasPrefix(k, strings.ToLower(id)+"|") {
				delete(e.states, k)
			}
		}
		e.mu.Unlock()
		return
	}
	for _, cl := range e.clustersIn(a.Scope) {
		e.evaluate(a, cl, false)
	}
}

// evaluateResource evaluates one cluster against every assignment that
// covers it. For the DeployIfNotExists run that follows a create or update
// (changed is its time; zero for a plain evaluation) it deploys where the
// cluster is non-compliant, for assignments in effect at that time.
func (e *evaluator) evaluateResource(id string, changed time.Time) {
	cl, ok := e.get(id, clusterAPIVersion)
	if !ok {
		return
	}
	for _, a := range e.p.Assignments() {
		if !covers(a, id) {
			continue
		}
		deploy := false
		if !changed.IsZero() {
			e.mu.Lock()
			at, known := e.effective[strings.ToLower(a.ID)]
			e.mu.Unlock()
			deploy = known && !at.After(changed)
		}
		e.evaluate(a, cl, deploy)
	}
}

// evaluate evaluates one cluster against one assignment (every member
// definition of an initiative) and records the states; with deploy, a
// non-compliant DINE rule deploys.
func (e *evaluator) evaluate(a Assignment, cl engine.Resource, deploy bool) {
	if !covers(a, cl.ID()) {
		return
	}
	members, err := e.p.compiled(a)
	if err != nil {
		e.p.log.Warn("policy evaluation failed", "assignment", a.ID, "resource", cl.ID(), "err", err)
		return
	}
	for _, m := range members {
		res, ok := e.evaluateMember(a, m, cl)
		if ok && deploy && res.Effect == "deployifnotexists" && res.ComplianceState == engine.NonCompliant && a.EnforcementMode != "DoNotEnforce" {
			e.deploy(a, m, cl, "")
		}
	}
}

// evaluateMember evaluates one definition of an assignment for a cluster
// and records the state; ok is false when the rule does not apply or
// could not be evaluated.
func (e *evaluator) evaluateMember(a Assignment, m evalMember, cl engine.Resource) (*engine.Result, bool) {
	res, err := e.eng.Evaluate(m.def, m.params, engine.Input{Resource: cl, Related: e.related})
	if err != nil {
		e.p.log.Warn("policy evaluation failed", "assignment", a.ID, "definition", m.definitionID, "resource", cl.ID(), "err", err)
		return nil, false
	}
	k := stateKey(a.ID, m.referenceID, cl.ID())
	if !res.Applicable {
		e.mu.Lock()
		delete(e.states, k)
		e.mu.Unlock()
		return res, false
	}
	sub, rg := ScopeParts(cl.ID())
	st := &State{
		Timestamp: e.p.clk.Now(), ResourceID: cl.ID(), ResourceType: cl.Type(), ResourceLocation: cl.Location(),
		ResourceGroup: rg, SubscriptionID: sub, PolicyAssignmentID: a.ID, PolicyDefinitionID: m.definitionID,
		PolicySetDefinitionID: m.setID, PolicyDefinitionReferenceID: m.referenceID,
		PolicyDefinitionAction: res.Effect, ComplianceState: res.ComplianceState, IfNotExistsDetails: res.IfNotExistsDetails,
	}
	e.mu.Lock()
	old := e.states[k]
	e.states[k] = st
	e.history = append(e.history, *st)
	// Azure keeps states for 90 days; the simulator drops older ones in
	// chunks so that the history does not grow without bound.
	if cut := st.Timestamp.Add(-retention); len(e.history) > 0 && e.history[0].Timestamp.Before(cut.Add(-24*time.Hour)) {
		e.history = slices.DeleteFunc(e.history, func(h State) bool { return h.Timestamp.Before(cut) })
	}
	e.mu.Unlock()
	if old == nil || old.ComplianceState != st.ComplianceState {
		e.p.ev.emit(Event{Time: st.Timestamp, Kind: EventCompliance, AssignmentID: a.ID, ResourceID: cl.ID(), State: string(st.ComplianceState)})
	}
	return res, true
}

func stateKey(assignmentID, referenceID, resourceID string) string {
	return strings.ToLower(assignmentID) + "|" + strings.ToLower(referenceID) + "|" + strings.ToLower(resourceID)
}

// deploy runs a DeployIfNotExists deployment as the assignment's managed
// identity, which must hold every role the rule names at the resource's
// scope (Azure grants none by itself: §3.4). remediation names the task
// it runs for, "" for an automatic deployment.
func (e *evaluator) deploy(a Assignment, m evalMember, cl engine.Resource, remediation string) (d Deployment) {
	e.mu.Lock()
	e.seq++
	d = Deployment{Name: fmt.Sprintf("PolicyDeployment_%d", e.seq), Time: e.p.clk.Now(), PolicyAssignmentID: a.ID, ResourceID: cl.ID(), Remediation: remediation}
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		e.deployments = append(e.deployments, d)
		e.mu.Unlock()
		e.p.ev.emit(Event{Time: d.Time, Kind: EventDeployment, AssignmentID: a.ID, ResourceID: d.ResourceID, Remediation: remediation, Error: d.Error})
		if d.Error != "" {
			e.p.log.Warn("policy deployment failed", "assignment", a.ID, "resource", d.ResourceID, "remediation", remediation, "err", d.Error)
		} else {
			e.p.log.Info("policy deployment succeeded", "assignment", a.ID, "resource", d.ResourceID, "remediation", remediation, "deployed", d.DeployedIDs)
		}
	}()
	if a.PrincipalID == "" {
		d.Error, d.Code = fmt.Sprintf("The policy assignment '%s' has no managed identity to deploy with.", a.ID), "MissingManagedIdentity"
		return d
	}
	for _, role := range roleIDs(m.def) {
		if !e.p.HasRole(a.PrincipalID, role, cl.ID()) {
			// The error a deployment without the role gets from ARM
			// (Azure/manage-azure-policy#23): its validation is refused.
			d.Error = fmt.Sprintf("The client '%s' with object id '%s' does not have authorization to perform action 'Microsoft.Resources/deployments/validate/action' over scope '%s' or the scope is invalid. If access was recently granted, please refresh your credentials.",
				a.PrincipalID, a.PrincipalID, resourceGroupOf(cl.ID())+"/providers/Microsoft.Resources/deployments/"+d.Name)
			d.Code = "AuthorizationFailed"
			return d
		}
	}
	dep, err := e.eng.Deployment(m.def, m.params, engine.Input{Resource: cl, Related: e.related})
	if err != nil {
		d.Error = err.Error()
		d.Code = "InvalidTemplate"
		return d
	}
	for _, r := range dep.Resources {
		body, err := json.Marshal(r.Body)
		if err != nil {
			d.Error, d.Code = err.Error(), "InvalidTemplate"
			return d
		}
		code, out := e.p.srv.Dispatch(context.Background(), http.MethodPut, r.ID+"?api-version="+url.QueryEscape(r.APIVersion), body, a.PrincipalID)
		if code >= 300 {
			d.Code, d.Error = armError(out, code, r.ID)
			return d
		}
		d.DeployedIDs = append(d.DeployedIDs, r.ID)
	}
	return d
}

// armError is the code and message of a failed PUT's ARM error
// envelope, the shape deployments report (ErrorDefinition), with any
// credentials in URLs the resource provider repeated back taken out.
func armError(body []byte, status int, id string) (code, message string) {
	var env struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if json.Unmarshal(body, &env) != nil || env.Error.Code == "" {
		return "DeploymentFailed", fmt.Sprintf("The deployment of '%s' failed with status %d.", id, status)
	}
	return env.Error.Code, urlCredentials.ReplaceAllString(env.Error.Message, "$1***@")
}

// urlCredentials matches the user information of a URL.
var urlCredentials = regexp.MustCompile(`(://)[^/@\s'"]+@`)

// related reads the resources a rule's existence condition looks at.
func (e *evaluator) related(q engine.RelatedQuery) ([]engine.Resource, error) {
	if q.ID == "" {
		return nil, nil // the GitOps built-ins always name their resource
	}
	r, ok := e.get(q.ID, "2022-03-01")
	if !ok {
		return nil, nil
	}
	return []engine.Resource{r}, nil
}

// get reads a resource as Azure Policy's backend does. A resource that
// is not there (404) is what an existence condition asks about; any
// other failure makes the evaluation see it missing too, and is logged,
// since it is gitopsim's own.
func (e *evaluator) get(id, apiVersion string) (engine.Resource, bool) {
	code, body := e.p.srv.Dispatch(context.Background(), http.MethodGet, id+"?api-version="+apiVersion, nil, "")
	switch code {
	case http.StatusOK:
	case http.StatusNotFound:
		return nil, false
	default:
		errCode, msg := armError(body, code, id)
		e.p.log.Warn("policy evaluation cannot read a resource; it counts as missing", "resource", id, "status", code, "code", errCode, "message", msg)
		return nil, false
	}
	r, err := engine.ParseResource(body)
	if err != nil {
		e.p.log.Warn("policy evaluation cannot parse a resource; it counts as missing", "resource", id, "err", err)
		return nil, false
	}
	return r, true
}

// clustersIn lists the clusters of a scope.
func (e *evaluator) clustersIn(scope string) []engine.Resource {
	sub, rg := ScopeParts(scope)
	path := "/subscriptions/" + sub + "/resources"
	if rg != "" {
		path = "/subscriptions/" + sub + "/resourceGroups/" + rg + "/resources"
	}
	var out []engine.Resource
	next := path + "?api-version=2021-04-01&%24top=1000"
	for next != "" {
		code, body := e.p.srv.Dispatch(context.Background(), http.MethodGet, next, nil, "")
		if code != http.StatusOK {
			e.p.log.Warn("policy evaluation cannot list resources", "scope", scope, "status", code)
			return out
		}
		var page struct {
			Value []struct {
				ID   string `json:"id"`
				Type string `json:"type"`
			} `json:"value"`
			NextLink string `json:"nextLink"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			e.p.log.Warn("policy evaluation cannot read the resource list", "scope", scope, "err", err)
			return out
		}
		for _, v := range page.Value {
			if t := strings.ToLower(v.Type); t == typeConnectedCluster || t == typeManagedCluster {
				if r, ok := e.get(v.ID, clusterAPIVersion); ok {
					out = append(out, r)
				}
			}
		}
		next = ""
		if page.NextLink != "" {
			if u, err := url.Parse(page.NextLink); err == nil {
				next = u.RequestURI()
			}
		}
	}
	return out
}

func (e *evaluator) forget(resourceID string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for k := range e.states {
		if strings.HasSuffix(k, "|"+strings.ToLower(resourceID)) {
			delete(e.states, k)
		}
	}
}

// retention is how long policy states are kept (get-compliance-data.md:
// 90 days).
const retention = 90 * 24 * time.Hour

// History returns every evaluation's state of the last 90 days, oldest
// first: what policyStates/default reports.
func (p *Provider) History() []State {
	e := p.eval
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.history)
}

// States returns the latest policy states, ordered by assignment and
// resource.
func (p *Provider) States() []State {
	e := p.eval
	e.mu.Lock()
	defer e.mu.Unlock()
	keys := make([]string, 0, len(e.states))
	for k := range e.states {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]State, 0, len(keys))
	for _, k := range keys {
		out = append(out, *e.states[k])
	}
	return out
}

// Deployments returns what DeployIfNotExists did, oldest first.
func (p *Provider) Deployments() []Deployment {
	e := p.eval
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.deployments)
}

// covers reports whether an assignment's scope holds a resource and none
// of its notScopes does.
func covers(a Assignment, resourceID string) bool {
	in := func(scope string) bool {
		s := strings.ToLower(strings.TrimSuffix(scope, "/"))
		r := strings.ToLower(resourceID)
		return r == s || strings.HasPrefix(r, s+"/")
	}
	if !in(a.Scope) {
		return false
	}
	for _, n := range a.NotScopes {
		if in(n) {
			return false
		}
	}
	return true
}

// resourceType is the type of a resource id ("namespace/type[/child]"),
// lower-case; "" for subscriptions and resource groups.
func resourceType(id string) string {
	segs := strings.Split(strings.Trim(strings.ToLower(id), "/"), "/")
	for i := len(segs) - 2; i >= 0; i-- {
		if segs[i] == "providers" && i+2 < len(segs) {
			return segs[i+1] + "/" + segs[i+2]
		}
	}
	return ""
}

// ScopeParts returns the subscription and resource group an ARM id names
// (either may be "").
func ScopeParts(id string) (sub, rg string) {
	segs := strings.Split(strings.Trim(id, "/"), "/")
	for i := 0; i+1 < len(segs); i++ {
		switch strings.ToLower(segs[i]) {
		case "subscriptions":
			if sub == "" {
				sub = segs[i+1]
			}
		case "resourcegroups":
			if rg == "" {
				rg = segs[i+1]
			}
		}
	}
	return sub, rg
}

func resourceGroupOf(id string) string {
	sub, rg := ScopeParts(id)
	return "/subscriptions/" + sub + "/resourceGroups/" + rg
}

// clusterAPIVersion is the api-version clusters are read in for
// evaluation: one that both cluster types accept and whose shape has what
// the GitOps rules read (type, location, properties).
const clusterAPIVersion = "2024-01-01"

func roleIDs(def *engine.Definition) []string {
	if def.Rule == nil || def.Rule.Details == nil {
		return nil
	}
	return def.Rule.Details.RoleDefinitionIDs
}

// assignmentByID returns an assignment by id.
func (p *Provider) assignmentByID(id string) (Assignment, bool) {
	for _, a := range p.Assignments() {
		if strings.EqualFold(a.ID, id) {
			return a, true
		}
	}
	return Assignment{}, false
}

// evalMember is one policy definition an assignment evaluates: the assigned
// definition itself, or one definition of an assigned initiative.
type evalMember struct {
	definitionID string
	// setID and referenceID name the initiative and the definition's
	// reference in it; "" for a plain assignment.
	setID, referenceID string
	def                *engine.Definition
	params             map[string]any
}

// compiled parses the definitions an assignment evaluates with the engine
// and resolves their parameters: for an initiative the set's parameters
// (assigned values and the set's defaults) feed each member's.
func (p *Provider) compiled(a Assignment) ([]evalMember, error) {
	assigned := map[string]any{}
	for k, v := range a.Parameters {
		var x any
		if err := json.Unmarshal(v, &x); err != nil {
			return nil, fmt.Errorf("parameter %s: %w", k, err)
		}
		assigned[k] = x
	}
	p.mu.Lock()
	set := p.setDefinitionByIDLocked(a.PolicyDefinitionID)
	if set == nil {
		d := p.definitionByIDLocked(a.PolicyDefinitionID)
		p.mu.Unlock()
		if d == nil {
			return nil, fmt.Errorf("definition %s not found", a.PolicyDefinitionID)
		}
		m, err := compileMember(a.ID, d, a.PolicyDefinitionID, assigned)
		if err != nil {
			return nil, err
		}
		return []evalMember{m}, nil
	}
	type raw struct {
		ref, id string
		def     *definition
		values  map[string]paramValue
	}
	var raws []raw
	for _, mem := range set.Properties.PolicyDefinitions {
		d := p.definitionByIDLocked(mem.PolicyDefinitionID)
		if d == nil {
			p.mu.Unlock()
			return nil, fmt.Errorf("definition %s of initiative %s not found", mem.PolicyDefinitionID, set.ID)
		}
		raws = append(raws, raw{ref: mem.PolicyDefinitionReferenceID, id: mem.PolicyDefinitionID, def: d, values: mem.Parameters})
	}
	setParams := map[string]any{}
	for name, pd := range set.Properties.Parameters {
		if _, v, ok := lookupFold(assigned, name); ok {
			setParams[name] = v
		} else if len(pd.DefaultValue) > 0 {
			var x any
			if json.Unmarshal(pd.DefaultValue, &x) == nil {
				setParams[name] = x
			}
		}
	}
	setID := set.ID
	p.mu.Unlock()
	var out []evalMember
	for _, r := range raws {
		values := map[string]any{}
		for k, v := range r.values {
			var x any
			if err := json.Unmarshal(v.Value, &x); err != nil {
				return nil, fmt.Errorf("initiative %s member %s parameter %s: %w", setID, r.ref, k, err)
			}
			values[k] = x
		}
		resolved, err := engine.MemberParameters(values, setParams)
		if err != nil {
			return nil, fmt.Errorf("initiative %s member %s: %w", setID, r.ref, err)
		}
		m, err := compileMember(a.ID, r.def, r.id, resolved)
		if err != nil {
			return nil, fmt.Errorf("initiative %s member %s: %w", setID, r.ref, err)
		}
		m.setID, m.referenceID = setID, r.ref
		out = append(out, m)
	}
	return out, nil
}

// compileMember resolves a definition's parameters for an assignment; the
// rule itself is compiled once per stored definition, not per evaluation.
func compileMember(assignmentID string, d *definition, id string, values map[string]any) (evalMember, error) {
	def, err := d.rule()
	if err != nil {
		return evalMember{}, err
	}
	params, err := def.ResolveParameters(assignmentID, values)
	if err != nil {
		return evalMember{}, err
	}
	return evalMember{definitionID: id, def: def, params: params}, nil
}

// lookupFold finds a map entry by a case-insensitive name.
func lookupFold(m map[string]any, name string) (string, any, bool) {
	if v, ok := m[name]; ok {
		return name, v, true
	}
	for k, v := range m {
		if strings.EqualFold(k, name) {
			return k, v, true
		}
	}
	return "", nil, false
}
