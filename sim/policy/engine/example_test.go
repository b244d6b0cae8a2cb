package engine_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/gitopsim/gitopsim/sim/policy/engine"
)

// The provider's flow for one cluster: parse the built-in, resolve the
// assignment's parameters, evaluate, and render the remediation deployment.
func Example() {
	raw, _ := engine.BuiltIn(engine.BuiltInGitOpsNoSecrets)
	def, err := engine.ParseDefinition("", raw)
	if err != nil {
		panic(err)
	}
	params, err := def.ResolveParameters("gitops-baseline", map[string]any{
		"configurationResourceName": "cluster-config",
		"operatorInstanceName":      "cluster-config",
		"operatorNamespace":         "cluster-config",
		"operatorScope":             "cluster",
		"repositoryUrl":             "https://github.com/Azure/arc-k8s-demo",
		"enableHelmOperator":        "false",
	})
	if err != nil {
		panic(err)
	}
	cluster, _ := engine.ParseResource([]byte(`{
		"id": "/subscriptions/0000/resourceGroups/rg1/providers/Microsoft.Kubernetes/connectedClusters/edge-01",
		"name": "edge-01", "type": "Microsoft.Kubernetes/connectedClusters", "location": "westeurope"}`))
	eng := engine.New(engine.Options{})
	in := engine.Input{
		Resource: cluster,
		Related:  func(engine.RelatedQuery) ([]engine.Resource, error) { return nil, nil }, // none yet
	}
	res, err := eng.Evaluate(def, params, in)
	if err != nil {
		panic(err)
	}
	fmt.Println(res.Effect, res.ComplianceState, res.IfNotExistsDetails.TotalResources)
	fmt.Println("looked for", res.Query.ID)

	dep, err := eng.Deployment(def, params, in)
	if err != nil {
		panic(err)
	}
	for _, r := range dep.Resources {
		body, _ := json.Marshal(r.Body["properties"].(map[string]any)["enableHelmOperator"])
		fmt.Println("PUT", r.ID, "api-version", r.APIVersion, "enableHelmOperator", string(body))
	}
	// Output:
	// deployifnotexists NonCompliant 0
	// looked for /subscriptions/0000/resourceGroups/rg1/providers/Microsoft.Kubernetes/connectedClusters/edge-01/providers/Microsoft.KubernetesConfiguration/sourceControlConfigurations/cluster-config
	// PUT /subscriptions/0000/resourceGroups/rg1/providers/Microsoft.Kubernetes/connectedClusters/edge-01/providers/Microsoft.KubernetesConfiguration/sourceControlConfigurations/cluster-config api-version 2021-03-01 enableHelmOperator "false"
}

// Validation errors carry the ARM code, Azure's message and the JSON path.
func ExampleParseDefinition() {
	_, err := engine.ParseDefinition("deny-dev", json.RawMessage(`{"properties":{"mode":"All",
		"policyRule":{"if":{"field":"tags['env']","equals":"[parameters('env')]"},"then":{"effect":"deny"}}}}`))
	var e *engine.Error
	if errors.As(err, &e) {
		fmt.Println(e.Code)
		fmt.Println(e.Path)
		fmt.Println(strings.Contains(e.Message, "has undefined parameter 'env'"))
	}
	// Output:
	// InvalidPolicyParameters
	// properties.policyRule.if.equals
	// true
}

// Missing required parameters are reported in declaration order.
func ExampleDefinition_ResolveParameters() {
	raw, _ := engine.BuiltIn(engine.BuiltInGitOpsHTTPS)
	def, _ := engine.ParseDefinition("", raw)
	_, err := def.ResolveParameters("baseline", map[string]any{"repositoryUrl": "https://git.example/repo"})
	var e *engine.Error
	errors.As(err, &e)
	fmt.Println(e.Code + ": " + e.Message)
	// Output:
	// MissingPolicyParameter: The policy assignment 'baseline' is missing the parameter(s) 'configurationResourceName,operatorInstanceName,operatorNamespace' as defined in the policy definition 'a6f560f4-f582-4b67-b123-a37dcd1bf7ea'.
}
