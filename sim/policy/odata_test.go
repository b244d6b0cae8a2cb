package policy

import (
	"errors"
	"slices"
	"testing"
)

func odataRecords() []record {
	mk := func(res, rg, assign, state string) record {
		return record{propResourceID: res, "resourceGroup": rg, propAssignmentID: assign, propComplianceState: state,
			propIsCompliant: state == "Compliant", propDefinitionAction: "deployifnotexists"}
	}
	return []record{
		mk("c1", "rg1", "a1", "NonCompliant"),
		mk("c2", "rg1", "a1", "Compliant"),
		mk("c3", "rg2", "a1", "NonCompliant"),
		mk("c1", "rg1", "a2", "Compliant"),
	}
}

func odataSchema() schema {
	return newSchema(propResourceID, "resourceGroup", propAssignmentID, propComplianceState, propIsCompliant, propDefinitionAction)
}

func ids(recs []record) []string {
	var out []string
	for _, r := range recs {
		out = append(out, r[propResourceID].(string)+"/"+r[propAssignmentID].(string))
	}
	return out
}

func TestODataFilter(t *testing.T) {
	for _, tc := range []struct {
		filter string
		want   []string
	}{
		{"ComplianceState eq 'NonCompliant'", []string{"c1/a1", "c3/a1"}},
		{"compliancestate EQ 'noncompliant'", []string{"c1/a1", "c3/a1"}},
		{"IsCompliant eq false", []string{"c1/a1", "c3/a1"}},
		{"isCompliant ne false", []string{"c2/a1", "c1/a2"}},
		{"'rg1' eq ResourceGroup", []string{"c1/a1", "c2/a1", "c1/a2"}},
		{"ResourceGroup eq 'rg1' and PolicyAssignmentId eq 'A1'", []string{"c1/a1", "c2/a1"}},
		{"ResourceId eq 'c3' or ResourceId eq 'c2'", []string{"c2/a1", "c3/a1"}},
		{"not (ResourceGroup eq 'rg1')", []string{"c3/a1"}},
		{"IsCompliant eq false and (PolicyDefinitionAction eq 'audit' or PolicyDefinitionAction eq 'deployifnotexists')", []string{"c1/a1", "c3/a1"}},
		// and binds tighter than or.
		{"ResourceId eq 'c3' or ResourceId eq 'c1' and PolicyAssignmentId eq 'a2'", []string{"c3/a1", "c1/a2"}},
		{"ResourceId eq 'it''s'", nil},
		// A boolean never equals a string.
		{"IsCompliant eq 'false'", nil},
	} {
		e, err := parseODataFilter(tc.filter, odataSchema())
		if err != nil {
			t.Errorf("%s: %v", tc.filter, err)
			continue
		}
		got := ids(slices.DeleteFunc(odataRecords(), func(r record) bool { return !e.eval(r) }))
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.filter, got, tc.want)
		}
	}
}

func TestODataFilterErrors(t *testing.T) {
	for _, f := range []string{
		"Colour eq 'red'", "ResourceId eq", "ResourceId 'x'", "(ResourceId eq 'x'", "ResourceId eq 'x')",
		"ResourceId eq 'x", "ResourceId gt 'x'", "'a' eq 'b'", "ResourceId eq ResourceGroup", "ResourceId eq 'x' and",
		"ResourceId eq 'x' # y", "not", "",
	} {
		if _, err := parseODataFilter(f, odataSchema()); !errors.Is(err, errOData) {
			t.Errorf("%q: error %v, want errOData", f, err)
		}
	}
}

