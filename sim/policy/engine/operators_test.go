package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// missing marks a field that does not exist in the resource.
type missingT struct{}

var missing = missingT{}

func TestOperatorSemantics(t *testing.T) {
	tests := []struct {
		op     string
		value  any // missing for an absent field
		target any
		want   bool
	}{
		// equals / notEquals: case-insensitive, type-crossing, missing == "".
		{"equals", "Microsoft.Kubernetes/connectedClusters", "microsoft.kubernetes/CONNECTEDCLUSTERS", true},
		{"equals", "a", "b", false},
		{"equals", true, "true", true},
		{"equals", true, "True", true},
		{"equals", false, "true", false},
		{"equals", "TRUE", true, true},
		{"equals", int64(22), "22", true},
		{"equals", float64(3), int64(3), true},
		{"equals", 2.5, 2.5, true},
		{"equals", missing, "", true},
		{"equals", missing, "x", false},
		{"equals", nil, "", true},
		{"equals", []any{"a", "B"}, []any{"A", "b"}, true},
		{"equals", []any{"a"}, "a", false},
		{"equals", map[string]any{"K": "v"}, map[string]any{"k": "V"}, true},
		{"notEquals", "a", "A", false},
		{"notEquals", missing, "x", true},
		{"notEquals", missing, "", false},
		// like: one or more '*' wildcards, case-insensitive.
		{"like", "Microsoft.Network/publicIPAddresses", "microsoft.network/*", true},
		{"like", "prod-app-01", "*APP*", true},
		{"like", "prod-app-01", "prod*01", true},
		{"like", "prod-app-01", "dev*", false},
		{"like", "prod-app-01", "prod*02", false},
		{"like", "prod-app-01", "*app", false},
		{"like", "prod-app-01", "*app*01*", true},
		{"like", "abc", "abc", true},
		{"like", "abc", "ab", false},
		{"like", missing, "*", false},
		{"like", []any{"a"}, "*", false},
		{"notLike", missing, "*", true},
		{"notLike", "prod-app", "dev-*", true},
		// match: # digit, ? letter, . any; case-sensitive unless Insensitively.
		{"match", "ab-12", "??-##", true},
		{"match", "AB-12", "ab-##", false},
		{"match", "ab-1x", "??-##", false},
		{"match", "ab-12x", "??-##", false},
		{"match", "a.c", "a.c", true},
		{"match", "abc", "a.c", true},
		{"matchInsensitively", "AB-12", "ab-##", true},
		{"notMatch", "AB-12", "ab-##", true},
		{"notMatchInsensitively", "AB-12", "ab-##", false},
		{"match", missing, "", false},
		// contains: substring, case-insensitive; arrays by member.
		{"contains", "--git-readonly --sync", "READONLY", true},
		{"contains", "abc", "x", false},
		{"contains", []any{"a", "b"}, "B", true},
		{"contains", missing, "", false},
		{"notContains", missing, "x", true},
		{"notContains", "abc", "B", false},
		// in / notIn.
		{"in", "westeurope", []any{"eastus", "WestEurope"}, true},
		{"in", "northeurope", []any{"eastus", "westeurope"}, false},
		{"in", missing, []any{"", "x"}, true},
		{"in", missing, []any{"x"}, false},
		{"in", true, []any{"false", "true"}, true},
		{"notIn", "northeurope", []any{"eastus", "westeurope"}, true},
		{"notIn", "eastus", []any{"EASTUS"}, false},
		// containsKey: object keys, case-insensitive.
		{"containsKey", map[string]any{"Env": "x"}, "env", true},
		{"containsKey", map[string]any{"Env": "x"}, "team", false},
		{"containsKey", "Env", "Env", false},
		{"containsKey", missing, "env", false},
		{"notContainsKey", map[string]any{"Env": "x"}, "team", true},
		// less / greater: numbers, date-times, strings (case-insensitive).
		{"less", int64(2), int64(3), true},
		{"less", int64(3), int64(3), false},
		{"lessOrEquals", int64(3), int64(3), true},
		{"greater", 3.5, int64(3), true},
		{"greaterOrEquals", int64(3), 3.0, true},
		{"less", "2024-01-01T00:00:00Z", "2024-06-01T00:00:00Z", true},
		{"greater", "2024-01-01T10:00:00+02:00", "2024-01-01T09:00:00Z", false},
		{"less", "apple", "Banana", true},
		{"greater", "b", "A", true},
		{"less", missing, int64(1), false},
		{"greater", missing, int64(1), false},
		// exists.
		{"exists", "x", true, true},
		{"exists", "x", "false", false},
		{"exists", missing, "false", true},
		{"exists", missing, "TRUE", false},
		{"exists", "", true, true},
	}
	for _, tc := range tests {
		op := operators[strings.ToLower(tc.op)]
		if op == nil {
			t.Fatalf("no operator %s", tc.op)
		}
		present := tc.value != missing
		v := tc.value
		if !present {
			v = nil
		}
		got, err := op.fn(normalize(v), present, normalize(tc.target), nil)
		if err != nil {
			t.Errorf("%s(%v, %v): %v", tc.op, tc.value, tc.target, err)
			continue
		}
		if got != tc.want {
			t.Errorf("%s(%#v, %#v) = %v, want %v", tc.op, tc.value, tc.target, got, tc.want)
		}
	}
}

