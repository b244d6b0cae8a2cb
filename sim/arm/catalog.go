package arm

import (
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// The catalog: Microsoft.Resources reads that list what the store holds
// rather than owning resources of their own (generic resource listing,
// tags, locations, tenants). They are what az resource, az tag and
// az account ask, on top of the typed providers.

// tagsVersions are the Microsoft.Resources api-versions that define the
// tags-at-scope operations ({scope}/providers/Microsoft.Resources/tags/default
// first appears in stable/2019-10-01/resources.json).
var tagsVersions = slices.DeleteFunc(slices.Clone(resourceVersions), func(v string) bool { return v < "2019-10-01" })

// catalogRoutes registers the catalog's routes; routes() calls it.
func (s *Server) catalogRoutes(add func(name, pattern string, versions []string, methods map[string]handler) *route) {
	const rg = "subscriptions/{sub}/resourceGroups/{rg}"
	add("locations", "subscriptions/{sub}/locations", subscriptionVersions, map[string]handler{http.MethodGet: s.listLocations})
	add("tenants", "tenants", subscriptionVersions, map[string]handler{http.MethodGet: s.listTenants})
	add("resources", "subscriptions/{sub}/resources", resourceVersions, map[string]handler{http.MethodGet: s.listResources})
	add("resourcesByGroup", rg+"/resources", resourceVersions, map[string]handler{http.MethodGet: s.listResources})
	add("tagNames", "subscriptions/{sub}/tagNames", resourceVersions, map[string]handler{http.MethodGet: s.listTagNames})
	tags := map[string]handler{http.MethodGet: s.tagsAtScope, http.MethodPut: s.tagsAtScope, http.MethodPatch: s.tagsAtScope, http.MethodDelete: s.tagsAtScope}
	add("groupTags", rg+"/providers/Microsoft.Resources/tags/default", tagsVersions, tags)
	add("resourceTags", rg+"/providers/{ns}/{type}/{name}/providers/Microsoft.Resources/tags/default", tagsVersions, tags)
}

// newestFirst returns versions sorted newest first, as ARM lists a
// provider's apiVersions: az resource show takes the first entry without
// "preview" (azure/cli/command_modules/resource/custom.py,
// _ResourceUtils.resolve_api_version).
func newestFirst(versions []string) []string {
	out := slices.Clone(versions)
	slices.Sort(out)
	slices.Reverse(out)
	return out
}

// ---- $filter, $expand, $top

// filterField says where a field may appear in a $filter.
type filterField int

const (
	fieldEq        filterField = 1 << iota // field eq 'v', field ne 'v'
	fieldSubstring                         // substringof('v', field)
	fieldTag                               // tagName/tagValue: eq only, never mixed with other fields
)

// resourceFilterFields are the fields Resources_List documents
// (specification/resources/resource-manager/Microsoft.Resources/stable/
// 2021-04-01/resources.json, parameter $filter of Resources_List), lower-case.
var resourceFilterFields = map[string]filterField{
	"resourcegroup": fieldEq | fieldSubstring, "name": fieldEq | fieldSubstring,
	"resourcetype": fieldEq, "location": fieldEq,
	"identity": fieldEq, "identity/principalid": fieldEq,
	"plan": fieldEq, "plan/publisher": fieldEq, "plan/product": fieldEq, "plan/name": fieldEq,
	"plan/version": fieldEq, "plan/promotioncode": fieldEq,
	"tagname": fieldTag, "tagvalue": fieldTag,
}

// groupFilterFields: ResourceGroups_List filters by tag only (same file,
// ResourceGroups_List); anything else is InvalidFilterInQueryString, as
// Azure/azure-sdk-for-go#2480 shows for name eq.
var groupFilterFields = map[string]filterField{"tagname": fieldTag, "tagvalue": fieldTag}

// term is one comparison of a $filter.
type term struct {
	op    string // eq, ne, substringof, startswith
	field string // lower-case
	value string
}

// filterExpr is a $filter in disjunctive form: any of the conjunctions
// must hold. Empty matches everything.
type filterExpr [][]term

// facts are what a $filter can ask about one listed item.
type facts struct {
	name, group, typ, location string
	identity, principalID      string
	tags                       map[string]string
}

func (f filterExpr) match(x facts) bool {
	if len(f) == 0 {
		return true
	}
	for _, and := range f {
		if matchAll(and, x) {
			return true
		}
	}
	return false
}

// byTag reports whether the filter selects by tag: ARM then leaves each
// result's tags out.
func (f filterExpr) byTag() bool {
	for _, and := range f {
		for _, t := range and {
			if t.field == "tagname" || t.field == "tagvalue" {
				return true
			}
		}
	}
	return false
}

func matchAll(and []term, x facts) bool {
	var tagName string
	hasName := false
	for _, t := range and {
		switch t.op {
		case "substringof":
			if !strings.Contains(strings.ToLower(x.field(t.field)), strings.ToLower(t.value)) {
				return false
			}
		case "startswith": // tagName only
			found := false
			for k := range x.tags {
				if strings.HasPrefix(strings.ToLower(k), strings.ToLower(t.value)) {
					found = true
					break
				}
			}
			if !found {
				return false
			}
		default:
			if t.field == "tagname" {
				tagName, hasName = t.value, true
				continue
			}
			if t.field == "tagvalue" {
				continue // checked with its tagName below
			}
			eq := x.equal(t.field, t.value)
			if eq != (t.op == "eq") {
				return false
			}
		}
	}
	if !hasName {
		return true
	}
	// Tag names compare case-insensitively, values exactly, as ARM's tags
	// do ("Tag names are case-insensitive ... tag values are case-sensitive",
	// learn.microsoft.com azure-resource-manager/management/tag-resources).
	for k, v := range x.tags {
		if strings.EqualFold(k, tagName) {
			for _, t := range and {
				if t.field == "tagvalue" && t.value != v {
					return false
				}
			}
			return true
		}
	}
	return false
}

func (x facts) field(f string) string {
	switch f {
	case "name":
		return x.name
	case "resourcegroup":
		return x.group
	}
	return ""
}

// equal compares one eq/ne field. Names, groups, types and identity types
// compare case-insensitively, as ARM ids do; locations in their normal
// form ("West Europe" is westeurope). Nothing in gitopsim has a plan.
func (x facts) equal(field, v string) bool {
	switch field {
	case "name":
		return strings.EqualFold(x.name, v)
	case "resourcegroup":
		return strings.EqualFold(x.group, v)
	case "resourcetype":
		return strings.EqualFold(x.typ, v)
	case "location":
		return normalizeLocation(x.location) == normalizeLocation(v)
	case "identity":
		return x.identity != "" && strings.EqualFold(x.identity, v)
	case "identity/principalid":
		return x.principalID != "" && strings.EqualFold(x.principalID, v)
	}
	return false
}

// parseFilter parses an OData $filter of the subset ARM evaluates:
// comparisons joined by and/or, substringof('v', field) and
// startswith(tagName, 'v'). Keywords and field names are case-insensitive
// (az sends "tagname eq"). Anything else is InvalidFilterInQueryString.
func parseFilter(raw string, fields map[string]filterField) (filterExpr, *Error) {
	bad := func() *Error {
		e := badRequest(CodeInvalidFilter, "Invalid $filter '%s' specified in the query string.", raw)
		e.Target = "$filter"
		return e
	}
	toks, ok := lexFilter(raw)
	if !ok {
		return nil, bad()
	}
	if len(toks) == 0 {
		return nil, nil // az resource list sends $filter= with nothing
	}
	p := &filterParser{toks: toks}
	var expr filterExpr
	var and []term
	for {
		t, ok := p.term()
		if !ok {
			return nil, bad()
		}
		flags, known := fields[t.field]
		switch {
		case !known:
			return nil, bad()
		case t.op == "substringof" && flags&fieldSubstring == 0,
			t.op == "startswith" && (flags&fieldTag == 0 || t.field != "tagname"),
			(t.op == "eq" || t.op == "ne") && flags&(fieldEq|fieldTag) == 0,
			t.op == "ne" && flags&fieldTag != 0:
			return nil, bad()
		}
		and = append(and, t)
		kw, more := p.next()
		if !more {
			break
		}
		switch strings.ToLower(kw) {
		case "and":
		case "or":
			expr, and = append(expr, and), nil
		default:
			return nil, bad()
		}
	}
	expr = append(expr, and)
	// ARM filters by tag through a separate index: a tag filter stands
	// alone (tagValue with its tagName), never or-ed nor combined with
	// other fields (Azure/azure-sdk-for-net#2757; az refuses --tag with
	// any other filter for that reason, custom.py
	// _list_resources_odata_filter_builder).
	if expr.byTag() {
		if len(expr) > 1 {
			return nil, bad()
		}
		names, values, starts := 0, 0, 0
		for _, t := range expr[0] {
			switch {
			case t.op == "startswith":
				starts++
			case t.field == "tagname":
				names++
			case t.field == "tagvalue":
				values++
			default:
				return nil, bad()
			}
		}
		if names+starts != 1 || values > names {
			return nil, bad()
		}
	}
	return expr, nil
}

type filterParser struct {
	toks []string
	pos  int
}

func (p *filterParser) next() (string, bool) {
	if p.pos >= len(p.toks) {
		return "", false
	}
	p.pos++
	return p.toks[p.pos-1], true
}

func (p *filterParser) expect(want string) bool {
	t, ok := p.next()
	return ok && t == want
}

// literal takes a quoted string token and returns its value.
func (p *filterParser) literal() (string, bool) {
	t, ok := p.next()
	if !ok || !strings.HasPrefix(t, "'") {
		return "", false
	}
	return t[1:], true
}

func (p *filterParser) ident() (string, bool) {
	t, ok := p.next()
	if !ok || t == "" || strings.HasPrefix(t, "'") || strings.ContainsAny(t, "(),") {
		return "", false
	}
	return strings.ToLower(t), true
}

// term parses one comparison or function call.
func (p *filterParser) term() (term, bool) {
	first, ok := p.ident()
	if !ok {
		return term{}, false
	}
	switch first {
	case "substringof":
		if !p.expect("(") {
			return term{}, false
		}
		v, ok1 := p.literal()
		ok2 := p.expect(",")
		f, ok3 := p.ident()
		if !ok1 || !ok2 || !ok3 || !p.expect(")") {
			return term{}, false
		}
		return term{op: first, field: f, value: v}, true
	case "startswith":
		if !p.expect("(") {
			return term{}, false
		}
		f, ok1 := p.ident()
		ok2 := p.expect(",")
		v, ok3 := p.literal()
		if !ok1 || !ok2 || !ok3 || !p.expect(")") {
			return term{}, false
		}
		return term{op: first, field: f, value: v}, true
	}
	op, ok := p.ident()
	if !ok || (op != "eq" && op != "ne") {
		return term{}, false
	}
	v, ok := p.literal()
	return term{op: op, field: first, value: v}, ok
}

// lexFilter splits a $filter into words, "(", ")", "," and quoted strings
// (returned as "'" + value; inside one, a quote is written twice).
func lexFilter(s string) ([]string, bool) {
	var toks []string
	for i := 0; i < len(s); {
		ch := s[i]
		switch {
		case ch == ' ' || ch == '\t':
			i++
		case ch == '(' || ch == ')' || ch == ',':
			toks = append(toks, string(ch))
			i++
		case ch == '\'':
			var b strings.Builder
			i++
			for {
				if i >= len(s) {
					return nil, false // unterminated
				}
				if s[i] == '\'' {
					if i+1 < len(s) && s[i+1] == '\'' {
						b.WriteByte('\'')
						i += 2
						continue
					}
					i++
					break
				}
				b.WriteByte(s[i])
				i++
			}
			toks = append(toks, "'"+b.String())
		default:
			j := i
			for j < len(s) && (s[j] == '/' || s[j] == '_' || s[j] < 0x80 && (unicode.IsLetter(rune(s[j])) || unicode.IsDigit(rune(s[j])))) {
				j++
			}
			if j == i {
				return nil, false
			}
			toks = append(toks, s[i:j])
			i = j
		}
	}
	return toks, true
}

// listQuery is what a catalog LIST takes from its query string.
type listQuery struct {
	filter filterExpr
	expand map[string]bool
	top    int
	// keep are the parameters each nextLink repeats, so that later pages
	// are cut from the same filtered list.
	keep url.Values
}

// expandable are the $expand values of Resources_List.
var expandable = []string{"createdTime", "changedTime", "provisioningState"}

// parseListQuery reads $filter (with the given fields), $expand (when
// expand is allowed) and $top.
func parseListQuery(c *call, fields map[string]filterField, expand bool) (*listQuery, *Error) {
	q := &listQuery{keep: url.Values{}, expand: map[string]bool{}}
	query := c.r.URL.Query()
	if f, ok := queryValue(query, "$filter"); ok {
		expr, e := parseFilter(f, fields)
		if e != nil {
			return nil, e
		}
		q.filter = expr
		if f != "" {
			q.keep.Set("$filter", f)
		}
	}
	if x, ok := queryValue(query, "$expand"); ok && expand {
		for _, v := range strings.Split(x, ",") {
			v = strings.TrimSpace(v)
			if v == "" {
				continue
			}
			i := slices.IndexFunc(expandable, func(e string) bool { return strings.EqualFold(e, v) })
			if i < 0 {
				return nil, invalidParam("$expand", "The value '%s' of $expand is not supported; valid values are %s.", v, strings.Join(expandable, ", "))
			}
			q.expand[expandable[i]] = true
		}
		q.keep.Set("$expand", x)
	}
	if t, ok := queryValue(query, "$top"); ok && t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 1 {
			return nil, invalidParam("$top", "The value '%s' of $top is invalid; it must be a positive integer.", t)
		}
		q.top = n
		q.keep.Set("$top", t)
	}
	return q, nil
}

