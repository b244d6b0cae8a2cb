package arm

import (
	"encoding/json"
	"slices"
	"strings"
)

// clusterDialect is what one api-version of connectedClusters defines:
// which members a request may carry and a response holds, and what a
// PATCH may change. Read from the swaggers in
// specification/hybridkubernetes/resource-manager/Microsoft.Kubernetes
// ({preview,stable}/<version>/connectedClusters.json). A member that the
// request's version does not define is refused like any unknown member
// (and never written back in that version), so that a test written
// against one version does not pass by accident of another's shape.
type clusterDialect struct {
	v string // lower-case api-version; "" means the newest
}

func clusterDialectOf(apiVersion string) clusterDialect {
	return clusterDialect{v: strings.ToLower(apiVersion)}
}

// from reports whether the version is first or later. Versions compare
// as strings: dates first, and "-preview" sorts after the same date.
func (d clusterDialect) from(first string) bool { return d.v == "" || d.v >= first }

// has reports whether the version defines a member of the resource
// ("kind", "systemData") or of its properties.
func (d clusterDialect) has(member string) bool {
	switch member {
	case "systemData":
		return d.v != "2020-01-01-preview"
	case "aadProfile":
		// Required in the first preview; back from 2023-11-01-preview
		// with another shape.
		return d.v == "2020-01-01-preview" || d.from("2023-11-01-preview")
	case "privateLinkState", "privateLinkScopeResourceId":
		// 2021-04-01-preview had them, 2021-10-01 (GA) did not.
		return d.v == "2021-04-01-preview" || d.from("2022-05-01-preview")
	case "distributionVersion", "azureHybridBenefit", "miscellaneousProperties":
		return d.from("2022-10-01-preview")
	case "kind", "arcAgentProfile":
		return d.from("2023-11-01-preview")
	case "securityProfile", "oidcIssuerProfile":
		return d.from("2024-06-01-preview")
	case "gateway", "arcAgentryConfigurations":
		return d.from("2024-07-01-preview")
	}
	return true
}

// patchable lists the properties a PATCH may change
// (ConnectedClusterPatchProperties); tags are patchable in every version.
func (d clusterDialect) patchable() []string {
	switch {
	case d.v == "2020-01-01-preview":
		return []string{"agentPublicKeyCertificate"}
	case d.v == "2021-04-01-preview":
		return []string{"privateLinkState", "privateLinkScopeResourceId"}
	case !d.from("2022-10-01-preview"):
		return nil // 2021-03-01, 2021-10-01, 2022-05-01-preview: tags only
	case d.from("2025-12-01-preview"):
		return []string{"distribution", "distributionVersion", "azureHybridBenefit", "gateway"}
	}
	return []string{"distribution", "distributionVersion", "azureHybridBenefit"}
}

// clusterNestedReadOnly are read-only members inside writable objects:
// accepted in a request (GET-change-PUT sends them back) and never
// stored, as ARM does with every read-only member.
var clusterNestedReadOnly = map[string][]string{
	"oidcIssuerProfile": {"issuerUrl"},
	"arcAgentProfile":   {"agentState", "agentErrors"},
}

// dropReadOnly removes the read-only members of a verbatim property.
func dropReadOnly(name string, raw []byte) []byte {
	ro, nested := clusterNestedReadOnly[name]
	if !nested && name != "arcAgentProfile" {
		return raw
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil || m == nil {
		return raw
	}
	for k := range m {
		if slices.ContainsFunc(ro, func(r string) bool { return strings.EqualFold(r, k) }) {
			delete(m, k)
		}
	}
	if name == "arcAgentProfile" {
		// systemComponents[].currentVersion is the agent's to report.
		if sc, ok := m["systemComponents"]; ok {
			var comps []map[string]json.RawMessage
			if json.Unmarshal(sc, &comps) == nil {
				for _, c := range comps {
					delete(c, "currentVersion")
				}
				if b, err := json.Marshal(comps); err == nil {
					m["systemComponents"] = b
				}
			}
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		return raw
	}
	return b
}
