package ui

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"
	"time"
)

// testdata/report.json is the sample the page was drawn against (two
// scenarios, a fleet of 30 with late deliveries, a failed step): it must
// stay what the Go types encode, field for field, and render.
func TestSampleReportMatchesTypes(t *testing.T) {
	b, err := os.ReadFile("testdata/report.json")
	if err != nil {
		t.Fatal(err)
	}
	var r report
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("the sample has what the types do not: %v", err)
	}
	if r.Mode != "report" || len(r.Reports) != 2 || r.Reports[1].Scenario == nil || r.Reports[1].Scenario.Result != "failed" {
		t.Fatalf("sample: mode %q, %d reports", r.Mode, len(r.Reports))
	}
	if _, err := ReportPage(r.Reports, time.Now()); err != nil {
		t.Fatal(err)
	}
}
