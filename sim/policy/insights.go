package policy

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gitopsim/gitopsim/sim/arm"
	"github.com/gitopsim/gitopsim/sim/policy/engine"
)

// InsightsProviderName is the Microsoft.PolicyInsights provider's name
// in the ARM server's state snapshot.
const InsightsProviderName = "Microsoft.PolicyInsights"

// Error codes of Microsoft.PolicyInsights queries. A malformed $filter is
// InvalidFilterInQueryString (seen in az policy state transcripts); the
// code for the other query options is (inferred).
const (
	CodeInvalidFilterInQuery = arm.CodeInvalidFilter
	CodeInvalidQueryOption   = arm.CodeInvalidParameter
	CodeOperationNotFound    = arm.CodeOperationNotFound
)

// InsightsOptions configure the Microsoft.PolicyInsights provider.
type InsightsOptions struct {
	// PageSize is the number of records per page of queryResults; 0 is
	// the service's 1000.
	PageSize int
	// RetryAfter is the Retry-After, in seconds, of triggerEvaluation's
	// operation; 0 is 1 so that SDK pollers finish quickly (Azure sends
	// 30).
	RetryAfter int
}

// Insights serves Microsoft.PolicyInsights policy states of a Provider:
// queryResults, summarize and triggerEvaluation. It implements
// arm.Provider and keeps no state of its own: states are the
// evaluator's, and scans in progress do not survive a restart.
type Insights struct {
	p          *Provider
	pageSize   int
	retryAfter int

	mu    sync.Mutex
	scans map[string]*scan // by lower-case operation id
	// remediations are the remediation tasks, by lower-case id.
	remediations map[string]*storedRemediation
}

// scan is an on-demand evaluation of a scope.
type scan struct {
	scope   string
	running bool
}

// Insights returns the Microsoft.PolicyInsights provider that reports the
// policy states of p. Host it on the same ARM server as p.
func (p *Provider) Insights(opts InsightsOptions) *Insights {
	if opts.PageSize <= 0 {
		opts.PageSize = 1000
	}
	if opts.RetryAfter <= 0 {
		opts.RetryAfter = 1
	}
	in := &Insights{p: p, pageSize: opts.PageSize, retryAfter: opts.RetryAfter, scans: map[string]*scan{}, remediations: map[string]*storedRemediation{}}
	p.insights = in
	return in
}

// Name implements arm.Provider.
func (in *Insights) Name() string { return InsightsProviderName }

// insightsState is what Snapshot persists: the remediation tasks. Policy
// states are the evaluator's, and scans in progress are not kept.
type insightsState struct {
	Remediations map[string]*storedRemediation `json:"remediations"`
}

// Snapshot implements arm.Provider.
func (in *Insights) Snapshot() (json.RawMessage, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	return json.Marshal(insightsState{Remediations: in.remediations})
}

