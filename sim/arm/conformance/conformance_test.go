package conformance

import (
	"net/http"
	"strings"
	"testing"

	"github.com/gitopsim/gitopsim/sim/arm"
	"github.com/gitopsim/gitopsim/sim/arm/armtest"
)

// The suite drives gitopsim's ARM provider over plain HTTPS, with raw JSON
// bodies, so that it sees exactly what is on the wire. For every
// api-version the provider advertises for a resource type (the provider
// registration's apiVersions), it runs the documented operations and checks
// status codes, headers and every body against that version's definitions.
// Each violation is reported as
//
//	<api-version> <operation>: <JSON pointer>: <rule>: <detail>
//
// and each test ends with a summary of its violations grouped by JSON
// pointer and rule, with the operations and api-versions they occur in: a
// to-do list. The harness is in harness_test.go.

// deviation is a documented difference between the swagger and the real
// service that gitopsim reproduces on purpose. Matching violations are
// logged, not failed.
type deviation struct {
	typ     string
	rule    Rule
	pointer string // suffix of the finding's pointer
	// before limits the deviation to api-versions that sort before it;
	// "" is every version.
	before string
	reason string
}

var deviations = []deviation{
	{typ: "sourceControlConfigurations", rule: RuleNullable, pointer: "/properties/sshKnownHostsContents",
		reason: "recordings of the real service show null for an unset sshKnownHostsContents (issue 15, item 3); the swagger does not set x-nullable"},
	{typ: "sourceControlConfigurations", rule: RuleFormat, pointer: "/properties/complianceStatus/lastConfigApplied", before: "2021-03-01",
		reason: "the service of the preview era wrote a .NET DateTime without a zone (0001-01-01T00:00:00); gitopsim answers the preview api-versions so"},
}

func deviationFor(typ, version string, f Finding) string {
	for _, d := range deviations {
		if d.typ == typ && d.rule == f.Rule && strings.HasSuffix(f.Pointer, d.pointer) && (d.before == "" || version < d.before) {
			return d.reason
		}
	}
	return ""
}

// TestSourceControlConfigurations runs the documented operations of
// Microsoft.KubernetesConfiguration/sourceControlConfigurations for every
// api-version gitopsim advertises.
func TestSourceControlConfigurations(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	versions := coverage(t, "sourceControlConfigurations",
		h.advertised("Microsoft.KubernetesConfiguration", "sourceControlConfigurations"),
		SourceControlConfigurationVersions(),
		func(v string) string { s, _ := SourceControlConfigurations(v); return s.Note })

	// One connected cluster holds every version's configurations.
	const rg, parent = "conformance-scc", "scc-parent"
	h.resourceGroup(rg)
	ccPath := "/subscriptions/" + h.sub + "/resourceGroups/" + rg + "/providers/Microsoft.Kubernetes/connectedClusters/" + parent
	r := h.do(http.MethodPut, withVersion(ccPath, "2021-10-01"), map[string]any{
		"location": "eastus", "identity": map[string]any{"type": "SystemAssigned"},
		"properties": map[string]any{"agentPublicKeyCertificate": armtest.AgentKey()},
	})
	if r.status != http.StatusCreated && r.status != http.StatusOK {
		t.Fatalf("parent cluster: %v", r)
	}
	base := ccPath + "/providers/Microsoft.KubernetesConfiguration/sourceControlConfigurations"

	for _, v := range versions {
		spec, _ := SourceControlConfigurations(v)
		t.Run(v, func(t *testing.T) { runSCC(t, h, spec, base) })
	}
	h.ledger.summary(t, "sourceControlConfigurations", versions)
}

// sccBody is a configuration as the spec's examples and az send it.
func sccBody() map[string]any {
	return map[string]any{"properties": map[string]any{
		"repositoryUrl":                  "https://127.0.0.1/team/app.git",
		"operatorNamespace":              "team-a",
		"operatorInstanceName":           "team-a-flux",
		"operatorType":                   "Flux",
		"operatorParams":                 "--git-readonly --git-path=releases",
		"operatorScope":                  "namespace",
		"configurationProtectedSettings": map[string]any{},
		"enableHelmOperator":             true,
		"helmOperatorProperties":         map[string]any{"chartVersion": "1.4.0", "chartValues": "--set helm.versions=v3"},
	}}
}

// sccWriteOnly are members a GET need not return: protected settings are
// never sent back (the spec's examples omit them).
var sccWriteOnly = []string{"/properties/configurationProtectedSettings"}

