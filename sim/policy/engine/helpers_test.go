package engine

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

const testSub = "00000000-0000-0000-0000-0000000000aa"

func clusterID(kind, rg, name string) string {
	return "/subscriptions/" + testSub + "/resourceGroups/" + rg + "/providers/" + kind + "/" + name
}

// connectedCluster is a Microsoft.Kubernetes/connectedClusters resource as
// the ARM fake returns it.
func connectedCluster(name string) Resource {
	return Resource{
		"id":       clusterID("Microsoft.Kubernetes/connectedClusters", "rg-fleet", name),
		"name":     name,
		"type":     "Microsoft.Kubernetes/connectedClusters",
		"location": "westeurope",
		"tags":     map[string]any{"env": "prod"},
		"identity": map[string]any{"type": "SystemAssigned"},
		"properties": map[string]any{
			"distribution":      "k3s",
			"infrastructure":    "generic",
			"kubernetesVersion": "1.32.1",
			"totalNodeCount":    float64(3), // as encoding/json decodes it
			"provisioningState": "Succeeded",
		},
	}
}

func managedCluster(name string) Resource {
	return Resource{
		"id":         clusterID("Microsoft.ContainerService/managedClusters", "rg-aks", name),
		"name":       name,
		"type":       "Microsoft.ContainerService/managedClusters",
		"location":   "eastus",
		"properties": map[string]any{"kubernetesVersion": "1.31.0", "provisioningState": "Succeeded"},
	}
}

// config is a sourceControlConfiguration under a cluster as the resource
// provider stores it (api-version 2021-03-01: enableHelmOperator a bool).
func config(cluster Resource, name string, edit func(p map[string]any)) Resource {
	p := map[string]any{
		"operatorInstanceName": "cluster-config",
		"operatorNamespace":    "cluster-config",
		"operatorScope":        "cluster",
		"operatorType":         "Flux",
		"operatorParams":       "--git-readonly",
		"repositoryUrl":        "https://github.com/Azure/arc-k8s-demo",
		"enableHelmOperator":   true,
		"helmOperatorProperties": map[string]any{
			"chartVersion": "1.2.0",
			"chartValues":  "",
		},
		"repositoryPublicKey": "",
		"provisioningState":   "Succeeded",
		"complianceStatus":    map[string]any{"complianceState": "Installed", "messageLevel": "Information"},
	}
	if edit != nil {
		edit(p)
	}
	return Resource{
		"id":         cluster.ID() + "/providers/Microsoft.KubernetesConfiguration/sourceControlConfigurations/" + name,
		"name":       name,
		"type":       "Microsoft.KubernetesConfiguration/sourceControlConfigurations",
		"properties": p,
	}
}

// store is a toy resource store answering RelatedQuery as the provider's
// store would.
type store struct {
	byID    map[string]Resource
	queries []RelatedQuery
}

func newStore(rs ...Resource) *store {
	s := &store{byID: map[string]Resource{}}
	for _, r := range rs {
		s.byID[strings.ToLower(r.ID())] = r
	}
	return s
}

func (s *store) related(q RelatedQuery) ([]Resource, error) {
	s.queries = append(s.queries, q)
	if q.ID != "" {
		if r, ok := s.byID[strings.ToLower(q.ID)]; ok {
			return []Resource{r}, nil
		}
		return nil, nil
	}
	var out []Resource
	for id, r := range s.byID {
		if strings.HasPrefix(id, strings.ToLower(q.Scope)+"/") && strings.EqualFold(r.Type(), q.Type) {
			out = append(out, r)
		}
	}
	return out, nil
}

func mustBuiltin(t testing.TB, name string) *Definition {
	t.Helper()
	raw, ok := BuiltIn(name)
	if !ok {
		t.Fatalf("BuiltIn(%s) not found", name)
	}
	def, err := ParseDefinition("", raw)
	if err != nil {
		t.Fatalf("ParseDefinition(%s): %v", name, err)
	}
	return def
}

// gitopsParams are the assignment parameters of the spec's example (§2.4).
func gitopsParams() map[string]any {
	return map[string]any{
		"configurationResourceName": "cluster-config",
		"operatorInstanceName":      "cluster-config",
		"operatorNamespace":         "cluster-config",
		"operatorScope":             "cluster",
		"repositoryUrl":             "https://github.com/Azure/arc-k8s-demo",
	}
}

func mustResolve(t testing.TB, def *Definition, assigned map[string]any) map[string]any {
	t.Helper()
	p, err := def.ResolveParameters("gitops-baseline", assigned)
	if err != nil {
		t.Fatalf("ResolveParameters: %v", err)
	}
	return p
}

// mustParse parses a definition given as JSON text.
func mustParse(t testing.TB, doc string) *Definition {
	t.Helper()
	def, err := ParseDefinition("test-def", json.RawMessage(doc))
	if err != nil {
		t.Fatalf("ParseDefinition: %v\n%s", err, doc)
	}
	return def
}

// wantCode checks err is an *Error with the code.
func wantCode(t testing.TB, err error, code string) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not an *Error (want code %s)", err, code)
	}
	if e.Code != code {
		t.Fatalf("code = %s, want %s (message %q)", e.Code, code, e.Message)
	}
	return e
}
