package conformance

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// since returns the versions of all from first on.
func since(all []string, first string) []string {
	return slices.DeleteFunc(slices.Clone(all), func(v string) bool { return v < first })
}

// cluster is a minimal connected cluster with extra members in properties
// (and, for "kind", at the top).
func cluster(extra map[string]any) []byte {
	props := map[string]any{"agentPublicKeyCertificate": "AAAA"}
	doc := map[string]any{"location": "eastus", "identity": map[string]any{"type": "SystemAssigned"}, "properties": props}
	for k, v := range extra {
		if k == "kind" {
			doc[k] = v
			continue
		}
		props[k] = v
	}
	b, _ := json.Marshal(doc)
	return b
}

// definedIn lists the versions whose schema accepts doc without an
// unknown-member violation at ptr.
func definedIn(versions []string, spec func(string) (*Spec, bool), doc []byte, ptr string) []string {
	var out []string
	for _, v := range versions {
		s, _ := spec(v)
		r := Validate(doc, s.Resource)
		if !slices.ContainsFunc(r.Violations, func(f Finding) bool { return f.Rule == RuleUnknown && f.Pointer == ptr }) {
			out = append(out, v)
		}
	}
	return out
}

// TestMembersByVersion pins which api-versions define the members that
// come and go, as read from the swaggers.
func TestMembersByVersion(t *testing.T) {
	cc := ConnectedClusterVersions()
	scc := SourceControlConfigurationVersions()
	for _, c := range []struct {
		name    string
		spec    func(string) (*Spec, bool)
		all     []string
		doc     []byte
		pointer string
		want    []string
	}{
		{"privateLinkState", ConnectedClusters, cc, cluster(map[string]any{"privateLinkState": "Disabled"}), "/properties/privateLinkState",
			append([]string{"2021-04-01-preview"}, since(cc, "2022-05-01-preview")...)},
		{"distributionVersion", ConnectedClusters, cc, cluster(map[string]any{"distributionVersion": "1"}), "/properties/distributionVersion",
			since(cc, "2022-10-01-preview")},
		{"miscellaneousProperties", ConnectedClusters, cc, cluster(map[string]any{"miscellaneousProperties": map[string]any{}}),
			"/properties/miscellaneousProperties", since(cc, "2022-10-01-preview")},
		{"kind", ConnectedClusters, cc, cluster(map[string]any{"kind": "ProvisionedCluster"}), "/kind", since(cc, "2023-11-01-preview")},
		{"arcAgentProfile", ConnectedClusters, cc, cluster(map[string]any{"arcAgentProfile": map[string]any{}}), "/properties/arcAgentProfile",
			since(cc, "2023-11-01-preview")},
		{"agentState", ConnectedClusters, since(cc, "2023-11-01-preview"),
			cluster(map[string]any{"arcAgentProfile": map[string]any{"agentState": "x"}}), "/properties/arcAgentProfile/agentState",
			since(cc, "2024-06-01-preview")},
		{"oidcIssuerProfile", ConnectedClusters, cc, cluster(map[string]any{"oidcIssuerProfile": map[string]any{}}), "/properties/oidcIssuerProfile",
			since(cc, "2024-06-01-preview")},
		{"securityProfile", ConnectedClusters, cc, cluster(map[string]any{"securityProfile": map[string]any{}}), "/properties/securityProfile",
			since(cc, "2024-06-01-preview")},
		// The brief said 2024-07-15-preview; the 2024-07-01-preview swagger
		// already has both.
		{"gateway", ConnectedClusters, cc, cluster(map[string]any{"gateway": nil}), "/properties/gateway", since(cc, "2024-07-01-preview")},
		{"arcAgentryConfigurations", ConnectedClusters, cc, cluster(map[string]any{"arcAgentryConfigurations": nil}),
			"/properties/arcAgentryConfigurations", since(cc, "2024-07-01-preview")},
		{"gateway.resourceId", ConnectedClusters, since(cc, "2024-07-01-preview"),
			cluster(map[string]any{"gateway": map[string]any{"resourceId": "/subscriptions/s/resourceGroups/r/providers/Microsoft.HybridCompute/gateways/g"}}),
			"/properties/gateway/resourceId", []string{"2024-07-01-preview", "2024-07-15-preview", "2024-12-01-preview"}},
		{"inboundConnectivityState", ConnectedClusters, cc, cluster(map[string]any{"inboundConnectivityState": "Unknown"}),
			"/properties/inboundConnectivityState", []string{"2026-02-01-preview"}},
		{"creationTime", SourceControlConfigurations, scc, []byte(`{"properties":{"creationTime":"x"}}`), "/properties/creationTime",
			[]string{"2019-11-01-preview"}},
		{"configurationProtectedSettings", SourceControlConfigurations, scc, []byte(`{"properties":{"configurationProtectedSettings":{}}}`),
			"/properties/configurationProtectedSettings", since(scc, "2020-07-01-preview")},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := definedIn(c.all, c.spec, c.doc, c.pointer); !slices.Equal(got, c.want) {
				t.Errorf("%s defined in\n %v\nwant\n %v", c.pointer, got, c.want)
			}
		})
	}
}

