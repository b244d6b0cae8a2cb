package engine

import (
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode"
)

// Property tests: random conditions over random resources, checked against
// laws the condition language must obey. Each run picks a seed and prints
// it on failure; -engine.seed=N replays it.
var seedFlag = flag.Uint64("engine.seed", 0, "seed for the engine's property tests (0: random)")

const propertyRounds = 400

func seed(t *testing.T) uint64 {
	if *seedFlag != 0 {
		return *seedFlag
	}
	return rand.Uint64()
}

type gen struct{ r *rand.Rand }

var words = []string{"alpha", "Beta", "GAMMA", "prod", "Dev", "", "true", "False", "10", "2", "eastus", "West Europe", "x-1", "ab-12", "Ünïcode"}

const testType = "Microsoft.Test/things"

func (g gen) pick(xs []string) string { return xs[g.r.IntN(len(xs))] }

func (g gen) scalar() any {
	switch g.r.IntN(4) {
	case 0:
		return g.r.IntN(2) == 0
	case 1:
		return int64(g.r.IntN(12))
	default:
		return g.pick(words)
	}
}

func (g gen) resource() Resource {
	props := map[string]any{}
	for _, k := range []string{"flag", "count", "label", "nested"} {
		if g.r.IntN(4) == 0 {
			continue // missing
		}
		switch k {
		case "flag":
			props[k] = g.r.IntN(2) == 0
		case "count":
			props[k] = int64(g.r.IntN(12))
		case "label":
			props[k] = g.pick(words)
		case "nested":
			props[k] = map[string]any{"value": g.scalar()}
		}
	}
	items := []any{}
	for i := g.r.IntN(4); i > 0; i-- {
		items = append(items, map[string]any{"label": g.pick(words), "n": int64(g.r.IntN(5))})
	}
	props["items"] = items
	tags := map[string]any{}
	for _, k := range []string{"Env", "team", "cost.center"} {
		if g.r.IntN(2) == 0 {
			tags[k] = g.pick(words)
		}
	}
	name := g.pick([]string{"alpha", "Beta-1", "prod-app", "x"})
	return Resource{
		"id":         "/subscriptions/s/resourceGroups/rg/providers/" + testType + "/" + name,
		"name":       name,
		"type":       g.pick([]string{testType, strings.ToUpper(testType), "Microsoft.Other/kinds"}),
		"location":   g.pick([]string{"eastus", "West Europe", "westeurope"}),
		"kind":       g.pick([]string{"a", "B"}),
		"tags":       tags,
		"properties": props,
	}
}

var fields = []string{"name", "type", "location", "kind", "tags", "tags['Env']", "tags.team", "tags[cost.center]",
	testType + "/flag", testType + "/count", testType + "/label", testType + "/nested.value", testType + "/missing",
	testType + "/items[*].label", testType + "/items[*].n"}

var opNames = []string{"equals", "notEquals", "like", "notLike", "match", "notMatch", "matchInsensitively",
	"notMatchInsensitively", "contains", "notContains", "in", "notIn", "containsKey", "notContainsKey",
	"less", "lessOrEquals", "greater", "greaterOrEquals", "exists"}

// target makes a right-hand side the operator accepts.
func (g gen) target(op string) any {
	switch strings.ToLower(strings.TrimPrefix(strings.TrimPrefix(op, "not"), "Not")) {
	case "like", "likes":
		return g.pick([]string{"*", "a*", "*a", "pro*app", "x-1", "*E*"})
	case "match", "matchinsensitively":
		return g.pick([]string{"??-##", "x-#", ".....", "ab-12", "?"})
	case "in":
		list := []any{}
		for i := g.r.IntN(4); i > 0; i-- {
			list = append(list, g.scalar())
		}
		return list
	case "containskey":
		return g.pick([]string{"env", "TEAM", "Cost.Center", "other"})
	case "exists":
		return g.r.IntN(2) == 0
	case "less", "lessorequals", "greater", "greaterorequals":
		if g.r.IntN(2) == 0 {
			return int64(g.r.IntN(12))
		}
		return g.pick(words)
	}
	return g.scalar()
}