// pageSize is $top when given: ARM treats it as the size of each page and
// still returns a nextLink for the rest (Azure/azure-rest-api-specs#18525,
// Azure/azure-sdk-for-python#541), so a pager that follows nextLink gets
// everything.
func (q *listQuery) pageSize(def int) int {
	if q.top > 0 && q.top < def {
		return q.top
	}
	return def
}

// ---- generic resources

func groupFacts(g *resourceGroup) facts {
	return facts{name: g.Name, group: g.Name, typ: "Microsoft.Resources/resourceGroups", location: g.Location, tags: g.Tags}
}

func clusterFacts(cl *cluster) facts {
	ns, typ := clusterType(cl.Managed)
	x := facts{name: cl.Name, group: cl.Group, typ: ns + "/" + typ, location: cl.Location, tags: cl.Tags}
	if !cl.Managed {
		x.identity, x.principalID = cl.Identity, cl.PrincipalID
	}
	return x
}

// listResources answers Resources_List and Resources_ListByResourceGroup
// with every tracked resource of the scope: connected and managed
// clusters. Resource groups are not resources, and sourceControlConfigurations
// are proxy (extension) resources, which ARM's resource listing leaves out
// (Azure/azure-rest-api-specs#16368: "a list of tracked resources only";
// projectkudu/AzureResourceExplorer#237). Like ARM, the listing carries no
// properties (Azure/azure-sdk-for-python#1143).
func (s *Server) listResources(c *call) *Error {
	q, e := parseListQuery(c, resourceFilterFields, true)
	if e != nil {
		return e
	}
	sub, rg := c.vars["sub"], c.vars["rg"]
	s.lock(c.now)
	prefix := key("/subscriptions/" + sub + "/")
	if rg != "" {
		_, e = s.groupLocked(sub, rg)
		prefix = key(groupID(sub, rg) + "/")
	} else {
		_, e = s.subscriptionLocked(sub)
	}
	if e != nil {
		s.unlock()
		return e
	}
	var items []any
	for _, cl := range inOrder(s.store.clusters, prefix) {
		if q.filter.match(clusterFacts(cl)) {
			items = append(items, s.genericResourceJSON(cl, q))
		}
	}
	s.unlock()
	return s.writePageOf(c, items, q.pageSize(s.opts.PageSize), q.keep)
}

