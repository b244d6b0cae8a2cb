package policy

import (
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/gitopsim/gitopsim/sim/arm"
)

const (
	roleDefinitionType = "Microsoft.Authorization/roleDefinitions"
	roleAssignmentType = "Microsoft.Authorization/roleAssignments"
	roleDefPrefix      = "/providers/Microsoft.Authorization/roleDefinitions/"
)

// Built-in role definition ids.
const (
	RoleOwner                     = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
	RoleContributor               = "b24988ac-6180-42a0-ab88-20f7382dd24c"
	RoleReader                    = "acdd72a7-3ff4-4c6f-a9d0-1e1fb5b0d6b4"
	RoleUserAccessAdministrator   = "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9"
	RoleResourcePolicyContributor = "36243c78-bf99-498c-9df9-86d9f8d28608"
)

// roleDef is a built-in role definition.
type roleDef struct {
	name, roleName, description string
	actions, notActions         []string
}

// builtInRoles are the roles the GitOps policies and their callers use.
var builtInRoles = []roleDef{
	{RoleContributor, "Contributor", "Grants full access to manage all resources, but does not allow you to assign roles in Azure RBAC, manage assignments in Azure Blueprints, or share image galleries.",
		[]string{"*"}, []string{"Microsoft.Authorization/*/Delete", "Microsoft.Authorization/*/Write", "Microsoft.Authorization/elevateAccess/Action", "Microsoft.Blueprint/blueprintAssignments/write", "Microsoft.Blueprint/blueprintAssignments/delete", "Microsoft.Compute/galleries/share/action", "Microsoft.Purview/consents/write", "Microsoft.Purview/consents/delete", "Microsoft.Resources/deploymentStacks/manageDenySetting/action", "Microsoft.Subscription/cancel/action", "Microsoft.Subscription/enable/action"}},
	{RoleOwner, "Owner", "Grants full access to manage all resources, including the ability to assign roles in Azure RBAC.", []string{"*"}, []string{}},
	{RoleReader, "Reader", "View all resources, but does not allow you to make any changes.", []string{"*/read"}, []string{}},
	{RoleUserAccessAdministrator, "User Access Administrator", "Lets you manage user access to Azure resources.", []string{"*/read", "Microsoft.Authorization/*", "Microsoft.Support/*"}, []string{}},
	{RoleResourcePolicyContributor, "Resource Policy Contributor", "Users with rights to create/modify resource policy, create support ticket and read resources/hierarchy.", []string{"*/read", "Microsoft.Authorization/policyassignments/*", "Microsoft.Authorization/policydefinitions/*", "Microsoft.Authorization/policyexemptions/*", "Microsoft.Authorization/policysetdefinitions/*", "Microsoft.PolicyInsights/*", "Microsoft.Support/*"}, []string{}},
}

// roleGUID is the last segment of a role definition id, or the id.
func roleGUID(id string) string { return strings.ToLower(id[strings.LastIndex(id, "/")+1:]) }

func findRole(id string) *roleDef {
	g := roleGUID(id)
	for i := range builtInRoles {
		if builtInRoles[i].name == g {
			return &builtInRoles[i]
		}
	}
	return nil
}

// roleView is a role definition as read at a scope ("" for the tenant).
func roleView(rd *roleDef, scope string) any {
	sub := scope
	if i := strings.Index(strings.ToLower(scope+"/"), "/resourcegroups/"); i >= 0 {
		sub = scope[:i]
	}
	created := time.Date(2015, 2, 2, 21, 55, 9, 880000000, time.UTC)
	return map[string]any{
		"id": sub + roleDefPrefix + rd.name, "name": rd.name, "type": roleDefinitionType,
		"properties": map[string]any{
			"roleName": rd.roleName, "type": "BuiltInRole", "description": rd.description,
			"assignableScopes": []string{"/"},
			"permissions": []map[string]any{{
				"actions": rd.actions, "notActions": rd.notActions, "dataActions": []string{}, "notDataActions": []string{},
			}},
			"createdOn": created, "updatedOn": created, "createdBy": nil, "updatedBy": nil,
		},
	}
}