func runSCC(t *testing.T, h *harness, spec *Spec, base string) {
	name := "cfg-" + strings.ReplaceAll(spec.Version, ".", "-")
	path := base + "/" + name
	body := sccBody()
	selfCheck(t, spec, body, spec.Request)
	sent := decoded(t, body)

	t.Run("PUT create", func(t *testing.T) {
		c := h.checker(t, spec, "PUT create")
		r := h.do(http.MethodPut, withVersion(path, spec.Version), body)
		if c.status(r, OpCreateOrUpdate) {
			c.roundTrip(sent, c.body(r, spec.Resource), sccWriteOnly...)
		}
	})
	t.Run("PUT update", func(t *testing.T) {
		// As az k8s-configuration sends it: operatorType in lower case. The
		// enum is modelAsString, so what comes back is noted, not failed;
		// the real service answers "Flux".
		c := h.checker(t, spec, "PUT update")
		az := sccBody()
		az["properties"].(map[string]any)["operatorType"] = "flux"
		r := h.do(http.MethodPut, withVersion(path, spec.Version), az)
		if c.status(r, OpCreateOrUpdate) {
			c.roundTrip(sent, c.body(r, spec.Resource), append(sccWriteOnly, "/properties/operatorType")...)
		}
	})
	t.Run("GET", func(t *testing.T) {
		c := h.checker(t, spec, "GET")
		r := h.do(http.MethodGet, withVersion(path, spec.Version), nil)
		if c.status(r, OpGet) {
			c.roundTrip(sent, c.body(r, spec.Resource), append(sccWriteOnly, "/properties/operatorType")...)
		}
	})
	t.Run("LIST", func(t *testing.T) {
		c := h.checker(t, spec, "LIST")
		c.pages(h.do(http.MethodGet, withVersion(base, spec.Version), nil), OpList, spec.List)
	})
	t.Run("PUT read-only", func(t *testing.T) {
		c := h.checker(t, spec, "PUT read-only")
		ro := sccBody()
		Merge(ro, ReadOnlySentinels(spec.Request))
		r := h.do(http.MethodPut, withVersion(path, spec.Version), ro)
		if r.status >= 400 {
			c.fail("", RuleReadOnly, "a PUT carrying read-only members was refused with %d%s; read-only members must be ignored", r.status, r.errorText())
			return
		}
		if c.status(r, OpCreateOrUpdate) {
			c.sentinels(c.body(r, spec.Resource))
		}
		g := h.do(http.MethodGet, withVersion(path, spec.Version), nil)
		if c.status(g, OpGet) {
			c.sentinels(c.body(g, spec.Resource))
		}
	})
	t.Run("GET missing", func(t *testing.T) {
		c := h.checker(t, spec, "GET missing")
		c.wantError(h.do(http.MethodGet, withVersion(base+"/cfg-missing", spec.Version), nil), http.StatusNotFound)
	})
	t.Run("PUT malformed", func(t *testing.T) {
		c := h.checker(t, spec, "PUT malformed")
		c.wantError(h.do(http.MethodPut, withVersion(path, spec.Version), []byte(`{"properties":`)), http.StatusBadRequest)
	})
	t.Run("DELETE", func(t *testing.T) {
		c := h.checker(t, spec, "DELETE")
		r := h.do(http.MethodDelete, withVersion(path, spec.Version), nil)
		if c.status(r, OpDelete) {
			c.noBody(r)
		}
		c.wantError(h.do(http.MethodGet, withVersion(path, spec.Version), nil), http.StatusNotFound)
	})
	t.Run("DELETE missing", func(t *testing.T) {
		c := h.checker(t, spec, "DELETE missing")
		r := h.do(http.MethodDelete, withVersion(path, spec.Version), nil)
		if c.status(r, OpDelete) {
			c.noBody(r)
		}
	})
	t.Run("operations", func(t *testing.T) {
		c := h.checker(t, spec, "operations")
		c.pages(h.do(http.MethodGet, withVersion("/providers/Microsoft.KubernetesConfiguration/operations", spec.Version), nil),
			OpOperations, spec.Operations)
	})
}

// TestConnectedClusters runs the documented operations of
// Microsoft.Kubernetes/connectedClusters for every api-version gitopsim
// advertises.
func TestConnectedClusters(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	versions := coverage(t, "connectedClusters",
		h.advertised("Microsoft.Kubernetes", "connectedClusters"),
		ConnectedClusterVersions(),
		func(v string) string { s, _ := ConnectedClusters(v); return s.Note })
	const rg = "conformance-cc"
	h.resourceGroup(rg)
	for _, v := range versions {
		spec, _ := ConnectedClusters(v)
		t.Run(v, func(t *testing.T) { runCC(t, h, spec, rg) })
	}
	h.ledger.summary(t, "connectedClusters", versions)
}

