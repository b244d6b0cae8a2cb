package engine

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// dineWith builds a DINE definition around a template and its parameter
// mapping.
func dineWith(t *testing.T, template, parameters string, extraDetails string) *Definition {
	t.Helper()
	if extraDetails != "" {
		extraDetails = "," + extraDetails
	}
	return mustParse(t, `{"properties":{"mode":"Indexed","parameters":{"prefix":{"type":"String","defaultValue":"p"}},
"policyRule":{"if":{"field":"type","equals":"Microsoft.Kubernetes/connectedClusters"},
"then":{"effect":"deployIfNotExists","details":{"type":"Microsoft.KubernetesConfiguration/extensions","name":"flux",`+okRoles+extraDetails+`,
"deployment":{"properties":{"mode":"incremental","template":`+template+`,"parameters":`+parameters+`}}}}}}}`)
}

func TestTemplateRendering(t *testing.T) {
	cc := connectedCluster("edge-01")
	template := `{
  "parameters": {
    "clusterName": {"type": "string"},
    "prefix": {"type": "string"},
    "train": {"type": "string", "defaultValue": "[concat('st', 'able')]", "allowedValues": ["Stable", "preview"]},
    "count": {"type": "int", "defaultValue": 2},
    "flag": {"type": "bool", "defaultValue": true},
    "settings": {"type": "object", "defaultValue": {"a": "[parameters('prefix')]"}}
  },
  "variables": {
    "extName": "[concat(parameters('prefix'), '-flux')]",
    "full": "[concat(variables('extName'), '/', parameters('train'))]"
  },
  "resources": [
    {
      "type": "Microsoft.KubernetesConfiguration/extensions",
      "apiVersion": "2022-03-01",
      "name": "[variables('extName')]",
      "scope": "[concat('Microsoft.Kubernetes/connectedClusters/', parameters('clusterName'))]",
      "identity": {"type": "SystemAssigned"},
      "dependsOn": ["x"],
      "comments": "not part of the body",
      "properties": {
        "extensionType": "microsoft.flux",
        "releaseTrain": "[parameters('train')]",
        "configurationSettings": "[parameters('settings')]",
        "count": "[parameters('count')]",
        "note": "[[not evaluated]",
        "full": "[variables('full')]",
        "rg": "[resourceGroup().name]",
        "sub": "[subscription().subscriptionId]",
        "self": "[resourceId('Microsoft.Kubernetes/connectedClusters', parameters('clusterName'))]"
      }
    },
    {
      "condition": "[not(parameters('flag'))]",
      "type": "Microsoft.Web/sites",
      "apiVersion": "2022-01-01",
      "name": "never"
    },
    {
      "type": "Microsoft.Network/virtualNetworks",
      "apiVersion": "2023-01-01",
      "name": "vnet",
      "location": "[resourceGroup().location]",
      "resources": [
        {"type": "subnets", "apiVersion": "2023-01-01", "name": "default", "properties": {"addressPrefix": "10.0.0.0/24"}}
      ]
    },
    {
      "type": "Microsoft.Network/virtualNetworks/subnets",
      "apiVersion": "2023-01-01",
      "name": "[concat('vnet/', 'second')]"
    }
  ]
}`
	def := dineWith(t, template, `{"clusterName":{"value":"[field('name')]"},"prefix":{"value":"[parameters('prefix')]"}}`, "")
	params := mustResolve(t, def, nil)
	dep, err := New(Options{}).Deployment(def, params, Input{Resource: cc, ResourceGroup: &ResourceGroup{Location: "westeurope"}})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range dep.Resources {
		ids = append(ids, r.ID)
	}
	rg := "/subscriptions/" + testSub + "/resourceGroups/rg-fleet"
	wantIDs := []string{
		cc.ID() + "/providers/Microsoft.KubernetesConfiguration/extensions/p-flux",
		rg + "/providers/Microsoft.Network/virtualNetworks/vnet",
		rg + "/providers/Microsoft.Network/virtualNetworks/vnet/subnets/default",
		rg + "/providers/Microsoft.Network/virtualNetworks/vnet/subnets/second",
	}
	if !reflect.DeepEqual(ids, wantIDs) {
		t.Fatalf("ids\n got %v\nwant %v", ids, wantIDs)
	}
	ext := dep.Resources[0]
	wantBody := map[string]any{
		"identity": map[string]any{"type": "SystemAssigned"},
		"properties": map[string]any{
			"extensionType": "microsoft.flux", "releaseTrain": "stable",
			"configurationSettings": map[string]any{"a": "p"}, "count": int64(2),
			"note": "[not evaluated]", "full": "p-flux/stable", "rg": "rg-fleet", "sub": testSub,
			"self": cc.ID(),
		},
	}
	if !reflect.DeepEqual(ext.Body, wantBody) {
		t.Errorf("body\n got %#v\nwant %#v", ext.Body, wantBody)
	}
	if ext.Type != "Microsoft.KubernetesConfiguration/extensions" || ext.APIVersion != "2022-03-01" {
		t.Errorf("ext %s %s", ext.Type, ext.APIVersion)
	}
	if dep.Resources[1].Body["location"] != "westeurope" || dep.Resources[2].Type != "Microsoft.Network/virtualNetworks/subnets" {
		t.Errorf("vnet %v / subnet %s", dep.Resources[1].Body, dep.Resources[2].Type)
	}
	// The definition's template is untouched.
	if def.Rule.Details.Deployment.Template["variables"].(map[string]any)["extName"] != "[concat(parameters('prefix'), '-flux')]" {
		t.Error("rendering modified the definition")
	}
}

