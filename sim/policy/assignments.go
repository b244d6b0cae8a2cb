package policy

import (
	"encoding/json"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/gitopsim/gitopsim/sim/arm"
)

const assignmentType = "Microsoft.Authorization/policyAssignments"

// assignmentNameRE is the name pattern of policyAssignments
// (PolicyAssignment.tsp); names are at most 64 characters.
var assignmentNameRE = regexp.MustCompile(`^[^<>*%&:\\?.+/]*[^<>*%&:\\?.+/ ]+$`)

// assignment is a policy assignment as stored and returned.
type assignment struct {
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	Name       string          `json:"name"`
	Location   string          `json:"location,omitempty"`
	Identity   *identity       `json:"identity,omitempty"`
	Properties assignmentProps `json:"properties"`
	SystemData *systemData     `json:"systemData,omitempty"`
}

type assignmentProps struct {
	DisplayName           string                `json:"displayName,omitempty"`
	Description           string                `json:"description,omitempty"`
	PolicyDefinitionID    string                `json:"policyDefinitionId"`
	DefinitionVersion     string                `json:"definitionVersion,omitempty"`
	Scope                 string                `json:"scope"`
	NotScopes             []string              `json:"notScopes"`
	Parameters            map[string]paramValue `json:"parameters"`
	Metadata              map[string]any        `json:"metadata"`
	EnforcementMode       string                `json:"enforcementMode"`
	NonComplianceMessages json.RawMessage       `json:"nonComplianceMessages,omitempty"`
	Overrides             json.RawMessage       `json:"overrides,omitempty"`
	ResourceSelectors     json.RawMessage       `json:"resourceSelectors,omitempty"`
	InstanceID            string                `json:"instanceId"`
	AssignmentType        string                `json:"assignmentType,omitempty"`
}

// identity is a managed identity of an assignment.
type identity struct {
	Type                   string                     `json:"type"`
	PrincipalID            string                     `json:"principalId,omitempty"`
	TenantID               string                     `json:"tenantId,omitempty"`
	UserAssignedIdentities map[string]*userAssignedID `json:"userAssignedIdentities,omitempty"`
}

type userAssignedID struct {
	PrincipalID string `json:"principalId,omitempty"`
	ClientID    string `json:"clientId,omitempty"`
}

// Assignment is what other components (evaluation, remediation) read of
// a policy assignment.
type Assignment struct {
	ID                 string
	Scope              string
	PolicyDefinitionID string
	// Parameters are the values given, as JSON, by parameter name;
	// defaults of the definition are not filled in.
	Parameters      map[string]json.RawMessage
	EnforcementMode string
	NotScopes       []string
	// PrincipalID is the system-assigned identity's object id, or "".
	PrincipalID string
	Location    string
}

// Assignments returns the policy assignments, ordered by id.
func (p *Provider) Assignments() []Assignment {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Assignment
	for _, a := range sortedValues(p.st.Assignments) {
		x := Assignment{ID: a.ID, Scope: a.Properties.Scope, PolicyDefinitionID: a.Properties.PolicyDefinitionID,
			Parameters: map[string]json.RawMessage{}, EnforcementMode: a.Properties.EnforcementMode,
			NotScopes: append([]string(nil), a.Properties.NotScopes...), Location: a.Location}
		for k, v := range a.Properties.Parameters {
			x.Parameters[k] = v.Value
		}
		if a.Identity != nil {
			x.PrincipalID = a.Identity.PrincipalID
		}
		out = append(out, x)
	}
	return out
}

func assignmentID(r *arm.Request) string {
	return scopeOf(r) + "/providers/Microsoft.Authorization/policyAssignments/" + r.Var("name")
}

func (p *Provider) getAssignment(r *arm.Request) *arm.Error {
	p.mu.Lock()
	a := p.st.Assignments[key(assignmentID(r))]
	p.mu.Unlock()
	if a == nil {
		return notFound(CodePolicyAssignmentNotFound, "The policy assignment '%s' is not found.", r.Var("name"))
	}
	r.JSON(http.StatusOK, a)
	return nil
}

