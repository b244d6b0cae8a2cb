package engine

import (
	"fmt"
	"sort"
	"strings"
)

// Aliases name resource properties in policy rules:
// "<namespace>/<type>/<property path>", e.g.
// "Microsoft.KubernetesConfiguration/sourceControlConfigurations/helmOperatorProperties.chartVersion".
// Real Azure keeps a per-api-version table of them for every resource type.
// The engine keeps an explicit table for the types gitopsim serves and maps
// every other alias generically: the part after the type is a dotted path
// under "properties", except for the ARM envelope members (sku, identity,
// ...), which sit at the top level. A type whose table is complete is
// strict: an alias missing from it is an error, as in Azure.

// normKind says how values of a field are normalised before comparison.
type normKind uint8

const (
	normNone     normKind = iota
	normLocation          // "East US 2" equals "eastus2"
	normReadonly          // the --git-readonly trap, see ReadOnlyNormalisation
)

// pathSeg is one step of a property path; wildcard marks "[*]".
type pathSeg struct {
	name     string
	wildcard bool
}

// alias is a resolved alias: the resource type it belongs to and the JSON
// path it selects in a resource.
type alias struct {
	name string // as written in the table or, for generic ones, in the rule
	typ  string // the resource type, e.g. Microsoft.Kubernetes/connectedClusters
	path []pathSeg
	norm normKind
}

// wildcard reports whether the alias selects a collection ([*]).
func (a *alias) wildcard() bool {
	for _, s := range a.path {
		if s.wildcard {
			return true
		}
	}
	return false
}

// jsonPath renders the alias's path as Azure shows it in evaluation details.
func (a *alias) jsonPath() string { return renderPath(a.path) }

func renderPath(p []pathSeg) string {
	parts := make([]string, len(p))
	for i, s := range p {
		parts[i] = s.name
		if s.wildcard {
			parts[i] += "[*]"
		}
	}
	return strings.Join(parts, ".")
}

// parsePath reads "a.b[*].c" into segments.
func parsePath(p string) ([]pathSeg, error) {
	if p == "" {
		return nil, fmt.Errorf("empty property path")
	}
	var out []pathSeg
	for _, part := range strings.Split(p, ".") {
		seg := pathSeg{name: part}
		if strings.HasSuffix(part, "[*]") {
			seg = pathSeg{name: strings.TrimSuffix(part, "[*]"), wildcard: true}
		}
		if seg.name == "" || strings.ContainsAny(seg.name, "[]*'/ ") {
			return nil, fmt.Errorf("property path '%s' has an invalid segment '%s'", p, part)
		}
		out = append(out, seg)
	}
	return out, nil
}

// aliasType is the alias table of one resource type.
type aliasType struct {
	typ    string
	strict bool              // aliases outside the table are errors
	byName map[string]string // lower-case property part → JSON path
	norms  map[string]normKind
}

// aliasEntry is one row of the table: the property part of the alias and
// the JSON path it selects.
type aliasEntry struct {
	prop, path string
	norm       normKind
}

// envelopeMembers are the ARM resource members that generic aliases read
// at the top level rather than under "properties".
var envelopeMembers = map[string]bool{
	"sku": true, "identity": true, "plan": true, "zones": true, "kind": true,
	"managedby": true, "extendedlocation": true, "systemdata": true,
}

// props builds table rows whose JSON path is the property under
// "properties".
func props(names ...string) []aliasEntry {
	out := make([]aliasEntry, len(names))
	for i, n := range names {
		out[i] = aliasEntry{prop: n, path: "properties." + n}
	}
	return out
}

