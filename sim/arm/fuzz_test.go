package arm

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gitopsim/gitopsim/sim/clock"
)

// fuzzServer is an unstarted server driven through ServeHTTP, with a valid
// token, so fuzzed requests get past authentication.
func fuzzServer(f *testing.F) (*Server, string) {
	s, err := New(Options{Workdir: f.TempDir(), Clock: clock.NewVirtual(time.Time{}), Logger: slog.New(slog.DiscardHandler), RequestLog: discard{}, PageSize: 2})
	if err != nil {
		f.Fatal(err)
	}
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {s.opts.ClientID}, "client_secret": {s.opts.ClientSecret}, "scope": {"https://management.core.windows.net//.default"}}
	req := httptest.NewRequest(http.MethodPost, "/"+s.opts.TenantID+"/oauth2/v2.0/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &tok); err != nil || tok.AccessToken == "" {
		f.Fatalf("token: %d %s", rec.Code, rec.Body)
	}
	// A group and a cluster, so that deeper routes are reachable.
	for _, r := range []struct{ path, body string }{
		{"/subscriptions/" + s.opts.SubscriptionID + "/resourceGroups/rg?api-version=2021-04-01", `{"location":"eastus"}`},
		{"/subscriptions/" + s.opts.SubscriptionID + "/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks?api-version=2023-05-01", `{"location":"eastus"}`},
	} {
		req := httptest.NewRequest(http.MethodPut, r.path, strings.NewReader(r.body))
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code >= 300 {
			f.Fatalf("seed %s: %d %s", r.path, rec.Code, rec.Body)
		}
	}
	return s, tok.AccessToken
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// checkAnswer is what every fuzzed request must get: no panic (the
// recovery layer would answer 500) and, for any error, the ARM envelope
// with a code and a message.
func checkAnswer(t *testing.T, rec *httptest.ResponseRecorder, path string) {
	if rec.Code == http.StatusInternalServerError {
		t.Fatalf("500 for %q: %s", path, rec.Body)
	}
	if rec.Code < 400 || strings.Contains(path, "oauth2") {
		return
	}
	var env struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil || env.Error.Code == "" || env.Error.Message == "" {
		t.Fatalf("%d for %q without an ARM envelope: %s", rec.Code, path, rec.Body)
	}
	if rec.Header().Get("x-ms-error-code") != env.Error.Code {
		t.Fatalf("x-ms-error-code %q, body code %q", rec.Header().Get("x-ms-error-code"), env.Error.Code)
	}
}

func FuzzRouter(f *testing.F) {
	s, token := fuzzServer(f)
	sub := s.opts.SubscriptionID
	scc := "/subscriptions/" + sub + "/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks/providers/Microsoft.KubernetesConfiguration/sourceControlConfigurations"
	for _, seed := range []struct{ method, target, body string }{
		{"GET", "/subscriptions?api-version=2022-12-01", ""},
		{"GET", "/subscriptions/" + sub + "/resourcegroups?api-version=2021-04-01&$skiptoken=bzox", ""},
		{"PUT", scc + "/cfg?api-version=2023-05-01", `{"properties":{"repositoryUrl":"https://h/x.git"}}`},
		{"GET", scc + "?api-version=2021-03-01&%24skiptoken=%%%", ""},
		{"DELETE", scc + "/cfg?api-version=2023-05-01", ""},
		{"PUT", "/subscriptions/" + sub + "/resourceGroups/rg/providers/Microsoft.Kubernetes/connectedClusters/c?api-version=2021-10-01", `{"location":"x","identity":{"type":"None"},"properties":{"agentPublicKeyCertificate":"AAAA"}}`},
		{"GET", "/subscriptions/" + sub + "/providers/Microsoft.Kubernetes/locations/eastus/operationStatuses/x?api-version=2021-10-01", ""},
		{"POST", "/agent/v1/subscriptions/" + sub + "/resourceGroups/rg/providers/Microsoft.Kubernetes/connectedClusters/c/heartbeat", `{}`},
		{"PATCH", "/subscriptions/" + sub + "/resourceGroups/rg?api-version=2021-04-01", `{"tags":{"a":null}}`},
		{"GET", "//subscriptions//x/..%2f?api-version=", ""},
		{"HEAD", "/metadata/endpoints?api-version=2022-09-01", ""},
	} {
		f.Add(seed.method, seed.target, seed.body)
	}
	f.Fuzz(func(t *testing.T, method, target, body string) {
		if !strings.HasPrefix(target, "/") || strings.ContainsAny(target, " \r\n\t#") || method == "" || strings.ContainsAny(method, " \r\n\t/()<>@,;:\\\"[]?={}") {
			return // not a request line net/http would accept
		}
		req, err := http.NewRequestWithContext(context.Background(), method, "https://arm.test"+target, strings.NewReader(body))
		if err != nil {
			return
		}
		req.Header.Set("Authorization", "Bearer "+token)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		checkAnswer(t, rec, target)
	})
}

func FuzzConfigBody(f *testing.F) {
	for _, seed := range []string{
		`{"properties":{"repositoryUrl":"git@h:x","operatorScope":"Namespace","enableHelmOperator":"TRUE"}}`,
		`{"properties":{"repositoryUrl":"https://h/x","configurationProtectedSettings":{"httpsUser":"dQ==","httpsKey":"aw=="}}}`,
		`{"properties":{"repositoryUrl":"ssh://git@h/x","sshKnownHostsContents":"aCBzc2gtcnNhIEFBQUE="}}`,
		`{"properties":{"helmOperatorProperties":{"chartVersion":1}}}`,
		`{"properties":null}`, `[]`, `{"Properties":{"RepositoryURL":"https://h/x"}}`, `{"properties":{"x":{}}}`,
	} {
		f.Add(seed, "cfg")
	}
	f.Fuzz(func(t *testing.T, body, name string) {
		if !json.Valid([]byte(body)) {
			return // readBody refuses these before decoding
		}
		spec, protected, e := decodeConfig(json.RawMessage(body), name)
		if e != nil {
			if e.Status != http.StatusBadRequest || e.Code == "" || e.Message == "" {
				t.Fatalf("error without a 400 envelope: %+v", e)
			}
			return
		}
		if spec.OperatorScope != "cluster" && spec.OperatorScope != "namespace" {
			t.Fatalf("accepted scope %q", spec.OperatorScope)
		}
		if spec.RepositoryURL == "" || spec.OperatorNamespace == "" || spec.OperatorInstanceName == "" {
			t.Fatalf("accepted an incomplete spec %+v", spec)
		}
		for k := range protected {
			if k != "sshPrivateKey" && k != "httpsUser" && k != "httpsKey" {
				t.Fatalf("accepted protected key %q", k)
			}
		}
	})
}
