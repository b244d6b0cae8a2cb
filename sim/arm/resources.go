package arm

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// routes builds the ARM URL grammar. Order does not matter: patterns of
// the same length never overlap in their literal segments.
func (s *Server) routes() {
	add := func(name, pattern string, versions []string, methods map[string]handler) *route {
		r := newRoute(name, pattern, versions, methods)
		s.router.add(r)
		return r
	}
	pub := func(r *route) { r.public = true }
	const rg = "subscriptions/{sub}/resourceGroups/{rg}"
	const cc = rg + "/providers/Microsoft.Kubernetes/connectedClusters"
	const mc = rg + "/providers/Microsoft.ContainerService/managedClusters"
	const scc = rg + "/providers/{clusterRp}/{clusterType}/{cluster}/providers/Microsoft.KubernetesConfiguration/sourceControlConfigurations"

	pub(add("healthz", "healthz", nil, map[string]handler{http.MethodGet: s.healthz}))
	pub(add("oidcDiscovery", "{tenant}/v2.0/.well-known/openid-configuration", nil, map[string]handler{http.MethodGet: s.issuer.discovery}))
	pub(add("token", "{tenant}/oauth2/v2.0/token", nil, map[string]handler{http.MethodPost: s.issuer.token}))
	pub(add("jwks", "{tenant}/discovery/v2.0/keys", nil, map[string]handler{http.MethodGet: s.issuer.keys}))
	pub(add("adfsDiscovery", "adfs/.well-known/openid-configuration", nil, map[string]handler{http.MethodGet: s.issuer.adfsDiscovery}))
	pub(add("adfsToken", "adfs/oauth2/token", nil, map[string]handler{http.MethodPost: s.issuer.token}))
	pub(add("adfsJwks", "adfs/discovery/keys", nil, map[string]handler{http.MethodGet: s.issuer.keys}))
	pub(add("metadataEndpoints", "metadata/endpoints", metadataVersions, map[string]handler{http.MethodGet: s.metadataEndpoints}))

	add("subscriptions", "subscriptions", subscriptionVersions, map[string]handler{http.MethodGet: s.listSubscriptions})
	add("subscription", "subscriptions/{sub}", subscriptionVersions, map[string]handler{http.MethodGet: s.getSubscription})
	add("providers", "subscriptions/{sub}/providers", resourceVersions, map[string]handler{http.MethodGet: s.listProviders})
	add("provider", "subscriptions/{sub}/providers/{namespace}", resourceVersions, map[string]handler{http.MethodGet: s.getProvider})
	add("providerRegister", "subscriptions/{sub}/providers/{namespace}/register", resourceVersions, map[string]handler{http.MethodPost: s.getProvider})
	add("resourceGroups", "subscriptions/{sub}/resourceGroups", resourceVersions, map[string]handler{http.MethodGet: s.listGroups})
	add("resourceGroup", rg, resourceVersions, map[string]handler{
		http.MethodGet: s.getGroup, http.MethodPut: s.putGroup, http.MethodPatch: s.patchGroup, http.MethodDelete: s.deleteGroup,
	})

	add("connectedClustersBySubscription", "subscriptions/{sub}/providers/Microsoft.Kubernetes/connectedClusters", connectedClusterVersions,
		map[string]handler{http.MethodGet: s.listClusters(false)})
	add("connectedClusters", cc, connectedClusterVersions, map[string]handler{http.MethodGet: s.listClusters(false)})
	add("connectedCluster", cc+"/{name}", connectedClusterVersions, map[string]handler{
		http.MethodGet: s.getCluster(false), http.MethodPut: s.putConnectedCluster, http.MethodPatch: s.patchCluster(false), http.MethodDelete: s.deleteCluster(false),
	})
	add("managedClustersBySubscription", "subscriptions/{sub}/providers/Microsoft.ContainerService/managedClusters", managedClusterVersions,
		map[string]handler{http.MethodGet: s.listClusters(true)})
	add("managedClusters", mc, managedClusterVersions, map[string]handler{http.MethodGet: s.listClusters(true)})
	add("managedCluster", mc+"/{name}", managedClusterVersions, map[string]handler{
		http.MethodGet: s.getCluster(true), http.MethodPut: s.putManagedCluster, http.MethodPatch: s.patchCluster(true), http.MethodDelete: s.deleteCluster(true),
	})
	add("operationStatus", "subscriptions/{sub}/providers/{namespace}/locations/{location}/operationStatuses/{op}", nil,
		map[string]handler{http.MethodGet: s.operationStatus})
	add("operationResult", "subscriptions/{sub}/providers/{namespace}/locations/{location}/operationResults/{op}", nil,
		map[string]handler{http.MethodGet: s.operationResult})

	add("sourceControlConfigurations", scc, configVersions, map[string]handler{http.MethodGet: configErrors(s.listConfigs)})
	add("sourceControlConfiguration", scc+"/{name}", configVersions, map[string]handler{
		http.MethodGet: configErrors(s.getConfig), http.MethodPut: configErrors(s.putConfig), http.MethodDelete: configErrors(s.deleteConfig),
	})
	add("kubernetesConfigurationOperations", "providers/Microsoft.KubernetesConfiguration/operations", configVersions,
		map[string]handler{http.MethodGet: configErrors(s.rpOperations(configOperations))})
	add("kubernetesOperations", "providers/Microsoft.Kubernetes/operations", connectedClusterVersions,
		map[string]handler{http.MethodGet: s.rpOperations(clusterOperations)})
	s.catalogRoutes(add)
	s.agentRoutes()
}