func (p *Provider) getRoleDefinition(r *arm.Request) *arm.Error {
	rd := findRole(r.Var("name"))
	if rd == nil {
		return notFound(CodeRoleDefinitionNotFound, "The role definition '%s' could not be found.", r.Var("name"))
	}
	r.JSON(http.StatusOK, roleView(rd, scopeOf(r)))
	return nil
}

func (p *Provider) listRoleDefinitions(r *arm.Request) *arm.Error {
	f, e := parseFilter(r, "roleName", "type")
	if e != nil {
		return e
	}
	var items []any
	for i := range builtInRoles {
		rd := &builtInRoles[i]
		if v, ok := f.eq["rolename"]; ok && !strings.EqualFold(v, rd.roleName) {
			continue
		}
		if v, ok := f.eq["type"]; ok && !strings.EqualFold(v, "BuiltInRole") {
			continue
		}
		items = append(items, roleView(rd, scopeOf(r)))
	}
	return page(r, items)
}

// roleAssignment is a role assignment as stored.
type roleAssignment struct {
	ID               string    `json:"id"`
	Name             string    `json:"name"`
	Scope            string    `json:"scope"`
	RoleDefinitionID string    `json:"roleDefinitionId"`
	PrincipalID      string    `json:"principalId"`
	PrincipalType    string    `json:"principalType"`
	Description      string    `json:"description,omitempty"`
	CreatedOn        time.Time `json:"createdOn"`
	CreatedBy        string    `json:"createdBy"`
}

func (ra *roleAssignment) view() any {
	props := map[string]any{
		"roleDefinitionId": ra.RoleDefinitionID, "principalId": ra.PrincipalID, "principalType": ra.PrincipalType,
		"scope": ra.Scope, "condition": nil, "conditionVersion": nil,
		"createdOn": ra.CreatedOn, "updatedOn": ra.CreatedOn, "createdBy": ra.CreatedBy, "updatedBy": ra.CreatedBy,
		"delegatedManagedIdentityResourceId": nil, "description": nil,
	}
	if ra.Description != "" {
		props["description"] = ra.Description
	}
	return map[string]any{"id": ra.ID, "name": ra.Name, "type": roleAssignmentType, "properties": props}
}

func roleAssignmentID(r *arm.Request) string {
	return scopeOf(r) + "/providers/Microsoft.Authorization/roleAssignments/" + r.Var("name")
}

func (p *Provider) getRoleAssignment(r *arm.Request) *arm.Error {
	p.mu.Lock()
	ra := p.st.RoleAssignments[key(roleAssignmentID(r))]
	p.mu.Unlock()
	if ra == nil {
		return notFound(CodeRoleAssignmentNotFound, "The role assignment '%s' is not found.", r.Var("name"))
	}
	r.JSON(http.StatusOK, ra.view())
	return nil
}

