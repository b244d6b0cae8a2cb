package policy

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/gitopsim/gitopsim/sim/arm"
)

// FuzzRemediationRequest feeds arbitrary bodies to the remediation
// decoder and validator: they never panic, and a body they accept has a
// known discovery mode and settings within the documented limits.
func FuzzRemediationRequest(f *testing.F) {
	for _, seed := range []string{
		`{"properties":{"policyAssignmentId":"/subscriptions/s/providers/Microsoft.Authorization/policyAssignments/a"}}`,
		`{"properties":{"policyAssignmentId":"x","resourceDiscoveryMode":"reevaluatecompliance","filters":{"resourceIds":[]}}}`,
		`{"properties":{"policyAssignmentId":"x","parallelDeployments":0,"resourceCount":50001,"failureThreshold":{"percentage":-0.5}}}`,
		`{"properties":{"policyAssignmentId":"x","filters":{"locations":["East US"],"resourceIds":["/a","/b"]}}}`,
		`{"properties":null}`, `[]`, `{"properties":{"policyAssignmentId":1}}`,
	} {
		f.Add(seed)
	}
	srv, err := arm.New(arm.Options{Workdir: f.TempDir()})
	if err != nil {
		f.Fatal(err)
	}
	p, err := New(Options{ARM: srv})
	if err != nil {
		f.Fatal(err)
	}
	in := p.Insights(InsightsOptions{})
	f.Fuzz(func(t *testing.T, body string) {
		var req struct {
			Properties *remediationProps `json:"properties"`
		}
		if json.Unmarshal([]byte(body), &req) != nil || req.Properties == nil {
			return
		}
		props := *req.Properties
		e := in.checkRemediation("fuzz", "/subscriptions/s", &props)
		if e == nil {
			// No assignment exists, so nothing may pass.
			t.Fatalf("accepted %s", body)
		}
		if e.Status != 400 && e.Status != 404 || e.Code == "" || e.Message == "" || strings.Contains(e.Message, "%!") {
			t.Fatalf("error %d %q %q for %s", e.Status, e.Code, e.Message, body)
		}
		if e.Status == 404 {
			// Everything but the assignment was valid.
			if props.ResourceDiscoveryMode != "ExistingNonCompliant" && props.ResourceDiscoveryMode != "ReEvaluateCompliance" {
				t.Fatalf("mode %q passed", props.ResourceDiscoveryMode)
			}
			if pd := props.ParallelDeployments; pd != nil && (*pd < 1 || *pd > maxParallelDeployments) {
				t.Fatalf("parallelDeployments %d passed", *pd)
			}
			if rc := props.ResourceCount; rc != nil && (*rc < 1 || *rc > maxResourceCount) {
				t.Fatalf("resourceCount %d passed", *rc)
			}
			if fl := props.Filters; fl != nil && fl.ResourceIDs != nil && (len(fl.ResourceIDs) == 0 || len(fl.ResourceIDs) > maxFilterResourceIDs) {
				t.Fatalf("%d resourceIds passed", len(fl.ResourceIDs))
			}
		}
	})
}