func (s *Server) healthz(c *call) *Error {
	c.w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	c.w.WriteHeader(http.StatusOK)
	_, _ = c.w.Write([]byte("ok\n"))
	return nil
}

// metadataEndpoints answers cloud discovery with this server as the
// resource manager and the issuer's ADFS door as the login endpoint: an
// authority ending in /adfs is the one MSAL Python (and so az) uses
// without asking login.microsoftonline.com to validate it.
//
// The shape depends on the api-version, as ARM's does. Up to 2018-01-01 it
// is one object (Azure Stack's form, which az cloud register reads through
// msrestazure: galleryEndpoint, graphEndpoint, authentication.loginEndpoint
// and audiences[0]). From 2019-05-01 on it is an array of clouds, each with
// name, resourceManager, authentication{loginEndpoint, audiences, tenant,
// identityProvider} and suffixes, which az reads from
// ARM_CLOUD_METADATA_URL (azure/cli/core/cloud.py _arm_to_cli_mapper
// indexes name, authentication and suffixes directly).
func (s *Server) metadataEndpoints(c *call) *Error {
	base := s.URL()
	login := base + "/adfs"
	audiences := []string{"https://management.core.windows.net/", "https://management.azure.com/"}
	// gitopsim serves no Graph API; the Graph resource id is Azure's, the
	// one az cloud register --endpoint-active-directory-graph-resource-id
	// is given in the README, so both ways of registering agree.
	const graph = "https://graph.windows.net/"
	if c.apiVersion < "2019-05-01" {
		writeJSON(c.w, http.StatusOK, map[string]any{
			"galleryEndpoint": base + "/",
			"graphEndpoint":   graph,
			"portalEndpoint":  base + "/",
			"authentication":  map[string]any{"loginEndpoint": login, "audiences": audiences},
		})
		return nil
	}
	writeJSON(c.w, http.StatusOK, []map[string]any{{
		"name":            "gitopsim",
		"resourceManager": base + "/",
		"portal":          base + "/",
		"gallery":         base + "/",
		"graph":           graph,
		"graphAudience":   graph,
		"authentication": map[string]any{
			"loginEndpoint":    login,
			"audiences":        audiences,
			"tenant":           "adfs",
			"identityProvider": "ADFS",
		},
		"suffixes": map[string]string{
			"storage":           "core.gitopsim.local",
			"keyVaultDns":       "vault.gitopsim.local",
			"acrLoginServer":    "azurecr.gitopsim.local",
			"sqlServerHostname": "database.gitopsim.local",
		},
	}})
	return nil
}

// ---- subscriptions

func (s *Server) subscriptionJSON(sub *subscription) map[string]any {
	return map[string]any{
		"id":             "/subscriptions/" + sub.ID,
		"subscriptionId": sub.ID,
		"tenantId":       s.opts.TenantID,
		"displayName":    sub.DisplayName,
		"state":          "Enabled",
		"subscriptionPolicies": map[string]string{
			"locationPlacementId": "Public_2014-09-01", "quotaId": "Internal_2014-09-01", "spendingLimit": "Off",
		},
		"authorizationSource": "RoleBased",
		// Real ARM sends both (az prints managedByTenants: null when it
		// is missing); gitopsim has no other tenants and no subscription
		// tags.
		"managedByTenants": []any{},
		"tags":             map[string]string{},
	}
}