// assignmentRequest is the writable part of an assignment.
type assignmentRequest struct {
	Location   string    `json:"location"`
	Identity   *identity `json:"identity"`
	Properties struct {
		DisplayName           string                     `json:"displayName"`
		Description           string                     `json:"description"`
		PolicyDefinitionID    string                     `json:"policyDefinitionId"`
		DefinitionVersion     string                     `json:"definitionVersion"`
		NotScopes             []string                   `json:"notScopes"`
		Parameters            map[string]json.RawMessage `json:"parameters"`
		Metadata              map[string]any             `json:"metadata"`
		EnforcementMode       string                     `json:"enforcementMode"`
		NonComplianceMessages json.RawMessage            `json:"nonComplianceMessages"`
		Overrides             json.RawMessage            `json:"overrides"`
		ResourceSelectors     json.RawMessage            `json:"resourceSelectors"`
	} `json:"properties"`
}

func (p *Provider) putAssignment(r *arm.Request) *arm.Error {
	name := r.Var("name")
	if !assignmentNameRE.MatchString(name) || len(name) > 64 {
		return badRequest(CodeInvalidPolicyAssignmentName, "The policy assignment name '%s' is invalid. The name must match the pattern '^[^<>*%%&:\\?.+/]*[^<>*%%&:\\?.+/ ]+$' and must not exceed '64' characters.", name)
	}
	var req assignmentRequest
	if e := readBody(r, &req); e != nil {
		return e
	}
	if e := p.checkScope(r); e != nil {
		return e
	}
	id := assignmentID(r)
	props := req.Properties
	mode, e := enforcementMode(props.EnforcementMode)
	if e != nil {
		return e
	}
	if len(props.NotScopes) > 400 {
		return badRequest(arm.CodeInvalidRequestContent, "The policy assignment '%s' has %d notScopes; at most 400 are allowed.", name, len(props.NotScopes))
	}
	values := map[string]paramValue{}
	for _, pn := range sortedKeys(props.Parameters) {
		var v map[string]json.RawMessage
		if err := json.Unmarshal(props.Parameters[pn], &v); err != nil || v["value"] == nil {
			return badRequest(CodeInvalidPolicyParameters, "The policy assignment '%s' has an invalid value for parameter '%s': a parameter value must be an object with a 'value' property.", name, pn)
		}
		values[pn] = paramValue{Value: v["value"]}
	}
	id2, e := newIdentity(req.Identity, id, p.srv.TenantID())
	if e != nil {
		return e
	}

	p.mu.Lock()
	params, effect, e := p.definitionParamsLocked(props.PolicyDefinitionID)
	if e != nil {
		p.mu.Unlock()
		return e
	}
	old := p.st.Assignments[key(id)]
	p.mu.Unlock()

	if e := checkValues(name, props.PolicyDefinitionID, params, values); e != nil {
		return e
	}
	if effect != "" && (id2 == nil || strings.EqualFold(id2.Type, "None")) {
		if effect == "Modify" {
			return badRequest(CodeResourceIdentityRequired, "The policy assignment '%s' request is invalid. Policy assignments must include a resource identity when assigning 'Modify' policy definitions.", name)
		}
		return badRequest(CodeResourceIdentityRequired, "The policy assignment '%s' request is invalid. Policy assignments must include a 'managed identity' when assigning 'DeployIfNotExists' policy definitions or policy definitions that contain a deployment in the effect details.", name)
	}
	if e := checkLocation(name, old, req.Location, id2); e != nil {
		return e
	}

	a := &assignment{ID: id, Type: assignmentType, Name: name, Location: req.Location, Identity: id2}
	a.Properties = assignmentProps{
		DisplayName: props.DisplayName, Description: props.Description, PolicyDefinitionID: props.PolicyDefinitionID,
		DefinitionVersion: props.DefinitionVersion, Scope: scopeOf(r), NotScopes: props.NotScopes, Parameters: values,
		Metadata: props.Metadata, EnforcementMode: mode, NonComplianceMessages: props.NonComplianceMessages,
		Overrides: props.Overrides, ResourceSelectors: props.ResourceSelectors, AssignmentType: "Custom",
	}
	if a.Properties.NotScopes == nil {
		a.Properties.NotScopes = []string{}
	}
	if a.Properties.Metadata == nil {
		a.Properties.Metadata = map[string]any{}
	}
	now := r.Now().UTC().Format(time.RFC3339Nano)
	if old != nil {
		// A replace keeps the assignment's identity in time: id spelling,
		// instance and creation record.
		a.ID, a.Properties.Scope, a.Properties.InstanceID = old.ID, old.Properties.Scope, old.Properties.InstanceID
		a.Properties.Metadata["createdBy"], a.Properties.Metadata["createdOn"] = old.Properties.Metadata["createdBy"], old.Properties.Metadata["createdOn"]
		a.Properties.Metadata["updatedBy"], a.Properties.Metadata["updatedOn"] = r.Caller(), now
		a.SystemData = touched(old.SystemData, r.Caller(), r.Now())
	} else {
		a.Properties.InstanceID = guidFor("instance:" + id + ":" + now)
		a.Properties.Metadata["createdBy"], a.Properties.Metadata["createdOn"] = r.Caller(), now
		a.Properties.Metadata["updatedBy"], a.Properties.Metadata["updatedOn"] = nil, nil
		a.SystemData = touched(nil, r.Caller(), r.Now())
	}
	p.mu.Lock()
	p.st.Assignments[key(id)] = a
	p.mu.Unlock()
	if e := p.srv.Persist(); e != nil {
		return e
	}
	p.log.Info("policy assignment written", "id", a.ID, "definition", a.Properties.PolicyDefinitionID, "enforcementMode", mode)
	// Assignments answer 201 on create and on replace alike.
	r.JSON(http.StatusCreated, a)
	return nil
}