func TestODataApply(t *testing.T) {
	for _, tc := range []struct {
		apply string
		want  []record
	}{
		{"aggregate($count as N)", []record{{"N": 4}}},
		{"groupby((ResourceGroup), aggregate($count as N))", []record{{"resourceGroup": "rg1", "N": 3}, {"resourceGroup": "rg2", "N": 1}}},
		{"groupby((PolicyAssignmentId, ComplianceState))", []record{
			{propAssignmentID: "a1", propComplianceState: "NonCompliant"}, {propAssignmentID: "a1", propComplianceState: "Compliant"},
			{propAssignmentID: "a2", propComplianceState: "Compliant"}}},
		{"filter(IsCompliant eq false)/groupby((ResourceId))/aggregate($count as NumNonCompliantResources)", []record{{"NumNonCompliantResources": 2}}},
		{"groupby((ResourceGroup, ResourceId))/groupby((resourcegroup), aggregate($count as Clusters))", []record{
			{"resourceGroup": "rg1", "Clusters": 2}, {"resourceGroup": "rg2", "Clusters": 1}}},
		{"aggregate(ResourceId with countdistinct as R, $count as N)", []record{{"R": 3, "N": 4}}},
	} {
		chain, _, err := parseApply(tc.apply, odataSchema())
		if err != nil {
			t.Errorf("%s: %v", tc.apply, err)
			continue
		}
		got := odataRecords()
		for _, f := range chain {
			got = f(got)
		}
		if !slices.EqualFunc(got, tc.want, func(a, b record) bool {
			if len(a) != len(b) {
				return false
			}
			for k, v := range a {
				if b[k] != v {
					return false
				}
			}
			return true
		}) {
			t.Errorf("%s: %v, want %v", tc.apply, got, tc.want)
		}
	}
	for _, bad := range []string{"groupby(ResourceId)", "aggregate($count)", "aggregate($count as N", "topcount(1)", "groupby((Nope))", "aggregate($count as N)/groupby((ResourceId))"} {
		if _, _, err := parseApply(bad, odataSchema()); !errors.Is(err, errOData) {
			t.Errorf("%q: error %v, want errOData", bad, err)
		}
	}
}

func TestODataOrderByAndSelect(t *testing.T) {
	recs := odataRecords()
	keys, err := parseOrderBy("ComplianceState asc, resourceid", odataSchema())
	if err != nil {
		t.Fatal(err)
	}
	sortRecords(recs, keys)
	if got, want := ids(recs), []string{"c2/a1", "c1/a2", "c3/a1", "c1/a1"}; !slices.Equal(got, want) {
		t.Errorf("orderby: %v, want %v", got, want)
	}
	for _, bad := range []string{"Nope", "ResourceId sideways", "ResourceId asc desc", ""} {
		if _, err := parseOrderBy(bad, odataSchema()); !errors.Is(err, errOData) {
			t.Errorf("orderby %q: %v", bad, err)
		}
	}
	sel, err := parseSelect("resourceid, ComplianceState", odataSchema())
	if err != nil || !slices.Equal(sel, []string{propResourceID, propComplianceState}) {
		t.Errorf("select: %v %v", sel, err)
	}
	if _, err := parseSelect("ResourceId,,", odataSchema()); !errors.Is(err, errOData) {
		t.Errorf("select with an empty name: %v", err)
	}
}

// FuzzODataFilter checks that no filter panics, and that every error is
// the parser's own.
func FuzzODataFilter(f *testing.F) {
	for _, s := range []string{
		"ComplianceState eq 'NonCompliant' and PolicyAssignmentId eq 'x'",
		"not (IsCompliant eq true) or ResourceGroup ne 'it''s'",
		"((ResourceId eq 'a'))", "'", "(", "not not not",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := parseODataFilter(s, odataSchema())
		if err != nil {
			if !errors.Is(err, errOData) {
				t.Fatalf("%q: foreign error %v", s, err)
			}
			return
		}
		for _, r := range odataRecords() {
			e.eval(r)
		}
		if _, _, err := parseApply(s, odataSchema()); err != nil && !errors.Is(err, errOData) {
			t.Fatalf("apply %q: foreign error %v", s, err)
		}
	})
}