// AddSubscription makes another subscription known (scenarios isolate
// themselves in their own).
func (s *Server) AddSubscription(id, displayName string) {
	s.store.mu.Lock()
	_, ok := s.store.subscriptions[key(id)]
	var g uint64
	if !ok {
		s.store.subscriptions[key(id)] = &subscription{ID: id, DisplayName: displayName}
		// Numbered with the change, so a rollback in between cannot
		// undo it unnoticed.
		g = s.numberLocked()
	}
	s.store.mu.Unlock()
	if g > 0 {
		_ = s.awaitDurable(g) // logged; the subscription is re-added by whoever needs it
	}
}

// subscriptionLocked returns the subscription or a 404; store.mu held.
func (s *Server) subscriptionLocked(id string) (*subscription, *Error) {
	sub, ok := s.store.subscriptions[key(id)]
	if !ok {
		return nil, errorf(http.StatusNotFound, CodeSubscriptionNotFound, "The subscription '%s' could not be found.", id)
	}
	return sub, nil
}

func (s *Server) listSubscriptions(c *call) *Error {
	s.lock(c.now)
	var items []any
	for _, sub := range inOrder(s.store.subscriptions, "") {
		items = append(items, s.subscriptionJSON(sub))
	}
	s.unlock()
	return s.writePage(c, items)
}

func (s *Server) getSubscription(c *call) *Error {
	s.lock(c.now)
	defer s.unlock()
	sub, e := s.subscriptionLocked(c.vars["sub"])
	if e != nil {
		return e
	}
	writeJSON(c.w, http.StatusOK, s.subscriptionJSON(sub))
	return nil
}

// ---- providers: always Registered, so clients never need to register.

var providerTypes = map[string][]string{
	"microsoft.kubernetes":              {"connectedClusters", "locations", "locations/operationStatuses", "locations/operationResults", "operations"},
	"microsoft.kubernetesconfiguration": {"sourceControlConfigurations", "operations"},
	"microsoft.containerservice":        {"managedClusters", "locations", "operations"},
	"microsoft.resources":               {"resourceGroups", "subscriptions", "operations"},
	"microsoft.authorization":           {"policyAssignments", "policyDefinitions"},
	"microsoft.policyinsights":          {"policyStates", "remediations"},
	"microsoft.extendedlocation":        {"customLocations"},
	"microsoft.hybridcompute":           {"machines"},
}

var providerNames = map[string]string{
	"microsoft.kubernetes":              "Microsoft.Kubernetes",
	"microsoft.kubernetesconfiguration": "Microsoft.KubernetesConfiguration",
	"microsoft.containerservice":        "Microsoft.ContainerService",
	"microsoft.resources":               "Microsoft.Resources",
	"microsoft.authorization":           "Microsoft.Authorization",
	"microsoft.policyinsights":          "Microsoft.PolicyInsights",
	"microsoft.extendedlocation":        "Microsoft.ExtendedLocation",
	"microsoft.hybridcompute":           "Microsoft.HybridCompute",
}

func (s *Server) providerJSON(sub, ns string) map[string]any {
	name := providerNames[strings.ToLower(ns)]
	if name == "" {
		name = ns
	}
	var types []map[string]any
	for _, t := range providerTypes[strings.ToLower(ns)] {
		types = append(types, map[string]any{"resourceType": t, "locations": []string{"East US", "West Europe"}, "apiVersions": newestFirst(s.versionsFor(name, t))})
	}
	if types == nil {
		types = []map[string]any{}
	}
	return map[string]any{
		"id":                 "/subscriptions/" + sub + "/providers/" + name,
		"namespace":          name,
		"registrationState":  "Registered",
		"registrationPolicy": "RegistrationRequired",
		"resourceTypes":      types,
	}
}

func (s *Server) versionsFor(ns, typ string) []string {
	switch strings.ToLower(ns + "/" + typ) {
	case "microsoft.kubernetes/connectedclusters":
		return connectedClusterVersions
	case "microsoft.kubernetesconfiguration/sourcecontrolconfigurations":
		return configVersions
	case "microsoft.containerservice/managedclusters":
		return managedClusterVersions
	}
	return resourceVersions
}

func (s *Server) listProviders(c *call) *Error {
	s.lock(c.now)
	_, e := s.subscriptionLocked(c.vars["sub"])
	s.unlock()
	if e != nil {
		return e
	}
	var items []any
	for _, k := range sortedKeys(providerNames) {
		items = append(items, s.providerJSON(c.vars["sub"], k))
	}
	return s.writePage(c, items)
}

