package engine

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

// FuzzExpression checks that the expression parser never panics, that
// every failure is a syntax error, that printing a parsed expression and
// parsing it again gives the same tree, and that evaluation never panics.
func FuzzExpression(f *testing.F) {
	for _, s := range []string{
		"[concat(parameters('clusterName'), '/Microsoft.KubernetesConfiguration/', parameters('configurationResourceName'))]",
		"[contains(toLower(parameters('clusterResourceType')), toLower('connectedclusters'))]",
		"[concat('--git-readonly ',parameters('operatorParams'))]",
		"[parameters('obj')['nested'].x]", "[resourceGroup().location]", "[[escaped]", "['it''s']",
		"[if(equals(1, 2), substring('ab', 0, 5), 'g')]", "[format('{0}-{1}', 'a', 2)]", "[split('a/b', '/')[1]]",
		"[-1]", "[concat(", "['", "[a.b]", "[f()()]", "[json('{\"a\":1}').a]", "plain",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		t1, err := parseTemplate(s)
		if err != nil {
			if !errors.Is(err, ErrSyntax) {
				t.Fatalf("parse error is not ErrSyntax: %v", err)
			}
			return
		}
		if !t1.isExpr() {
			return
		}
		printed := "[" + format(t1.root) + "]"
		t2, err := parseTemplate(printed)
		if err != nil {
			t.Fatalf("%q printed as %q, which does not parse: %v", s, printed, err)
		}
		if !reflect.DeepEqual(stripPos(t1.root), stripPos(t2.root)) {
			t.Fatalf("%q printed as %q, which parses differently", s, printed)
		}
		for _, lang := range []where{inPolicy, inTemplate} {
			_, _ = evalTemplate(t1, testScope(lang))
		}
	})
}

// FuzzParseDefinition checks that ParseDefinition never panics, that its
// errors are *Error with a code and message, and that whatever it accepts
// evaluates and renders without panicking.
func FuzzParseDefinition(f *testing.F) {
	for _, raw := range BuiltIns() {
		f.Add([]byte(raw))
	}
	for _, s := range []string{
		`{"properties":{"mode":"All","policyRule":{"if":{"field":"type","equals":"x"},"then":{"effect":"audit"}}}}`,
		`{"mode":"Indexed","parameters":{"p":{"type":"Array","defaultValue":["a"]}},"policyRule":{"if":{"count":{"value":"[parameters('p')]","where":{"field":"name","like":"[current()]"}},"greater":0},"then":{"effect":"deny"}}}`,
		`{"policyRule":{"if":{"not":{"anyOf":[{"field":"tags['a''b']","exists":true},{"value":"[field('location')]","in":["x"]}]}},"then":{"effect":"modify","details":{"operations":[]}}}}`,
		dineDoc(`{"type":"Microsoft.KubernetesConfiguration/extensions","name":"flux",` + okRoles + `,"deployment":{"properties":{"template":{"resources":[{"type":"Microsoft.KubernetesConfiguration/extensions","apiVersion":"1","name":"flux","scope":"[concat('Microsoft.Kubernetes/connectedClusters/', field('name'))]"}]}}}}`),
		`{"properties":{"policyRule":{"if":{"field":"Microsoft.KubernetesConfiguration/sourceControlConfigurations/nope","equals":1},"then":{"effect":"audit"}}}}`,
		`[]`, `{`, `null`,
	} {
		f.Add([]byte(s))
	}
	resources := []Resource{connectedCluster("edge-01"), managedCluster("aks-01")}
	f.Fuzz(func(t *testing.T, raw []byte) {
		def, err := ParseDefinition("fuzz", json.RawMessage(raw))
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Code == "" || e.Message == "" {
				t.Fatalf("error without code or message: %#v", err)
			}
			return
		}
		params, err := def.ResolveParameters("a", nil)
		if err != nil {
			params = map[string]any{}
		}
		for _, r := range resources {
			related := func(q RelatedQuery) ([]Resource, error) {
				return []Resource{config(r, "cluster-config", nil)}, nil
			}
			_, _ = Evaluate(def, params, Input{Resource: r, Related: related})
			if def.CanDeploy() {
				_, _ = New(Options{}).Deployment(def, params, Input{Resource: r,
					ResolveSecret: func(KeyVaultReference) (string, error) { return "s", nil }})
			}
		}
	})
}