func (g gen) leaf(noMatch bool) map[string]any {
	op := g.pick(opNames)
	for noMatch && (op == "match" || op == "notMatch") {
		op = g.pick(opNames)
	}
	c := map[string]any{op: g.target(op)}
	if g.r.IntN(6) == 0 {
		c["value"] = g.scalar()
	} else {
		c["field"] = g.pick(fields)
	}
	return c
}

func (g gen) cond(depth int, noMatch bool) map[string]any {
	if depth == 0 || g.r.IntN(3) == 0 {
		return g.leaf(noMatch)
	}
	switch g.r.IntN(3) {
	case 0:
		return map[string]any{"not": g.cond(depth-1, noMatch)}
	default:
		key := "allOf"
		if g.r.IntN(2) == 0 {
			key = "anyOf"
		}
		var cs []any
		for i := 1 + g.r.IntN(3); i > 0; i-- {
			cs = append(cs, g.cond(depth-1, noMatch))
		}
		return map[string]any{key: cs}
	}
}

// outcome is a condition's value, or that it failed.
type outcome struct {
	v      bool
	failed bool
}

func (o outcome) String() string {
	if o.failed {
		return "error"
	}
	return fmt.Sprint(o.v)
}

func evalCond(t *testing.T, cond any, r Resource) outcome {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"properties": map[string]any{"mode": "All",
		"policyRule": map[string]any{"if": cond, "then": map[string]any{"effect": "audit"}}}})
	def, err := ParseDefinition("p", b)
	if err != nil {
		t.Fatalf("generated an invalid rule: %v\n%s", err, b)
	}
	res, err := Evaluate(def, nil, Input{Resource: r})
	if err != nil {
		return outcome{failed: true}
	}
	return outcome{v: res.IfMatched}
}

func show(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestPropertyLogicalLaws(t *testing.T) {
	s := seed(t)
	g := gen{rand.New(rand.NewPCG(s, 1))}
	for i := 0; i < propertyRounds; i++ {
		r := g.resource()
		c := g.cond(3, false)
		base := evalCond(t, c, r)
		if got := evalCond(t, c, r); got != base {
			t.Fatalf("seed %d: evaluation is not deterministic for %s", s, show(c))
		}
		if got := evalCond(t, map[string]any{"not": map[string]any{"not": c}}, r); got != base {
			t.Fatalf("seed %d: not(not(c)) = %v, c = %v\nc = %s\nresource = %s", s, got, base, show(c), show(r))
		}
		if !base.failed {
			if got := evalCond(t, map[string]any{"not": c}, r); got.failed || got.v == base.v {
				t.Fatalf("seed %d: not(c) = %v, c = %v\nc = %s", s, got, base, show(c))
			}
		}
		var cs, negs []any
		for j := 1 + g.r.IntN(3); j > 0; j-- {
			x := g.cond(2, false)
			cs = append(cs, x)
			negs = append(negs, map[string]any{"not": x})
		}
		anyOf := evalCond(t, map[string]any{"anyOf": cs}, r)
		if dual := evalCond(t, map[string]any{"not": map[string]any{"allOf": negs}}, r); dual != anyOf {
			t.Fatalf("seed %d: anyOf(cs) = %v but not(allOf(not cs)) = %v\ncs = %s\nresource = %s", s, anyOf, dual, show(cs), show(r))
		}
		allOf := evalCond(t, map[string]any{"allOf": cs}, r)
		if dual := evalCond(t, map[string]any{"not": map[string]any{"anyOf": negs}}, r); dual != allOf {
			t.Fatalf("seed %d: allOf(cs) = %v but not(anyOf(not cs)) = %v\ncs = %s", s, allOf, dual, show(cs))
		}
	}
}

func TestPropertyOperatorLaws(t *testing.T) {
	s := seed(t)
	g := gen{rand.New(rand.NewPCG(s, 2))}
	negations := map[string]string{"notEquals": "equals", "notLike": "like", "notMatch": "match",
		"notMatchInsensitively": "matchInsensitively", "notContains": "contains", "notIn": "in", "notContainsKey": "containsKey"}
	for i := 0; i < propertyRounds; i++ {
		r := g.resource()
		f := g.pick(fields)
		// in equals anyOf equals.
		list := g.target("in").([]any)
		in := evalCond(t, map[string]any{"field": f, "in": list}, r)
		eqs := []any{}
		for _, e := range list {
			eqs = append(eqs, map[string]any{"field": f, "equals": e})
		}
		// With a [*] field, "in" tests each member against the whole list
		// while anyOf(equals) needs one value for all members, so the law
		// holds for single-valued fields only.
		if any := evalCond(t, map[string]any{"anyOf": eqs}, r); in != any && !strings.Contains(f, "[*]") {
			t.Fatalf("seed %d: %s in %s = %v, anyOf(equals) = %v\nresource = %s", s, f, show(list), in, any, show(r))
		}
		// Every not-operator is the negation of its twin.
		for neg, pos := range negations {
			tgt := g.target(pos)
			a := evalCond(t, map[string]any{"field": f, pos: tgt}, r)
			b := evalCond(t, map[string]any{"field": f, neg: tgt}, r)
			multi := strings.Contains(f, "[*]")
			if a.failed != b.failed || (!a.failed && !multi && a.v == b.v) {
				t.Fatalf("seed %d: %s %s %s = %v, %s = %v\nresource = %s", s, f, pos, show(tgt), a, neg, b, show(r))
			}
		}
	}
}

// flipCase swaps the case of every string value (not object keys).
func flipCase(v any) any {
	switch x := v.(type) {
	case string:
		return strings.Map(func(r rune) rune {
			if unicode.IsUpper(r) {
				return unicode.ToLower(r)
			}
			return unicode.ToUpper(r)
		}, x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = flipCase(e)
		}
		return out
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			out[k] = flipCase(e)
		}
		return out
	case Resource:
		return Resource(flipCase(map[string]any(x)).(map[string]any))
	}
	return v
}

