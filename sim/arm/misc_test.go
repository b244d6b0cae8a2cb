package arm_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"

	"github.com/gitopsim/gitopsim/sim/arm"
)

func TestProvidersMetadataAndManagedClusterParent(t *testing.T) {
	f := start(t, arm.Options{})
	token := f.token()
	sub := f.srv.SubscriptionID()
	status, body := f.raw(http.MethodGet, f.srv.URL()+"/subscriptions/"+sub+"/providers/microsoft.kubernetesconfiguration?api-version=2019-05-01", token, "")
	if status != 200 || !strings.Contains(string(body), `"registrationState":"Registered"`) || !strings.Contains(string(body), `"namespace":"Microsoft.KubernetesConfiguration"`) {
		t.Errorf("provider read: %d %s", status, body)
	}
	status, body = f.raw(http.MethodPost, f.srv.URL()+"/subscriptions/"+sub+"/providers/Microsoft.Kubernetes/register?api-version=2019-05-01", token, "")
	if status != 200 || !strings.Contains(string(body), "Registered") {
		t.Errorf("provider register: %d %s", status, body)
	}
	status, body = f.raw(http.MethodGet, f.srv.URL()+"/metadata/endpoints?api-version=2022-09-01", "", "")
	var md []map[string]any // 2019-05-01 and later: an array of clouds
	if status != 200 || json.Unmarshal(body, &md) != nil || len(md) != 1 || md[0]["resourceManager"] != f.srv.URL()+"/" {
		t.Errorf("metadata: %d %s", status, body)
	}
	status, body = f.raw(http.MethodGet, f.srv.URL()+"/"+f.srv.TenantID()+"/v2.0/.well-known/openid-configuration", "", "")
	if status != 200 || !strings.Contains(string(body), f.srv.URL()+"/"+f.srv.TenantID()+"/v2.0") {
		t.Errorf("discovery: %d %s", status, body)
	}

	// Configurations under an AKS (managedClusters) parent.
	f.group("rg1")
	status, body = f.raw(http.MethodPut, f.srv.URL()+"/subscriptions/"+sub+"/resourceGroups/rg1/providers/Microsoft.ContainerService/managedClusters/aks1?api-version=2023-05-01", token,
		`{"location":"eastus","properties":{"kubernetesVersion":"1.32.1"}}`)
	if status != 201 {
		t.Fatalf("managed cluster: %d %s", status, body)
	}
	var raw *http.Response
	_, err := f.configs.CreateOrUpdate(runtime.WithCaptureResponse(t.Context(), &raw), "rg1", "Microsoft.ContainerService", "managedClusters", "aks1", "cfg",
		config("https://127.0.0.1/team/app.git"), nil)
	if err != nil || raw.StatusCode != 201 {
		t.Fatalf("configuration on AKS: %v", err)
	}
	got, err := f.configs.Get(t.Context(), "rg1", "Microsoft.ContainerService", "managedClusters", "aks1", "cfg", nil)
	if err != nil || !strings.Contains(*got.ID, "/managedClusters/aks1/providers/Microsoft.KubernetesConfiguration/") {
		t.Errorf("get on AKS: %v %v", err, got.ID)
	}
	_, err = f.configs.CreateOrUpdate(t.Context(), "rg1", "Microsoft.Widgets", "gadgets", "g1", "cfg", config("https://127.0.0.1/x.git"), nil)
	if re := responseError(t, err); re.StatusCode != 400 || re.ErrorCode != "InvalidResourceType" {
		t.Errorf("unsupported parent: %v", err)
	}
}

func TestFaultInjection(t *testing.T) {
	f := start(t, arm.Options{Faults: []arm.Fault{{Route: "healthz", Status: http.StatusServiceUnavailable}}})
	if status, body := f.raw(http.MethodGet, f.srv.URL()+"/healthz", "", ""); status != 503 || !strings.Contains(string(body), "ServiceUnavailable") {
		t.Errorf("fault from Options: %d %s", status, body)
	}
	f.group("rg1")
	f.connectedCluster("rg1", "arc1")
	// A one-shot fault hits exactly one request...
	remove := f.srv.InjectFault(arm.Fault{Route: "sourceControlConfiguration", Method: http.MethodPut, Status: http.StatusServiceUnavailable, Times: 1})
	url := f.srv.URL() + "/subscriptions/" + f.srv.SubscriptionID() + "/resourceGroups/rg1/providers/Microsoft.Kubernetes/connectedClusters/arc1/providers/Microsoft.KubernetesConfiguration/sourceControlConfigurations/raw?api-version=2023-05-01"
	body := `{"properties":{"repositoryUrl":"https://127.0.0.1/x.git"}}`
	if status, resp := f.raw(http.MethodPut, url, f.token(), body); status != 503 || !strings.Contains(string(resp), "ServiceUnavailable") {
		t.Errorf("first PUT under a one-shot fault: %d %s", status, resp)
	}
	if status, resp := f.raw(http.MethodPut, url, f.token(), body); status != 201 {
		t.Errorf("second PUT: %d %s", status, resp)
	}
	// ...and the SDK rides over such a blip with its retry.
	f.srv.InjectFault(arm.Fault{Route: "sourceControlConfiguration", Method: http.MethodPut, Status: http.StatusServiceUnavailable, Times: 1})
	if _, _, err := f.putConfig("rg1", "arc1", "cfg", config("https://127.0.0.1/x.git")); err != nil {
		t.Fatalf("one 503 should be retried by the SDK: %v", err)
	}
	remove()
	stop := f.srv.InjectFault(arm.Fault{Route: "sourceControlConfiguration", Method: http.MethodGet, Status: http.StatusConflict, Code: "Throttled", Message: "try later"})
	_, err := f.configs.Get(t.Context(), "rg1", "Microsoft.Kubernetes", "connectedClusters", "arc1", "cfg", nil)
	if re := responseError(t, err); re.StatusCode != 409 || re.ErrorCode != "Throttled" || !strings.Contains(err.Error(), "try later") {
		t.Errorf("injected 409: %v", err)
	}
	// Other routes are untouched.
	if _, err := f.ccs.Get(t.Context(), "rg1", "arc1", nil); err != nil {
		t.Errorf("cluster GET hit by a configuration fault: %v", err)
	}
	stop()
	if _, err := f.configs.Get(t.Context(), "rg1", "Microsoft.Kubernetes", "connectedClusters", "arc1", "cfg", nil); err != nil {
		t.Errorf("after removing the fault: %v", err)
	}
	if !strings.Contains(strings.Join(f.srv.RouteNames(), ","), "sourceControlConfiguration") {
		t.Errorf("route names: %v", f.srv.RouteNames())
	}
	// Latency is real (wall) time.
	f.srv.InjectFault(arm.Fault{Route: "connectedCluster", Latency: 150 * time.Millisecond})
	t0 := time.Now()
	if _, err := f.ccs.Get(t.Context(), "rg1", "arc1", nil); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d < 150*time.Millisecond {
		t.Errorf("latency fault: request took %v", d)
	}
	f.srv.ClearFaults()
}