func TestOperatorErrors(t *testing.T) {
	for _, tc := range []struct {
		op            string
		value, target any
	}{
		{"in", "a", "a"},
		{"like", "a", int64(1)},
		{"match", "a", true},
		{"containsKey", map[string]any{}, []any{}},
		{"less", int64(1), "a"},
		{"greater", "a", int64(1)},
		{"less", true, int64(1)},
		{"exists", "a", "maybe"},
	} {
		_, err := operators[strings.ToLower(tc.op)].fn(tc.value, true, tc.target, nil)
		if !errors.Is(err, ErrEvaluation) {
			t.Errorf("%s(%#v, %#v): err %v, want ErrEvaluation", tc.op, tc.value, tc.target, err)
		}
	}
}

func TestEveryNegationIsExact(t *testing.T) {
	pairs := map[string]string{"notequals": "equals", "notlike": "like", "notmatch": "match",
		"notmatchinsensitively": "matchinsensitively", "notcontains": "contains", "notin": "in", "notcontainskey": "containskey"}
	values := []any{nil, "a", "A", "", true, int64(1), []any{"a"}, map[string]any{"a": int64(1)}}
	targets := []any{"a", "*", "?", "", []any{"a", ""}, "true"}
	for neg, pos := range pairs {
		for _, v := range values {
			for _, present := range []bool{true, false} {
				for _, tgt := range targets {
					p, perr := operators[pos].fn(v, present, tgt, nil)
					n, nerr := operators[neg].fn(v, present, tgt, nil)
					if (perr == nil) != (nerr == nil) || (perr == nil && p == n) {
						t.Errorf("%s(%#v, present=%v, %#v) = %v/%v, %s = %v/%v", neg, v, present, tgt, n, nerr, pos, p, perr)
					}
				}
			}
		}
	}
}

// rule builds a one-condition policy and evaluates it against r.
func evalIf(t *testing.T, cond string, r Resource, params string, assigned map[string]any) (bool, []ExpressionResult, error) {
	t.Helper()
	if params == "" {
		params = "{}"
	}
	def := mustParse(t, fmt.Sprintf(`{"properties":{"mode":"All","parameters":%s,"policyRule":{"if":%s,"then":{"effect":"audit"}}}}`, params, cond))
	p, err := def.ResolveParameters("a", assigned)
	if err != nil {
		t.Fatal(err)
	}
	res, err := New(Options{}).Evaluate(def, p, Input{Resource: r, ResourceGroup: &ResourceGroup{Location: "westeurope"}})
	if err != nil {
		return false, nil, err
	}
	return res.IfMatched, res.EvaluatedExpressions, nil
}