func TestTemplateErrors(t *testing.T) {
	cc := connectedCluster("edge-01")
	res := func(body string) string { return `{"resources":[` + body + `]}` }
	tests := []struct {
		name, template, params, details string
		code                            string
		sentinel                        error
		want                            string
	}{
		{"extra parameter", `{"parameters":{"a":{"type":"string"}},"resources":[]}`, `{"a":{"value":"x"},"b":{"value":"y"}}`, "", CodeInvalidTemplate, nil,
			"The template parameters 'b' in the parameters file are not valid; they are not present in the original template and can therefore not be provided at deployment time. The only supported parameters for this template are 'a'"},
		{"missing parameter", `{"parameters":{"a":{"type":"string"}},"resources":[]}`, `{}`, "", CodeInvalidTemplate, nil,
			"The value for the template parameter 'a' is not provided"},
		{"wrong type", `{"parameters":{"a":{"type":"int"}},"resources":[{"type":"A.B/c","apiVersion":"1","name":"[string(parameters('a'))]"}]}`, `{"a":{"value":"x"}}`, "", CodeInvalidTemplate, nil,
			"Expected a value of type 'Integer', but received a value of type 'String'"},
		{"not allowed", `{"parameters":{"a":{"type":"string","allowedValues":["x"]}},"resources":[{"type":"A.B/c","apiVersion":"1","name":"[parameters('a')]"}]}`, `{"a":{"value":"y"}}`, "", CodeInvalidTemplate, nil,
			"is not part of the allowed value(s)"},
		{"segment lengths", res(`{"type":"Microsoft.Network/virtualNetworks/subnets","apiVersion":"1","name":"only-one"}`), `{}`, "", CodeInvalidTemplate, nil,
			"has incorrect segment lengths"},
		{"condition not a boolean", res(`{"condition":"yes","type":"A.B/c","apiVersion":"1","name":"n"}`), `{}`, "", CodeInvalidTemplate, nil, "must evaluate to a Boolean"},
		{"no apiVersion", res(`{"type":"A.B/c","name":"n"}`), `{}`, "", CodeInvalidTemplate, nil, "'apiVersion' must be a non-empty string"},
		{"unknown parameter in an expression", res(`{"type":"A.B/c","apiVersion":"1","name":"[parameters('nope')]"}`), `{}`, "", "", ErrEvaluation, "the template parameter 'nope' is not found"},
		{"unknown variable", res(`{"type":"A.B/c","apiVersion":"1","name":"[variables('nope')]"}`), `{}`, "", "", ErrEvaluation, "the template variable 'nope' is not found"},
		{"self-referencing default", `{"parameters":{"a":{"type":"string","defaultValue":"[parameters('a')]"}},"resources":[{"type":"A.B/c","apiVersion":"1","name":"[parameters('a')]"}]}`, `{}`, "", "", ErrEvaluation, "refers to itself"},
		{"field() is a policy function", res(`{"type":"A.B/c","apiVersion":"1","name":"[field('name')]"}`), `{}`, "", "", ErrEvaluation, "not available in a deployment template"},
		{"copy loop", res(`{"type":"A.B/c","apiVersion":"1","name":"n","copy":{"name":"c","count":2}}`), `{}`, "", "", ErrUnsupported, "copy loops"},
		{"nested deployment", res(`{"type":"Microsoft.Resources/deployments","apiVersion":"1","name":"n"}`), `{}`, "", "", ErrUnsupported, "nested deployments"},
		{"user functions", `{"functions":[{"namespace":"x"}],"resources":[]}`, `{}`, "", "", ErrUnsupported, "user-defined"},
		{"policy expression fails", `{"parameters":{"a":{"type":"string"}},"resources":[]}`, `{"a":{"value":"[substring(field('name'), 0, 99)]"}}`, "", "", ErrEvaluation, "parameter a"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			def := dineWith(t, tc.template, tc.params, tc.details)
			_, err := New(Options{}).Deployment(def, mustResolve(t, def, nil), Input{Resource: cc})
			if err == nil {
				t.Fatal("no error")
			}
			if tc.code != "" {
				wantCode(t, err, tc.code)
			}
			if tc.sentinel != nil && !errors.Is(err, tc.sentinel) {
				t.Errorf("err %v is not %v", err, tc.sentinel)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err\n got %v\nwant …%s…", err, tc.want)
			}
		})
	}
	// A definition that cannot deploy has no deployment.
	aine := mustParse(t, `{"properties":{"policyRule":{"if":{"field":"type","equals":"x"},"then":{"effect":"auditIfNotExists","details":{"type":"A.B/c"}}}}}`)
	if _, err := New(Options{}).Deployment(aine, nil, Input{Resource: cc}); !errors.Is(err, ErrNoDeployment) {
		t.Errorf("AINE deployment: %v", err)
	}
}