// ccBody is a connected cluster with every writable member the version
// defines set, so that each is seen to round-trip.
func ccBody(t *testing.T, spec *Spec) map[string]any {
	defined := spec.Request.Properties["properties"].Properties
	props := map[string]any{
		"agentPublicKeyCertificate": armtest.AgentKey(),
		"distribution":              "gitopsim",
		"infrastructure":            "generic",
	}
	samples := map[string]any{
		"distributionVersion":      "1.0",
		"privateLinkState":         "Disabled",
		"azureHybridBenefit":       "NotApplicable",
		"arcAgentProfile":          map[string]any{"desiredAgentVersion": "1.20.0", "agentAutoUpgrade": "Enabled"},
		"securityProfile":          map[string]any{"workloadIdentity": map[string]any{"enabled": false}},
		"oidcIssuerProfile":        map[string]any{"enabled": false},
		"gateway":                  map[string]any{"enabled": false},
		"arcAgentryConfigurations": []any{map[string]any{"feature": "logging", "settings": map[string]any{"level": "info"}}},
	}
	for k, v := range samples {
		if _, ok := defined[k]; ok {
			props[k] = v
		}
	}
	if aad, ok := defined["aadProfile"]; ok {
		if _, old := aad.Properties["clientAppId"]; old {
			props["aadProfile"] = map[string]any{"tenantId": arm.DefaultTenantID, "clientAppId": "client-app", "serverAppId": "server-app"}
		} else {
			props["aadProfile"] = map[string]any{"enableAzureRBAC": false, "adminGroupObjectIDs": []any{}, "tenantID": arm.DefaultTenantID}
		}
	}
	body := map[string]any{
		"location":   "eastus",
		"tags":       map[string]any{"suite": "conformance"},
		"identity":   map[string]any{"type": "SystemAssigned"},
		"properties": props,
	}
	if _, ok := spec.Request.Properties["kind"]; ok {
		body["kind"] = "ProvisionedCluster"
	}
	return body
}

// ccPatch updates tags and every property the version's PATCH documents.
func ccPatch(t *testing.T, spec *Spec) map[string]any {
	samples := map[string]any{
		"agentPublicKeyCertificate": armtest.AgentKey(),
		"distribution":              "gitopsim-patched",
		"distributionVersion":       "1.1",
		"azureHybridBenefit":        "False",
		"privateLinkState":          "Disabled",
		"privateLinkScopeResourceId": "/subscriptions/" + arm.DefaultSubscriptionID +
			"/resourceGroups/conformance-cc/providers/Microsoft.HybridCompute/privateLinkScopes/pls",
		"gateway": map[string]any{"enabled": true},
	}
	props := map[string]any{}
	for k := range spec.Patch.Properties["properties"].Properties {
		props[k] = samples[k]
	}
	body := map[string]any{"tags": map[string]any{"suite": "conformance", "patched": "yes"}}
	if len(props) > 0 {
		body["properties"] = props
	}
	return body
}

