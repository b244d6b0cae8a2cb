package policy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gitopsim/gitopsim/sim/arm"
	"github.com/gitopsim/gitopsim/sim/clock"
	"github.com/gitopsim/gitopsim/sim/policy/engine"
)

// ProviderName is the provider's name in the ARM server's state snapshot.
const ProviderName = "Microsoft.Authorization"

// API versions accepted, lower-case. The Go SDK sends 2025-03-01 (armpolicy
// v1) and 2022-04-01 (armauthorization v2); az 2.45 sends 2021-06-01.
var (
	policyVersions = []string{
		"2016-12-01", "2018-03-01", "2018-05-01", "2019-01-01", "2019-06-01", "2019-09-01",
		"2020-03-01", "2020-09-01", "2021-06-01", "2022-06-01", "2023-04-01", "2024-04-01",
		"2024-05-01", "2025-01-01", "2025-03-01",
	}
	roleAssignmentVersions = []string{"2015-07-01", "2018-01-01-preview", "2018-09-01-preview", "2020-04-01-preview", "2020-10-01-preview", "2022-04-01"}
	roleDefinitionVersions = []string{"2015-07-01", "2018-01-01-preview", "2022-04-01", "2022-05-01-preview"}
)

// Options configure a Provider.
type Options struct {
	// ARM is the server that hosts the provider; required. The caller
	// hosts it with ARM.Host before ARM.Start.
	ARM *arm.Server
	// Clock is the simulator's clock (default: the wall clock).
	Clock clock.Clock
	// Logger receives the provider's logs (default: discarded).
	Logger *slog.Logger
	// Timing is how long evaluation and deployment take; nil is
	// DefaultTiming. ImmediateTiming is the test mode.
	Timing *Timing
	// Engine configures rule evaluation (the operatorParams
	// normalisation of the GitOps built-ins).
	Engine engine.Options
}

// Provider serves Microsoft.Authorization policy and role resources. It
// implements arm.Provider.
type Provider struct {
	srv      *arm.Server
	clk      clock.Clock
	log      *slog.Logger
	builtins []*definition // never change, so read without mu

	mu sync.Mutex
	st state

	eval *evaluator
	ev   events
	// insights is the Microsoft.PolicyInsights provider made by Insights,
	// whose remediation tasks go on when p starts.
	insights *Insights
}

// state is what Snapshot persists; maps are keyed by lower-cased id.
type state struct {
	Definitions     map[string]*definition     `json:"definitions"`
	SetDefinitions  map[string]*setDefinition  `json:"setDefinitions"`
	Assignments     map[string]*assignment     `json:"assignments"`
	RoleAssignments map[string]*roleAssignment `json:"roleAssignments"`
}

func newState() state {
	return state{
		Definitions:     map[string]*definition{},
		SetDefinitions:  map[string]*setDefinition{},
		Assignments:     map[string]*assignment{},
		RoleAssignments: map[string]*roleAssignment{},
	}
}