func TestDeploymentTargets(t *testing.T) {
	cc := connectedCluster("edge-01")
	template := `{"resources":[{"type":"Microsoft.Resources/resourceGroups","apiVersion":"2021-04-01","name":"rg-new","location":"westeurope"},
{"type":"Microsoft.Authorization/roleAssignments","apiVersion":"2022-04-01","name":"ra-1"}]}`
	def := dineWith(t, template, `{}`, `"deploymentScope":"Subscription","resourceGroupName":"[concat('rg-', 'other')]"`)
	dep, err := New(Options{}).Deployment(def, nil, Input{Resource: cc})
	if err != nil {
		t.Fatal(err)
	}
	if dep.Scope != "Subscription" || dep.ResourceGroup != "rg-other" {
		t.Errorf("scope %s rg %s", dep.Scope, dep.ResourceGroup)
	}
	want := []string{"/subscriptions/" + testSub + "/resourceGroups/rg-new", "/subscriptions/" + testSub + "/providers/Microsoft.Authorization/roleAssignments/ra-1"}
	for i, r := range dep.Resources {
		if r.ID != want[i] {
			t.Errorf("resource %d id %s, want %s", i, r.ID, want[i])
		}
	}
}

func TestRelatedQueries(t *testing.T) {
	cc := connectedCluster("edge-01")
	rg := "/subscriptions/" + testSub + "/resourceGroups/rg-fleet"
	tests := []struct {
		typ, name, rgName, scope string
		want                     RelatedQuery
	}{
		{"Microsoft.KubernetesConfiguration/sourceControlConfigurations", "cfg", "", "",
			RelatedQuery{ID: cc.ID() + "/providers/Microsoft.KubernetesConfiguration/sourceControlConfigurations/cfg", Scope: cc.ID()}},
		{"Microsoft.KubernetesConfiguration/fluxConfigurations", "", "", "", RelatedQuery{Scope: cc.ID()}},
		{"Microsoft.Kubernetes/connectedClusters/things", "t1", "", "", RelatedQuery{ID: cc.ID() + "/things/t1", Scope: cc.ID()}},
		{"Microsoft.Network/networkWatchers", "nw", "", "", RelatedQuery{ID: rg + "/providers/Microsoft.Network/networkWatchers/nw", Scope: rg}},
		{"Microsoft.Network/networkWatchers", "nw", "NetworkWatcherRG", "", RelatedQuery{
			ID: "/subscriptions/" + testSub + "/resourceGroups/NetworkWatcherRG/providers/Microsoft.Network/networkWatchers/nw", Scope: "/subscriptions/" + testSub + "/resourceGroups/NetworkWatcherRG"}},
		{"Microsoft.Network/networkWatchers", "nw", "", "Subscription", RelatedQuery{Scope: "/subscriptions/" + testSub}},
		{"Microsoft.Sql/servers/databases", "srv/?", "", "", RelatedQuery{Scope: rg}},
	}
	for _, tc := range tests {
		q, err := relatedQuery(cc, tc.typ, tc.name, tc.rgName, tc.scope)
		if err != nil {
			t.Errorf("%s %s: %v", tc.typ, tc.name, err)
			continue
		}
		tc.want.Type, tc.want.Name = tc.typ, tc.name
		if q != tc.want {
			t.Errorf("%s %s\n got %+v\nwant %+v", tc.typ, tc.name, q, tc.want)
		}
	}
	if _, err := relatedQuery(cc, "Microsoft.Kubernetes/connectedClusters/things", "a/b", "", ""); err == nil {
		t.Error("a two-segment name for a one-segment child type was accepted")
	}
	if _, err := relatedQuery(Resource{"id": "nope"}, "A.B/c", "x", "", ""); err == nil {
		t.Error("a resource without an ID was accepted")
	}
}