func TestFieldConditions(t *testing.T) {
	r := connectedCluster("edge-01")
	r["tags"] = map[string]any{"env": "prod", "Cost.Center": "42", "it's": "quoted", "Team Name": "a"}
	r["kind"] = "ProvisionedCluster"
	r["location"] = "West Europe"
	r["properties"].(map[string]any)["nodePools"] = []any{
		map[string]any{"name": "system", "count": int64(3), "labels": []any{"a", "b"}},
		map[string]any{"name": "user", "count": int64(5), "labels": []any{"c"}},
	}
	r["properties"].(map[string]any)["enabled"] = true
	cc := "Microsoft.Kubernetes/connectedClusters"
	tests := []struct {
		cond string
		want bool
	}{
		{`{"field":"type","equals":"microsoft.kubernetes/connectedclusters"}`, true},
		{`{"field":"Type","equals":"Microsoft.Kubernetes/connectedClusters"}`, true},
		{`{"field":"name","like":"edge-*"}`, true},
		{`{"field":"fullName","equals":"edge-01"}`, true},
		{`{"field":"kind","equals":"provisionedcluster"}`, true},
		{`{"field":"id","contains":"/resourceGroups/rg-fleet/"}`, true},
		{`{"field":"location","equals":"westeurope"}`, true}, // "West Europe" is normalised
		{`{"field":"location","in":["eastus","WESTEUROPE"]}`, true},
		{`{"field":"identity.type","equals":"systemassigned"}`, true},
		{`{"field":"tags","containsKey":"ENV"}`, true},
		{`{"field":"tags['env']","equals":"PROD"}`, true},
		{`{"field":"tags.env","equals":"prod"}`, true},
		{`{"field":"tags[Cost.Center]","equals":"42"}`, true},
		{`{"field":"tags['Cost.Center']","equals":"42"}`, true},
		{`{"field":"tags['it''s']","equals":"quoted"}`, true},
		{`{"field":"tags['Team Name']","exists":true}`, true},
		{`{"field":"tags['missing']","exists":false}`, true},
		{`{"field":"tags.missing","equals":""}`, true},
		{`{"field":"` + cc + `/distribution","equals":"K3S"}`, true},
		{`{"field":"` + cc + `/totalNodeCount","equals":3}`, true},
		{`{"field":"` + cc + `/totalNodeCount","greaterOrEquals":"[parameters('min')]"}`, true},
		{`{"field":"` + cc + `/enabled","equals":"true"}`, true},
		{`{"field":"` + cc + `/enabled","equals":"false"}`, false},
		{`{"field":"` + cc + `/agentVersion","exists":"false"}`, true},
		// An alias of another type selects nothing here.
		{`{"field":"Microsoft.ContainerService/managedClusters/kubernetesVersion","exists":true}`, false},
		// [*]: every member must pass; an empty collection passes.
		{`{"field":"` + cc + `/nodePools[*].count","greater":2}`, true},
		{`{"field":"` + cc + `/nodePools[*].count","greater":4}`, false},
		{`{"not":{"field":"` + cc + `/nodePools[*].name","notEquals":"user"}}`, true},
		{`{"field":"` + cc + `/nodePools[*].labels[*]","in":["a","b","c"]}`, true},
		{`{"field":"` + cc + `/missingArray[*].x","equals":"anything"}`, true},
		// field as an expression.
		{`{"field":"[concat('tags[', parameters('tagName'), ']')]","equals":"prod"}`, true},
		// value conditions.
		{`{"value":"[resourceGroup().location]","equals":"westeurope"}`, true},
		{`{"value":"[less(length(field('tags')), 3)]","equals":"true"}`, false},
		{`{"value":"[field('` + cc + `/nodePools[*].name')]","equals":["system","user"]}`, true},
		{`{"value":"[parameters('min')]","in":[1,2,3]}`, true},
		{`{"value":"[if(greaterOrEquals(length(field('name')), 3), substring(field('name'), 0, 3), 'x')]","equals":"EDG"}`, true},
		{`{"value":false,"equals":"false"}`, true},
		// count.
		{`{"count":{"field":"` + cc + `/nodePools[*]"},"equals":2}`, true},
		{`{"count":{"field":"` + cc + `/nodePools[*]","where":{"field":"` + cc + `/nodePools[*].count","greater":4}},"equals":1}`, true},
		{`{"count":{"field":"` + cc + `/nodePools[*].labels[*]"},"equals":3}`, true},
		{`{"count":{"field":"` + cc + `/nodePools[*]","where":{"allOf":[{"field":"` + cc + `/nodePools[*].name","equals":"system"},{"field":"tags.env","equals":"prod"}]}},"equals":1}`, true},
		{`{"count":{"field":"` + cc + `/nodePools[*]","where":{"value":"[first(field('` + cc + `/nodePools[*].name'))]","equals":"user"}},"equals":1}`, true},
		{`{"count":{"field":"` + cc + `/nodePools[*]","where":{"value":"[current('` + cc + `/nodePools[*]').count]","equals":3}},"equals":1}`, true},
		{`{"count":{"field":"` + cc + `/nodePools[*]","where":{"count":{"field":"` + cc + `/nodePools[*].labels[*]","where":{"field":"` + cc + `/nodePools[*].labels[*]","equals":"b"}},"greater":0}},"equals":1}`, true},
		{`{"count":{"field":"` + cc + `/missingArray[*]"},"equals":0}`, true},
		{`{"count":{"value":["edge-*","core-*"],"name":"pattern","where":{"field":"name","like":"[current('pattern')]"}},"greater":0}`, true},
		{`{"count":{"value":["core-*"],"where":{"field":"name","like":"[current()]"}},"greater":0}`, false},
		{`{"count":{"value":"[parameters('list')]","name":"n","where":{"value":"[current('n')]","greater":1}},"equals":2}`, true},
		{`{"count":{"value":"[parameters('list')]"},"equals":"[length(parameters('list'))]"}`, true},
	}
	params := `{"min":{"type":"Integer","defaultValue":2},"tagName":{"type":"String","defaultValue":"env"},"list":{"type":"Array","defaultValue":[1,2,3]}}`
	for _, tc := range tests {
		got, _, err := evalIf(t, tc.cond, r, params, nil)
		if err != nil {
			t.Errorf("%s: %v", tc.cond, err)
			continue
		}
		if got != tc.want {
			t.Errorf("%s = %v, want %v", tc.cond, got, tc.want)
		}
	}
}