// Restore implements arm.Provider; unfinished tasks go on when the
// Provider starts.
func (in *Insights) Restore(raw json.RawMessage) error {
	var st insightsState
	if err := json.Unmarshal(raw, &st); err != nil {
		return fmt.Errorf("policy insights: restore: %w", err)
	}
	if st.Remediations == nil {
		st.Remediations = map[string]*storedRemediation{}
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	in.remediations = st.Remediations
	return nil
}

// Routes implements arm.Provider. Any api-version is accepted: the SDK
// sends 2024-10-01, az and the docs 2019-10-01.
func (in *Insights) Routes() []arm.Route {
	const (
		pi  = "/providers/Microsoft.PolicyInsights/"
		sub = "subscriptions/{sub}"
		rg  = sub + "/resourceGroups/{rg}"
		pa  = "/providers/Microsoft.Authorization/policyAssignments/{name}"
	)
	var routes []arm.Route
	for _, scope := range []string{sub, rg, sub + pa, rg + pa} {
		routes = append(routes,
			arm.Route{Name: "policyStatesQueryResults@" + scope, Pattern: scope + pi + "policyStates/{kind}/queryResults",
				Methods: map[string]arm.Handler{http.MethodPost: in.queryResults, http.MethodGet: in.queryResults}},
			arm.Route{Name: "policyStatesSummarize@" + scope, Pattern: scope + pi + "policyStates/{kind}/summarize",
				Methods: map[string]arm.Handler{http.MethodPost: in.summarize}},
		)
	}
	for _, scope := range []string{sub, rg} {
		routes = append(routes, arm.Route{Name: "policyStatesTriggerEvaluation@" + scope, Pattern: scope + pi + "policyStates/latest/triggerEvaluation",
			Methods: map[string]arm.Handler{http.MethodPost: in.triggerEvaluation}})
	}
	routes = append(routes, in.remediationRoutes()...)
	routes = append(routes, arm.Route{Name: "policyInsightsAsyncOperationResults", Pattern: sub + pi + "asyncOperationResults/{op}",
		Methods: map[string]arm.Handler{http.MethodGet: in.operationResult}})
	return routes
}

// Canonical property names of a policy state record.
const (
	propTimestamp        = "timestamp"
	propResourceID       = "resourceId"
	propAssignmentID     = "policyAssignmentId"
	propDefinitionID     = "policyDefinitionId"
	propDefinitionAction = "policyDefinitionAction"
	propIsCompliant      = "isCompliant"
	propComplianceState  = "complianceState"
	// An initiative's definitions carry these; "" for a plain assignment.
	propSetDefinitionID       = "policySetDefinitionId"
	propDefinitionReferenceID = "policyDefinitionReferenceId"
)

// stateProps are the properties of a record that queries may name.
var stateProps = []string{
	propTimestamp, propResourceID, "resourceType", "resourceLocation", "resourceGroup", "subscriptionId",
	propAssignmentID, "policyAssignmentName", "policyAssignmentScope", "policyAssignmentParameters",
	propDefinitionID, "policyDefinitionName", propDefinitionAction, propIsCompliant, propComplianceState,
	propSetDefinitionID, "policySetDefinitionName", propDefinitionReferenceID,
}

// filterSchema leaves out the timestamp: comparing it needs datetime
// literals, which this subset does not have.
func filterSchema() schema {
	return newSchema(slices.DeleteFunc(slices.Clone(stateProps), func(s string) bool { return s == propTimestamp })...)
}

// stateKind checks the {latest|default} segment; summarize has only
// latest.
func stateKind(r *arm.Request, allowDefault bool) *arm.Error {
	k := strings.ToLower(r.Var("kind"))
	if k == "latest" || (allowDefault && k == "default") {
		return nil
	}
	return badRequest(CodeInvalidQueryOption, "The policy states resource '%s' is not supported; use 'latest'%s.", r.Var("kind"),
		map[bool]string{true: " or 'default'", false: ""}[allowDefault])
}

// scopePath is the request's scope: a subscription, resource group or
// policy assignment id.
func scopePath(r *arm.Request) string {
	if r.Var("name") != "" {
		return assignmentID(r)
	}
	return scopeOf(r)
}

// metadataURL is the @odata.context base of a scope's policy states.
func metadataURL(r *arm.Request) string {
	return r.URL(scopePath(r) + "/providers/Microsoft.PolicyInsights/policyStates/$metadata")
}

// records returns the policy states of the request's scope, filtered by
// $filter, as records.
func (in *Insights) records(r *arm.Request) ([]record, *arm.Error) {
	scope := scopePath(r)
	byAssignment := map[string]Assignment{}
	for _, a := range in.p.Assignments() {
		byAssignment[key(a.ID)] = a
	}
	var match func(State) bool
	if r.Var("name") != "" {
		match = func(s State) bool { return key(s.PolicyAssignmentID) == key(scope) }
	} else {
		match = func(s State) bool { return within(s.ResourceID, scope) }
	}
	var f expr
	if raw, ok := r.Query("$filter"); ok && strings.TrimSpace(raw) != "" {
		var err error
		if f, err = parseODataFilter(raw, filterSchema()); err != nil {
			return nil, badRequest(CodeInvalidFilterInQuery, "Invalid $filter '%s': %v.", raw, trimOData(err))
		}
	}
	from, to, e := window(r)
	if e != nil {
		return nil, e
	}
	kind := "latest"
	states := in.p.States()
	_, hasFrom := r.Query("$from")
	_, hasTo := r.Query("$to")
	switch {
	case strings.EqualFold(r.Var("kind"), "default"):
		kind, states = "default", in.p.History()
	case hasFrom || hasTo:
		// The newest state of each resource and assignment within the
		// window, which may be older than the newest of all.
		states = latestWithin(in.p.History(), from, to)
	}
	ctx := metadataURL(r) + "#" + kind + "/$entity"
	var out []record
	for _, s := range states {
		if !match(s) || s.Timestamp.Before(from) || s.Timestamp.After(to) {
			continue
		}
		rec := stateRecord(s, byAssignment[key(s.PolicyAssignmentID)])
		if f != nil && !f.eval(rec) {
			continue
		}
		rec["@odata.id"] = nil
		rec["@odata.context"] = ctx
		out = append(out, rec)
	}
	return out, nil
}

// stateRecord shapes a state as policyStates' record (azure-policy-spec
// §2.6).
func stateRecord(s State, a Assignment) record {
	params := map[string]map[string]json.RawMessage{}
	for k, v := range a.Parameters {
		params[k] = map[string]json.RawMessage{"value": v}
	}
	rawParams, err := json.Marshal(params)
	if err != nil {
		rawParams = []byte("{}")
	}
	scope := a.Scope
	if scope == "" {
		scope, _, _ = strings.Cut(s.PolicyAssignmentID, "/providers/")
	}
	return record{
		propTimestamp: s.Timestamp.UTC(), propResourceID: s.ResourceID, "resourceType": s.ResourceType,
		"resourceLocation": s.ResourceLocation, "resourceGroup": s.ResourceGroup, "subscriptionId": s.SubscriptionID,
		propAssignmentID: s.PolicyAssignmentID, "policyAssignmentName": lastSegment(s.PolicyAssignmentID),
		"policyAssignmentScope": scope, "policyAssignmentParameters": string(rawParams),
		propDefinitionID: s.PolicyDefinitionID, "policyDefinitionName": lastSegment(s.PolicyDefinitionID),
		propDefinitionAction: s.PolicyDefinitionAction, propIsCompliant: s.ComplianceState == engine.Compliant,
		propComplianceState: string(s.ComplianceState),
		propSetDefinitionID: s.PolicySetDefinitionID, "policySetDefinitionName": setName(s.PolicySetDefinitionID),
		propDefinitionReferenceID: s.PolicyDefinitionReferenceID,
	}
}

func setName(id string) string {
	if id == "" {
		return ""
	}
	return lastSegment(id)
}

func lastSegment(id string) string { return id[strings.LastIndex(id, "/")+1:] }

// trimOData drops the sentinel's text from a parse error's message.
func trimOData(err error) string {
	return strings.TrimPrefix(err.Error(), errOData.Error()+": ")
}

// queryResults answers policyStates/{latest|default}/queryResults (POST
// for the first page, GET for the nextLink): latest has the newest state
// of each resource and assignment, default every evaluation, both within
// the $from-$to window.
func (in *Insights) queryResults(r *arm.Request) *arm.Error {
	if e := stateKind(r, true); e != nil {
		return e
	}
	recs, e := in.records(r)
	if e != nil {
		return e
	}
	sch := newSchema(stateProps...)
	applied := false
	if raw, ok := r.Query("$apply"); ok && strings.TrimSpace(raw) != "" {
		chain, out, err := parseApply(raw, sch)
		if err != nil {
			return badRequest(CodeInvalidQueryOption, "Invalid $apply '%s': %v.", raw, trimOData(err))
		}
		for _, t := range chain {
			recs = t(recs)
		}
		sch, applied = out, true
	}
	keys := []orderKey{{prop: propTimestamp, desc: true}}
	if applied {
		keys = nil
	}
	if raw, ok := r.Query("$orderby"); ok && strings.TrimSpace(raw) != "" {
		var err error
		if keys, err = parseOrderBy(raw, sch); err != nil {
			return badRequest(CodeInvalidQueryOption, "Invalid $orderby '%s': %v.", raw, trimOData(err))
		}
	}
	sortRecords(recs, keys)
	if raw, ok := r.Query("$select"); ok && strings.TrimSpace(raw) != "" {
		props, err := parseSelect(raw, sch)
		if err != nil {
			return badRequest(CodeInvalidQueryOption, "Invalid $select '%s': %v.", raw, trimOData(err))
		}
		for i, rec := range recs {
			sel := record{}
			for _, p := range props {
				sel[p] = rec[p]
			}
			if !applied {
				sel["@odata.id"], sel["@odata.context"] = nil, rec["@odata.context"]
			}
			recs[i] = sel
		}
	}
	if raw, ok := r.Query("$top"); ok {
		n, err := parseTop(raw)
		if err != nil {
			return badRequest(CodeInvalidQueryOption, "Invalid $top: %v.", trimOData(err))
		}
		if len(recs) > n {
			recs = recs[:n]
		}
	}
	return in.writePage(r, recs)
}

// writePage writes one page of records from $skiptoken on, with an
// absolute @odata.nextLink (fetched by GET) when more remain.
func (in *Insights) writePage(r *arm.Request, recs []record) *arm.Error {
	offset := 0
	if tok, ok := r.Query("$skiptoken"); ok {
		n, err := decodeOffset(tok)
		if err != nil || n > len(recs) {
			return badRequest(CodeInvalidQueryOption, "The $skiptoken '%s' is invalid or has expired; restart the query without it.", tok)
		}
		offset = n
	}
	end := min(offset+in.pageSize, len(recs))
	page := recs[offset:end]
	if page == nil {
		page = []record{}
	}
	body := map[string]any{
		"@odata.context": metadataURL(r) + "#" + strings.ToLower(r.Var("kind")),
		"@odata.count":   len(page),
		"value":          page,
	}
	if end < len(recs) {
		q := url.Values{}
		for _, k := range []string{"$filter", "$apply", "$orderby", "$select", "$top", "$from", "$to"} {
			if v, ok := r.Query(k); ok {
				q.Set(k, v)
			}
		}
		// The next pages read the same window, however late they come.
		if from, to, e := window(r); e == nil {
			q.Set("$from", from.UTC().Format(time.RFC3339Nano))
			q.Set("$to", to.UTC().Format(time.RFC3339Nano))
		}
		q.Set("api-version", r.APIVersion())
		q.Set("$skiptoken", encodeOffset(end))
		body["@odata.nextLink"] = r.URL(scopePath(r)+"/providers/Microsoft.PolicyInsights/policyStates/"+r.Var("kind")+"/queryResults") +
			"?" + strings.ReplaceAll(q.Encode(), "+", "%20")
	}
	r.JSON(http.StatusOK, body)
	return nil
}

func encodeOffset(n int) string {
	return base64.RawURLEncoding.EncodeToString([]byte("ps:" + strconv.Itoa(n)))
}

func decodeOffset(tok string) (int, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return 0, fmt.Errorf("decode skiptoken: %w", err)
	}
	s, ok := strings.CutPrefix(string(b), "ps:")
	if !ok {
		return 0, errors.New("decode skiptoken: unknown format")
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("decode skiptoken: bad offset %q", s)
	}
	return n, nil
}

