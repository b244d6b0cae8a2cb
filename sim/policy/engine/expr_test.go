package engine

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// testScope is a template-language scope with a few parameters and
// variables, a resource group and a subscription.
func testScope(lang where) *scope {
	params := map[string]any{
		"name": "Edge-01", "n": int64(3), "list": []any{"a", "b", "c"}, "empty": "",
		"obj":  map[string]any{"Key": "v", "nested": map[string]any{"x": int64(1)}},
		"flag": true, "quote": "it's",
	}
	id, _ := parseResourceID("/subscriptions/sub-1/resourceGroups/rg-1/providers/Microsoft.Kubernetes/connectedClusters/c1")
	s := &scope{
		lang: lang,
		params: func(name string) (any, error) {
			if _, v, ok := lookupFold(params, name); ok {
				return v, nil
			}
			return nil, errors.New("no parameter " + name)
		},
		resourceGroup: resourceGroupFunc(id, &ResourceGroup{Location: "westeurope", Tags: map[string]string{"team": "a"}}),
		subscription:  subscriptionFunc(id, &Subscription{TenantID: "t-1", DisplayName: "Dev"}),
	}
	if lang == inTemplate {
		s.variables = func(name string) (any, error) {
			if strings.EqualFold(name, "prefix") {
				return "pre-", nil
			}
			return nil, errors.New("no variable " + name)
		}
	}
	if lang == inPolicy {
		r := connectedCluster("c1")
		s.field = func(name string) (any, error) {
			ref, err := parseField(name, "d")
			if err != nil {
				return nil, err
			}
			return resolveField(ref, r, nil).values(), nil
		}
	}
	return s
}