func TestEvaluatedExpressions(t *testing.T) {
	r := connectedCluster("edge-01")
	cond := `{"allOf":[{"field":"type","equals":"Microsoft.Kubernetes/connectedClusters"},{"field":"Microsoft.Kubernetes/connectedClusters/distribution","notIn":["aks","eks"]},{"value":"[field('name')]","like":"edge-*"}]}`
	got, exprs, err := evalIf(t, cond, r, "", nil)
	if err != nil || !got {
		t.Fatalf("%v %v", got, err)
	}
	want := []ExpressionResult{
		{Result: "True", Expression: "type", ExpressionKind: "Field", Path: "type", ExpressionValue: "Microsoft.Kubernetes/connectedClusters", TargetValue: "Microsoft.Kubernetes/connectedClusters", Operator: "Equals"},
		{Result: "True", Expression: "Microsoft.Kubernetes/connectedClusters/distribution", ExpressionKind: "Field", Path: "properties.distribution", ExpressionValue: "k3s", TargetValue: []any{"aks", "eks"}, Operator: "NotIn"},
		{Result: "True", Expression: "[field('name')]", ExpressionKind: "Value", ExpressionValue: "edge-01", TargetValue: "edge-*", Operator: "Like"},
	}
	gj, _ := json.Marshal(exprs)
	wj, _ := json.Marshal(want)
	if string(gj) != string(wj) {
		t.Errorf("evaluated expressions\n got %s\nwant %s", gj, wj)
	}
	// A missing field reports a null value; literals and counts read as JSON.
	_, exprs, _ = evalIf(t, `{"anyOf":[{"field":"tags.nope","exists":true},{"value":[1,"a"],"equals":"x"},{"count":{"value":[1,2]},"equals":2}]}`, r, "", nil)
	if len(exprs) != 3 || exprs[0].ExpressionValue != nil || exprs[1].Expression != `[1,"a"]` || exprs[2].Expression != "[1,2]" || exprs[2].ExpressionKind != "Count" || exprs[2].ExpressionValue != int64(2) {
		t.Errorf("details: %+v", exprs)
	}
	// allOf stops at the first false leaf, as Azure's short-circuit does.
	_, exprs, _ = evalIf(t, `{"allOf":[{"field":"name","equals":"nope"},{"field":"type","exists":true}]}`, r, "", nil)
	if len(exprs) != 1 || exprs[0].Result != "False" {
		t.Errorf("short circuit: %+v", exprs)
	}
}