func (p *Provider) putRoleAssignment(r *arm.Request) *arm.Error {
	name := r.Var("name")
	if !guidRE.MatchString(name) {
		return badRequest(CodeInvalidRoleAssignmentID, "The role assignment ID '%s' is not valid. The role assignment ID must be a GUID.", name)
	}
	var req struct {
		Properties struct {
			RoleDefinitionID string `json:"roleDefinitionId"`
			PrincipalID      string `json:"principalId"`
			PrincipalType    string `json:"principalType"`
			Description      string `json:"description"`
		} `json:"properties"`
	}
	if e := readBody(r, &req); e != nil {
		return e
	}
	in := req.Properties
	if !guidRE.MatchString(in.PrincipalID) {
		return badRequest(CodeInvalidPrincipalID, "A valid principal ID must be provided for role assignment.")
	}
	if findRole(in.RoleDefinitionID) == nil || !strings.Contains(strings.ToLower(in.RoleDefinitionID), strings.ToLower(roleDefPrefix)) {
		return badRequest(CodeRoleDefinitionNotFound, "The specified role definition with ID '%s' does not exist.", roleGUID(in.RoleDefinitionID))
	}
	if in.PrincipalType == "" {
		in.PrincipalType = "User"
	}
	if e := p.checkScope(r); e != nil {
		return e
	}
	id, scope := roleAssignmentID(r), scopeOf(r)
	ra := &roleAssignment{ID: id, Name: name, Scope: scope, RoleDefinitionID: in.RoleDefinitionID, PrincipalID: in.PrincipalID,
		PrincipalType: in.PrincipalType, Description: in.Description, CreatedOn: r.Now().UTC(), CreatedBy: r.Caller()}
	p.mu.Lock()
	if old := p.st.RoleAssignments[key(id)]; old != nil {
		p.mu.Unlock()
		if roleGUID(old.RoleDefinitionID) == roleGUID(in.RoleDefinitionID) && strings.EqualFold(old.PrincipalID, in.PrincipalID) {
			r.JSON(http.StatusCreated, old.view())
			return nil
		}
		return badRequest(CodeRoleAssignmentUpdateNotAllowed, "Tenant ID, application ID, principal ID, and scope are not allowed to be updated.")
	}
	for _, o := range p.st.RoleAssignments {
		if key(o.Scope) == key(scope) && strings.EqualFold(o.PrincipalID, in.PrincipalID) && roleGUID(o.RoleDefinitionID) == roleGUID(in.RoleDefinitionID) {
			p.mu.Unlock()
			return &arm.Error{Status: http.StatusConflict, Code: CodeRoleAssignmentExists, Message: "The role assignment already exists."}
		}
	}
	p.st.RoleAssignments[key(id)] = ra
	p.mu.Unlock()
	if e := p.srv.Persist(); e != nil {
		return e
	}
	p.log.Info("role assignment written", "id", id, "principal", in.PrincipalID, "role", roleGUID(in.RoleDefinitionID))
	r.JSON(http.StatusCreated, ra.view())
	return nil
}

func (p *Provider) deleteRoleAssignment(r *arm.Request) *arm.Error {
	id := roleAssignmentID(r)
	p.mu.Lock()
	ra := p.st.RoleAssignments[key(id)]
	delete(p.st.RoleAssignments, key(id))
	p.mu.Unlock()
	if ra == nil {
		r.Empty(http.StatusNoContent)
		return nil
	}
	if e := p.srv.Persist(); e != nil {
		return e
	}
	r.JSON(http.StatusOK, ra.view())
	return nil
}

// listRoleAssignments lists role assignments at, above and below a
// scope; atScope() keeps those at and above it, principalId eq and
// assignedTo() one principal's.
func (p *Provider) listRoleAssignments(r *arm.Request) *arm.Error {
	f, e := parseFilter(r, "principalId")
	if e != nil {
		return e
	}
	scope := scopeOf(r)
	principal := f.eq["principalid"]
	if f.assignedTo != "" {
		principal = f.assignedTo
	}
	p.mu.Lock()
	var list []*roleAssignment
	for _, ra := range p.st.RoleAssignments {
		above, below := within(scope, ra.Scope), within(ra.Scope, scope)
		if (f.atScope && !above) || (!above && !below) {
			continue
		}
		if principal != "" && !strings.EqualFold(principal, ra.PrincipalID) {
			continue
		}
		list = append(list, ra)
	}
	p.mu.Unlock()
	sort.Slice(list, func(i, j int) bool { return key(list[i].ID) < key(list[j].ID) })
	items := make([]any, len(list))
	for i, ra := range list {
		items[i] = ra.view()
	}
	return page(r, items)
}

// HasRole reports whether principalID holds the role at scope, directly
// or through an assignment at an enclosing scope (a role on a
// subscription covers its resource groups and their resources).
// roleDefinitionID may be a full role definition id or its GUID. The
// role must match exactly: a caller that would accept a wider role
// (Owner for Contributor) asks for it too.
func (p *Provider) HasRole(principalID, roleDefinitionID, scope string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, ra := range p.st.RoleAssignments {
		if strings.EqualFold(ra.PrincipalID, principalID) && roleGUID(ra.RoleDefinitionID) == roleGUID(roleDefinitionID) && within(scope, ra.Scope) {
			return true
		}
	}
	return false
}