// getProvider also serves POST .../register: registering an always
// registered provider answers its registration.
func (s *Server) getProvider(c *call) *Error {
	s.lock(c.now)
	_, e := s.subscriptionLocked(c.vars["sub"])
	s.unlock()
	if e != nil {
		return e
	}
	writeJSON(c.w, http.StatusOK, s.providerJSON(c.vars["sub"], c.vars["namespace"]))
	return nil
}

// ---- paging

// writePage answers a LIST with one page of items and an absolute nextLink
// that carries the api-version and an opaque $skiptoken.
func (s *Server) writePage(c *call, items []any) *Error {
	return s.writePageOf(c, items, s.opts.PageSize, nil)
}

// writePageOf is writePage with a page size and the query parameters the
// next page must repeat ($filter, $expand, $top), as ARM's nextLink does.
func (s *Server) writePageOf(c *call, items []any, size int, keep url.Values) *Error {
	offset := 0
	if tok, ok := queryValue(c.r.URL.Query(), "$skiptoken"); ok {
		n, err := decodeSkipToken(tok)
		if err != nil || n < 0 || n > len(items) {
			return invalidParam("$skiptoken", "The $skiptoken '%s' is invalid or has expired; restart the listing without it.", tok)
		}
		offset = n
	}
	end := min(offset+size, len(items))
	page := map[string]any{"value": append([]any{}, items[offset:end]...)}
	if end < len(items) {
		q := url.Values{}
		for k, v := range keep {
			q[k] = v
		}
		q.Set("api-version", c.apiVersion)
		q.Set("$skiptoken", encodeSkipToken(end))
		page["nextLink"] = s.URL() + c.r.URL.EscapedPath() + "?" + q.Encode()
	}
	writeJSON(c.w, http.StatusOK, page)
	return nil
}

func encodeSkipToken(n int) string {
	return base64.RawURLEncoding.EncodeToString([]byte("o:" + strconv.Itoa(n)))
}

func decodeSkipToken(tok string) (int, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return 0, err
	}
	n, ok := strings.CutPrefix(string(b), "o:")
	if !ok {
		return 0, strconv.ErrSyntax
	}
	return strconv.Atoi(n)
}

// ---- resource groups

var groupNameRE = regexp.MustCompile(`^[-\w._()]{1,90}$`)

func validGroupName(n string) bool {
	return groupNameRE.MatchString(n) && !strings.HasSuffix(n, ".")
}

func groupID(sub, name string) string { return "/subscriptions/" + sub + "/resourceGroups/" + name }

func (s *Server) groupJSON(g *resourceGroup) map[string]any {
	out := map[string]any{
		"id":         g.ID,
		"name":       g.Name,
		"type":       "Microsoft.Resources/resourceGroups",
		"location":   g.Location,
		"properties": map[string]string{"provisioningState": "Succeeded"},
	}
	if g.Tags != nil {
		out["tags"] = g.Tags
	}
	if g.ManagedBy != "" {
		out["managedBy"] = g.ManagedBy
	}
	return out
}

// groupLocked returns the resource group or the 404 ARM gives; store.mu held.
func (s *Server) groupLocked(sub, name string) (*resourceGroup, *Error) {
	if _, e := s.subscriptionLocked(sub); e != nil {
		return nil, e
	}
	g, ok := s.store.groups[key(groupID(sub, name))]
	if !ok {
		return nil, errorf(http.StatusNotFound, CodeResourceGroupNotFound, "Resource group '%s' could not be found.", name)
	}
	return g, nil
}

// listGroups answers ResourceGroups_List, with the $filter on tags that
// az group list --tag sends and $top.
func (s *Server) listGroups(c *call) *Error {
	q, e := parseListQuery(c, groupFilterFields, false)
	if e != nil {
		return e
	}
	s.lock(c.now)
	if _, e := s.subscriptionLocked(c.vars["sub"]); e != nil {
		s.unlock()
		return e
	}
	prefix := key("/subscriptions/" + c.vars["sub"] + "/")
	var items []any
	for _, g := range inOrder(s.store.groups, prefix) {
		if q.filter.match(groupFacts(g)) {
			items = append(items, s.groupJSON(g))
		}
	}
	s.unlock()
	return s.writePageOf(c, items, q.pageSize(s.opts.PageSize), q.keep)
}

