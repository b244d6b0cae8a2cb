package engine

import (
	"fmt"
	"strings"
)

// Resource is one ARM resource as a GET returns it: id, name, type,
// location, tags, kind, properties and whatever else the provider stores.
// Values follow encoding/json's model; integral numbers may be float64.
type Resource map[string]any

// ParseResource decodes a resource from JSON.
func ParseResource(raw []byte) (Resource, error) {
	v, err := decodeJSON(raw)
	if err != nil {
		return nil, fmt.Errorf("parse resource: %w", err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("parse resource: a resource is a JSON object, got %s", typeName(v))
	}
	return Resource(m), nil
}

func (r Resource) str(key string) string {
	if _, v, ok := lookupFold(r, key); ok {
		s, _ := v.(string)
		return s
	}
	return ""
}

// ID returns the resource's "id".
func (r Resource) ID() string { return r.str("id") }

// Name returns the resource's "name".
func (r Resource) Name() string { return r.str("name") }

// Type returns the resource's "type".
func (r Resource) Type() string { return r.str("type") }

// Location returns the resource's "location".
func (r Resource) Location() string { return r.str("location") }

// ResourceGroup describes the resource group of the evaluated resource, for
// resourceGroup() in rules and templates. Name and ID default to what the
// resource's ID says; Location is known only when given.
type ResourceGroup struct {
	Name      string
	Location  string
	Tags      map[string]string
	ManagedBy string
}

// Subscription describes the subscription, for subscription(). ID defaults
// to the one in the resource's ID.
type Subscription struct {
	ID          string // the subscription GUID
	DisplayName string
	TenantID    string
}

// RelatedQuery says which related resources an auditIfNotExists or
// deployIfNotExists rule looks for. The engine works out where ARM would
// find them; the caller only reads its store.
type RelatedQuery struct {
	// Type is details.type, e.g.
	// Microsoft.KubernetesConfiguration/sourceControlConfigurations.
	Type string
	// Name is details.name after evaluation; "" when the rule names none,
	// and it ends in "/?" or is "?" when it names a collection.
	Name string
	// ID is the full resource ID of the one resource Name identifies, or
	// "" when the query is for every resource of Type under Scope.
	ID string
	// Scope is where the resources live: the evaluated resource's ID for
	// child and extension types (a sourceControlConfiguration under a
	// cluster), otherwise the resource group's or the subscription's ID.
	Scope string
}

// Related returns the resources a query asks for: the resource at q.ID (an
// empty result when it does not exist), or every resource of q.Type under
// q.Scope. The engine filters the result again by type and name.
type Related func(q RelatedQuery) ([]Resource, error)

// resourceID is a parsed ARM resource ID.
type resourceID struct {
	subscription  string
	resourceGroup string
	namespace     string   // of the last provider segment
	types, names  []string // after the last provider namespace
	parent        string   // the ID before the last "/providers/", for extension resources
}

// parseResourceID parses /subscriptions/{s}[/resourceGroups/{rg}][/providers/{ns}/{type}/{name}...]...
func parseResourceID(id string) (resourceID, bool) {
	var r resourceID
	segs := strings.Split(strings.Trim(id, "/"), "/")
	if len(segs) < 2 || !strings.EqualFold(segs[0], "subscriptions") {
		return r, false
	}
	r.subscription = segs[1]
	i := 2
	if i+1 < len(segs) && strings.EqualFold(segs[i], "resourceGroups") {
		r.resourceGroup = segs[i+1]
		i += 2
	}
	last := -1
	for j := i; j < len(segs); j++ {
		if strings.EqualFold(segs[j], "providers") {
			last = j
		}
	}
	if last < 0 {
		return r, true
	}
	rest := segs[last+1:]
	if len(rest) < 3 || len(rest)%2 == 0 {
		return r, false
	}
	r.namespace = rest[0]
	for j := 1; j+1 < len(rest); j += 2 {
		r.types = append(r.types, rest[j])
		r.names = append(r.names, rest[j+1])
	}
	if last > i {
		r.parent = "/" + strings.Join(segs[:last], "/")
	}
	return r, true
}

// fullType is the resource type the ID names, e.g.
// Microsoft.KubernetesConfiguration/sourceControlConfigurations.
func (r resourceID) fullType() string {
	return r.namespace + "/" + strings.Join(r.types, "/")
}

// resourceGroupID is the ID of the resource group the resource lives in.
func (r resourceID) resourceGroupID() string {
	if r.resourceGroup == "" {
		return "/subscriptions/" + r.subscription
	}
	return "/subscriptions/" + r.subscription + "/resourceGroups/" + r.resourceGroup
}

// extensionTypes are resource types that live under another resource
// through "/providers/" (ARM extension resources) rather than in a resource
// group, so a related-resource query for one looks under the evaluated
// resource. Constant data.
var extensionTypes = map[string]bool{
	"microsoft.kubernetesconfiguration/sourcecontrolconfigurations": true,
	"microsoft.kubernetesconfiguration/extensions":                  true,
	"microsoft.kubernetesconfiguration/fluxconfigurations":          true,
	"microsoft.insights/diagnosticsettings":                         true,
	"microsoft.authorization/locks":                                 true,
	"microsoft.authorization/roleassignments":                       true,
	"microsoft.authorization/policyassignments":                     true,
	"microsoft.guestconfiguration/guestconfigurationassignments":    true,
	"microsoft.security/advancedthreatprotectionsettings":           true,
	"microsoft.resources/tags":                                      true,
}

// relatedQuery works out where ARM keeps the related resources of type typ
// and (evaluated) name for the evaluated resource, following
// effect-deploy-if-not-exists.md: types underneath the evaluated resource
// (children and extensions) are looked up within it; other types in the
// resource group (resourceGroupName, default the resource's own) or, with
// existenceScope Subscription, in the whole subscription.
func relatedQuery(evaluated Resource, typ, name, rgName, existenceScope string) (RelatedQuery, error) {
	q := RelatedQuery{Type: typ, Name: name}
	id, ok := parseResourceID(evaluated.ID())
	if !ok {
		return q, fmt.Errorf("the evaluated resource has no valid id '%s': %w", evaluated.ID(), ErrEvaluation)
	}
	collection := name == "" || name == "?" || strings.HasSuffix(name, "/?")
	evalType := strings.ToLower(evaluated.Type())
	lt := strings.ToLower(typ)
	switch {
	case extensionTypes[lt]:
		q.Scope = evaluated.ID()
		if !collection {
			tsegs := strings.Split(typ, "/")
			idStr, err := buildResourceID(q.Scope, typ, strings.Split(name, "/"))
			if err != nil || len(tsegs) < 2 {
				return q, fmt.Errorf("details.name '%s' does not fit details.type '%s': %w", name, typ, ErrEvaluation)
			}
			q.ID = idStr
		}
	case strings.HasPrefix(lt, evalType+"/"):
		q.Scope = evaluated.ID()
		if !collection {
			child := strings.Split(typ[len(evalType)+1:], "/")
			names := strings.Split(name, "/")
			if len(names) != len(child) {
				return q, fmt.Errorf("details.name '%s' needs %d segment(s) for the child type '%s': %w", name, len(child), typ, ErrEvaluation)
			}
			var b strings.Builder
			b.WriteString(q.Scope)
			for i := range child {
				b.WriteString("/" + child[i] + "/" + names[i])
			}
			q.ID = b.String()
		}
	default:
		rg := id.resourceGroup
		if rgName != "" {
			rg = rgName
		}
		q.Scope = "/subscriptions/" + id.subscription + "/resourceGroups/" + rg
		if strings.EqualFold(existenceScope, "Subscription") {
			q.Scope = "/subscriptions/" + id.subscription
			break
		}
		if !collection {
			idStr, err := buildResourceID(q.Scope, typ, strings.Split(name, "/"))
			if err != nil {
				return q, fmt.Errorf("details.name '%s' does not fit details.type '%s': %w", name, typ, ErrEvaluation)
			}
			q.ID = idStr
		}
	}
	return q, nil
}

// matchesQuery filters what a Related function returned: same type, and
// the same name (last segment) unless the query is for a collection.
func matchesQuery(r Resource, q RelatedQuery) bool {
	if !strings.EqualFold(r.Type(), q.Type) {
		return false
	}
	if q.ID != "" {
		return strings.EqualFold(strings.TrimRight(r.ID(), "/"), q.ID)
	}
	return true
}
