package policy

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
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
}

// DefaultTiming is the documented timing: 5 minutes for an assignment,
// 15 for a changed resource, 10 for a deployment, a full cycle every 24
// hours.
func DefaultTiming() Timing {
	return Timing{Assignment: 5 * time.Minute, Resource: 15 * time.Minute, Deploy: 10 * time.Minute, Cycle: 24 * time.Hour}
}

// ImmediateTiming is the test mode: everything happens at the next tick
// of the clock, and there is no daily cycle.
func ImmediateTiming() Timing { return Timing{} }

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
	// PolicyDefinitionAction is the effect, lower-case
	// ("deployifnotexists").
	PolicyDefinitionAction string
	ComplianceState        engine.ComplianceState
	// IfNotExistsDetails names the related resource that was checked.
	IfNotExistsDetails *engine.IfNotExistsDetails
}

// Deployment is what one DeployIfNotExists action did for one resource.
type Deployment struct {
	Time               time.Time
	PolicyAssignmentID string
	ResourceID         string
	// DeployedIDs are the resources it PUT.
	DeployedIDs []string
	// Error is why it failed ("" when it succeeded): a missing role, or
	// the ARM error of a PUT.
	Error string
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
	if _, known := e.effective[strings.ToLower(id)]; ok && !known {
		e.effective[strings.ToLower(id)] = e.p.clk.Now()
	}
	e.mu.Unlock()
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

// evaluate evaluates one cluster against one assignment and records the
// state; with deploy, a non-compliant DINE rule deploys.
func (e *evaluator) evaluate(a Assignment, cl engine.Resource, deploy bool) {
	if !covers(a, cl.ID()) {
		return
	}
	def, params, err := e.p.compiled(a)
	if err != nil {
		e.p.log.Warn("policy evaluation failed", "assignment", a.ID, "resource", cl.ID(), "err", err)
		return
	}
	in := engine.Input{Resource: cl, Related: e.related}
	res, err := e.eng.Evaluate(def, params, in)
	if err != nil {
		e.p.log.Warn("policy evaluation failed", "assignment", a.ID, "resource", cl.ID(), "err", err)
		return
	}
	k := strings.ToLower(a.ID) + "|" + strings.ToLower(cl.ID())
	if !res.Applicable {
		e.mu.Lock()
		delete(e.states, k)
		e.mu.Unlock()
		return
	}
	sub, rg := scopeParts(cl.ID())
	st := &State{
		Timestamp: e.p.clk.Now(), ResourceID: cl.ID(), ResourceType: cl.Type(), ResourceLocation: cl.Location(),
		ResourceGroup: rg, SubscriptionID: sub, PolicyAssignmentID: a.ID, PolicyDefinitionID: a.PolicyDefinitionID,
		PolicyDefinitionAction: res.Effect, ComplianceState: res.ComplianceState, IfNotExistsDetails: res.IfNotExistsDetails,
	}
	e.mu.Lock()
	e.states[k] = st
	e.mu.Unlock()
	if deploy && res.Effect == "deployifnotexists" && res.ComplianceState == engine.NonCompliant && a.EnforcementMode != "DoNotEnforce" {
		e.deploy(a, def, params, in)
	}
}

// deploy runs a DeployIfNotExists deployment as the assignment's managed
// identity, which must hold every role the rule names at the resource's
// scope (Azure grants none by itself: §3.4).
func (e *evaluator) deploy(a Assignment, def *engine.Definition, params map[string]any, in engine.Input) {
	d := Deployment{Time: e.p.clk.Now(), PolicyAssignmentID: a.ID, ResourceID: in.Resource.ID()}
	defer func() {
		e.mu.Lock()
		e.deployments = append(e.deployments, d)
		e.mu.Unlock()
		if d.Error != "" {
			e.p.log.Warn("policy deployment failed", "assignment", a.ID, "resource", d.ResourceID, "err", d.Error)
		} else {
			e.p.log.Info("policy deployment succeeded", "assignment", a.ID, "resource", d.ResourceID, "deployed", d.DeployedIDs)
		}
	}()
	if a.PrincipalID == "" {
		d.Error = fmt.Sprintf("The policy assignment '%s' has no managed identity to deploy with.", a.ID)
		return
	}
	for _, role := range roleIDs(def) {
		if !e.p.HasRole(a.PrincipalID, role, in.Resource.ID()) {
			// The error a deployment without the role gets from ARM.
			d.Error = fmt.Sprintf("The client '%s' with object id '%s' does not have authorization to perform action 'Microsoft.Resources/deployments/write' over scope '%s' or the scope is invalid. If access was recently granted, please refresh your credentials.",
				a.PrincipalID, a.PrincipalID, resourceGroupOf(in.Resource.ID()))
			return
		}
	}
	dep, err := e.eng.Deployment(def, params, in)
	if err != nil {
		d.Error = err.Error()
		return
	}
	for _, r := range dep.Resources {
		body, err := json.Marshal(r.Body)
		if err != nil {
			d.Error = err.Error()
			return
		}
		code, out := e.p.srv.Dispatch(context.Background(), http.MethodPut, r.ID+"?api-version="+url.QueryEscape(r.APIVersion), body, a.PrincipalID)
		if code >= 300 {
			d.Error = fmt.Sprintf("PUT %s: %d %s", r.ID, code, out)
			return
		}
		d.DeployedIDs = append(d.DeployedIDs, r.ID)
	}
}

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

// get reads a resource as Azure Policy's backend does.
func (e *evaluator) get(id, apiVersion string) (engine.Resource, bool) {
	code, body := e.p.srv.Dispatch(context.Background(), http.MethodGet, id+"?api-version="+apiVersion, nil, "")
	if code != http.StatusOK {
		return nil, false
	}
	r, err := engine.ParseResource(body)
	return r, err == nil
}

// clustersIn lists the clusters of a scope.
func (e *evaluator) clustersIn(scope string) []engine.Resource {
	sub, rg := scopeParts(scope)
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
		if json.Unmarshal(body, &page) != nil {
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

// scopeParts returns the subscription and resource group of an id.
func scopeParts(id string) (sub, rg string) {
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
	sub, rg := scopeParts(id)
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

// compiled parses an assignment's definition with the engine and resolves
// its parameters.
func (p *Provider) compiled(a Assignment) (*engine.Definition, map[string]any, error) {
	p.mu.Lock()
	d := p.definitionByIDLocked(a.PolicyDefinitionID)
	var raw json.RawMessage
	var name string
	if d != nil {
		raw, name = d.Properties, d.Name
	}
	p.mu.Unlock()
	if d == nil {
		return nil, nil, fmt.Errorf("definition %s not found (policy set definitions are not evaluated yet)", a.PolicyDefinitionID)
	}
	def, err := engine.ParseDefinition(name, raw)
	if err != nil {
		return nil, nil, err
	}
	values := map[string]any{}
	for k, v := range a.Parameters {
		var x any
		if err := json.Unmarshal(v, &x); err != nil {
			return nil, nil, fmt.Errorf("parameter %s: %w", k, err)
		}
		values[k] = x
	}
	params, err := def.ResolveParameters(a.ID, values)
	if err != nil {
		return nil, nil, err
	}
	return def, params, nil
}