func TestExistenceWithoutName(t *testing.T) {
	// Flux v2 style: no details.name, any related resource may satisfy; the
	// existence condition's field() reads the evaluated resource.
	cc := connectedCluster("edge-01")
	def := mustParse(t, `{"properties":{"mode":"Indexed","policyRule":{"if":{"field":"type","equals":"Microsoft.Kubernetes/connectedClusters"},
"then":{"effect":"auditIfNotExists","details":{"type":"Microsoft.KubernetesConfiguration/fluxConfigurations",
"existenceCondition":{"allOf":[{"field":"Microsoft.KubernetesConfiguration/fluxConfigurations/gitRepository.url","equals":"https://git/x"},
{"field":"Microsoft.KubernetesConfiguration/fluxConfigurations/provisioningState","notEquals":"Failed"},
{"value":"[field('location')]","equals":"westeurope"}]}}}}}}`)
	flux := func(name, url, state string) Resource {
		return Resource{"id": cc.ID() + "/providers/Microsoft.KubernetesConfiguration/fluxConfigurations/" + name, "name": name,
			"type":       "Microsoft.KubernetesConfiguration/fluxConfigurations",
			"properties": map[string]any{"gitRepository": map[string]any{"url": url}, "provisioningState": state}}
	}
	for _, tc := range []struct {
		related []Resource
		want    ComplianceState
		total   int
	}{
		{nil, NonCompliant, 0},
		{[]Resource{flux("a", "https://git/y", "Succeeded")}, NonCompliant, 1},
		{[]Resource{flux("a", "https://git/y", "Succeeded"), flux("b", "https://git/x", "Failed")}, NonCompliant, 2},
		{[]Resource{flux("a", "https://git/y", "Succeeded"), flux("b", "https://GIT/x", "Succeeded")}, Compliant, 2},
	} {
		st := newStore(append(tc.related, config(cc, "scc", nil))...)
		res, err := New(Options{}).Evaluate(def, nil, Input{Resource: cc, Related: st.related})
		if err != nil {
			t.Fatal(err)
		}
		if res.ComplianceState != tc.want || res.IfNotExistsDetails.TotalResources != tc.total || res.Effect != "auditifnotexists" {
			t.Errorf("%d related: %s total %d, want %s %d", len(tc.related), res.ComplianceState, res.IfNotExistsDetails.TotalResources, tc.want, tc.total)
		}
		if st.queries[0].ID != "" || st.queries[0].Scope != cc.ID() {
			t.Errorf("query %+v", st.queries[0])
		}
	}
	// Resources of another type that a store returns are not candidates.
	res, err := New(Options{}).Evaluate(def, nil, Input{Resource: cc, Related: func(RelatedQuery) ([]Resource, error) {
		r := flux("a", "https://git/x", "Succeeded")
		r["type"] = "Microsoft.KubernetesConfiguration/extensions"
		return []Resource{r}, nil
	}})
	if err != nil || res.IfNotExistsDetails.TotalResources != 0 || res.ComplianceState != NonCompliant {
		t.Errorf("wrong type counted: %+v %v", res, err)
	}
	// A store failure is an evaluation error.
	_, err = New(Options{}).Evaluate(def, nil, Input{Resource: cc, Related: func(RelatedQuery) ([]Resource, error) { return nil, errors.New("store down") }})
	if err == nil || !strings.Contains(err.Error(), "store down") {
		t.Errorf("err = %v", err)
	}
}

