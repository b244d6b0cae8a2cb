package arm

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// Timers of the connectivity state machine (spec §2.3).
const (
	// OfflineAfter without a heartbeat turns Connected into Offline.
	OfflineAfter = 15 * time.Minute
	// IdentityLifetime is how long the agent's managed-identity
	// certificate lasts; heartbeats renew it, and once it lapses the
	// cluster is Expired for good.
	IdentityLifetime = 90 * 24 * time.Hour
	// opTimeout finishes an asynchronous operation that nobody polls.
	opTimeout = 30 * time.Second
)

var clusterNameRE = regexp.MustCompile(`^[a-zA-Z0-9]([-_a-zA-Z0-9]{0,61}[a-zA-Z0-9])?$`)

func checkClusterName(name, kind string) *Error {
	if clusterNameRE.MatchString(name) {
		return nil
	}
	e := badRequest(CodeInvalidResourceName, "The resource name '%s' is invalid: %s cluster names are 1-63 characters of letters, digits, '-' and '_', starting and ending with a letter or digit.", name, kind)
	e.Target = "name"
	return e
}

func clusterType(managed bool) (ns, typ string) {
	if managed {
		return "Microsoft.ContainerService", "managedClusters"
	}
	return "Microsoft.Kubernetes", "connectedClusters"
}

func clusterID(sub, rg string, managed bool, name string) string {
	ns, typ := clusterType(managed)
	return groupID(sub, rg) + "/providers/" + ns + "/" + typ + "/" + name
}

// lock takes the store lock and first applies everything that became due
// on the clock since the last request: unpolled operations finish,
// protected settings past 48 hours are purged. Evaluating time when state
// is read keeps a Virtual clock free of background tasks.
func (s *Server) lock(now time.Time) {
	s.store.mu.Lock()
	if len(s.store.pending) > 0 {
		for _, op := range inOrder(s.store.pending, "") { // in order: finishing has effects
			if !now.Before(op.Started.Add(opTimeout)) {
				s.finishOpLocked(op)
			}
		}
	}
	s.purgeExpiredSettingsLocked(now)
}

// unlock releases the store lock, then tells watchers what lock found
// due on the clock.
func (s *Server) unlock() {
	notices := s.store.notices
	s.store.notices = nil
	s.store.mu.Unlock()
	for _, n := range notices {
		s.noticeAll(n)
	}
}

// connectivity derives connectivityStatus from the heartbeat and identity
// times (spec §2.3).
func connectivity(cl *cluster, now time.Time) string {
	switch {
	case !cl.IdentityExpires.IsZero() && !now.Before(cl.IdentityExpires):
		return "Expired"
	case cl.LastHeartbeat.IsZero():
		return "Connecting"
	case now.Sub(cl.LastHeartbeat) >= OfflineAfter:
		return "Offline"
	}
	return "Connected"
}

// clusterJSON renders a cluster with every member gitopsim knows.
func (s *Server) clusterJSON(cl *cluster, now time.Time) map[string]any {
	return s.clusterJSONFor(cl, now, clusterDialect{})
}