// ---- summarize

// summaryResults is the results object of a summary (SDK SummaryResults).
type summaryResults struct {
	QueryResultsURI       string            `json:"queryResultsUri,omitempty"`
	NonCompliantResources int               `json:"nonCompliantResources"`
	NonCompliantPolicies  int               `json:"nonCompliantPolicies"`
	ResourceDetails       []complianceCount `json:"resourceDetails"`
	PolicyDetails         []complianceCount `json:"policyDetails"`
	PolicyGroupDetails    []complianceCount `json:"policyGroupDetails"`
}

// complianceCount is the SDK's ComplianceDetail; summaries spell the
// state in lower case.
type complianceCount struct {
	ComplianceState string `json:"complianceState"`
	Count           int    `json:"count"`
}

type definitionSummary struct {
	PolicyDefinitionID          string         `json:"policyDefinitionId"`
	PolicyDefinitionReferenceID string         `json:"policyDefinitionReferenceId"`
	Effect                      string         `json:"effect"`
	PolicyDefinitionGroupNames  []string       `json:"policyDefinitionGroupNames"`
	Results                     summaryResults `json:"results"`
}

type assignmentSummary struct {
	PolicyAssignmentID    string              `json:"policyAssignmentId"`
	PolicySetDefinitionID string              `json:"policySetDefinitionId"`
	Results               summaryResults      `json:"results"`
	PolicyDefinitions     []definitionSummary `json:"policyDefinitions"`
	PolicyGroups          []any               `json:"policyGroups"`
}