func TestExpressions(t *testing.T) {
	tests := []struct {
		expr string
		want any
	}{
		// Literals and escapes.
		{"plain text", "plain text"},
		{"[[not an expression]", "[not an expression]"},
		{"[[", "[["},
		{"[[x", "[[x"},
		{"[concat('a'", "[concat('a'"}, // not closed: a literal
		{"[", "["},
		{"[]x", "[]x"},
		{"['it''s']", "it's"},
		{"['']", ""},
		{"[42]", int64(42)},
		{"[-7]", int64(-7)},
		{"[  concat( 'a' ,'b' )  ]", "ab"},
		// Functions, case-insensitive names, nesting.
		{"[concat(parameters('name'), '/Microsoft.KubernetesConfiguration/', 'cfg')]", "Edge-01/Microsoft.KubernetesConfiguration/cfg"},
		{"[CONCAT(Parameters('NAME'), '-', ToLower('X'))]", "Edge-01-x"},
		{"[concat('vm', parameters('n'))]", "vm3"},
		{"[concat(parameters('list'), createArray('d'))]", []any{"a", "b", "c", "d"}},
		{"[toLower(parameters('name'))]", "edge-01"},
		{"[toUpper('abc')]", "ABC"},
		{"[contains(toLower(parameters('name')), toLower('EDGE'))]", true},
		{"[contains('Microsoft.Kubernetes/connectedClusters', 'connectedclusters')]", false}, // case-sensitive
		{"[contains(parameters('list'), 'b')]", true},
		{"[contains(parameters('obj'), 'key')]", true}, // object keys case-insensitive
		{"[equals('a', 'A')]", false},
		{"[equals(parameters('n'), 3)]", true},
		{"[equals(parameters('list'), createArray('a','b','c'))]", true},
		{"[if(equals(1, 1), 'yes', 'no')]", "yes"},
		{"[if(equals(1, 2), substring('ab', 0, 5), 'guarded')]", "guarded"},
		{"[and(true(), not(false()), or(false(), true()))]", true},
		{"[and(true(), false())]", false},
		{"[empty('')]", true},
		{"[empty(parameters('list'))]", false},
		{"[empty(createObject())]", true},
		{"[empty(null())]", true},
		{"[string(parameters('n'))]", "3"},
		{"[string(parameters('flag'))]", "True"},
		{"[string(createObject('a', 1))]", `{"a":1}`},
		{"[bool('TRUE')]", true},
		{"[bool(0)]", false},
		{"[int('42')]", int64(42)},
		{"[length(parameters('list'))]", int64(3)},
		{"[length('héllo')]", int64(5)},
		{"[length(parameters('obj'))]", int64(2)},
		{"[replace('a-b-c', '-', '/')]", "a/b/c"},
		{"[split('a/b//c', '/')]", []any{"a", "b", "", "c"}},
		{"[split('a,b;c', createArray(',', ';'))]", []any{"a", "b", "c"}},
		{"[first(parameters('list'))]", "a"},
		{"[last(parameters('list'))]", "c"},
		{"[first('xyz')]", "x"},
		{"[first(createArray())]", nil},
		{"[trim('  x y  ')]", "x y"},
		{"[format('{0}/{1}-{0} {{literal}}', 'a', 2)]", "a/2-a {literal}"},
		{"[substring('hello', 1, 3)]", "ell"},
		{"[substring('hello', 2)]", "llo"},
		{"[startsWith('Microsoft.Web', 'microsoft')]", true},
		{"[endsWith('abc', 'BC')]", true},
		{"[indexOf('abcabc', 'C')]", int64(2)},
		{"[lastIndexOf('abcabc', 'c')]", int64(5)},
		{"[coalesce(null(), '', 'x')]", ""},
		{"[json('{\"a\":[1,2]}').a[1]]", int64(2)},
		{"[take(parameters('list'), 2)]", []any{"a", "b"}},
		{"[skip('abcdef', 4)]", "ef"},
		{"[less(1, 2)]", true},
		{"[greaterOrEquals('b', 'a')]", true},
		{"[tryGet(parameters('obj'), 'nested', 'x')]", int64(1)},
		{"[tryGet(parameters('obj'), 'missing')]", nil},
		{"[base64ToString(base64('known hosts'))]", "known hosts"},
		// Property and index access.
		{"[parameters('obj').key]", "v"},
		{"[parameters('obj')['nested'].x]", int64(1)},
		{"[parameters('list')[1]]", "b"},
		{"[parameters('quote')]", "it's"},
		{"[resourceGroup().name]", "rg-1"},
		{"[resourceGroup().location]", "westeurope"},
		{"[resourceGroup().id]", "/subscriptions/sub-1/resourceGroups/rg-1"},
		{"[resourceGroup().tags.team]", "a"},
		{"[resourcegroup().properties.provisioningState]", "Succeeded"},
		{"[subscription().subscriptionId]", "sub-1"},
		{"[subscription().id]", "/subscriptions/sub-1"},
		{"[subscription().tenantId]", "t-1"},
	}
	for _, tc := range tests {
		got, err := evalString(tc.expr, testScope(inBoth))
		if err != nil {
			t.Errorf("%s: %v", tc.expr, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s = %#v, want %#v", tc.expr, got, tc.want)
		}
	}
}

func TestLanguageSpecificFunctions(t *testing.T) {
	tests := []struct {
		expr string
		lang where
		want any
		err  string
	}{
		{"[field('name')]", inPolicy, "c1", ""},
		{"[field('Microsoft.Kubernetes/connectedClusters/distribution')]", inPolicy, "k3s", ""},
		{"[field('tags.env')]", inPolicy, "prod", ""},
		{"[field('Microsoft.Kubernetes/connectedClusters/agentVersion')]", inPolicy, "", ""}, // missing reads as ""
		{"[field('name')]", inTemplate, nil, "not available in a deployment template"},
		{"[resourceId('Microsoft.Kubernetes/connectedClusters', 'c2')]", inTemplate,
			"/subscriptions/sub-1/resourceGroups/rg-1/providers/Microsoft.Kubernetes/connectedClusters/c2", ""},
		{"[resourceId('other-rg', 'Microsoft.Network/virtualNetworks/subnets', 'vnet', 'default')]", inTemplate,
			"/subscriptions/sub-1/resourceGroups/other-rg/providers/Microsoft.Network/virtualNetworks/vnet/subnets/default", ""},
		{"[resourceId('sub-2', 'rg-2', 'Microsoft.Web/sites', 'app')]", inTemplate,
			"/subscriptions/sub-2/resourceGroups/rg-2/providers/Microsoft.Web/sites/app", ""},
		{"[subscriptionResourceId('Microsoft.Resources/resourceGroups', 'rg-9')]", inTemplate,
			"/subscriptions/sub-1/providers/Microsoft.Resources/resourceGroups/rg-9", ""},
		{"[extensionResourceId('/subscriptions/s/resourceGroups/r/providers/Microsoft.Kubernetes/connectedClusters/c', 'Microsoft.KubernetesConfiguration/sourceControlConfigurations', 'cfg')]", inTemplate,
			"/subscriptions/s/resourceGroups/r/providers/Microsoft.Kubernetes/connectedClusters/c/providers/Microsoft.KubernetesConfiguration/sourceControlConfigurations/cfg", ""},
		{"[resourceId('Microsoft.Web/sites', 'a')]", inPolicy, nil, "not available in a policy rule"},
		{"[resourceId('Microsoft.Web/sites/slots', 'a')]", inTemplate, nil, "needs 2 name segment(s)"},
		{"[variables('prefix')]", inTemplate, "pre-", ""},
		{"[variables('prefix')]", inPolicy, nil, "not available in a policy rule"},
		{"[current()]", inPolicy, nil, "only available inside a count"},
		{"[utcNow()]", inPolicy, nil, "needs a clock"},
		{"[reference('x')]", inTemplate, nil, "engine is pure"},
		{"[frobnicate()]", inTemplate, nil, "the template function 'frobnicate' is not valid"},
	}
	for _, tc := range tests {
		got, err := evalString(tc.expr, testScope(tc.lang))
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s (%s): err %v, want %q", tc.expr, tc.lang, err, tc.err)
		case tc.err == "" && err != nil:
			t.Errorf("%s (%s): %v", tc.expr, tc.lang, err)
		case tc.err == "" && !reflect.DeepEqual(got, tc.want):
			t.Errorf("%s (%s) = %#v, want %#v", tc.expr, tc.lang, got, tc.want)
		}
	}
}