// genericResourceJSON is a cluster as a GenericResourceExpanded.
func (s *Server) genericResourceJSON(cl *cluster, q *listQuery) map[string]any {
	ns, typ := clusterType(cl.Managed)
	out := map[string]any{"id": cl.ID, "name": cl.Name, "type": ns + "/" + typ, "location": cl.Location}
	// "When you filter by a tag name and value, the tags for each
	// resource are not returned in the results" (resources.json, $filter).
	if cl.Tags != nil && !q.filter.byTag() {
		out["tags"] = cl.Tags
	}
	if !cl.Managed {
		out["identity"] = map[string]string{"type": cl.Identity, "principalId": cl.PrincipalID, "tenantId": s.opts.TenantID}
	}
	if q.expand["createdTime"] {
		out["createdTime"] = cl.Sys.CreatedAt.UTC().Format(time.RFC3339Nano)
	}
	if q.expand["changedTime"] {
		out["changedTime"] = cl.Sys.LastModifiedAt.UTC().Format(time.RFC3339Nano)
	}
	if q.expand["provisioningState"] {
		out["provisioningState"] = cl.State
	}
	return out
}

// ---- tags

// tagsAtScope serves Tags_{Get,CreateOrUpdate,Update,Delete}AtScope on a
// resource group or a cluster: what az tag create/list/update/delete
// --resource-id send. Tags live on the resource itself, so a group's or a
// cluster's own PUT and GET see the same tags.
func (s *Server) tagsAtScope(c *call) *Error {
	var update func(map[string]string) map[string]string
	switch c.r.Method {
	case http.MethodPut, http.MethodPatch:
		raw, e := readBody(c)
		if e != nil {
			return e
		}
		c.logBody = raw
		tags, op, e := decodeTagsBody(raw, c.r.Method == http.MethodPatch)
		if e != nil {
			return e
		}
		update = func(old map[string]string) map[string]string { return applyTags(old, tags, op) }
	case http.MethodDelete:
		update = func(map[string]string) map[string]string { return nil }
	}
	s.lock(c.now)
	defer s.unlock()
	var scope string
	var tags *map[string]string
	var sys *systemData
	if c.vars["ns"] == "" {
		g, e := s.groupLocked(c.vars["sub"], c.vars["rg"])
		if e != nil {
			return e
		}
		scope, tags, sys = g.ID, &g.Tags, &g.Sys
	} else {
		cl, e := s.taggableLocked(c)
		if e != nil {
			return e
		}
		scope, tags, sys = cl.ID, &cl.Tags, &cl.Sys
	}
	if update != nil {
		*tags = update(*tags)
		sys.touch(c.who, c.now)
		if e := s.commitLocked(c); e != nil {
			return e
		}
		if c.r.Method == http.MethodDelete {
			c.w.WriteHeader(http.StatusOK)
			return nil
		}
	}
	writeJSON(c.w, http.StatusOK, map[string]any{
		"id":         scope + "/providers/Microsoft.Resources/tags/default",
		"name":       "default",
		"type":       "Microsoft.Resources/tags",
		"properties": map[string]any{"tags": nonNil(*tags)},
	})
	return nil
}