// summarizeRecords rolls records up: a resource counts under its worst
// state (NonCompliant ranks above Compliant, azure-policy-spec §3.2), and
// so does a policy (assignment and definition).
func summarizeRecords(recs []record) summaryResults {
	worst := func(by func(record) string) (map[string]string, []string) {
		m := map[string]string{}
		var order []string
		for _, rec := range recs {
			k := strings.ToLower(by(rec))
			st := strings.ToLower(rec[propComplianceState].(string))
			old, seen := m[k]
			if !seen {
				order = append(order, k)
			}
			if !seen || stateRank(st) > stateRank(old) {
				m[k] = st
			}
		}
		return m, order
	}
	counts := func(m map[string]string) ([]complianceCount, int) {
		n := map[string]int{}
		for _, st := range m {
			n[st]++
		}
		out := []complianceCount{}
		for _, st := range slices.Sorted(maps.Keys(n)) {
			out = append(out, complianceCount{ComplianceState: st, Count: n[st]})
		}
		return out, n["noncompliant"]
	}
	res, _ := worst(func(r record) string { return r[propResourceID].(string) })
	pol, _ := worst(func(r record) string {
		return r[propAssignmentID].(string) + "|" + r[propDefinitionID].(string) + "|" + r[propDefinitionReferenceID].(string)
	})
	out := summaryResults{PolicyGroupDetails: []complianceCount{}}
	out.ResourceDetails, out.NonCompliantResources = counts(res)
	out.PolicyDetails, out.NonCompliantPolicies = counts(pol)
	return out
}