func (s *Server) getGroup(c *call) *Error {
	s.lock(c.now)
	defer s.unlock()
	g, e := s.groupLocked(c.vars["sub"], c.vars["rg"])
	if e != nil {
		return e
	}
	if c.r.Method == http.MethodHead {
		c.w.WriteHeader(http.StatusNoContent)
		return nil
	}
	writeJSON(c.w, http.StatusOK, s.groupJSON(g))
	return nil
}

func (s *Server) putGroup(c *call) *Error {
	name := c.vars["rg"]
	if !validGroupName(name) {
		e := badRequest(CodeInvalidResourceGroup, "The provided resource group name '%s' has these invalid characters or length: it must be 1-90 characters of letters, digits, '_', '-', '.', '(' or ')', and must not end with '.'.", name)
		e.Target = "resourceGroupName"
		return e
	}
	o, loc, tags, e := trackedBody(c, "ResourceGroup", "id", "name", "type", "properties")
	if e != nil {
		return e
	}
	managedBy, _, e := o.str("managedBy")
	if e != nil {
		return e
	}
	if e := o.finish(loc); e != nil {
		return e
	}
	s.lock(c.now)
	defer s.unlock()
	if _, e := s.subscriptionLocked(c.vars["sub"]); e != nil {
		return e
	}
	id := groupID(c.vars["sub"], name)
	g, exists := s.store.groups[key(id)]
	status := http.StatusOK
	if !exists {
		g = &resourceGroup{ID: id, Name: name, Sub: c.vars["sub"], Sys: newSystemData(c.who, c.now)}
		s.store.groups[key(id)] = g
		status = http.StatusCreated
	} else if !strings.EqualFold(normalizeLocation(g.Location), normalizeLocation(loc)) {
		return errorf(http.StatusConflict, "InvalidResourceGroupLocation",
			"Invalid resource group location '%s'. The Resource group already exists in location '%s'.", loc, g.Location)
	}
	g.Location, g.Tags, g.ManagedBy = normalizeLocation(loc), tags, managedBy
	g.Sys.touch(c.who, c.now)
	if e := s.commitLocked(c); e != nil {
		return e
	}
	writeJSON(c.w, status, s.groupJSON(g))
	return nil
}

func (s *Server) patchGroup(c *call) *Error {
	raw, e := readBody(c)
	if e != nil {
		return e
	}
	c.logBody = raw
	o, e := parseObject("", "ResourceGroupPatchable", raw)
	if e != nil {
		return e
	}
	o.ignore("name", "properties")
	tags, hasTags, e := o.strMap("tags")
	if e != nil {
		return e
	}
	managedBy, hasManaged, e := o.str("managedBy")
	if e != nil {
		return e
	}
	if e := o.unknown(); e != nil {
		return e
	}
	s.lock(c.now)
	defer s.unlock()
	g, e := s.groupLocked(c.vars["sub"], c.vars["rg"])
	if e != nil {
		return e
	}
	if hasTags {
		g.Tags = tags
	}
	if hasManaged {
		g.ManagedBy = managedBy
	}
	g.Sys.touch(c.who, c.now)
	if e := s.commitLocked(c); e != nil {
		return e
	}
	writeJSON(c.w, http.StatusOK, s.groupJSON(g))
	return nil
}

// deleteGroup removes the group and everything in it, answering as ARM
// does: 202 with a Location to poll.
func (s *Server) deleteGroup(c *call) *Error {
	s.lock(c.now)
	defer s.unlock()
	if _, e := s.subscriptionLocked(c.vars["sub"]); e != nil {
		return e
	}
	id := groupID(c.vars["sub"], c.vars["rg"])
	if _, ok := s.store.groups[key(id)]; !ok {
		// ARM answers a delete of a missing group with 404, unlike
		// resources (204).
		return errorf(http.StatusNotFound, CodeResourceGroupNotFound, "Resource group '%s' could not be found.", c.vars["rg"])
	}
	prefix := key(id + "/")
	for k := range s.store.configs {
		if strings.HasPrefix(k, prefix) {
			delete(s.store.configs, k)
		}
	}
	for k := range s.store.clusters {
		if strings.HasPrefix(k, prefix) {
			delete(s.store.clusters, k)
		}
	}
	delete(s.store.groups, key(id))
	op := s.newOpLocked(c.vars["sub"], "Microsoft.Resources", DefaultLocation, c.now, opNone, "")
	s.finishOpLocked(op)
	if e := s.commitLocked(c); e != nil {
		return e
	}
	c.w.Header().Set("Location", s.opURL(op, "operationResults", c.apiVersion))
	c.w.Header().Set("Retry-After", "0")
	c.w.Header().Set("retry-after-ms", retryAfterMs)
	c.w.WriteHeader(http.StatusAccepted)
	return nil
}