// clusterJSONFor renders a cluster as the dialect's api-version defines it.
func (s *Server) clusterJSONFor(cl *cluster, now time.Time, d clusterDialect) map[string]any {
	ns, typ := clusterType(cl.Managed)
	props := map[string]any{"provisioningState": cl.State}
	out := map[string]any{
		"id":         cl.ID,
		"name":       cl.Name,
		"type":       ns + "/" + typ,
		"location":   cl.Location,
		"properties": props,
	}
	if cl.Tags != nil {
		out["tags"] = cl.Tags
	}
	if cl.Managed {
		out["systemData"] = cl.Sys
		marshalRaw(cl.Extra, props)
		return out
	}
	if d.has("systemData") {
		out["systemData"] = cl.Sys
	}
	if cl.Kind != "" && d.has("kind") {
		out["kind"] = cl.Kind
	}
	for k, v := range cl.Extra {
		if d.has(k) {
			props[k] = json.RawMessage(v)
		}
	}
	out["identity"] = map[string]string{"type": cl.Identity, "principalId": cl.PrincipalID, "tenantId": s.opts.TenantID}
	p := cl.Props
	props["agentPublicKeyCertificate"] = p.AgentPublicKeyCertificate
	props["distribution"] = p.Distribution
	props["infrastructure"] = p.Infrastructure
	props["kubernetesVersion"] = p.KubernetesVersion
	props["agentVersion"] = p.AgentVersion
	props["totalNodeCount"] = p.TotalNodeCount
	props["totalCoreCount"] = p.TotalCoreCount
	props["offering"] = ""
	props["connectivityStatus"] = connectivity(cl, now)
	if p.DistributionVersion != "" && d.has("distributionVersion") {
		props["distributionVersion"] = p.DistributionVersion
	}
	if !cl.LastHeartbeat.IsZero() {
		props["lastConnectivityTime"] = cl.LastHeartbeat.UTC().Format(time.RFC3339)
	}
	if !cl.IdentityExpires.IsZero() {
		props["managedIdentityCertificateExpirationTime"] = cl.IdentityExpires.UTC().Format(time.RFC3339)
	}
	// The swaggers' defaults, written where the version defines them.
	for k, def := range map[string]string{"privateLinkState": "Disabled", "azureHybridBenefit": "NotApplicable"} {
		if _, ok := props[k]; !ok && d.has(k) {
			props[k] = def
		}
	}
	return out
}

// clusterLocked finds a cluster and says exactly what is missing: the
// subscription, the group, or the cluster; store lock held.
func (s *Server) clusterLocked(sub, rg string, managed bool, name string) (*cluster, *Error) {
	if _, e := s.groupLocked(sub, rg); e != nil {
		return nil, e
	}
	cl, ok := s.store.clusters[key(clusterID(sub, rg, managed, name))]
	if !ok {
		ns, typ := clusterType(managed)
		return nil, errorf(http.StatusNotFound, CodeResourceNotFound,
			"The Resource '%s/%s/%s' under resource group '%s' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix", ns, typ, name, rg)
	}
	return cl, nil
}

func (s *Server) listClusters(managed bool) handler {
	return func(c *call) *Error {
		s.lock(c.now)
		sub, rg := c.vars["sub"], c.vars["rg"]
		var e *Error
		if rg != "" {
			_, e = s.groupLocked(sub, rg)
		} else {
			_, e = s.subscriptionLocked(sub)
		}
		if e != nil {
			s.unlock()
			return e
		}
		prefix := key("/subscriptions/" + sub + "/")
		if rg != "" {
			prefix = key(groupID(sub, rg) + "/")
		}
		var items []any
		for _, cl := range inOrder(s.store.clusters, prefix) {
			if cl.Managed == managed {
				items = append(items, s.clusterJSONFor(cl, c.now, clusterDialectOf(c.apiVersion)))
			}
		}
		s.unlock()
		return s.writePage(c, items)
	}
}

func (s *Server) getCluster(managed bool) handler {
	return func(c *call) *Error {
		s.lock(c.now)
		defer s.unlock()
		cl, e := s.clusterLocked(c.vars["sub"], c.vars["rg"], managed, c.vars["name"])
		if e != nil {
			return e
		}
		writeJSON(c.w, http.StatusOK, s.clusterJSONFor(cl, c.now, clusterDialectOf(c.apiVersion)))
		return nil
	}
}

// Properties of connectedClusters, by how the PUT treats them.
var (
	clusterReadOnly = []string{"provisioningState", "agentVersion", "connectivityStatus", "kubernetesVersion",
		"lastConnectivityTime", "managedIdentityCertificateExpirationTime", "offering", "totalCoreCount",
		"totalNodeCount", "miscellaneousProperties", "inboundConnectivityState"}
	// clusterVerbatim are properties of newer api-versions that the
	// simulator stores and returns without interpreting them.
	clusterVerbatim = []string{"privateLinkState", "privateLinkScopeResourceId", "azureHybridBenefit", "aadProfile",
		"arcAgentProfile", "oidcIssuerProfile", "securityProfile", "gateway", "arcAgentryConfigurations"}
)