// definitionParamsLocked resolves an assignment's policyDefinitionId to
// its parameters and to what it can deploy; p.mu held.
func (p *Provider) definitionParamsLocked(id string) (map[string]paramDef, string, *arm.Error) {
	if id == "" {
		return nil, "", badRequest(arm.CodeInvalidRequestContent, "The policy assignment request is invalid: the property 'policyDefinitionId' is required.")
	}
	if isSetDefinitionID(id) {
		s := p.setDefinitionByIDLocked(id)
		if s == nil {
			return nil, "", notFound(CodePolicySetDefinitionNotFound, "The policy assignment create request is invalid. The policy set definition '%s' could not be found.", id)
		}
		return s.Properties.Parameters, p.setDeployEffectLocked(s), nil
	}
	d := p.definitionByIDLocked(id)
	if d == nil {
		return nil, "", notFound(CodePolicyDefinitionNotFound, "The policy assignment create request is invalid. The policy definition '%s' could not be found.", id)
	}
	return d.props.Parameters, d.deployEffect(), nil
}

// checkValues checks assignment parameter values against the definition:
// every value names a parameter, every parameter without a default has
// a value, and values have the declared type and are allowed.
func checkValues(name, defID string, params map[string]paramDef, values map[string]paramValue) *arm.Error {
	defName := defID[strings.LastIndex(defID, "/")+1:]
	var undefined, missing []string
	for _, pn := range sortedKeys(values) {
		if _, ok := lookupParam(params, pn); !ok {
			undefined = append(undefined, pn)
		}
	}
	if len(undefined) > 0 {
		return badRequest(CodeUndefinedPolicyParameter, "The policy assignment '%s' is attempting to assign the parameter(s) '%s' which are not defined in the policy definition '%s'.", name, strings.Join(undefined, ", "), defName)
	}
	for _, pn := range sortedKeys(params) {
		given := false
		for vn := range values {
			given = given || strings.EqualFold(vn, pn)
		}
		if !given && len(params[pn].DefaultValue) == 0 {
			missing = append(missing, pn)
		}
	}
	if len(missing) > 0 {
		return badRequest(CodeMissingPolicyParameter, "The policy assignment '%s' is missing the parameter(s) '%s' as defined in the policy definition '%s'.", name, strings.Join(missing, ", "), defName)
	}
	for _, pn := range sortedKeys(values) {
		pd, _ := lookupParam(params, pn)
		v := values[pn].Value
		if !hasType(v, pd.Type) {
			return badRequest(CodeInvalidPolicyParameters, "The policy assignment '%s' has an invalid value for parameter '%s': the value '%s' is not of type '%s'.", name, pn, plain(v), pd.Type)
		}
		// Allowed values compare exactly: the GitOps built-ins list
		// 'deployIfNotExists' and 'DeployIfNotExists' for that reason.
		if len(pd.AllowedValues) > 0 && !containsJSON(pd.AllowedValues, v) {
			return badRequest(CodeParameterValueNotAllowed, "The policy assignment '%s' parameter '%s' value '%s' is not allowed. Allowed values: '%s'.", name, pn, plain(v), joinPlain(pd.AllowedValues))
		}
	}
	return nil
}