func TestConditionRuntimeErrors(t *testing.T) {
	r := connectedCluster("edge-01")
	for _, cond := range []string{
		`{"field":"name","in":"[parameters('s')]"}`,                                       // 'in' needs an array
		`{"value":"[substring(field('name'), 0, 50)]","equals":"x"}`,                      // template failure
		`{"field":"[concat('nope', '')]","equals":"x"}`,                                   // the field expression names no field
		`{"field":"Microsoft.Kubernetes/connectedClusters/totalNodeCount","less":"many"}`, // type mismatch
		`{"count":{"value":"[parameters('s')]"},"equals":1}`,                              // count over a string
	} {
		_, _, err := evalIf(t, cond, r, `{"s":{"type":"String","defaultValue":"x"}}`, nil)
		if !errors.Is(err, ErrEvaluation) {
			t.Errorf("%s: err = %v, want ErrEvaluation", cond, err)
		}
	}
}

func TestApplicability(t *testing.T) {
	r := connectedCluster("edge-01")
	tests := []struct {
		cond                string
		applicable, matched bool
	}{
		// Only type conditions decide applicability; others count as true.
		{`{"allOf":[{"field":"type","equals":"Microsoft.Kubernetes/connectedClusters"},{"field":"tags.env","equals":"dev"}]}`, true, false},
		{`{"allOf":[{"field":"type","equals":"Microsoft.Storage/storageAccounts"},{"field":"tags.env","equals":"prod"}]}`, false, false},
		// Negated other conditions count as false under the not.
		{`{"allOf":[{"field":"type","equals":"Microsoft.Kubernetes/connectedClusters"},{"not":{"field":"tags.env","equals":"prod"}}]}`, true, false},
		// Only name conditions: applicable to everything.
		{`{"field":"name","equals":"other"}`, true, false},
		// Only kind conditions: applicable to everything.
		{`{"field":"kind","equals":"other"}`, true, false},
		// type and name only: only type counts.
		{`{"allOf":[{"field":"type","equals":"Microsoft.Kubernetes/connectedClusters"},{"field":"name","equals":"other"}]}`, true, false},
		// type, name and others: both type and name count.
		{`{"allOf":[{"field":"type","equals":"Microsoft.Kubernetes/connectedClusters"},{"field":"name","equals":"other"},{"field":"location","equals":"westeurope"}]}`, false, false},
		// No type/name/kind at all: applicable.
		{`{"field":"location","equals":"eastus"}`, true, false},
		{`{"field":"location","equals":"westeurope"}`, true, true},
	}
	for _, tc := range tests {
		def := mustParse(t, `{"properties":{"mode":"All","policyRule":{"if":`+tc.cond+`,"then":{"effect":"Deny"}}}}`)
		res, err := Evaluate(def, nil, Input{Resource: r})
		if err != nil {
			t.Fatal(err)
		}
		if res.Applicable != tc.applicable || res.IfMatched != tc.matched {
			t.Errorf("%s: applicable %v matched %v, want %v %v", tc.cond, res.Applicable, res.IfMatched, tc.applicable, tc.matched)
		}
		want := ComplianceState("")
		if tc.applicable {
			want = Compliant
			if tc.matched {
				want = NonCompliant
			}
		}
		if res.ComplianceState != want || res.Effect != "deny" {
			t.Errorf("%s: state %q effect %q, want %q", tc.cond, res.ComplianceState, res.Effect, want)
		}
	}
	def := mustParse(t, `{"properties":{"mode":"All","policyRule":{"if":{"field":"type","exists":true},"then":{"effect":"manual"}}}}`)
	if res, err := Evaluate(def, nil, Input{Resource: r}); err != nil || res.ComplianceState != Unknown {
		t.Errorf("manual: %+v %v", res, err)
	}
}