// putConnectedCluster creates or replaces a connected cluster as a
// long-running operation (Azure-AsyncOperation).
func (s *Server) putConnectedCluster(c *call) *Error {
	name := c.vars["name"]
	if e := checkClusterName(name, "connected"); e != nil {
		return e
	}
	o, loc, tags, e := trackedBody(c, "ConnectedCluster", "id", "name", "type", "systemData")
	if e != nil {
		return e
	}
	d := clusterDialectOf(c.apiVersion)
	var kind string
	if d.has("kind") {
		if kind, _, e = o.str("kind"); e != nil {
			return e
		}
	}
	idObj, hasID, e := o.obj("identity", "ConnectedClusterIdentity")
	if e != nil {
		return e
	}
	props, hasProps, e := o.obj("properties", "ConnectedClusterProperties")
	if e != nil {
		return e
	}
	if e := o.finish(loc); e != nil {
		return e
	}
	identity := "SystemAssigned"
	if !hasID {
		return invalidParam("identity", "The 'identity' property is required; use {\"type\": \"SystemAssigned\"}.")
	}
	idObj.ignore("principalId", "tenantId")
	t, _, e := idObj.str("type")
	if e != nil {
		return e
	}
	if e := idObj.unknown(); e != nil {
		return e
	}
	switch {
	case strings.EqualFold(t, "SystemAssigned"):
	case strings.EqualFold(t, "None"):
		identity = "None"
	default:
		return invalidParam("identity.type", "The value '%s' of identity.type is invalid; allowed values are 'SystemAssigned' and 'None'.", t)
	}
	if !hasProps {
		return invalidParam("properties", "The 'properties' property is required.")
	}
	props.ignore(clusterReadOnly...)
	var p clusterProps
	extra := map[string][]byte{}
	for _, k := range clusterVerbatim {
		if !d.has(k) {
			continue // left for props.unknown to refuse
		}
		if v, ok := props.get(k); ok {
			extra[k] = dropReadOnly(k, v)
		}
	}
	fields := map[string]*string{
		"agentPublicKeyCertificate": &p.AgentPublicKeyCertificate, "distribution": &p.Distribution,
		"infrastructure": &p.Infrastructure,
	}
	if d.has("distributionVersion") {
		fields["distributionVersion"] = &p.DistributionVersion
	}
	for field, dst := range fields {
		v, _, e := props.str(field)
		if e != nil {
			return e
		}
		*dst = v
	}
	if e := props.unknown(); e != nil {
		return e
	}
	if p.AgentPublicKeyCertificate == "" {
		return invalidParam("properties.agentPublicKeyCertificate", "The 'properties.agentPublicKeyCertificate' property is required: the base64 public key the cluster's agents authenticate with.")
	}
	if _, err := ParseAgentPublicKey(p.AgentPublicKeyCertificate); err != nil {
		return invalidParam("properties.agentPublicKeyCertificate", "The 'properties.agentPublicKeyCertificate' value is not a base64 DER public key or certificate: %v.", err)
	}

	s.lock(c.now)
	defer s.unlock()
	sub, rg := c.vars["sub"], c.vars["rg"]
	if _, e := s.groupLocked(sub, rg); e != nil {
		return e
	}
	id := clusterID(sub, rg, false, name)
	cl, exists := s.store.clusters[key(id)]
	status := http.StatusOK
	if !exists {
		cl = &cluster{ID: id, Name: name, Sub: sub, Group: rg, Sys: newSystemData(c.who, c.now), CreatedAt: c.now,
			IdentityExpires: c.now.Add(IdentityLifetime), PrincipalID: principalFor(id)}
		s.store.clusters[key(id)] = cl
		status = http.StatusCreated
	} else if cl.State == "Deleting" {
		return errorf(http.StatusConflict, CodeConflict, "The connected cluster '%s' is being deleted; wait for the deletion to finish.", name)
	}
	agent := cl.Props
	p.KubernetesVersion, p.AgentVersion, p.TotalNodeCount, p.TotalCoreCount = agent.KubernetesVersion, agent.AgentVersion, agent.TotalNodeCount, agent.TotalCoreCount
	cl.Location, cl.Tags, cl.Identity, cl.Props, cl.Extra, cl.Kind = normalizeLocation(loc), tags, identity, p, extra, kind
	cl.Sys.touch(c.who, c.now)
	if !exists {
		cl.State = "Provisioning"
	} else {
		cl.State = "Updating"
	}
	op := s.newOpLocked(sub, "Microsoft.Kubernetes", cl.Location, c.now, opClusterCreated, cl.ID)
	if e := s.commitLocked(c); e != nil {
		return e
	}
	c.w.Header().Set("Azure-AsyncOperation", s.opURL(op, "operationStatuses", c.apiVersion))
	c.w.Header().Set("retry-after-ms", retryAfterMs)
	writeJSON(c.w, status, s.clusterJSONFor(cl, c.now, clusterDialectOf(c.apiVersion)))
	return nil
}