// hasType reports whether a JSON value fits a parameter type.
func hasType(v json.RawMessage, typ string) bool {
	var x any
	if json.Unmarshal(v, &x) != nil {
		return false
	}
	if x == nil {
		return true
	}
	switch strings.ToLower(typ) {
	case "string", "datetime":
		_, ok := x.(string)
		return ok
	case "array":
		_, ok := x.([]any)
		return ok
	case "object":
		_, ok := x.(map[string]any)
		return ok
	case "boolean":
		_, ok := x.(bool)
		return ok
	case "integer":
		f, ok := x.(float64)
		return ok && f == float64(int64(f))
	case "float":
		_, ok := x.(float64)
		return ok
	}
	return true
}

func enforcementMode(m string) (string, *arm.Error) {
	for _, v := range []string{"Default", "DoNotEnforce", "Enroll"} {
		if m == "" || strings.EqualFold(m, v) {
			if m == "" {
				return "Default", nil
			}
			return v, nil
		}
	}
	return "", badRequest(arm.CodeInvalidRequestContent, "The request content was invalid and could not be deserialized: could not convert '%s' to an enforcement mode; allowed values are Default, DoNotEnforce and Enroll.", m)
}

// newIdentity fills in the read-only members of a requested identity.
func newIdentity(req *identity, assignmentID, tenant string) (*identity, *arm.Error) {
	if req == nil {
		return nil, nil
	}
	switch {
	case strings.EqualFold(req.Type, "SystemAssigned"):
		return &identity{Type: "SystemAssigned", PrincipalID: guidFor("principal:" + assignmentID), TenantID: tenant}, nil
	case strings.EqualFold(req.Type, "UserAssigned"):
		if len(req.UserAssignedIdentities) != 1 {
			return nil, badRequest(arm.CodeInvalidRequestContent, "The policy assignment identity is invalid: exactly one user assigned identity must be given.")
		}
		out := &identity{Type: "UserAssigned", UserAssignedIdentities: map[string]*userAssignedID{}}
		for uid := range req.UserAssignedIdentities {
			out.UserAssignedIdentities[uid] = &userAssignedID{PrincipalID: guidFor("principal:" + uid), ClientID: guidFor("client:" + uid)}
		}
		return out, nil
	case strings.EqualFold(req.Type, "None"):
		return &identity{Type: "None"}, nil
	}
	return nil, badRequest(arm.CodeInvalidRequestContent, "The request content was invalid and could not be deserialized: could not convert '%s' to an identity type; allowed values are SystemAssigned, UserAssigned and None.", req.Type)
}

// checkLocation: an identity needs a location, and a location, once
// set, never changes.
func checkLocation(name string, old *assignment, loc string, id *identity) *arm.Error {
	if id != nil && !strings.EqualFold(id.Type, "None") && loc == "" {
		return badRequest(CodeLocationRequired, "The policy assignment '%s' request is invalid. A location is required for a policy assignment with a managed identity.", name)
	}
	if strings.EqualFold(loc, "global") {
		return badRequest(arm.CodeInvalidParameter, "The policy assignment '%s' request is invalid. The location 'global' is not allowed for a policy assignment.", name)
	}
	if old != nil && old.Location != "" && loc != "" && !strings.EqualFold(old.Location, loc) {
		return badRequest(CodeInvalidLocationUpdate, "The existing assignment location cannot be changed from '%s' to '%s'.", old.Location, loc)
	}
	return nil
}