func TestExpressionErrors(t *testing.T) {
	tests := []struct {
		expr   string
		syntax bool
		want   string
	}{
		{"[concat('a']", true, "expected token 'RightParenthesis' and actual 'EndOfData' at position '11'"},
		{"[concat('a',)]", true, "at position '12'"},
		{"['unterminated]", true, "the string literal starting at position '1' is not terminated"},
		{"[concat('a') 'b']", true, "expected token 'EndOfData' and actual 'Literal' at position '13'"},
		{"[1.5]", true, "ARM expressions have integer literals only"},
		{"[foo]", true, "expected token 'LeftParenthesis' and actual 'EndOfData' at position '4'"},
		{"[a(#)]", true, "the character '#' at position '3' is not expected"},
		{"[parameters('obj').]", true, "expected token 'Identifier' and actual 'EndOfData'"},
		{"[" + strings.Repeat("concat(", 70) + strings.Repeat(")", 70) + "]", true, "nested deeper than 64"},
		{"[99999999999999999999]", true, "out of range"},
		{"[toLower(1)]", false, "expects its parameter to be of type 'String'. The provided value is of type 'Integer'"},
		{"[parameters('obj').missing]", false, "the language expression property 'missing' doesn't exist, available properties are 'Key, nested'"},
		{"[parameters('list')[5]]", false, "index '5' is out of bounds"},
		{"[parameters('name').x]", false, "expected 'Object'"},
		{"[substring('ab', 1, 5)]", false, "must refer to a location within the string"},
		{"[if('yes', 1, 2)]", false, "of type 'Boolean'"},
		{"[concat()]", false, "must have at least 1 parameter(s), got 0"},
		{"[toLower('a', 'b')]", false, "must have 1 parameter(s), got 2"},
		{"[format('{0:N2}', 1)]", false, "only {n} is"},
		{"[format('{3}', 1)]", false, "has no argument"},
		{"[int('x')]", false, "cannot be converted to an Integer"},
		{"[json('{')]", false, "not valid JSON"},
		{"[createObject('a')]", false, "even number"},
		{"[less(1, 'a')]", false, "of type 'Integer'"},
	}
	for _, tc := range tests {
		_, err := evalString(tc.expr, testScope(inBoth))
		if err == nil {
			t.Errorf("%s: no error", tc.expr)
			continue
		}
		if errors.Is(err, ErrSyntax) != tc.syntax {
			t.Errorf("%s: ErrSyntax = %v, want %v (%v)", tc.expr, errors.Is(err, ErrSyntax), tc.syntax, err)
		}
		if !tc.syntax && !errors.Is(err, ErrEvaluation) {
			t.Errorf("%s: not ErrEvaluation: %v", tc.expr, err)
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s:\n got %v\nwant …%s…", tc.expr, err, tc.want)
		}
	}
}

func TestFormatRoundTrip(t *testing.T) {
	for _, src := range []string{
		"[concat(parameters('clusterName'), '/Microsoft.KubernetesConfiguration/', parameters('configurationResourceName'))]",
		"[contains(toLower(parameters('clusterResourceType')), toLower('connectedclusters'))]",
		"[parameters('o')['it''s'].x[0]]",
		"[if(equals(-1, 2), 'a', createArray())]",
	} {
		t1, err := parseTemplate(src)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		again := "[" + format(t1.root) + "]"
		t2, err := parseTemplate(again)
		if err != nil {
			t.Fatalf("%s: %v", again, err)
		}
		if !reflect.DeepEqual(stripPos(t1.root), stripPos(t2.root)) {
			t.Errorf("round trip of %s changed it: %s", src, again)
		}
	}
}

// stripPos zeroes positions so trees compare by structure.
func stripPos(n node) node {
	switch x := n.(type) {
	case *strLit:
		return &strLit{s: x.s}
	case *intLit:
		return &intLit{n: x.n}
	case *callNode:
		c := &callNode{name: strings.ToLower(x.name)}
		for _, a := range x.args {
			c.args = append(c.args, stripPos(a))
		}
		return c
	case *memberNode:
		return &memberNode{x: stripPos(x.x), name: x.name}
	case *indexNode:
		return &indexNode{x: stripPos(x.x), index: stripPos(x.index)}
	}
	return nil
}

func TestEvalDeepLeavesInputAlone(t *testing.T) {
	in := map[string]any{"a": "[toUpper('x')]", "b": []any{"[[lit]", int64(1)}, "c": map[string]any{"d": "[concat('p', 'q')]"}}
	got, err := evalDeep(in, testScope(inBoth))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"a": "X", "b": []any{"[lit]", int64(1)}, "c": map[string]any{"d": "pq"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("evalDeep = %#v", got)
	}
	if in["a"] != "[toUpper('x')]" || in["c"].(map[string]any)["d"] != "[concat('p', 'q')]" {
		t.Error("evalDeep modified its input")
	}
}