// principalFor derives a stable GUID-shaped principal id from a resource id.
func principalFor(id string) string {
	var h uint64 = 14695981039346656037
	for _, b := range []byte(strings.ToLower(id)) {
		h = (h ^ uint64(b)) * 1099511628211
	}
	hex := func(v uint64, n int) string {
		const digits = "0123456789abcdef"
		out := make([]byte, n)
		for i := n - 1; i >= 0; i-- {
			out[i] = digits[v&15]
			v >>= 4
		}
		return string(out)
	}
	return hex(h>>32, 8) + "-" + hex(h>>16, 4) + "-4" + hex(h>>4, 3) + "-8" + hex(h, 3) + "-" + hex(h*31, 12)
}

// ParseAgentPublicKey reads agentPublicKeyCertificate: base64 of a DER
// public key (PKIX or PKCS#1 RSA, as az connectedk8s sends) or of a
// certificate.
func ParseAgentPublicKey(b64 string) (any, error) {
	// The service decodes with .NET's Convert.FromBase64String, which
	// skips white space anywhere (a PEM body pasted with its line breaks,
	// or wrapped by a tool); Go's decoder skips only CR and LF.
	der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(b64), ""))
	if err != nil {
		return nil, err
	}
	if k, err := x509.ParsePKIXPublicKey(der); err == nil {
		return k, nil
	}
	if k, err := x509.ParsePKCS1PublicKey(der); err == nil {
		return k, nil
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, errNotAPublicKey
	}
	return cert.PublicKey, nil
}

var errNotAPublicKey = errors.New("neither a public key nor a certificate")

// putManagedCluster is the minimal AKS parent for configurations: it keeps
// location, tags and properties verbatim and succeeds at once.
func (s *Server) putManagedCluster(c *call) *Error {
	name := c.vars["name"]
	if e := checkClusterName(name, "managed"); e != nil {
		return e
	}
	o, loc, tags, e := trackedBody(c, "ManagedCluster", "id", "name", "type", "systemData", "identity", "sku", "kind", "extendedLocation")
	if e != nil {
		return e
	}
	extra := map[string][]byte{}
	if props, ok := o.get("properties"); ok {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(props, &m); err != nil {
			return typeError("properties", "a JSON object")
		}
		for k, v := range m {
			if k != "provisioningState" {
				extra[k] = v
			}
		}
	}
	if e := o.finish(loc); e != nil {
		return e
	}
	s.lock(c.now)
	defer s.unlock()
	sub, rg := c.vars["sub"], c.vars["rg"]
	if _, e := s.groupLocked(sub, rg); e != nil {
		return e
	}
	id := clusterID(sub, rg, true, name)
	cl, exists := s.store.clusters[key(id)]
	status := http.StatusOK
	if !exists {
		cl = &cluster{ID: id, Name: name, Sub: sub, Group: rg, Managed: true, Sys: newSystemData(c.who, c.now), CreatedAt: c.now}
		s.store.clusters[key(id)] = cl
		status = http.StatusCreated
	}
	cl.Location, cl.Tags, cl.Extra, cl.State = normalizeLocation(loc), tags, extra, "Succeeded"
	cl.Sys.touch(c.who, c.now)
	if e := s.commitLocked(c); e != nil {
		return e
	}
	writeJSON(c.w, status, s.clusterJSONFor(cl, c.now, clusterDialectOf(c.apiVersion)))
	return nil
}

