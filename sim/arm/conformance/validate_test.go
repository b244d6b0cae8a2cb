package conformance

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// testSchema exercises every keyword the validator knows.
func testSchema() *Schema {
	return object(map[string]*Schema{
		"id":       str().ro(),
		"when":     dateTime(),
		"count":    integer(FormatInt32),
		"big":      integer(FormatInt64),
		"ratio":    &Schema{Kind: Number},
		"flag":     boolean(),
		"blob":     strFormat(FormatByte),
		"link":     strFormat(FormatURI),
		"target":   strFormat(FormatARMID),
		"closed":   enum(false, "A", "B"),
		"open":     enum(true, "A", "B"),
		"maybe":    object(map[string]*Schema{"x": str()}).nullable(),
		"tags":     mapOf(str()),
		"info":     freeForm(),
		"list":     arrayOf(integer("")),
		"anything": {},
		"nested": object(map[string]*Schema{
			"name": str(),
		}, "name"),
	}, "id").ref("test.json#/definitions/Thing")
}

const goodDoc = `{
  "id": "/x",
  "when": "2024-05-01T10:20:30.1234567+02:00",
  "count": 2147483647,
  "big": -9223372036854775808,
  "ratio": 0.5,
  "flag": false,
  "blob": "aGVsbG8=",
  "link": "https://h/x?y=1",
  "target": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.HybridCompute/gateways/g",
  "closed": "A",
  "open": "B",
  "maybe": null,
  "tags": {"a": "b"},
  "info": {"free": [1, {"form": true}]},
  "list": [1, 2, 3],
  "anything": [null, "x"],
  "nested": {"name": "n"}
}`

func TestValidateAcceptsAConformingDocument(t *testing.T) {
	r := Validate([]byte(goodDoc), testSchema())
	if len(r.Violations) > 0 || len(r.Notes) > 0 {
		t.Fatalf("violations %v, notes %v", r.Violations, r.Notes)
	}
}

// with returns goodDoc with member k replaced by the raw JSON v, or
// removed when v is "".
func with(t *testing.T, k, v string) string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(goodDoc), &m); err != nil {
		t.Fatal(err)
	}
	if v == "" {
		delete(m, k)
	} else {
		m[k] = json.RawMessage(v)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestEachRuleFails proves that every rule rejects a crafted bad document:
// a validator that accepted everything would fail here.
func TestEachRuleFails(t *testing.T) {
	for _, c := range []struct {
		name, member, value string
		pointer             string
		rule                Rule
	}{
		{"unknown member", "extra", `"x"`, "/extra", RuleUnknown},
		{"unknown nested member", "nested", `{"name": "n", "extra": 1}`, "/nested/extra", RuleUnknown},
		{"missing required", "id", "", "/id", RuleRequired},
		{"missing nested required", "nested", `{}`, "/nested/name", RuleRequired},
		{"string for integer", "count", `"2"`, "/count", RuleType},
		{"fraction for integer", "count", `2.5`, "/count", RuleType},
		{"exponent for integer", "count", `2e3`, "/count", RuleType},
		{"number for string", "id", `7`, "/id", RuleType},
		{"string for boolean", "flag", `"false"`, "/flag", RuleType},
		{"string for number", "ratio", `"0.5"`, "/ratio", RuleType},
		{"array for object", "nested", `[]`, "/nested", RuleType},
		{"object for array", "list", `{}`, "/list", RuleType},
		{"wrong item type", "list", `[1, "2"]`, "/list/1", RuleType},
		{"wrong map value type", "tags", `{"a": 1}`, "/tags/a", RuleType},
		{"date-time without zone", "when", `"0001-01-01T00:00:00"`, "/when", RuleFormat},
		{"date-time not a date", "when", `"yesterday"`, "/when", RuleFormat},
		{"date-time out of range", "when", `"2024-13-01T00:00:00Z"`, "/when", RuleFormat},
		{"int32 overflow", "count", `2147483648`, "/count", RuleFormat},
		{"int32 underflow", "count", `-2147483649`, "/count", RuleFormat},
		{"int64 overflow", "big", `9223372036854775808`, "/big", RuleFormat},
		{"byte not base64", "blob", `"%%%"`, "/blob", RuleFormat},
		{"uri not absolute", "link", `"/relative"`, "/link", RuleFormat},
		{"arm-id not an id", "target", `"gateway-1"`, "/target", RuleFormat},
		{"closed enum", "closed", `"C"`, "/closed", RuleEnum},
		{"closed enum is case-sensitive", "closed", `"a"`, "/closed", RuleEnum},
		{"null where not x-nullable", "nested", `null`, "/nested", RuleNullable},
		{"null string", "id", `null`, "/id", RuleNullable},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := Validate([]byte(with(t, c.member, c.value)), testSchema())
			want := Finding{Pointer: c.pointer, Rule: c.rule}
			if !slices.ContainsFunc(r.Violations, func(f Finding) bool { return f.Pointer == want.Pointer && f.Rule == want.Rule }) {
				t.Errorf("want a %s violation at %s, got %v", c.rule, c.pointer, r.Violations)
			}
			if len(r.Violations) != 1 {
				t.Errorf("want exactly one violation, got %v", r.Violations)
			}
		})
	}
}

