package arm_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/hybridkubernetes/armhybridkubernetes"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/kubernetesconfiguration/armkubernetesconfiguration/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"

	"github.com/gitopsim/gitopsim/sim"
	"github.com/gitopsim/gitopsim/sim/arm"
	"github.com/gitopsim/gitopsim/sim/arm/armtest"
	"github.com/gitopsim/gitopsim/sim/azsdk"
	"github.com/gitopsim/gitopsim/sim/clock"
)

// fixture is an ARM server on a virtual clock with SDK clients for it.
type fixture struct {
	t       *testing.T
	srv     *arm.Server
	clk     *clock.Virtual
	workdir string
	az      *azsdk.Clients
	rec     *recorder
	groups  *armresources.ResourceGroupsClient
	ccs     *armhybridkubernetes.ConnectedClusterClient
	configs *armkubernetesconfiguration.SourceControlConfigurationsClient
}

func start(t *testing.T, opts arm.Options) *fixture {
	t.Helper()
	f := &fixture{t: t, clk: clock.NewVirtual(time.Time{}), workdir: t.TempDir()}
	opts.Workdir, opts.Clock = f.workdir, f.clk
	opts.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	srv, err := arm.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop(context.Background()) })
	f.srv = srv
	if f.az, err = azsdkNew(f); err != nil {
		t.Fatal(err)
	}
	return f
}

// azsdkNew makes SDK clients for the fixture's current server, recording
// every response body.
func azsdkNew(f *fixture) (*azsdk.Clients, error) {
	az, err := azsdk.New(f.endpoint())
	if err != nil {
		return nil, err
	}
	f.rec = &recorder{next: az.HTTPClient}
	az.Options.Transport = f.rec
	if f.groups, err = armresources.NewResourceGroupsClient(az.SubscriptionID, az.Credential, az.Options); err != nil {
		return nil, err
	}
	if f.ccs, err = armhybridkubernetes.NewConnectedClusterClient(az.SubscriptionID, az.Credential, az.Options); err != nil {
		return nil, err
	}
	if f.configs, err = armkubernetesconfiguration.NewSourceControlConfigurationsClient(az.SubscriptionID, az.Credential, az.Options); err != nil {
		return nil, err
	}
	return az, nil
}

func (f *fixture) endpoint() sim.ARMEndpoint {
	return sim.ARMEndpoint{
		URL: f.srv.URL(), CAFile: f.srv.CAFile(), TenantID: f.srv.TenantID(), SubscriptionID: f.srv.SubscriptionID(),
		AuthorityHost: f.srv.AuthorityHost(), ClientID: f.srv.ClientID(), ClientSecret: f.srv.ClientSecret(),
	}
}

// recorder keeps every response body the SDK receives.
type recorder struct {
	next   *http.Client
	mu     sync.Mutex
	bodies bytes.Buffer
}

func (r *recorder) Do(req *http.Request) (*http.Response, error) {
	resp, err := r.next.Do(req)
	if err != nil {
		return resp, err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	r.mu.Lock()
	r.bodies.Write(b)
	r.bodies.WriteString("\n")
	for k, v := range resp.Header {
		r.bodies.WriteString(k + ": " + strings.Join(v, ",") + "\n")
	}
	r.mu.Unlock()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp, nil
}

func (f *fixture) group(name string) {
	f.t.Helper()
	if _, err := f.groups.CreateOrUpdate(f.t.Context(), name, armresources.ResourceGroup{Location: to.Ptr("eastus")}, nil); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) connectedCluster(rg, name string) *armhybridkubernetes.ConnectedCluster {
	f.t.Helper()
	poller, err := f.ccs.BeginCreate(f.t.Context(), rg, name, armtest.ConnectedCluster(), nil)
	if err != nil {
		f.t.Fatal(err)
	}
	res, err := poller.PollUntilDone(f.t.Context(), &runtime.PollUntilDoneOptions{Frequency: 10 * time.Millisecond})
	if err != nil {
		f.t.Fatal(err)
	}
	return &res.ConnectedCluster
}

func config(url string) armkubernetesconfiguration.SourceControlConfiguration {
	return armtest.Config(url)
}

func (f *fixture) putConfig(rg, cluster, name string, body armkubernetesconfiguration.SourceControlConfiguration) (armkubernetesconfiguration.SourceControlConfiguration, int, error) {
	var raw *http.Response
	ctx := runtime.WithCaptureResponse(f.t.Context(), &raw)
	res, err := f.configs.CreateOrUpdate(ctx, rg, "Microsoft.Kubernetes", "connectedClusters", cluster, name, body, nil)
	status := 0
	if raw != nil {
		status = raw.StatusCode
	}
	return res.SourceControlConfiguration, status, err
}

func responseError(t *testing.T, err error) *azcore.ResponseError {
	t.Helper()
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		t.Fatalf("want an ARM error, got %v", err)
	}
	return re
}