// patchCluster updates tags (and, for connected clusters, the writable
// descriptive properties) synchronously.
func (s *Server) patchCluster(managed bool) handler {
	return func(c *call) *Error {
		raw, e := readBody(c)
		if e != nil {
			return e
		}
		c.logBody = raw
		o, e := parseObject("", "ConnectedClusterPatch", raw)
		if e != nil {
			return e
		}
		tags, hasTags, e := o.strMap("tags")
		if e != nil {
			return e
		}
		props, hasProps, e := o.obj("properties", "ConnectedClusterPatchProperties")
		if e != nil {
			return e
		}
		if e := o.unknown(); e != nil {
			return e
		}
		updates := map[string][]byte{}
		if hasProps {
			allowed := []string{"distribution", "distributionVersion", "azureHybridBenefit"}
			if !managed {
				allowed = clusterDialectOf(c.apiVersion).patchable()
			}
			for _, f := range allowed {
				if f == "gateway" {
					if v, ok := props.get(f); ok {
						updates[f] = v
					}
					continue
				}
				v, ok, e := props.str(f)
				if e != nil {
					return e
				}
				if ok {
					updates[f], _ = json.Marshal(v)
				}
			}
			if e := props.unknown(); e != nil {
				return e
			}
		}
		if v, ok := updates["agentPublicKeyCertificate"]; ok {
			var cert string
			_ = json.Unmarshal(v, &cert)
			if _, err := ParseAgentPublicKey(cert); err != nil {
				return invalidParam("properties.agentPublicKeyCertificate", "The 'properties.agentPublicKeyCertificate' value is not a base64 DER public key or certificate: %v.", err)
			}
		}
		s.lock(c.now)
		defer s.unlock()
		cl, e := s.clusterLocked(c.vars["sub"], c.vars["rg"], managed, c.vars["name"])
		if e != nil {
			return e
		}
		if hasTags {
			cl.Tags = tags
		}
		for f, v := range updates {
			var str string
			_ = json.Unmarshal(v, &str)
			switch f {
			case "distribution":
				cl.Props.Distribution = str
			case "distributionVersion":
				cl.Props.DistributionVersion = str
			case "agentPublicKeyCertificate":
				cl.Props.AgentPublicKeyCertificate = str
			default:
				if cl.Extra == nil {
					cl.Extra = map[string][]byte{}
				}
				cl.Extra[f] = v
			}
		}
		cl.Sys.touch(c.who, c.now)
		if e := s.commitLocked(c); e != nil {
			return e
		}
		writeJSON(c.w, http.StatusOK, s.clusterJSONFor(cl, c.now, clusterDialectOf(c.apiVersion)))
		return nil
	}
}

// deleteCluster answers 202 with a Location; the cluster and its
// configurations go when the operation completes. A missing cluster is 204.
func (s *Server) deleteCluster(managed bool) handler {
	return func(c *call) *Error {
		s.lock(c.now)
		defer s.unlock()
		sub, rg, name := c.vars["sub"], c.vars["rg"], c.vars["name"]
		if _, e := s.groupLocked(sub, rg); e != nil {
			return e
		}
		id := clusterID(sub, rg, managed, name)
		cl, ok := s.store.clusters[key(id)]
		if !ok {
			c.w.WriteHeader(http.StatusNoContent)
			return nil
		}
		cl.State = "Deleting"
		ns, _ := clusterType(managed)
		op := s.newOpLocked(sub, ns, cl.Location, c.now, opClusterDeleted, id)
		if e := s.commitLocked(c); e != nil {
			return e
		}
		c.w.Header().Set("Location", s.opURL(op, "operationResults", c.apiVersion))
		c.w.Header().Set("retry-after-ms", retryAfterMs)
		c.w.WriteHeader(http.StatusAccepted)
		return nil
	}
}
