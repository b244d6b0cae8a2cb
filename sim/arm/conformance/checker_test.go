package conformance

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// recorder is a reporter that keeps what a checker reports.
type recorder struct{ errors, logs []string }

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}
func (r *recorder) Logf(format string, args ...any) {
	r.logs = append(r.logs, fmt.Sprintf(format, args...))
}

// TestSuiteRulesFail proves that the suite's own checks (status codes,
// headers, bodies, long-running operations, deviations) fail on crafted
// responses, without a server.
func TestSuiteRulesFail(t *testing.T) {
	scc, _ := SourceControlConfigurations("2021-03-01")
	cc, _ := ConnectedClusters("2024-01-01")
	jsonHeader := http.Header{"Content-Type": {"application/json; charset=utf-8"}}
	resource := `{"id":"/x","name":"c","type":"t","properties":{"repositoryUrl":"https://h/r.git"}}`
	for _, c := range []struct {
		name string
		spec *Spec
		run  func(c *checker)
		want string // in the last error reported
		n    int    // errors expected; 0 means 1
	}{
		{"undocumented status", scc, func(c *checker) {
			c.status(response{method: http.MethodDelete, status: http.StatusAccepted, header: jsonHeader}, OpDelete)
		}, "/: status: DELETE answered 202, the spec documents [200 204]", 0},
		{"undocumented error status checks the envelope", scc, func(c *checker) {
			c.status(response{method: http.MethodPut, status: http.StatusBadRequest, header: jsonHeader, body: []byte(`{"error":{"code":"X"}}`)}, OpCreateOrUpdate)
		}, "/error/message: required", 2},
		{"wrong content type", scc, func(c *checker) {
			c.body(response{status: http.StatusOK, header: http.Header{"Content-Type": {"text/plain"}}, body: []byte(resource)}, scc.Resource)
		}, "/: header: Content-Type \"text/plain\"", 0},
		{"not JSON", scc, func(c *checker) {
			c.body(response{status: http.StatusOK, header: jsonHeader, body: []byte(`<html>`)}, scc.Resource)
		}, "/: json:", 0},
		{"body where none is documented", scc, func(c *checker) {
			c.noBody(response{status: http.StatusOK, body: []byte(`{}`)})
		}, "/: body: 200 has a body", 0},
		{"wrong error status", scc, func(c *checker) {
			c.wantError(response{method: http.MethodGet, status: http.StatusOK, header: jsonHeader, body: []byte(resource)}, http.StatusNotFound)
		}, "/: status: GET answered 200, want 404", 0},
		{"202 without Location", cc, func(c *checker) {
			c.awaitLocation(response{status: http.StatusAccepted, header: http.Header{}})
		}, "/: header: 202 with Location \"\"", 0},
		{"relative Location", cc, func(c *checker) {
			c.awaitLocation(response{status: http.StatusAccepted, header: http.Header{"Location": {"/operationResults/1"}}})
		}, "want an absolute URL", 0},
		{"running PUT without Azure-AsyncOperation", cc, func(c *checker) {
			c.awaitAsync(response{status: http.StatusCreated, header: jsonHeader}, map[string]any{"properties": map[string]any{"provisioningState": "Provisioning"}})
		}, "/: header: 201 with provisioningState \"Provisioning\" and no Azure-AsyncOperation header", 0},
		{"relative Azure-AsyncOperation", cc, func(c *checker) {
			c.awaitAsync(response{status: http.StatusCreated, header: http.Header{"Azure-Asyncoperation": {"ops/1"}}}, nil)
		}, "is not an absolute URL", 0},
		{"stored read-only value", cc, func(c *checker) {
			c.sentinels(map[string]any{"properties": map[string]any{"kubernetesVersion": SentinelString}})
		}, "/properties/kubernetesVersion: read-only", 0},
		{"lost writable value", cc, func(c *checker) {
			c.roundTrip(map[string]any{"kind": "ProvisionedCluster"}, map[string]any{})
		}, "/kind: round-trip", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			rec := &recorder{}
			h := &harness{ledger: &ledger{}}
			c.run(h.checker(rec, c.spec, "test"))
			n := max(c.n, 1)
			if len(rec.errors) != n || !strings.Contains(rec.errors[n-1], c.want) {
				t.Errorf("errors %q, want %d, the last containing %q", rec.errors, n, c.want)
			}
			if len(h.ledger.violations) != len(rec.errors) {
				t.Errorf("ledger %v", h.ledger.violations)
			}
		})
	}
}

func TestDeviationsAreLoggedNotFailed(t *testing.T) {
	scc, _ := SourceControlConfigurations("2022-03-01")
	rec := &recorder{}
	h := &harness{ledger: &ledger{}}
	c := h.checker(rec, scc, "GET")
	c.body(response{status: http.StatusOK, header: http.Header{"Content-Type": {"application/json"}},
		body: []byte(`{"properties":{"sshKnownHostsContents":null,"operatorScope":null}}`)}, scc.Resource)
	if len(rec.errors) != 1 || !strings.Contains(rec.errors[0], "/properties/operatorScope: x-nullable") {
		t.Errorf("errors %q: want operatorScope's null only", rec.errors)
	}
	if len(rec.logs) != 1 || !strings.Contains(rec.logs[0], "deviation") {
		t.Errorf("logs %q: want the sshKnownHostsContents deviation", rec.logs)
	}
}