// aliasTypes is the explicit alias table, keyed by lower-case type. It is
// constant data. The sourceControlConfigurations table lists every property
// of api-version 2021-03-01 except the write-only protected settings
// (arc-gitops-spec §1.3); the others list the common properties and fall
// back to the generic mapping.
var aliasTypes = func() map[string]*aliasType {
	tables := []struct {
		typ     string
		strict  bool
		entries []aliasEntry
	}{
		{"Microsoft.KubernetesConfiguration/sourceControlConfigurations", true, append(props(
			"operatorInstanceName", "operatorNamespace", "operatorType", "operatorScope",
			"repositoryUrl", "repositoryPublicKey", "sshKnownHostsContents", "enableHelmOperator",
			"helmOperatorProperties", "helmOperatorProperties.chartVersion", "helmOperatorProperties.chartValues",
			"provisioningState", "complianceStatus", "complianceStatus.complianceState",
			"complianceStatus.lastConfigApplied", "complianceStatus.message", "complianceStatus.messageLevel",
		), aliasEntry{prop: "operatorParams", path: "properties.operatorParams", norm: normReadonly})},
		{"Microsoft.Kubernetes/connectedClusters", false, props(
			"distribution", "infrastructure", "kubernetesVersion", "agentVersion", "totalNodeCount",
			"totalCoreCount", "provisioningState", "connectivityStatus", "agentPublicKeyCertificate",
			"privateLinkState", "azureHybridBenefit",
		)},
		{"Microsoft.ContainerService/managedClusters", false, append(props(
			"kubernetesVersion", "dnsPrefix", "enableRBAC", "provisioningState", "nodeResourceGroup",
			"apiServerAccessProfile.enablePrivateCluster", "addonProfiles", "aadProfile",
			"networkProfile.networkPlugin", "networkProfile.networkPolicy",
		), aliasEntry{prop: "sku.tier", path: "sku.tier"}, aliasEntry{prop: "sku.name", path: "sku.name"})},
		{"Microsoft.KubernetesConfiguration/extensions", false, props(
			"extensionType", "releaseTrain", "version", "autoUpgradeMinorVersion", "provisioningState",
			"configurationSettings", "scope.cluster.releaseNamespace",
		)},
		{"Microsoft.KubernetesConfiguration/fluxConfigurations", false, props(
			"scope", "namespace", "sourceKind", "suspend", "provisioningState", "complianceState",
			"gitRepository.url", "gitRepository.timeoutInSeconds", "gitRepository.syncIntervalInSeconds",
			"gitRepository.repositoryRef.branch", "gitRepository.repositoryRef.tag",
			"gitRepository.repositoryRef.semver", "gitRepository.repositoryRef.commit",
		)},
	}
	out := make(map[string]*aliasType, len(tables))
	for _, t := range tables {
		at := &aliasType{typ: t.typ, strict: t.strict, byName: map[string]string{}, norms: map[string]normKind{}}
		for _, e := range t.entries {
			key := strings.ToLower(e.prop)
			at.byName[key] = e.path
			at.norms[key] = e.norm
		}
		out[strings.ToLower(t.typ)] = at
	}
	return out
}()

// supported lists a strict type's aliases for the error message.
func (t *aliasType) supported() string {
	names := make([]string, 0, len(t.byName))
	for k := range t.byName {
		names = append(names, t.typ+"/"+k)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// lookupAlias resolves an alias name. definition names the policy for the
// Azure-style messages. The returned error is an *Error without a path.
func lookupAlias(name, definition string) (*alias, error) {
	cut := strings.LastIndexByte(name, '/')
	if cut <= 0 || cut == len(name)-1 {
		return nil, invalidAlias(name, definition, "")
	}
	typ, prop := name[:cut], name[cut+1:]
	segs := strings.Split(typ, "/")
	if len(segs) < 2 || !strings.Contains(segs[0], ".") {
		return nil, &Error{Code: CodeInvalidProviderNameInPolicyAlias,
			Message: fmt.Sprintf("The policy definition '%s' rule is invalid. The provider '%s' referenced by the 'field' property '%s' of the policy rule doesn't exist.", definition, segs[0], name)}
	}
	for _, s := range segs {
		if s == "" {
			return nil, invalidAlias(name, definition, "")
		}
	}
	if t, ok := aliasTypes[strings.ToLower(typ)]; ok {
		if p, ok := t.byName[strings.ToLower(prop)]; ok {
			path, err := parsePath(p)
			if err != nil {
				return nil, invalidAlias(name, definition, "")
			}
			return &alias{name: t.typ + "/" + prop, typ: t.typ, path: path, norm: t.norms[strings.ToLower(prop)]}, nil
		}
		if t.strict {
			return nil, invalidAlias(name, definition, t.supported())
		}
	}
	path, err := parsePath(prop)
	if err != nil {
		return nil, invalidAlias(name, definition, "")
	}
	if !envelopeMembers[strings.ToLower(path[0].name)] {
		path = append([]pathSeg{{name: "properties"}}, path...)
	}
	return &alias{name: name, typ: typ, path: path}, nil
}

// invalidAlias is Azure's InvalidPolicyAlias error.
func invalidAlias(name, definition, supported string) *Error {
	cut := strings.LastIndexByte(name, '/')
	typ := name
	if cut > 0 {
		typ = name[:cut]
	}
	ns, rt, _ := strings.Cut(typ, "/")
	msg := fmt.Sprintf("The policy definition '%s' rule is invalid. The 'field' property '%s' of the policy rule doesn't exist as an alias under provider '%s' and resource type '%s'.", definition, name, ns, rt)
	if supported != "" {
		msg += fmt.Sprintf(" The supported aliases are '%s'.", supported)
	}
	return &Error{Code: CodeInvalidPolicyAlias, Message: msg}
}