func TestPropertyCaseInsensitivity(t *testing.T) {
	s := seed(t)
	g := gen{rand.New(rand.NewPCG(s, 3))}
	for i := 0; i < propertyRounds; i++ {
		r := g.resource()
		c := g.cond(3, true) // match and notMatch are case-sensitive by design
		a := evalCond(t, c, r)
		if b := evalCond(t, flipCase(c), flipCase(r).(Resource)); a != b {
			t.Fatalf("seed %d: flipping case changed %v to %v\nc = %s\nresource = %s", s, a, b, show(c), show(r))
		}
	}
	// match is case-sensitive, so the law must not hold for it.
	r := connectedCluster("edge-01")
	if a, b := evalCond(t, map[string]any{"field": "name", "match": "edge-##"}, r), evalCond(t, map[string]any{"field": "name", "match": "EDGE-##"}, r); a == b {
		t.Error("match ignored case")
	}
}

func TestPropertyStringLiterals(t *testing.T) {
	s := seed(t)
	g := gen{rand.New(rand.NewPCG(s, 4))}
	alphabet := []rune("ab'[] ()',.\\\"é")
	for i := 0; i < propertyRounds; i++ {
		var b strings.Builder
		for j := g.r.IntN(12); j > 0; j-- {
			b.WriteRune(alphabet[g.r.IntN(len(alphabet))])
		}
		lit := b.String()
		expr := "['" + strings.ReplaceAll(lit, "'", "''") + "']"
		got, err := evalString(expr, testScope(inBoth))
		if err != nil || got != lit {
			t.Fatalf("seed %d: %s = %#v, %v; want %#v", s, expr, got, err, lit)
		}
		// "[[" escapes exactly one bracket of a would-be expression.
		esc := "[[" + lit + "]"
		if got, err := evalString(esc, testScope(inBoth)); err != nil || got != "["+lit+"]" {
			t.Fatalf("seed %d: %q = %#v, %v", s, esc, got, err)
		}
	}
}