// taggableLocked finds the cluster a resource-scoped tags request names.
func (s *Server) taggableLocked(c *call) (*cluster, *Error) {
	ns, typ := c.vars["ns"], c.vars["type"]
	for _, managed := range []bool{false, true} {
		cns, ctyp := clusterType(managed)
		if strings.EqualFold(ns, cns) && strings.EqualFold(typ, ctyp) {
			return s.clusterLocked(c.vars["sub"], c.vars["rg"], managed, c.vars["name"])
		}
	}
	if _, e := s.groupLocked(c.vars["sub"], c.vars["rg"]); e != nil {
		return nil, e
	}
	return nil, errorf(http.StatusNotFound, CodeResourceNotFound,
		"The Resource '%s/%s/%s' under resource group '%s' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix", ns, typ, c.vars["name"], c.vars["rg"])
}

// decodeTagsBody reads a TagsResource (PUT: {"properties":{"tags":{}}}) or
// a TagsPatchResource (PATCH: the same plus "operation").
func decodeTagsBody(raw []byte, patch bool) (map[string]string, string, *Error) {
	typeName := "TagsResource"
	if patch {
		typeName = "TagsPatchResource"
	}
	o, e := parseObject("", typeName, raw)
	if e != nil {
		return nil, "", e
	}
	op := "Replace"
	if patch {
		v, ok, e := o.str("operation")
		if e != nil {
			return nil, "", e
		}
		i := slices.IndexFunc([]string{"Replace", "Merge", "Delete"}, func(x string) bool { return strings.EqualFold(x, v) })
		if !ok || i < 0 {
			return nil, "", invalidParam("operation", "The operation '%s' is invalid; it must be one of Replace, Merge, Delete.", v)
		}
		op = []string{"Replace", "Merge", "Delete"}[i]
	} else {
		o.ignore("id", "name", "type")
	}
	props, ok, e := o.obj("properties", "Tags")
	if e != nil {
		return nil, "", e
	}
	if !ok {
		return nil, "", invalidParam("properties", "The 'properties' member of the request body is required.")
	}
	tags, _, e := props.strMap("tags")
	if e != nil {
		return nil, "", e
	}
	if e := props.unknown(); e != nil {
		return nil, "", e
	}
	if e := o.unknown(); e != nil {
		return nil, "", e
	}
	return tags, op, nil
}