func TestSDKLifecycle(t *testing.T) {
	f := start(t, arm.Options{PageSize: 2})
	ctx := t.Context()
	f.group("rg1")

	cc := f.connectedCluster("rg1", "arc1")
	if got := *cc.Properties.ProvisioningState; got != armhybridkubernetes.ProvisioningStateSucceeded {
		t.Errorf("after the LRO, provisioningState = %s", got)
	}
	if got := *cc.Properties.ConnectivityStatus; got != armhybridkubernetes.ConnectivityStatusConnecting {
		t.Errorf("new cluster connectivityStatus = %s, want Connecting", got)
	}
	if cc.Identity.PrincipalID == nil || *cc.Identity.TenantID != f.srv.TenantID() {
		t.Errorf("identity = %+v", cc.Identity)
	}

	// Configurations: create 201, update 200, get, list across pages.
	first, status, err := f.putConfig("rg1", "arc1", "cfg0", config("ssh://git@127.0.0.1:2222/team/app.git"))
	if err != nil || status != http.StatusCreated {
		t.Fatalf("create: status %d, %v", status, err)
	}
	p := first.Properties
	if *p.ProvisioningState != armkubernetesconfiguration.ProvisioningStateTypeSucceeded ||
		*p.ComplianceStatus.ComplianceState != armkubernetesconfiguration.ComplianceStateTypePending {
		t.Errorf("fresh configuration: provisioning %s, compliance %s", *p.ProvisioningState, *p.ComplianceStatus.ComplianceState)
	}
	if *p.ComplianceStatus.Message != `{"OperatorMessage":null,"ClusterState":null}` {
		t.Errorf("pending message = %q", *p.ComplianceStatus.Message)
	}
	if *p.OperatorParams != "--git-readonly --git-path=releases" {
		t.Errorf("operatorParams = %q, want --git-readonly prepended", *p.OperatorParams)
	}
	wantID := "/subscriptions/" + f.srv.SubscriptionID() + "/resourceGroups/rg1/providers/Microsoft.Kubernetes/connectedClusters/arc1/providers/Microsoft.KubernetesConfiguration/sourceControlConfigurations/cfg0"
	if *first.ID != wantID || *first.Type != "Microsoft.KubernetesConfiguration/sourceControlConfigurations" {
		t.Errorf("id %s type %s", *first.ID, *first.Type)
	}

	upd := config("ssh://git@127.0.0.1:2222/team/app.git")
	upd.Properties.OperatorParams = to.Ptr("--git-user=flux --git-branch=main")
	second, status, err := f.putConfig("rg1", "arc1", "cfg0", upd)
	if err != nil || status != http.StatusOK {
		t.Fatalf("update: status %d, %v", status, err)
	}
	if *second.Properties.OperatorParams != "--git-user=flux --git-branch=main" {
		t.Errorf("with --git-user, operatorParams = %q (no --git-readonly expected)", *second.Properties.OperatorParams)
	}
	got, err := f.configs.Get(ctx, "rg1", "Microsoft.Kubernetes", "connectedClusters", "arc1", "cfg0", nil)
	if err != nil || *got.Properties.OperatorParams != "--git-user=flux --git-branch=main" {
		t.Fatalf("get: %v %v", err, got.Properties)
	}
	for _, n := range []string{"cfg1", "cfg2", "cfg3", "cfg4"} {
		if _, _, err := f.putConfig("rg1", "arc1", n, config("https://127.0.0.1/team/app.git")); err != nil {
			t.Fatal(err)
		}
	}
	pager := f.configs.NewListPager("rg1", "Microsoft.Kubernetes", "connectedClusters", "arc1", nil)
	var names []string
	pages := 0
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, c := range page.Value {
			names = append(names, *c.Name)
		}
	}
	if pages != 3 || strings.Join(names, ",") != "cfg0,cfg1,cfg2,cfg3,cfg4" {
		t.Errorf("list: %d pages, %v", pages, names)
	}

	// Delete: 200, then 204 for the same name.
	for _, want := range []int{http.StatusOK, http.StatusNoContent} {
		var raw *http.Response
		poller, err := f.configs.BeginDelete(runtime.WithCaptureResponse(ctx, &raw), "rg1", "Microsoft.Kubernetes", "connectedClusters", "arc1", "cfg0", nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := poller.PollUntilDone(ctx, nil); err != nil {
			t.Fatal(err)
		}
		if raw.StatusCode != want {
			t.Errorf("delete: status %d, want %d", raw.StatusCode, want)
		}
	}
	if _, err := f.configs.Get(ctx, "rg1", "Microsoft.Kubernetes", "connectedClusters", "arc1", "cfg0", nil); responseError(t, err).ErrorCode != "NotFound" {
		t.Errorf("get after delete: %v", err)
	}

	// Connected clusters: PATCH tags, list both ways, LRO delete.
	if _, err := f.ccs.Update(ctx, "rg1", "arc1", armhybridkubernetes.ConnectedClusterPatch{Tags: map[string]*string{"env": to.Ptr("dev")}}, nil); err != nil {
		t.Fatal(err)
	}
	f.group("rg2")
	f.connectedCluster("rg2", "arc2")
	count := func(p interface{ More() bool }, next func() ([]*armhybridkubernetes.ConnectedCluster, error)) []string {
		var out []string
		for p.More() {
			v, err := next()
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range v {
				out = append(out, *c.Name)
			}
		}
		return out
	}
	byRG := f.ccs.NewListByResourceGroupPager("rg1", nil)
	rgNames := count(byRG, func() ([]*armhybridkubernetes.ConnectedCluster, error) {
		p, err := byRG.NextPage(ctx)
		return p.Value, err
	})
	bySub := f.ccs.NewListBySubscriptionPager(nil)
	subNames := count(bySub, func() ([]*armhybridkubernetes.ConnectedCluster, error) {
		p, err := bySub.NextPage(ctx)
		return p.Value, err
	})
	if strings.Join(rgNames, ",") != "arc1" || strings.Join(subNames, ",") != "arc1,arc2" {
		t.Errorf("by group %v, by subscription %v", rgNames, subNames)
	}
	tagged, err := f.ccs.Get(ctx, "rg1", "arc1", nil)
	if err != nil || tagged.Tags["env"] == nil || *tagged.Tags["env"] != "dev" {
		t.Errorf("tags after PATCH: %v %v", err, tagged.Tags)
	}
	var raw *http.Response
	del, err := f.ccs.BeginDelete(runtime.WithCaptureResponse(ctx, &raw), "rg1", "arc1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if raw.StatusCode != http.StatusAccepted || raw.Header.Get("Location") == "" {
		t.Errorf("cluster delete: %d, Location %q", raw.StatusCode, raw.Header.Get("Location"))
	}
	if _, err := del.PollUntilDone(ctx, &runtime.PollUntilDoneOptions{Frequency: 10 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ccs.Get(ctx, "rg1", "arc1", nil); responseError(t, err).StatusCode != http.StatusNotFound {
		t.Errorf("cluster still there after delete: %v", err)
	}
	// Its configurations went with it.
	if _, _, err := f.putConfig("rg1", "arc1", "cfg1", config("https://127.0.0.1/x.git")); responseError(t, err).ErrorCode != "ResourceNotFound" {
		t.Errorf("configuration under a deleted cluster: %v", err)
	}
}

func TestMissingParentsAndAPIVersions(t *testing.T) {
	f := start(t, arm.Options{})
	ctx := t.Context()
	_, _, err := f.putConfig("nope", "arc1", "cfg", config("https://127.0.0.1/x.git"))
	if re := responseError(t, err); re.StatusCode != 404 || re.ErrorCode != "ResourceGroupNotFound" {
		t.Errorf("missing group: %d %s", re.StatusCode, re.ErrorCode)
	}
	f.group("rg1")
	_, _, err = f.putConfig("rg1", "ghost", "cfg", config("https://127.0.0.1/x.git"))
	if re := responseError(t, err); re.StatusCode != 404 || re.ErrorCode != "ResourceNotFound" || !strings.Contains(re.Error(), "connectedClusters/ghost") {
		t.Errorf("missing cluster: %v", err)
	}

	// The versions the az CLI (2021-03-01) and the SDK's connectedClusters
	// client (2021-10-01) use, raw.
	f.connectedCluster("rg1", "arc1")
	base := f.srv.URL() + "/subscriptions/" + f.srv.SubscriptionID() + "/resourcegroups/rg1/providers/Microsoft.Kubernetes/connectedClusters/arc1"
	token := f.token()
	body := `{"properties":{"repositoryUrl":"git@127.0.0.1:team/app","operatorScope":"Cluster","operatorType":"flux","enableHelmOperator":"true","helmOperatorProperties":{"chartVersion":"1.2.0","chartValues":"--set helm.versions=v3"}}}`
	status, resp := f.raw(http.MethodPut, base+"/providers/Microsoft.KubernetesConfiguration/sourceControlConfigurations/cli?api-version=2021-03-01", token, body)
	if status != http.StatusCreated {
		t.Fatalf("2021-03-01 PUT: %d %s", status, resp)
	}
	var got struct{ Properties map[string]any }
	if err := json.Unmarshal(resp, &got); err != nil {
		t.Fatal(err)
	}
	if got.Properties["enableHelmOperator"] != true || got.Properties["operatorScope"] != "cluster" || got.Properties["operatorNamespace"] != "default" || got.Properties["operatorInstanceName"] != "cli" {
		t.Errorf("defaults and string booleans: %v", got.Properties)
	}
	if ps, _ := got.Properties["configurationProtectedSettings"].(map[string]any); ps == nil || len(ps) != 0 {
		t.Errorf("configurationProtectedSettings = %v, want {}", got.Properties["configurationProtectedSettings"])
	}
	if status, resp := f.raw(http.MethodGet, base+"?api-version=2021-10-01", token, ""); status != 200 {
		t.Errorf("2021-10-01 GET: %d %s", status, resp)
	}
	for _, tc := range []struct{ query, code string }{
		{"?api-version=2099-01-01", "InvalidApiVersionParameter"},
		{"", "MissingApiVersionParameter"},
	} {
		status, resp := f.raw(http.MethodGet, base+"/providers/Microsoft.KubernetesConfiguration/sourceControlConfigurations/cli"+tc.query, token, "")
		if status != 400 || !strings.Contains(string(resp), `"code":"`+tc.code+`"`) {
			t.Errorf("%q: %d %s", tc.query, status, resp)
		}
	}
	status, resp = f.raw(http.MethodGet, f.srv.URL()+"/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups?api-version=2021-04-01", token, "")
	if status != 404 || !strings.Contains(string(resp), "SubscriptionNotFound") {
		t.Errorf("unknown subscription: %d %s", status, resp)
	}
	if _, err := f.groups.Get(ctx, "rg1", nil); err != nil {
		t.Errorf("resource group read through armresources: %v", err)
	}
}

func (f *fixture) token() string {
	f.t.Helper()
	tok, err := f.az.Credential.GetToken(f.t.Context(), policyScope())
	if err != nil {
		f.t.Fatal(err)
	}
	return tok.Token
}

func (f *fixture) raw(method, url, token, body string) (int, []byte) {
	f.t.Helper()
	req, err := http.NewRequestWithContext(f.t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := f.az.HTTPClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 400 && resp.Header.Get("x-ms-error-code") == "" && !strings.Contains(url, "oauth2") {
		f.t.Errorf("%s %s: %d without x-ms-error-code", method, url, resp.StatusCode)
	}
	return resp.StatusCode, b
}

func TestAuthentication(t *testing.T) {
	f := start(t, arm.Options{})
	url := f.srv.URL() + "/subscriptions/" + f.srv.SubscriptionID() + "/resourcegroups?api-version=2021-04-01"
	for _, tc := range []struct {
		name, token, code string
	}{
		{"no token", "", "AuthenticationFailed"},
		{"garbage", "not-a-jwt", "InvalidAuthenticationToken"},
	} {
		status, body := f.raw(http.MethodGet, url, tc.token, "")
		if status != 401 || !strings.Contains(string(body), tc.code) {
			t.Errorf("%s: %d %s", tc.name, status, body)
		}
	}
	if status, _ := f.raw(http.MethodGet, url, f.token(), ""); status != 200 {
		t.Fatalf("valid token: %d", status)
	}
	f.group("rg1") // the SDK client now holds a token too
	// Tokens expire on the simulator's clock.
	f.clk.Advance(2 * time.Hour)
	status, body := f.raw(http.MethodGet, url, f.token(), "")
	if status != 401 || !strings.Contains(string(body), "InvalidAuthenticationToken") || !strings.Contains(string(body), "expiry") {
		t.Errorf("expired token: %d %s", status, body)
	}
	// The SDK, which caches the token on the wall clock, sees the same 401.
	_, err := f.groups.Get(t.Context(), "rg1", nil)
	if re := responseError(t, err); re.StatusCode != 401 {
		t.Errorf("SDK with an expired token: %v", err)
	}

	// Wrong client secret: the issuer refuses, nothing is served.
	bad := f.endpoint()
	bad.ClientSecret = "wrong"
	az, err := azsdk.New(bad)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := az.Credential.GetToken(t.Context(), policyScope()); err == nil || !strings.Contains(err.Error(), "AADSTS7000215") {
		t.Errorf("wrong secret: %v", err)
	}
}

func TestValidationRules(t *testing.T) {
	f := start(t, arm.Options{})
	f.group("rg1")
	f.connectedCluster("rg1", "arc1")
	b64 := func(s string) *string { return to.Ptr(base64.StdEncoding.EncodeToString([]byte(s))) }
	key := armtest.SSHKeyPEM()
	cases := armtest.ValidationCases()
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			_, _, err := f.putConfig("rg1", "arc1", tc.Config, tc.Body)
			re := responseError(t, err)
			if re.StatusCode != 400 || re.ErrorCode != tc.Code || !strings.Contains(err.Error(), tc.Message) {
				t.Errorf("got %d %s: %v\nwant 400 %s mentioning %q", re.StatusCode, re.ErrorCode, err, tc.Code, tc.Message)
			}
		})
	}
	// Nothing was stored by the refused requests.
	pager := f.configs.NewListPager("rg1", "Microsoft.Kubernetes", "connectedClusters", "arc1", nil)
	page, err := pager.NextPage(t.Context())
	if err != nil || len(page.Value) != 0 {
		t.Errorf("refused PUTs left %d configurations (%v)", len(page.Value), err)
	}

	// The valid forms are accepted: SSH key with known hosts, scp-like URL.
	ok := config("git@127.0.0.1:team/app.git")
	ok.Properties.ConfigurationProtectedSettings = map[string]*string{"sshPrivateKey": b64(key)}
	ok.Properties.SSHKnownHostsContents = b64("# gitopsim\n" + armtest.KnownHostsLine())
	res, _, err := f.putConfig("rg1", "arc1", "good", ok)
	if err != nil {
		t.Fatal(err)
	}
	if pub := *res.Properties.RepositoryPublicKey; !strings.HasPrefix(pub, "ssh-ed25519 ") {
		t.Errorf("repositoryPublicKey from the supplied key = %q", pub)
	}

	// Unknown members are refused with their path.
	token := f.token()
	url := f.srv.URL() + "/subscriptions/" + f.srv.SubscriptionID() + "/resourceGroups/rg1/providers/Microsoft.Kubernetes/connectedClusters/arc1/providers/Microsoft.KubernetesConfiguration/sourceControlConfigurations/typo?api-version=2023-05-01"
	status, body := f.raw(http.MethodPut, url, token, `{"properties":{"repositoryUrl":"https://h/x.git","operatorScop":"cluster"}}`)
	if status != 400 || !strings.Contains(string(body), "Could not find member 'operatorScop'") || !strings.Contains(string(body), "properties.operatorScop") {
		t.Errorf("unknown member: %d %s", status, body)
	}
	status, body = f.raw(http.MethodPut, url, token, `{"properties":{"repositoryUrl":"https://h/x.git",`)
	if status != 400 || !strings.Contains(string(body), "InvalidRequestContent") {
		t.Errorf("truncated JSON: %d %s", status, body)
	}
	status, body = f.raw(http.MethodPut, url, token, `{"properties":{"repositoryUrl":"https://h/x.git","enableHelmOperator":"yes"}}`)
	if status != 400 || !strings.Contains(string(body), "properties.enableHelmOperator") {
		t.Errorf("enableHelmOperator \"yes\": %d %s", status, body)
	}
}