func TestModelAsStringEnumIsANoteNotAViolation(t *testing.T) {
	r := Validate([]byte(with(t, "open", `"C"`)), testSchema())
	if len(r.Violations) != 0 {
		t.Errorf("violations %v", r.Violations)
	}
	if len(r.Notes) != 1 || r.Notes[0].Pointer != "/open" || r.Notes[0].Rule != RuleEnum {
		t.Errorf("notes %v, want one enum note at /open", r.Notes)
	}
}

func TestNotJSON(t *testing.T) {
	for _, doc := range []string{"", "{", `{"a":1} {"b":2}`, "<html>"} {
		r := Validate([]byte(doc), testSchema())
		if len(r.Violations) != 1 || r.Violations[0].Rule != RuleJSON {
			t.Errorf("%q: %v", doc, r.Violations)
		}
	}
}

func TestPointerEscapes(t *testing.T) {
	s := mapOf(integer(""))
	r := Validate([]byte(`{"a/b~c": "x"}`), s)
	if len(r.Violations) != 1 || r.Violations[0].Pointer != "/a~1b~0c" {
		t.Errorf("%v", r.Violations)
	}
	if got := r.Violations[0].String(); !strings.HasPrefix(got, "/a~1b~0c: type: ") {
		t.Errorf("String() = %q", got)
	}
}

func TestReadOnlySentinels(t *testing.T) {
	s := object(map[string]*Schema{
		"id":   str().ro(),
		"name": str(),
		"properties": object(map[string]*Schema{
			"writable": str(),
			"count":    integer(FormatInt32).ro(),
			"when":     dateTime().ro(),
			"flag":     boolean().ro(),
			"status": object(map[string]*Schema{
				"state": str(),
				"at":    dateTime(),
			}).ro(),
			"misc": mapOf(str()).ro(),
			"errors": arrayOf(object(map[string]*Schema{
				"message": str().ro(),
				"hint":    str(),
			})),
			"plain": object(map[string]*Schema{"x": str()}),
		}),
	})
	got, err := json.Marshal(ReadOnlySentinels(s))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"conformance-readonly-sentinel","properties":{"count":424242,"errors":[{"message":"conformance-readonly-sentinel"}],` +
		`"misc":{"conformanceReadonlySentinel":"conformance-readonly-sentinel"},"status":{"at":"2001-02-03T04:05:06Z","state":"conformance-readonly-sentinel"},` +
		`"when":"2001-02-03T04:05:06Z"}}`
	if string(got) != want {
		t.Errorf("sentinels\n got %s\nwant %s", got, want)
	}
	if ReadOnlySentinels(object(map[string]*Schema{"a": str()})) != nil {
		t.Error("a schema without read-only members gives sentinels")
	}

	// A server that stores them is caught everywhere.
	body := map[string]any{"name": "n", "properties": map[string]any{"writable": "w"}}
	Merge(body, ReadOnlySentinels(s))
	if body["name"] != "n" || body["properties"].(map[string]any)["writable"] != "w" {
		t.Errorf("Merge lost writable members: %v", body)
	}
	raw, _ := json.Marshal(body)
	echoed, err := Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	var ptrs []string
	for _, f := range FindSentinels(echoed) {
		if f.Rule != RuleReadOnly {
			t.Errorf("rule %s", f.Rule)
		}
		ptrs = append(ptrs, f.Pointer)
	}
	wantPtrs := []string{"/id", "/properties/count", "/properties/errors/0/message", "/properties/misc/conformanceReadonlySentinel",
		"/properties/misc/conformanceReadonlySentinel", "/properties/status/at", "/properties/status/state", "/properties/when"}
	if !slices.Equal(ptrs, wantPtrs) {
		t.Errorf("found %v\nwant %v", ptrs, wantPtrs)
	}
	// And one that ignores them is not.
	clean, _ := Decode([]byte(`{"id":"/real","name":"n","properties":{"writable":"w","count":3,"misc":{"k":"v"}}}`))
	if f := FindSentinels(clean); len(f) != 0 {
		t.Errorf("clean response: %v", f)
	}
}

func TestRoundTrip(t *testing.T) {
	sent := map[string]any{"kind": "ProvisionedCluster", "tags": map[string]any{"a": "b"},
		"properties": map[string]any{"n": 2, "list": []any{"x"}, "secret": map[string]any{"k": "v"}}}
	got, _ := Decode([]byte(`{"tags":{"a":"b","extra":"fine"},"properties":{"n":2,"list":["x"],"secret":{},"added":true}}`))
	f := RoundTrip(sent, got, "/properties/secret")
	if len(f) != 1 || f[0].Pointer != "/kind" || f[0].Rule != RuleRoundTrip {
		t.Errorf("missing kind: %v", f)
	}
	changed, _ := Decode([]byte(`{"kind":"AWS","tags":{"a":"c"},"properties":{"n":3,"list":["x","y"],"secret":{}}}`))
	var ptrs []string
	for _, x := range RoundTrip(sent, changed, "/properties/secret") {
		ptrs = append(ptrs, x.Pointer)
	}
	if !slices.Equal(ptrs, []string{"/kind", "/properties/list", "/properties/n", "/tags/a"}) {
		t.Errorf("changed: %v", ptrs)
	}
	if f := RoundTrip(sent, sent); len(f) != 0 {
		t.Errorf("identical: %v", f)
	}
}