// TestErrorEnvelopes pins the error shape of each version: the local
// ErrorResponse {error: {code, message}} up to 2021-03-01 for
// sourceControlConfigurations, common-types ErrorResponse after it and for
// every connectedClusters version.
func TestErrorEnvelopes(t *testing.T) {
	v2 := []byte(`{"error":{"code":"NotFound","message":"m","target":"t","details":[{"code":"c","message":"m"}],"additionalInfo":[{"type":"x","info":{"a":1}}]}}`)
	local := []byte(`{"error":{"code":"NotFound","message":"m"}}`)
	for _, v := range SourceControlConfigurationVersions() {
		s, _ := SourceControlConfigurations(v)
		if r := Validate(local, s.Error); len(r.Violations) > 0 {
			t.Errorf("%s: the {code, message} envelope: %v", v, r.Violations)
		}
		r := Validate(v2, s.Error)
		if v <= "2021-03-01" {
			if len(r.Violations) != 3 { // target, details, additionalInfo
				t.Errorf("%s: the v2 envelope should break the local ErrorDefinition three times, got %v", v, r.Violations)
			}
		} else if len(r.Violations) > 0 {
			t.Errorf("%s: %v", v, r.Violations)
		}
		if r := Validate([]byte(`{"error":{"code":"NotFound"}}`), s.Error); len(r.Violations) != 1 || r.Violations[0].Rule != RuleRequired {
			t.Errorf("%s: an error without message: %v", v, r.Violations)
		}
	}
	for _, v := range ConnectedClusterVersions() {
		s, _ := ConnectedClusters(v)
		if r := Validate(v2, s.Error); len(r.Violations) > 0 {
			t.Errorf("%s: %v", v, r.Violations)
		}
	}
}

// TestSpecsAreComplete checks every encoded version for the schemas and
// status codes the suite needs, and its citation.
func TestSpecsAreComplete(t *testing.T) {
	check := func(s *Spec) {
		for name, sc := range map[string]*Schema{"Resource": s.Resource, "Request": s.Request, "List": s.List, "Error": s.Error, "Operations": s.Operations} {
			if sc == nil || !strings.HasPrefix(sc.Ref, s.File+"#/definitions/") && !strings.HasPrefix(sc.Ref, "specification/") {
				t.Errorf("%s %s: %s has no citation (%v)", s.Type, s.Version, name, sc)
			}
		}
		if !strings.Contains(s.File, "/"+s.Version+"/") {
			t.Errorf("%s %s: file %s is not the version's", s.Type, s.Version, s.File)
		}
		for _, op := range []Op{OpCreateOrUpdate, OpGet, OpList, OpDelete, OpOperations} {
			if len(s.Statuses[op]) == 0 {
				t.Errorf("%s %s: no status codes for %s", s.Type, s.Version, op)
			}
		}
	}
	for _, v := range SourceControlConfigurationVersions() {
		s, _ := SourceControlConfigurations(v)
		check(s)
	}
	for _, v := range ConnectedClusterVersions() {
		s, _ := ConnectedClusters(v)
		check(s)
		if s.Patch == nil {
			t.Errorf("connectedClusters %s: no PATCH body", v)
		}
		if (v == "2021-03-01") != (s.CredentialsAction == "") {
			t.Errorf("connectedClusters %s: credentials action %q", v, s.CredentialsAction)
		}
	}
	if n := len(SourceControlConfigurationVersions()); n != 14 {
		t.Errorf("%d sourceControlConfigurations versions", n)
	}
	if n := len(ConnectedClusterVersions()); n != 18 {
		t.Errorf("%d connectedClusters versions", n)
	}
}