func TestProtectedSettingsNeverLeak(t *testing.T) {
	stateDir := filepath.Join(t.TempDir(), "state")
	f := start(t, arm.Options{StateDir: stateDir})
	f.group("rg1")
	f.connectedCluster("rg1", "arc1")
	key := armtest.SSHKeyPEM()
	secrets := map[string]string{
		"sshPrivateKey": base64.StdEncoding.EncodeToString([]byte(key)),
		"httpsUser":     base64.StdEncoding.EncodeToString([]byte("flux-reader-7f3a")),
		"httpsKey":      base64.StdEncoding.EncodeToString([]byte("tok-9c1e5b77d2a84f06")),
	}
	sshCfg := config("ssh://git@127.0.0.1/team/app.git")
	sshCfg.Properties.ConfigurationProtectedSettings = map[string]*string{"sshPrivateKey": to.Ptr(secrets["sshPrivateKey"])}
	httpsCfg := config("https://127.0.0.1/team/app.git")
	httpsCfg.Properties.ConfigurationProtectedSettings = map[string]*string{"httpsUser": to.Ptr(secrets["httpsUser"]), "httpsKey": to.Ptr(secrets["httpsKey"])}
	for name, c := range map[string]armkubernetesconfiguration.SourceControlConfiguration{"ssh": sshCfg, "https": httpsCfg} {
		if _, _, err := f.putConfig("rg1", "arc1", name, c); err != nil {
			t.Fatal(err)
		}
		// Update with the same secrets, read back, list.
		if _, _, err := f.putConfig("rg1", "arc1", name, c); err != nil {
			t.Fatal(err)
		}
		if _, err := f.configs.Get(t.Context(), "rg1", "Microsoft.Kubernetes", "connectedClusters", "arc1", name, nil); err != nil {
			t.Fatal(err)
		}
	}
	// A refused request with a secret in it must not echo it either.
	bad := config("https://127.0.0.1/team/app.git")
	bad.Properties.ConfigurationProtectedSettings = map[string]*string{"sshPrivateKey": to.Ptr(secrets["sshPrivateKey"])}
	if _, _, err := f.putConfig("rg1", "arc1", "bad", bad); err == nil {
		t.Fatal("ssh key with https URL accepted")
	}
	pager := f.configs.NewListPager("rg1", "Microsoft.Kubernetes", "connectedClusters", "arc1", nil)
	for pager.More() {
		if _, err := pager.NextPage(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	f.srv.Stop(context.Background()) // flush the request log

	needles := map[string]string{}
	for k, v := range secrets {
		needles[k+" (base64)"] = v
		raw, _ := base64.StdEncoding.DecodeString(v)
		needles[k+" (plain)"] = string(raw)
	}
	// A distinctive line of the PEM body, in case it is logged re-encoded.
	needles["sshPrivateKey (PEM line)"] = strings.Split(key, "\n")[2]

	haystacks := map[string]string{"responses": f.rec.bodies.String()}
	for _, dir := range []string{f.workdir, stateDir} {
		filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				b, _ := os.ReadFile(path)
				haystacks[path] = string(b)
			}
			return nil
		})
	}
	if _, ok := haystacks[filepath.Join(stateDir, "arm-state.bin")]; !ok {
		t.Error("no state file was written: the search below would not cover it")
	}
	if !strings.Contains(haystacks[filepath.Join(f.workdir, "arm", "requests.jsonl")], "[redacted]") {
		t.Error("request log has no redacted PUT bodies: the search below would prove nothing")
	}
	for hname, hay := range haystacks {
		for nname, needle := range needles {
			if strings.Contains(hay, needle) {
				t.Errorf("%s found in %s", nname, hname)
			}
		}
	}
}