// stateRank orders compliance states for roll-ups (§3.2).
func stateRank(s string) int {
	switch s {
	case "noncompliant":
		return 5
	case "compliant":
		return 4
	case "conflict", "conflicting":
		return 3
	case "exempt", "exempted":
		return 2
	}
	return 1
}

// summarize answers policyStates/latest/summarize: the scope's states
// after $filter, rolled up overall, per assignment and per definition;
// $top limits the assignments, most non-compliant resources first.
func (in *Insights) summarize(r *arm.Request) *arm.Error {
	if e := stateKind(r, false); e != nil {
		return e
	}
	recs, e := in.records(r)
	if e != nil {
		return e
	}
	limit := -1
	if raw, ok := r.Query("$top"); ok {
		n, err := parseTop(raw)
		if err != nil {
			return badRequest(CodeInvalidQueryOption, "Invalid $top: %v.", trimOData(err))
		}
		limit = n
	}
	byAssignment := map[string][]record{}
	var order []string
	for _, rec := range recs {
		k := key(rec[propAssignmentID].(string))
		if _, ok := byAssignment[k]; !ok {
			order = append(order, k)
		}
		byAssignment[k] = append(byAssignment[k], rec)
	}
	assignments := []assignmentSummary{}
	for _, k := range order {
		group := byAssignment[k]
		as := assignmentSummary{PolicyAssignmentID: group[0][propAssignmentID].(string), Results: summarizeRecords(group),
			PolicySetDefinitionID: group[0][propSetDefinitionID].(string), PolicyDefinitions: []definitionSummary{}, PolicyGroups: []any{}}
		byDef := map[string][]record{}
		var defs []string
		for _, rec := range group {
			d := key(rec[propDefinitionID].(string)) + "|" + key(rec[propDefinitionReferenceID].(string))
			if _, ok := byDef[d]; !ok {
				defs = append(defs, d)
			}
			byDef[d] = append(byDef[d], rec)
		}
		for _, d := range defs {
			g := byDef[d]
			as.PolicyDefinitions = append(as.PolicyDefinitions, definitionSummary{
				PolicyDefinitionID: g[0][propDefinitionID].(string), PolicyDefinitionReferenceID: g[0][propDefinitionReferenceID].(string),
				Effect:                     g[0][propDefinitionAction].(string),
				PolicyDefinitionGroupNames: []string{""}, Results: summarizeRecords(g),
			})
		}
		assignments = append(assignments, as)
	}
	slices.SortStableFunc(assignments, func(a, b assignmentSummary) int {
		return b.Results.NonCompliantResources - a.Results.NonCompliantResources
	})
	if limit >= 0 && len(assignments) > limit {
		assignments = assignments[:limit]
	}
	results := summarizeRecords(recs)
	q := url.Values{"api-version": {r.APIVersion()}}
	if f, ok := r.Query("$filter"); ok {
		q.Set("$filter", f)
	}
	results.QueryResultsURI = r.URL(scopePath(r)+"/providers/Microsoft.PolicyInsights/policyStates/latest/queryResults") +
		"?" + strings.ReplaceAll(q.Encode(), "+", "%20")
	ctx := metadataURL(r) + "#summary"
	r.JSON(http.StatusOK, map[string]any{
		"@odata.context": ctx,
		"@odata.count":   1,
		"value": []any{map[string]any{
			"@odata.id": nil, "@odata.context": ctx + "/$entity",
			"results": results, "policyAssignments": assignments,
		}},
	})
	return nil
}