func normalizeLocation(l string) string {
	return strings.ToLower(strings.ReplaceAll(strings.TrimSpace(l), " ", ""))
}

// ---- asynchronous operations

func (s *Server) newOpLocked(sub, ns, location string, now time.Time, kind, target string) *operation {
	s.store.opSeq++
	name := opName(s.store.opSeq)
	op := &operation{
		ID:       "/subscriptions/" + sub + "/providers/" + ns + "/locations/" + location + "/operationStatuses/" + name,
		Name:     name,
		Sub:      sub,
		Location: location,
		Started:  now,
		Kind:     kind,
		Target:   target,
	}
	s.store.ops[key(name)] = op
	s.store.pending[key(name)] = op
	return op
}

// opName is a GUID-shaped, deterministic operation id.
func opName(n int) string {
	return "0b0e0a0f-0000-4000-8000-" + leftPad(strconv.Itoa(n), 12)
}

func leftPad(s string, n int) string {
	for len(s) < n {
		s = "0" + s
	}
	return s
}

func (s *Server) opURL(op *operation, kind, apiVersion string) string {
	ns := "Microsoft.Kubernetes"
	if i := strings.Index(op.ID, "/providers/"); i >= 0 {
		rest := op.ID[i+len("/providers/"):]
		ns = rest[:strings.Index(rest, "/")]
	}
	u := s.URL() + "/subscriptions/" + op.Sub + "/providers/" + ns + "/locations/" + op.Location + "/" + kind + "/" + op.Name
	if apiVersion != "" {
		u += "?api-version=" + url.QueryEscape(apiVersion)
	}
	return u
}

// pollLocked advances an operation by one poll; store.mu held.
func (s *Server) pollLocked(name string) (*operation, *Error) {
	op, ok := s.store.ops[key(name)]
	if !ok {
		return nil, errorf(http.StatusNotFound, CodeOperationNotFound, "The operation '%s' could not be found.", name)
	}
	op.Polls++
	if !op.Done && op.Polls >= 2 {
		s.finishOpLocked(op)
	}
	return op, nil
}

func (s *Server) operationStatus(c *call) *Error {
	s.lock(c.now)
	defer s.unlock()
	op, e := s.pollLocked(c.vars["op"])
	if e != nil {
		return e
	}
	if e := s.commitLocked(c); e != nil {
		return e
	}
	status := "InProgress"
	body := map[string]any{"id": op.ID, "name": op.Name, "status": status, "startTime": op.Started.UTC().Format(time.RFC3339)}
	if op.Done {
		body["status"] = "Succeeded"
		body["endTime"] = c.now.UTC().Format(time.RFC3339)
	} else {
		c.w.Header().Set("retry-after-ms", retryAfterMs)
	}
	writeJSON(c.w, http.StatusOK, body)
	return nil
}

// finishOpLocked completes an operation and applies its effect.
func (s *Server) finishOpLocked(op *operation) {
	op.Done = true
	delete(s.store.pending, key(op.Name))
	switch op.Kind {
	case opClusterCreated:
		if cl, ok := s.store.clusters[key(op.Target)]; ok && cl.State != "Deleting" {
			cl.State = "Succeeded"
		}
	case opClusterDeleted:
		delete(s.store.clusters, key(op.Target))
		prefix := key(op.Target + "/")
		for k := range s.store.configs {
			if strings.HasPrefix(k, prefix) {
				delete(s.store.configs, k)
			}
		}
	}
}

// operationResult serves the Location of a 202: 202 again while running,
// 204 once done.
func (s *Server) operationResult(c *call) *Error {
	s.lock(c.now)
	defer s.unlock()
	op, e := s.pollLocked(c.vars["op"])
	if e != nil {
		return e
	}
	if e := s.commitLocked(c); e != nil {
		return e
	}
	if !op.Done {
		c.w.Header().Set("Location", s.opURL(op, "operationResults", c.apiVersion))
		c.w.Header().Set("retry-after-ms", retryAfterMs)
		c.w.WriteHeader(http.StatusAccepted)
		return nil
	}
	c.w.WriteHeader(http.StatusNoContent)
	return nil
}

// marshalRaw keeps verbatim JSON (extra properties) as json.RawMessage.
func marshalRaw(m map[string][]byte, into map[string]any) {
	for k, v := range m {
		into[k] = json.RawMessage(v)
	}
}