func TestProtectedSettingsExpireAfter48Hours(t *testing.T) {
	f := start(t, arm.Options{})
	f.group("rg1")
	f.connectedCluster("rg1", "arc1")
	c := config("https://127.0.0.1/team/app.git")
	c.Properties.ConfigurationProtectedSettings = map[string]*string{
		"httpsUser": to.Ptr(base64.StdEncoding.EncodeToString([]byte("u"))),
		"httpsKey":  to.Ptr(base64.StdEncoding.EncodeToString([]byte("k"))),
	}
	plain := config("https://127.0.0.1/team/open.git")
	for name, body := range map[string]armkubernetesconfiguration.SourceControlConfiguration{"secret": c, "plain": plain} {
		if _, _, err := f.putConfig("rg1", "arc1", name, body); err != nil {
			t.Fatal(err)
		}
	}
	state := func(name string) (string, string) {
		got, err := f.configs.Get(t.Context(), "rg1", "Microsoft.Kubernetes", "connectedClusters", "arc1", name, nil)
		if err != nil {
			t.Fatal(err)
		}
		cs := got.Properties.ComplianceStatus
		return string(*cs.ComplianceState), *cs.Message
	}
	f.clk.Advance(47*time.Hour + 59*time.Minute)
	// A fresh token: the old one expired on the virtual clock.
	f.az, _ = azsdkNew(f)
	if s, _ := state("secret"); s != "Pending" {
		t.Errorf("at 47h59m: %s, want still Pending", s)
	}
	f.clk.Advance(time.Minute)
	s, msg := state("secret")
	if s != "Failed" || !strings.Contains(msg, "48 hours") || !strings.Contains(msg, "recreate") {
		t.Errorf("at 48h: %s %q", s, msg)
	}
	var parsed map[string]any
	if err := json.Unmarshal([]byte(msg), &parsed); err != nil {
		t.Errorf("message is not JSON-in-a-string: %q", msg)
	}
	if s, _ := state("plain"); s != "Pending" {
		t.Errorf("a configuration without protected settings: %s, want Pending", s)
	}
}