// applyTags is the PATCH operation: Replace sets the tags, Merge adds and
// overwrites, Delete removes the named tags (a name with a value removes
// it only when the value matches).
func applyTags(old, tags map[string]string, op string) map[string]string {
	switch op {
	case "Merge":
		out := maps.Clone(old)
		if out == nil {
			out = map[string]string{}
		}
		for k, v := range tags {
			deleteFold(out, k)
			out[k] = v
		}
		return out
	case "Delete":
		out := maps.Clone(old)
		for k, v := range tags {
			for ok, ov := range out {
				if strings.EqualFold(k, ok) && (v == "" || v == ov) {
					delete(out, ok)
				}
			}
		}
		return out
	}
	return maps.Clone(tags)
}

func deleteFold(m map[string]string, k string) {
	for mk := range m {
		if strings.EqualFold(mk, k) {
			delete(m, mk)
		}
	}
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// listTagNames answers Tags_List: every tag name in the subscription's
// resource groups and resources, with the values and how often each is
// used. Names group case-insensitively, the first spelling wins.
func (s *Server) listTagNames(c *call) *Error {
	sub := c.vars["sub"]
	s.lock(c.now)
	if _, e := s.subscriptionLocked(sub); e != nil {
		s.unlock()
		return e
	}
	prefix := key("/subscriptions/" + sub + "/")
	type counted struct {
		name   string
		total  int
		values map[string]int
	}
	byName := map[string]*counted{}
	count := func(tags map[string]string) {
		for _, k := range sortedKeys(tags) {
			t := byName[key(k)]
			if t == nil {
				t = &counted{name: k, values: map[string]int{}}
				byName[key(k)] = t
			}
			t.total++
			t.values[tags[k]]++
		}
	}
	for _, g := range inOrder(s.store.groups, prefix) {
		count(g.Tags)
	}
	for _, cl := range inOrder(s.store.clusters, prefix) {
		count(cl.Tags)
	}
	s.unlock()
	var items []any
	for _, k := range sortedKeys(byName) {
		t := byName[k]
		id := "/subscriptions/" + sub + "/tagNames/" + t.name
		var values []any
		for _, v := range sortedKeys(t.values) {
			values = append(values, map[string]any{
				"id": id + "/tagValues/" + v, "tagValue": v,
				"count": map[string]any{"type": "Total", "value": t.values[v]},
			})
		}
		items = append(items, map[string]any{
			"id": id, "tagName": t.name,
			"count":  map[string]any{"type": "Total", "value": t.total},
			"values": values,
		})
	}
	return s.writePage(c, items)
}

// ---- locations and tenants

// region is one Azure region as Subscriptions_ListLocations describes it.
type region struct {
	name, display, geography, physical string
	lat, long                          string
	paired                             string
	other                              bool // regionCategory Other rather than Recommended
}

// regions is the fixed set gitopsim lists: the common public-cloud regions
// with their pairs (coordinates as ARM lists them, rounded). gitopsim does
// not restrict where resources go; these are what az account
// list-locations shows, and include eastus (DefaultLocation) and the East
// US / West Europe that provider registrations name.
var regions = []region{
	{"eastus", "East US", "US", "Virginia", "37.3719", "-79.8164", "westus", false},
	{"eastus2", "East US 2", "US", "Virginia", "36.6681", "-78.3889", "centralus", false},
	{"westus", "West US", "US", "California", "37.783", "-122.417", "eastus", false},
	{"westus2", "West US 2", "US", "Washington", "47.233", "-119.852", "westcentralus", false},
	{"westus3", "West US 3", "US", "Phoenix", "33.448376", "-112.074036", "eastus", false},
	{"centralus", "Central US", "US", "Iowa", "41.5908", "-93.6208", "eastus2", false},
	{"northcentralus", "North Central US", "US", "Illinois", "41.8819", "-87.6278", "southcentralus", false},
	{"southcentralus", "South Central US", "US", "Texas", "29.4167", "-98.5", "northcentralus", false},
	{"westcentralus", "West Central US", "US", "Wyoming", "40.890", "-110.234", "westus2", true},
	{"canadacentral", "Canada Central", "Canada", "Toronto", "43.653", "-79.383", "canadaeast", false},
	{"canadaeast", "Canada East", "Canada", "Quebec", "46.817", "-71.217", "canadacentral", true},
	{"brazilsouth", "Brazil South", "South America", "Sao Paulo State", "-23.55", "-46.633", "southcentralus", false},
	{"northeurope", "North Europe", "Europe", "Ireland", "53.3478", "-6.2597", "westeurope", false},
	{"westeurope", "West Europe", "Europe", "Netherlands", "52.3667", "4.9", "northeurope", false},
	{"uksouth", "UK South", "UK", "London", "50.941", "-0.799", "ukwest", false},
	{"ukwest", "UK West", "UK", "Cardiff", "53.427", "-3.084", "uksouth", true},
	{"francecentral", "France Central", "Europe", "Paris", "46.3772", "2.373", "francesouth", false},
	{"francesouth", "France South", "Europe", "Marseille", "43.8345", "2.1972", "francecentral", true},
	{"germanywestcentral", "Germany West Central", "Europe", "Frankfurt", "50.110924", "8.682127", "germanynorth", false},
	{"germanynorth", "Germany North", "Europe", "Berlin", "53.073635", "8.806422", "germanywestcentral", true},
	{"swedencentral", "Sweden Central", "Europe", "Gävle", "60.67488", "17.14127", "swedensouth", false},
	{"swedensouth", "Sweden South", "Europe", "Malmo", "55.6059", "13.0007", "swedencentral", true},
	{"eastasia", "East Asia", "Asia Pacific", "Hong Kong", "22.267", "114.188", "southeastasia", false},
	{"southeastasia", "Southeast Asia", "Asia Pacific", "Singapore", "1.283", "103.833", "eastasia", false},
	{"japaneast", "Japan East", "Asia Pacific", "Tokyo, Saitama", "35.68", "139.77", "japanwest", false},
	{"japanwest", "Japan West", "Asia Pacific", "Osaka", "34.6939", "135.5022", "japaneast", true},
	{"australiaeast", "Australia East", "Asia Pacific", "New South Wales", "-33.86", "151.2094", "australiasoutheast", false},
	{"australiasoutheast", "Australia Southeast", "Asia Pacific", "Victoria", "-37.8136", "144.9631", "australiaeast", true},
	{"centralindia", "Central India", "Asia Pacific", "Pune", "18.5822", "73.9197", "southindia", false},
	{"southindia", "South India", "Asia Pacific", "Chennai", "12.9822", "80.1636", "centralindia", true},
	{"koreacentral", "Korea Central", "Asia Pacific", "Seoul", "37.5665", "126.978", "koreasouth", false},
	{"koreasouth", "Korea South", "Asia Pacific", "Busan", "35.1796", "129.0756", "koreacentral", true},
}

// listLocations answers Subscriptions_ListLocations in the shape of the
// api-version asked: 2016-06-01's flat {latitude, longitude}; from
// 2019-11-01 regionalDisplayName and metadata (stable/2019-11-01/
// subscriptions.json #/definitions/Location; its example GetLocations.json
// has no subscriptionId); from 2021-01-01 also type "Region". The result
// is never paged: LocationListResult has no nextLink.
func (s *Server) listLocations(c *call) *Error {
	sub := c.vars["sub"]
	s.lock(c.now)
	_, e := s.subscriptionLocked(sub)
	s.unlock()
	if e != nil {
		return e
	}
	v := c.apiVersion
	items := make([]any, 0, len(regions))
	for _, r := range regions {
		id := "/subscriptions/" + sub + "/locations/" + r.name
		loc := map[string]any{"id": id, "name": r.name, "displayName": r.display}
		if v < "2019-11-01" {
			loc["subscriptionId"] = sub
			loc["latitude"], loc["longitude"] = r.lat, r.long
			items = append(items, loc)
			continue
		}
		category := "Recommended"
		if r.other {
			category = "Other"
		}
		loc["regionalDisplayName"] = "(" + r.geography + ") " + r.display
		loc["metadata"] = map[string]any{
			"regionType": "Physical", "regionCategory": category, "geographyGroup": r.geography,
			"longitude": r.long, "latitude": r.lat, "physicalLocation": r.physical,
			"pairedRegion": []map[string]string{{"name": r.paired, "id": "/subscriptions/" + sub + "/locations/" + r.paired}},
		}
		if v >= "2021-01-01" {
			loc["type"] = "Region"
		}
		items = append(items, loc)
	}
	writeJSON(c.w, http.StatusOK, map[string]any{"value": items})
	return nil
}

// listTenants answers Tenants_List with the one tenant gitopsim issues
// tokens for, in the api-version's shape (TenantIdDescription: id and
// tenantId; category, country, display name and domains from 2019-11-01;
// default domain and type from 2021-01-01).
func (s *Server) listTenants(c *call) *Error {
	t := s.opts.TenantID
	v := c.apiVersion
	tenant := map[string]any{"id": "/tenants/" + t, "tenantId": t}
	if v >= "2019-11-01" {
		tenant["tenantCategory"] = "Home"
		tenant["country"], tenant["countryCode"] = "United States", "US"
		tenant["displayName"] = "gitopsim"
		tenant["domains"] = []string{"gitopsim.local"}
	}
	if v >= "2021-01-01" {
		tenant["defaultDomain"] = "gitopsim.local"
		tenant["tenantType"] = "AAD"
	}
	return s.writePage(c, []any{tenant})
}