func runCC(t *testing.T, h *harness, spec *Spec, rg string) {
	name := "cc-" + spec.Version
	base := "/subscriptions/" + h.sub + "/" + spec.ResourceGroups + "/" + rg + "/providers/Microsoft.Kubernetes/connectedClusters"
	path := base + "/" + name
	body := ccBody(t, spec)
	selfCheck(t, spec, body, spec.Request)
	sent := decoded(t, body)
	defer h.do(http.MethodDelete, withVersion(path, spec.Version), nil) // best effort, so lists stay small

	put := func(c *checker, b any) any {
		c.t.Helper()
		r := h.do(http.MethodPut, withVersion(path, spec.Version), b)
		if !c.status(r, OpCreateOrUpdate) {
			return nil
		}
		v := c.body(r, spec.Resource)
		c.awaitAsync(r, v)
		return v
	}
	get := func(c *checker) any {
		c.t.Helper()
		r := h.do(http.MethodGet, withVersion(path, spec.Version), nil)
		if !c.status(r, OpGet) {
			return nil
		}
		return c.body(r, spec.Resource)
	}

	t.Run("PUT create", func(t *testing.T) {
		c := h.checker(t, spec, "PUT create")
		c.roundTrip(sent, put(c, body))
	})
	t.Run("GET", func(t *testing.T) {
		c := h.checker(t, spec, "GET")
		got := get(c)
		c.roundTrip(sent, got)
		if s := provisioningState(got); got != nil && s != "Succeeded" {
			c.fail("/properties/provisioningState", RuleBody, "%q after the PUT's long-running operation ended, want Succeeded", s)
		}
	})
	t.Run("PUT update", func(t *testing.T) {
		c := h.checker(t, spec, "PUT update")
		c.roundTrip(sent, put(c, body))
	})
	t.Run("LIST", func(t *testing.T) {
		c := h.checker(t, spec, "LIST")
		c.pages(h.do(http.MethodGet, withVersion(base, spec.Version), nil), OpList, spec.List)
	})
	t.Run("LIST by subscription", func(t *testing.T) {
		c := h.checker(t, spec, "LIST by subscription")
		c.pages(h.do(http.MethodGet, withVersion("/subscriptions/"+h.sub+"/providers/Microsoft.Kubernetes/connectedClusters", spec.Version), nil),
			OpListBySubscription, spec.List)
	})
	t.Run("PATCH", func(t *testing.T) {
		c := h.checker(t, spec, "PATCH")
		patch := ccPatch(t, spec)
		selfCheck(t, spec, patch, spec.Patch)
		r := h.do(http.MethodPatch, withVersion(path, spec.Version), patch)
		if !c.status(r, OpUpdate) {
			return
		}
		if r.status == http.StatusAccepted {
			c.awaitLocation(r)
		} else {
			c.roundTrip(decoded(t, patch), c.body(r, spec.Resource))
		}
		c.roundTrip(decoded(t, patch), get(c))
	})
	t.Run("PUT read-only", func(t *testing.T) {
		c := h.checker(t, spec, "PUT read-only")
		ro := ccBody(t, spec)
		Merge(ro, ReadOnlySentinels(spec.Request))
		r := h.do(http.MethodPut, withVersion(path, spec.Version), ro)
		if r.status >= 400 {
			c.fail("", RuleReadOnly, "a PUT carrying read-only members was refused with %d%s; read-only members must be ignored", r.status, r.errorText())
			return
		}
		if c.status(r, OpCreateOrUpdate) {
			v := c.body(r, spec.Resource)
			c.sentinels(v)
			c.awaitAsync(r, v)
		}
		c.sentinels(get(c))
	})
	if spec.CredentialsAction != "" {
		t.Run("POST "+spec.CredentialsAction, func(t *testing.T) {
			c := h.checker(t, spec, "POST "+spec.CredentialsAction)
			target := withVersion(path+"/"+spec.CredentialsAction, spec.Version)
			var reqBody any
			if _, ok := spec.CredentialsRequest.Properties["clientProxy"]; ok {
				reqBody = map[string]any{"authenticationMethod": "Token", "clientProxy": false}
				selfCheck(t, spec, reqBody, spec.CredentialsRequest)
			} else {
				target += "&ClientProxy=false" // 2020-01-01-preview: a query parameter, and the body is optional
			}
			r := h.do(http.MethodPost, target, reqBody)
			if notServed(r) {
				t.Logf("%s %s: not served by gitopsim: %d%s", spec.Version, c.op, r.status, r.errorText())
				h.ledger.mu.Lock()
				h.ledger.notServed = append(h.ledger.notServed, spec.Version+" "+c.op)
				h.ledger.mu.Unlock()
				return
			}
			if c.status(r, OpListCredentials) {
				c.body(r, spec.Credentials)
			}
		})
	}
	t.Run("GET missing", func(t *testing.T) {
		c := h.checker(t, spec, "GET missing")
		c.wantError(h.do(http.MethodGet, withVersion(base+"/cc-missing", spec.Version), nil), http.StatusNotFound)
	})
	t.Run("PUT malformed", func(t *testing.T) {
		c := h.checker(t, spec, "PUT malformed")
		c.wantError(h.do(http.MethodPut, withVersion(path, spec.Version), []byte(`{"location":`)), http.StatusBadRequest)
	})
	t.Run("DELETE", func(t *testing.T) {
		c := h.checker(t, spec, "DELETE")
		r := h.do(http.MethodDelete, withVersion(path, spec.Version), nil)
		if !c.status(r, OpDelete) {
			return
		}
		c.noBody(r)
		if r.status == http.StatusAccepted {
			c.awaitLocation(r)
		}
		c.wantError(h.do(http.MethodGet, withVersion(path, spec.Version), nil), http.StatusNotFound)
	})
	t.Run("DELETE missing", func(t *testing.T) {
		c := h.checker(t, spec, "DELETE missing")
		r := h.do(http.MethodDelete, withVersion(path, spec.Version), nil)
		if c.status(r, OpDelete) {
			c.noBody(r)
			if r.status == http.StatusAccepted {
				c.awaitLocation(r)
			}
		}
	})
	t.Run("operations", func(t *testing.T) {
		c := h.checker(t, spec, "operations")
		c.pages(h.do(http.MethodGet, withVersion("/providers/Microsoft.Kubernetes/operations", spec.Version), nil),
			OpOperations, spec.Operations)
	})
}