func TestParseResource(t *testing.T) {
	r, err := ParseResource([]byte(`{"id":"/subscriptions/s/resourceGroups/r/providers/A.B/c/n","name":"n","type":"A.B/c","location":"x","properties":{"n":3}}`))
	if err != nil || r.Name() != "n" || r.Type() != "A.B/c" || r.Location() != "x" || r["properties"].(map[string]any)["n"] != int64(3) {
		t.Errorf("%v %v", r, err)
	}
	for _, bad := range []string{`[]`, `{`, `"x"`} {
		if _, err := ParseResource([]byte(bad)); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	// Resources decoded by encoding/json evaluate like ParseResource's.
	var plain map[string]any
	_ = json.Unmarshal([]byte(`{"id":"/subscriptions/s/resourceGroups/r/providers/A.B/c/n","type":"A.B/c","location":"x","properties":{"n":3}}`), &plain)
	def := mustParse(t, `{"properties":{"mode":"All","policyRule":{"if":{"field":"A.B/c/n","equals":3},"then":{"effect":"audit"}}}}`)
	if res, err := Evaluate(def, nil, Input{Resource: plain}); err != nil || !res.IfMatched {
		t.Errorf("%+v %v", res, err)
	}
}

func TestExistenceAcrossTheSubscription(t *testing.T) {
	// existenceScope Subscription with a name: the store lists the type in
	// the whole subscription and the engine keeps the named one.
	cc := connectedCluster("edge-01")
	def := mustParse(t, `{"properties":{"mode":"Indexed","policyRule":{"if":{"field":"type","equals":"Microsoft.Kubernetes/connectedClusters"},
"then":{"effect":"auditIfNotExists","details":{"type":"Microsoft.Network/networkWatchers","name":"[concat('NetworkWatcher_', field('location'))]","existenceScope":"Subscription"}}}}}`)
	watcher := func(rg, name string) Resource {
		return Resource{"id": "/subscriptions/" + testSub + "/resourceGroups/" + rg + "/providers/Microsoft.Network/networkWatchers/" + name,
			"name": name, "type": "Microsoft.Network/networkWatchers", "location": "westeurope"}
	}
	for _, tc := range []struct {
		stored []Resource
		want   ComplianceState
	}{
		{[]Resource{watcher("NetworkWatcherRG", "NetworkWatcher_eastus")}, NonCompliant},
		{[]Resource{watcher("NetworkWatcherRG", "NetworkWatcher_eastus"), watcher("other-rg", "networkwatcher_WestEurope")}, Compliant},
	} {
		st := newStore(tc.stored...)
		res, err := New(Options{}).Evaluate(def, nil, Input{Resource: cc, Related: st.related})
		if err != nil {
			t.Fatal(err)
		}
		if res.ComplianceState != tc.want || st.queries[0].ID != "" || st.queries[0].Scope != "/subscriptions/"+testSub || st.queries[0].Name != "NetworkWatcher_westeurope" {
			t.Errorf("%d stored: %s, query %+v", len(tc.stored), res.ComplianceState, st.queries[0])
		}
	}
}