// ---- triggerEvaluation

// triggerEvaluation starts an on-demand scan of a subscription or
// resource group and answers 202 with the operation's Location. The
// operation id is fixed per scope, so a second trigger while a scan runs
// gets the same Location and starts nothing.
func (in *Insights) triggerEvaluation(r *arm.Request) *arm.Error {
	if e := in.p.checkScope(r); e != nil {
		return e
	}
	scope := scopeOf(r)
	op := guidFor("policyinsights-scan|" + scope)
	in.mu.Lock()
	s, ok := in.scans[op]
	start := !ok || !s.running
	if start {
		s = &scan{scope: scope, running: true}
		in.scans[op] = s
	}
	in.mu.Unlock()
	if start {
		in.p.eval.scan(scope, func() {
			in.mu.Lock()
			s.running = false
			in.mu.Unlock()
		})
	}
	in.accepted(r, op)
	return nil
}

// accepted writes 202 with the operation's Location and Retry-After.
func (in *Insights) accepted(r *arm.Request, op string) {
	r.Header().Set("Location", r.URL("/subscriptions/"+r.Var("sub")+"/providers/Microsoft.PolicyInsights/asyncOperationResults/"+op+
		"?api-version="+url.QueryEscape(r.APIVersion())))
	r.Header().Set("Retry-After", strconv.Itoa(in.retryAfter))
	r.Empty(http.StatusAccepted)
}

// operationResult answers a scan's Location: 202 while it runs, 200 with
// its status when done.
func (in *Insights) operationResult(r *arm.Request) *arm.Error {
	in.mu.Lock()
	s, ok := in.scans[strings.ToLower(r.Var("op"))]
	running := ok && s.running
	if ok && !strings.EqualFold(scopeSub(s.scope), r.Var("sub")) {
		ok = false
	}
	in.mu.Unlock()
	if !ok {
		return notFound(CodeOperationNotFound, "The operation '%s' could not be found.", r.Var("op"))
	}
	if running {
		in.accepted(r, strings.ToLower(r.Var("op")))
		return nil
	}
	r.JSON(http.StatusOK, map[string]string{"status": "Succeeded"})
	return nil
}

func scopeSub(scope string) string {
	sub, _ := ScopeParts(scope)
	return sub
}

// window is the time range of a states query: $to defaults to the
// request's time and $from to a day before $to (azure-policy-spec §2.6).
// Both take RFC 3339, and the "2019-10-05 18:00:00Z" spelling of the
// service's own queryResultsUri.
func window(r *arm.Request) (from, to time.Time, e *arm.Error) {
	parse := func(name string, def time.Time) (time.Time, *arm.Error) {
		raw, ok := r.Query(name)
		if !ok || strings.TrimSpace(raw) == "" {
			return def, nil
		}
		raw = strings.TrimSpace(raw)
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05Z07:00", "2006-01-02T15:04:05", "2006-01-02"} {
			if t, err := time.Parse(layout, raw); err == nil {
				return t, nil
			}
		}
		return time.Time{}, badRequest(CodeInvalidQueryOption, "Invalid %s '%s': expected an ISO 8601 date and time.", name, raw)
	}
	if to, e = parse("$to", r.Now()); e != nil {
		return
	}
	if from, e = parse("$from", to.Add(-24*time.Hour)); e != nil {
		return
	}
	if from.After(to) {
		e = badRequest(CodeInvalidQueryOption, "Invalid time range: $from '%s' is after $to '%s'.", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	return
}

// latestWithin keeps the newest of the states within [from, to] for each
// resource, assignment and definition reference; history is oldest
// first.
func latestWithin(history []State, from, to time.Time) []State {
	newest := map[string]int{}
	var order []string
	for i, st := range history {
		if st.Timestamp.Before(from) || st.Timestamp.After(to) {
			continue
		}
		k := stateKey(st.PolicyAssignmentID, st.PolicyDefinitionReferenceID, st.ResourceID)
		if _, seen := newest[k]; !seen {
			order = append(order, k)
		}
		newest[k] = i
	}
	// In the order of States, so that pages of either agree.
	slices.Sort(order)
	out := make([]State, 0, len(order))
	for _, k := range order {
		out = append(out, history[newest[k]])
	}
	return out
}