// New validates opts and builds a Provider with no custom resources.
func New(opts Options) (*Provider, error) {
	if opts.ARM == nil {
		return nil, errors.New("policy: ARM server is required")
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real()
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	builtins, err := loadBuiltIns()
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	timing := DefaultTiming()
	if opts.Timing != nil {
		timing = *opts.Timing
	}
	p := &Provider{srv: opts.ARM, clk: opts.Clock, log: opts.Logger.With("component", "policy"), builtins: builtins, st: newState()}
	p.eval = newEvaluator(p, timing, engine.New(opts.Engine))
	return p, nil
}

// Start starts evaluation on the clock: it follows the ARM server's
// writes and runs the daily cycle. Call it once the ARM server serves.
func (p *Provider) Start(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p.eval.start()
	if p.insights != nil {
		p.insights.resume()
	}
	return nil
}

// Stop ends the daily cycle.
func (p *Provider) Stop() { p.eval.stop() }

// Name implements arm.Provider.
func (p *Provider) Name() string { return ProviderName }

// Snapshot implements arm.Provider.
func (p *Provider) Snapshot() (json.RawMessage, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return json.Marshal(p.st)
}

// Restore implements arm.Provider.
func (p *Provider) Restore(raw json.RawMessage) error {
	st := newState()
	if err := json.Unmarshal(raw, &st); err != nil {
		return fmt.Errorf("policy: restore: %w", err)
	}
	def := newState()
	if st.Definitions == nil {
		st.Definitions = def.Definitions
	}
	if st.SetDefinitions == nil {
		st.SetDefinitions = def.SetDefinitions
	}
	if st.Assignments == nil {
		st.Assignments = def.Assignments
	}
	if st.RoleAssignments == nil {
		st.RoleAssignments = def.RoleAssignments
	}
	for _, d := range st.Definitions {
		if err := d.parse(); err != nil {
			return fmt.Errorf("policy: restore definition %s: %w", d.ID, err)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.st = st
	return nil
}

// Routes implements arm.Provider.
func (p *Provider) Routes() []arm.Route {
	const (
		auth = "providers/Microsoft.Authorization/"
		sub  = "subscriptions/{sub}/"
		rg   = sub + "resourceGroups/{rg}/"
		res  = rg + "providers/{ns}/{type}/{res}/"
	)
	m := func(pairs ...any) map[string]arm.Handler {
		out := map[string]arm.Handler{}
		for i := 0; i < len(pairs); i += 2 {
			out[pairs[i].(string)] = pairs[i+1].(func(*arm.Request) *arm.Error)
		}
		return out
	}
	get, put, patch, del := http.MethodGet, http.MethodPut, http.MethodPatch, http.MethodDelete
	routes := []arm.Route{
		{Name: "builtInPolicyDefinitions", Pattern: auth + "policyDefinitions", APIVersions: policyVersions, Methods: m(get, p.listBuiltInDefinitions)},
		{Name: "builtInPolicyDefinition", Pattern: auth + "policyDefinitions/{name}", APIVersions: policyVersions, Methods: m(get, p.getBuiltInDefinition)},
		{Name: "policyDefinitions", Pattern: sub + auth + "policyDefinitions", APIVersions: policyVersions, Methods: m(get, p.listDefinitions)},
		{Name: "policyDefinition", Pattern: sub + auth + "policyDefinitions/{name}", APIVersions: policyVersions, Methods: m(get, p.getDefinition, put, p.putDefinition, del, p.deleteDefinition)},
		{Name: "builtInPolicySetDefinitions", Pattern: auth + "policySetDefinitions", APIVersions: policyVersions, Methods: m(get, p.listBuiltInSetDefinitions)},
		{Name: "policySetDefinitions", Pattern: sub + auth + "policySetDefinitions", APIVersions: policyVersions, Methods: m(get, p.listSetDefinitions)},
		{Name: "policySetDefinition", Pattern: sub + auth + "policySetDefinitions/{name}", APIVersions: policyVersions, Methods: m(get, p.getSetDefinition, put, p.putSetDefinition, del, p.deleteSetDefinition)},
		{Name: "builtInRoleDefinition", Pattern: auth + "roleDefinitions/{name}", APIVersions: roleDefinitionVersions, Methods: m(get, p.getRoleDefinition)},
	}
	for _, scope := range []string{sub, rg} {
		routes = append(routes,
			arm.Route{Name: "policyAssignments@" + scope, Pattern: scope + auth + "policyAssignments", APIVersions: policyVersions, Methods: m(get, p.listAssignments)},
			arm.Route{Name: "policyAssignment@" + scope, Pattern: scope + auth + "policyAssignments/{name}", APIVersions: policyVersions, Methods: m(get, p.getAssignment, put, p.putAssignment, patch, p.patchAssignment, del, p.deleteAssignment)},
		)
	}
	for _, scope := range []string{sub, rg, res} {
		routes = append(routes,
			arm.Route{Name: "roleDefinitions@" + scope, Pattern: scope + auth + "roleDefinitions", APIVersions: roleDefinitionVersions, Methods: m(get, p.listRoleDefinitions)},
			arm.Route{Name: "roleDefinition@" + scope, Pattern: scope + auth + "roleDefinitions/{name}", APIVersions: roleDefinitionVersions, Methods: m(get, p.getRoleDefinition)},
			arm.Route{Name: "roleAssignments@" + scope, Pattern: scope + auth + "roleAssignments", APIVersions: roleAssignmentVersions, Methods: m(get, p.listRoleAssignments)},
			arm.Route{Name: "roleAssignment@" + scope, Pattern: scope + auth + "roleAssignments/{name}", APIVersions: roleAssignmentVersions, Methods: m(get, p.getRoleAssignment, put, p.putRoleAssignment, del, p.deleteRoleAssignment)},
		)
	}
	return routes
}

// scopeOf is the scope a request's path names, in the caller's spelling:
// /subscriptions/{sub}[/resourceGroups/{rg}[/providers/{ns}/{type}/{res}]],
// or "" for the tenant root.
func scopeOf(r *arm.Request) string {
	s := ""
	if v := r.Var("sub"); v != "" {
		s = "/subscriptions/" + v
	}
	if v := r.Var("rg"); v != "" {
		s += "/resourceGroups/" + v
	}
	if v := r.Var("res"); v != "" {
		s += "/providers/" + r.Var("ns") + "/" + r.Var("type") + "/" + v
	}
	return s
}

// key is the case-insensitive identity of an ARM id.
func key(id string) string { return strings.ToLower(strings.TrimRight(id, "/")) }

// within reports whether scope is at or below parent (both ARM ids).
func within(scope, parent string) bool {
	s, p := key(scope), key(parent)
	return p == "" || s == p || strings.HasPrefix(s, p+"/")
}

// guidFor derives a stable GUID-shaped (version 4 layout) id from seed.
func guidFor(seed string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(seed)))
	h := hex.EncodeToString(sum[:16])
	return h[0:8] + "-" + h[8:12] + "-4" + h[13:16] + "-8" + h[17:20] + "-" + h[20:32]
}

var guidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// checkScope makes sure the subscription and resource group of a scope
// exist, by asking the ARM server as the caller would; the server's own
// error (SubscriptionNotFound, ResourceGroupNotFound) is passed on.
func (p *Provider) checkScope(r *arm.Request) *arm.Error {
	sub, rg := r.Var("sub"), r.Var("rg")
	path := "/subscriptions/" + sub + "?api-version=2022-12-01"
	if rg != "" {
		path = "/subscriptions/" + sub + "/resourceGroups/" + rg + "?api-version=2021-04-01"
	}
	code, body := p.srv.Dispatch(r.Context(), http.MethodGet, path, nil, r.Caller())
	if code == http.StatusOK {
		return nil
	}
	var env struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if err := json.Unmarshal(body, &env); err != nil || env.Error.Code == "" {
		return &arm.Error{Status: http.StatusInternalServerError, Code: arm.CodeInternalServerError, Message: "The scope could not be checked."}
	}
	return &arm.Error{Status: code, Code: env.Error.Code, Message: env.Error.Message}
}

// readBody decodes a JSON request body into v.
func readBody(r *arm.Request, v any) *arm.Error {
	raw, e := r.Body(nil)
	if e != nil {
		return e
	}
	if len(strings.TrimSpace(string(raw))) == 0 {
		return badRequest(arm.CodeInvalidRequestContent, "The request content was invalid and could not be deserialized: the body is empty.")
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return badRequest(arm.CodeInvalidRequestContent, "The request content was invalid and could not be deserialized: %v.", err)
	}
	return nil
}

func badRequest(code, format string, args ...any) *arm.Error {
	return &arm.Error{Status: http.StatusBadRequest, Code: code, Message: fmt.Sprintf(format, args...)}
}

func notFound(code, format string, args ...any) *arm.Error {
	return &arm.Error{Status: http.StatusNotFound, Code: code, Message: fmt.Sprintf(format, args...)}
}

// filter is a parsed $filter: clauses joined by "and".
type filter struct {
	atScope, atExactScope bool
	eq                    map[string]string // lower-cased field -> value
	assignedTo            string
}

var (
	eqRE       = regexp.MustCompile(`(?i)^([a-z]+)\s+-?eq\s+'([^']*)'$`)
	bareEqRE   = regexp.MustCompile(`(?i)^([a-z]+)\s+-?eq\s+([A-Za-z]+)$`)
	assignedRE = regexp.MustCompile(`(?i)^assignedTo\('([^']*)'\)$`)
)

// parseFilter reads $filter; fields lists the fields an eq may name.
func parseFilter(r *arm.Request, fields ...string) (filter, *arm.Error) {
	f := filter{eq: map[string]string{}}
	raw, ok := r.Query("$filter")
	if !ok || strings.TrimSpace(raw) == "" {
		return f, nil
	}
	for _, c := range regexp.MustCompile(`(?i)\s+and\s+`).Split(strings.TrimSpace(raw), -1) {
		c = strings.TrimSpace(c)
		switch {
		case strings.EqualFold(c, "atScope()"):
			f.atScope = true
			continue
		case strings.EqualFold(c, "atExactScope()"):
			f.atExactScope = true
			continue
		}
		if m := assignedRE.FindStringSubmatch(c); m != nil {
			f.assignedTo = m[1]
			continue
		}
		m := eqRE.FindStringSubmatch(c)
		if m == nil {
			m = bareEqRE.FindStringSubmatch(c)
		}
		if m != nil {
			for _, name := range fields {
				if strings.EqualFold(name, m[1]) {
					f.eq[strings.ToLower(name)] = m[2]
					m = nil
					break
				}
			}
			if m == nil {
				continue
			}
		}
		return f, badRequest(arm.CodeInvalidFilter, "The filter '%s' is not supported. Supported filters are atScope(), atExactScope() and %s eq '{value}'.", raw, strings.Join(fields, ", "))
	}
	return f, nil
}

// top applies $top (1..1000) to a list.
func top(r *arm.Request, items []any) ([]any, *arm.Error) {
	raw, ok := r.Query("$top")
	if !ok {
		return items, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 || n > 1000 {
		return nil, badRequest(arm.CodeInvalidParameter, "The value '%s' of query parameter '$top' is invalid. It must be an integer between 1 and 1000.", raw)
	}
	if len(items) > n {
		items = items[:n]
	}
	return items, nil
}

// page writes a list, honouring $top, with a nextLink that keeps $filter.
func page(r *arm.Request, items []any) *arm.Error {
	items, e := top(r, items)
	if e != nil {
		return e
	}
	if items == nil {
		items = []any{}
	}
	return r.Page(items, 0, "$filter", "$top")
}

// systemData is ARM's record of who created and last changed a resource.
type systemData struct {
	CreatedBy          string    `json:"createdBy,omitempty"`
	CreatedByType      string    `json:"createdByType,omitempty"`
	CreatedAt          time.Time `json:"createdAt"`
	LastModifiedBy     string    `json:"lastModifiedBy,omitempty"`
	LastModifiedByType string    `json:"lastModifiedByType,omitempty"`
	LastModifiedAt     time.Time `json:"lastModifiedAt"`
}

func touched(old *systemData, caller string, now time.Time) *systemData {
	sd := &systemData{CreatedBy: caller, CreatedByType: "Application", CreatedAt: now}
	if old != nil {
		sd.CreatedBy, sd.CreatedByType, sd.CreatedAt = old.CreatedBy, old.CreatedByType, old.CreatedAt
	}
	sd.LastModifiedBy, sd.LastModifiedByType, sd.LastModifiedAt = caller, "Application", now
	return sd
}