func TestConnectivityExpiresAfter90Days(t *testing.T) {
	f := start(t, arm.Options{TokenLifetime: 100 * 24 * time.Hour})
	f.group("rg1")
	f.connectedCluster("rg1", "arc1")
	f.clk.Advance(arm.IdentityLifetime)
	got, err := f.ccs.Get(t.Context(), "rg1", "arc1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if s := *got.Properties.ConnectivityStatus; s != armhybridkubernetes.ConnectivityStatusExpired {
		t.Errorf("after 90 days without the agent: %s, want Expired", s)
	}
}

func TestRouterAnswersEverythingInTheEnvelope(t *testing.T) {
	f := start(t, arm.Options{})
	token := f.token()
	for _, tc := range []struct {
		method, path string
		status       int
		code         string
	}{
		{"GET", "/nowhere?api-version=2021-04-01", 404, "NotFound"},
		{"GET", "/subscriptions/" + f.srv.SubscriptionID() + "/resourceGroups/rg1/providers/Microsoft.Widgets/gadgets/g1?api-version=2021-04-01", 400, "InvalidResourceType"},
		{"POST", "/subscriptions/" + f.srv.SubscriptionID() + "/resourceGroups?api-version=2021-04-01", 405, "MethodNotAllowed"},
		{"PUT", "/subscriptions/" + f.srv.SubscriptionID() + "/resourceGroups/bad%2Fname?api-version=2021-04-01", 400, "InvalidResourceGroup"},
		{"PUT", "/subscriptions/" + f.srv.SubscriptionID() + "/RESOURCEGROUPS/rg9?API-VERSION=2021-04-01", 201, ""},
	} {
		body := ""
		if tc.method == "PUT" {
			body = `{"location":"westeurope"}`
		}
		status, resp := f.raw(tc.method, f.srv.URL()+tc.path, token, body)
		if status != tc.status || (tc.code != "" && !strings.Contains(string(resp), `"code":"`+tc.code+`"`)) {
			t.Errorf("%s %s: %d %s, want %d %s", tc.method, tc.path, status, resp, tc.status, tc.code)
		}
	}
	// Names keep the caller's spelling; lookups ignore case.
	g, err := f.groups.Get(t.Context(), "RG9", nil)
	if err != nil || *g.Name != "rg9" {
		t.Errorf("case-insensitive lookup: %v %v", err, g.Name)
	}
}

func policyScope() policy.TokenRequestOptions {
	return policy.TokenRequestOptions{Scopes: []string{azsdk.Audience + "/.default"}}
}