func (p *Provider) patchAssignment(r *arm.Request) *arm.Error {
	var req struct {
		Location   string    `json:"location"`
		Identity   *identity `json:"identity"`
		Properties struct {
			Overrides         json.RawMessage `json:"overrides"`
			ResourceSelectors json.RawMessage `json:"resourceSelectors"`
		} `json:"properties"`
	}
	if e := readBody(r, &req); e != nil {
		return e
	}
	id := assignmentID(r)
	p.mu.Lock()
	old := p.st.Assignments[key(id)]
	var cp assignment
	if old != nil {
		b, _ := json.Marshal(old)
		_ = json.Unmarshal(b, &cp)
	}
	p.mu.Unlock()
	if old == nil {
		return notFound(CodePolicyAssignmentNotFound, "The policy assignment '%s' is not found.", r.Var("name"))
	}
	a := &cp
	if req.Identity != nil {
		nid, e := newIdentity(req.Identity, a.ID, p.srv.TenantID())
		if e != nil {
			return e
		}
		a.Identity = nid
	}
	loc := a.Location
	if req.Location != "" {
		loc = req.Location
	}
	if e := checkLocation(a.Name, old, loc, a.Identity); e != nil {
		return e
	}
	a.Location = loc
	if req.Properties.Overrides != nil {
		a.Properties.Overrides = req.Properties.Overrides
	}
	if req.Properties.ResourceSelectors != nil {
		a.Properties.ResourceSelectors = req.Properties.ResourceSelectors
	}
	a.Properties.Metadata["updatedBy"], a.Properties.Metadata["updatedOn"] = r.Caller(), r.Now().UTC().Format(time.RFC3339Nano)
	a.SystemData = touched(old.SystemData, r.Caller(), r.Now())
	p.mu.Lock()
	p.st.Assignments[key(id)] = a
	p.mu.Unlock()
	if e := p.srv.Persist(); e != nil {
		return e
	}
	r.JSON(http.StatusOK, a)
	return nil
}

func (p *Provider) deleteAssignment(r *arm.Request) *arm.Error {
	id := assignmentID(r)
	p.mu.Lock()
	a := p.st.Assignments[key(id)]
	delete(p.st.Assignments, key(id))
	p.mu.Unlock()
	if a == nil {
		r.Empty(http.StatusNoContent)
		return nil
	}
	if e := p.srv.Persist(); e != nil {
		return e
	}
	p.log.Info("policy assignment deleted", "id", a.ID)
	r.JSON(http.StatusOK, a)
	return nil
}

// listAssignments lists the assignments that apply at a scope (at it and
// above it) and, without $filter, those below it too.
func (p *Provider) listAssignments(r *arm.Request) *arm.Error {
	f, e := parseFilter(r, "policyDefinitionId")
	if e != nil {
		return e
	}
	scope := scopeOf(r)
	if r.Var("rg") != "" {
		if e := p.checkScope(r); e != nil {
			return e
		}
	}
	p.mu.Lock()
	var list []*assignment
	for _, a := range p.st.Assignments {
		s := a.Properties.Scope
		above, below := within(scope, s), within(s, scope) && key(s) != key(scope)
		switch {
		case f.atExactScope && key(s) != key(scope):
			continue
		case f.atScope && !above:
			continue
		case !above && !below:
			continue
		}
		if v, ok := f.eq["policydefinitionid"]; ok && key(v) != key(a.Properties.PolicyDefinitionID) {
			continue
		}
		list = append(list, a)
	}
	p.mu.Unlock()
	sort.Slice(list, func(i, j int) bool { return key(list[i].ID) < key(list[j].ID) })
	items := make([]any, len(list))
	for i, a := range list {
		items[i] = a
	}
	return page(r, items)
}

// isSetDefinitionID reports whether a policyDefinitionId names an
// initiative.
func isSetDefinitionID(id string) bool {
	return strings.Contains(strings.ToLower(id), "/policysetdefinitions/")
}

// setDefinitionByIDLocked returns an initiative by id, or nil; p.mu held.
func (p *Provider) setDefinitionByIDLocked(id string) *setDefinition {
	if !isSetDefinitionID(id) {
		return nil
	}
	return p.st.SetDefinitions[key(id)]
}
